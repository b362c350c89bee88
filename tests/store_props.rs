//! Random sequences of store operations (accept, claim, sent, failed, status report, cancel,
//! retry, expire, crash-and-recover) on a real SQLite file, checking after every step that the
//! store never lets a part be claimed unless it was queued, never leaves a part `sending` across
//! a crash, and keeps each message's state consistent with its parts.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use smsgate::number::Carrier;
use smsgate::scheduler::FailureKind;
use smsgate::store::{
    InitialState, MessageId, MessageState, NewMessage, NewPart, PartState, SimIdentity,
    StatusReportIn, Store,
};

// Vector "ucs2-submit-china" of /work/shared/vectors/pdu.json (AT+CMGS=21).
const PDU: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";

#[derive(Debug, Clone)]
enum Op {
    Accept {
        parts: usize,
        deadline_s: Option<i64>,
    },
    Claim {
        part: usize,
        sim: usize,
    },
    Sent {
        part: usize,
        mr: u8,
    },
    Failed {
        part: usize,
        kind: u8,
    },
    Report {
        sim: usize,
        mr: u8,
        status: u8,
    },
    Cancel {
        msg: usize,
    },
    Retry {
        msg: usize,
    },
    Expire,
    Crash,
    Wait {
        s: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1usize..=3, proptest::option::of(0i64..600))
            .prop_map(|(parts, deadline_s)| Op::Accept { parts, deadline_s }),
        4 => (0usize..12, 0usize..2).prop_map(|(part, sim)| Op::Claim { part, sim }),
        3 => (0usize..12, 0u8..4).prop_map(|(part, mr)| Op::Sent { part, mr }),
        2 => (0usize..12, 0u8..3).prop_map(|(part, kind)| Op::Failed { part, kind }),
        2 => (0usize..2, 0u8..4, prop_oneof![Just(0u8), Just(0x20), Just(0x41)])
            .prop_map(|(sim, mr, status)| Op::Report { sim, mr, status }),
        1 => (0usize..6).prop_map(|msg| Op::Cancel { msg }),
        1 => (0usize..6).prop_map(|msg| Op::Retry { msg }),
        1 => Just(Op::Expire),
        1 => Just(Op::Crash),
        2 => (1i64..120).prop_map(|s| Op::Wait { s }),
    ]
}

fn new_message(parts: usize, deadline: Option<Timestamp>) -> NewMessage {
    NewMessage {
        account: None,
        recipient: "+8613910199192".into(),
        recipient_carrier: Carrier::ChinaMobile,
        text: "您好！".into(),
        encoding: "ucs2".into(),
        priority: 0,
        not_before: None,
        deadline,
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

fn check_consistency(store: &Store, messages: &[MessageId]) -> Result<(), TestCaseError> {
    for id in messages {
        let v = store.message(*id).unwrap().unwrap();
        let parts: Vec<PartState> = v.parts.iter().map(|p| p.state).collect();
        let m = v.summary.state;
        match m {
            MessageState::Queued | MessageState::Scheduled => {
                prop_assert!(
                    parts.iter().all(|p| *p == PartState::Queued),
                    "{m}: {parts:?}"
                )
            }
            MessageState::Delivered => {
                prop_assert!(
                    parts.iter().all(|p| *p == PartState::Delivered),
                    "{parts:?}"
                )
            }
            MessageState::Sent => {
                prop_assert!(parts.iter().all(|p| p.is_sent()), "{m}: {parts:?}")
            }
            _ => {}
        }
        if !m.is_sendable() {
            prop_assert!(
                !parts.contains(&PartState::Queued),
                "{m} message with queued parts {parts:?}"
            );
        }
        for p in &v.parts {
            if p.state.is_sent() {
                prop_assert!(p.sent_at.is_some() && p.tp_mr.is_some() && p.sim.is_some());
            }
            if p.state == PartState::Sending {
                prop_assert!(p.sim.is_some());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("props.db");
        let mut store = Store::open(&path).unwrap();
        let mut now = Timestamp::from_second(1_764_000_000).unwrap();
        let sims: Vec<_> = ["89860001", "89860002"]
            .iter()
            .enumerate()
            .map(|(i, iccid)| {
                store
                    .upsert_sim(
                        &SimIdentity { iccid: Some((*iccid).into()), ..Default::default() },
                        &format!("/dev/ttyUSB{i}"),
                        now,
                    )
                    .unwrap()
            })
            .collect();
        let mut messages: Vec<MessageId> = Vec::new();
        let mut parts = Vec::new();
        for op in ops {
            match op {
                Op::Accept { parts: n, deadline_s } => {
                    let d = deadline_s.map(|s| now + SignedDuration::from_secs(s));
                    let id = store.accept(&[new_message(n, d)], now).unwrap()[0];
                    messages.push(id);
                    for p in store.message(id).unwrap().unwrap().parts {
                        parts.push(p.id);
                    }
                }
                Op::Claim { part, sim } => {
                    let Some(&p) = parts.get(part) else { continue };
                    let before = state_of(&store, p);
                    if store.claim(p, sims[sim], now).is_ok() {
                        prop_assert_eq!(before, PartState::Queued, "claimed a {} part", before);
                        prop_assert_eq!(state_of(&store, p), PartState::Sending);
                    }
                }
                Op::Sent { part, mr } => {
                    let Some(&p) = parts.get(part) else { continue };
                    let before = state_of(&store, p);
                    let ok = store.mark_sent(p, mr, now).is_ok();
                    prop_assert_eq!(ok, before == PartState::Sending);
                }
                Op::Failed { part, kind } => {
                    let Some(&p) = parts.get(part) else { continue };
                    let kind = [
                        FailureKind::PermanentForMessage,
                        FailureKind::TransientForModem,
                        FailureKind::SimProblem,
                    ][kind as usize];
                    let before = state_of(&store, p);
                    let ok = store.mark_failed(p, "+CMS ERROR: 500", kind, now).is_ok();
                    prop_assert_eq!(ok, before == PartState::Sending);
                }
                Op::Report { sim, mr, status } => {
                    let report = StatusReportIn {
                        sim: sims[sim],
                        tp_mr: mr,
                        recipient: "8613910199192".into(),
                        status,
                        raw_pdu: "00".into(),
                    };
                    store.apply_status_report(&report, now).unwrap();
                }
                Op::Cancel { msg } => {
                    if let Some(&m) = messages.get(msg) {
                        let _ = store.cancel(m, now);
                    }
                }
                Op::Retry { msg } => {
                    if let Some(&m) = messages.get(msg) {
                        let _ = store.retry(m, now);
                    }
                }
                Op::Expire => {
                    store.expire(now).unwrap();
                }
                Op::Crash => {
                    drop(store);
                    store = Store::open(&path).unwrap();
                    let recovered = store.recover_after_crash(now).unwrap();
                    for p in &parts {
                        prop_assert_ne!(state_of(&store, *p), PartState::Sending);
                    }
                    for p in recovered {
                        prop_assert_eq!(state_of(&store, p), PartState::Unknown);
                    }
                }
                Op::Wait { s } => now += SignedDuration::from_secs(s),
            }
            check_consistency(&store, &messages)?;
        }
    }
}

fn state_of(store: &Store, part: smsgate::store::PartId) -> PartState {
    for s in store
        .list_messages(&smsgate::store::MessageQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap()
    {
        let v = store.message(s.id).unwrap().unwrap();
        if let Some(p) = v.parts.iter().find(|p| p.id == part) {
            return p.state;
        }
    }
    panic!("part {part:?} not found")
}
