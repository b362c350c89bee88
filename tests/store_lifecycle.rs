//! The store on real SQLite files (WAL) in a temporary directory: acceptance atomicity, the
//! claim -> crash -> recover path that keeps an SMS from being sent twice, sent/failed/report
//! outcomes, retry/cancel/expire, SIM identity across ports, inbound dedupe and reassembly.

use jiff::{SignedDuration, Timestamp};
use smsgate::number::Carrier;
use smsgate::scheduler::{self, FailureKind, Quota};
use smsgate::store::{
    Concat, FailOutcome, InboundOutcome, InboundPart, InboxQuery, InitialState, MessageId,
    MessageQuery, MessageState, NewMessage, NewPart, PartState, ReportOutcome, Settlement,
    SimHealth, SimId, SimIdentity, StatusReportIn, Store, StoreError,
};

// Vector "ucs2-submit-china" of /work/shared/vectors/pdu.json (cnblogs daniu233 2013/04/22,
// AT+CMGS=21): a real SUBMIT to +8613910199192 with an SMSC.
const PDU: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";
const CMGS: u32 = 21;
const RCPT: &str = "+8613910199192";

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_764_000_000 + secs).unwrap()
}

fn msg(parts: usize) -> NewMessage {
    NewMessage {
        account: Some("acme".into()),
        recipient: RCPT.into(),
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
                cmgs_length: CMGS,
            })
            .collect(),
    }
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("smsgate.db")).unwrap()
}

fn sim(store: &mut Store, iccid: &str, port: &str) -> SimId {
    let id = store
        .upsert_sim(
            &SimIdentity {
                iccid: Some(iccid.into()),
                imsi: Some("460001234567890".into()),
                own_number: None,
            },
            port,
            t(0),
        )
        .unwrap();
    store
        .set_sim_health(
            id,
            &SimHealth {
                healthy: true,
                registered: true,
                signal_dbm: Some(-70),
                error: None,
            },
            t(0),
        )
        .unwrap();
    id
}

fn part_ids(store: &Store, id: MessageId) -> Vec<smsgate::store::PartId> {
    store
        .message(id)
        .unwrap()
        .unwrap()
        .parts
        .iter()
        .map(|p| p.id)
        .collect()
}

fn state(store: &Store, id: MessageId) -> MessageState {
    store.message(id).unwrap().unwrap().summary.state
}

#[test]
fn accept_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut bad = msg(1);
    bad.parts[0].pdu_hex = "not hex".into();
    let err = store.accept(&[msg(2), bad], t(0)).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.counts_by_state().unwrap().is_empty());

    // A failure after rows were written (here: the caller's own error) rolls everything back.
    let r: Result<(), StoreError> = store.transaction(|tx| {
        smsgate::store::insert_messages(tx, &[msg(1)], t(0))?;
        Err(StoreError::Invalid("credit reservation failed".into()))
    });
    assert!(r.is_err());
    assert!(store.counts_by_state().unwrap().is_empty());

    let ids = store.accept(&[msg(2), msg(1)], t(0)).unwrap();
    assert_eq!(ids.len(), 2);
    drop(store);
    let store = open(&dir);
    let view = store.message(ids[0]).unwrap().unwrap();
    assert_eq!(view.summary.state, MessageState::Queued);
    assert_eq!(view.parts.len(), 2);
    assert_eq!(
        store.counts_by_state().unwrap(),
        vec![(MessageState::Queued, 2)]
    );
}

#[test]
fn claim_then_crash_gives_unknown_and_never_reclaims() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let s = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let part = part_ids(&store, id)[0];
    let claimed = store.claim(part, s, t(1)).unwrap();
    assert_eq!(claimed.pdu_hex, PDU);
    assert_eq!(claimed.cmgs_length, CMGS);
    // Crash: the Store is dropped without mark_sent.
    drop(store);

    let mut store = open(&dir);
    let unknown = store.recover_after_crash(t(5)).unwrap();
    assert_eq!(unknown, vec![part]);
    let view = store.message(id).unwrap().unwrap();
    assert_eq!(view.parts[0].state, PartState::Unknown);
    assert!(
        store.due_parts(100, t(5)).unwrap().is_empty(),
        "unknown is not due"
    );
    assert!(matches!(
        store.claim(part, s, t(6)),
        Err(StoreError::NotClaimable { .. })
    ));
    // A second recovery finds nothing new.
    assert!(store.recover_after_crash(t(7)).unwrap().is_empty());
    // Only the operator's retry sends it again.
    assert_eq!(store.retry(id, t(8)).unwrap(), 1);
    assert_eq!(store.due_parts(100, t(8)).unwrap().len(), 1);
    store.claim(part, s, t(9)).unwrap();
}

