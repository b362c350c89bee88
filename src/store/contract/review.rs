//! The review queue in SQL: holding a message for review, listing pending ones, and closing a
//! review with its decision.
//!
//! What must always hold: a message is decided at most once; every decision appends an audit
//! record in the same transaction.

use super::*;

/// A message waiting for (or decided by) a reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub message_id: i64,
    pub account_id: i64,
    pub category: String,
    pub word: String,
    pub held_at: Timestamp,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// Send it.
    Approve,
    /// Do not send; the reserved credit is refunded.
    Reject,
    /// Prohibited content: not sent, charged, and the account is blacklisted.
    RejectAsViolation,
}

impl ReviewDecision {
    fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Approve => "approve",
            ReviewDecision::Reject => "reject",
            ReviewDecision::RejectAsViolation => "violation",
        }
    }
}

/// What a review decision did (the daemon schedules an approved message, and marks a rejected
/// one `rejected`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewResolution {
    pub message_id: i64,
    pub decision: ReviewDecision,
    pub refunded: u64,
    pub charged: u64,
}

/// Holds a message for review (audited). Its credit stays reserved until the decision.
pub fn hold_for_review(
    tx: &Transaction<'_>,
    message_id: i64,
    account_id: i64,
    category: &str,
    word: &str,
    now: Timestamp,
) -> Result<()> {
    tx.execute(
        "INSERT INTO review_queue (message_id, account_id, category, word, held_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![message_id, account_id, category, word, now.as_millisecond()],
    )?;
    let mut e = AuditEntry::new(AuditEvent::Held, now, "daemon");
    e.account_id = Some(account_id);
    e.message_id = Some(message_id);
    e.outcome = format!("held for review: {category}");
    append(tx, e)?;
    Ok(())
}

/// Messages waiting for a reviewer, oldest first.
pub fn pending_reviews(conn: &Connection) -> Result<Vec<ReviewItem>> {
    let mut st = conn.prepare(
        "SELECT message_id, account_id, category, word, held_at FROM review_queue
         WHERE decision IS NULL ORDER BY held_at, message_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (message_id, account_id, category, word, at) = r?;
        out.push(ReviewItem {
            message_id,
            account_id,
            category,
            word,
            held_at: ts(at)?,
        });
    }
    Ok(out)
}

/// An administrator cancelled a message held for review: its pending review row is closed as
/// `cancelled` (audited), in the caller's transaction; the caller cancels the message, whose
/// parts' hooks refund its credit. Returns false if no review was pending.
pub fn close_review(
    tx: &Transaction<'_>,
    message_id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let account_id: Option<i64> = tx
        .query_row(
            "UPDATE review_queue SET decision = 'cancelled', reviewer = ?2, decided_at = ?3
             WHERE message_id = ?1 AND decision IS NULL RETURNING account_id",
            params![message_id, actor, now.as_millisecond()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(account_id) = account_id else {
        return Ok(false);
    };
    let mut e = AuditEntry::new(AuditEvent::Reviewed, now, actor);
    e.account_id = Some(account_id);
    e.message_id = Some(message_id);
    e.outcome = "cancelled by an administrator while held for review; not sent".into();
    append(tx, e)?;
    Ok(true)
}

/// Records a reviewer's decision and settles the message's credit: approve keeps the
/// reservation, reject refunds it, violation commits it and blacklists the account. Audited.
pub fn decide_review(
    tx: &Transaction<'_>,
    message_id: i64,
    decision: ReviewDecision,
    reviewer: &str,
    now: Timestamp,
) -> Result<ReviewResolution> {
    let item: Option<(i64, String)> = tx
        .query_row(
            "SELECT account_id, category FROM review_queue
             WHERE message_id = ?1 AND decision IS NULL",
            [message_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (account_id, category) = item.ok_or(ContractError::ReviewNotPending(message_id))?;
    tx.execute(
        "UPDATE review_queue SET decision = ?2, reviewer = ?3, decided_at = ?4
         WHERE message_id = ?1",
        params![
            message_id,
            decision.as_str(),
            reviewer,
            now.as_millisecond()
        ],
    )?;
    let actor = format!("reviewer:{reviewer}");
    let (mut refunded, mut charged) = (0, 0);
    match decision {
        ReviewDecision::Approve => {}
        ReviewDecision::Reject => refunded = refund_message(tx, message_id, now)?,
        ReviewDecision::RejectAsViolation => charged = commit_message(tx, message_id, now)?,
    }
    let mut e = AuditEntry::new(AuditEvent::Reviewed, now, &actor);
    e.account_id = Some(account_id);
    e.message_id = Some(message_id);
    e.outcome = format!(
        "{} ({category}); refunded {refunded}, charged {charged}",
        decision.as_str()
    );
    append(tx, e)?;
    if decision == ReviewDecision::RejectAsViolation {
        blacklist_account(
            tx,
            account_id,
            &format!("prohibited content: {category}"),
            &actor,
            now,
        )?;
    }
    Ok(ReviewResolution {
        message_id,
        decision,
        refunded,
        charged,
    })
}
