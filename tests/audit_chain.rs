//! The audit log on a real SQLite file: appends verify; an attacker with the sqlite3 shell who
//! drops the triggers and changes, deletes or inserts a row is named by `verify`; triggers
//! refuse UPDATE and DELETE; the retention purge keeps the chain verifiable; retention below
//! 90 days is refused; export quotes CSV properly and writes JSON lines.

use std::path::Path;
use std::process::Command;

use jiff::Timestamp;
use proptest::prelude::*;
use rusqlite::Connection;
use smsgate::audit::export::ExportFormat;
use smsgate::audit::{
    chain, verify_chain, AuditEntry, AuditError, AuditEvent, ChainFault, Retention, VerifyReport,
};
use smsgate::store::audit::{self, ExportFilter};
use smsgate::store::Store;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn open() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smsgate.db");
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    (dir, path, conn)
}

fn entry(i: i64, now: Timestamp) -> AuditEntry {
    AuditEntry::message(
        AuditEvent::Sent,
        now,
        "daemon",
        1,
        i,
        &format!("139000000{:02}", i % 100),
        &format!("【ACME】第{i}条, \"quoted\"\nline two"),
        1,
        "mr=17",
    )
    .with_sim("89860012345678901234", Some("13800000001"))
}

fn fill(conn: &mut Connection, n: i64, start: Timestamp) {
    let tx = conn.transaction().unwrap();
    for i in 1..=n {
        let t = start
            .checked_add(jiff::SignedDuration::from_hours(i))
            .unwrap();
        audit::append(&tx, entry(i, t)).unwrap();
    }
    tx.commit().unwrap();
}

/// Runs SQL in the sqlite3 shell, as an attacker with file access would.
fn shell(path: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()
        .expect("sqlite3 binary (apt-get install -y sqlite3)");
    assert!(
        out.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const DROP_TRIGGERS: &str = "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; \
     DROP TRIGGER audit_log_append_at_head;";

#[test]
fn appends_verify() {
    let (_d, _p, mut conn) = open();
    assert_eq!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Intact { records: 0 }
    );
    fill(&mut conn, 20, ts("2026-06-01T00:00:00Z"));
    assert_eq!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Intact { records: 20 }
    );
}

#[test]
fn triggers_refuse_update_and_delete() {
    let (_d, _p, mut conn) = open();
    fill(&mut conn, 3, ts("2026-06-01T00:00:00Z"));
    let e = conn
        .execute("UPDATE audit_log SET text = 'x' WHERE seq = 2", [])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = conn
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap_err();
    assert!(e.to_string().contains("retention purge"), "{e}");
    // No row can be slipped in below the head, and the head cannot go back.
    let e = conn
        .execute(
            "INSERT INTO audit_log (seq, time, event, outcome, actor, prev_hash, hash)
             VALUES (2, 0, 'sent', '', 'x', X'00', X'00')",
            [],
        )
        .unwrap_err();
    assert!(e.to_string().contains("after the head"), "{e}");
    let e = conn
        .execute("UPDATE audit_head SET seq = 1", [])
        .unwrap_err();
    assert!(e.to_string().contains("forward"), "{e}");
    assert!(conn.execute("DELETE FROM audit_head", []).is_err());
}

#[test]
fn altered_row_is_named() {
    let (_d, path, mut conn) = open();
    fill(&mut conn, 10, ts("2026-06-01T00:00:00Z"));
    drop(conn);
    shell(
        &path,
        &format!("{DROP_TRIGGERS} UPDATE audit_log SET recipient = '13999999999' WHERE seq = 4;"),
    );
    let conn = Connection::open(&path).unwrap();
    assert_eq!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Broken {
            seq: 4,
            fault: ChainFault::Altered
        }
    );
}

#[test]
fn deleted_row_is_named() {
    let (_d, path, mut conn) = open();
    fill(&mut conn, 10, ts("2026-06-01T00:00:00Z"));
    drop(conn);
    shell(
        &path,
        &format!("{DROP_TRIGGERS} DELETE FROM audit_log WHERE seq = 6;"),
    );
    let conn = Connection::open(&path).unwrap();
    assert_eq!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Broken {
            seq: 7,
            fault: ChainFault::Removed { after_seq: Some(5) }
        }
    );
}

#[test]
fn deleted_tail_is_named() {
    let (_d, path, mut conn) = open();
    fill(&mut conn, 10, ts("2026-06-01T00:00:00Z"));
    drop(conn);
    shell(
        &path,
        &format!("{DROP_TRIGGERS} DELETE FROM audit_log WHERE seq >= 9;"),
    );
    let conn = Connection::open(&path).unwrap();
    assert_eq!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Broken {
            seq: 8,
            fault: ChainFault::TruncatedTail { expected_seq: 10 }
        }
    );
}

