//! Accounts and credit lots as values: what the store loads and the acceptance decision reads.
//!
//! What must always hold: a lot's `reserved + used <= quantity`; a lot whose expiry has passed
//! is void: its unspent remainder shows as expired, never as available; credit is consumed
//! earliest-expiry first. Counts are in message parts (条). A part reserved while its lot was
//! valid stays payable by that lot after the lot expires (the customer was charged at
//! acceptance; an expiry while the part waits in the queue must not fail it).

use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::window::SendWindow;

/// A customer account.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    /// Unix users whose socket connections act as this account.
    pub uids: Vec<u32>,
    /// Unix groups whose members act as this account.
    pub gids: Vec<u32>,
    pub settings: AccountSettings,
    /// Set while the account is blacklisted.
    pub blacklisted: Option<AccountBlacklist>,
}

/// The optional contract settings of an account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountSettings {
    /// The text must start with a 【signature】.
    pub signature_required: bool,
    /// Appended to every text unless already there, e.g. "回T退订".
    pub unsubscribe_suffix: Option<String>,
    /// Messages outside this window wait for it.
    pub send_window: Option<SendWindow>,
}

/// Why and since when an account is blacklisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBlacklist {
    pub reason: String,
    pub since: Timestamp,
}

/// A purchased lot of credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditLot {
    pub id: i64,
    pub account_id: i64,
    /// Number of message parts bought.
    pub quantity: u64,
    /// Price of the lot in the smallest currency unit (fen).
    pub price_fen: i64,
    pub purchased_at: Timestamp,
    pub expires_at: Timestamp,
    pub reserved: u64,
    pub used: u64,
    /// Set when this lot holds refunds of parts whose own lot had expired.
    pub refund_of: Option<i64>,
}

impl CreditLot {
    /// The default expiry: one year after purchase.
    pub fn default_expiry(purchased_at: Timestamp) -> Timestamp {
        purchased_at
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .checked_add(1.year())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }

    /// Whether the lot is void at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    /// Unspent parts (neither reserved nor used).
    pub fn unspent(&self) -> u64 {
        self.quantity.saturating_sub(self.reserved + self.used)
    }

    /// What the lot can still pay at `now`.
    pub fn available(&self, now: Timestamp) -> u64 {
        if self.is_expired(now) {
            0
        } else {
            self.unspent()
        }
    }
}

/// An account's credit at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditSummary {
    /// Unspent parts in lots that have not expired.
    pub available: u64,
    /// Parts reserved for messages not yet settled.
    pub reserved: u64,
    /// Parts committed (sent, or charged for a violation).
    pub used: u64,
    /// Unspent parts in expired lots (void).
    pub expired: u64,
    pub lots: Vec<LotSummary>,
}

/// One lot in a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotSummary {
    pub lot: CreditLot,
    pub state: LotState,
    pub available: u64,
}

/// How a lot shows in a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotState {
    Active,
    Exhausted,
    Expired,
}

impl CreditSummary {
    /// Builds a summary from lots at `now`.
    pub fn from_lots(lots: Vec<CreditLot>, now: Timestamp) -> CreditSummary {
        let mut s = CreditSummary {
            available: 0,
            reserved: 0,
            used: 0,
            expired: 0,
            lots: Vec::with_capacity(lots.len()),
        };
        for lot in lots {
            s.reserved += lot.reserved;
            s.used += lot.used;
            let state = if lot.is_expired(now) {
                s.expired += lot.unspent();
                LotState::Expired
            } else if lot.unspent() == 0 {
                LotState::Exhausted
            } else {
                LotState::Active
            };
            let available = lot.available(now);
            s.available += available;
            s.lots.push(LotSummary {
                lot,
                state,
                available,
            });
        }
        s
    }
}