#[test]
fn claimed_part_cannot_be_claimed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let b = sim(&mut store, "8986002", "/dev/ttyUSB1");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let part = part_ids(&store, id)[0];
    store.claim(part, a, t(1)).unwrap();
    assert!(store.claim(part, b, t(1)).is_err());
}

#[test]
fn concatenated_message_sent_in_order_on_one_sim_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let b = sim(&mut store, "8986002", "/dev/ttyUSB1");
    let id = store.accept(&[msg(2)], t(0)).unwrap()[0];
    let parts = part_ids(&store, id);
    assert!(
        store.claim(parts[1], a, t(1)).is_err(),
        "part 2 before part 1"
    );
    store.claim(parts[0], a, t(1)).unwrap();
    assert_eq!(state(&store, id), MessageState::Sending);
    store.mark_sent(parts[0], 7, t(2)).unwrap();
    let due = store.due_parts(100, t(2)).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].pinned_sim, Some(a));
    assert!(due[0].previous_sent);
    assert!(
        store.claim(parts[1], b, t(3)).is_err(),
        "must stay on SIM a"
    );
    store.claim(parts[1], a, t(4)).unwrap();
    store.mark_sent(parts[1], 8, t(5)).unwrap();
    assert_eq!(state(&store, id), MessageState::Sent);

    let report = |mr: u8, status: u8| StatusReportIn {
        sim: a,
        tp_mr: mr,
        recipient: "8613910199192".into(),
        status,
        raw_pdu: "00".into(),
    };
    // Wrong SIM / unknown MR: recorded, unmatched.
    let mut other = report(7, 0);
    other.sim = b;
    assert_eq!(
        store.apply_status_report(&other, t(6)).unwrap(),
        ReportOutcome::Unmatched
    );
    assert!(matches!(
        store.apply_status_report(&report(7, 0x20), t(6)).unwrap(),
        ReportOutcome::Pending { .. }
    ));
    assert!(matches!(
        store.apply_status_report(&report(7, 0), t(7)).unwrap(),
        ReportOutcome::Delivered { .. }
    ));
    assert_eq!(state(&store, id), MessageState::Sent, "one part still out");
    store.apply_status_report(&report(8, 0), t(8)).unwrap();
    assert_eq!(state(&store, id), MessageState::Delivered);
    let view = store.message(id).unwrap().unwrap();
    assert!(view.parts.iter().all(|p| p.state == PartState::Delivered));
    assert_eq!(view.parts[0].tp_mr, Some(7));
    assert_eq!(view.parts[0].sim, Some(a));
}

#[test]
fn report_matches_the_most_recent_part_with_that_mr() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let ids = store.accept(&[msg(1), msg(1)], t(0)).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let p = part_ids(&store, *id)[0];
        store.claim(p, a, t(10 * i as i64)).unwrap();
        store.mark_sent(p, 42, t(10 * i as i64 + 1)).unwrap();
    }
    let out = store
        .apply_status_report(
            &StatusReportIn {
                sim: a,
                tp_mr: 42,
                recipient: RCPT.into(),
                status: 0x41,
                raw_pdu: "00".into(),
            },
            t(30),
        )
        .unwrap();
    assert!(matches!(out, ReportOutcome::Failed { message, .. } if message == ids[1]));
    assert_eq!(state(&store, ids[1]), MessageState::Failed);
    assert_eq!(state(&store, ids[0]), MessageState::Sent);
}

