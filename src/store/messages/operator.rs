//! Operator actions on messages: crash recovery (`sending` becomes `unknown`), retry, settlement
//! of `unknown` parts (audited under the operator's name), cancel and expiry.
//!
//! What must always hold: each action is one transaction; an `unknown` part is never sent again
//! unless an operator retries it; actions taken for an operator are audited under their name.

use super::*;

impl Store {
    /// At start-up: every `sending` part becomes `unknown` (it may or may not have left the
    /// modem). Returns them; they are not sent again unless the operator retries.
    pub fn recover_after_crash(&mut self, now: Timestamp) -> Result<Vec<PartId>, StoreError> {
        self.transaction(|tx| {
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM parts WHERE state = 'sending' ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                set_part_state(tx, PartId(*id), PartState::Unknown, now)?;
                tx.execute(
                    "UPDATE parts SET error = 'daemon stopped while sending',
                         next_attempt_at = NULL WHERE id = ?1",
                    [id],
                )?;
            }
            if !ids.is_empty() {
                tracing::warn!(
                    parts = ids.len(),
                    at = %now,
                    "parts were sending when the daemon stopped; marked unknown"
                );
            }
            Ok(ids.into_iter().map(PartId).collect())
        })
    }

    /// The operator asks to send again: `unknown` and `failed` parts go back to the queue.
    /// Returns how many parts were requeued.
    pub fn retry(&mut self, id: MessageId, now: Timestamp) -> Result<usize, StoreError> {
        self.transaction(|tx| retry_in(tx, id, now))
    }

    /// [`Store::retry`] asked by an operator through the API: refused (nothing written) when
    /// the message has no `unknown` or `failed` part, and recorded in the audit log with
    /// `actor` (e.g. `admin:root (uid 0)`) in the same transaction.
    pub fn operator_retry(
        &mut self,
        id: MessageId,
        actor: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            let n = retry_in(tx, id, now)?;
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "message {} has no unknown or failed part to send again",
                    id.0
                )));
            }
            audit_operator(
                tx,
                id,
                "retried",
                actor,
                &format!("operator retry: {n} part(s) queued again (may send a duplicate)"),
                now,
            )?;
            Ok(n)
        })
    }

    /// The operator settles an `unknown` part.
    pub fn settle_unknown(
        &mut self,
        part: PartId,
        verdict: Settlement,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| settle_in(tx, part, verdict, now))
    }

    /// The operator settles every `unknown` part of message `id` (as [`Store::settle_unknown`]
    /// would), recorded in the audit log with `actor` in the same transaction. Returns how many
    /// parts were settled; refused (nothing written) when the message has none.
    pub fn operator_settle(
        &mut self,
        id: MessageId,
        verdict: Settlement,
        actor: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            let state = message_state(tx, id)?;
            let parts = part_ids_in(tx, id, &[PartState::Unknown])?;
            if parts.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "message {} has no unknown part to settle (it is {state}); only a part \
                     whose fate is unknown can be settled",
                    id.0
                )));
            }
            for p in &parts {
                settle_in(tx, *p, verdict, now)?;
            }
            let what = match verdict {
                Settlement::Sent => "as sent (credit used)",
                Settlement::NotSent => "as not sent (credit refunded)",
            };
            audit_operator(
                tx,
                id,
                "settled",
                actor,
                &format!("operator settled {} unknown part(s) {what}", parts.len()),
                now,
            )?;
            Ok(parts.len())
        })
    }

    /// Cancels the unsent parts of a message; parts already sent (or in flight) stay. A message
    /// held for review is refused: its sender cannot withdraw it from the reviewer (content that
    /// must be judged, and charged if prohibited, would escape judgement); see
    /// [`Store::cancel_by_admin`].
    pub fn cancel(&mut self, id: MessageId, now: Timestamp) -> Result<CancelOutcome, StoreError> {
        self.transaction(|tx| cancel_in(tx, id, None, now))
    }

    /// An administrator's cancel: as [`Store::cancel`], and a message held for review is
    /// cancelled too (its credit refunded), its review row closed as `cancelled` by `actor`
    /// (audited) in the same transaction, so no review is left pending that nothing can act on.
    pub fn cancel_by_admin(
        &mut self,
        id: MessageId,
        actor: &str,
        now: Timestamp,
    ) -> Result<CancelOutcome, StoreError> {
        self.transaction(|tx| cancel_in(tx, id, Some(actor), now))
    }

    /// Expires the queued parts of sendable messages whose deadline has passed; returns the
    /// messages touched.
    pub fn expire(&mut self, now: Timestamp) -> Result<Vec<MessageId>, StoreError> {
        self.transaction(|tx| {
            let ids: Vec<i64> = tx
                .prepare(
                    "SELECT DISTINCT m.id FROM messages m JOIN parts p ON p.message_id = m.id
                     WHERE m.deadline IS NOT NULL AND m.deadline <= ?1
                       AND m.state IN ('queued', 'scheduled', 'sending')
                       AND p.state = 'queued'
                     ORDER BY m.id",
                )?
                .query_map([ms(now)], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                let id = MessageId(*id);
                for p in part_ids_in(tx, id, &[PartState::Queued])? {
                    set_part_state(tx, p, PartState::Expired, now)?;
                }
                recompute(tx, id, now, Some("deadline passed"))?;
            }
            Ok(ids.into_iter().map(MessageId).collect())
        })
    }
}

