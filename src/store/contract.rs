//! The contract's SQL: accounts, credit lots and per-part reservations, the review queue,
//! account and number blacklists, opt-outs and the recent-sends table behind them.
//!
//! Every write takes the caller's `&Transaction`, so the daemon commits a message row, its
//! credit reservation and its audit entry together. What must always hold:
//! - credit is consumed earliest-expiry first from lots that have not expired; a request that
//!   cannot be paid in full reserves nothing;
//! - a reservation is one send of one part, keyed by (message id, part seq, round), and moves
//!   once from `reserved` to `committed` (sent, or charged for a violation) or `refunded` (not
//!   sent); an operator retry of a part whose latest round is settled opens the next round
//!   (see [`rereserve_part`] and the billing rule in `store::hooks`), earlier rounds stay;
//! - a refund always gives the part back: to its lot if the lot is still valid, otherwise into a
//!   refund lot valid [`REFUND_VALIDITY_DAYS`] days (the contract refunds unsent messages in
//!   full, so an expiry that happened while the part waited must not swallow the refund);
//! - every blacklist change, opt-out, review decision and violation charge appends an audit
//!   record in the same transaction.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, AuditError, AuditEvent};
use crate::number::{key, mask};
use crate::policy::account::{
    Account, AccountBlacklist, AccountSettings, CreditLot, CreditSummary,
};
use crate::policy::{AcceptanceFacts, OptOutConfig, PolicyError, SendWindow};
use crate::store::audit::append;

/// A refund whose lot expired meanwhile goes to a refund lot valid this many days.
pub const REFUND_VALIDITY_DAYS: i64 = 30;

/// Errors of the contract store.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("account {0} does not exist")]
    UnknownAccount(i64),
    #[error(
        "insufficient credit: {needed} parts needed, {available} available, short by {shortfall}"
    )]
    InsufficientCredit {
        needed: u64,
        available: u64,
        shortfall: u64,
    },
    #[error("no credit reservation for message {message_id} part {part_seq}")]
    NoReservation { message_id: i64, part_seq: u32 },
    #[error("message {message_id} part {part_seq} is already {state}")]
    AlreadySettled {
        message_id: i64,
        part_seq: u32,
        state: String,
    },
    #[error("message {0} is not waiting for review")]
    ReviewNotPending(i64),
    #[error("stored value: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

type Result<T> = std::result::Result<T, ContractError>;

fn ts(s: i64) -> Result<Timestamp> {
    Timestamp::from_second(s).map_err(|e| ContractError::Corrupt(format!("time {s}: {e}")))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Accounts

/// A new account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    pub settings: AccountSettings,
}

const ACCOUNT_COLUMNS: &str = "id, name, uids, gids, signature_required, unsubscribe_suffix, \
                               send_window, blacklist_reason, blacklisted_at";