#[test]
fn transient_failure_backs_off_and_avoids_the_sim_permanent_fails_siblings() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let id = store.accept(&[msg(2)], t(0)).unwrap()[0];
    let parts = part_ids(&store, id);
    store.claim(parts[0], a, t(1)).unwrap();
    let out = store
        .mark_failed(
            parts[0],
            "+CMS ERROR: 42",
            FailureKind::TransientForModem,
            t(2),
        )
        .unwrap();
    assert_eq!(out, FailOutcome::Retrying { at: t(32) });
    // Not due during its back-off (nor is part 2, whose part 1 is not sent); the runner is told
    // when to look again.
    assert!(store.due_parts(10, t(31)).unwrap().is_empty());
    assert_eq!(store.next_wake_at(t(2)).unwrap(), Some(t(32)));
    let due = store.due_parts(10, t(32)).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].avoid_sims, vec![a]);
    assert_eq!(due[0].next_attempt_at, Some(t(32)));
    assert!(store.claim(parts[0], a, t(40)).is_ok());
    let out = store
        .mark_failed(
            parts[0],
            "+CMS ERROR: 304",
            FailureKind::PermanentForMessage,
            t(41),
        )
        .unwrap();
    assert_eq!(out, FailOutcome::Failed);
    let view = store.message(id).unwrap().unwrap();
    assert_eq!(view.summary.state, MessageState::Failed);
    assert_eq!(view.parts[1].state, PartState::Failed, "sibling not sent");
    assert!(store.due_parts(10, t(41)).unwrap().is_empty());
}

#[test]
fn repeated_sim_errors_rest_the_sim() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let ids = store.accept(&[msg(1), msg(1), msg(1)], t(0)).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let p = part_ids(&store, *id)[0];
        store.claim(p, a, t(i as i64)).unwrap();
        store
            .mark_failed(p, "timeout", FailureKind::TransientForModem, t(i as i64))
            .unwrap();
    }
    let rec = store.sim(a).unwrap().unwrap();
    assert_eq!(rec.consecutive_errors, 3);
    assert_eq!(rec.rested_until, Some(t(2) + SignedDuration::from_mins(5)));
    assert_eq!(store.sent_counts(a, t(3)).unwrap().minute, 3);
}

#[test]
fn too_many_attempts_give_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let p = part_ids(&store, id)[0];
    let mut now = t(0);
    for attempt in 1..=5 {
        store.claim(p, a, now).unwrap();
        let out = store
            .mark_failed(p, "+CMS ERROR: 332", FailureKind::TransientForModem, now)
            .unwrap();
        match out {
            FailOutcome::Retrying { at } => now = at,
            FailOutcome::Failed => {
                assert_eq!(attempt, 5);
            }
        }
    }
    assert_eq!(state(&store, id), MessageState::Failed);
}

#[test]
fn cancel_keeps_sent_parts_and_expire_hits_only_due_queued_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let mut late = msg(1);
    late.deadline = Some(t(100));
    let ids = store.accept(&[msg(3), late], t(0)).unwrap();
    let parts = part_ids(&store, ids[0]);
    store.claim(parts[0], a, t(1)).unwrap();
    store.mark_sent(parts[0], 1, t(2)).unwrap();
    let out = store.cancel(ids[0], t(3)).unwrap();
    assert_eq!(out.cancelled_parts, 2);
    assert_eq!(out.already_sent_parts, 1);
    let view = store.message(ids[0]).unwrap().unwrap();
    assert_eq!(view.summary.state, MessageState::Cancelled);
    assert_eq!(view.parts[0].state, PartState::Sent);
    assert!(store.cancel(ids[0], t(4)).is_err());

    assert!(store.expire(t(99)).unwrap().is_empty());
    assert_eq!(store.expire(t(100)).unwrap(), vec![ids[1]]);
    assert_eq!(state(&store, ids[1]), MessageState::Expired);
    assert!(store.due_parts(10, t(100)).unwrap().is_empty());
}

#[test]
fn scheduled_and_held_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut later = msg(1);
    later.not_before = Some(t(60));
    let mut held = msg(1);
    held.initial = InitialState::HeldForReview;
    let ids = store.accept(&[later, held], t(0)).unwrap();
    assert_eq!(state(&store, ids[0]), MessageState::Scheduled);
    assert_eq!(state(&store, ids[1]), MessageState::HeldForReview);
    assert!(
        store.due_parts(10, t(0)).unwrap().is_empty(),
        "a message scheduled for later is not due yet, a held one never"
    );
    assert_eq!(store.next_wake_at(t(0)).unwrap(), Some(t(60)));
    let due = store.due_parts(10, t(60)).unwrap();
    assert_eq!(due.len(), 1, "held messages are not due");
    assert_eq!(due[0].not_before, Some(t(60)));
    assert_eq!(store.next_wake_at(t(60)).unwrap(), None);
    store
        .transaction(|tx| smsgate::store::release_from_review(tx, ids[1], t(1)))
        .unwrap();
    assert_eq!(state(&store, ids[1]), MessageState::Queued);
    assert_eq!(store.due_parts(10, t(60)).unwrap().len(), 2);
}

