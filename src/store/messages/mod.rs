//! Messages and parts: acceptance, claim, sent/failed/report outcomes, crash recovery, operator
//! retry and settlement of `unknown` parts (audited under the operator's name), cancel, expiry,
//! and the queries behind GET /v1/messages and the runner's due parts.
//!
//! What must always hold: each public operation is one transaction; every state change goes
//! through [`set_message_state`] / [`set_part_state`] (checked against the transition tables and
//! logged); a part is `sending` in a committed row before its PDU reaches a modem; a message's
//! state is derived from its parts by [`derive`] so the two never disagree; numbers and text are
//! never logged in full.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{ms, ts, ts_opt, MessageId, PartId, SimId, Store, StoreError};
use crate::number::{self, Carrier};
use crate::scheduler::{DuePart, FailureFacts, FailureKind, PartFate, RetryPolicy};
use crate::store::state::{MessageState, PartState};

/// How long a sent part can still be matched by a status report (TP-MR wraps at 256).
mod accept;
mod gateway;
mod operator;
mod outcomes;
mod queries;
mod reports;
mod transitions;

pub use accept::{insert_messages, reject, release_from_review};
pub use gateway::{
    set_message_channel, GatewayClaim, GatewayDue, GatewayMoOutcome, GatewayOutcome,
    GatewayReportIn, GatewayReportOutcome, MessageChannel,
};
pub(super) use operator::same_recipient;
use operator::*;
use outcomes::*;
pub(super) use outcomes::{claim_in, mark_failed_in, mark_sent_in, mark_unknown_in};
pub(super) use queries::due_part_row;
use reports::*;
use transitions::*;
pub(super) use transitions::{recompute_message, set_part_state};

const REPORT_MATCH_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// Where an accepted message starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    /// Ready to send (or `scheduled` when `not_before` is in the future).
    Ready,
    /// Held until a reviewer approves it (contract layer).
    HeldForReview,
}

/// One encoded part, computed by the caller with the codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPart {
    /// The part as accepted (SMSC octets included), upper- or lower-case hex: the daemon stores
    /// the codec's neutral SMS-SUBMIT (segment, UDH with the concat reference, DCS, report
    /// request, validity, canonical destination), which the modem encodes for its dialect each
    /// time the part is sent (`modem::encode`). Kept as is across retries.
    pub pdu_hex: String,
    /// The AT+CMGS length: TPDU octets, excluding the SMSC part.
    pub cmgs_length: u32,
}

/// A message to accept.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub account: Option<String>,
    /// Canonical recipient (see [`crate::number::Number::canonical`]).
    pub recipient: String,
    pub recipient_carrier: Carrier,
    pub text: String,
    /// Codec's encoding name ("gsm7", "ucs2", ...).
    pub encoding: String,
    pub priority: i32,
    pub not_before: Option<Timestamp>,
    /// Validity: unsent parts expire at this time.
    pub deadline: Option<Timestamp>,
    pub report_requested: bool,
    pub initial: InitialState,
    pub parts: Vec<NewPart>,
}

/// What the driver needs to send a claimed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedPart {
    pub part: PartId,
    pub message: MessageId,
    pub seq: u32,
    pub total: u32,
    pub sim: SimId,
    pub pdu_hex: String,
    pub cmgs_length: u32,
    /// Attempts including this one.
    pub attempt: u32,
}

/// What happened to a part after a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back in the queue, due again at this time.
    Retrying { at: Timestamp },
    /// The part and its message failed.
    Failed,
}

/// A decoded status report as the driver hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReportIn {
    pub sim: SimId,
    pub tp_mr: u8,
    /// Recipient address from the report, in whatever form the SMSC used.
    pub recipient: String,
    /// TP-Status.
    pub status: u8,
    pub raw_pdu: String,
}

