//! Batched forms of the runner's hot transactions, for throughput: the claims of one planning
//! round in one transaction ([`Store::claim_many`]), the send outcomes that arrive together in
//! one transaction ([`Store::record_outcomes`]), the due parts read along the messages' state
//! index ([`Store::due_parts_indexed`]) and the SIM slots built from a runner-kept send log
//! ([`Store::sim_slots_from`], [`SendLog`]).
//!
//! What must always hold: each item of a batch is exactly the single-item operation (the same
//! `*_in` function, the same checks), run inside its own SAVEPOINT so a refused item leaves no
//! trace and does not undo the others; the batch's transaction commits before any result is
//! returned, so a claim is committed before its AT+CMGS and an outcome before its SIM is
//! released, exactly as with the single-item calls; `due_parts_indexed` returns what
//! [`Store::due_parts`] returns, in the same order.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, Transaction, TransactionBehavior};

use super::messages::{claim_in, mark_failed_in, mark_sent_in, mark_unknown_in};
use super::{ClaimedPart, FailOutcome, PartId, SimId, Store, StoreError};
use crate::scheduler::{before, DuePart, FailureKind, Quota, SimSlot};

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
        self.batch(|tx| {
            let mut out = Vec::with_capacity(claims.len());
            for &(part, sim) in claims {
                out.push(in_savepoint(tx, |tx| claim_in(tx, part, sim, now))?);
            }
            Ok(out)
        })
    }

    /// Commits send outcomes in one transaction: each as [`Store::mark_sent`],
    /// [`Store::mark_failed`] or [`Store::mark_unknown`] would. `Ok(None)` for sent and unknown,
    /// `Ok(Some(..))` for failed. `Err` only when the transaction itself failed.
    pub fn record_outcomes(
        &mut self,
        outcomes: &[(SendOutcome, Timestamp)],
    ) -> Result<Vec<Result<Option<FailOutcome>, StoreError>>, StoreError> {
        let policy = self.retry_policy;
        self.batch(|tx| {
            let mut out = Vec::with_capacity(outcomes.len());
            for (o, now) in outcomes {
                let now = *now;
                out.push(in_savepoint(tx, |tx| match o {
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
                            tx.execute(
                                "UPDATE parts SET next_attempt_at = ?2 WHERE id = ?1",
                                params![part.0, super::ms(*at)],
                            )?;
                        }
                        Ok(None)
                    }
                })?);
            }
            Ok(out)
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

    /// [`Store::due_parts`], read along the `messages(state, priority DESC, created_at)` index
    /// one sendable state at a time (each already in order, stopping after `limit` rows) and
    /// merged, instead of sorting every queued part of the database on each planning round.
    pub fn due_parts_indexed(&self, limit: u32) -> Result<Vec<DuePart>, StoreError> {
        // A first part has no earlier part: CASE and OR skip the subqueries for it (most
        // messages are one part). CROSS JOIN fixes the loop order (messages outer, by the index; parts inner by
        // (message_id, seq)), so the ORDER BY is satisfied without a temporary B-tree.
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.message_id, p.seq, m.part_count, m.recipient_carrier, m.priority,
                    m.created_at, m.not_before, m.deadline, p.next_attempt_at, p.avoid_sims,
                    CASE WHEN p.seq = 1 THEN NULL ELSE
                        (SELECT q.sim_id FROM parts q WHERE q.message_id = p.message_id
                            AND q.seq < p.seq AND q.state IN ('sent', 'delivered')
                            ORDER BY q.seq DESC LIMIT 1) END,
                    (p.seq = 1 OR EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id
                        AND q.seq = p.seq - 1 AND q.state IN ('sent', 'delivered')))
             FROM messages m INDEXED BY messages_state
                  CROSS JOIN parts p INDEXED BY sqlite_autoindex_parts_1 ON p.message_id = m.id
             WHERE m.state = ?1 AND p.state = 'queued'
             ORDER BY m.priority DESC, m.created_at, m.id, p.seq
             LIMIT ?2",
        )?;
        let mut all = Vec::new();
        for state in ["queued", "scheduled", "sending"] {
            let rows = stmt.query_map(params![state, limit], super::messages::due_part_row)?;
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
        all.truncate(limit as usize);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Carrier;
    use crate::store::{InitialState, MessageId, NewMessage, NewPart, SimIdentity};

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

    #[test]
    fn due_parts_indexed_matches_due_parts() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        // Mixed priorities, times, multi-part messages, some parts sent, one cancelled.
        for i in 0..40 {
            let m = msg(i, 1 + i % 3, (i % 3) as i32 - 1);
            store.accept(&[m], t(i as i64 * 7 % 13)).unwrap();
        }
        let due = store.due_parts(1000).unwrap();
        let first = due.iter().find(|d| d.total > 1 && d.seq == 1).unwrap();
        store.claim(first.part, s1, t(100)).unwrap();
        store.mark_sent(first.part, 3, t(101)).unwrap();
        store.cancel(MessageId(5), t(102)).unwrap();
        for limit in [1, 5, 17, 1000] {
            assert_eq!(
                store.due_parts_indexed(limit).unwrap(),
                store.due_parts(limit).unwrap(),
                "limit {limit}"
            );
        }
    }

    #[test]
    fn claim_many_keeps_good_claims_when_one_is_refused() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        let s2 = sim(&mut store, 2);
        store.accept(&[msg(1, 1, 0), msg(2, 2, 0)], t(0)).unwrap();
        let due = store.due_parts(10).unwrap();
        let one = due[0].part;
        let second_of_two = due.iter().find(|d| d.seq == 2).unwrap().part;
        let out = store
            .claim_many(&[(one, s1), (second_of_two, s2)], t(1))
            .unwrap();
        assert_eq!(out[0].as_ref().unwrap().part, one);
        assert!(matches!(out[1], Err(StoreError::NotClaimable { .. })));
        // The refused claim left nothing behind; the good one is committed.
        let left = store.due_parts(10).unwrap();
        assert!(left.iter().all(|d| d.part != one));
        assert!(left.iter().any(|d| d.part == second_of_two));
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
        let due = store.due_parts(10).unwrap();
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
    fn sim_slots_from_log_matches_sim_slots() {
        let mut store = Store::open_in_memory().unwrap();
        let s1 = sim(&mut store, 1);
        store
            .accept(&[msg(1, 1, 0), msg(2, 1, 0), msg(3, 1, 0)], t(0))
            .unwrap();
        let due = store.due_parts(10).unwrap();
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