#[test]
fn sim_identity_survives_port_changes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let p = part_ids(&store, id)[0];
    store.claim(p, a, t(1)).unwrap();
    store.mark_sent(p, 1, t(2)).unwrap();
    drop(store);

    let mut store = open(&dir);
    let again = sim(&mut store, "8986001", "/dev/ttyUSB3");
    assert_eq!(again, a);
    let rec = store.sim(a).unwrap().unwrap();
    assert_eq!(rec.port.as_deref(), Some("/dev/ttyUSB3"));
    assert_eq!(rec.carrier, Carrier::ChinaMobile);
    assert_eq!(store.sent_counts(a, t(3)).unwrap().hour, 1);

    // Another SIM takes ttyUSB3: the first one is detached from it.
    let b = sim(&mut store, "8986002", "/dev/ttyUSB3");
    assert_ne!(a, b);
    assert_eq!(store.sim(a).unwrap().unwrap().port, None);

    // IMSI-only identity matches the IMSI-only row, then learns its ICCID.
    let c = store
        .upsert_sim(
            &SimIdentity {
                iccid: None,
                imsi: Some("460019999999999".into()),
                own_number: None,
            },
            "/dev/ttyUSB5",
            t(4),
        )
        .unwrap();
    let c2 = store
        .upsert_sim(
            &SimIdentity {
                iccid: Some("8986009".into()),
                imsi: Some("460019999999999".into()),
                own_number: None,
            },
            "/dev/ttyUSB6",
            t(5),
        )
        .unwrap();
    assert_eq!(c, c2);
    assert_eq!(store.sim(c).unwrap().unwrap().carrier, Carrier::ChinaUnicom);
    assert!(store
        .upsert_sim(&SimIdentity::default(), "/dev/ttyUSB7", t(6))
        .is_err());

    let slots = store.sim_slots(t(10), Quota::default()).unwrap();
    let slot_a = slots.iter().find(|s| s.id == a).unwrap();
    assert!(!slot_a.ready, "not on a port");
    assert_eq!(slot_a.sends, vec![t(1)]);
}

#[test]
fn inbound_dedupe_and_reassembly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let part = |seq: u8, text: &str| InboundPart {
        sim: Some(a),
        sender: "+8613912345678".into(),
        text: text.into(),
        concat: Some(Concat {
            reference: 0x2A,
            total: 3,
            seq,
        }),
        scts: Some(t(0)),
        raw_pdu: format!("AA{seq:02X}"),
    };
    let first = store.store_inbound(&part(2, "二"), t(1)).unwrap();
    let InboundOutcome::Partial(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        store.store_inbound(&part(2, "二"), t(2)).unwrap(),
        InboundOutcome::Duplicate(id)
    );
    assert_eq!(
        store.store_inbound(&part(3, "三"), t(3)).unwrap(),
        InboundOutcome::Partial(id)
    );
    assert!(store.inbox(&InboxQuery::default()).unwrap().is_empty());
    assert_eq!(
        store.store_inbound(&part(1, "一"), t(4)).unwrap(),
        InboundOutcome::Complete(id)
    );
    assert_eq!(
        store.store_inbound(&part(1, "一"), t(5)).unwrap(),
        InboundOutcome::Duplicate(id)
    );
    drop(store);

    let mut store = open(&dir);
    let inbox = store.inbox(&InboxQuery::default()).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].text, "一二三");
    assert_eq!(inbox[0].parts_received, 3);
    assert!(inbox[0].complete);

    // Same reference reused later for another message: a new message, not a duplicate.
    let again = store.store_inbound(&part(1, "再"), t(100)).unwrap();
    assert!(matches!(again, InboundOutcome::Partial(other) if other != id));

    // Unconcatenated: the same raw PDU twice is stored once.
    let single = InboundPart {
        sim: Some(a),
        sender: "10086".into(),
        text: "余额".into(),
        concat: None,
        scts: None,
        raw_pdu: "0123".into(),
    };
    let one = store.store_inbound(&single, t(200)).unwrap();
    let InboundOutcome::Complete(sid) = one else {
        panic!("{one:?}")
    };
    assert_eq!(
        store.store_inbound(&single, t(201)).unwrap(),
        InboundOutcome::Duplicate(sid)
    );
    let bad = InboundPart {
        concat: Some(Concat {
            reference: 1,
            total: 2,
            seq: 3,
        }),
        ..single
    };
    assert!(store.store_inbound(&bad, t(202)).is_err());
}

