//! Settling `unknown` parts without an operator: by a status report for the same SIM and
//! recipient inside the settle window, by a late `+CMGS: <mr>` answer of the modem, or, for
//! parts made unknown by an ambiguous modem error when the operator chose
//! `modems.on_ambiguous = "retry"`, by a requeue once the settle window passed with no report.
//!
//! What must always hold: only evidence that the network took the part (a report about it, the
//! modem's own reference) turns `unknown` into `sent`; nothing but the operator's explicit
//! choice (`on_ambiguous = "retry"`, stamped on the part as its `next_attempt_at` when it became
//! unknown) requeues an unknown part; a part whose PDU left on a link that then broke is never
//! requeued here (its `next_attempt_at` stays NULL). Each change goes through
//! `set_part_state`, so credit and audit follow in the same transaction.

use crate::store::CachedSql;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, OptionalExtension, Transaction};

use super::messages::{recompute_message, same_recipient, set_part_state};
use super::state::PartState;
use super::{ms, ts, MessageId, PartId, SimId, Store, StoreError};

/// How long after its claim an `unknown` part can be settled by a report or a late answer
/// when the configuration says nothing (`modems.settle_window`).
pub const DEFAULT_SETTLE_WINDOW: SignedDuration = SignedDuration::from_mins(10);

/// An `unknown` part becomes `sent` (with `tp_mr` when known): the network has it. Returns
/// the message it belongs to.
fn settle_as_sent(
    tx: &Transaction<'_>,
    part: PartId,
    tp_mr: Option<u8>,
    why: &str,
    now: Timestamp,
) -> Result<MessageId, StoreError> {
    // The error text first: the audit record the state change appends carries it.
    let message: i64 = tx.query_row_cached(
        "UPDATE parts SET error = ?2, tp_mr = COALESCE(?3, tp_mr), next_attempt_at = NULL,
             sent_at = COALESCE(claimed_at, ?4)
         WHERE id = ?1 RETURNING message_id",
        params![part.0, why, tp_mr, ms(now)],
        |r| r.get(0),
    )?;
    set_part_state(tx, part, PartState::Sent, now)?;
    recompute_message(tx, MessageId(message), now)?;
    Ok(MessageId(message))
}

