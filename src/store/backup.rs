//! Copies of the database: `smsgate backup` (while the daemon runs), `smsgate restore` (while it
//! does not), and the copy the store writes before it migrates an existing database. Also the
//! daemon's lock file (`DATABASE.lock`), which says "a daemon holds this database".
//!
//! What must always hold: a copy is made with SQLite's online backup API in one step (one read
//! transaction: a consistent snapshot even while the daemon commits in WAL mode) into a
//! temporary name, is a single self-contained file (journal mode DELETE), and gets its final
//! name only after `PRAGMA integrity_check` and the audit chain's verify passed on it; a restore
//! never runs while the lock is held, holds the lock itself meanwhile, never deletes the current
//! database (it is renamed aside with its -wal and -shm), and checks the restored file the same
//! way before it takes the database's name.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags};

/// How long a backup step waits for a busy source (a checkpoint, a restore's lock) in total.
const BUSY_LIMIT: Duration = Duration::from_secs(30);
/// Backups made into a directory are named `smsgate-<UTC time>.db`; pruning touches only these.
pub const DIR_PREFIX: &str = "smsgate-";
pub const DIR_SUFFIX: &str = ".db";

/// Errors of backups, restores and the lock.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} exists already: choose another name", .0.display())]
    Exists(PathBuf),
    #[error("{}: integrity check failed: {detail}", path.display())]
    Integrity { path: PathBuf, detail: String },
    #[error("{}: audit log broken at record {seq}: {fault}", path.display())]
    AuditBroken {
        path: PathBuf,
        seq: i64,
        fault: String,
    },
    #[error("{}: audit log unreadable: {detail}", path.display())]
    Audit { path: PathBuf, detail: String },
    #[error(
        "{}: schema version {found} was written by a newer smsgate (this one knows up to \
         {known})", path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "a daemon holds the database {} (lock {} is taken): stop it first (systemctl stop \
         smsgate)", db.display(), lock.display()
    )]
    Held { db: PathBuf, lock: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sql(path: &Path) -> impl FnOnce(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// An exclusive advisory lock (flock) on `DATABASE.lock`, held by the daemon for its whole
/// run and by a restore; released when dropped (or when the process dies, even by kill -9).
#[derive(Debug)]
pub struct DbLock {
    _lock: nix::fcntl::Flock<File>,
    pub path: PathBuf,
}

impl DbLock {
    /// The lock file of the database at `db`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut p = db.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Takes the lock of the database at `db` without waiting: `Ok(None)` when someone holds
    /// it. The file is created 0644 when missing, so a lock file root created (a restore) can
    /// still be opened (read-only is enough for flock) by the daemon's user.
    pub fn try_acquire(db: &Path) -> Result<Option<DbLock>, BackupError> {
        let path = Self::path_for(db);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o644)
                    .open(&path)
                    .map_err(io(&path))?;
                let _ = f.set_permissions(std::fs::Permissions::from_mode(0o644));
                f
            }
            Err(e) => return Err(io(&path)(e)),
        };
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(DbLock { _lock: lock, path })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(io(&path)(std::io::Error::from(errno))),
        }
    }
}

/// What the checks found in a copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyCheck {
    pub file: PathBuf,
    pub schema_version: i64,
    pub audit_records: u64,
    pub messages: i64,
    pub bytes: u64,
}

/// Opens an existing database file (never creates one).
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    if !path.exists() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(path))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sql(path))?;
    Ok(conn)
}

/// Checks the database file at `path`: `PRAGMA integrity_check`, a schema this smsgate knows,
/// the audit log's hash chain.
pub fn check(path: &Path) -> Result<CopyCheck, BackupError> {
    let conn = open_existing(path)?;
    check_conn(&conn, path)
}

