//! Batched forms of the runner's hot transactions, for throughput: the claims of one planning
//! round in one transaction ([`Store::claim_many`]), the send outcomes that arrive together in
//! one transaction ([`Store::record_outcomes`]), the due parts read along the messages' indexes
//! ([`Store::due_parts_indexed`]), the runner's next wake-up ([`Store::next_wake_at`]) and the
//! SIM slots built from a runner-kept send log ([`Store::sim_slots_from`], [`SendLog`]).
//!
//! What must always hold: each item of a batch is exactly the single-item operation (the same
//! `*_in` function, the same checks), run inside its own SAVEPOINT so a refused item leaves no
//! trace and does not undo the others; the batch's transaction commits before any result is
//! returned, so a claim is committed before its AT+CMGS and an outcome before its SIM is
//! released, exactly as with the single-item calls; `due_parts_indexed` returns what
//! [`Store::due_parts`] returns, in the same order, and neither returns a part that is not due,
//! so parts waiting for later never crowd a due part out of the runner's window; whatever they
//! leave out, `next_wake_at` tells when it becomes due.

use crate::store::CachedSql;
use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::messages::{claim_in, mark_failed_in, mark_sent_in, mark_unknown_in};
use super::{ms, ts, ClaimedPart, FailOutcome, PartId, SimId, Store, StoreError};
use crate::ids::before;
use crate::scheduler::{DuePart, FailureKind, Quota, SimSlot};

/// What became of one send, to be committed by [`Store::record_outcomes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// +CMGS: mr.
    Sent { part: PartId, tp_mr: u8 },
    /// Nothing was sent, or the modem refused it: see [`Store::mark_failed`].
    Failed {
        part: PartId,
        error: String,
        kind: FailureKind,
    },
    /// The PDU may have left without a confirmation: see [`Store::mark_unknown`]. `retry_at`:
    /// when to requeue it if no report settles it first (an ambiguous modem error under
    /// `modems.on_ambiguous = "retry"`); `None` holds it for a report or the operator.
    Unknown {
        part: PartId,
        error: String,
        retry_at: Option<Timestamp>,
    },
}

impl SendOutcome {
    /// The part this outcome is for.
    pub fn part(&self) -> PartId {
        match self {
            SendOutcome::Sent { part, .. }
            | SendOutcome::Failed { part, .. }
            | SendOutcome::Unknown { part, .. } => *part,
        }
    }
}

/// Which part a SIM sends next, claimed with the outcome of its last send
/// ([`Store::record_outcomes_then_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextPart {
    /// This part.
    Part(PartId),
    /// The part after the one the outcome is for, of the same message (a message's parts go
    /// in order on one SIM); nothing when that was its last part.
    Following,
}

/// The quota-relevant send times of each SIM, kept by the one process that claims (the
/// daemon's runner), so a planning round does not re-read a day of `send_attempts` per SIM.
/// Loaded from the store the first time a SIM is seen; every successful claim is added with
/// [`SendLog::record`]; times older than a day are dropped (no quota window is longer).
#[derive(Debug, Default, Clone)]
pub struct SendLog {
    sends: BTreeMap<SimId, Vec<Timestamp>>,
}

impl SendLog {
    /// Records a committed claim of `sim` at `at` (what `send_attempts` got).
    pub fn record(&mut self, sim: SimId, at: Timestamp) {
        if let Some(v) = self.sends.get_mut(&sim) {
            // Claims come in time order; keep the vector sorted if a clock stepped back.
            let i = v.partition_point(|t| *t <= at);
            v.insert(i, at);
        }
        // A SIM not loaded yet gets this claim from the store when it is loaded.
    }

    /// Forgets everything: the next round reloads from the store.
    pub fn clear(&mut self) {
        self.sends.clear();
    }
}

/// Runs `f` inside a SAVEPOINT of `tx`: released on `Ok`, rolled back on `Err` (the inner
/// result). The outer `Err` means the whole transaction is lost (SQLite rolled it back itself,
/// e.g. disk full, or the savepoint statements failed): the batch must stop there, because
/// later items would otherwise run outside any transaction.
fn in_savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    // Cached statements: a batch runs these once per item.
    tx.prepare_cached("SAVEPOINT batch_item")?.execute([])?;
    match f(tx) {
        Ok(v) => {
            tx.prepare_cached("RELEASE batch_item")?.execute([])?;
            Ok(Ok(v))
        }
        Err(e) if tx.is_autocommit() => Err(e),
        Err(e) => {
            tx.prepare_cached("ROLLBACK TO batch_item")?.execute([])?;
            tx.prepare_cached("RELEASE batch_item")?.execute([])?;
            Ok(Err(e))
        }
    }
}

