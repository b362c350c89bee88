//! Issue 11 end to end, with the real binary: `smsgate backup` of a running daemon's database
//! with messages in flight, `smsgate restore` into a new directory and over the live database,
//! the daemon's lock (restore refused while it runs; a second daemon refused), the daemon
//! refusing a database written by a newer smsgate, and `smsgate config check`'s exit codes and
//! messages being the daemon's.
//!
//! What these tests prove: the backup holds every message, credit lot and audit record that
//! existed when it was taken (audit records byte-identical: same seq and hash), and passes
//! integrity check and log verify; a restore refuses while the daemon holds the database and
//! leaves it untouched; a restore keeps the replaced file aside; the restored file opens with
//! the library, verifies, and a daemon starts on it.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use nix::sys::signal::Signal;
use support::*;

fn mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn smsgate(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SMSGATE_LOG")
        .output()
        .expect("run smsgate")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// (seq, hash) of every audit record, read-only.
fn audit_records(db: &Path) -> Vec<(i64, Vec<u8>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = conn
        .prepare("SELECT seq, hash FROM audit_log ORDER BY seq")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn ids(db: &Path, sql: &str) -> BTreeSet<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = conn.prepare(sql).unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn backup_while_sending_then_restore_holds_everything_that_existed() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        // 300 ms per submit on two modems: a batch of 40 is still in flight at the backup.
        let sim = Sim::start_with(&tmp.path().join("bank"), 2, "300ms");
        let live = tmp.path().join("live");
        std::fs::create_dir_all(&live).unwrap();
        let mut daemon = Daemon::start(&live, &sim);
        daemon.wait_ready(2).await;
        let client = daemon.client();
        let o = daemon.cli(&[
            "credit",
            "add",
            "--account",
            "e2e",
            "--messages",
            "500",
            "--valid-for",
            "1y",
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));

        let first = send_batch(&client, 0, 40).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // What exists before the backup starts (read from the live file, WAL, read-only).
        let audit_before = audit_records(&daemon.database);
        let lots_before = ids(&daemon.database, "SELECT id FROM credit_lots");
        assert!(!audit_before.is_empty() && !lots_before.is_empty());
        let states = part_states(&daemon.database);
        assert!(
            states.get("queued").copied().unwrap_or(0) > 0,
            "the backup must be taken with parts still to send: {states:?}"
        );

        let backup = tmp.path().join("b1.db");
        let o = smsgate(&[
            "backup",
            "--to",
            p(&backup),
            "--database",
            p(&daemon.database),
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["backup"]["file"], p(&backup));

        // More traffic after the backup.
        let second = send_batch(&client, 100, 10).await;
        let all: Vec<_> = first.iter().chain(&second).copied().collect();
        wait_messages(&client, &all, Duration::from_secs(90), "all final", |m| {
            is_final(m.state)
        })
        .await;

        // The restore refuses while the daemon holds the database, and leaves it alone.
        let audit_live = audit_records(&daemon.database);
        let o = smsgate(&[
            "restore",
            "--from",
            p(&backup),
            "--database",
            p(&daemon.database),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("a daemon holds the database"),
            "{}",
            text(&o)
        );
        assert_eq!(audit_records(&daemon.database), audit_live);

        // Restored into a new directory: every message, lot and audit record of the backup
        // time is there, none of the later traffic.
        let fresh = tmp.path().join("fresh");
        std::fs::create_dir_all(&fresh).unwrap();
        let restored = fresh.join("smsgate.db");
        let o = smsgate(&["restore", "--from", p(&backup), "--database", p(&restored)]);
        assert!(o.status.success(), "{}", text(&o));
        let messages = ids(&restored, "SELECT id FROM messages");
        for id in &first {
            assert!(messages.contains(&(id.0 as i64)), "message {} lost", id.0);
        }
        for id in &second {
            assert!(
                !messages.contains(&(id.0 as i64)),
                "message {} came after",
                id.0
            );
        }
        assert_eq!(ids(&restored, "SELECT id FROM credit_lots"), lots_before);
        let audit_restored = audit_records(&restored);
        assert!(
            audit_restored.starts_with(&audit_before),
            "audit records of the backup time differ"
        );
        assert!(audit_restored.len() < audit_live.len());
        let o = smsgate(&["log", "verify", "--database", p(&restored)]);
        assert!(o.status.success(), "{}", text(&o));
        // It opens with the library (schema current, nothing to migrate).
        let store = smsgate::store::Store::open(&restored).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            smsgate::store::latest_schema_version()
        );
        drop(store);

        // Over the live database once the daemon stopped: the old file is kept aside.
        daemon.stop(Signal::SIGTERM, Duration::from_secs(60)).await;
        let o = smsgate(&[
            "restore",
            "--from",
            p(&backup),
            "--database",
            p(&daemon.database),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let aside: Vec<_> = std::fs::read_dir(&live)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().contains("smsgate.db.before-restore-"))
            .filter(|p| {
                !p.to_str().unwrap().ends_with("-wal") && !p.to_str().unwrap().ends_with("-shm")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(audit_records(&aside[0]), audit_live);
        assert_eq!(audit_records(&daemon.database), audit_restored);

        // A daemon starts on the restored database.
        let daemon = Daemon::start(&live, &sim);
        daemon.wait_ready(2).await;
    });
}

#[test]
fn a_second_daemon_on_one_database_is_refused() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start(&tmp.path().join("bank"), 1);
        let daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(1).await;
        let o = Command::new(BIN)
            .args(["daemon", "--config", p(&daemon.config)])
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("holds it (lock"),
            "{}",
            text(&o)
        );
        // The first one still answers.
        daemon.client().health().await.unwrap();
    });
}

