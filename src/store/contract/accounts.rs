//! Accounts in SQL: creating them, their settings and peers (uids and gids), whether they are
//! unmetered, and finding one by id, name or peer credentials.
//!
//! What must always hold: an account name is unique; a peer maps to at most one account.

use super::*;
use crate::store::CachedSql;

/// A new account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    pub settings: AccountSettings,
}

pub(super) const ACCOUNT_COLUMNS: &str =
    "id, name, uids, gids, signature_required, unsubscribe_suffix, \
                               send_window, blacklist_reason, blacklisted_at";

pub(super) struct AccountRow {
    id: i64,
    name: String,
    uids: String,
    gids: String,
    signature_required: bool,
    suffix: Option<String>,
    window: Option<String>,
    bl_reason: Option<String>,
    bl_at: Option<i64>,
}

pub(super) fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: r.get(0)?,
        name: r.get(1)?,
        uids: r.get(2)?,
        gids: r.get(3)?,
        signature_required: r.get(4)?,
        suffix: r.get(5)?,
        window: r.get(6)?,
        bl_reason: r.get(7)?,
        bl_at: r.get(8)?,
    })
}

pub(super) fn to_account(a: AccountRow) -> Result<Account> {
    let ids = |s: &str, what: &str| -> Result<Vec<u32>> {
        serde_json::from_str(s)
            .map_err(|e| ContractError::Corrupt(format!("account {} {what}: {e}", a.id)))
    };
    let blacklisted = match a.bl_reason {
        Some(reason) => Some(AccountBlacklist {
            reason,
            since: ts(a.bl_at.unwrap_or(0))?,
        }),
        None => None,
    };
    Ok(Account {
        id: a.id,
        uids: ids(&a.uids, "uids")?,
        gids: ids(&a.gids, "gids")?,
        name: a.name,
        settings: AccountSettings {
            signature_required: a.signature_required,
            unsubscribe_suffix: a.suffix,
            send_window: a.window.as_deref().map(SendWindow::parse).transpose()?,
        },
        blacklisted,
    })
}

pub(super) fn json_ids(v: &[u32]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Sets which uids and gids act as an account (the configuration's `[[accounts]]` at start).
pub fn set_peers(tx: &Transaction<'_>, account_id: i64, uids: &[u32], gids: &[u32]) -> Result<()> {
    let n = tx.execute_cached(
        "UPDATE accounts SET uids = ?2, gids = ?3 WHERE id = ?1",
        params![account_id, json_ids(uids), json_ids(gids)],
    )?;
    if n == 0 {
        return Err(ContractError::UnknownAccount(account_id));
    }
    Ok(())
}

/// Whether an account is unmetered (never charged; see `[[accounts]] unmetered`).
pub fn is_unmetered(conn: &Connection, account_id: i64) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT unmetered FROM accounts WHERE id = ?1",
            [account_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false))
}

/// Makes an account unmetered or metered.
pub fn set_unmetered(tx: &Transaction<'_>, account_id: i64, unmetered: bool) -> Result<()> {
    tx.execute_cached(
        "UPDATE accounts SET unmetered = ?2 WHERE id = ?1",
        params![account_id, unmetered],
    )?;
    Ok(())
}

/// Creates an account and returns its id.
pub fn create_account(tx: &Transaction<'_>, a: &NewAccount, now: Timestamp) -> Result<i64> {
    tx.execute_cached(
        "INSERT INTO accounts (name, uids, gids, signature_required, unsubscribe_suffix,
                               send_window, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a.name,
            json_ids(&a.uids),
            json_ids(&a.gids),
            a.settings.signature_required,
            a.settings.unsubscribe_suffix,
            a.settings.send_window.as_ref().map(|w| w.to_string()),
            now.as_millisecond()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Replaces an account's contract settings.
pub fn update_settings(tx: &Transaction<'_>, account_id: i64, s: &AccountSettings) -> Result<()> {
    let n = tx.execute_cached(
        "UPDATE accounts SET signature_required = ?2, unsubscribe_suffix = ?3, send_window = ?4
         WHERE id = ?1",
        params![
            account_id,
            s.signature_required,
            s.unsubscribe_suffix,
            s.send_window.as_ref().map(|w| w.to_string())
        ],
    )?;
    if n == 0 {
        return Err(ContractError::UnknownAccount(account_id));
    }
    Ok(())
}

/// Loads an account.
pub fn account(conn: &Connection, account_id: i64) -> Result<Account> {
    let row = conn
        .query_row(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
            [account_id],
            account_row,
        )
        .optional()?
        .ok_or(ContractError::UnknownAccount(account_id))?;
    to_account(row)
}

/// Every account, by id.
pub fn accounts(conn: &Connection) -> Result<Vec<Account>> {
    let mut st = conn.prepare(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
    ))?;
    let rows = st.query_map([], account_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(to_account(r?)?);
    }
    Ok(out)
}

/// The account with this name.
pub fn account_by_name(conn: &Connection, name: &str) -> Result<Option<Account>> {
    conn.query_row_cached(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1"),
        [name],
        account_row,
    )
    .optional()?
    .map(to_account)
    .transpose()
}

/// The account a socket peer acts as: the first whose uids hold `uid`, else the first whose
/// gids hold one of `gids`.
pub fn account_for_peer(conn: &Connection, uid: u32, gids: &[u32]) -> Result<Option<Account>> {
    let all = accounts(conn)?;
    if let Some(a) = all.iter().find(|a| a.uids.contains(&uid)) {
        return Ok(Some(a.clone()));
    }
    Ok(all
        .into_iter()
        .find(|a| a.gids.iter().any(|g| gids.contains(g))))
}