/// [`Store::due_parts_indexed`] on `conn`, which may be a transaction in progress (acceptance's
/// hand-over reads the parts it just wrote).
pub fn due_parts_in(
    conn: &rusqlite::Connection,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<DuePart>, StoreError> {
    let now = ms(now);

    let mut all = Vec::new();
    for (index, range) in [
        ("messages_state", "m.state = 'queued'"),
        ("messages_state", "m.state = 'sending'"),
        (
            "messages_state_not_before",
            "m.state = 'scheduled' AND m.not_before <= ?2",
        ),
        (
            "messages_state_deadline",
            "m.state = 'queued' AND m.deadline <= ?2",
        ),
        (
            "messages_state_deadline",
            "m.state = 'scheduled' AND m.deadline <= ?2",
        ),
        (
            "messages_state_deadline",
            "m.state = 'sending' AND m.deadline <= ?2",
        ),
    ] {
        // A first part has no earlier part: CASE and OR skip the subqueries for it (most
        // messages are one part). CROSS JOIN fixes the loop order (messages outer, along the
        // index; parts inner by (message_id, seq)); along `messages_state` the ORDER BY is
        // then satisfied without a temporary B-tree, and the scan stops after `limit` rows.
        let sql = format!(
            "SELECT p.id, p.message_id, p.seq, m.part_count, m.recipient_carrier, m.priority,
                    m.created_at, m.not_before, m.deadline, p.next_attempt_at, p.avoid_sims,
                    CASE WHEN p.seq = 1 THEN NULL ELSE
                        (SELECT q.sim_id FROM parts q WHERE q.message_id = p.message_id
                            AND q.seq < p.seq AND q.state IN ('sent', 'delivered')
                            ORDER BY q.seq DESC LIMIT 1) END,
                    {PREVIOUS_SENT}
             FROM messages m INDEXED BY {index}
                  CROSS JOIN parts p INDEXED BY sqlite_autoindex_parts_1 ON p.message_id = m.id
             WHERE {range} AND p.state = 'queued'
               AND (m.gateway IS NULL OR m.deadline <= ?2)
               AND (m.deadline <= ?2
                    OR ((m.not_before IS NULL OR m.not_before <= ?2)
                        AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= ?2)
                        AND {PREVIOUS_SENT}))
             ORDER BY m.priority DESC, m.created_at, m.id, p.seq
             LIMIT ?1"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![limit, now], super::messages::due_part_row)?;
        for row in rows {
            all.push(row?);
        }
    }
    all.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.message.cmp(&b.message))
            .then(a.seq.cmp(&b.seq))
    });
    // A part past its deadline can come from two of the reads.
    all.dedup_by_key(|d| d.part);
    all.truncate(limit as usize);
    Ok(all)
}

/// [`Store::claim`] for each `(part, sim)` inside `tx`, each in its own SAVEPOINT (the body of
/// [`Store::claim_many`], and of acceptance's hand-over).
pub fn claim_each_in(
    tx: &Transaction<'_>,
    claims: &[(PartId, SimId)],
    now: Timestamp,
) -> Result<Vec<Result<ClaimedPart, StoreError>>, StoreError> {
    let mut out = Vec::with_capacity(claims.len());
    for &(part, sim) in claims {
        out.push(in_savepoint(tx, |tx| claim_in(tx, part, sim, now))?);
    }
    Ok(out)
}