#[test]
fn inserted_row_is_named() {
    let (_d, path, mut conn) = open();
    fill(&mut conn, 10, ts("2026-06-01T00:00:00Z"));
    drop(conn);
    // Make room at seq 5 by shifting rows up, then insert a forged record that even carries a
    // correct hash of its own content, linked to record 4.
    let conn = Connection::open(&path).unwrap();
    let r4 = audit::all_records(&conn).unwrap()[3].clone();
    drop(conn);
    let forged = chain(r4.hash, 5, entry(99, ts("2026-06-01T04:30:00Z")));
    let e = &forged.entry;
    let opt = |v: &Option<String>| v.as_deref().map(sql_quote).unwrap_or("NULL".into());
    shell(
        &path,
        &format!(
            "{DROP_TRIGGERS} UPDATE audit_log SET seq = seq + 100 WHERE seq >= 5; \
             UPDATE audit_log SET seq = seq - 99 WHERE seq >= 105; \
             INSERT INTO audit_log (seq, time, event, account_id, message_id, sim_iccid, \
               sim_number, recipient, text, parts, outcome, actor, prev_hash, hash) \
             VALUES (5, {}, 'sent', 1, 99, {}, {}, {}, {}, 1, 'mr=17', 'daemon', X'{}', X'{}');",
            e.time,
            opt(&e.sim_iccid),
            opt(&e.sim_number),
            opt(&e.recipient),
            opt(&e.text),
            hex::encode(forged.prev_hash),
            hex::encode(forged.hash)
        ),
    );
    // The forged row is perfect on its own (valid hash, linked to record 4); the record after
    // it was chained to the old record 4's successor position and no longer links.
    let conn = Connection::open(&path).unwrap();
    let recs = audit::all_records(&conn).unwrap();
    assert_eq!(recs[4].entry.message_id, Some(99));
    assert_eq!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Broken {
            seq: 6,
            fault: ChainFault::Inserted
        }
    );
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn perfectly_forged_insert_breaks_the_next_link() {
    // Pure chain check: a record inserted with a valid hash of its own is still caught, because
    // the record after it was chained to something else.
    let now = ts("2026-06-01T00:00:00Z");
    let mut recs = Vec::new();
    let mut prev = [0u8; 32];
    for i in 1..=5 {
        let r = chain(prev, i, entry(i, now));
        prev = r.hash;
        recs.push(r);
    }
    let forged = chain(recs[2].hash, 4, entry(77, now));
    let mut tampered: Vec<_> = recs[..3].to_vec();
    tampered.push(forged);
    let mut r4 = recs[3].clone();
    r4.seq = 5;
    tampered.push(r4);
    let report = verify_chain(tampered, None);
    assert!(
        matches!(report, VerifyReport::Broken { seq: 5, .. }),
        "{report:?}"
    );
}

#[test]
fn purge_keeps_the_chain_verifiable() {
    let (_d, _p, mut conn) = open();
    let start = ts("2026-01-01T00:00:00Z");
    fill(&mut conn, 48, start); // one per hour on Jan 1-2
    let tx = conn.transaction().unwrap();
    let later = ts("2026-03-01T00:00:00Z");
    audit::append(&tx, entry(1000, later)).unwrap();
    tx.commit().unwrap();
    // 2026-01-01T00 + 180 days + 12h: records of the first 12 hours are older than 180 days.
    let now = ts("2026-06-30T12:00:00Z");
    let tx = conn.transaction().unwrap();
    let out = audit::purge(&tx, &Retention::default(), now, "admin:root").unwrap();
    tx.commit().unwrap();
    assert_eq!(out.through_seq, Some(11));
    assert_eq!(out.removed, 11);
    let recs = audit::all_records(&conn).unwrap();
    assert_eq!(recs[0].seq, 11);
    assert_eq!(recs[0].entry.event, "anchor");
    assert_eq!(recs.last().unwrap().entry.event, "purged");
    assert_eq!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Intact { records: 40 }
    );
    // The guard is off again: plain deletes are still refused.
    assert!(conn
        .execute("DELETE FROM audit_log WHERE seq = 20", [])
        .is_err());
    // A second purge replaces the anchor and still verifies.
    let tx = conn.transaction().unwrap();
    let out = audit::purge(
        &tx,
        &Retention::default(),
        ts("2026-07-01T12:00:00Z"),
        "admin",
    )
    .unwrap();
    tx.commit().unwrap();
    assert_eq!(out.through_seq, Some(35));
    assert!(matches!(
        audit::verify(&conn).unwrap(),
        VerifyReport::Intact { .. }
    ));
    // Altering a record after the anchor is still caught.
    let mut recs = audit::all_records(&conn).unwrap();
    assert_eq!(recs[0].entry.event, "anchor");
    let head = audit::head(&conn).unwrap();
    recs[2].entry.outcome = "forged".into();
    let seq = recs[2].seq;
    assert_eq!(
        verify_chain(recs, head),
        VerifyReport::Broken {
            seq,
            fault: ChainFault::Altered
        }
    );
}

