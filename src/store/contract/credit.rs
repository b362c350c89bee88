//! Credit in SQL: lots, per-part reservations and their settlement (commit, refund,
//! re-reservation for an operator retry), and violation charges.
//!
//! What must always hold: credit is consumed earliest-expiry first from lots that have not
//! expired; a request that cannot be paid in full reserves nothing; a reservation moves once from
//! `reserved` to `committed` or `refunded`; a refund always gives the part back (to its lot if
//! still valid, else into a refund lot valid [`REFUND_VALIDITY_DAYS`] days).

use super::*;
use crate::store::CachedSql;

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
    tx.execute_cached(
        "INSERT INTO credit_lots (account_id, quantity, price_fen, purchased_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            account_id,
            i64::try_from(lot.quantity).unwrap_or(i64::MAX),
            lot.price_fen,
            lot.purchased_at.as_millisecond(),
            expires.as_millisecond()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// id, account, quantity, price, purchased, expires, reserved, used, refund_of.
pub(super) type LotRow = (i64, i64, i64, i64, i64, i64, i64, i64, Option<i64>);

pub(super) fn lot_row(r: &Row<'_>) -> rusqlite::Result<LotRow> {
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
pub(super) fn take_credit(
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

pub(super) fn record_parts(
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
        tx.execute_cached(
            "INSERT INTO credit_reservations
                 (message_id, part_seq, account_id, lot_id, state, reserved_at, settled_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?5 = 'committed' THEN ?6 END)",
            params![
                message_id,
                part_seq,
                account_id,
                lot_id,
                state,
                now.as_millisecond()
            ],
        )?;
        tx.execute_cached(
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
pub(super) fn reservation(
    tx: &Connection,
    message_id: i64,
    part_seq: u32,
) -> Result<(i64, String, i64)> {
    tx.query_row_cached(
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
    tx.execute_cached(
        "UPDATE credit_reservations SET state = 'committed', settled_at = ?3
         WHERE message_id = ?1 AND part_seq = ?2 AND round = ?4",
        params![message_id, part_seq, now.as_millisecond(), round],
    )?;
    tx.execute_cached(
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
    let (account_id, expires_at): (i64, i64) = tx.query_row_cached(
        "SELECT account_id, expires_at FROM credit_lots WHERE id = ?1",
        [lot_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut refund_lot_id = None;
    if expires_at <= now.as_millisecond() {
        // The lot is void: move the part out of it into a refund lot the customer can use.
        tx.execute_cached(
            "UPDATE credit_lots SET reserved = reserved - 1, quantity = quantity - 1 WHERE id = ?1",
            [lot_id],
        )?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM credit_lots WHERE refund_of = ?1 AND expires_at > ?2
                 ORDER BY expires_at DESC LIMIT 1",
                params![lot_id, now.as_millisecond()],
                |r| r.get(0),
            )
            .optional()?;
        let id = match existing {
            Some(id) => {
                tx.execute_cached(
                    "UPDATE credit_lots SET quantity = quantity + 1 WHERE id = ?1",
                    [id],
                )?;
                id
            }
            None => {
                let until = now
                    .checked_add(SignedDuration::from_hours(24 * REFUND_VALIDITY_DAYS))
                    .unwrap_or(Timestamp::MAX);
                tx.execute_cached(
                    "INSERT INTO credit_lots (account_id, quantity, price_fen, purchased_at,
                                              expires_at, refund_of)
                     VALUES (?1, 1, 0, ?2, ?3, ?4)",
                    params![
                        account_id,
                        now.as_millisecond(),
                        until.as_millisecond(),
                        lot_id
                    ],
                )?;
                tx.last_insert_rowid()
            }
        };
        refund_lot_id = Some(id);
    } else {
        tx.execute_cached(
            "UPDATE credit_lots SET reserved = reserved - 1 WHERE id = ?1",
            [lot_id],
        )?;
    }
    tx.execute_cached(
        "UPDATE credit_reservations SET state = 'refunded', settled_at = ?3, refunded_to = ?4
         WHERE message_id = ?1 AND part_seq = ?2 AND round = ?5",
        params![
            message_id,
            part_seq,
            now.as_millisecond(),
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
    tx.execute_cached(
        "INSERT INTO credit_reservations
             (message_id, part_seq, round, account_id, lot_id, state, reserved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'reserved', ?6)",
        params![
            message_id,
            part_seq,
            round + 1,
            account_id,
            lot,
            now.as_millisecond()
        ],
    )?;
    tx.execute_cached(
        "UPDATE credit_lots SET reserved = reserved + 1 WHERE id = ?1",
        [lot],
    )?;
    Ok(true)
}

pub(super) fn reserved_parts(tx: &Connection, message_id: i64) -> Result<Vec<u32>> {
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
