//! The contract's hooks in the store's state changes, on a real SQLite file: a part sent
//! commits its credit, a part the platform did not send (modem failure, expiry, cancel, unknown
//! settled as not sent) is refunded, and every such change appends an audit record (with the
//! sending SIM) in the same transaction, the chain staying intact. Parts of a message whose
//! account has no row skip credit but are still audited.

use jiff::Timestamp;
use smsgate::audit::{AuditRecord, VerifyReport};
use smsgate::number::Carrier;
use smsgate::policy::CreditSummary;
use smsgate::scheduler::FailureKind;
use smsgate::store::contract::{self, NewAccount, NewLot};
use smsgate::store::{
    InitialState, MessageId, NewMessage, NewPart, PartId, Settlement, SimHealth, SimId,
    SimIdentity, Store, StoreError,
};

// Vector "ucs2-submit-china" of /work/shared/vectors/pdu.json (cnblogs daniu233 2013/04/22,
// AT+CMGS=21): a real SUBMIT to +8613910199192 with an SMSC.
const PDU: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_764_000_000 + secs).unwrap()
}

fn ce<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Contract(e.to_string())
}

fn msg(account: &str, parts: usize) -> NewMessage {
    NewMessage {
        account: Some(account.into()),
        recipient: "+8613910199192".into(),
        recipient_carrier: Carrier::ChinaMobile,
        text: "您好！".into(),
        encoding: "ucs2".into(),
        priority: 0,
        not_before: None,
        deadline: None,
        report_requested: true,
        initial: InitialState::Ready,
        parts: (0..parts)
            .map(|_| NewPart {
                pdu_hex: PDU.into(),
                cmgs_length: 21,
            })
            .collect(),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    account: i64,
    sim: SimId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("smsgate.db")).unwrap();
    let account = store
        .transaction(|tx| {
            let id = contract::create_account(
                tx,
                &NewAccount {
                    name: "acme".into(),
                    ..NewAccount::default()
                },
                t(0),
            )
            .map_err(ce)?;
            contract::add_lot(
                tx,
                id,
                &NewLot {
                    quantity: 10,
                    price_fen: 500,
                    purchased_at: t(0),
                    expires_at: None,
                },
            )
            .map_err(ce)?;
            Ok::<_, StoreError>(id)
        })
        .unwrap();
    let sim = store
        .upsert_sim(
            &SimIdentity {
                iccid: Some("89860012345678901234".into()),
                imsi: Some("460001234567890".into()),
                own_number: Some("13800000001".into()),
            },
            "/dev/ttyUSB0",
            t(0),
        )
        .unwrap();
    store
        .set_sim_health(
            sim,
            &SimHealth {
                healthy: true,
                registered: true,
                signal_dbm: Some(-70),
                error: None,
            },
            t(0),
        )
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        account,
        sim,
    }
}

/// Accepts `m` with its reservation, as the daemon does: one transaction.
fn accept(f: &mut Fixture, m: NewMessage) -> (MessageId, Vec<PartId>) {
    let account = f.account;
    let n = m.parts.len() as u32;
    let id = f
        .store
        .transaction(|tx| {
            let ids = smsgate::store::insert_messages(tx, &[m], t(0))?;
            contract::reserve(tx, account, n, t(0), &[ids[0].0]).map_err(ce)?;
            Ok::<_, StoreError>(ids[0])
        })
        .unwrap();
    let parts = f
        .store
        .message(id)
        .unwrap()
        .unwrap()
        .parts
        .iter()
        .map(|p| p.id)
        .collect();
    (id, parts)
}

fn credit(f: &mut Fixture) -> CreditSummary {
    let account = f.account;
    f.store
        .transaction(|tx| contract::credit_summary(tx, account, t(50)).map_err(ce))
        .unwrap()
}

fn records(f: &mut Fixture) -> Vec<AuditRecord> {
    f.store
        .transaction(|tx| smsgate::store::audit::all_records(tx).map_err(ce))
        .unwrap()
}