#[test]
fn scheduler_and_store_agree_end_to_end() {
    // The runner's loop in miniature: plan from the store's view, claim, mark sent.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let b = sim(&mut store, "8986002", "/dev/ttyUSB1");
    let ids = store.accept(&[msg(2), msg(1), msg(1)], t(0)).unwrap();
    let mut now = t(0);
    for _ in 0..20 {
        let slots = store.sim_slots(now, Quota::default()).unwrap();
        let plan = scheduler::plan(&slots, &store.due_parts(100, now).unwrap(), now);
        for asg in &plan.assignments {
            store.claim(asg.part, asg.sim, now).unwrap();
            store.mark_sent(asg.part, 1, now).unwrap();
        }
        // As the runner does: the plan's wake-up or the store's, whichever comes first.
        let wake = match (plan.wake_at, store.next_wake_at(now).unwrap()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match wake {
            Some(w) => now = w,
            None if plan.assignments.is_empty() => break,
            None => {}
        }
    }
    for id in &ids {
        assert_eq!(state(&store, *id), MessageState::Sent);
    }
    let two = store.message(ids[0]).unwrap().unwrap();
    assert_eq!(two.parts[0].sim, two.parts[1].sim);
    assert!([Some(a), Some(b)].contains(&two.parts[0].sim));
}

#[test]
fn operator_settles_unknown_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let ids = store.accept(&[msg(1), msg(1)], t(0)).unwrap();
    let p0 = part_ids(&store, ids[0])[0];
    let p1 = part_ids(&store, ids[1])[0];
    store.claim(p0, a, t(1)).unwrap();
    store.claim(p1, a, t(5)).unwrap();
    drop(store);
    let mut store = open(&dir);
    assert_eq!(store.recover_after_crash(t(9)).unwrap(), vec![p0, p1]);
    store.settle_unknown(p0, Settlement::Sent, t(10)).unwrap();
    assert_eq!(state(&store, ids[0]), MessageState::Sent);
    store
        .settle_unknown(p1, Settlement::NotSent, t(10))
        .unwrap();
    assert_eq!(state(&store, ids[1]), MessageState::Failed);
    assert!(store.settle_unknown(p1, Settlement::Sent, t(11)).is_err());
    assert_eq!(store.retry(ids[1], t(12)).unwrap(), 1);
    assert_eq!(state(&store, ids[1]), MessageState::Queued);
}

#[test]
fn list_messages_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut other = msg(1);
    other.account = Some("globex".into());
    let ids = store
        .accept(&[msg(1), other, msg(1), msg(1)], t(0))
        .unwrap();
    store.cancel(ids[3], t(1)).unwrap();
    let all = store.list_messages(&MessageQuery::default()).unwrap();
    assert_eq!(
        all.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[3], ids[2], ids[1], ids[0]]
    );
    let acme_queued = store
        .list_messages(&MessageQuery {
            state: Some(MessageState::Queued),
            account: Some("acme".into()),
            before: None,
            limit: 10,
            unknown_parts: None,
        })
        .unwrap();
    assert_eq!(
        acme_queued.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[2], ids[0]]
    );
    let page = store
        .list_messages(&MessageQuery {
            before: Some(ids[2]),
            limit: 1,
            ..MessageQuery::default()
        })
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, ids[1]);
    assert_eq!(
        store.counts_by_state().unwrap(),
        vec![(MessageState::Queued, 3), (MessageState::Cancelled, 1)]
    );
}

#[test]
fn sim_problems_rest_at_once_message_faults_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let ids = store.accept(&[msg(1), msg(1)], t(0)).unwrap();
    let p0 = part_ids(&store, ids[0])[0];
    store.claim(p0, a, t(1)).unwrap();
    store
        .mark_failed(
            p0,
            "+CMS ERROR: 304",
            FailureKind::PermanentForMessage,
            t(2),
        )
        .unwrap();
    let rec = store.sim(a).unwrap().unwrap();
    assert_eq!(rec.consecutive_errors, 0);
    assert_eq!(rec.rested_until, None);
    let p1 = part_ids(&store, ids[1])[0];
    store.claim(p1, a, t(3)).unwrap();
    store
        .mark_failed(p1, "+CMS ERROR: 310", FailureKind::SimProblem, t(4))
        .unwrap();
    let rec = store.sim(a).unwrap().unwrap();
    assert_eq!(rec.rested_until, Some(t(4) + SignedDuration::from_mins(5)));
    let slots = store.sim_slots(t(5), Quota::default()).unwrap();
    let plan = scheduler::plan(&slots, &store.due_parts(10, t(5)).unwrap(), t(5));
    assert!(plan.assignments.is_empty(), "resting SIM gets nothing");
}