/// A status report that matched no sent part: is it about an `unknown` part of the same SIM and
/// recipient claimed inside the settle window (and, if that part has a TP-MR, the same one)?
/// If so the part is settled as sent (the network had it) and returned with its message, for the
/// report to be applied to it like to any sent part.
pub(super) fn settle_unknown_by_report_in(
    tx: &Transaction<'_>,
    sim: SimId,
    tp_mr: u8,
    recipient: &str,
    window: SignedDuration,
    now: Timestamp,
) -> Result<Option<(PartId, MessageId)>, StoreError> {
    // A report whose reference belongs to a part of this SIM and recipient that did leave
    // (sent, delivered, failed after sending, however old) is that part's, not an unknown
    // one's: an old report must never settle a newer part.
    let known: Vec<String> = tx
        .prepare_cached(
            "SELECT m.recipient FROM parts p JOIN messages m ON m.id = p.message_id
             WHERE p.sim_id = ?1 AND p.tp_mr = ?2 AND p.state != 'unknown'",
        )?
        .query_map(params![sim.0, tp_mr], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if known.iter().any(|r| same_recipient(r, recipient)) {
        return Ok(None);
    }
    let since = ms(now) - window.as_millis() as i64;
    let candidates: Vec<(i64, String, Option<u8>)> = tx
        .prepare_cached(
            "SELECT p.id, m.recipient, p.tp_mr FROM parts p JOIN messages m ON m.id = p.message_id
             WHERE p.sim_id = ?1 AND p.state = 'unknown' AND p.claimed_at >= ?2
             ORDER BY p.claimed_at DESC, p.id DESC",
        )?
        .query_map(params![sim.0, since], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let Some((part, _, _)) = candidates
        .into_iter()
        .find(|(_, rcpt, mr)| mr.is_none_or(|m| m == tp_mr) && same_recipient(rcpt, recipient))
    else {
        return Ok(None);
    };
    let part = PartId(part);
    let message = settle_as_sent(tx, part, Some(tp_mr), "settled by a status report", now)?;
    tracing::info!(
        part = part.0,
        "unknown part settled as sent by a status report"
    );
    Ok(Some((part, message)))
}

impl Store {
    /// How long after its claim an `unknown` part may be settled by a report or a late answer
    /// (and, with `on_ambiguous = "retry"`, how long it waits for one before it is requeued).
    pub fn set_settle_window(&mut self, window: SignedDuration) {
        self.settle_window = window;
    }

    pub fn settle_window(&self) -> SignedDuration {
        self.settle_window
    }

    /// A late `+CMGS: <mr>` from the modem carrying `sim`: the most recent `unknown` part of that
    /// SIM without a reference, claimed inside the settle window, was taken by the network.
    /// Returns the part settled, if any.
    pub fn settle_late_reference(
        &mut self,
        sim: SimId,
        tp_mr: u8,
        now: Timestamp,
    ) -> Result<Option<PartId>, StoreError> {
        let since = ms(now) - self.settle_window.as_millis() as i64;
        self.transaction(|tx| {
            let part: Option<i64> = tx
                .query_row(
                    "SELECT id FROM parts WHERE sim_id = ?1 AND state = 'unknown'
                         AND tp_mr IS NULL AND claimed_at >= ?2
                     ORDER BY claimed_at DESC, id DESC LIMIT 1",
                    params![sim.0, since],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(part) = part.map(PartId) else {
                return Ok(None);
            };
            settle_as_sent(tx, part, Some(tp_mr), "settled by a late +CMGS answer", now)?;
            tracing::info!(
                part = part.0,
                mr = tp_mr,
                "unknown part settled by a late +CMGS answer"
            );
            Ok(Some(part))
        })
    }

    /// `unknown` parts whose automatic retry time has come (only parts made unknown by an
    /// ambiguous modem error under `on_ambiguous = "retry"` have one) go back to the queue,
    /// avoiding the SIM that gave the ambiguous answer. Returns them.
    pub fn requeue_unknown_due(&mut self, now: Timestamp) -> Result<Vec<PartId>, StoreError> {
        self.transaction(|tx| {
            let due: Vec<(i64, i64, Option<i64>, String)> = tx
                .prepare_cached(
                    "SELECT id, message_id, sim_id, avoid_sims FROM parts
                     WHERE state = 'unknown' AND next_attempt_at IS NOT NULL
                       AND next_attempt_at <= ?1
                     ORDER BY id",
                )?
                .query_map([ms(now)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut requeued = Vec::with_capacity(due.len());
            for (part, message, sim, avoid) in due {
                let avoid = match sim {
                    Some(s) if !avoid.split(',').any(|a| a == s.to_string()) => {
                        if avoid.is_empty() {
                            s.to_string()
                        } else {
                            format!("{avoid},{s}")
                        }
                    }
                    _ => avoid,
                };
                tx.execute_cached(
                    "UPDATE parts SET error = 'no report within the settle window: retried \
                         (modems.on_ambiguous = retry)',
                         next_attempt_at = NULL, sim_id = NULL, avoid_sims = ?2
                     WHERE id = ?1",
                    params![part, avoid],
                )?;
                set_part_state(tx, PartId(part), PartState::Queued, now)?;
                recompute_message(tx, MessageId(message), now)?;
                tracing::warn!(part, "ambiguous part retried after its settle window");
                requeued.push(PartId(part));
            }
            Ok(requeued)
        })
    }

    /// When the next automatic requeue of an `unknown` part is due, if any.
    pub fn next_unknown_retry(&self) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> = self.conn.query_row_cached(
            "SELECT MIN(next_attempt_at) FROM parts WHERE state = 'unknown'",
            [],
            |r| r.get(0),
        )?;
        Ok(at.map(ts))
    }
}