fn intact(f: &mut Fixture) -> bool {
    matches!(
        f.store
            .transaction(|tx| smsgate::store::audit::verify(tx).map_err(ce))
            .unwrap(),
        VerifyReport::Intact { .. }
    )
}

#[test]
fn sent_commits_failed_refunds_and_both_are_audited_with_the_sim() {
    let mut f = fixture();
    let (id, parts) = accept(&mut f, msg("acme", 2));
    let c = credit(&mut f);
    assert_eq!((c.available, c.reserved, c.used), (8, 2, 0));

    f.store.claim(parts[0], f.sim, t(1)).unwrap();
    f.store.mark_sent(parts[0], 7, t(2)).unwrap();
    let c = credit(&mut f);
    assert_eq!((c.available, c.reserved, c.used), (8, 1, 1));

    f.store.claim(parts[1], f.sim, t(3)).unwrap();
    f.store
        .mark_failed(
            parts[1],
            "+CMS ERROR: 21",
            FailureKind::PermanentForMessage,
            t(4),
        )
        .unwrap();
    let c = credit(&mut f);
    assert_eq!(
        (c.available, c.reserved, c.used),
        (9, 0, 1),
        "the failed part is refunded"
    );

    let recs = records(&mut f);
    let sent: Vec<_> = recs.iter().filter(|r| r.entry.event == "sent").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].entry.message_id, Some(id.0));
    assert_eq!(sent[0].entry.account_id, Some(f.account));
    assert_eq!(
        sent[0].entry.sim_iccid.as_deref(),
        Some("89860012345678901234")
    );
    assert_eq!(sent[0].entry.sim_number.as_deref(), Some("13800000001"));
    assert_eq!(sent[0].entry.text.as_deref(), Some("您好！"));
    let failed: Vec<_> = recs.iter().filter(|r| r.entry.event == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].entry.outcome.contains("+CMS ERROR: 21"),
        "{}",
        failed[0].entry.outcome
    );
    assert!(failed[0].entry.outcome.contains("refunded"));
    assert!(intact(&mut f));

    // A status report settles delivery: audited, credit unchanged.
    let out = f
        .store
        .apply_status_report(
            &smsgate::store::StatusReportIn {
                sim: f.sim,
                tp_mr: 7,
                recipient: "+8613910199192".into(),
                status: 0,
                raw_pdu: String::new(),
            },
            t(5),
        )
        .unwrap();
    assert!(matches!(
        out,
        smsgate::store::ReportOutcome::Delivered { .. }
    ));
    assert!(records(&mut f).iter().any(|r| r.entry.event == "delivered"));
    assert_eq!(credit(&mut f).used, 1);

    // The send is recorded for opt-out attribution.
    let who = f
        .store
        .transaction(|tx| contract::accounts_that_messaged(tx, "13910199192", t(0)).map_err(ce))
        .unwrap();
    assert_eq!(who, vec![f.account]);
}

#[test]
fn expiry_cancel_and_unknown_settled_as_not_sent_refund() {
    let mut f = fixture();
    let mut late = msg("acme", 1);
    late.deadline = Some(t(10));
    let (_, _) = accept(&mut f, late);
    let (cancelled, _) = accept(&mut f, msg("acme", 2));
    let (_, unknown_parts) = accept(&mut f, msg("acme", 1));
    let (_, sent_parts) = accept(&mut f, msg("acme", 1));
    assert_eq!(credit(&mut f).reserved, 5);

    f.store.expire(t(10)).unwrap();
    assert_eq!(credit(&mut f).reserved, 4);
    f.store.cancel(cancelled, t(11)).unwrap();
    assert_eq!(credit(&mut f).reserved, 2);

    f.store.claim(unknown_parts[0], f.sim, t(12)).unwrap();
    f.store.claim(sent_parts[0], f.sim, t(12)).unwrap();
    f.store
        .mark_unknown(unknown_parts[0], "timeout", t(13))
        .unwrap();
    f.store
        .mark_unknown(sent_parts[0], "timeout", t(13))
        .unwrap();
    assert_eq!(credit(&mut f).reserved, 2, "unknown settles nothing yet");
    f.store
        .settle_unknown(unknown_parts[0], Settlement::NotSent, t(14))
        .unwrap();
    f.store
        .settle_unknown(sent_parts[0], Settlement::Sent, t(14))
        .unwrap();
    let c = credit(&mut f);
    assert_eq!((c.available, c.reserved, c.used), (9, 0, 1));
    assert!(intact(&mut f));
}

