//! The scheduler's pure decisions: given the SIM slots and the due parts at `now`, which part goes
//! to which free SIM now, which messages expired, and when to wake next so the runner sleeps
//! without polling. No I/O, no clock: `now` is an argument, so tests control time.
//!
//! What must always hold: a SIM is given a part only if it is free, ready (healthy and
//! registered), not resting, past its minimum interval and under every rolling quota window
//! (minute, hour, day) counting the send it is about to make; a SIM gets at most one part per
//! plan and a part is assigned at most once; the parts of one concatenated message go to one SIM
//! in order (part n+1 only once part n is sent, on the SIM its earlier parts used), because the
//! handset reassembles by sender number; parts are considered higher priority first, then older
//! first; a part that failed transiently avoids the SIMs that failed it when another SIM can take
//! it. Carrier affinity is a preference, never a reason to leave a part waiting.

pub mod policy;

use jiff::{SignedDuration, Timestamp};

pub use crate::ids::{after, before};
use crate::ids::{MessageId, PartId, SimId};
use crate::number::Carrier;
pub use policy::{FailureDecision, FailureFacts, FailureKind, PartFate, Quota, RetryPolicy};

/// One SIM as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSlot {
    pub id: SimId,
    pub carrier: Carrier,
    /// Healthy and registered on the network.
    pub ready: bool,
    /// A send is in flight on its modem.
    pub busy: bool,
    pub rested_until: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
    /// Start times of this SIM's sends in the last 24 h, ascending (what the quota counts).
    pub sends: Vec<Timestamp>,
    pub quota: Quota,
}

impl SimSlot {
    /// Sends inside the rolling window `(now - window, now]`.
    pub fn sent_within(&self, window: SignedDuration, now: Timestamp) -> usize {
        let from = before(now, window);
        let first = self.sends.partition_point(|t| *t <= from);
        let last = self.sends.partition_point(|t| *t <= now);
        last.saturating_sub(first)
    }

    /// The earliest instant >= `now` at which one more send fits every quota window and the
    /// minimum interval. Rest and busy are not considered here.
    pub fn quota_opens_at(&self, now: Timestamp) -> Timestamp {
        let mut at = now;
        if let Some(last) = self.last_used.max(self.sends.last().copied()) {
            at = at.max(after(last, self.quota.min_interval));
        }
        for (window, limit) in self.quota.windows() {
            let limit = limit as usize;
            if limit == 0 {
                // A zero quota never opens; far future keeps the arithmetic total.
                return Timestamp::MAX;
            }
            let from = before(now, window);
            let start = self.sends.partition_point(|t| *t <= from);
            let inside = self.sends.get(start..).unwrap_or(&[]);
            if inside.len() >= limit {
                // The window admits one more once all but limit-1 of these sends left it.
                if let Some(t) = inside.get(inside.len() - limit) {
                    at = at.max(after(*t, window));
                }
            }
        }
        at
    }

    /// Free and allowed to send now (ready, not busy, not resting, within its quota).
    pub fn available(&self, now: Timestamp) -> bool {
        self.ready
            && !self.busy
            && self.rested_until.is_none_or(|r| r <= now)
            && self.quota_opens_at(now) <= now
    }
}

/// One queued part as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DuePart {
    pub part: PartId,
    pub message: MessageId,
    /// 1-based position in its message.
    pub seq: u32,
    pub total: u32,
    pub recipient_carrier: Carrier,
    pub priority: i32,
    /// When the message was accepted: older first among equal priorities.
    pub created_at: Timestamp,
    pub not_before: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    /// Back-off after a transient failure.
    pub next_attempt_at: Option<Timestamp>,
    /// SIMs that failed this part transiently; avoided when another SIM can take it.
    pub avoid_sims: Vec<SimId>,
    /// The SIM the message's earlier parts went to: a hard constraint.
    pub pinned_sim: Option<SimId>,
    /// Part seq-1 is sent (always true for seq 1).
    pub previous_sent: bool,
}

impl DuePart {
    fn due_at(&self) -> Option<Timestamp> {
        self.not_before.max(self.next_attempt_at)
    }
}

