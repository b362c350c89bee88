//! Credit lots end to end on a real SQLite file: earliest-expiry consumption, expired lots,
//! per-part commit and refund, whole-request refusal with the shortfall.

use jiff::Timestamp;
use rusqlite::Connection;
use smsgate::policy::account::{AccountSettings, LotState};
use smsgate::store::contract::{self, ContractError, NewAccount, NewLot};
use smsgate::store::Store;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn open() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smsgate.db");
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    (dir, conn)
}

fn account(conn: &mut Connection, now: Timestamp) -> i64 {
    let tx = conn.transaction().unwrap();
    let id = contract::create_account(
        &tx,
        &NewAccount {
            name: "acme".into(),
            uids: vec![1000],
            gids: vec![],
            settings: AccountSettings::default(),
        },
        now,
    )
    .unwrap();
    tx.commit().unwrap();
    id
}

fn lot(conn: &mut Connection, acct: i64, q: u64, bought: &str, expires: Option<&str>) -> i64 {
    let tx = conn.transaction().unwrap();
    let id = contract::add_lot(
        &tx,
        acct,
        &NewLot {
            quantity: q,
            price_fen: 100 * q as i64,
            purchased_at: ts(bought),
            expires_at: expires.map(ts),
        },
    )
    .unwrap();
    tx.commit().unwrap();
    id
}