#[test]
fn messages_without_an_account_row_are_audited_not_charged() {
    let mut f = fixture();
    let ids = f.store.accept(&[msg("nobody", 1)], t(0)).unwrap();
    let part = f.store.message(ids[0]).unwrap().unwrap().parts[0].id;
    f.store.claim(part, f.sim, t(1)).unwrap();
    f.store.mark_sent(part, 1, t(2)).unwrap();
    let recs = records(&mut f);
    let sent: Vec<_> = recs.iter().filter(|r| r.entry.event == "sent").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].entry.account_id, None);
    assert_eq!(credit(&mut f).used, 0);
}

#[test]
fn operator_retry_of_a_refunded_part_reserves_it_again() {
    let mut f = fixture();
    let (id, parts) = accept(&mut f, msg("acme", 1));
    f.store.claim(parts[0], f.sim, t(1)).unwrap();
    f.store
        .mark_failed(
            parts[0],
            "+CMS ERROR: 21",
            FailureKind::PermanentForMessage,
            t(2),
        )
        .unwrap();
    assert_eq!(credit(&mut f).available, 10, "refunded");
    assert_eq!(f.store.retry(id, t(3)).unwrap(), 1);
    let c = credit(&mut f);
    assert_eq!((c.available, c.reserved), (9, 1), "reserved again");
    f.store.claim(parts[0], f.sim, t(4)).unwrap();
    f.store.mark_sent(parts[0], 3, t(5)).unwrap();
    let c = credit(&mut f);
    assert_eq!((c.available, c.reserved, c.used), (9, 0, 1));

    // Without credit left, the retry is refused and nothing changes.
    let mut g = fixture();
    let account = g.account;
    let (id, parts) = accept(&mut g, msg("acme", 1));
    g.store.claim(parts[0], g.sim, t(1)).unwrap();
    g.store
        .mark_failed(
            parts[0],
            "+CMS ERROR: 21",
            FailureKind::PermanentForMessage,
            t(2),
        )
        .unwrap();
    let (_, _) = accept(&mut g, msg("acme", 10));
    let err = g.store.retry(id, t(3)).unwrap_err();
    assert!(err.to_string().contains("insufficient credit"), "{err}");
    let c = g
        .store
        .transaction(|tx| contract::credit_summary(tx, account, t(50)).map_err(ce))
        .unwrap();
    assert_eq!((c.available, c.reserved), (0, 10));
}

#[test]
fn a_status_report_with_an_empty_or_alphanumeric_recipient_matches_no_part() {
    let mut f = fixture();
    let (id, parts) = accept(&mut f, msg("acme", 1));
    f.store.claim(parts[0], f.sim, t(1)).unwrap();
    f.store.mark_sent(parts[0], 9, t(2)).unwrap();
    for recipient in ["", "ChinaMobile", "5678"] {
        let out = f
            .store
            .apply_status_report(
                &smsgate::store::StatusReportIn {
                    sim: f.sim,
                    tp_mr: 9,
                    recipient: recipient.into(),
                    status: 0x46,
                    raw_pdu: String::new(),
                },
                t(3),
            )
            .unwrap();
        assert_eq!(
            out,
            smsgate::store::ReportOutcome::Unmatched,
            "{recipient:?}"
        );
    }
    let v = f.store.message(id).unwrap().unwrap();
    assert_eq!(v.parts[0].state, smsgate::store::PartState::Sent);
    assert_eq!(credit(&mut f).used, 1);
}

fn report(f: &mut Fixture, mr: u8, status: u8, at: i64) {
    let out = f
        .store
        .apply_status_report(
            &smsgate::store::StatusReportIn {
                sim: f.sim,
                tp_mr: mr,
                recipient: "+8613910199192".into(),
                status,
                raw_pdu: String::new(),
            },
            t(at),
        )
        .unwrap();
    assert!(
        !matches!(out, smsgate::store::ReportOutcome::Unmatched),
        "{out:?}"
    );
}