impl Store {
    fn batch<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let v = f(&tx)?;
        tx.commit()?;
        Ok(v)
    }

    /// [`Store::claim`] for each `(part, sim)`, all in one transaction (one commit, one fsync).
    /// Each item's result is what `claim` would have returned; a refused item does not affect
    /// the others. `Err` only when the transaction itself failed (then nothing was claimed).
    pub fn claim_many(
        &mut self,
        claims: &[(PartId, SimId)],
        now: Timestamp,
    ) -> Result<Vec<Result<ClaimedPart, StoreError>>, StoreError> {
        self.batch(|tx| claim_each_in(tx, claims, now))
    }

    /// Commits send outcomes in one transaction: each as [`Store::mark_sent`],
    /// [`Store::mark_failed`] or [`Store::mark_unknown`] would. `Ok(None)` for sent and unknown,
    /// `Ok(Some(..))` for failed. `Err` only when the transaction itself failed.
    pub fn record_outcomes(
        &mut self,
        outcomes: &[(SendOutcome, Timestamp)],
    ) -> Result<Vec<Result<Option<FailOutcome>, StoreError>>, StoreError> {
        let items: Vec<_> = outcomes
            .iter()
            .map(|(o, t)| (o.clone(), *t, None))
            .collect();
        Ok(self
            .record_outcomes_then_claim(&items, &mut SendLog::default())?
            .into_iter()
            .map(|(outcome, _)| outcome)
            .collect())
    }

    /// [`Store::record_outcomes`], and for each item that names a next part for its SIM and
    /// whose outcome was recorded, that part's claim ([`Store::claim`], its own SAVEPOINT, at
    /// the outcome's time) in the same transaction: the send loop's SIM waits for one commit
    /// between two sends, not two. A refused claim (the part was cancelled or claimed
    /// meanwhile) leaves the outcome recorded. Every claim made is added to `log`, under the
    /// same store call, so the runner's [`SendLog`] still sees every claim.
    #[allow(clippy::type_complexity)]
    pub fn record_outcomes_then_claim(
        &mut self,
        items: &[(SendOutcome, Timestamp, Option<(NextPart, SimId)>)],
        log: &mut SendLog,
    ) -> Result<
        Vec<(
            Result<Option<FailOutcome>, StoreError>,
            Option<Result<ClaimedPart, StoreError>>,
        )>,
        StoreError,
    > {
        let policy = self.retry_policy;
        let mut claims = Vec::new();
        let out = self.batch(|tx| {
            let mut out = Vec::with_capacity(items.len());
            for (o, now, next) in items {
                let now = *now;
                let recorded = in_savepoint(tx, |tx| match o {
                    SendOutcome::Sent { part, tp_mr } => {
                        mark_sent_in(tx, *part, *tp_mr, now).map(|()| None)
                    }
                    SendOutcome::Failed { part, error, kind } => {
                        mark_failed_in(tx, &policy, *part, error, *kind, now).map(Some)
                    }
                    SendOutcome::Unknown {
                        part,
                        error,
                        retry_at,
                    } => {
                        mark_unknown_in(tx, *part, error, now)?;
                        if let Some(at) = retry_at {
                            tx.execute_cached(
                                "UPDATE parts SET next_attempt_at = ?2 WHERE id = ?1",
                                params![part.0, super::ms(*at)],
                            )?;
                        }
                        Ok(None)
                    }
                })?;
                let next = match (next, &recorded) {
                    (Some((NextPart::Part(part), sim)), Ok(_)) => Some((*part, *sim)),
                    (Some((NextPart::Following, sim)), Ok(_)) => tx
                        .prepare_cached(
                            "SELECT q.id FROM parts p JOIN parts q
                                 ON q.message_id = p.message_id AND q.seq = p.seq + 1
                             WHERE p.id = ?1",
                        )?
                        .query_row([o.part().0], |r| r.get(0))
                        .optional()?
                        .map(|id| (PartId(id), *sim)),
                    _ => None,
                };
                let claim = match next {
                    Some((part, sim)) => {
                        let c = in_savepoint(tx, |tx| claim_in(tx, part, sim, now))?;
                        if c.is_ok() {
                            claims.push((sim, now));
                        }
                        Some(c)
                    }
                    None => None,
                };
                out.push((recorded, claim));
            }
            Ok(out)
        })?;
        // Committed: only now are the claims real.
        for (sim, at) in claims {
            log.record(sim, at);
        }
        Ok(out)
    }

    /// Group commit for independent requests (the daemon's acceptance): each job runs in its
    /// own SAVEPOINT of one IMMEDIATE transaction, in order, so each sees what the jobs before
    /// it wrote (two requests still cannot spend the same credit), and a job that fails is
    /// undone alone; then one commit, one fsync, for all of them. Nothing is returned before
    /// that commit. `Err` when the transaction itself failed: then no job's writes are kept.
    pub fn each_in_one_commit<T, J>(
        &mut self,
        jobs: Vec<J>,
    ) -> Result<Vec<Result<T, StoreError>>, StoreError>
    where
        J: FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    {
        self.batch(|tx| {
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                out.push(in_savepoint(tx, job)?);
            }
            Ok(out)
        })
    }

    /// [`Store::each_in_one_commit`], then `then` in the same transaction, in its own SAVEPOINT
    /// after the jobs: its failure undoes only its own writes, never the jobs'. Acceptance uses
    /// it to hand a part it just accepted to an idle SIM in the same commit (one fsync instead
    /// of two before the first AT+CMGS). `Err` only when the transaction itself failed.
    #[allow(clippy::type_complexity)]
    pub fn each_in_one_commit_then<T, J, R>(
        &mut self,
        jobs: Vec<J>,
        then: impl FnOnce(&Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<(Vec<Result<T, StoreError>>, Result<R, StoreError>), StoreError>
    where
        J: FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    {
        self.batch(|tx| {
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                out.push(in_savepoint(tx, job)?);
            }
            let then = in_savepoint(tx, then)?;
            Ok((out, then))
        })
    }

    /// [`Store::sim_slots`], with the send times taken from `log` (loading a SIM's day of
    /// `send_attempts` only the first time it is seen) and pruned to the last 24 h.
    pub fn sim_slots_from(
        &self,
        log: &mut SendLog,
        now: Timestamp,
        defaults: Quota,
    ) -> Result<Vec<SimSlot>, StoreError> {
        let day_ago = before(now, SignedDuration::from_hours(24));
        let mut out = Vec::new();
        for s in self.sims()? {
            let sends = match log.sends.get_mut(&s.id) {
                Some(v) => {
                    let old = v.partition_point(|t| *t <= day_ago);
                    v.drain(..old);
                    v.clone()
                }
                None => {
                    let v = self.sends_since(s.id, day_ago)?;
                    log.sends.insert(s.id, v.clone());
                    v
                }
            };
            out.push(SimSlot {
                id: s.id,
                carrier: s.carrier,
                ready: s.healthy && s.registered && s.port.is_some(),
                busy: false,
                rested_until: s.rested_until,
                last_used: s.last_used_at,
                sends,
                quota: s.quota.over(defaults),
            });
        }
        Ok(out)
    }

    /// [`Store::due_parts`], read along indexes instead of sorting every queued part of the
    /// database on each planning round, and merged: the `queued` and `sending` messages along
    /// `messages(state, priority DESC, created_at)` (each already in order, stopping after
    /// `limit` due rows); the `scheduled` ones whose `not_before` has passed along
    /// `messages(state, not_before)` (a scheduled message always has a `not_before`), so that
    /// messages scheduled for later are never read; and the messages whose deadline has passed
    /// along `messages(state, deadline)`, so the plan can report them expired.
    pub fn due_parts_indexed(
        &self,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<DuePart>, StoreError> {
        due_parts_in(&self.conn, limit, now)
    }

    /// When the runner must plan again if nothing wakes it sooner: the earliest instant after
    /// `now` at which a queued part of a sendable message becomes due (its message's
    /// `not_before` and its own back-off have both passed) or its message's deadline passes.
    /// `None`: nothing waits on time. [`Store::due_parts`] leaves the parts that are not due
    /// out, so the plan alone cannot know this. Each candidate is read along an index (the
    /// earliest row of a range, LIMIT 1), however many parts wait.
    pub fn next_wake_at(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT MIN(t) FROM (
                 -- A message's not_before, for a queued part whose back-off ends no later.
                 SELECT (SELECT m.not_before FROM messages m INDEXED BY messages_state_not_before
                         WHERE m.state = s.state AND m.not_before > ?1
                           AND EXISTS (SELECT 1 FROM parts p INDEXED BY sqlite_autoindex_parts_1
                               WHERE p.message_id = m.id
                               AND p.state = 'queued'
                               AND (p.next_attempt_at IS NULL
                                    OR p.next_attempt_at <= m.not_before))
                         ORDER BY m.not_before LIMIT 1) AS t
                 FROM (SELECT 'queued' AS state UNION ALL SELECT 'scheduled'
                       UNION ALL SELECT 'sending') s
                 UNION ALL
                 -- A part's back-off, when its message's not_before is no later.
                 SELECT (SELECT p.next_attempt_at FROM parts p INDEXED BY parts_backoff
                         JOIN messages m ON m.id = p.message_id
                         WHERE p.state = 'queued' AND p.next_attempt_at IS NOT NULL
                           AND p.next_attempt_at > ?1
                           AND m.state IN ('queued', 'scheduled', 'sending')
                           AND (m.not_before IS NULL OR m.not_before <= p.next_attempt_at)
                         ORDER BY p.next_attempt_at LIMIT 1)
                 UNION ALL
                 -- A deadline: the plan then reports the message expired.
                 SELECT (SELECT m.deadline FROM messages m INDEXED BY messages_state_deadline
                         WHERE m.state = s.state AND m.deadline > ?1
                           AND EXISTS (SELECT 1 FROM parts p INDEXED BY sqlite_autoindex_parts_1
                               WHERE p.message_id = m.id
                               AND p.state = 'queued')
                         ORDER BY m.deadline LIMIT 1)
                 FROM (SELECT 'queued' AS state UNION ALL SELECT 'scheduled'
                       UNION ALL SELECT 'sending') s
             )",
        )?;
        let t: Option<i64> = stmt.query_row([ms(now)], |r| r.get(0))?;
        Ok(t.map(ts))
    }
}

