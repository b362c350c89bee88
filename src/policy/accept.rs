//! The acceptance decision: given an account, the facts the store holds about it and its
//! recipients, the content rules, the text and `now`, decide what happens to a send request.
//! Pure: the daemon gathers [`AcceptanceFacts`] (`store::contract::acceptance_facts`), calls
//! [`decide`], then applies the decision in one transaction (reserve, insert, audit).
//!
//! What must always hold, in this order: a blacklisted account is refused whole; a missing
//! required 【signature】 is refused whole; opted-out and blacklisted numbers are refused per
//! recipient and never charged; blocked content is refused whole, charged for the recipients
//! that would have been sent to, and blacklists the account; insufficient credit refuses the
//! request whole with the shortfall; review content is accepted but held; outside the send
//! window the message waits (`not_before`). Cost = parts of the final text x accepted
//! recipients, parts counted by the codec (passed in as `count_parts`).

use std::collections::HashSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::account::Account;
use super::content::{ContentAction, ContentMatch, RuleSet};
use crate::number::key;

/// What the store knows that the decision needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptanceFacts {
    /// Keys ([`crate::number::key`]) of the numbers on the global or this account's blacklist.
    pub blacklisted_numbers: HashSet<String>,
    /// Keys of the numbers that opted out of this account.
    pub opted_out: HashSet<String>,
    /// Credit available now.
    pub available_credit: u64,
}

/// What happens to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientDecision {
    Accept,
    RefusedOptedOut,
    RefusedBlacklisted,
}

/// One recipient's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientOutcome {
    /// The recipient's key ([`crate::number::key`]).
    pub number: String,
    pub decision: RecipientDecision,
}

/// Why a whole request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    EmptyText,
    NoRecipients,
    AccountBlacklisted {
        reason: String,
    },
    MissingSignature,
    /// Every recipient was refused individually.
    AllRecipientsRefused {
        recipients: Vec<RecipientOutcome>,
    },
    /// Prohibited content: the daemon charges `charge` parts
    /// (`store::contract::charge_violation`) and blacklists the account.
    BlockedContent {
        category: String,
        word: String,
        charge: u64,
        matches: Vec<ContentMatch>,
    },
    InsufficientCredit {
        needed: u64,
        available: u64,
        shortfall: u64,
    },
}

/// A request that goes ahead (possibly held or delayed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptance {
    /// The text to send (with the unsubscribe suffix when the account has one).
    pub final_text: String,
    /// Parts per recipient.
    pub parts: u32,
    /// Every recipient with its outcome, in request order.
    pub recipients: Vec<RecipientOutcome>,
    /// Parts to reserve: `parts` x accepted recipients.
    pub cost: u64,
    /// Set when the content needs a reviewer.
    pub hold: Option<ContentMatch>,
    /// Set when the send window is closed now.
    pub not_before: Option<Timestamp>,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Accepted(Acceptance),
    Refused(Refusal),
}

/// Whether `text` starts with a non-empty 【signature】 (leading whitespace allowed).
pub fn has_signature(text: &str) -> bool {
    let Some(rest) = text.trim_start().strip_prefix('【') else {
        return false;
    };
    match rest.split_once('】') {
        Some((sig, _)) => !sig.trim().is_empty() && !sig.contains('【'),
        None => false,
    }
}

/// The text with `suffix` appended, unless it already ends with it.
pub fn with_suffix(text: &str, suffix: Option<&str>) -> String {
    match suffix {
        Some(s) if !s.is_empty() && !text.trim_end().ends_with(s) => format!("{text}{s}"),
        _ => text.to_string(),
    }
}

/// The text as it is sent for an account with `settings`: the customer's text with the
/// account's unsubscribe suffix ([`with_suffix`]). The one rule by which [`decide`] counts and
/// the store builds, reserves and charges a message's parts, and by which a quote
/// (`store::acceptance::quote`) prices a text before it is sent: a quote is what the send costs.
pub fn text_as_sent(settings: &super::AccountSettings, text: &str) -> String {
    with_suffix(text, settings.unsubscribe_suffix.as_deref())
}