fn check_conn(conn: &Connection, path: &Path) -> Result<CopyCheck, BackupError> {
    let mut st = conn
        .prepare("PRAGMA integrity_check(20)")
        .map_err(sql(path))?;
    let rows: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| BackupError::Integrity {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if rows != ["ok"] {
        return Err(BackupError::Integrity {
            path: path.to_owned(),
            detail: rows.join("; "),
        });
    }
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql(path))?;
    let known = super::latest_schema_version();
    if schema_version > known {
        return Err(BackupError::TooNew {
            path: path.to_owned(),
            found: schema_version,
            known,
        });
    }
    // A schema from before the audit log (v1, a pre-migration copy) has none to verify.
    let has_audit: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'audit_head'",
            [],
            |r| r.get(0),
        )
        .map_err(sql(path))?;
    let verified = if has_audit {
        super::audit::verify(conn)
    } else {
        Ok(crate::audit::VerifyReport::Intact { records: 0 })
    };
    let audit_records = match verified {
        Ok(crate::audit::VerifyReport::Intact { records }) => records,
        Ok(crate::audit::VerifyReport::Broken { seq, fault }) => {
            return Err(BackupError::AuditBroken {
                path: path.to_owned(),
                seq,
                fault: format!("{fault:?}"),
            })
        }
        Err(e) => {
            return Err(BackupError::Audit {
                path: path.to_owned(),
                detail: e.to_string(),
            })
        }
    };
    let messages: i64 = conn
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .map_err(sql(path))?;
    let bytes = std::fs::metadata(path).map_err(io(path))?.len();
    Ok(CopyCheck {
        file: path.to_owned(),
        schema_version,
        audit_records,
        messages,
        bytes,
    })
}

