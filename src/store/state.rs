//! Message and part states: the explicit state machines of DESIGN.md "Message states", their
//! names in the database, and the table of allowed transitions.
//!
//! What must always hold: every state change of a message or a part goes through
//! `messages::set_message_state` / `messages::set_part_state`, which check
//! [`MessageState::can_become`] / [`PartState::can_become`] and log the transition; a part that
//! was `sending` when the daemon died becomes `unknown` and leaves it only by an operator's
//! retry or settlement, never by itself.

use std::fmt;

/// The state of a whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageState {
    /// Accepted, to be sent as soon as possible.
    Queued,
    /// Held by the contract layer until a reviewer decides.
    HeldForReview,
    /// Accepted with a future `not_before` (a timed send, 定时发送); due at that time.
    Scheduled,
    /// At least one part was handed to a modem; not all parts are sent yet.
    Sending,
    /// Every part was accepted by the network (+CMGS).
    Sent,
    /// Every part was reported delivered.
    Delivered,
    Failed,
    /// Its deadline passed with parts still unsent.
    Expired,
    /// Cancelled by the customer or operator; parts sent before stay sent.
    Cancelled,
    /// Refused by policy (contract layer).
    Rejected,
}

/// The state of one part (one SMS PDU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartState {
    Queued,
    /// Claimed for a SIM, committed before AT+CMGS is written.
    Sending,
    Sent,
    Delivered,
    Failed,
    Expired,
    Cancelled,
    /// Was `sending` when the daemon stopped: maybe sent, maybe not.
    Unknown,
}

/// A state name read from the database that no enum variant has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state name {0:?}")]
pub struct UnknownState(pub String);

impl MessageState {
    pub const ALL: [MessageState; 10] = [
        MessageState::Queued,
        MessageState::HeldForReview,
        MessageState::Scheduled,
        MessageState::Sending,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Failed,
        MessageState::Expired,
        MessageState::Cancelled,
        MessageState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::HeldForReview => "held_for_review",
            MessageState::Scheduled => "scheduled",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::Cancelled => "cancelled",
            MessageState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Result<MessageState, UnknownState> {
        MessageState::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }

    /// No further change happens by itself (an operator's retry may still reopen `failed`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageState::Delivered
                | MessageState::Failed
                | MessageState::Expired
                | MessageState::Cancelled
                | MessageState::Rejected
        )
    }

    /// Parts of a message in this state may be claimed.
    pub fn is_sendable(self) -> bool {
        matches!(
            self,
            MessageState::Queued | MessageState::Scheduled | MessageState::Sending
        )
    }

    /// The transition table. Staying in the same state is always allowed (a no-op).
    pub fn can_become(self, to: MessageState) -> bool {
        use MessageState::*;
        self == to
            || match self {
                HeldForReview => matches!(to, Queued | Scheduled | Rejected | Cancelled),
                Queued | Scheduled => {
                    matches!(
                        to,
                        Queued | Scheduled | Sending | Failed | Expired | Cancelled | Rejected
                    )
                }
                Sending => matches!(to, Queued | Sent | Delivered | Failed | Expired | Cancelled),
                Sent => matches!(to, Delivered | Failed | Sending),
                // Operator retry of failed or partly unknown messages; late reports.
                Failed => matches!(to, Queued | Sending | Sent | Delivered),
                Delivered | Expired | Cancelled | Rejected => false,
            }
    }
}

impl PartState {
    pub const ALL: [PartState; 8] = [
        PartState::Queued,
        PartState::Sending,
        PartState::Sent,
        PartState::Delivered,
        PartState::Failed,
        PartState::Expired,
        PartState::Cancelled,
        PartState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PartState::Queued => "queued",
            PartState::Sending => "sending",
            PartState::Sent => "sent",
            PartState::Delivered => "delivered",
            PartState::Failed => "failed",
            PartState::Expired => "expired",
            PartState::Cancelled => "cancelled",
            PartState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Result<PartState, UnknownState> {
        PartState::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }

    /// The network accepted it (it counts as sent for ordering and billing).
    pub fn is_sent(self) -> bool {
        matches!(self, PartState::Sent | PartState::Delivered)
    }

    /// The transition table. Staying in the same state is always allowed (a no-op).
    pub fn can_become(self, to: PartState) -> bool {
        use PartState::*;
        self == to
            || match self {
                Queued => matches!(to, Sending | Failed | Expired | Cancelled),
                Sending => matches!(to, Sent | Queued | Failed | Unknown),
                // A failed status report, or a late report after a failure.
                Sent => matches!(to, Delivered | Failed),
                // Only the operator (retry, settle) settles `unknown`.
                Unknown => matches!(to, Queued | Sent | Failed),
                Failed => matches!(to, Queued | Delivered),
                Delivered | Expired | Cancelled => false,
            }
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for PartState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in MessageState::ALL {
            assert_eq!(MessageState::parse(m.as_str()), Ok(m));
        }
        for p in PartState::ALL {
            assert_eq!(PartState::parse(p.as_str()), Ok(p));
        }
        assert!(PartState::parse("bogus").is_err());
    }

    #[test]
    fn unknown_never_goes_back_to_sending() {
        assert!(!PartState::Unknown.can_become(PartState::Sending));
        assert!(PartState::Unknown.can_become(PartState::Queued));
        assert!(!PartState::Delivered.can_become(PartState::Queued));
        assert!(!PartState::Sent.can_become(PartState::Queued));
    }

    #[test]
    fn terminal_message_states_stay() {
        for from in [
            MessageState::Delivered,
            MessageState::Expired,
            MessageState::Cancelled,
            MessageState::Rejected,
        ] {
            for to in MessageState::ALL {
                assert_eq!(from.can_become(to), from == to, "{from} -> {to}");
            }
        }
    }
}