#[test]
fn retention_below_90_days_is_refused() {
    assert!(matches!(
        Retention::days(30),
        Err(AuditError::RetentionTooShort { days: 30, min: 90 })
    ));
    assert!(Retention::days(90).is_ok());
}

#[test]
fn export_csv_and_json_lines() {
    let (_d, _p, mut conn) = open();
    fill(&mut conn, 10, ts("2026-06-01T00:00:00Z"));
    let filter = ExportFilter {
        from: Some(ts("2026-06-01T03:00:00Z")),
        to: Some(ts("2026-06-01T08:00:00Z")),
        number: None,
        account_id: Some(1),
    };
    let mut csv = Vec::new();
    let n = audit::export(&conn, &filter, ExportFormat::Csv, &mut csv).unwrap();
    assert_eq!(n, 5); // hours 3, 4, 5, 6, 7
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("seq,time,event,"));
    // The text with a comma, quotes and a newline is one quoted field.
    assert!(
        csv.contains("\"【ACME】第3条, \"\"quoted\"\"\nline two\""),
        "{csv}"
    );
    let mut jl = Vec::new();
    let filter = ExportFilter {
        number: Some("+86 139 0000 0007".into()),
        ..ExportFilter::default()
    };
    assert_eq!(
        audit::export(&conn, &filter, ExportFormat::JsonLines, &mut jl).unwrap(),
        1
    );
    let line = String::from_utf8(jl).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["seq"], 7);
    assert_eq!(v["recipient"], "13900000007");
    assert_eq!(v["sim_iccid"], "89860012345678901234");
    assert_eq!(v["sim_number"], "13800000001");
    assert_eq!(v["event"], "sent");
    assert_eq!(line.lines().count(), 1);
}

fn arb_entry() -> impl Strategy<Value = AuditEntry> {
    (
        any::<i64>(),
        "[a-z_]{1,12}",
        proptest::option::of(any::<i64>()),
        proptest::option::of(".{0,20}"),
        proptest::option::of(".{0,40}"),
        proptest::option::of(0i64..10),
        ".{0,10}",
    )
        .prop_map(
            |(time, event, account_id, recipient, text, parts, outcome)| AuditEntry {
                time,
                event,
                account_id,
                recipient,
                text,
                parts,
                outcome,
                actor: "daemon".into(),
                ..AuditEntry::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any chain verifies; changing any one field of any record is named at that record.
    #[test]
    fn chain_detects_any_single_change(
        entries in proptest::collection::vec(arb_entry(), 1..20),
        pick in any::<prop::sample::Index>(),
        field in 0u8..4,
    ) {
        let mut recs = Vec::new();
        let mut prev = [0u8; 32];
        for (i, e) in entries.into_iter().enumerate() {
            let r = chain(prev, i as i64 + 1, e);
            prev = r.hash;
            recs.push(r);
        }
        let head = Some((recs.len() as i64, prev));
        prop_assert_eq!(
            verify_chain(recs.clone(), head),
            VerifyReport::Intact { records: recs.len() as u64 }
        );
        let i = pick.index(recs.len());
        let e = &mut recs[i].entry;
        match field {
            0 => e.time = e.time.wrapping_add(1),
            1 => e.text = Some(format!("{}x", e.text.clone().unwrap_or_default())),
            2 => e.recipient = match e.recipient.take() { Some(_) => None, None => Some(String::new()) },
            _ => e.parts = Some(e.parts.unwrap_or(0) + 1),
        }
        let seq = recs[i].seq;
        prop_assert_eq!(
            verify_chain(recs, head),
            VerifyReport::Broken { seq, fault: ChainFault::Altered }
        );
    }
}

#[test]
fn rehashing_an_altered_record_breaks_the_next_one() {
    // An attacker who changes record 3 and recomputes its hash, and even fixes record 4's
    // prev_hash, is caught at record 4: its own hash covers the prev_hash it carried.
    let now = ts("2026-06-01T00:00:00Z");
    let mut recs = Vec::new();
    let mut prev = [0u8; 32];
    for i in 1..=6 {
        let r = chain(prev, i, entry(i, now));
        prev = r.hash;
        recs.push(r);
    }
    let head = Some((6, prev));
    let mut altered = recs[2].entry.clone();
    altered.recipient = Some("13999999999".into());
    recs[2] = chain(recs[1].hash, 3, altered);
    recs[3].prev_hash = recs[2].hash;
    assert_eq!(
        verify_chain(recs, head),
        VerifyReport::Broken {
            seq: 4,
            fault: ChainFault::Altered
        }
    );
}
