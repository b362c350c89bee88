//! Who holds a serial port: the exclusivity check (TIOCEXCL makes a second open fail with
//! EBUSY; root bypasses it, so TIOCGEXCL is asked as well) and the scan of /proc/*/fd that
//! names the holders (ModemManager is the usual one). What must always hold: the check opens
//! the port without becoming its controlling terminal and closes it at once; an unreadable
//! /proc entry (another user's process, a process that just exited) is skipped, never an error.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

/// A process that has the port open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    /// /proc/PID/comm (at most 15 characters, as the kernel keeps it).
    pub name: String,
}

/// What the exclusivity check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Exclusivity {
    /// Nobody holds the port exclusively.
    Free,
    /// Someone opened it with TIOCEXCL (EBUSY for us, or TIOCGEXCL says so).
    Held,
}

/// Opens `device` briefly to see whether another open holds it exclusively.
pub fn check_exclusive(device: &Path) -> io::Result<Exclusivity> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(device)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(Exclusivity::Held),
        Err(e) => return Err(e),
    };
    let mut excl: libc::c_int = 0;
    // SAFETY: the fd is open for the duration of the call and TIOCGEXCL writes one c_int
    // through the pointer we pass, which points at a live c_int.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TIOCGEXCL, &mut excl) };
    // A device that is not a tty (or a kernel before 3.8) cannot say: treat as free.
    Ok(if rc == 0 && excl != 0 {
        Exclusivity::Held
    } else {
        Exclusivity::Free
    })
}

/// Every process with an open file descriptor on `device` (compared by canonical path),
/// ordered by pid.
pub fn holders(device: &Path) -> Vec<Holder> {
    let Ok(device) = std::fs::canonicalize(device) else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == device));
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".to_string());
            out.push(Holder { pid, name });
        }
    }
    out.sort_by_key(|h| h.pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_we_hold_names_us() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev");
        std::fs::write(&path, b"").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let h = holders(&path);
        assert!(
            h.iter().any(|h| h.pid == std::process::id()),
            "{h:?} should include us"
        );
        drop(f);
        assert!(!holders(&path).iter().any(|h| h.pid == std::process::id()));
        assert!(holders(Path::new("/nonexistent/tty")).is_empty());
    }

    #[test]
    fn a_plain_file_is_never_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(check_exclusive(&path).unwrap(), Exclusivity::Free);
        assert!(check_exclusive(Path::new("/nonexistent/tty")).is_err());
    }
}
