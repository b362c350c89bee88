//! Claims and send outcomes: a due part claimed for a SIM (`sending`, committed before its PDU
//! reaches a modem), then sent with its TP-MR, failed (the scheduler's decision applied), or
//! `unknown` when nobody can tell whether it left the modem.
//!
//! What must always hold: a part is `sending` in a committed row before its PDU reaches a modem;
//! a failure's meaning (retry at T avoiding the SIM, fail for good, rest the SIM) is decided by
//! `scheduler::RetryPolicy::on_failure`, from facts read in the same transaction that applies it.

use super::*;
use crate::store::CachedSql;

impl Store {
    /// Marks a part `sending` on `sim` and commits, BEFORE the driver writes AT+CMGS. Refuses
    /// a part that is not queued, whose message is not sendable or past its deadline, whose
    /// previous part is not sent, or whose earlier parts went to another SIM.
    pub fn claim(
        &mut self,
        part: PartId,
        sim: SimId,
        now: Timestamp,
    ) -> Result<ClaimedPart, StoreError> {
        self.transaction(|tx| claim_in(tx, part, sim, now))
    }

    /// The network accepted the part (+CMGS: mr).
    pub fn mark_sent(&mut self, part: PartId, tp_mr: u8, now: Timestamp) -> Result<(), StoreError> {
        self.transaction(|tx| mark_sent_in(tx, part, tp_mr, now))
    }

    /// A send failed. Transient failures (modem or SIM) put the part back in the queue with
    /// back-off, remembering the SIM to avoid, and count against the SIM (resting it when the
    /// policy says so); permanent failures, or too many attempts, fail the part, its message and
    /// the message's unsent parts.
    pub fn mark_failed(
        &mut self,
        part: PartId,
        error: &str,
        kind: FailureKind,
        now: Timestamp,
    ) -> Result<FailOutcome, StoreError> {
        let policy = self.retry_policy;
        self.transaction(|tx| mark_failed_in(tx, &policy, part, error, kind, now))
    }

    /// The PDU left for the modem but no confirmation came back (the link broke or timed out
    /// after the payload): the part becomes `unknown`, exactly like a part found `sending` after a
    /// crash, and is not sent again unless the operator retries it.
    pub fn mark_unknown(
        &mut self,
        part: PartId,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| mark_unknown_in(tx, part, error, now))
    }
}

/// The checks every claim makes, by modem or by gateway: the part is queued, its message may
/// still be sent, and its deadline has not passed.
pub(in crate::store) fn check_claimable(
    part: PartId,
    pstate: &str,
    mstate: &str,
    deadline: Option<i64>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let refuse = |why: String| StoreError::NotClaimable { part: part.0, why };
    let pstate = PartState::parse(pstate)?;
    let mstate = MessageState::parse(mstate)?;
    if pstate != PartState::Queued {
        return Err(refuse(format!("part is {pstate}")));
    }
    if !mstate.is_sendable() {
        return Err(refuse(format!("message is {mstate}")));
    }
    if deadline.is_some_and(|d| d <= ms(now)) {
        return Err(refuse("message deadline passed".into()));
    }
    Ok(())
}