/// Whether a part's previous part is sent (always true for a first part).
const PREVIOUS_SENT: &str = "(p.seq = 1 OR EXISTS (SELECT 1 FROM parts q
    WHERE q.message_id = p.message_id AND q.seq = p.seq - 1 AND q.state IN ('sent', 'delivered')))";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Carrier;
    use crate::store::{
        insert_messages, InitialState, MessageId, NewMessage, NewPart, SimIdentity,
    };

    const PDU: &str = "0011000D91683119325476F80008AA0C4F60597D4E16754C0021";

    fn msg(i: usize, parts: usize, priority: i32) -> NewMessage {
        NewMessage {
            account: None,
            recipient: format!("+86139{i:08}"),
            recipient_carrier: Carrier::ChinaMobile,
            text: "x".into(),
            encoding: "ucs2".into(),
            priority,
            not_before: None,
            deadline: None,
            report_requested: false,
            initial: InitialState::Ready,
            parts: (0..parts)
                .map(|_| NewPart {
                    pdu_hex: PDU.into(),
                    cmgs_length: 24,
                })
                .collect(),
        }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap()
    }

    fn sim(store: &mut Store, n: u32) -> SimId {
        let id = SimIdentity {
            iccid: Some(format!("898600{n:014}")),
            imsi: Some(format!("46000{n:010}")),
            own_number: None,
        };
        store.upsert_sim(&id, &format!("/dev/m{n}"), t(0)).unwrap()
    }

    /// The earliest time after `now` at which a part of `all` (every queued part of a
    /// sendable message, as `due_parts` at the end of time returns them) becomes due or
    /// reaches its deadline: what `next_wake_at` must answer, computed the slow way.
    fn wake_reference(all: &[DuePart], now: Timestamp) -> Option<Timestamp> {
        all.iter()
            .flat_map(|d| [d.not_before.max(d.next_attempt_at), d.deadline])
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    #[test]
    fn due_parts_indexed_matches_due_parts() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        // Mixed priorities, times, multi-part messages, some scheduled for later, some with a
        // deadline, some parts sent, one in back-off, one cancelled.
        for i in 0..40 {
            let mut m = msg(i, 1 + i % 3, (i % 3) as i32 - 1);
            if i % 5 == 0 {
                m.not_before = Some(t(50 + i as i64));
            }
            if i % 7 == 0 {
                m.deadline = Some(t(30 + 3 * i as i64));
            }
            store.accept(&[m], t(i as i64 * 7 % 13)).unwrap();
        }
        let due = store.due_parts(1000, t(20)).unwrap();
        let first = due.iter().find(|d| d.total > 1 && d.seq == 1).unwrap();
        store.claim(first.part, s1, t(21)).unwrap();
        store.mark_sent(first.part, 3, t(22)).unwrap();
        let single = due
            .iter()
            .find(|d| d.total == 1 && d.deadline.is_none())
            .unwrap();
        store.claim(single.part, s1, t(23)).unwrap();
        let out = store
            .mark_failed(
                single.part,
                "+CMS ERROR: 500",
                FailureKind::TransientForModem,
                t(24),
            )
            .unwrap();
        assert!(matches!(out, FailOutcome::Retrying { .. }), "{out:?}");
        store.cancel(MessageId(5), t(25)).unwrap();
        let all = store.due_parts(u32::MAX, Timestamp::MAX).unwrap();
        let mut seen_wakes = Vec::new();
        for now in [t(0), t(26), t(40), t(60), t(80), t(30_000), t(1_000_000)] {
            for limit in [1, 5, 17, 1000] {
                assert_eq!(
                    store.due_parts_indexed(limit, now).unwrap(),
                    store.due_parts(limit, now).unwrap(),
                    "limit {limit} at {now}"
                );
            }
            let wake = store.next_wake_at(now).unwrap();
            assert_eq!(wake, wake_reference(&all, now), "at {now}");
            seen_wakes.push(wake);
        }
        // The data did exercise every kind of wake: not_before, back-off, deadline, none.
        assert!(seen_wakes.contains(&None));
        assert!(seen_wakes.iter().flatten().count() >= 4, "{seen_wakes:?}");
    }

    /// Issue 8, "a message can starve": 2,100 recipients scheduled 8 hours ahead filled the
    /// runner's window of 2,048 parts, and an ordinary message accepted after them stayed
    /// queued for 8 hours.
    #[test]
    fn an_ordinary_message_is_due_behind_2100_parts_scheduled_for_later() {
        let mut store = Store::open_in_memory().unwrap();
        let later = t(8 * 3600 * 1000);
        let batch: Vec<NewMessage> = (0..2100)
            .map(|i| {
                let mut m = msg(i, 1, 0);
                m.not_before = Some(later);
                m
            })
            .collect();
        store.accept(&batch, t(0)).unwrap();
        let ordinary = store.accept(&[msg(5000, 1, 0)], t(1)).unwrap()[0];
        let now = t(2);
        for due in [
            store.due_parts_indexed(2048, now).unwrap(),
            store.due_parts(2048, now).unwrap(),
        ] {
            assert_eq!(
                due.iter().map(|d| d.message).collect::<Vec<_>>(),
                vec![ordinary],
                "only the ordinary message is due now"
            );
        }
        assert_eq!(store.next_wake_at(now).unwrap(), Some(later));
        // At their time the scheduled ones are due, oldest first, the window full again.
        let due = store.due_parts_indexed(2048, later).unwrap();
        assert_eq!(due.len(), 2048);
        assert_eq!(due, store.due_parts(2048, later).unwrap());
        assert_eq!(due[0].message, MessageId(1));
    }

    /// The same starvation by back-off: parts waiting after a transient failure filled the
    /// window ahead of a younger part that is due.
    #[test]
    fn parts_in_back_off_do_not_fill_the_window() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        let ids = store
            .accept(&(0..6).map(|i| msg(i, 1, 0)).collect::<Vec<_>>(), t(0))
            .unwrap();
        let mut retry_at = None;
        for d in store.due_parts(10, t(1)).unwrap() {
            store.claim(d.part, s1, t(1)).unwrap();
            let out = store
                .mark_failed(
                    d.part,
                    "+CMS ERROR: 500",
                    FailureKind::TransientForModem,
                    t(2),
                )
                .unwrap();
            let FailOutcome::Retrying { at } = out else {
                panic!("{out:?}")
            };
            retry_at = Some(at);
        }
        let young = store.accept(&[msg(9, 1, 0)], t(3)).unwrap()[0];
        for limit in [1, 4] {
            let due = store.due_parts_indexed(limit, t(4)).unwrap();
            assert_eq!(due.len(), 1, "limit {limit}");
            assert_eq!(due[0].message, young);
            assert_eq!(due, store.due_parts(limit, t(4)).unwrap());
        }
        assert_eq!(store.next_wake_at(t(4)).unwrap(), retry_at);
        let due = store.due_parts_indexed(10, retry_at.unwrap()).unwrap();
        assert_eq!(due.len(), 7);
        assert_eq!(due[0].message, ids[0]);
    }

    #[test]
    fn claim_many_keeps_good_claims_when_one_is_refused() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        let s2 = sim(&mut store, 2);
        let ids = store.accept(&[msg(1, 1, 0), msg(2, 2, 0)], t(0)).unwrap();
        let due = store.due_parts(10, t(1)).unwrap();
        let one = due[0].part;
        // Not due (its first part is not sent): the claim must refuse it all the same.
        let second_of_two = store.message(ids[1]).unwrap().unwrap().parts[1].id;
        assert!(due.iter().all(|d| d.part != second_of_two));
        let out = store
            .claim_many(&[(one, s1), (second_of_two, s2)], t(1))
            .unwrap();
        assert_eq!(out[0].as_ref().unwrap().part, one);
        assert!(matches!(out[1], Err(StoreError::NotClaimable { .. })));
        // The refused claim left nothing behind; the good one is committed.
        let left = store.due_parts(10, t(1)).unwrap();
        assert!(left.iter().all(|d| d.part != one));
        let parts = store.message(ids[1]).unwrap().unwrap().parts;
        assert_eq!(parts[1].state, crate::store::PartState::Queued);
        assert_eq!(parts[1].sim, None);
        assert_eq!(
            store.sends_since(s2, t(-1)).unwrap(),
            Vec::<Timestamp>::new()
        );
        assert_eq!(store.sends_since(s1, t(-1)).unwrap(), vec![t(1)]);
    }

    #[test]
    fn record_outcomes_applies_each_like_the_single_calls() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        let s2 = sim(&mut store, 2);
        let s3 = sim(&mut store, 3);
        store
            .accept(&[msg(1, 1, 0), msg(2, 1, 0), msg(3, 1, 0)], t(0))
            .unwrap();
        let due = store.due_parts(10, t(1)).unwrap();
        let (a, b, c) = (due[0].part, due[1].part, due[2].part);
        let claims = store
            .claim_many(&[(a, s1), (b, s2), (c, s3)], t(1))
            .unwrap();
        assert!(claims.iter().all(|c| c.is_ok()));
        let out = store
            .record_outcomes(&[
                (SendOutcome::Sent { part: a, tp_mr: 7 }, t(2)),
                (
                    SendOutcome::Failed {
                        part: b,
                        error: "+CMS ERROR: 500".into(),
                        kind: FailureKind::TransientForModem,
                    },
                    t(2),
                ),
                (
                    SendOutcome::Unknown {
                        part: c,
                        error: "timeout after payload".into(),
                        retry_at: None,
                    },
                    t(2),
                ),
                // A second outcome for a part already sent is refused, alone.
                (SendOutcome::Sent { part: a, tp_mr: 8 }, t(3)),
            ])
            .unwrap();
        assert_eq!(out[0].as_ref().unwrap(), &None);
        assert!(matches!(out[1], Ok(Some(FailOutcome::Retrying { .. }))));
        assert_eq!(out[2].as_ref().unwrap(), &None);
        assert!(matches!(out[3], Err(StoreError::BadPartTransition { .. })));
        let view = |id: i64| store.message(MessageId(id)).unwrap().unwrap();
        let va = view(due[0].message.0);
        assert_eq!(va.parts[0].state, crate::store::PartState::Sent);
        assert_eq!(va.parts[0].tp_mr, Some(7));
        assert_eq!(
            view(due[1].message.0).parts[0].state,
            crate::store::PartState::Queued
        );
        assert_eq!(
            view(due[2].message.0).parts[0].state,
            crate::store::PartState::Unknown
        );
    }

    #[test]
    fn an_outcome_and_the_next_claim_commit_together() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        let s2 = sim(&mut store, 2);
        store
            .accept(&[msg(1, 1, 0), msg(2, 1, 0), msg(3, 1, 0)], t(0))
            .unwrap();
        let due = store.due_parts(10, t(1)).unwrap();
        let (a, b, c) = (due[0].part, due[1].part, due[2].part);
        for r in store.claim_many(&[(a, s1), (b, s2)], t(1)).unwrap() {
            r.unwrap();
        }
        // The runner's log, loaded (as at its first round) after those claims.
        let mut log = SendLog::default();
        store
            .sim_slots_from(&mut log, t(1), Quota::default())
            .unwrap();
        let out = store
            .record_outcomes_then_claim(
                &[
                    // Sent, and the SIM's next part claimed with it.
                    (
                        SendOutcome::Sent { part: a, tp_mr: 1 },
                        t(2),
                        Some((NextPart::Part(c), s1)),
                    ),
                    // Sent, but the next part named is taken already: the outcome stands.
                    (
                        SendOutcome::Sent { part: b, tp_mr: 2 },
                        t(2),
                        Some((NextPart::Part(c), s2)),
                    ),
                ],
                &mut log,
            )
            .unwrap();
        assert_eq!(out[0].0.as_ref().unwrap(), &None);
        assert_eq!(out[0].1.as_ref().unwrap().as_ref().unwrap().part, c);
        assert_eq!(out[1].0.as_ref().unwrap(), &None);
        assert!(matches!(
            out[1].1,
            Some(Err(StoreError::NotClaimable { .. }))
        ));
        let part = |m: MessageId| store.message(m).unwrap().unwrap().parts[0].clone();
        assert_eq!(part(due[1].message).state, crate::store::PartState::Sent);
        let next = part(due[2].message);
        assert_eq!(next.state, crate::store::PartState::Sending);
        assert_eq!(next.sim, Some(s1));
        // The chained claim is in send_attempts and in the runner's log alike.
        let slots = store
            .sim_slots_from(&mut log, t(3), Quota::default())
            .unwrap();
        let sends = |id| slots.iter().find(|s| s.id == id).unwrap().sends.clone();
        assert_eq!(sends(s1), store.sends_since(s1, t(-1)).unwrap());
        assert_eq!(sends(s1), vec![t(1), t(2)]);
        assert_eq!(sends(s2), vec![t(1)]);
        // A refused outcome claims nothing.
        let out = store
            .record_outcomes_then_claim(
                &[(
                    SendOutcome::Sent { part: a, tp_mr: 3 },
                    t(4),
                    Some((NextPart::Part(c), s1)),
                )],
                &mut log,
            )
            .unwrap();
        assert!(out[0].0.is_err());
        assert!(out[0].1.is_none());
    }

    #[test]
    fn the_following_part_of_a_message_is_claimed_with_its_predecessor() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        let ids = store.accept(&[msg(1, 2, 0)], t(0)).unwrap();
        let parts = store.message(ids[0]).unwrap().unwrap().parts;
        let (first, second) = (parts[0].id, parts[1].id);
        store.claim_many(&[(first, s1)], t(1)).unwrap()[0]
            .as_ref()
            .unwrap();
        let mut log = SendLog::default();
        let out = store
            .record_outcomes_then_claim(
                &[(
                    SendOutcome::Sent {
                        part: first,
                        tp_mr: 1,
                    },
                    t(2),
                    Some((NextPart::Following, s1)),
                )],
                &mut log,
            )
            .unwrap();
        let claimed = out[0].1.as_ref().unwrap().as_ref().unwrap();
        assert_eq!((claimed.part, claimed.seq, claimed.sim), (second, 2, s1));
        // The last part has none to follow: the outcome is recorded, nothing is claimed.
        let out = store
            .record_outcomes_then_claim(
                &[(
                    SendOutcome::Sent {
                        part: second,
                        tp_mr: 2,
                    },
                    t(3),
                    Some((NextPart::Following, s1)),
                )],
                &mut log,
            )
            .unwrap();
        assert_eq!(out[0].0.as_ref().unwrap(), &None);
        assert!(out[0].1.is_none());
        assert_eq!(
            store.message(ids[0]).unwrap().unwrap().summary.state,
            crate::store::MessageState::Sent
        );
    }

    #[test]
    fn jobs_in_one_commit_see_each_other_and_fail_alone() {
        let mut store = Store::open_in_memory().unwrap();
        let count = |tx: &Transaction<'_>| -> Result<i64, StoreError> {
            Ok(tx.query_row_cached("SELECT count(*) FROM messages", [], |r| r.get(0))?)
        };
        type Job = Box<dyn FnOnce(&Transaction<'_>) -> Result<i64, StoreError>>;
        let jobs: Vec<Job> = vec![
            Box::new(move |tx| {
                insert_messages(tx, &[msg(1, 1, 0)], t(0))?;
                count(tx)
            }),
            // Writes, then fails: its row must not survive, nor disturb the others.
            Box::new(move |tx| {
                insert_messages(tx, &[msg(2, 1, 0)], t(0))?;
                Err(StoreError::Invalid("refused".into()))
            }),
            // Sees the first job's row, not the second's.
            Box::new(move |tx| {
                insert_messages(tx, &[msg(3, 1, 0)], t(0))?;
                count(tx)
            }),
        ];
        let out = store.each_in_one_commit(jobs).unwrap();
        assert_eq!(out[0].as_ref().unwrap(), &1);
        assert!(matches!(out[1], Err(StoreError::Invalid(_))));
        assert_eq!(out[2].as_ref().unwrap(), &2);
        let kept: i64 = store
            .conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 2);
    }

    #[test]
    fn a_claim_after_the_jobs_sees_their_parts_and_fails_alone() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        type Job = Box<dyn FnOnce(&Transaction<'_>) -> Result<(), StoreError>>;
        let job =
            || -> Job { Box::new(|tx| insert_messages(tx, &[msg(1, 1, 0)], t(0)).map(|_| ())) };
        // The claim reads the part the job just wrote, in the same transaction.
        let (out, then) = store
            .each_in_one_commit_then(vec![job()], |tx| {
                let due = due_parts_in(tx, 10, t(1))?;
                claim_each_in(tx, &[(due[0].part, s1)], t(1))
            })
            .unwrap();
        assert!(out[0].is_ok());
        assert!(then.unwrap()[0].is_ok());
        assert!(store.due_parts(10, t(2)).unwrap().is_empty());
        // A failing `then` undoes only its own writes.
        let (out, then) = store
            .each_in_one_commit_then(vec![job()], |tx| {
                let due = due_parts_in(tx, 10, t(3))?;
                claim_each_in(tx, &[(due[0].part, s1)], t(3))?;
                Err::<(), _>(StoreError::Invalid("no".into()))
            })
            .unwrap();
        assert!(out[0].is_ok());
        assert!(then.is_err());
        assert_eq!(
            store.due_parts(10, t(4)).unwrap().len(),
            1,
            "the job's part stays queued"
        );
    }

    #[test]
    fn sim_slots_from_log_matches_sim_slots() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        store
            .accept(&[msg(1, 1, 0), msg(2, 1, 0), msg(3, 1, 0)], t(0))
            .unwrap();
        let due = store.due_parts(10, t(1)).unwrap();
        let q = Quota {
            per_minute: 5,
            per_hour: 50,
            per_day: 500,
            min_interval: SignedDuration::ZERO,
        };
        let mut log = SendLog::default();
        store.claim(due[0].part, s1, t(10)).unwrap();
        // First call loads from the store; later claims are recorded by the caller.
        assert_eq!(
            store.sim_slots_from(&mut log, t(20), q).unwrap(),
            store.sim_slots(t(20), q).unwrap()
        );
        store.claim(due[1].part, s1, t(30)).unwrap();
        log.record(s1, t(30));
        assert_eq!(
            store.sim_slots_from(&mut log, t(40), q).unwrap(),
            store.sim_slots(t(40), q).unwrap()
        );
        // A day later the first send no longer counts.
        let later = t(10 + 24 * 3600 * 1000 + 1);
        assert_eq!(
            store.sim_slots_from(&mut log, later, q).unwrap(),
            store.sim_slots(later, q).unwrap()
        );
    }
}
