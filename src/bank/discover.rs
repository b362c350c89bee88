//! Port discovery and hot-plug: which serial ports match the configured globs right now, and a
//! watcher that reports ports appearing and vanishing without a restart.
//!
//! What must always hold: one physical device is reported once, however many configured names
//! lead to it (`/dev/gsm/huawei-1.2` and `/dev/ttyUSB0` are the same port): ports are keyed by
//! their canonical path and reported under the first configured name that matched. The watcher
//! is event-driven (inotify on the directories the globs live in); a slow rescan backs it up only
//! because inotify queues can overflow and udev may create the directory after we started.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// Errors of port discovery.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("bad port pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("cannot watch for hot-plugged ports: {0}")]
    Watch(#[from] nix::Error),
    #[error("cannot watch for hot-plugged ports: {0}")]
    Io(#[from] std::io::Error),
}

/// A change in the set of present ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvent {
    /// A port matching the patterns appeared (or was there at start-up).
    Added(PathBuf),
    /// A port that was reported present is gone.
    Removed(PathBuf),
}

/// The configured port patterns, checked once.
#[derive(Debug, Clone)]
pub struct PortPatterns {
    patterns: Vec<String>,
}

impl PortPatterns {
    /// Checks every glob; an invalid one is a configuration error naming it.
    pub fn new(patterns: &[String]) -> Result<PortPatterns, DiscoverError> {
        for p in patterns {
            glob::Pattern::new(p).map_err(|source| DiscoverError::Pattern {
                pattern: p.clone(),
                source,
            })?;
        }
        Ok(PortPatterns {
            patterns: patterns.to_vec(),
        })
    }

    /// The ports present now: configured name keyed by canonical device path. A name whose
    /// target does not exist (a dangling symlink left by an unplugged virtual modem) is skipped.
    pub fn scan(&self) -> BTreeMap<PathBuf, PathBuf> {
        let mut found = BTreeMap::new();
        for pattern in &self.patterns {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for path in paths.flatten() {
                let Ok(canonical) = std::fs::canonicalize(&path) else {
                    continue;
                };
                if is_char_device(&canonical) {
                    found.entry(canonical).or_insert(path);
                }
            }
        }
        found
    }

    /// The directories whose changes can change the scan's answer: for each glob, the longest
    /// leading part without wildcards, or its nearest existing ancestor when it does not exist
    /// yet (udev creates /dev/gsm only when the first modem appears).
    fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for pattern in &self.patterns {
            let mut dir = PathBuf::new();
            for comp in Path::new(pattern).components() {
                let s = comp.as_os_str().to_string_lossy();
                if s.contains(['*', '?', '[']) {
                    break;
                }
                dir.push(comp);
            }
            // The last literal component is a file name unless the pattern ended there.
            if dir == Path::new(pattern) {
                dir.pop();
            }
            while !dir.as_os_str().is_empty() && !dir.is_dir() {
                dir.pop();
            }
            if dir.as_os_str().is_empty() {
                dir.push(".");
            }
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }
}

fn is_char_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false)
}

struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl AsFd for InotifyFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// How often the watcher rescans even without an inotify event (overflow insurance).
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(30);