#[test]
fn a_part_failing_after_its_message_was_cancelled_is_not_requeued() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let id = store.accept(&[msg(2)], t(0)).unwrap()[0];
    let parts = part_ids(&store, id);
    store.claim(parts[0], a, t(1)).unwrap();
    let out = store.cancel(id, t(2)).unwrap();
    assert_eq!(out.cancelled_parts, 1);
    let failed = store
        .mark_failed(parts[0], "timeout", FailureKind::TransientForModem, t(3))
        .unwrap();
    assert_eq!(failed, FailOutcome::Failed);
    assert_eq!(state(&store, id), MessageState::Cancelled);
    assert!(store.due_parts(10, t(3)).unwrap().is_empty());
    // Review release only applies to held messages.
    assert!(store
        .transaction(|tx| smsgate::store::release_from_review(tx, id, t(4)))
        .is_err());
}

/// What the API's settle and retry call: every unknown part of the message settled in one
/// transaction with an audit record naming the operator; settled as not sent, the message's
/// later parts fail with it (none stays queued, its credit reserved, in a failed message); a
/// message with nothing unknown is refused and nothing is written.
#[test]
fn operator_settle_and_retry_are_audited_and_refused_when_nothing_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let ids = store.accept(&[msg(2), msg(1)], t(0)).unwrap();
    let two = part_ids(&store, ids[0]);
    let one = part_ids(&store, ids[1])[0];
    store.claim(two[0], a, t(1)).unwrap();
    store.claim(one, a, t(1)).unwrap();
    drop(store);
    let mut store = open(&dir);
    store.recover_after_crash(t(2)).unwrap();
    let unknown = MessageQuery {
        unknown_parts: Some(true),
        ..MessageQuery::default()
    };
    let listed: Vec<_> = store
        .list_messages(&unknown)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, vec![ids[1], ids[0]]);
    let records = |store: &mut smsgate::store::Store| {
        store
            .transaction(|tx| {
                smsgate::store::audit::all_records(tx)
                    .map_err(|e| StoreError::Contract(e.to_string()))
            })
            .unwrap()
    };
    let before = records(&mut store).len();

    let actor = "admin:root (uid 0)";
    assert_eq!(
        store
            .operator_settle(ids[0], Settlement::NotSent, actor, t(3))
            .unwrap(),
        1
    );
    let view = store.message(ids[0]).unwrap().unwrap();
    assert_eq!(view.summary.state, MessageState::Failed);
    assert_eq!(view.parts[0].state, PartState::Failed);
    assert_eq!(view.parts[1].state, PartState::Failed, "its later part too");
    assert_eq!(
        store
            .operator_settle(ids[1], Settlement::Sent, actor, t(3))
            .unwrap(),
        1
    );
    assert_eq!(state(&store, ids[1]), MessageState::Sent);
    assert!(store.list_messages(&unknown).unwrap().is_empty());

    // Nothing unknown: refused, clearly, and nothing written.
    let err = store
        .operator_settle(ids[1], Settlement::NotSent, actor, t(4))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("has no unknown part to settle (it is sent)"),
        "{err}"
    );
    let err = store.operator_retry(ids[1], actor, t(4)).unwrap_err();
    assert!(
        err.to_string().contains("no unknown or failed part"),
        "{err}"
    );
    // The failed message is retried, both parts queued again.
    assert_eq!(store.operator_retry(ids[0], actor, t(5)).unwrap(), 2);
    assert_eq!(state(&store, ids[0]), MessageState::Queued);

    let ops: Vec<(String, String, Option<i64>)> = records(&mut store)[before..]
        .iter()
        .filter(|r| r.entry.actor == actor)
        .map(|r| {
            (
                r.entry.event.clone(),
                r.entry.actor.clone(),
                r.entry.message_id,
            )
        })
        .collect();
    let expected: Vec<(String, String, Option<i64>)> = [
        ("settled", ids[0]),
        ("settled", ids[1]),
        ("retried", ids[0]),
    ]
    .iter()
    .map(|(e, id)| (e.to_string(), actor.to_string(), Some(id.0)))
    .collect();
    assert_eq!(ops, expected);
}