/// Decides a send request. `count_parts` is the codec's count of parts for a text.
pub fn decide(
    account: &Account,
    facts: &AcceptanceFacts,
    rules: &RuleSet,
    recipients: &[String],
    text: &str,
    now: Timestamp,
    count_parts: &dyn Fn(&str) -> u32,
) -> Decision {
    if let Some(bl) = &account.blacklisted {
        return Decision::Refused(Refusal::AccountBlacklisted {
            reason: bl.reason.clone(),
        });
    }
    if text.trim().is_empty() {
        return Decision::Refused(Refusal::EmptyText);
    }
    if recipients.is_empty() {
        return Decision::Refused(Refusal::NoRecipients);
    }
    if account.settings.signature_required && !has_signature(text) {
        return Decision::Refused(Refusal::MissingSignature);
    }
    let outcomes: Vec<RecipientOutcome> = recipients
        .iter()
        .map(|r| {
            let number = key(r);
            let decision = if facts.blacklisted_numbers.contains(&number) {
                RecipientDecision::RefusedBlacklisted
            } else if facts.opted_out.contains(&number) {
                RecipientDecision::RefusedOptedOut
            } else {
                RecipientDecision::Accept
            };
            RecipientOutcome { number, decision }
        })
        .collect();
    let accepted = outcomes
        .iter()
        .filter(|o| o.decision == RecipientDecision::Accept)
        .count() as u64;
    let final_text = text_as_sent(&account.settings, text);
    let parts = count_parts(&final_text);
    let cost = u64::from(parts) * accepted;

    // The customer's text is judged, not the operator's suffix.
    let verdict = rules.check(text);
    if verdict.action == ContentAction::Block {
        let (category, word) = verdict
            .decisive()
            .map(|m| (m.category.clone(), m.word.clone()))
            .unwrap_or_default();
        return Decision::Refused(Refusal::BlockedContent {
            category,
            word,
            charge: cost,
            matches: verdict.matches,
        });
    }
    if accepted == 0 {
        return Decision::Refused(Refusal::AllRecipientsRefused {
            recipients: outcomes,
        });
    }
    if cost > facts.available_credit {
        return Decision::Refused(Refusal::InsufficientCredit {
            needed: cost,
            available: facts.available_credit,
            shortfall: cost - facts.available_credit,
        });
    }
    let hold = if verdict.action == ContentAction::Review {
        verdict.decisive().cloned()
    } else {
        None
    };
    let not_before = account
        .settings
        .send_window
        .as_ref()
        .and_then(|w| w.next_allowed(now));
    Decision::Accepted(Acceptance {
        final_text,
        parts,
        recipients: outcomes,
        cost,
        hold,
        not_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert!(has_signature("【ACME】hello"));
        assert!(has_signature("  【某公司】你好"));
        assert!(!has_signature("hello【ACME】"));
        assert!(!has_signature("【】hello"));
        assert!(!has_signature("【ACME hello"));
    }

    #[test]
    fn decisions_serialise_for_the_api() {
        let d = Decision::Refused(Refusal::InsufficientCredit {
            needed: 3,
            available: 1,
            shortfall: 2,
        });
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"decision": "refused", "refusal": "insufficient_credit",
                               "needed": 3, "available": 1, "shortfall": 2})
        );
        let back: Decision = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
        let d = Decision::Refused(Refusal::EmptyText);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"decision": "refused", "refusal": "empty_text"})
        );
        let r = RecipientOutcome {
            number: "13912345678".into(),
            decision: RecipientDecision::RefusedOptedOut,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap()["decision"],
            "refused_opted_out"
        );
    }

    #[test]
    fn suffix_once() {
        assert_eq!(with_suffix("hi", Some("回T退订")), "hi回T退订");
        assert_eq!(with_suffix("hi回T退订", Some("回T退订")), "hi回T退订");
        assert_eq!(with_suffix("hi", None), "hi");
    }
}