struct AccountRow {
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

fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
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

fn to_account(a: AccountRow) -> Result<Account> {
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

fn json_ids(v: &[u32]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Sets which uids and gids act as an account (the configuration's `[[accounts]]` at start).
pub fn set_peers(tx: &Transaction<'_>, account_id: i64, uids: &[u32], gids: &[u32]) -> Result<()> {
    let n = tx.execute(
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
    tx.execute(
        "UPDATE accounts SET unmetered = ?2 WHERE id = ?1",
        params![account_id, unmetered],
    )?;
    Ok(())
}

/// Creates an account and returns its id.
pub fn create_account(tx: &Transaction<'_>, a: &NewAccount, now: Timestamp) -> Result<i64> {
    tx.execute(
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
            now.as_second()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Replaces an account's contract settings.
pub fn update_settings(tx: &Transaction<'_>, account_id: i64, s: &AccountSettings) -> Result<()> {
    let n = tx.execute(
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
    conn.query_row(
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

// ---------------------------------------------------------------------------------------------
// Credit

/// A purchase.
#[derive(Debug, Clone)]
pub struct NewLot {
    pub quantity: u64,
    pub price_fen: i64,
    pub purchased_at: Timestamp,
    /// Defaults to one year after purchase.
    pub expires_at: Option<Timestamp>,
}

/// Adds a lot and returns its id.
pub fn add_lot(tx: &Transaction<'_>, account_id: i64, lot: &NewLot) -> Result<i64> {
    account(tx, account_id)?;
    let expires = lot
        .expires_at
        .unwrap_or_else(|| CreditLot::default_expiry(lot.purchased_at));
    tx.execute(
        "INSERT INTO credit_lots (account_id, quantity, price_fen, purchased_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            account_id,
            i64::try_from(lot.quantity).unwrap_or(i64::MAX),
            lot.price_fen,
            lot.purchased_at.as_second(),
            expires.as_second()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// id, account, quantity, price, purchased, expires, reserved, used, refund_of.
type LotRow = (i64, i64, i64, i64, i64, i64, i64, i64, Option<i64>);

fn lot_row(r: &Row<'_>) -> rusqlite::Result<LotRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

/// An account's lots, earliest expiry first.
pub fn lots(conn: &Connection, account_id: i64) -> Result<Vec<CreditLot>> {
    let mut st = conn.prepare(
        "SELECT id, account_id, quantity, price_fen, purchased_at, expires_at, reserved, used,
                refund_of
         FROM credit_lots WHERE account_id = ?1 ORDER BY expires_at, id",
    )?;
    let rows = st.query_map([account_id], lot_row)?;
    let mut out = Vec::new();
    for r in rows {
        let (id, account_id, q, price, p, e, res, used, refund_of) = r?;
        out.push(CreditLot {
            id,
            account_id,
            quantity: count(q),
            price_fen: price,
            purchased_at: ts(p)?,
            expires_at: ts(e)?,
            reserved: count(res),
            used: count(used),
            refund_of,
        });
    }
    Ok(out)
}

/// Available, reserved, used and expired credit, with every lot.
pub fn credit_summary(conn: &Connection, account_id: i64, now: Timestamp) -> Result<CreditSummary> {
    account(conn, account_id)?;
    Ok(CreditSummary::from_lots(lots(conn, account_id)?, now))
}

/// One reserved part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartReservation {
    pub message_id: i64,
    pub part_seq: u32,
    pub lot_id: i64,
}

/// Picks lots for `needed` parts, earliest expiry first. With `partial`, takes what there is.
fn take_credit(
    tx: &Transaction<'_>,
    account_id: i64,
    needed: u64,
    now: Timestamp,
    partial: bool,
) -> Result<Vec<i64>> {
    let usable: Vec<(i64, u64)> = lots(tx, account_id)?
        .into_iter()
        .filter(|l| l.available(now) > 0)
        .map(|l| (l.id, l.available(now)))
        .collect();
    let available: u64 = usable.iter().map(|u| u.1).sum();
    if available < needed && !partial {
        return Err(ContractError::InsufficientCredit {
            needed,
            available,
            shortfall: needed - available,
        });
    }
    let mut picks = Vec::new();
    for (lot, avail) in usable {
        let remaining = needed - picks.len() as u64;
        if remaining == 0 {
            break;
        }
        picks.extend(std::iter::repeat_n(lot, avail.min(remaining) as usize));
    }
    Ok(picks)
}

fn record_parts(
    tx: &Transaction<'_>,
    account_id: i64,
    parts_per_message: u32,
    message_ids: &[i64],
    picks: &[i64],
    state: &str,
    now: Timestamp,
) -> Result<Vec<PartReservation>> {
    let column = if state == "committed" {
        "used"
    } else {
        "reserved"
    };
    let keys = message_ids
        .iter()
        .flat_map(|&m| (1..=parts_per_message).map(move |p| (m, p)));
    let mut out = Vec::with_capacity(picks.len());
    for ((message_id, part_seq), &lot_id) in keys.zip(picks) {
        tx.execute(
            "INSERT INTO credit_reservations
                 (message_id, part_seq, account_id, lot_id, state, reserved_at, settled_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?5 = 'committed' THEN ?6 END)",
            params![
                message_id,
                part_seq,
                account_id,
                lot_id,
                state,
                now.as_second()
            ],
        )?;
        tx.execute(
            &format!("UPDATE credit_lots SET {column} = {column} + 1 WHERE id = ?1"),
            [lot_id],
        )?;
        out.push(PartReservation {
            message_id,
            part_seq,
            lot_id,
        });
    }
    Ok(out)
}

/// Reserves `parts_per_message` parts (seq 1..=n) for each message id, earliest-expiring lots
/// first. Not enough credit reserves nothing and names the shortfall.
pub fn reserve(
    tx: &Transaction<'_>,
    account_id: i64,
    parts_per_message: u32,
    now: Timestamp,
    message_ids: &[i64],
) -> Result<Vec<PartReservation>> {
    let needed = u64::from(parts_per_message) * message_ids.len() as u64;
    let picks = take_credit(tx, account_id, needed, now, false)?;
    record_parts(
        tx,
        account_id,
        parts_per_message,
        message_ids,
        &picks,
        "reserved",
        now,
    )
}

/// A part's latest reservation round: (lot, state, round).
fn reservation(tx: &Connection, message_id: i64, part_seq: u32) -> Result<(i64, String, i64)> {
    tx.query_row(
        "SELECT lot_id, state, round FROM credit_reservations
         WHERE message_id = ?1 AND part_seq = ?2 ORDER BY round DESC LIMIT 1",
        params![message_id, part_seq],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()?
    .ok_or(ContractError::NoReservation {
        message_id,
        part_seq,
    })
}

/// A part was sent: its credit is used. Committing an already committed part is a no-op
/// (returns false), so a replayed status after a crash is harmless.
pub fn commit_part(
    tx: &Transaction<'_>,
    message_id: i64,
    part_seq: u32,
    now: Timestamp,
) -> Result<bool> {
    let (lot, state, round) = reservation(tx, message_id, part_seq)?;
    match state.as_str() {
        "committed" => return Ok(false),
        "reserved" => {}
        _ => {
            return Err(ContractError::AlreadySettled {
                message_id,
                part_seq,
                state,
            })
        }
    }
    tx.execute(
        "UPDATE credit_reservations SET state = 'committed', settled_at = ?3
         WHERE message_id = ?1 AND part_seq = ?2 AND round = ?4",
        params![message_id, part_seq, now.as_second(), round],
    )?;
    tx.execute(
        "UPDATE credit_lots SET reserved = reserved - 1, used = used + 1 WHERE id = ?1",
        [lot],
    )?;
    Ok(true)
}

/// Where a refunded part went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The lot that had paid for the part.
    pub lot_id: i64,
    /// Set when that lot had expired and the part went to this refund lot instead.
    pub refund_lot_id: Option<i64>,
}

/// A part was not sent (modem error, expiry, cancel, unknown settled as not sent): its credit
/// goes back. Refunding an already refunded part is a no-op (returns `None`).
pub fn refund_part(
    tx: &Transaction<'_>,
    message_id: i64,
    part_seq: u32,
    now: Timestamp,
) -> Result<Option<Refund>> {
    let (lot_id, state, round) = reservation(tx, message_id, part_seq)?;
    match state.as_str() {
        "refunded" => return Ok(None),
        "reserved" => {}
        _ => {
            return Err(ContractError::AlreadySettled {
                message_id,
                part_seq,
                state,
            })
        }
    }
    let (account_id, expires_at): (i64, i64) = tx.query_row(
        "SELECT account_id, expires_at FROM credit_lots WHERE id = ?1",
        [lot_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut refund_lot_id = None;
    if expires_at <= now.as_second() {
        // The lot is void: move the part out of it into a refund lot the customer can use.
        tx.execute(
            "UPDATE credit_lots SET reserved = reserved - 1, quantity = quantity - 1 WHERE id = ?1",
            [lot_id],
        )?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM credit_lots WHERE refund_of = ?1 AND expires_at > ?2
                 ORDER BY expires_at DESC LIMIT 1",
                params![lot_id, now.as_second()],
                |r| r.get(0),
            )
            .optional()?;
        let id = match existing {
            Some(id) => {
                tx.execute(
                    "UPDATE credit_lots SET quantity = quantity + 1 WHERE id = ?1",
                    [id],
                )?;
                id
            }
            None => {
                let until = now
                    .checked_add(SignedDuration::from_hours(24 * REFUND_VALIDITY_DAYS))
                    .unwrap_or(Timestamp::MAX);
                tx.execute(
                    "INSERT INTO credit_lots (account_id, quantity, price_fen, purchased_at,
                                              expires_at, refund_of)
                     VALUES (?1, 1, 0, ?2, ?3, ?4)",
                    params![account_id, now.as_second(), until.as_second(), lot_id],
                )?;
                tx.last_insert_rowid()
            }
        };
        refund_lot_id = Some(id);
    } else {
        tx.execute(
            "UPDATE credit_lots SET reserved = reserved - 1 WHERE id = ?1",
            [lot_id],
        )?;
    }
    tx.execute(
        "UPDATE credit_reservations SET state = 'refunded', settled_at = ?3, refunded_to = ?4
         WHERE message_id = ?1 AND part_seq = ?2 AND round = ?5",
        params![
            message_id,
            part_seq,
            now.as_second(),
            refund_lot_id.unwrap_or(lot_id),
            round
        ],
    )?;
    Ok(Some(Refund {
        lot_id,
        refund_lot_id,
    }))
}

/// An operator retry of a part: a new send, so a new reservation round, earliest expiry first
/// (committed when it leaves, refunded if it does not), whatever settled the previous round:
/// `refunded` (it never left) or `committed` (it left and the network reported it undelivered:
/// that send stays charged). Returns false when the part has no reservation (unmetered account,
/// no account row) or its latest round is still `reserved` (an `unknown` part: the send it pays
/// for has not been settled, so the retry uses it). Not enough credit is an error and the
/// retry fails.
pub fn rereserve_part(
    tx: &Transaction<'_>,
    message_id: i64,
    part_seq: u32,
    now: Timestamp,
) -> Result<bool> {
    let row: Option<(i64, String, i64)> = tx
        .query_row(
            "SELECT account_id, state, round FROM credit_reservations
             WHERE message_id = ?1 AND part_seq = ?2 ORDER BY round DESC LIMIT 1",
            params![message_id, part_seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((account_id, state, round)) = row else {
        return Ok(false);
    };
    if state == "reserved" {
        return Ok(false);
    }
    let picks = take_credit(tx, account_id, 1, now, false)?;
    let Some(&lot) = picks.first() else {
        return Err(ContractError::InsufficientCredit {
            needed: 1,
            available: 0,
            shortfall: 1,
        });
    };
    tx.execute(
        "INSERT INTO credit_reservations
             (message_id, part_seq, round, account_id, lot_id, state, reserved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'reserved', ?6)",
        params![
            message_id,
            part_seq,
            round + 1,
            account_id,
            lot,
            now.as_second()
        ],
    )?;
    tx.execute(
        "UPDATE credit_lots SET reserved = reserved + 1 WHERE id = ?1",
        [lot],
    )?;
    Ok(true)
}

fn reserved_parts(tx: &Connection, message_id: i64) -> Result<Vec<u32>> {
    let mut st = tx.prepare(
        "SELECT part_seq FROM credit_reservations WHERE message_id = ?1 AND state = 'reserved'
         ORDER BY part_seq",
    )?;
    let rows = st.query_map([message_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<u32>>>()?)
}

/// Refunds every still-reserved part of a message; returns how many.
pub fn refund_message(tx: &Transaction<'_>, message_id: i64, now: Timestamp) -> Result<u64> {
    let mut n = 0;
    for p in reserved_parts(tx, message_id)? {
        if refund_part(tx, message_id, p, now)?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

/// Commits every still-reserved part of a message; returns how many.
pub fn commit_message(tx: &Transaction<'_>, message_id: i64, now: Timestamp) -> Result<u64> {
    let mut n = 0;
    for p in reserved_parts(tx, message_id)? {
        if commit_part(tx, message_id, p, now)? {
            n += 1;
        }
    }
    Ok(n)
}

/// What a violation cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationCharge {
    pub charged: u64,
    /// Parts that could not be charged for want of credit (the charge takes what there is).
    pub uncharged: u64,
}

/// Blocked content: charges `parts_per_message` parts per message id (as committed, from the
/// earliest-expiring lots, as far as credit goes), blacklists the account and audits both.
#[allow(clippy::too_many_arguments)]
pub fn charge_violation(
    tx: &Transaction<'_>,
    account_id: i64,
    parts_per_message: u32,
    message_ids: &[i64],
    category: &str,
    actor: &str,
    now: Timestamp,
) -> Result<ViolationCharge> {
    let needed = u64::from(parts_per_message) * message_ids.len() as u64;
    let picks = take_credit(tx, account_id, needed, now, true)?;
    let charged = record_parts(
        tx,
        account_id,
        parts_per_message,
        message_ids,
        &picks,
        "committed",
        now,
    )?
    .len() as u64;
    let mut e = AuditEntry::new(AuditEvent::Charged, now, actor);
    e.account_id = Some(account_id);
    e.message_id = message_ids.first().copied();
    e.parts = i64::try_from(charged).ok();
    e.outcome = format!("violation ({category}): charged {charged} of {needed} parts");
    append(tx, e)?;
    blacklist_account(
        tx,
        account_id,
        &format!("prohibited content: {category}"),
        actor,
        now,
    )?;
    Ok(ViolationCharge {
        charged,
        uncharged: needed - charged,
    })
}

// ---------------------------------------------------------------------------------------------
// Blacklists

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
    tx.execute(
        "UPDATE accounts SET blacklist_reason = ?2, blacklisted_at = ?3 WHERE id = ?1",
        params![account_id, reason, now.as_second()],
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
    tx.execute(
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

fn number_audit(
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
    let n = tx.execute(
        "INSERT OR IGNORE INTO number_blacklist (account_id, number, reason, added_by, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![scope.key(), number, reason, actor, now.as_second()],
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
    let n = tx.execute(
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
            let moved = tx.execute(
                &format!("UPDATE OR IGNORE {table} SET number = ?2 WHERE rowid = ?1"),
                params![rowid, k],
            )?;
            if moved == 0 {
                tx.execute(&format!("DELETE FROM {table} WHERE rowid = ?1"), [rowid])?;
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
            tx.execute(
                "UPDATE recent_sends SET recipient = ?2 WHERE recipient = ?1",
                params![r, k],
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Opt-outs

/// Records that `account_id` sent to `recipient` (the daemon calls this as it sends).
pub fn record_send(
    tx: &Transaction<'_>,
    account_id: i64,
    recipient: &str,
    now: Timestamp,
) -> Result<()> {
    tx.execute(
        "INSERT INTO recent_sends (account_id, recipient, sent_at) VALUES (?1, ?2, ?3)",
        params![account_id, key(recipient), now.as_second()],
    )?;
    Ok(())
}

/// Forgets sends older than `before` (the table only serves opt-out attribution).
pub fn prune_recent_sends(tx: &Transaction<'_>, before: Timestamp) -> Result<u64> {
    Ok(tx.execute(
        "DELETE FROM recent_sends WHERE sent_at < ?1",
        [before.as_second()],
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
    let rows = st.query_map(params![key(recipient), since.as_second()], |r| r.get(0))?;
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
    let n = tx.execute(
        "INSERT OR IGNORE INTO opt_outs (account_id, number, opted_out_at, source)
         VALUES (?1, ?2, ?3, ?4)",
        params![account_id, number, now.as_second(), source],
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
    let n = tx.execute(
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

// ---------------------------------------------------------------------------------------------
// Review

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
        params![message_id, account_id, category, word, now.as_second()],
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
            params![message_id, actor, now.as_second()],
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
        params![message_id, decision.as_str(), reviewer, now.as_second()],
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