/// (available, reserved, used)
fn avail_res_used(f: &mut Fixture) -> (u64, u64, u64) {
    let c = credit(f);
    (c.available, c.reserved, c.used)
}

#[test]
fn retry_billing_follows_one_rule_for_every_prior_state() {
    let mut f = fixture();

    // Sent, committed, then reported undelivered: that send stays charged, and the retry is a
    // new send that is charged again when it leaves (it went out free before this rule).
    let (id, parts) = accept(&mut f, msg("acme", 1));
    f.store.claim(parts[0], f.sim, t(1)).unwrap();
    f.store.mark_sent(parts[0], 11, t(2)).unwrap();
    report(&mut f, 11, 0x46, 3);
    assert_eq!(
        avail_res_used(&mut f),
        (9, 0, 1),
        "undelivered stays charged"
    );
    assert_eq!(f.store.retry(id, t(4)).unwrap(), 1);
    assert_eq!(avail_res_used(&mut f), (8, 1, 1), "the retry reserves anew");
    f.store.claim(parts[0], f.sim, t(5)).unwrap();
    f.store.mark_sent(parts[0], 12, t(6)).unwrap();
    assert_eq!(avail_res_used(&mut f), (8, 0, 2), "two sends, two charges");
    // The second send is delivered: no further change.
    report(&mut f, 12, 0x00, 7);
    assert_eq!(avail_res_used(&mut f), (8, 0, 2));

    // Unknown: its reservation is still open, so the retry reuses it (no second reservation).
    let (id, parts) = accept(&mut f, msg("acme", 1));
    f.store.claim(parts[0], f.sim, t(10)).unwrap();
    f.store.mark_unknown(parts[0], "timeout", t(11)).unwrap();
    assert_eq!(avail_res_used(&mut f), (7, 1, 2));
    assert_eq!(f.store.retry(id, t(12)).unwrap(), 1);
    assert_eq!(
        avail_res_used(&mut f),
        (7, 1, 2),
        "unknown keeps its reservation"
    );
    f.store.claim(parts[0], f.sim, t(13)).unwrap();
    f.store.mark_sent(parts[0], 13, t(14)).unwrap();
    assert_eq!(avail_res_used(&mut f), (7, 0, 3));

    // Unknown settled as not sent: refunded, and the retry reserves again.
    let (id, parts) = accept(&mut f, msg("acme", 1));
    f.store.claim(parts[0], f.sim, t(20)).unwrap();
    f.store.mark_unknown(parts[0], "timeout", t(21)).unwrap();
    f.store
        .settle_unknown(parts[0], Settlement::NotSent, t(22))
        .unwrap();
    assert_eq!(avail_res_used(&mut f), (7, 0, 3), "refunded");
    f.store.retry(id, t(23)).unwrap();
    assert_eq!(avail_res_used(&mut f), (6, 1, 3));
    f.store.claim(parts[0], f.sim, t(24)).unwrap();
    f.store
        .mark_failed(
            parts[0],
            "+CMS ERROR: 21",
            FailureKind::PermanentForMessage,
            t(25),
        )
        .unwrap();
    assert_eq!(
        avail_res_used(&mut f),
        (7, 0, 3),
        "the retry's round refunded"
    );

    // A part failed because its sibling failed (never claimed): refunded, reserved on retry,
    // alongside the sibling.
    let (id, parts) = accept(&mut f, msg("acme", 2));
    f.store.claim(parts[0], f.sim, t(30)).unwrap();
    f.store
        .mark_failed(
            parts[0],
            "+CMS ERROR: 21",
            FailureKind::PermanentForMessage,
            t(31),
        )
        .unwrap();
    assert_eq!(avail_res_used(&mut f), (7, 0, 3), "both parts refunded");
    assert_eq!(f.store.retry(id, t(32)).unwrap(), 2);
    assert_eq!(avail_res_used(&mut f), (5, 2, 3));
    for (i, p) in parts.iter().enumerate() {
        f.store.claim(*p, f.sim, t(33 + i as i64)).unwrap();
        f.store.mark_sent(*p, 20 + i as u8, t(35)).unwrap();
    }
    assert_eq!(avail_res_used(&mut f), (5, 0, 5));

    // Undelivered with no credit left: the retry is refused and nothing changes.
    let (id, parts) = accept(&mut f, msg("acme", 1));
    f.store.claim(parts[0], f.sim, t(40)).unwrap();
    f.store.mark_sent(parts[0], 40, t(41)).unwrap();
    report(&mut f, 40, 0x46, 42);
    let (_, _) = accept(&mut f, msg("acme", 4));
    assert_eq!(avail_res_used(&mut f), (0, 4, 6));
    let err = f.store.retry(id, t(43)).unwrap_err();
    assert!(err.to_string().contains("insufficient credit"), "{err}");
    assert_eq!(avail_res_used(&mut f), (0, 4, 6));
    assert_eq!(
        f.store.message(id).unwrap().unwrap().parts[0].state,
        smsgate::store::PartState::Failed
    );
    assert!(intact(&mut f));
}