/// A message's parts go in order: part `seq` may be claimed only once part `seq - 1` was
/// sent. Returns the SIM that earlier part went to (a modem claim must use the same one).
pub(in crate::store) fn previous_part_sent(
    tx: &Transaction<'_>,
    part: PartId,
    message: MessageId,
    seq: u32,
) -> Result<Option<i64>, StoreError> {
    if seq <= 1 {
        return Ok(None);
    }
    let prev: Option<(String, Option<i64>)> = tx
        .query_row_cached(
            "SELECT state, sim_id FROM parts WHERE message_id = ?1 AND seq = ?2",
            params![message.0, seq - 1],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((prev_state, prev_sim)) = prev else {
        return Err(StoreError::Corrupt(format!(
            "message {} has no part {}",
            message.0,
            seq - 1
        )));
    };
    if !PartState::parse(&prev_state)?.is_sent() {
        return Err(StoreError::NotClaimable {
            part: part.0,
            why: format!("part {} is {prev_state}", seq - 1),
        });
    }
    Ok(prev_sim)
}

pub(in crate::store) fn claim_in(
    tx: &Transaction<'_>,
    part: PartId,
    sim: SimId,
    now: Timestamp,
) -> Result<ClaimedPart, StoreError> {
    let refuse = |why: String| StoreError::NotClaimable { part: part.0, why };
    let row = tx
        .query_row_cached(
            "SELECT p.message_id, p.seq, m.part_count, p.state, m.state, m.deadline, p.pdu_hex,
                    p.cmgs_length, p.attempts
             FROM parts p JOIN messages m ON m.id = p.message_id WHERE p.id = ?1",
            [part.0],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, u32>(7)?,
                    r.get::<_, u32>(8)?,
                ))
            },
        )
        .optional()?
        .ok_or(StoreError::NoSuchPart(part.0))?;
    let (message, seq, total, pstate, mstate, deadline, pdu_hex, cmgs_length, attempts) = row;
    let message = MessageId(message);
    check_claimable(part, &pstate, &mstate, deadline, now)?;
    // A gateway message is never a modem's (issue 12): its sender is a 106 number.
    let gateway: Option<String> = tx.query_row_cached(
        "SELECT gateway FROM messages WHERE id = ?1",
        [message.0],
        |r| r.get(0),
    )?;
    if let Some(g) = gateway {
        return Err(refuse(format!("message goes by gateway {g}")));
    }
    let sim_exists: bool = tx.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM sims WHERE id = ?1)",
        [sim.0],
        |r| r.get(0),
    )?;
    if !sim_exists {
        return Err(StoreError::NoSuchSim(sim.0));
    }
    let prev_sim = previous_part_sent(tx, part, message, seq)?;
    if prev_sim.is_some_and(|s| s != sim.0) {
        return Err(refuse(format!(
            "earlier parts went to SIM {}",
            prev_sim.unwrap_or_default()
        )));
    }
    set_part_state(tx, part, PartState::Sending, now)?;
    tx.execute_cached(
        "UPDATE parts SET sim_id = ?2, attempts = attempts + 1, claimed_at = ?3 WHERE id = ?1",
        params![part.0, sim.0, ms(now)],
    )?;
    tx.execute_cached(
        "INSERT INTO send_attempts (sim_id, part_id, at) VALUES (?1, ?2, ?3)",
        params![sim.0, part.0, ms(now)],
    )?;
    tx.execute_cached(
        "UPDATE sims SET last_used_at = ?2 WHERE id = ?1",
        params![sim.0, ms(now)],
    )?;
    set_message_state(tx, message, MessageState::Sending, now, None)?;
    Ok(ClaimedPart {
        part,
        message,
        seq,
        total,
        sim,
        pdu_hex,
        cmgs_length,
        attempt: attempts + 1,
    })
}