#[test]
fn three_parts_cost_three_from_earliest_expiring_lot() {
    let now = ts("2026-06-01T00:00:00Z");
    let (_d, mut conn) = open();
    let a = account(&mut conn, now);
    // Bought later but expiring sooner: must be used first.
    let late = lot(&mut conn, a, 10, "2026-01-01T00:00:00Z", None);
    let soon = lot(
        &mut conn,
        a,
        10,
        "2026-02-01T00:00:00Z",
        Some("2026-07-01T00:00:00Z"),
    );
    let tx = conn.transaction().unwrap();
    let r = contract::reserve(&tx, a, 3, now, &[42]).unwrap();
    tx.commit().unwrap();
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|p| p.lot_id == soon));
    assert_eq!(
        r.iter().map(|p| p.part_seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let s = contract::credit_summary(&conn, a, now).unwrap();
    assert_eq!((s.available, s.reserved, s.used), (17, 3, 0));
    let soon_lot = s.lots.iter().find(|l| l.lot.id == soon).unwrap();
    assert_eq!(soon_lot.available, 7);
    let late_lot = s.lots.iter().find(|l| l.lot.id == late).unwrap();
    assert_eq!(late_lot.available, 10);

    // Sent: committed.
    let tx = conn.transaction().unwrap();
    for p in 1..=3 {
        assert!(contract::commit_part(&tx, 42, p, now).unwrap());
    }
    // A replayed commit is a no-op.
    assert!(!contract::commit_part(&tx, 42, 1, now).unwrap());
    tx.commit().unwrap();
    let s = contract::credit_summary(&conn, a, now).unwrap();
    assert_eq!((s.available, s.reserved, s.used), (17, 0, 3));
}

#[test]
fn reservation_spans_lots_in_expiry_order() {
    let now = ts("2026-06-01T00:00:00Z");
    let (_d, mut conn) = open();
    let a = account(&mut conn, now);
    let first = lot(
        &mut conn,
        a,
        2,
        "2026-01-01T00:00:00Z",
        Some("2026-08-01T00:00:00Z"),
    );
    let second = lot(
        &mut conn,
        a,
        5,
        "2026-01-01T00:00:00Z",
        Some("2026-09-01T00:00:00Z"),
    );
    let tx = conn.transaction().unwrap();
    let r = contract::reserve(&tx, a, 2, now, &[1, 2]).unwrap();
    tx.commit().unwrap();
    let lots: Vec<i64> = r.iter().map(|p| p.lot_id).collect();
    assert_eq!(lots, vec![first, first, second, second]);
}

#[test]
fn expired_lot_cannot_pay_and_shows_expired() {
    let now = ts("2027-06-01T00:00:00Z");
    let (_d, mut conn) = open();
    let a = account(&mut conn, now);
    // Default expiry: one year after purchase, so 2027-01-01 - already past.
    lot(&mut conn, a, 100, "2026-01-01T00:00:00Z", None);
    let tx = conn.transaction().unwrap();
    let err = contract::reserve(&tx, a, 1, now, &[7]).unwrap_err();
    drop(tx);
    match err {
        ContractError::InsufficientCredit {
            needed,
            available,
            shortfall,
        } => assert_eq!((needed, available, shortfall), (1, 0, 1)),
        other => panic!("unexpected {other:?}"),
    }
    let s = contract::credit_summary(&conn, a, now).unwrap();
    assert_eq!((s.available, s.expired), (0, 100));
    assert_eq!(s.lots[0].state, LotState::Expired);
    // Before expiry the same lot paid.
    assert_eq!(
        contract::credit_summary(&conn, a, ts("2026-12-31T23:59:59Z"))
            .unwrap()
            .available,
        100
    );
}

#[test]
fn insufficient_credit_reserves_nothing() {
    let now = ts("2026-06-01T00:00:00Z");
    let (_d, mut conn) = open();
    let a = account(&mut conn, now);
    lot(&mut conn, a, 5, "2026-01-01T00:00:00Z", None);
    let tx = conn.transaction().unwrap();
    let err = contract::reserve(&tx, a, 2, now, &[1, 2, 3]).unwrap_err();
    assert!(
        matches!(
            err,
            ContractError::InsufficientCredit {
                needed: 6,
                available: 5,
                shortfall: 1
            }
        ),
        "{err:?}"
    );
    tx.commit().unwrap();
    let s = contract::credit_summary(&conn, a, now).unwrap();
    assert_eq!((s.available, s.reserved), (5, 0));
}

#[test]
fn failed_send_is_refunded() {
    let now = ts("2026-06-01T00:00:00Z");
    let (_d, mut conn) = open();
    let a = account(&mut conn, now);
    let l = lot(&mut conn, a, 10, "2026-01-01T00:00:00Z", None);
    let tx = conn.transaction().unwrap();
    contract::reserve(&tx, a, 3, now, &[9]).unwrap();
    tx.commit().unwrap();
    let tx = conn.transaction().unwrap();
    // Part 1 went out, parts 2 and 3 failed on the modem.
    contract::commit_part(&tx, 9, 1, now).unwrap();
    let r = contract::refund_part(&tx, 9, 2, now).unwrap().unwrap();
    assert_eq!((r.lot_id, r.refund_lot_id), (l, None));
    assert_eq!(contract::refund_message(&tx, 9, now).unwrap(), 1);
    // Refunding twice is a no-op; refunding a sent part is an error.
    assert!(contract::refund_part(&tx, 9, 2, now).unwrap().is_none());
    assert!(matches!(
        contract::refund_part(&tx, 9, 1, now),
        Err(ContractError::AlreadySettled { .. })
    ));
    assert!(matches!(
        contract::commit_part(&tx, 9, 4, now),
        Err(ContractError::NoReservation { .. })
    ));
    tx.commit().unwrap();
    let s = contract::credit_summary(&conn, a, now).unwrap();
    assert_eq!((s.available, s.reserved, s.used), (9, 0, 1));
}

#[test]
fn refund_after_the_lot_expired_goes_to_a_refund_lot() {
    let bought = "2026-01-01T00:00:00Z";
    let (_d, mut conn) = open();
    let a = account(&mut conn, ts(bought));
    let l = lot(&mut conn, a, 4, bought, Some("2026-06-01T00:00:00Z"));
    let tx = conn.transaction().unwrap();
    contract::reserve(&tx, a, 2, ts("2026-05-31T23:00:00Z"), &[5]).unwrap();
    tx.commit().unwrap();
    let later = ts("2026-06-01T01:00:00Z");
    let tx = conn.transaction().unwrap();
    let r = contract::refund_part(&tx, 5, 1, later).unwrap().unwrap();
    let r2 = contract::refund_part(&tx, 5, 2, later).unwrap().unwrap();
    tx.commit().unwrap();
    assert_eq!(r.lot_id, l);
    let refund_lot = r.refund_lot_id.unwrap();
    assert_eq!(
        r2.refund_lot_id,
        Some(refund_lot),
        "one refund lot per expired lot"
    );
    let s = contract::credit_summary(&conn, a, later).unwrap();
    // The two refunded parts are available; the expired lot's other two are void.
    assert_eq!((s.available, s.expired, s.reserved), (2, 2, 0));
    let rl = s.lots.iter().find(|x| x.lot.id == refund_lot).unwrap();
    assert_eq!(rl.lot.refund_of, Some(l));
    assert_eq!(rl.lot.expires_at, ts("2026-07-01T01:00:00Z"));
}

#[test]
fn unknown_account_is_an_error() {
    let (_d, conn) = open();
    assert!(matches!(
        contract::credit_summary(&conn, 99, ts("2026-01-01T00:00:00Z")),
        Err(ContractError::UnknownAccount(99))
    ));
}
