//! Blacklists in SQL: blacklisting an account and lifting it, and the number blacklists (global
//! or per account) with their audit records.
//!
//! What must always hold: every blacklist change appends an audit record in the same
//! transaction; numbers are stored by their key, so every written form of a number matches.

use super::*;
use crate::store::CachedSql;

/// Blacklists an account (audited). Returns false if it already was (the first reason stays).
pub fn blacklist_account(
    tx: &Transaction<'_>,
    account_id: i64,
    reason: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let a = account(tx, account_id)?;
    if a.blacklisted.is_some() {
        return Ok(false);
    }
    tx.execute_cached(
        "UPDATE accounts SET blacklist_reason = ?2, blacklisted_at = ?3 WHERE id = ?1",
        params![account_id, reason, now.as_millisecond()],
    )?;
    let mut e = AuditEntry::new(AuditEvent::AccountBlacklisted, now, actor);
    e.account_id = Some(account_id);
    e.outcome = reason.to_string();
    append(tx, e)?;
    Ok(true)
}

/// Lifts an account's blacklisting (an admin act, with a reason; audited). Returns false if
/// it was not blacklisted.
pub fn lift_account_blacklist(
    tx: &Transaction<'_>,
    account_id: i64,
    reason: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let a = account(tx, account_id)?;
    if a.blacklisted.is_none() {
        return Ok(false);
    }
    tx.execute_cached(
        "UPDATE accounts SET blacklist_reason = NULL, blacklisted_at = NULL WHERE id = ?1",
        [account_id],
    )?;
    let mut e = AuditEntry::new(AuditEvent::AccountUnblacklisted, now, actor);
    e.account_id = Some(account_id);
    e.outcome = reason.to_string();
    append(tx, e)?;
    Ok(true)
}

/// Whose number blacklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberScope {
    Global,
    Account(i64),
}

impl NumberScope {
    fn key(self) -> i64 {
        match self {
            NumberScope::Global => 0,
            NumberScope::Account(a) => a,
        }
    }
}

/// A blacklisted number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistedNumber {
    pub scope: NumberScope,
    pub number: String,
    pub reason: String,
    pub added_by: String,
    pub added_at: Timestamp,
}

pub(super) fn number_audit(
    tx: &Transaction<'_>,
    event: AuditEvent,
    scope: NumberScope,
    number: &str,
    reason: &str,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let mut e = AuditEntry::new(event, now, actor);
    if let NumberScope::Account(a) = scope {
        e.account_id = Some(a);
    }
    e.recipient = Some(number.to_string());
    e.outcome = reason.to_string();
    append(tx, e)?;
    Ok(())
}

/// Adds a number to a blacklist (audited). Returns false if it was already there.
pub fn add_number_blacklist(
    tx: &Transaction<'_>,
    scope: NumberScope,
    number: &str,
    reason: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let number = key(number);
    let n = tx.execute_cached(
        "INSERT OR IGNORE INTO number_blacklist (account_id, number, reason, added_by, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![scope.key(), number, reason, actor, now.as_millisecond()],
    )?;
    if n > 0 {
        number_audit(
            tx,
            AuditEvent::NumberBlacklisted,
            scope,
            &number,
            reason,
            actor,
            now,
        )?;
    }
    Ok(n > 0)
}

/// Removes a number from a blacklist (audited). Returns false if it was not there.
pub fn remove_number_blacklist(
    tx: &Transaction<'_>,
    scope: NumberScope,
    number: &str,
    reason: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let number = key(number);
    let n = tx.execute_cached(
        "DELETE FROM number_blacklist WHERE account_id = ?1 AND number = ?2",
        params![scope.key(), number],
    )?;
    if n > 0 {
        number_audit(
            tx,
            AuditEvent::NumberUnblacklisted,
            scope,
            &number,
            reason,
            actor,
            now,
        )?;
    }
    Ok(n > 0)
}

/// The numbers on one blacklist.
pub fn number_blacklist(conn: &Connection, scope: NumberScope) -> Result<Vec<BlacklistedNumber>> {
    let mut st = conn.prepare(
        "SELECT number, reason, added_by, added_at FROM number_blacklist
         WHERE account_id = ?1 ORDER BY number",
    )?;
    let rows = st.query_map([scope.key()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (number, reason, added_by, at) = r?;
        out.push(BlacklistedNumber {
            scope,
            number,
            reason,
            added_by,
            added_at: ts(at)?,
        });
    }
    Ok(out)
}

/// Rewrites the stored numbers of blacklists, opt-outs and recent sends to their
/// [`key`] (migration 0005: before it, a separate policy normaliser stored mobiles as bare 11
/// digits and fixed lines "as cleaned", so "+86 755..." and "0755..." were two numbers). Where
/// two old spellings of one number collide on a primary key, the row already holding the key
/// stays and the other goes: the number stays blacklisted or opted out either way.
pub(crate) fn rekey_numbers(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for table in ["number_blacklist", "opt_outs"] {
        let rows: Vec<(i64, String)> = tx
            .prepare(&format!("SELECT rowid, number FROM {table} ORDER BY rowid"))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (rowid, number) in rows {
            let k = key(&number);
            if k == number {
                continue;
            }
            let moved = tx.execute_cached(
                &format!("UPDATE OR IGNORE {table} SET number = ?2 WHERE rowid = ?1"),
                params![rowid, k],
            )?;
            if moved == 0 {
                tx.execute_cached(&format!("DELETE FROM {table} WHERE rowid = ?1"), [rowid])?;
            }
        }
    }
    let recipients: Vec<String> = tx
        .prepare("SELECT DISTINCT recipient FROM recent_sends")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for r in recipients {
        let k = key(&r);
        if k != r {
            tx.execute_cached(
                "UPDATE recent_sends SET recipient = ?2 WHERE recipient = ?1",
                params![r, k],
            )?;
        }
    }
    Ok(())
}
