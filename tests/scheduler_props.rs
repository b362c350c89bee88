//! Property tests of the scheduler over random simulated days: a tiny discrete-event runner
//! applies `scheduler::plan` to random SIMs (quotas, carriers) and random message arrivals with
//! random send durations and transient failures, then checks the invariants: no quota window
//! or minimum interval is ever exceeded, the parts of one message never split across SIMs nor
//! go out of order, no part is assigned twice or while in flight, and every part is eventually
//! sent when capacity allows.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use smsgate::number::Carrier;
use smsgate::scheduler::{plan, DuePart, Quota, SimSlot};
use smsgate::store::{MessageId, PartId, SimId};

const CARRIERS: [Carrier; 3] = [
    Carrier::ChinaMobile,
    Carrier::ChinaUnicom,
    Carrier::ChinaTelecom,
];

#[derive(Debug, Clone)]
struct SimSpec {
    carrier: usize,
    per_minute: u32,
    per_hour: u32,
    per_day: u32,
    min_interval_s: i64,
}

#[derive(Debug, Clone)]
struct MsgSpec {
    arrival_s: i64,
    parts: u32,
    priority: i32,
    carrier: usize,
    delay_s: Option<i64>,
    /// Which attempt numbers of which part fail transiently (part index, first attempt fails).
    fail_first: Vec<bool>,
    send_s: i64,
}

fn sim_spec() -> impl Strategy<Value = SimSpec> {
    (0usize..3, 1u32..=10, 5u32..=60, 20u32..=150, 0i64..=10).prop_map(
        |(carrier, per_minute, per_hour, per_day, min_interval_s)| SimSpec {
            carrier,
            per_minute,
            per_hour,
            per_day,
            min_interval_s,
        },
    )
}

