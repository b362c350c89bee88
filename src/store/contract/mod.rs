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
//!
//! Times are stored as Unix milliseconds like everywhere in the database (migration 0008
//! converted the seconds these tables held before); the functions take and give `Timestamp`s.
//!
//! One file per part of the contract: `accounts.rs`, `credit.rs`, `blacklist.rs`, `opt_out.rs`,
//! `review.rs`; the error type and the time helpers they share are here. `operations.rs` puts
//! them together as `Store` methods, one transaction each, for the daemon.

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

mod accounts;
mod blacklist;
mod credit;
mod operations;
mod opt_out;
mod review;

pub use accounts::*;
pub use blacklist::*;
pub use credit::*;
pub use operations::AccountUpsert;
pub use opt_out::*;
pub use review::*;

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

/// A stored time (Unix milliseconds, like every time in the database) back as a timestamp;
/// a value out of range is a corrupt row, not a panic.
fn ts(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| ContractError::Corrupt(format!("time {ms}: {e}")))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
