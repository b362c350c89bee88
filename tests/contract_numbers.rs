//! One number, one meaning, on a real SQLite file: every comparison the contract makes
//! (blacklists, opt-outs and their attribution, the audit export filter) goes through
//! `number::key`, so a number written "+86 755 1234 5678" and "0755-12345678" is one number;
//! migration 0005 rewrites keys stored in the older forms, and the export still finds the
//! hash-chained audit rows written before it.
//!
//! Each test here failed on the code before the number module was unified (the policy layer
//! had its own normaliser that kept fixed lines "as cleaned" and stripped +86 from mobiles).

use jiff::Timestamp;
use rusqlite::Connection;
use smsgate::audit::export::ExportFormat;
use smsgate::audit::{AuditEntry, AuditEvent};
use smsgate::number::key;
use smsgate::policy::OptOutConfig;
use smsgate::store::audit::{append, export, ExportFilter};
use smsgate::store::contract::{self, NewAccount, NumberScope};
use smsgate::store::Store;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_764_000_000 + secs).unwrap()
}

fn open() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smsgate.db");
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    (dir, path, conn)
}

fn account(conn: &mut Connection, name: &str) -> i64 {
    let tx = conn.transaction().unwrap();
    let id = contract::create_account(
        &tx,
        &NewAccount {
            name: name.into(),
            ..NewAccount::default()
        },
        t(0),
    )
    .unwrap();
    tx.commit().unwrap();
    id
}

#[test]
fn a_blacklisted_fixed_line_is_refused_in_any_spelling() {
    let (_d, _p, mut conn) = open();
    let acme = account(&mut conn, "acme");
    let tx = conn.transaction().unwrap();
    assert!(contract::add_number_blacklist(
        &tx,
        NumberScope::Global,
        "+86 755 1234 5678",
        "complaint",
        "admin",
        t(1),
    )
    .unwrap());
    tx.commit().unwrap();
    // The daemon passes each parsed recipient's key; a recipient typed 0755-12345678.
    let recipient = key("0755-12345678");
    let facts =
        contract::acceptance_facts(&conn, acme, std::slice::from_ref(&recipient), t(2)).unwrap();
    assert!(
        facts.blacklisted_numbers.contains(&recipient),
        "{facts:?} should hold {recipient}"
    );
    // And the list shows the one canonical form.
    let list = contract::number_blacklist(&conn, NumberScope::Global).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].number, "075512345678");
}

#[test]
fn an_opt_out_reaches_the_account_that_messaged_the_fixed_line() {
    let (_d, _p, mut conn) = open();
    let acme = account(&mut conn, "acme");
    let other = account(&mut conn, "other");
    let tx = conn.transaction().unwrap();
    // acme sent to the fixed line (stored as the recipient's canonical form).
    contract::record_send(&tx, acme, "075512345678", t(1)).unwrap();
    // The reply comes from the SMSC's international form of the same number.
    let cfg = OptOutConfig::default();
    let opted = contract::apply_inbound_opt_out(&tx, "+8675512345678", "TD", &cfg, t(2))
        .unwrap()
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(
        opted,
        vec![acme],
        "attributed to the account that messaged it"
    );
    assert!(contract::is_opted_out(&conn, acme, "0755-12345678").unwrap());
    assert!(!contract::is_opted_out(&conn, other, "0755-12345678").unwrap());
    // A mobile replying in national form opts out the sender of a +86 message.
    let tx = conn.transaction().unwrap();
    contract::record_send(&tx, other, "+8613912345678", t(3)).unwrap();
    let opted = contract::apply_inbound_opt_out(&tx, "13912345678", "退订", &cfg, t(4))
        .unwrap()
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(opted, vec![other]);
    assert!(contract::is_opted_out(&conn, other, "+86 139 1234 5678").unwrap());
}

#[test]
fn migration_rewrites_old_keys_and_the_export_finds_both_audit_forms() {
    let (_d, path, mut conn) = open();
    let acme = account(&mut conn, "acme");
    // Rows as the old policy normaliser stored them: mobiles bare, fixed lines "as cleaned".
    conn.execute_batch(&format!(
        "INSERT INTO number_blacklist VALUES (0, '13912345678', 'r', 'admin', 1);
         INSERT INTO number_blacklist VALUES (0, '+8675512345678', 'r', 'admin', 2);
         INSERT INTO number_blacklist VALUES (0, '075512345678', 'r2', 'admin', 3);
         INSERT INTO opt_outs VALUES ({acme}, '13912345679', 1, 'inbound');
         INSERT INTO opt_outs VALUES ({acme}, 'ChinaMobile', 1, 'inbound');
         INSERT INTO recent_sends VALUES ({acme}, '13912345679', 1);
         PRAGMA user_version = 4;"
    ))
    .unwrap();
    // An audit row written in the old form, then one in the new form: hash-chained, kept.
    let tx = conn.transaction().unwrap();
    for r in ["13912345678", "+8613912345678"] {
        let mut e = AuditEntry::new(AuditEvent::NumberBlacklisted, t(5), "admin");
        e.recipient = Some(r.into());
        append(&tx, e).unwrap();
    }
    tx.commit().unwrap();
    drop(conn);

    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        smsgate::store::latest_schema_version()
    );
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let numbers: Vec<String> = contract::number_blacklist(&conn, NumberScope::Global)
        .unwrap()
        .into_iter()
        .map(|b| b.number)
        .collect();
    assert_eq!(numbers, vec!["+8613912345678", "075512345678"]);
    let outs: Vec<String> = contract::opt_outs(&conn, acme)
        .unwrap()
        .into_iter()
        .map(|o| o.number)
        .collect();
    assert_eq!(outs, vec!["+8613912345679", "ChinaMobile"]);
    assert_eq!(
        contract::accounts_that_messaged(&conn, "+86 139 1234 5679", Timestamp::UNIX_EPOCH)
            .unwrap(),
        vec![acme]
    );

    // The export by number finds the old and the new audit row, and the chain is intact.
    let mut out = Vec::new();
    let n = export(
        &conn,
        &ExportFilter {
            number: Some("+86 139-1234-5678".into()),
            ..ExportFilter::default()
        },
        ExportFormat::JsonLines,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 2, "{}", String::from_utf8_lossy(&out));
    assert!(matches!(
        smsgate::store::audit::verify(&conn).unwrap(),
        smsgate::audit::VerifyReport::Intact { .. }
    ));
}

#[test]
fn an_inbound_sender_in_another_spelling_is_in_the_inbox_of_the_account_that_messaged_it() {
    let (_d, path, _conn) = open();
    let mut store = Store::open(&path).unwrap();
    let m = smsgate::store::NewMessage {
        account: Some("acme".into()),
        recipient: "+8613912345678".into(),
        recipient_carrier: smsgate::number::Carrier::ChinaMobile,
        text: "hi".into(),
        encoding: "gsm7".into(),
        priority: 0,
        not_before: None,
        deadline: None,
        report_requested: false,
        initial: smsgate::store::InitialState::Ready,
        parts: vec![smsgate::store::NewPart {
            pdu_hex: "0011000D91683119109991F20000AA02E834".into(),
            cmgs_length: 17,
        }],
    };
    store.accept(&[m], t(0)).unwrap();
    // A reply whose sender the SMSC wrote in national form (type of address 0x81).
    assert!(store.account_messaged("acme", "13912345678").unwrap());
    assert!(store.account_messaged("acme", "+86 139 1234 5678").unwrap());
    assert!(!store.account_messaged("acme", "13912345679").unwrap());
    assert!(!store.account_messaged("other", "13912345678").unwrap());
}
