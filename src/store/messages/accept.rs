//! Acceptance of messages: validating and inserting accepted messages with their parts, and
//! releasing or rejecting a message held for review.
//!
//! What must always hold: a message and its parts are inserted in one transaction, queued or
//! held for review as acceptance decided; a rejected message never sends.

use super::*;
use crate::store::CachedSql;

impl Store {
    /// Accepts a batch of messages in one transaction; all or nothing.
    pub fn accept(
        &mut self,
        batch: &[NewMessage],
        now: Timestamp,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.transaction(|tx| insert_messages(tx, batch, now))
    }
}

pub(super) fn validate(m: &NewMessage, index: usize) -> Result<(), StoreError> {
    let bad = |what: String| Err(StoreError::Invalid(format!("message {index}: {what}")));
    if m.recipient.trim().is_empty() {
        return bad("recipient is empty".into());
    }
    if m.parts.is_empty() || m.parts.len() > 255 {
        return bad(format!("{} parts (1-255 allowed)", m.parts.len()));
    }
    for (i, p) in m.parts.iter().enumerate() {
        let bytes = match hex::decode(&p.pdu_hex) {
            Ok(b) => b,
            Err(e) => return bad(format!("part {}: PDU is not hex: {e}", i + 1)),
        };
        if p.cmgs_length == 0 || p.cmgs_length as usize > bytes.len() {
            return bad(format!(
                "part {}: CMGS length {} outside 1..={}",
                i + 1,
                p.cmgs_length,
                bytes.len()
            ));
        }
    }
    Ok(())
}

/// Inserts messages and their parts inside the caller's transaction; returns their ids in
/// order. Nothing is inserted when any message is invalid (the caller's rollback undoes rows
/// written before the error).
pub fn insert_messages(
    tx: &Transaction<'_>,
    batch: &[NewMessage],
    now: Timestamp,
) -> Result<Vec<MessageId>, StoreError> {
    for (i, m) in batch.iter().enumerate() {
        validate(m, i)?;
    }
    let mut ids = Vec::with_capacity(batch.len());
    let mut insert_message = tx.prepare_cached(
        "INSERT INTO messages (account, recipient, recipient_carrier, text, encoding, part_count,
             state, priority, not_before, deadline, report_requested, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut insert_part = tx.prepare_cached(
        "INSERT INTO parts (message_id, seq, state, pdu_hex, cmgs_length)
         VALUES (?1, ?2, 'queued', ?3, ?4)",
    )?;
    for m in batch {
        let state = match m.initial {
            InitialState::HeldForReview => MessageState::HeldForReview,
            InitialState::Ready if m.not_before.is_some_and(|t| t > now) => MessageState::Scheduled,
            InitialState::Ready => MessageState::Queued,
        };
        insert_message.execute(params![
            m.account,
            m.recipient,
            m.recipient_carrier.as_str(),
            m.text,
            m.encoding,
            m.parts.len() as i64,
            state.as_str(),
            m.priority,
            m.not_before.map(ms),
            m.deadline.map(ms),
            m.report_requested,
            ms(now),
        ])?;
        let id = MessageId(tx.last_insert_rowid());
        for (i, p) in m.parts.iter().enumerate() {
            insert_part.execute(params![
                id.0,
                i as i64 + 1,
                p.pdu_hex.to_ascii_uppercase(),
                p.cmgs_length
            ])?;
        }
        tracing::debug!(
            message = id.0,
            recipient = %number::mask(&m.recipient),
            parts = m.parts.len(),
            %state,
            "accepted"
        );
        ids.push(id);
    }
    Ok(ids)
}

/// Review approved: the held message becomes due (contract layer, in its transaction).
pub fn release_from_review(
    tx: &Transaction<'_>,
    id: MessageId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let from = message_state(tx, id)?;
    if from != MessageState::HeldForReview {
        return Err(StoreError::Invalid(format!(
            "message {} is {from}, not held for review",
            id.0
        )));
    }
    let not_before: Option<i64> = tx.query_row_cached(
        "SELECT not_before FROM messages WHERE id = ?1",
        [id.0],
        |r| r.get(0),
    )?;
    let to = if not_before.is_some_and(|t| t > ms(now)) {
        MessageState::Scheduled
    } else {
        MessageState::Queued
    };
    set_message_state(tx, id, to, now, None)
}

/// Policy refused the message: its parts are cancelled, the message `rejected`.
pub fn reject(
    tx: &Transaction<'_>,
    id: MessageId,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    for part in part_ids_in(tx, id, &[PartState::Queued])? {
        set_part_state(tx, part, PartState::Cancelled, now)?;
    }
    set_message_state(tx, id, MessageState::Rejected, now, Some(reason))
}
