//! One pseudo-terminal pair playing a serial port: the master is the modem's end (read with
//! tokio's AsyncFd, non-blocking), the slave is the device a client opens, reached through a
//! symlink such as DIR/modem0. Invariants: the slave is in raw mode so the line discipline
//! neither echoes nor translates; we keep our own slave fd open for the pair's lifetime so the
//! master never sees EIO when a client closes and reopens the port; the link is replaced
//! atomically (symlink + rename) and removed on drop only if it still points at our tty.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::unix::AsyncFd;

/// A live pty pair linked at a stable path.
#[derive(Debug)]
pub struct Pty {
    master: AsyncFd<OwnedFd>,
    _slave: OwnedFd,
    /// The device node (/dev/pts/N) of the slave.
    pub tty: PathBuf,
    link: PathBuf,
}

impl Pty {
    /// Opens a new pair and (re)points `link` at its slave.
    pub fn open(link: &Path) -> io::Result<Pty> {
        let pair = openpty(None, None)?;
        let mut t = tcgetattr(&pair.slave)?;
        cfmakeraw(&mut t);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &t)?;
        let flags = OFlag::from_bits_truncate(fcntl(&pair.master, FcntlArg::F_GETFL)?);
        fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let tty = nix::unistd::ttyname(pair.slave.as_fd())?;
        let tmp = link.with_extension("relink");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&tty, &tmp)?;
        std::fs::rename(&tmp, link)?;
        // SAFETY: the OwnedFd is moved into the AsyncFd and owned by it until drop, so the fd stays
        // open and names the same pty master for the AsyncFd's whole life.
        let master = unsafe { AsyncFd::register(pair.master) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Pty {
            master,
            _slave: pair.slave,
            tty,
            link: link.to_path_buf(),
        })
    }

    /// Reads what the client wrote.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes everything, or gives up after `limit` when the client does not drain the port
    /// (a real modem drops output it cannot deliver as well).
    pub async fn write_all(&self, mut data: &[u8], limit: Duration) -> io::Result<()> {
        let work = async {
            while !data.is_empty() {
                let mut guard = self.master.writable().await?;
                match guard
                    .try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
                {
                    Ok(Ok(n)) => data = data.get(n..).unwrap_or_default(),
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            }
            Ok(())
        };
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client does not read the port",
            ))
        })
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if std::fs::read_link(&self.link).is_ok_and(|t| t == self.tty) {
            let _ = std::fs::remove_file(&self.link);
        }
    }
}