// Regression tests for bugs found by tests/store_props.rs.

#[test]
fn mark_sent_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let p = part_ids(&store, id)[0];
    store.claim(p, a, t(1)).unwrap();
    store.mark_sent(p, 5, t(2)).unwrap();
    assert!(matches!(
        store.mark_sent(p, 6, t(3)),
        Err(StoreError::BadPartTransition { .. })
    ));
    assert_eq!(store.message(id).unwrap().unwrap().parts[0].tp_mr, Some(5));
}

#[test]
fn failed_delivery_report_stops_the_unsent_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let id = store.accept(&[msg(2)], t(0)).unwrap()[0];
    let parts = part_ids(&store, id);
    store.claim(parts[0], a, t(1)).unwrap();
    store.mark_sent(parts[0], 9, t(2)).unwrap();
    let report = StatusReportIn {
        sim: a,
        tp_mr: 9,
        recipient: RCPT.into(),
        status: 0x41,
        raw_pdu: "00".into(),
    };
    store.apply_status_report(&report, t(3)).unwrap();
    let view = store.message(id).unwrap().unwrap();
    assert_eq!(view.summary.state, MessageState::Failed);
    assert_eq!(view.parts[1].state, PartState::Failed);
    assert!(store.due_parts(10, t(3)).unwrap().is_empty());
}

#[test]
fn retry_after_the_deadline_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = sim(&mut store, "8986001", "/dev/ttyUSB0");
    let mut m = msg(2);
    m.deadline = Some(t(10));
    let id = store.accept(&[m], t(0)).unwrap()[0];
    let parts = part_ids(&store, id);
    store.claim(parts[0], a, t(1)).unwrap();
    store.expire(t(20)).unwrap();
    store
        .mark_failed(
            parts[0],
            "+CMS ERROR: 21",
            FailureKind::PermanentForMessage,
            t(21),
        )
        .unwrap();
    assert!(matches!(
        store.retry(id, t(22)),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(state(&store, id), MessageState::Failed);
}

// ---------------------------------------------------------------------------------------------
// Issue 8: unknown parts settled without an operator, and reports that come early.

fn report(sim: SimId, mr: u8, status: u8) -> StatusReportIn {
    StatusReportIn {
        sim,
        tp_mr: mr,
        recipient: RCPT.trim_start_matches('+').into(),
        status,
        raw_pdu: "00".into(),
    }
}

fn part_state_of(store: &Store, id: MessageId) -> PartState {
    store.message(id).unwrap().unwrap().parts[0].state
}

#[test]
fn a_status_report_settles_an_unknown_part_of_its_sim_and_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let s = sim(&mut store, "89860000000000000001", "/dev/gsm/a");
    let other = sim(&mut store, "89860000000000000002", "/dev/gsm/b");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let part = part_ids(&store, id)[0];
    store.claim(part, s, t(1)).unwrap();
    store
        .mark_unknown(part, "port gone after the PDU", t(2))
        .unwrap();
    // A report from another SIM settles nothing.
    assert_eq!(
        store
            .apply_status_report(&report(other, 9, 0), t(3))
            .unwrap(),
        ReportOutcome::Unmatched
    );
    assert_eq!(part_state_of(&store, id), PartState::Unknown);
    // The SIM's report for that recipient, inside the window: sent, then delivered.
    let out = store.apply_status_report(&report(s, 9, 0), t(4)).unwrap();
    assert!(matches!(out, ReportOutcome::Delivered { .. }), "{out:?}");
    assert_eq!(part_state_of(&store, id), PartState::Delivered);
    assert_eq!(state(&store, id), MessageState::Delivered);
}

#[test]
fn a_report_outside_the_settle_window_leaves_the_unknown_part_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.set_settle_window(SignedDuration::from_mins(10));
    let s = sim(&mut store, "89860000000000000001", "/dev/gsm/a");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let part = part_ids(&store, id)[0];
    store.claim(part, s, t(1)).unwrap();
    store.mark_unknown(part, "no answer", t(2)).unwrap();
    let late = t(1) + SignedDuration::from_mins(11);
    assert_eq!(
        store.apply_status_report(&report(s, 9, 0), late).unwrap(),
        ReportOutcome::Unmatched
    );
    assert_eq!(part_state_of(&store, id), PartState::Unknown);
}