/// The body of [`Store::cancel`] and [`Store::cancel_by_admin`] (`admin`: the actor).
pub(super) fn cancel_in(
    tx: &Transaction<'_>,
    id: MessageId,
    admin: Option<&str>,
    now: Timestamp,
) -> Result<CancelOutcome, StoreError> {
    let state = message_state(tx, id)?;
    if state.is_final() {
        return Err(StoreError::Invalid(format!(
            "message {} is already {state}",
            id.0
        )));
    }
    if state == MessageState::HeldForReview {
        let Some(actor) = admin else {
            return Err(StoreError::Invalid(format!(
                "message {} is held for review: it cannot be cancelled while it waits; a \
                 reviewer approves or rejects it (an administrator may cancel it, which closes \
                 the review)",
                id.0
            )));
        };
        crate::store::contract::close_review(tx, id.0, actor, now)
            .map_err(|e| StoreError::Contract(e.to_string()))?;
    }
    let queued = part_ids_in(tx, id, &[PartState::Queued])?;
    for p in &queued {
        set_part_state(tx, *p, PartState::Cancelled, now)?;
    }
    let total = part_states(tx, id)?.len();
    if !queued.is_empty() || state == MessageState::HeldForReview {
        set_message_state(tx, id, MessageState::Cancelled, now, None)?;
    }
    Ok(CancelOutcome {
        cancelled_parts: queued.len(),
        already_sent_parts: total - queued.len(),
    })
}