/// Accepts `m` held for review, as the daemon does for review content.
fn accept_held(f: &mut Fixture) -> MessageId {
    let account = f.account;
    let mut m = msg("acme", 1);
    m.initial = InitialState::HeldForReview;
    f.store
        .transaction(|tx| {
            let ids = smsgate::store::insert_messages(tx, &[m], t(0))?;
            contract::reserve(tx, account, 1, t(0), &[ids[0].0]).map_err(ce)?;
            contract::hold_for_review(tx, ids[0].0, account, "loans", "贷款", t(0)).map_err(ce)?;
            Ok::<_, StoreError>(ids[0])
        })
        .unwrap()
}

fn pending(f: &mut Fixture) -> Vec<i64> {
    f.store
        .transaction(|tx| contract::pending_reviews(tx).map_err(ce))
        .unwrap()
        .into_iter()
        .map(|r| r.message_id)
        .collect()
}

#[test]
fn a_held_message_cannot_be_cancelled_by_its_sender_and_an_admin_cancel_closes_the_review() {
    let mut f = fixture();
    // The sender's cancel is refused; the review stays actionable and a violation is charged.
    let id = accept_held(&mut f);
    let err = f.store.cancel(id, t(1)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("held for review")),
        "{err}"
    );
    assert_eq!(
        f.store.message(id).unwrap().unwrap().summary.state,
        smsgate::store::MessageState::HeldForReview
    );
    assert_eq!(pending(&mut f), vec![id.0]);
    let r = f
        .store
        .transaction(|tx| {
            let r = contract::decide_review(
                tx,
                id.0,
                contract::ReviewDecision::RejectAsViolation,
                "rev",
                t(2),
            )
            .map_err(ce)?;
            smsgate::store::reject(tx, id, "prohibited", t(2))?;
            Ok::<_, StoreError>(r)
        })
        .unwrap();
    assert_eq!(r.charged, 1);
    assert_eq!(avail_res_used(&mut f), (9, 0, 1));

    // An admin's cancel refunds it and closes the review: nothing is left pending.
    let id = accept_held(&mut f);
    assert_eq!(pending(&mut f), vec![id.0]);
    let out = f.store.cancel_by_admin(id, "admin:root", t(3)).unwrap();
    assert_eq!(out.cancelled_parts, 1);
    assert_eq!(pending(&mut f), Vec::<i64>::new());
    assert_eq!(avail_res_used(&mut f), (9, 0, 1), "refunded");
    let late = f.store.transaction(|tx| {
        contract::decide_review(tx, id.0, contract::ReviewDecision::Approve, "rev", t(4))
            .map_err(ce)
    });
    assert!(late.is_err(), "no pending review to decide");
    let recs = records(&mut f);
    assert!(recs.iter().any(|r| r.entry.event == "reviewed"
        && r.entry.message_id == Some(id.0)
        && r.entry.actor == "admin:root"));
    assert!(intact(&mut f));
}