/// A decision: send this part on this SIM now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub part: PartId,
    pub message: MessageId,
    pub sim: SimId,
}

/// The scheduler's answer for one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub assignments: Vec<Assignment>,
    /// Messages with a queued part past its deadline: the runner calls `Store::expire`.
    pub expired: Vec<MessageId>,
    /// When to plan again if nothing else happens (a send finishing or a new message also
    /// wakes the runner). `None`: nothing is waiting on time.
    pub wake_at: Option<Timestamp>,
}

/// Decides what to send now. `parts` may come in any order; `sims` likewise.
pub fn plan(sims: &[SimSlot], parts: &[DuePart], now: Timestamp) -> Plan {
    let mut out = Plan::default();
    let mut order: Vec<&DuePart> = parts.iter().collect();
    order.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.message.cmp(&b.message))
            .then(a.seq.cmp(&b.seq))
    });
    let mut taken_sims: Vec<SimId> = Vec::new();
    let mut taken_messages: Vec<MessageId> = Vec::new();
    let mut wake: Option<Timestamp> = None;
    let mut wake_min = |t: Timestamp| {
        if t > now {
            wake = Some(wake.map_or(t, |w: Timestamp| w.min(t)));
        }
    };

    for part in order {
        if part.deadline.is_some_and(|d| d <= now) {
            if !out.expired.contains(&part.message) {
                out.expired.push(part.message);
            }
            continue;
        }
        if let Some(d) = part.deadline {
            wake_min(d);
        }
        if let Some(t) = part.due_at().filter(|t| *t > now) {
            wake_min(t);
            continue;
        }
        // One part per message per plan: part n+1 waits for part n's +CMGS.
        if !part.previous_sent || taken_messages.contains(&part.message) {
            continue;
        }
        let free: Vec<&SimSlot> = sims
            .iter()
            .filter(|s| !taken_sims.contains(&s.id))
            .filter(|s| part.pinned_sim.is_none_or(|p| p == s.id))
            .collect();
        let available: Vec<&SimSlot> = free.iter().copied().filter(|s| s.available(now)).collect();
        let preferred: Vec<&SimSlot> = available
            .iter()
            .copied()
            .filter(|s| !part.avoid_sims.contains(&s.id))
            .collect();
        // A part that failed on every SIM still goes somewhere rather than stall.
        let pool = if preferred.is_empty() {
            &available
        } else {
            &preferred
        };
        let best = pool.iter().copied().min_by(|a, b| {
            let a_other = a.carrier != part.recipient_carrier;
            let b_other = b.carrier != part.recipient_carrier;
            a_other
                .cmp(&b_other)
                .then(a.last_used.cmp(&b.last_used))
                .then(a.id.cmp(&b.id))
        });
        match best {
            Some(sim) => {
                taken_sims.push(sim.id);
                taken_messages.push(part.message);
                out.assignments.push(Assignment {
                    part: part.part,
                    message: part.message,
                    sim: sim.id,
                });
            }
            None => {
                // Wake when a SIM this part could use opens; busy SIMs wake us by finishing.
                for s in free.iter().filter(|s| s.ready && !s.busy) {
                    let opens = s.quota_opens_at(now);
                    let rest = s.rested_until.unwrap_or(now);
                    let at = opens.max(rest);
                    // A zero quota never opens: nothing to wake for.
                    if at < Timestamp::MAX {
                        wake_min(at);
                    }
                }
            }
        }
    }
    out.wake_at = wake;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn sim(id: i64, carrier: Carrier) -> SimSlot {
        SimSlot {
            id: SimId(id),
            carrier,
            ready: true,
            busy: false,
            rested_until: None,
            last_used: None,
            sends: Vec::new(),
            quota: Quota::default(),
        }
    }

    fn part(id: i64, msg: i64, seq: u32, total: u32) -> DuePart {
        DuePart {
            part: PartId(id),
            message: MessageId(msg),
            seq,
            total,
            recipient_carrier: Carrier::ChinaMobile,
            priority: 0,
            created_at: t(0),
            not_before: None,
            deadline: None,
            next_attempt_at: None,
            avoid_sims: Vec::new(),
            pinned_sim: None,
            previous_sent: seq == 1,
        }
    }

    fn sims_of(p: &Plan) -> Vec<(i64, i64)> {
        p.assignments.iter().map(|a| (a.part.0, a.sim.0)).collect()
    }

    #[test]
    fn same_carrier_preferred_then_least_recently_used() {
        let mut a = sim(1, Carrier::ChinaUnicom);
        a.last_used = None;
        let mut b = sim(2, Carrier::ChinaMobile);
        b.last_used = Some(t(-100));
        let mut c = sim(3, Carrier::ChinaMobile);
        c.last_used = Some(t(-200));
        let p = plan(&[a, b, c], &[part(1, 1, 1, 1)], t(0));
        assert_eq!(sims_of(&p), vec![(1, 3)]);
    }

    #[test]
    fn other_carrier_used_when_preferred_is_busy() {
        let a = sim(1, Carrier::ChinaUnicom);
        let mut b = sim(2, Carrier::ChinaMobile);
        b.busy = true;
        let p = plan(&[a, b], &[part(1, 1, 1, 1)], t(0));
        assert_eq!(sims_of(&p), vec![(1, 1)]);
    }

    #[test]
    fn unready_resting_and_min_interval_block() {
        let mut a = sim(1, Carrier::ChinaMobile);
        a.ready = false;
        let mut b = sim(2, Carrier::ChinaMobile);
        b.rested_until = Some(t(60));
        let mut c = sim(3, Carrier::ChinaMobile);
        c.last_used = Some(t(-1));
        c.sends = vec![t(-1)];
        let p = plan(&[a, b, c], &[part(1, 1, 1, 1)], t(0));
        assert!(p.assignments.is_empty());
        assert_eq!(p.wake_at, Some(t(2)), "min interval of sim 3 ends first");
    }

    #[test]
    fn per_minute_quota_and_its_reopening() {
        let mut a = sim(1, Carrier::ChinaMobile);
        a.sends = (0..10).map(|i| t(-50 + i * 4)).collect();
        a.last_used = a.sends.last().copied();
        let p = plan(std::slice::from_ref(&a), &[part(1, 1, 1, 1)], t(0));
        assert!(p.assignments.is_empty());
        assert_eq!(
            p.wake_at,
            Some(t(10)),
            "oldest send (-50) leaves the minute at +10"
        );
        let p = plan(&[a], &[part(1, 1, 1, 1)], t(10));
        assert_eq!(sims_of(&p), vec![(1, 1)]);
    }

    #[test]
    fn hourly_and_daily_quotas() {
        let mut a = sim(1, Carrier::ChinaMobile);
        a.quota.per_hour = 3;
        a.sends = vec![t(-3000), t(-2000), t(-1000)];
        assert_eq!(a.quota_opens_at(t(0)), t(600));
        a.quota.per_hour = 200;
        a.quota.per_day = 2;
        assert_eq!(a.quota_opens_at(t(0)), t(86_400 - 2000));
    }

    #[test]
    fn priority_then_age() {
        let s = sim(1, Carrier::ChinaMobile);
        let mut old = part(1, 1, 1, 1);
        old.created_at = t(-10);
        let young = part(2, 2, 1, 1);
        let mut urgent = part(3, 3, 1, 1);
        urgent.priority = 5;
        let p = plan(
            std::slice::from_ref(&s),
            &[young.clone(), old.clone(), urgent],
            t(0),
        );
        assert_eq!(sims_of(&p), vec![(3, 1)]);
        let p = plan(&[s], &[young, old], t(0));
        assert_eq!(sims_of(&p), vec![(1, 1)]);
    }

    #[test]
    fn concatenated_parts_stay_on_their_sim_in_order() {
        let a = sim(1, Carrier::ChinaMobile);
        let b = sim(2, Carrier::ChinaMobile);
        // Part 1 and 2 both queued: only part 1 goes now, even with a second free SIM.
        let p = plan(
            &[a.clone(), b.clone()],
            &[part(1, 1, 1, 2), part(2, 1, 2, 2)],
            t(0),
        );
        assert_eq!(sims_of(&p), vec![(1, 1)]);
        // Part 1 sent on SIM 2: part 2 goes to SIM 2 only, and waits if SIM 2 is busy.
        let mut p2 = part(2, 1, 2, 2);
        p2.previous_sent = true;
        p2.pinned_sim = Some(SimId(2));
        let p = plan(&[a.clone(), b.clone()], std::slice::from_ref(&p2), t(0));
        assert_eq!(sims_of(&p), vec![(2, 2)]);
        let mut busy = b;
        busy.busy = true;
        let p = plan(&[a, busy], &[p2], t(0));
        assert!(p.assignments.is_empty());
    }

    #[test]
    fn transient_failure_avoids_the_failing_sim_when_possible() {
        let a = sim(1, Carrier::ChinaMobile);
        let b = sim(2, Carrier::ChinaUnicom);
        let mut p1 = part(1, 1, 1, 1);
        p1.avoid_sims = vec![SimId(1)];
        let p = plan(&[a.clone(), b], std::slice::from_ref(&p1), t(0));
        assert_eq!(sims_of(&p), vec![(1, 2)]);
        let p = plan(&[a], &[p1], t(0));
        assert_eq!(sims_of(&p), vec![(1, 1)], "the only SIM is still used");
    }

    #[test]
    fn backoff_and_not_before_wait_and_wake() {
        let a = sim(1, Carrier::ChinaMobile);
        let mut p1 = part(1, 1, 1, 1);
        p1.next_attempt_at = Some(t(30));
        let mut p2 = part(2, 2, 1, 1);
        p2.not_before = Some(t(20));
        let p = plan(std::slice::from_ref(&a), &[p1.clone(), p2], t(0));
        assert!(p.assignments.is_empty());
        assert_eq!(p.wake_at, Some(t(20)));
        let p = plan(&[a], &[p1], t(30));
        assert_eq!(sims_of(&p), vec![(1, 1)]);
    }

    #[test]
    fn expired_parts_are_reported_not_assigned() {
        let a = sim(1, Carrier::ChinaMobile);
        let mut p1 = part(1, 1, 1, 1);
        p1.deadline = Some(t(0));
        let p2 = part(2, 2, 1, 1);
        let p = plan(&[a], &[p1, p2], t(0));
        assert_eq!(p.expired, vec![MessageId(1)]);
        assert_eq!(sims_of(&p), vec![(2, 1)]);
    }

    #[test]
    fn a_part_in_back_off_does_not_block_others() {
        let a = sim(1, Carrier::ChinaMobile);
        let mut stuck = part(1, 1, 1, 1);
        stuck.priority = 9;
        stuck.next_attempt_at = Some(t(600));
        let p = plan(&[a], &[stuck, part(2, 2, 1, 1)], t(0));
        assert_eq!(sims_of(&p), vec![(2, 1)]);
        assert_eq!(p.wake_at, Some(t(600)));
    }

    #[test]
    fn zero_quota_never_sends() {
        let mut a = sim(1, Carrier::ChinaMobile);
        a.quota.per_day = 0;
        let p = plan(&[a], &[part(1, 1, 1, 1)], t(0));
        assert!(p.assignments.is_empty());
        assert_eq!(p.wake_at, None);
    }

    #[test]
    fn times_at_the_end_of_time_do_not_panic() {
        let mut a = sim(1, Carrier::ChinaMobile);
        a.sends = vec![Timestamp::MAX];
        a.last_used = Some(Timestamp::MAX);
        a.rested_until = Some(Timestamp::MAX);
        let mut p1 = part(1, 1, 1, 1);
        p1.deadline = Some(Timestamp::MAX);
        let p = plan(&[a], &[p1], Timestamp::MIN);
        assert!(p.assignments.is_empty());
        assert_eq!(
            after(Timestamp::MAX, SignedDuration::from_hours(1)),
            Timestamp::MAX
        );
        assert_eq!(
            before(Timestamp::MIN, SignedDuration::from_hours(1)),
            Timestamp::MIN
        );
    }

    #[test]
    fn one_part_per_sim_per_plan() {
        let a = sim(1, Carrier::ChinaMobile);
        let p = plan(&[a], &[part(1, 1, 1, 1), part(2, 2, 1, 1)], t(0));
        assert_eq!(p.assignments.len(), 1);
    }
}