/// Watches the patterns and sends `Added` for every port present at start, then every change.
/// Runs until the receiver is dropped.
pub async fn watch(
    patterns: PortPatterns,
    events: mpsc::Sender<PortEvent>,
) -> Result<(), DiscoverError> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_ATTRIB;
    let mut watched = Vec::new();
    let add_watches = |inotify: &Inotify, watched: &mut Vec<PathBuf>| {
        for dir in patterns.watch_dirs() {
            if !watched.contains(&dir) && inotify.add_watch(&dir, mask).is_ok() {
                watched.push(dir);
            }
        }
    };
    add_watches(&inotify, &mut watched);
    // SAFETY: `InotifyFd` owns the inotify descriptor and always returns that same descriptor;
    // it stays open until the AsyncFd (its only owner) is dropped.
    let fd = unsafe { AsyncFd::register(InotifyFd(inotify)) }.map_err(std::io::Error::from)?;

    let mut present: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    loop {
        let now = patterns.scan();
        for (canonical, name) in &present {
            if !now.contains_key(canonical)
                && events.send(PortEvent::Removed(name.clone())).await.is_err()
            {
                return Ok(());
            }
        }
        for (canonical, name) in &now {
            if !present.contains_key(canonical)
                && events.send(PortEvent::Added(name.clone())).await.is_err()
            {
                return Ok(());
            }
        }
        present = now;

        tokio::select! {
            ready = fd.readable() => {
                let mut guard = ready?;
                // Drain the queue; what changed is re-derived by the next scan.
                loop {
                    match guard.get_inner().0.read_events() {
                        Ok(evs) if !evs.is_empty() => continue,
                        Ok(_) | Err(nix::Error::EAGAIN) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                guard.clear_ready();
                // A directory that appeared (e.g. /dev/gsm) gets its own watch.
                add_watches(&fd.get_ref().0, &mut watched);
            }
            _ = tokio::time::sleep(RESCAN_INTERVAL) => {}
            _ = events.closed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pty_slave() -> (nix::pty::OpenptyResult, PathBuf) {
        let pty = nix::pty::openpty(None, None).unwrap();
        let path = nix::unistd::ttyname(&pty.slave).unwrap();
        (pty, path)
    }

    #[test]
    fn invalid_glob_is_reported_by_name() {
        let err = PortPatterns::new(&["/dev/[tty".to_string()]).unwrap_err();
        assert!(err.to_string().contains("/dev/[tty"), "{err}");
    }

    #[test]
    fn watch_dirs_are_the_literal_prefix_or_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gsm");
        let p = PortPatterns::new(&[
            format!("{}/modem*", dir.path().display()),
            format!("{}/*", missing.display()),
        ])
        .unwrap();
        assert_eq!(p.watch_dirs(), vec![dir.path().to_path_buf()]);
    }

    #[test]
    fn scan_dedupes_links_to_one_device_and_skips_non_devices() {
        let dir = tempfile::tempdir().unwrap();
        let (_pty, slave) = pty_slave();
        std::os::unix::fs::symlink(&slave, dir.path().join("modem0")).unwrap();
        std::os::unix::fs::symlink(&slave, dir.path().join("modem0-alias")).unwrap();
        std::fs::write(dir.path().join("modem-file"), b"not a tty").unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("modem9")).unwrap();
        let p = PortPatterns::new(&[format!("{}/modem*", dir.path().display())]).unwrap();
        let found = p.scan();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found.values().next().unwrap(), &dir.path().join("modem0"));
    }

    async fn next(rx: &mut mpsc::Receiver<PortEvent>) -> PortEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no port event within 5 s")
            .expect("watcher stopped")
    }

    #[tokio::test]
    async fn watcher_reports_hot_plug_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let gsm = dir.path().join("gsm"); // created later, as udev would
        let (_pty0, slave0) = pty_slave();
        std::os::unix::fs::symlink(&slave0, dir.path().join("modem0")).unwrap();
        let patterns = PortPatterns::new(&[
            format!("{}/modem*", dir.path().display()),
            format!("{}/*", gsm.display()),
        ])
        .unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(watch(patterns, tx));
        assert_eq!(
            next(&mut rx).await,
            PortEvent::Added(dir.path().join("modem0"))
        );

        let (_pty1, slave1) = pty_slave();
        std::fs::create_dir(&gsm).unwrap();
        std::os::unix::fs::symlink(&slave1, gsm.join("quectel-1")).unwrap();
        assert_eq!(next(&mut rx).await, PortEvent::Added(gsm.join("quectel-1")));

        std::fs::remove_file(dir.path().join("modem0")).unwrap();
        assert_eq!(
            next(&mut rx).await,
            PortEvent::Removed(dir.path().join("modem0"))
        );
        drop(rx);
        task.abort();
    }
}