/// Copies the open database `src` into a new file `dest` (which must not exist) in one backup
/// step, as a self-contained file (journal mode DELETE) of mode 0600, synced to disk.
pub fn copy_into(src: &Connection, dest: &Path) -> Result<(), BackupError> {
    // Created first, so the copy is never readable by others, whatever the umask.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::Exists(dest.to_owned())
            } else {
                io(dest)(e)
            }
        })?;
    let result = (|| {
        let mut dst = Connection::open(dest).map_err(sql(dest))?;
        {
            let backup = rusqlite::backup::Backup::new(src, &mut dst).map_err(sql(dest))?;
            let started = Instant::now();
            loop {
                // -1: every page in one step, one read transaction on the source.
                match backup.step(-1).map_err(sql(dest))? {
                    rusqlite::backup::StepResult::Done => break,
                    _ if started.elapsed() > BUSY_LIMIT => {
                        return Err(BackupError::Sqlite {
                            path: dest.to_owned(),
                            source: rusqlite::Error::SqliteFailure(
                                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                                Some("the source database stayed busy".into()),
                            ),
                        });
                    }
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        // The source's WAL mode came with page 1: one file is what an operator copies away.
        dst.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sql(dest))?;
        dst.close().map_err(|(_, e)| sql(dest)(e))?;
        File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(io(dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

/// `dest` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// A compact UTC time for file names: 20261129T203000Z.
pub fn stamp(now: Timestamp) -> String {
    now.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Backs up the database at `db` into `dest` (which must not exist) and checks the copy; the
/// copy takes its name only once checked. Works while the daemon runs.
pub fn backup(db: &Path, dest: &Path) -> Result<CopyCheck, BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    let src = open_existing(db)?;
    let partial = with_suffix(dest, ".partial");
    let _ = std::fs::remove_file(&partial);
    copy_into(&src, &partial)?;
    drop(src);
    let checked = check(&partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    sync_dir(dest);
    Ok(CopyCheck {
        file: dest.to_owned(),
        ..checked
    })
}

/// Removes all but the newest `keep` backups (`smsgate-*.db`) in `dir`; returns what it removed.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(DIR_PREFIX) && n.ends_with(DIR_SUFFIX))
        })
        .collect();
    // The names hold the UTC time: sorting them sorts by age.
    found.sort();
    let excess = found.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for path in found.into_iter().take(excess) {
        std::fs::remove_file(&path).map_err(io(&path))?;
        removed.push(path);
    }
    Ok(removed)
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    /// Where the database that was replaced now is (None: there was none).
    pub kept_aside: Option<PathBuf>,
    pub check: CopyCheck,
}

/// Replaces the database at `db` with the backup `from`: refuses while a daemon holds the
/// database, checks `from`, copies it beside `db`, checks the copy, renames the current
/// database (and its -wal, -shm) to `DB.before-restore-TIME`, and gives the copy its name.
/// When run as root the new file gets the owner and mode of the one it replaces (or of its
/// directory), so the daemon's user can still write it.
pub fn restore(from: &Path, db: &Path, now: Timestamp) -> Result<Restored, BackupError> {
    let Some(lock) = DbLock::try_acquire(db)? else {
        return Err(BackupError::Held {
            db: db.to_owned(),
            lock: DbLock::path_for(db),
        });
    };
    let source = open_existing(from)?;
    check_conn(&source, from)?;
    let incoming = with_suffix(db, ".restoring");
    let _ = std::fs::remove_file(&incoming);
    copy_into(&source, &incoming)?;
    drop(source);
    let checked = check(&incoming).inspect_err(|_| {
        let _ = std::fs::remove_file(&incoming);
    })?;
    let owner = std::fs::metadata(db).ok().or_else(|| {
        db.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .and_then(|d| std::fs::metadata(d).ok())
    });
    if nix::unistd::geteuid().is_root() {
        if let Some(meta) = &owner {
            std::os::unix::fs::chown(&incoming, Some(meta.uid()), Some(meta.gid()))
                .map_err(io(&incoming))?;
            std::os::unix::fs::chown(&lock.path, Some(meta.uid()), Some(meta.gid()))
                .map_err(io(&lock.path))?;
        }
    }
    let kept_aside = if db.exists() {
        let aside = with_suffix(db, &format!(".before-restore-{}", stamp(now)));
        // The -wal may hold committed transactions (a daemon killed -9): it goes along.
        for suffix in ["-wal", "-shm"] {
            let from = with_suffix(db, suffix);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&aside, suffix)).map_err(io(&from))?;
            }
        }
        std::fs::rename(db, &aside).map_err(io(db))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&incoming, db).map_err(io(db))?;
    sync_dir(db);
    drop(lock);
    Ok(Restored {
        kept_aside,
        check: CopyCheck {
            file: db.to_owned(),
            ..checked
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with_a_message(dir: &Path) -> PathBuf {
        let path = dir.join("smsgate.db");
        let store = super::super::Store::open(&path).unwrap();
        store
            .conn
            .execute_batch("CREATE TABLE t_marker(x); INSERT INTO t_marker VALUES (42);")
            .unwrap();
        path
    }

    #[test]
    fn backup_is_one_checked_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_a_message(dir.path());
        let dest = dir.path().join("copy.db");
        let c = backup(&db, &dest).unwrap();
        assert_eq!(c.schema_version, super::super::latest_schema_version());
        let conn = Connection::open(&dest).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        let x: i64 = conn
            .query_row("SELECT x FROM t_marker", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 42);
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(backup(&db, &dest), Err(BackupError::Exists(_))));
        assert!(matches!(
            backup(&dir.path().join("none.db"), &dir.path().join("x.db")),
            Err(BackupError::Missing(_))
        ));
    }

    #[test]
    fn a_tampered_audit_log_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("smsgate.db");
        let mut store = super::super::Store::open(&db).unwrap();
        store
            .transaction(|tx| {
                super::super::audit::append(
                    tx,
                    crate::audit::AuditEntry::new(
                        crate::audit::AuditEvent::Other("test".into()),
                        Timestamp::now(),
                        "test",
                    ),
                )
                .map_err(|e| super::super::StoreError::Contract(e.to_string()))
            })
            .unwrap();
        store
            .conn
            .execute_batch(
                "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone else';",
            )
            .unwrap();
        drop(store);
        let err = backup(&db, &dir.path().join("copy.db")).unwrap_err();
        assert!(matches!(err, BackupError::AuditBroken { .. }), "{err}");
        assert!(!dir.path().join("copy.db").exists());
        assert!(!dir.path().join("copy.db.partial").exists());
    }

    #[test]
    fn restore_refuses_a_held_lock_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_a_message(dir.path());
        let copy = dir.path().join("copy.db");
        backup(&db, &copy).unwrap();
        let held = DbLock::try_acquire(&db).unwrap().unwrap();
        assert!(DbLock::try_acquire(&db).unwrap().is_none());
        let err = restore(&copy, &db, Timestamp::now()).unwrap_err();
        assert!(matches!(err, BackupError::Held { .. }), "{err}");
        drop(held);
        let r = restore(&copy, &db, Timestamp::now()).unwrap();
        let aside = r.kept_aside.unwrap();
        assert!(aside.exists());
        assert!(aside.to_str().unwrap().contains(".before-restore-"));
        check(&db).unwrap();
    }

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "smsgate-20260101T000000Z.db",
            "smsgate-20260102T000000Z.db",
            "smsgate-20260103T000000Z.db",
            "other.db",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed, [dir.path().join("smsgate-20260101T000000Z.db")]);
        assert!(dir.path().join("other.db").exists());
    }
}
