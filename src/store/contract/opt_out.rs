//! Opt-outs in SQL: the recent-sends table that tells which accounts messaged a number, opt-outs
//! recorded from inbound replies or by operators, and the facts acceptance decides on.
//!
//! What must always hold: an opt-out applies to the accounts that recently messaged the sender;
//! every opt-out change appends an audit record in the same transaction.

use super::*;
use crate::store::CachedSql;

/// Records that `account_id` sent to `recipient` (the daemon calls this as it sends).
pub fn record_send(
    tx: &Transaction<'_>,
    account_id: i64,
    recipient: &str,
    now: Timestamp,
) -> Result<()> {
    tx.execute_cached(
        "INSERT INTO recent_sends (account_id, recipient, sent_at) VALUES (?1, ?2, ?3)",
        params![account_id, key(recipient), now.as_millisecond()],
    )?;
    Ok(())
}

/// Forgets sends older than `before` (the table only serves opt-out attribution).
pub fn prune_recent_sends(tx: &Transaction<'_>, before: Timestamp) -> Result<u64> {
    Ok(tx.execute_cached(
        "DELETE FROM recent_sends WHERE sent_at < ?1",
        [before.as_millisecond()],
    )? as u64)
}

/// The accounts that sent to `recipient` since `since`.
pub fn accounts_that_messaged(
    conn: &Connection,
    recipient: &str,
    since: Timestamp,
) -> Result<Vec<i64>> {
    let mut st = conn.prepare(
        "SELECT DISTINCT account_id FROM recent_sends WHERE recipient = ?1 AND sent_at >= ?2
         ORDER BY account_id",
    )?;
    let rows = st.query_map(params![key(recipient), since.as_millisecond()], |r| {
        r.get(0)
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

/// Puts `number` on an account's opt-out list (audited). Returns false if it already was.
pub fn add_opt_out(
    tx: &Transaction<'_>,
    account_id: i64,
    number: &str,
    source: &str,
    now: Timestamp,
) -> Result<bool> {
    let number = key(number);
    let n = tx.execute_cached(
        "INSERT OR IGNORE INTO opt_outs (account_id, number, opted_out_at, source)
         VALUES (?1, ?2, ?3, ?4)",
        params![account_id, number, now.as_millisecond(), source],
    )?;
    if n > 0 {
        let mut e = AuditEntry::new(AuditEvent::OptOut, now, "inbound");
        e.account_id = Some(account_id);
        e.recipient = Some(number);
        e.outcome = source.to_string();
        append(tx, e)?;
    }
    Ok(n > 0)
}

/// An entry of an opt-out list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    pub number: String,
    pub at: Timestamp,
    pub source: String,
}

/// An account's opt-out list.
pub fn opt_outs(conn: &Connection, account_id: i64) -> Result<Vec<OptOut>> {
    let mut st = conn.prepare(
        "SELECT number, opted_out_at, source FROM opt_outs WHERE account_id = ?1 ORDER BY number",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (number, at, source) = r?;
        out.push(OptOut {
            number,
            at: ts(at)?,
            source,
        });
    }
    Ok(out)
}

/// Takes `number` off an account's opt-out list, e.g. when the recipient consents again in
/// writing (an admin act with a reason; audited). Returns false if it was not there.
pub fn remove_opt_out(
    tx: &Transaction<'_>,
    account_id: i64,
    number: &str,
    reason: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let number = key(number);
    let n = tx.execute_cached(
        "DELETE FROM opt_outs WHERE account_id = ?1 AND number = ?2",
        params![account_id, number],
    )?;
    if n > 0 {
        let mut e = AuditEntry::new(AuditEvent::OptIn, now, actor);
        e.account_id = Some(account_id);
        e.recipient = Some(number);
        e.outcome = reason.to_string();
        append(tx, e)?;
    }
    Ok(n > 0)
}

/// Whether `number` opted out of `account_id`.
pub fn is_opted_out(conn: &Connection, account_id: i64, number: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM opt_outs WHERE account_id = ?1 AND number = ?2",
            params![account_id, key(number)],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// An inbound SMS from `sender`: if its text is an unsubscribe word, the sender opts out of
/// every account that messaged it within the look-back (of all accounts if none did). Returns
/// the accounts it opted out of, or `None` if the text is not an unsubscribe word.
pub fn apply_inbound_opt_out(
    tx: &Transaction<'_>,
    sender: &str,
    text: &str,
    cfg: &OptOutConfig,
    now: Timestamp,
) -> Result<Option<Vec<i64>>> {
    if !cfg.is_unsubscribe(text) {
        return Ok(None);
    }
    let since = now
        .checked_sub(SignedDuration::from_hours(
            24 * i64::from(cfg.lookback_days),
        ))
        .unwrap_or(Timestamp::MIN);
    let mut targets = accounts_that_messaged(tx, sender, since)?;
    if targets.is_empty() {
        targets = accounts(tx)?.into_iter().map(|a| a.id).collect();
    }
    tracing::info!(
        sender = %mask(&key(sender)),
        accounts = targets.len(),
        "opt-out received"
    );
    let source = format!("inbound reply {:?}", text.trim());
    for &a in &targets {
        add_opt_out(tx, a, sender, &source, now)?;
    }
    Ok(Some(targets))
}

/// What the acceptance decision needs to know about an account and its recipients.
pub fn acceptance_facts(
    conn: &Connection,
    account_id: i64,
    recipients: &[String],
    now: Timestamp,
) -> Result<AcceptanceFacts> {
    let mut blacklisted_numbers = HashSet::new();
    let mut opted_out = HashSet::new();
    let mut bl =
        conn.prepare("SELECT 1 FROM number_blacklist WHERE number = ?1 AND account_id IN (0, ?2)")?;
    for r in recipients {
        let n = key(r);
        if bl.exists(params![n, account_id])? {
            blacklisted_numbers.insert(n.clone());
        }
        if is_opted_out(conn, account_id, &n)? {
            opted_out.insert(n);
        }
    }
    Ok(AcceptanceFacts {
        blacklisted_numbers,
        opted_out,
        available_credit: credit_summary(conn, account_id, now)?.available,
    })
}
