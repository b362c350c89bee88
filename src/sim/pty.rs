//! One pseudo-terminal pair playing a serial port: the master is the modem's end (read with
//! tokio's AsyncFd, non-blocking), the slave is the device a client opens, reached through a
//! symlink such as DIR/modem0. Invariants: the slave is in raw mode so the line discipline
//! neither echoes nor translates; we keep our own slave fd open for the pair's lifetime so the
//! master never sees EIO when a client closes and reopens the port; the link is replaced
//! atomically (symlink + rename) and removed on drop only if it still points at our tty.
//! Clients opening and closing the device are seen through inotify (IN_OPEN / IN_CLOSE on the
//! /dev/pts node), so the bank can log them and discard output nobody is there to read, as a
//! closed serial port does.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcflush, tcgetattr, tcsetattr, FlushArg, SetArg};
use tokio::io::unix::AsyncFd;

/// A live pty pair linked at a stable path.
#[derive(Debug)]
pub struct Pty {
    master: AsyncFd<OwnedFd>,
    _slave: OwnedFd,
    /// The device node (/dev/pts/N) of the slave.
    pub tty: PathBuf,
    link: PathBuf,
    /// None when inotify is unavailable: opens and closes then go unnoticed.
    watch: Option<AsyncFd<OwnedFd>>,
}

/// A client opened or closed the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    Opened,
    Closed,
}

fn watch_opens(tty: &Path) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: inotify_init1 has no preconditions; a non-negative result is a new fd we own.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, open fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let path = CString::new(tty.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mask = libc::IN_OPEN | libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE;
    // SAFETY: fd is a valid inotify fd and path a NUL-terminated string that outlives the call.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the OwnedFd moves into the AsyncFd and stays open for its whole life.
    unsafe { AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))
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
        // The link is made under a hidden temporary name, then renamed into place (atomic for
        // clients). Hidden, because a port glob such as `DIR/modem*` must never see the
        // temporary name: a daemon watching the directory would adopt it as the port's name.
        let tmp = link.with_file_name(format!(
            ".{}.relink",
            link.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = std::fs::remove_file(&tmp);
        // SAFETY: the OwnedFd is moved into the AsyncFd and owned by it until drop, so the fd stays
        // open and names the same pty master for the AsyncFd's whole life.
        let master = unsafe { AsyncFd::register(pair.master) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        // Watch before the link exists, so no client open can be missed.
        let watch = watch_opens(&tty)
            .inspect_err(|e| tracing::warn!("sim: no open/close events for {}: {e}", tty.display()))
            .ok();
        std::os::unix::fs::symlink(&tty, &tmp)?;
        std::fs::rename(&tmp, link)?;
        Ok(Pty {
            master,
            _slave: pair.slave,
            tty,
            link: link.to_path_buf(),
            watch,
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

    /// The next opens/closes of the device by clients (pending forever without inotify).
    pub async fn client_events(&self) -> io::Result<Vec<ClientEvent>> {
        let Some(watch) = &self.watch else {
            return std::future::pending().await;
        };
        let mut buf = [0u8; 1024];
        let n = loop {
            let mut guard = watch.readable().await?;
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(io::Error::from))
            {
                Ok(r) => break r?,
                Err(_would_block) => continue,
            }
        };
        // struct inotify_event: wd i32, mask u32, cookie u32, len u32, then `len` name bytes.
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(head) = buf.get(at..at + 16).filter(|_| at + 16 <= n) {
            let word =
                |i: usize| u32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
            let (mask, len) = (word(4), word(12) as usize);
            if mask & libc::IN_OPEN != 0 {
                out.push(ClientEvent::Opened);
            }
            if mask & (libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE) != 0 {
                out.push(ClientEvent::Closed);
            }
            at += 16 + len;
        }
        Ok(out)
    }

    /// Drops output queued for a client that has gone (a closed serial port keeps nothing).
    pub fn discard_unread_output(&self) {
        let _ = tcflush(&self._slave, FlushArg::TCIFLUSH);
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
