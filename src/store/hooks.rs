//! The contract's hooks on part state changes: credit committed or refunded and the audit log
//! appended, inside the same transaction as the change they record. [`part_changed`] is called
//! by `messages::set_part_state`, the one place where a part's state changes, so no path
//! (sent, failed, expired, cancelled, unknown settled, status report, review) can forget them.
//!
//! The billing rule, one line per transition of a part (each send of a part is one reservation
//! round in `credit_reservations`; only the latest round is ever open):
//! - accepted: a round is reserved (in the acceptance transaction, not here);
//! - `queued`/`sending` -> `sent` (+CMGS, or `unknown` settled as sent) and any -> `delivered`:
//!   the open round is committed: charged once for this send;
//! - `queued`/`sending` -> `failed`, `expired`, `cancelled` (and `unknown` settled as not
//!   sent): the open round is refunded: the platform did not send it;
//! - `sending` -> `unknown`: nothing settles; the round stays reserved until the operator
//!   settles it (sent: committed; not sent: refunded) or retries it;
//! - `sent` -> `failed` (a status report says undelivered): the committed round stays charged:
//!   the part left the platform, the network failed it;
//! - operator retry, `unknown` -> `queued`: the still-reserved round pays for the retry;
//! - operator retry, `failed` -> `queued`: a new round is reserved, whether the last round was
//!   refunded (never left) or committed (left, then undelivered: the retry is a new send,
//!   charged again when it leaves); without credit the whole retry is refused, nothing changes;
//! - a round already settled otherwise (a violation's charge, a review's refund) is left as it
//!   is; parts of messages without an account (or whose account has no row, or that is
//!   unmetered) have no round: they skip credit but are still audited.
//!
//! What must always hold: every transition above appends one audit record (retries excepted:
//! the reservation is the record); `sent` also records the send for opt-out attribution.
//! Numbers and texts go to the audit log only, never to the tracing log.

use crate::store::CachedSql;
use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Transaction};

use super::contract::{self, ContractError};
use super::state::PartState;
use super::{PartId, StoreError};
use crate::audit::{AuditEntry, AuditEvent};

/// What the hooks need to know about a part and its message.
struct PartFacts {
    message_id: i64,
    seq: u32,
    part_count: u32,
    account_name: Option<String>,
    account_id: Option<i64>,
    recipient: String,
    text: String,
    error: Option<String>,
    sim_iccid: Option<String>,
    sim_number: Option<String>,
    /// The gateway and Src_Id of a 106 message (issue 12).
    gateway: Option<String>,
    src_id: Option<String>,
}

fn facts(tx: &Transaction<'_>, part: PartId) -> Result<PartFacts, StoreError> {
    Ok(tx.query_row_cached(
        "SELECT p.message_id, p.seq, m.part_count, m.account,
                (SELECT a.id FROM accounts a WHERE a.name = m.account),
                m.recipient, m.text, p.error, s.iccid, s.own_number, m.gateway, m.src_id
         FROM parts p JOIN messages m ON m.id = p.message_id
              LEFT JOIN sims s ON s.id = p.sim_id
         WHERE p.id = ?1",
        [part.0],
        |r| {
            Ok(PartFacts {
                message_id: r.get(0)?,
                seq: r.get(1)?,
                part_count: r.get(2)?,
                account_name: r.get(3)?,
                account_id: r.get(4)?,
                recipient: r.get(5)?,
                text: r.get(6)?,
                error: r.get(7)?,
                sim_iccid: r.get(8)?,
                sim_number: r.get(9)?,
                gateway: r.get(10)?,
                src_id: r.get(11)?,
            })
        },
    )?)
}

fn reservation_state(
    tx: &Transaction<'_>,
    message_id: i64,
    seq: u32,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT state FROM credit_reservations WHERE message_id = ?1 AND part_seq = ?2
             ORDER BY round DESC LIMIT 1",
            params![message_id, seq],
            |r| r.get(0),
        )
        .optional()?)
}

fn contract_err(e: ContractError) -> StoreError {
    StoreError::Contract(e.to_string())
}

/// Applies the contract to one part's transition `from -> to` (already written by the caller).
pub(crate) fn part_changed(
    tx: &Transaction<'_>,
    part: PartId,
    from: PartState,
    to: PartState,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (event, settle_sent) = match to {
        PartState::Sent => (AuditEvent::Sent, true),
        PartState::Delivered => (AuditEvent::Delivered, true),
        PartState::Failed | PartState::Expired | PartState::Cancelled => {
            (AuditEvent::Failed, false)
        }
        // An operator retry of a failed part: a new send, a new reservation round.
        PartState::Queued if from == PartState::Failed => {
            let (message_id, seq): (i64, u32) = tx.query_row_cached(
                "SELECT message_id, seq FROM parts WHERE id = ?1",
                [part.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            return match contract::rereserve_part(tx, message_id, seq, now) {
                Ok(_) => Ok(()),
                Err(e @ ContractError::InsufficientCredit { .. }) => Err(StoreError::Invalid(
                    format!("message {message_id} cannot be retried: {e}"),
                )),
                Err(e) => Err(contract_err(e)),
            };
        }
        // queued, sending, unknown: nothing is settled yet.
        PartState::Queued | PartState::Sending | PartState::Unknown => return Ok(()),
    };
    let f = facts(tx, part)?;
    let reserved = reservation_state(tx, f.message_id, f.seq)?.is_some_and(|s| s == "reserved");
    let mut credit = "";
    if reserved {
        if settle_sent {
            contract::commit_part(tx, f.message_id, f.seq, now).map_err(contract_err)?;
            credit = "; credit used";
        } else {
            contract::refund_part(tx, f.message_id, f.seq, now).map_err(contract_err)?;
            credit = "; credit refunded";
        }
    }
    if to == PartState::Sent {
        if let Some(account_id) = f.account_id {
            if f.seq == 1 {
                contract::record_send(tx, account_id, &f.recipient, now).map_err(contract_err)?;
            }
        }
    }
    let what = match to {
        // A failed status report: the part left, the network could not deliver it.
        PartState::Failed if from.is_sent() => "delivery failed (status report)",
        PartState::Cancelled if from == PartState::Queued => "not sent (cancelled)",
        PartState::Expired => "not sent (expired)",
        PartState::Failed => "not sent (failed)",
        PartState::Delivered => "delivered",
        _ => "sent",
    };
    let mut outcome = format!("part {}/{} {what}{credit}", f.seq, f.part_count);
    if !settle_sent {
        if let Some(e) = &f.error {
            outcome.push_str(": ");
            outcome.push_str(e);
        }
    }
    let actor = "daemon";
    let mut e = AuditEntry::new(event, now, actor);
    e.account_id = f.account_id;
    e.message_id = Some(f.message_id);
    // The audit log keeps numbers as their key (as opt-outs and blacklists do), so an export
    // by number finds every record about it.
    e.recipient = Some(crate::number::key(&f.recipient));
    e.text = Some(f.text);
    e.parts = Some(i64::from(f.part_count));
    e.outcome = match &f.account_name {
        Some(name) if f.account_id.is_none() => format!("{outcome} (account {name} unknown)"),
        _ => outcome,
    };
    if let Some(iccid) = &f.sim_iccid {
        e = e.with_sim(iccid, f.sim_number.as_deref());
    } else if let Some(gateway) = &f.gateway {
        // A 106 message names its gateway and Src_Id where a modem's names the SIM.
        e = e.with_sim(&format!("gateway:{gateway}"), f.src_id.as_deref());
    }
    crate::store::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))?;
    Ok(())
}