/// The body of [`Store::mark_sent`], inside the caller's transaction.
pub(in crate::store) fn mark_sent_in(
    tx: &Transaction<'_>,
    part: PartId,
    tp_mr: u8,
    now: Timestamp,
) -> Result<(), StoreError> {
    // Only a part in flight can be sent; a second +CMGS for it would be a driver bug.
    expect_in_flight(tx, part, PartState::Sent)?;
    set_part_state(tx, part, PartState::Sent, now)?;
    let (message, sim): (i64, Option<i64>) = tx.query_row_cached(
        "UPDATE parts SET tp_mr = ?2, sent_at = ?3, next_attempt_at = NULL, error = NULL
         WHERE id = ?1 RETURNING message_id, sim_id",
        params![part.0, tp_mr, ms(now)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if let Some(sim) = sim {
        tx.execute_cached(
            "UPDATE sims SET consecutive_errors = 0 WHERE id = ?1",
            [sim],
        )?;
    }
    recompute(tx, MessageId(message), now, None)?;
    if let Some(sim) = sim {
        apply_early_report(tx, part, MessageId(message), SimId(sim), tp_mr, now)?;
    }
    Ok(())
}

/// The body of [`Store::mark_unknown`], inside the caller's transaction.
pub(in crate::store) fn mark_unknown_in(
    tx: &Transaction<'_>,
    part: PartId,
    error: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    set_part_state(tx, part, PartState::Unknown, now)?;
    let message: i64 = tx.query_row_cached(
        // next_attempt_at cleared: an old back-off time must never read as a requeue time
        // (store::settle requeues unknown parts that have one).
        "UPDATE parts SET error = ?2, next_attempt_at = NULL WHERE id = ?1 RETURNING message_id",
        params![part.0, error],
        |r| r.get(0),
    )?;
    recompute(tx, MessageId(message), now, Some(error))?;
    Ok(())
}

/// Part `seq` of `message` failed for good: its queued siblings will not be sent (the
/// recipient could not reassemble the message without it) and the message fails.
pub(super) fn fail_message(
    tx: &Transaction<'_>,
    message: MessageId,
    seq: u32,
    why: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let sibling_error = format!("not sent: part {seq} failed");
    for p in part_ids_in(tx, message, &[PartState::Queued])? {
        tx.execute_cached(
            "UPDATE parts SET error = ?2 WHERE id = ?1",
            params![p.0, sibling_error],
        )?;
        set_part_state(tx, p, PartState::Failed, now)?;
    }
    set_message_state(tx, message, MessageState::Failed, now, Some(why))
}

pub(in crate::store) fn mark_failed_in(
    tx: &Transaction<'_>,
    policy: &RetryPolicy,
    part: PartId,
    error: &str,
    kind: FailureKind,
    now: Timestamp,
) -> Result<FailOutcome, StoreError> {
    let (message, seq, sim, attempts, avoid): (i64, u32, Option<i64>, u32, String) = tx
        .query_row(
            "SELECT message_id, seq, sim_id, attempts, avoid_sims FROM parts WHERE id = ?1",
            [part.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?
        .ok_or(StoreError::NoSuchPart(part.0))?;
    let message = MessageId(message);
    let state = part_state(tx, part)?;
    if state != PartState::Sending {
        return Err(StoreError::BadPartTransition {
            id: part.0,
            from: state,
            to: PartState::Failed,
        });
    }
    // The SIM's health, counted first: the decision reads the count after this failure.
    let sim_errors = match (sim, policy.counts_against_sim(kind)) {
        (Some(sim), true) => Some(tx.query_row_cached(
            "UPDATE sims SET consecutive_errors = consecutive_errors + 1, last_error = ?2
             WHERE id = ?1 RETURNING consecutive_errors",
            params![sim, error],
            |r| r.get::<_, u32>(0),
        )?),
        _ => None,
    };
    // A message cancelled or expired while this part was in flight takes no retry.
    let message_closed = !message_state(tx, message)?.is_sendable();
    let facts = FailureFacts {
        kind,
        attempts,
        sim_errors,
        message_closed,
    };
    // The scheduler decides what the failure means; this transaction only applies it.
    let decision = policy.on_failure(&facts, error, now);
    if let (Some(sim), Some(until)) = (sim, decision.rest_sim_until) {
        tx.execute_cached(
            "UPDATE sims SET rested_until = ?2 WHERE id = ?1",
            params![sim, ms(until)],
        )?;
        let errors = sim_errors.unwrap_or_default();
        tracing::warn!(sim, errors, until = %until, "SIM rested after errors");
    }
    let at = match decision.part {
        PartFate::Fail {
            why,
            fail_message: whole_message,
        } => {
            // The error first: the audit record the state change appends carries it.
            tx.execute_cached(
                "UPDATE parts SET error = ?2, next_attempt_at = NULL WHERE id = ?1",
                params![part.0, why],
            )?;
            set_part_state(tx, part, PartState::Failed, now)?;
            if whole_message {
                fail_message(tx, message, seq, &why, now)?;
            } else {
                recompute(tx, message, now, None)?;
            }
            return Ok(FailOutcome::Failed);
        }
        PartFate::Requeue { at } => at,
    };
    let mut avoid_list = parse_avoid(&avoid);
    if let Some(s) = sim.map(SimId) {
        if !avoid_list.contains(&s) {
            avoid_list.push(s);
        }
    }
    let avoid_text = avoid_list
        .iter()
        .map(|s| s.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    set_part_state(tx, part, PartState::Queued, now)?;
    tx.execute_cached(
        "UPDATE parts SET sim_id = NULL, next_attempt_at = ?2, avoid_sims = ?3, error = ?4
         WHERE id = ?1",
        params![part.0, ms(at), avoid_text, error],
    )?;
    tx.execute_cached(
        "UPDATE messages SET last_error = ?2 WHERE id = ?1",
        params![message.0, error],
    )?;
    Ok(FailOutcome::Retrying { at })
}