#[test]
fn the_daemon_refuses_a_database_from_a_newer_smsgate() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "/nonexistent/port*", "");
    let db = tmp.path().join("smsgate.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t(x); PRAGMA user_version = 999;")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let o = Command::new(BIN)
        .args(["daemon", "--config", p(&config)])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("schema version 999 was written by a newer smsgate"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was changed"
    );
}

#[test]
fn config_check_exit_codes_and_the_daemon_s_same_message() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "/nonexistent/port*", "");
    // Valid, with a warning (the glob matches nothing): exit 0, defaults printed.
    let o = smsgate(&["config", "check", "--config", p(&config)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("retention_days = 180"), "{}", text(&o));
    assert!(out.contains("keep = 14"), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: modems.ports"),
        "{}",
        text(&o)
    );
    let o = smsgate(&["config", "check", "--config", p(&config), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["config"]["quota"]["per_day"], 1_000_000);
    assert!(v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["key"] == "quota.per_day"));

    // An error the types cannot see: exit 1, and the daemon refuses with the same line.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("dialect = \"generic\"", "dialect = \"nokia\""),
    )
    .unwrap();
    let o = smsgate(&["config", "check", "--config", p(&bad)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let line = format!(
        "{}:8: modems.dialect: unknown dialect \"nokia\"",
        bad.display()
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("error: {line}")),
        "{}",
        text(&o)
    );
    let o = Command::new(BIN)
        .args(["daemon", "--config", p(&bad)])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&line),
        "{}",
        text(&o)
    );
    assert!(
        !tmp.path().join("smsgate.db").exists(),
        "nothing was created"
    );

    // Bad arguments: exit 2.
    let o = smsgate(&["config", "check", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn backups_into_a_directory_keep_the_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("smsgate.db");
    drop(smsgate::store::Store::open(&db).unwrap());
    let dir = tmp.path().join("backups");
    let mut made = Vec::new();
    for _ in 0..3 {
        let o = smsgate(&[
            "backup",
            "--to-dir",
            p(&dir),
            "--keep",
            "2",
            "--database",
            p(&db),
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        made.push(v["backup"]["file"].as_str().unwrap().to_owned());
        // The names carry the second.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    left.sort();
    assert_eq!(left, made[1..], "the oldest is pruned, the newest two kept");
    let o = smsgate(&["backup", "--keep", "0", "--database", p(&db)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