/// What a status report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// No sent part matched (kept in status_reports for the operator).
    Unmatched,
    Delivered {
        part: PartId,
        message: MessageId,
    },
    /// The SC is still trying (TP-Status 0x20-0x3F): recorded, no state change.
    Pending {
        part: PartId,
        message: MessageId,
    },
    Failed {
        part: PartId,
        message: MessageId,
    },
}

/// The operator's verdict on an `unknown` part (from the modem's log, the recipient, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// It did go out: the part becomes `sent` (no TP-MR, so no report will match it).
    Sent,
    /// It did not: the part becomes `failed`; [`Store::retry`] can send it again.
    NotSent,
}

/// Which messages to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    pub state: Option<MessageState>,
    /// `Some(true)`: only messages with an `unknown` part (what the API calls an `unknown`
    /// message); `Some(false)`: only messages without one; `None`: either.
    pub unknown_parts: Option<bool>,
    pub account: Option<String>,
    /// Page: only ids below this one.
    pub before: Option<MessageId>,
    /// At most this many (0 means 100).
    pub limit: u32,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOutcome {
    pub cancelled_parts: usize,
    /// Parts already sent (or in flight): they stay as they are.
    pub already_sent_parts: usize,
}

/// One part in a message view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PartView {
    pub id: PartId,
    pub seq: u32,
    pub state: PartState,
    pub sim: Option<SimId>,
    pub tp_mr: Option<u8>,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub error: Option<String>,
    pub report_status: Option<u8>,
    pub sent_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    /// The Msg_Id a gateway's SUBMIT_RESP gave it (issue 12).
    pub gateway_msg_id: Option<String>,
}

/// A message without its parts (lists).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageSummary {
    pub id: MessageId,
    pub account: Option<String>,
    pub recipient: String,
    pub state: MessageState,
    pub part_count: u32,
    pub priority: i32,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// A message with its text and parts (GET /v1/messages/{id}).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageView {
    #[serde(flatten)]
    pub summary: MessageSummary,
    pub text: String,
    pub encoding: String,
    pub not_before: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    pub report_requested: bool,
    pub parts: Vec<PartView>,
    /// Its sender kind, gateway and Src_Id (issue 12).
    pub channel: gateway::MessageChannel,
}

impl serde::Serialize for MessageState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl serde::Serialize for PartState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PartState as P;

    #[test]
    fn derive_message_state_from_parts() {
        assert_eq!(derive(&[P::Queued, P::Queued]), Some(MessageState::Queued));
        assert_eq!(derive(&[P::Sent, P::Queued]), Some(MessageState::Sending));
        assert_eq!(derive(&[P::Sent, P::Delivered]), Some(MessageState::Sent));
        assert_eq!(
            derive(&[P::Delivered, P::Delivered]),
            Some(MessageState::Delivered)
        );
        assert_eq!(
            derive(&[P::Delivered, P::Failed]),
            Some(MessageState::Failed)
        );
        assert_eq!(derive(&[P::Sent, P::Expired]), Some(MessageState::Expired));
        assert_eq!(
            derive(&[P::Sending, P::Expired]),
            Some(MessageState::Sending)
        );
        assert_eq!(
            derive(&[P::Sent, P::Cancelled]),
            Some(MessageState::Cancelled)
        );
        assert_eq!(derive(&[P::Unknown]), Some(MessageState::Sending));
    }

    #[test]
    fn recipients_match_across_formats() {
        assert!(same_recipient("+8613912345678", "8613912345678"));
        assert!(same_recipient("+8613912345678", "13912345678"));
        assert!(!same_recipient("+8613912345678", "13912345679"));
        assert!(same_recipient("075512345678", "+8675512345678"));
        // The old suffix heuristic matched these for any part with the same TP-MR.
        assert!(!same_recipient("+8613912345678", ""));
        assert!(!same_recipient("+8613912345678", "ChinaMobile"));
        assert!(!same_recipient("+8613912345678", "5678"));
    }
}