fn msg_spec() -> impl Strategy<Value = MsgSpec> {
    (
        0i64..86_400,
        1u32..=3,
        0i32..3,
        0usize..3,
        proptest::option::weighted(0.2, 0i64..3_600),
        proptest::collection::vec(proptest::bool::weighted(0.15), 3),
        2i64..=10,
    )
        .prop_map(
            |(arrival_s, parts, priority, carrier, delay_s, fail_first, send_s)| MsgSpec {
                arrival_s,
                parts,
                priority,
                carrier,
                delay_s,
                fail_first,
                send_s,
            },
        )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PState {
    Queued,
    InFlight {
        sim: usize,
        done: Timestamp,
        fails: bool,
    },
    Sent,
}

struct Part {
    message: usize,
    seq: u32,
    state: PState,
    attempts: u32,
    next_attempt_at: Option<Timestamp>,
    avoid: Vec<SimId>,
    sent: Option<(Timestamp, usize)>,
}

fn t0() -> Timestamp {
    Timestamp::from_second(1_764_000_000).unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

struct Outcome {
    sims: Vec<SimSlot>,
    parts: Vec<Part>,
    msgs: Vec<MsgSpec>,
}

fn simulate(sim_specs: &[SimSpec], msgs: &[MsgSpec]) -> Result<Outcome, TestCaseError> {
    let mut sims: Vec<SimSlot> = sim_specs
        .iter()
        .enumerate()
        .map(|(i, s)| SimSlot {
            id: SimId(i as i64 + 1),
            carrier: CARRIERS[s.carrier],
            ready: true,
            busy: false,
            rested_until: None,
            last_used: None,
            sends: Vec::new(),
            quota: Quota {
                per_minute: s.per_minute,
                per_hour: s.per_hour,
                per_day: s.per_day,
                min_interval: secs(s.min_interval_s),
            },
        })
        .collect();
    let mut parts: Vec<Part> = Vec::new();
    for (m, spec) in msgs.iter().enumerate() {
        for seq in 1..=spec.parts {
            parts.push(Part {
                message: m,
                seq,
                state: PState::Queued,
                attempts: 0,
                next_attempt_at: None,
                avoid: Vec::new(),
                sent: None,
            });
        }
    }
    let arrival = |m: usize| t0() + secs(msgs[m].arrival_s);
    let mut now = t0();
    for _step in 0..200_000 {
        // Finish sends that are done.
        for p in parts.iter_mut() {
            if let PState::InFlight { sim, done, fails } = p.state {
                if done <= now {
                    sims[sim].busy = false;
                    if fails {
                        p.state = PState::Queued;
                        p.next_attempt_at = Some(done + secs(30));
                        p.avoid.push(sims[sim].id);
                    } else {
                        p.state = PState::Sent;
                        p.sent = Some((done, sim));
                    }
                }
            }
        }
        let due: Vec<DuePart> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PState::Queued && arrival(p.message) <= now)
            .map(|(i, p)| {
                let spec = &msgs[p.message];
                let prev = parts
                    .iter()
                    .find(|q| q.message == p.message && q.seq + 1 == p.seq);
                DuePart {
                    part: PartId(i as i64),
                    message: MessageId(p.message as i64),
                    seq: p.seq,
                    total: spec.parts,
                    recipient_carrier: CARRIERS[spec.carrier],
                    priority: spec.priority,
                    created_at: arrival(p.message),
                    not_before: spec.delay_s.map(|d| arrival(p.message) + secs(d)),
                    deadline: None,
                    next_attempt_at: p.next_attempt_at,
                    avoid_sims: p.avoid.clone(),
                    pinned_sim: prev.and_then(|q| q.sent).map(|(_, s)| sims[s].id),
                    previous_sent: prev.is_none_or(|q| q.state == PState::Sent),
                }
            })
            .collect();
        let decision = plan(&sims, &due, now);
        prop_assert!(decision.expired.is_empty());
        let mut used = Vec::new();
        for a in &decision.assignments {
            let i = a.part.0 as usize;
            let s = (a.sim.0 - 1) as usize;
            prop_assert!(!used.contains(&s), "SIM given two parts in one plan");
            used.push(s);
            prop_assert_eq!(parts[i].state, PState::Queued, "part assigned twice");
            prop_assert!(!sims[s].busy, "busy SIM assigned");
            let spec = &msgs[parts[i].message];
            parts[i].attempts += 1;
            let fails = parts[i].attempts == 1
                && spec
                    .fail_first
                    .get(parts[i].seq as usize - 1)
                    .copied()
                    .unwrap_or(false);
            parts[i].state = PState::InFlight {
                sim: s,
                done: now + secs(spec.send_s),
                fails,
            };
            sims[s].busy = true;
            sims[s].sends.push(now);
            sims[s].last_used = Some(now);
        }
        if parts.iter().all(|p| p.state == PState::Sent) {
            return Ok(Outcome {
                sims,
                parts,
                msgs: msgs.to_vec(),
            });
        }
        // Next event: a send finishing, an arrival, or the scheduler's own wake-up.
        let mut next: Option<Timestamp> = decision.wake_at;
        let mut consider = |t: Timestamp| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for p in &parts {
            if let PState::InFlight { done, .. } = p.state {
                consider(done);
            }
            if p.state == PState::Queued {
                consider(arrival(p.message));
            }
        }
        match next {
            Some(n) => now = n,
            None => {
                return Err(TestCaseError::fail(format!(
                    "stuck at {now} with parts queued and nothing to wake for"
                )))
            }
        }
    }
    Err(TestCaseError::fail("simulation did not finish"))
}

fn check(out: &Outcome) -> Result<(), TestCaseError> {
    for s in &out.sims {
        let sends = &s.sends;
        for w in sends.windows(2) {
            prop_assert!(w[1] - w[0] >= s.quota.min_interval, "min interval broken");
        }
        for (window, limit) in s.quota.windows() {
            let limit = limit as usize;
            for i in 0..sends.len().saturating_sub(limit) {
                prop_assert!(
                    sends[i + limit] - sends[i] >= window,
                    "SIM {:?}: {} sends within {:?}",
                    s.id,
                    limit + 1,
                    window
                );
            }
        }
    }
    for (m, _) in out.msgs.iter().enumerate() {
        let mut mine: Vec<&Part> = out.parts.iter().filter(|p| p.message == m).collect();
        mine.sort_by_key(|p| p.seq);
        let sims: Vec<usize> = mine.iter().filter_map(|p| p.sent.map(|x| x.1)).collect();
        prop_assert!(sims.windows(2).all(|w| w[0] == w[1]), "message split");
        let times: Vec<Timestamp> = mine.iter().filter_map(|p| p.sent.map(|x| x.0)).collect();
        prop_assert!(times.windows(2).all(|w| w[0] < w[1]), "out of order");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_random_day_keeps_every_rule(
        sims in proptest::collection::vec(sim_spec(), 1..=4),
        msgs in proptest::collection::vec(msg_spec(), 0..=60),
    ) {
        let out = simulate(&sims, &msgs)?;
        check(&out)?;
        // Every part got out (simulate returns only when all are sent).
        prop_assert!(out.parts.iter().all(|p| p.sent.is_some()));
    }
}

#[test]
fn a_burst_larger_than_the_quota_waits_and_respects_it() {
    // One SIM, 10/min, 200/h: 250 single-part messages arriving at once take at least an hour
    // and a bit; the quota checker sees every send.
    let sims = vec![SimSpec {
        carrier: 0,
        per_minute: 10,
        per_hour: 200,
        per_day: 1000,
        min_interval_s: 3,
    }];
    let msgs: Vec<MsgSpec> = (0..250)
        .map(|_| MsgSpec {
            arrival_s: 0,
            parts: 1,
            priority: 0,
            carrier: 0,
            delay_s: None,
            fail_first: vec![false; 3],
            send_s: 3,
        })
        .collect();
    let out = simulate(&sims, &msgs).unwrap();
    check(&out).unwrap();
    let sends = &out.sims[0].sends;
    assert_eq!(sends.len(), 250);
    assert!(sends[200] - sends[0] >= SignedDuration::from_hours(1));
}

/// A random instant's state: SIMs in any condition and parts in any condition.
fn snapshot() -> impl Strategy<Value = (Vec<SimSlot>, Vec<DuePart>)> {
    let sim = (
        0usize..3,
        proptest::bool::weighted(0.8),
        proptest::bool::weighted(0.3),
        proptest::option::weighted(0.2, -100i64..100),
        proptest::collection::vec(-4000i64..0, 0..15),
        1u32..6,
    );
    let part = (
        0i64..6,
        1u32..=2,
        0usize..3,
        0i32..3,
        -100i64..0,
        proptest::option::weighted(0.2, -50i64..50),
        proptest::option::weighted(0.2, 0i64..4),
    );
    (
        proptest::collection::vec(sim, 1..5),
        proptest::collection::vec(part, 0..12),
    )
        .prop_map(|(sims, parts)| {
            let now = t0();
            let sims = sims
                .into_iter()
                .enumerate()
                .map(|(i, (c, ready, busy, rest, mut sends, per_minute))| {
                    sends.sort();
                    SimSlot {
                        id: SimId(i as i64),
                        carrier: CARRIERS[c],
                        ready,
                        busy,
                        rested_until: rest.map(|r| now + secs(r)),
                        last_used: sends.last().map(|s| now + secs(*s)),
                        sends: sends.iter().map(|s| now + secs(*s)).collect(),
                        quota: Quota {
                            per_minute,
                            per_hour: 10,
                            ..Quota::default()
                        },
                    }
                })
                .collect::<Vec<_>>();
            let mut seen = Vec::new();
            let parts = parts
                .into_iter()
                .enumerate()
                .filter_map(|(i, (m, seq, c, prio, created, next, pin))| {
                    // One part per (message, seq); message-level fields from the first part.
                    if seen.contains(&(m, seq)) {
                        return None;
                    }
                    seen.push((m, seq));
                    Some(DuePart {
                        part: PartId(i as i64),
                        message: MessageId(m),
                        seq,
                        total: 2,
                        recipient_carrier: CARRIERS[c],
                        priority: prio,
                        created_at: now + secs(created),
                        not_before: None,
                        deadline: None,
                        next_attempt_at: next.map(|n| now + secs(n)),
                        avoid_sims: Vec::new(),
                        pinned_sim: pin.map(SimId),
                        previous_sent: seq == 1 || pin.is_some(),
                    })
                })
                .collect::<Vec<_>>();
            (sims, parts)
        })
}

proptest! {
    #[test]
    fn plans_are_work_conserving_and_priority_ordered((sims, parts) in snapshot()) {
        let now = t0();
        let decision = plan(&sims, &parts, now);
        let available = |s: &SimSlot| {
            s.ready && !s.busy && s.rested_until.is_none_or(|r| r <= now)
                && s.quota_opens_at(now) <= now
        };
        let used: Vec<SimId> = decision.assignments.iter().map(|a| a.sim).collect();
        let assigned: Vec<PartId> = decision.assignments.iter().map(|a| a.part).collect();
        let taken_msgs: Vec<MessageId> = decision.assignments.iter().map(|a| a.message).collect();
        for a in &decision.assignments {
            let s = sims.iter().find(|s| s.id == a.sim).unwrap();
            prop_assert!(available(s), "unavailable SIM used");
            let p = parts.iter().find(|p| p.part == a.part).unwrap();
            prop_assert!(p.previous_sent);
            prop_assert!(p.next_attempt_at.is_none_or(|n| n <= now));
            prop_assert!(p.pinned_sim.is_none_or(|pin| pin == a.sim));
        }
        let mut sorted = used.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), used.len(), "a SIM used twice");
        let mut msgs = taken_msgs.clone();
        msgs.sort();
        msgs.dedup();
        prop_assert_eq!(msgs.len(), taken_msgs.len(), "two parts of a message at once");
        // An eligible, unpinned part left waiting means every available SIM got work, and
        // nothing of lower priority was preferred to it.
        for q in &parts {
            let eligible = q.previous_sent
                && q.pinned_sim.is_none()
                && q.next_attempt_at.is_none_or(|n| n <= now)
                && !assigned.contains(&q.part)
                && !taken_msgs.contains(&q.message);
            if !eligible {
                continue;
            }
            for s in sims.iter().filter(|s| available(s)) {
                prop_assert!(used.contains(&s.id), "available SIM idle while a part waits");
            }
            for a in &decision.assignments {
                let p = parts.iter().find(|p| p.part == a.part).unwrap();
                if p.pinned_sim.is_none() {
                    prop_assert!(p.priority >= q.priority, "lower priority went first");
                }
            }
        }
    }
}