#[test]
fn a_late_cmgs_reference_settles_the_last_unknown_part_of_the_sim() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let s = sim(&mut store, "89860000000000000001", "/dev/gsm/a");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let part = part_ids(&store, id)[0];
    store.claim(part, s, t(1)).unwrap();
    store.mark_unknown(part, "no answer in time", t(2)).unwrap();
    assert_eq!(
        store.settle_late_reference(s, 17, t(3)).unwrap(),
        Some(part)
    );
    let v = store.message(id).unwrap().unwrap();
    assert_eq!(v.parts[0].state, PartState::Sent);
    assert_eq!(v.parts[0].tp_mr, Some(17));
    // Its report now matches by reference.
    let out = store.apply_status_report(&report(s, 17, 0), t(5)).unwrap();
    assert!(matches!(out, ReportOutcome::Delivered { .. }), "{out:?}");
    // Nothing left to settle.
    assert_eq!(store.settle_late_reference(s, 18, t(6)).unwrap(), None);
}

#[test]
fn a_report_that_comes_before_the_outcome_is_applied_when_it_is_written() {
    // Found by the full-disk e2e test: the outcome waited for disk space while the report
    // came; the report matched nothing and the part stayed `sent` for ever.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let s = sim(&mut store, "89860000000000000001", "/dev/gsm/a");
    let id = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let part = part_ids(&store, id)[0];
    store.claim(part, s, t(1)).unwrap();
    assert_eq!(
        store.apply_status_report(&report(s, 7, 0), t(2)).unwrap(),
        ReportOutcome::Unmatched
    );
    store.mark_sent(part, 7, t(1)).unwrap();
    assert_eq!(part_state_of(&store, id), PartState::Delivered);
    assert_eq!(state(&store, id), MessageState::Delivered);
}

#[test]
fn only_ambiguous_parts_marked_for_retry_are_requeued_after_the_window() {
    use smsgate::store::SendOutcome;
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let s = sim(&mut store, "89860000000000000001", "/dev/gsm/a");
    let ids = store.accept(&[msg(1), msg(1)], t(0)).unwrap();
    let held = part_ids(&store, ids[0])[0];
    let retried = part_ids(&store, ids[1])[0];
    store.claim(held, s, t(1)).unwrap();
    store.claim(retried, s, t(1)).unwrap();
    store
        .record_outcomes(&[
            (
                SendOutcome::Unknown {
                    part: held,
                    error: "port gone after the PDU".into(),
                    retry_at: None,
                },
                t(2),
            ),
            (
                SendOutcome::Unknown {
                    part: retried,
                    error: "ambiguous answer: +CMS ERROR: 332".into(),
                    retry_at: Some(t(60)),
                },
                t(2),
            ),
        ])
        .unwrap();
    assert_eq!(store.next_unknown_retry().unwrap(), Some(t(60)));
    assert!(store.requeue_unknown_due(t(59)).unwrap().is_empty());
    assert_eq!(store.requeue_unknown_due(t(60)).unwrap(), vec![retried]);
    assert_eq!(part_state_of(&store, ids[0]), PartState::Unknown);
    assert_eq!(part_state_of(&store, ids[1]), PartState::Queued);
    assert_eq!(store.next_unknown_retry().unwrap(), None);
    // A crash-recovered part never gets a retry time, whatever its old back-off said.
    assert!(store.requeue_unknown_due(t(100_000)).unwrap().is_empty());
}

#[test]
fn an_old_report_of_a_sent_part_never_settles_a_newer_unknown_part() {
    // Found by the ledger model: a report for a part sent over a week ago (outside the match
    // window) settled a newer unknown part to the same recipient on the same SIM.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let s = sim(&mut store, "89860000000000000001", "/dev/gsm/a");
    let old = store.accept(&[msg(1)], t(0)).unwrap()[0];
    let old_part = part_ids(&store, old)[0];
    store.claim(old_part, s, t(1)).unwrap();
    store.mark_sent(old_part, 5, t(2)).unwrap();
    let week = SignedDuration::from_hours(169);
    let new = store.accept(&[msg(1)], t(3) + week).unwrap()[0];
    let new_part = part_ids(&store, new)[0];
    store.claim(new_part, s, t(4) + week).unwrap();
    store
        .mark_unknown(new_part, "port gone after the PDU", t(5) + week)
        .unwrap();
    assert_eq!(
        store
            .apply_status_report(&report(s, 5, 0x46), t(6) + week)
            .unwrap(),
        ReportOutcome::Unmatched
    );
    assert_eq!(part_state_of(&store, new), PartState::Unknown);
}