pub(super) fn part_ids_in(
    conn: &Connection,
    id: MessageId,
    states: &[PartState],
) -> Result<Vec<PartId>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, state FROM parts WHERE message_id = ?1 ORDER BY seq")?;
    let rows = stmt
        .query_map([id.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (pid, s) in rows {
        if states.contains(&PartState::parse(&s)?) {
            out.push(PartId(pid));
        }
    }
    Ok(out)
}

pub(super) fn parse_avoid(s: &str) -> Vec<SimId> {
    s.split(',')
        .filter_map(|x| x.trim().parse::<i64>().ok())
        .map(SimId)
        .collect()
}

/// Whether a report's recipient names the stored recipient (reports may use another format):
/// equal [`number::key`]s. No suffix guessing: an empty or alphanumeric report recipient keys
/// to itself, which equals no stored (parsed) recipient.
pub(in crate::store) fn same_recipient(a: &str, b: &str) -> bool {
    number::key(a) == number::key(b)
}

/// [`Store::retry`] inside the caller's transaction.
pub(super) fn retry_in(
    tx: &Transaction<'_>,
    id: MessageId,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let state = message_state(tx, id)?;
    if matches!(
        state,
        MessageState::Cancelled | MessageState::Expired | MessageState::Rejected
    ) {
        return Err(StoreError::Invalid(format!(
            "message {} is {state}; it cannot be retried",
            id.0
        )));
    }
    let deadline: Option<i64> =
        tx.query_row("SELECT deadline FROM messages WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })?;
    if deadline.is_some_and(|d| d <= ms(now)) {
        return Err(StoreError::Invalid(format!(
            "message {}: its deadline has passed; it cannot be retried",
            id.0
        )));
    }
    let parts = part_ids_in(tx, id, &[PartState::Unknown, PartState::Failed])?;
    for p in &parts {
        set_part_state(tx, *p, PartState::Queued, now)?;
        tx.execute(
            // A fresh budget of attempts: the operator decided to try again.
            "UPDATE parts SET next_attempt_at = NULL, sim_id = NULL, report_status = NULL,
                 attempts = 0, avoid_sims = ''
             WHERE id = ?1",
            [p.0],
        )?;
    }
    if !parts.is_empty() {
        recompute(tx, id, now, None)?;
        tracing::info!(message = id.0, parts = parts.len(), "operator retry");
    }
    Ok(parts.len())
}

/// [`Store::settle_unknown`] inside the caller's transaction. Settled as not sent, the part
/// fails like a permanent failure: with it the message's parts not sent yet (they could only
/// follow it), so none of them stays queued with its credit reserved in a failed message.
pub(super) fn settle_in(
    tx: &Transaction<'_>,
    part: PartId,
    verdict: Settlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    let from = part_state(tx, part)?;
    if from != PartState::Unknown {
        return Err(StoreError::Invalid(format!(
            "part {} is {from}, not unknown; only a part whose fate is unknown can be settled",
            part.0
        )));
    }
    let (message, seq): (i64, u32) = tx.query_row(
        "SELECT message_id, seq FROM parts WHERE id = ?1",
        [part.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match verdict {
        Settlement::Sent => {
            set_part_state(tx, part, PartState::Sent, now)?;
            tx.execute(
                "UPDATE parts SET sent_at = COALESCE(claimed_at, ?2),
                     error = 'settled as sent by operator'
                 WHERE id = ?1",
                params![part.0, ms(now)],
            )?;
        }
        Settlement::NotSent => {
            tx.execute(
                "UPDATE parts SET error = 'settled as not sent by operator' WHERE id = ?1",
                [part.0],
            )?;
            set_part_state(tx, part, PartState::Failed, now)?;
            let sibling_error = format!("not sent: part {seq} settled as not sent");
            for p in part_ids_in(tx, MessageId(message), &[PartState::Queued])? {
                tx.execute(
                    "UPDATE parts SET error = ?2 WHERE id = ?1",
                    params![p.0, sibling_error],
                )?;
                set_part_state(tx, p, PartState::Failed, now)?;
            }
        }
    }
    let why = (verdict == Settlement::NotSent).then_some("settled as not sent by operator");
    recompute(tx, MessageId(message), now, why)?;
    Ok(())
}

/// Appends the audit record of an operator's action on message `id` (retry, settle).
pub(super) fn audit_operator(
    tx: &Transaction<'_>,
    id: MessageId,
    event: &str,
    actor: &str,
    outcome: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (account_id, recipient, parts): (Option<i64>, String, i64) = tx.query_row(
        "SELECT (SELECT a.id FROM accounts a WHERE a.name = m.account), m.recipient,
                m.part_count
         FROM messages m WHERE m.id = ?1",
        [id.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut e = crate::audit::AuditEntry::new(
        crate::audit::AuditEvent::Other(event.to_string()),
        now,
        actor,
    );
    e.account_id = account_id;
    e.message_id = Some(id.0);
    // Canonical, as every audit record keeps numbers (an export by number finds it).
    e.recipient = Some(crate::number::key(&recipient));
    e.parts = Some(parts);
    e.outcome = outcome.to_string();
    crate::store::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))?;
    Ok(())
}
