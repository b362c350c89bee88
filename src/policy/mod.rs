//! The contract in code: accounts and credit lots, content rules and review, blacklists,
//! opt-outs, signatures and send windows. Pure functions over values the store loads; the SQL
//! lives in `store::contract` so that a message, its credit reservation and its audit entry
//! are committed in one transaction.
//!
//! What must always hold: decisions take `now` as an argument; no input makes them panic; full
//! numbers and texts never go to logs (use [`crate::number::mask`]).

pub mod accept;
pub mod account;
pub mod content;
pub mod normalize;
pub mod optout;
pub mod window;

pub use accept::{decide, Acceptance, AcceptanceFacts, Decision, RecipientDecision, Refusal};
pub use account::{Account, AccountSettings, CreditLot, CreditSummary};
pub use content::{ContentAction, ContentVerdict, RuleSet};
pub use optout::OptOutConfig;
pub use window::SendWindow;

/// Errors of the policy layer (configuration and rules).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("rules file {source_name}: {detail}")]
    Rules { source_name: String, detail: String },
    #[error("content rule: {0}")]
    BadRule(String),
    #[error("send window {spec:?}: {detail}")]
    BadWindow { spec: String, detail: String },
}
