//! The one place where the states of messages and parts change: reading them, setting them
//! (checked against the transition tables of `store::state`, logged, audited by the hooks), and
//! deriving a message's state from its parts.
//!
//! What must always hold: every state change goes through [`set_message_state`] /
//! [`set_part_state`]; a message's state is [`derive`]d from its parts, so the two never
//! disagree.

use super::*;
use crate::store::CachedSql;

pub(super) fn message_state(conn: &Connection, id: MessageId) -> Result<MessageState, StoreError> {
    let s: Option<String> = conn
        .query_row("SELECT state FROM messages WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .optional()?;
    let s = s.ok_or(StoreError::NoSuchMessage(id.0))?;
    Ok(MessageState::parse(&s)?)
}

pub(super) fn part_state(conn: &Connection, id: PartId) -> Result<PartState, StoreError> {
    let s: Option<String> = conn
        .prepare_cached("SELECT state FROM parts WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?;
    let s = s.ok_or(StoreError::NoSuchPart(id.0))?;
    Ok(PartState::parse(&s)?)
}

/// Checks that `part` is in flight (`sending`), the only state a send's outcome may leave;
/// `to` is the state the caller is about to set, named in the error.
pub(super) fn expect_in_flight(
    conn: &Connection,
    part: PartId,
    to: PartState,
) -> Result<(), StoreError> {
    let from = part_state(conn, part)?;
    if from != PartState::Sending {
        return Err(StoreError::BadPartTransition {
            id: part.0,
            from,
            to,
        });
    }
    Ok(())
}

/// Changes a message's state (checked and logged) and stamps the matching time column.
pub(crate) fn set_message_state(
    conn: &Connection,
    id: MessageId,
    to: MessageState,
    now: Timestamp,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let from = message_state(conn, id)?;
    if from == to {
        if let Some(e) = error {
            conn.execute_cached(
                "UPDATE messages SET last_error = ?2 WHERE id = ?1",
                params![id.0, e],
            )?;
        }
        return Ok(());
    }
    if !from.can_become(to) {
        return Err(StoreError::BadMessageTransition { id: id.0, from, to });
    }
    let now_ms = ms(now);
    conn.execute_cached(
        "UPDATE messages SET state = ?2,
             sent_at = CASE WHEN ?2 = 'sent' AND sent_at IS NULL THEN ?3 ELSE sent_at END,
             delivered_at = CASE WHEN ?2 = 'delivered' THEN ?3 ELSE delivered_at END,
             finished_at = CASE WHEN ?4 THEN ?3 ELSE NULL END,
             last_error = COALESCE(?5, last_error)
         WHERE id = ?1",
        params![id.0, to.as_str(), now_ms, to.is_final(), error],
    )?;
    tracing::debug!(message = id.0, %from, %to, "message state");
    Ok(())
}

/// Changes a part's state (checked and logged). Other columns are set by the caller in the
/// same transaction.
pub(crate) fn set_part_state(
    conn: &Transaction<'_>,
    id: PartId,
    to: PartState,
    now: Timestamp,
) -> Result<PartState, StoreError> {
    let from = part_state(conn, id)?;
    if from == to {
        return Ok(from);
    }
    if !from.can_become(to) {
        return Err(StoreError::BadPartTransition { id: id.0, from, to });
    }
    conn.execute_cached(
        "UPDATE parts SET state = ?2 WHERE id = ?1",
        params![id.0, to.as_str()],
    )?;
    tracing::debug!(part = id.0, %from, %to, "part state");
    // Credit and audit follow the part in the same transaction (see store::hooks).
    crate::store::hooks::part_changed(conn, id, from, to, now)?;
    Ok(from)
}

/// The message state its parts imply, or `None` when all parts are still queued (the message
/// keeps `queued` / `scheduled` / `held_for_review`).
pub(crate) fn derive(parts: &[PartState]) -> Option<MessageState> {
    use PartState as P;
    let any = |s: P| parts.contains(&s);
    let in_flight = any(P::Sending) || any(P::Queued);
    if any(P::Failed) {
        return Some(MessageState::Failed);
    }
    if any(P::Expired) && !in_flight {
        return Some(MessageState::Expired);
    }
    if any(P::Cancelled) && !any(P::Sending) {
        return Some(MessageState::Cancelled);
    }
    if !parts.is_empty() && parts.iter().all(|p| *p == P::Delivered) {
        return Some(MessageState::Delivered);
    }
    if !parts.is_empty() && parts.iter().all(|p| p.is_sent()) {
        return Some(MessageState::Sent);
    }
    if parts
        .iter()
        .any(|p| matches!(p, P::Sending | P::Sent | P::Delivered | P::Unknown))
    {
        return Some(MessageState::Sending);
    }
    if any(P::Expired) || any(P::Cancelled) {
        return None;
    }
    Some(MessageState::Queued)
}

pub(super) fn part_states(conn: &Connection, id: MessageId) -> Result<Vec<PartState>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT state FROM parts WHERE message_id = ?1")?;
    let names = stmt
        .query_map([id.0], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    names
        .iter()
        .map(|n| PartState::parse(n).map_err(StoreError::from))
        .collect()
}

/// [`recompute`] for other store modules.
pub(in crate::store) fn recompute_message(
    conn: &Connection,
    id: MessageId,
    now: Timestamp,
) -> Result<MessageState, StoreError> {
    recompute(conn, id, now, None)
}

/// Brings a message's state in line with its parts. A transition the table forbids (a part
/// finishing after its message was cancelled) leaves the message as it is.
pub(super) fn recompute(
    conn: &Connection,
    id: MessageId,
    now: Timestamp,
    error: Option<&str>,
) -> Result<MessageState, StoreError> {
    let current = message_state(conn, id)?;
    let Some(mut to) = derive(&part_states(conn, id)?) else {
        return Ok(current);
    };
    if to == MessageState::Queued
        && matches!(
            current,
            MessageState::Scheduled | MessageState::HeldForReview
        )
    {
        to = current;
    }
    if current.can_become(to) {
        set_message_state(conn, id, to, now, error)?;
        Ok(to)
    } else {
        Ok(current)
    }
}
