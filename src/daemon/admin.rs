//! The admin operations of the running daemon (accounts, credit, review, blacklists): [`admin`]
//! dispatches an [`AdminOp`] to one function per operation, each running on the store;
//! [`with_matches`] adds to the review list every rule word found in each held text (the
//! queue keeps only the decisive one), for the staff console's highlighting.
//!
//! What must always hold: every write is one transaction with its audit record (one `Store`
//! method; the transaction bodies are in `store::contract`); a request that
//! names an unknown account answers 404 and changes nothing; a blacklist change needs a reason;
//! `actor` (from the peer credentials, e.g. `admin:uid 0`) is what the audit log records.

use jiff::Timestamp;
use serde_json::json;

use crate::api::admin::{AdminOp, ReviewVerdict};
use crate::api::ApiError;
use crate::policy;
use crate::store::contract::{self as sc, NewAccount, NewLot, NumberScope};
use crate::store::{MessageId, Store, StoreError};

/// What an admin operation answers: the JSON to return, or the API error to answer with;
/// `Err` only when the store itself failed.
type AdminResult = Result<Result<serde_json::Value, ApiError>, StoreError>;

fn account_id(s: &Store, name: &str) -> Result<Result<i64, ApiError>, StoreError> {
    Ok(match s.account_by_name(name)? {
        Some(a) => Ok(a.id),
        None => Err(ApiError::NotFound(format!("no account {name:?}"))),
    })
}

macro_rules! id_or_return {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(api) => return Ok(Err(api)),
        }
    };
}

fn account_json(a: &policy::Account) -> serde_json::Value {
    serde_json::json!({
        "name": a.name,
        "uids": a.uids,
        "gids": a.gids,
        "signature_required": a.settings.signature_required,
        "unsubscribe_suffix": a.settings.unsubscribe_suffix,
        "send_window": a.settings.send_window.as_ref().map(|w| w.to_string()),
        "blacklisted": a.blacklisted,
    })
}

/// Runs one admin operation. `actor` goes to the audit log (e.g. `admin:uid 0`).
pub(crate) fn admin(s: &mut Store, op: AdminOp, actor: &str, now: Timestamp) -> AdminResult {
    match op {
        AdminOp::AccountList => account_list(s),
        AdminOp::AccountAdd {
            name,
            uids,
            gids,
            signature_required,
            unsubscribe_suffix,
            send_window,
        } => account_add(
            s,
            name,
            uids,
            gids,
            signature_required,
            unsubscribe_suffix,
            send_window,
            actor,
            now,
        ),
        AdminOp::CreditShow { account } => credit_show(s, account, now),
        AdminOp::CreditAdd {
            account,
            messages,
            price_fen,
            expires,
        } => credit_add(s, account, messages, price_fen, expires, actor, now),
        AdminOp::ReviewList => review_list(s),
        AdminOp::ReviewDecide { id, decision } => review_decide(s, id, decision, actor, now),
        AdminOp::BlacklistList => blacklist_list(s),
        AdminOp::BlacklistAdd {
            account,
            number,
            reason,
        }
        | AdminOp::BlacklistRemove {
            account,
            number,
            reason,
        } if reason.trim().is_empty() => {
            let _ = (account, number);
            Ok(Err(ApiError::InvalidField(
                "reason: a blacklist change needs a reason".into(),
            )))
        }
        AdminOp::BlacklistAdd {
            account,
            number,
            reason,
        } => blacklist_add(s, account, number, reason, actor, now),
        AdminOp::BlacklistRemove {
            account,
            number,
            reason,
        } => blacklist_remove(s, account, number, reason, actor, now),
        AdminOp::KeyAdd {
            account,
            name,
            allow_ips,
        } => {
            let account_id = id_or_return!(account_id(s, &account));
            super::keys::add(s, account_id, &account, name, allow_ips, actor, now)
        }
        AdminOp::KeyList { account } => {
            let id = match &account {
                Some(a) => Some(id_or_return!(account_id(s, a))),
                None => None,
            };
            super::keys::list(s, id)
        }
        AdminOp::KeyRevoke { id, account } => {
            let only = match &account {
                Some(a) => Some(id_or_return!(account_id(s, a))),
                None => None,
            };
            super::keys::revoke(s, id, only, actor, now)
        }
        AdminOp::KeyVerify { key, ip } => super::keys::verify(s, &key, &ip),
        AdminOp::WebhookSet { account, url } => {
            let account_id = id_or_return!(account_id(s, &account));
            super::webhooks::set(s, account_id, &account, url, actor, now)
        }
        AdminOp::WebhookList => super::webhooks::list(s),
        AdminOp::WebhookDue { limit } => super::webhooks::due(s, limit, now),
        AdminOp::WebhookAck { id, error } => super::webhooks::ack(s, id, error, now),
    }
}

/// Every account.
fn account_list(s: &Store) -> AdminResult {
    let list = s.accounts()?;
    Ok(Ok(
        json!({"accounts": list.iter().map(account_json).collect::<Vec<_>>()}),
    ))
}

/// Adds an account (audited).
#[allow(clippy::too_many_arguments)] // the fields of its `AdminOp`, one to one
fn account_add(
    s: &mut Store,
    name: String,
    uids: Vec<u32>,
    gids: Vec<u32>,
    signature_required: bool,
    unsubscribe_suffix: Option<String>,
    send_window: Option<String>,
    actor: &str,
    now: Timestamp,
) -> AdminResult {
    let send_window = match send_window.as_deref().map(policy::SendWindow::parse) {
        None => None,
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => return Ok(Err(ApiError::InvalidField(format!("send_window: {e}")))),
    };
    if name.trim().is_empty() {
        return Ok(Err(ApiError::InvalidField(
            "name: must not be empty".into(),
        )));
    }
    if s.account_by_name(&name)?.is_some() {
        return Ok(Err(ApiError::Conflict(format!(
            "account {name:?} already exists"
        ))));
    }
    let new = NewAccount {
        name: name.clone(),
        uids,
        gids,
        settings: policy::AccountSettings {
            signature_required,
            unsubscribe_suffix: unsubscribe_suffix.filter(|s| !s.is_empty()),
            send_window,
        },
    };
    s.add_account(&new, actor, now)?;
    let a = s.account_by_name(&name)?;
    Ok(Ok(json!({"account": a.as_ref().map(account_json)})))
}

/// An account's credit.
fn credit_show(s: &Store, account: String, now: Timestamp) -> AdminResult {
    let id = id_or_return!(account_id(s, &account));
    let sum = s.credit_summary(id, now)?;
    Ok(Ok(serde_json::to_value(sum).unwrap_or_default()))
}

/// Adds a credit lot to an account (audited).
fn credit_add(
    s: &mut Store,
    account: String,
    messages: u64,
    price_fen: i64,
    expires: Option<Timestamp>,
    actor: &str,
    now: Timestamp,
) -> AdminResult {
    if messages == 0 {
        return Ok(Err(ApiError::InvalidField(
            "messages: must be at least 1".into(),
        )));
    }
    if expires.is_some_and(|e| e <= now) {
        return Ok(Err(ApiError::InvalidField(
            "expires: must be in the future".into(),
        )));
    }
    let id = id_or_return!(account_id(s, &account));
    let lot = NewLot {
        quantity: messages,
        price_fen,
        purchased_at: now,
        expires_at: expires,
    };
    let lot_id = s.add_credit(id, &lot, actor, now)?;
    let sum = s.credit_summary(id, now)?;
    Ok(Ok(json!({"lot": lot_id, "credit": sum})))
}

/// The messages waiting for review.
fn review_list(s: &Store) -> AdminResult {
    let items = s.pending_reviews()?;
    let accounts = s.accounts()?;
    let mut out = Vec::new();
    for i in items {
        let view = s.message(MessageId(i.message_id))?;
        out.push(json!({
            "id": i.message_id,
            "account": accounts.iter().find(|a| a.id == i.account_id).map(|a| a.name.clone()),
            "category": i.category,
            "word": i.word,
            "held_at": i.held_at,
            "to": view.as_ref().map(|v| v.summary.recipient.clone()),
            "text": view.as_ref().map(|v| v.text.clone()),
        }));
    }
    Ok(Ok(json!({"reviews": out})))
}

/// Decides a held message: released, rejected, or rejected as a violation (charged).
fn review_decide(
    s: &mut Store,
    id: i64,
    decision: ReviewVerdict,
    actor: &str,
    now: Timestamp,
) -> AdminResult {
    let decision = match decision {
        ReviewVerdict::Approve => sc::ReviewDecision::Approve,
        ReviewVerdict::Reject => sc::ReviewDecision::Reject,
        ReviewVerdict::RejectAsViolation => sc::ReviewDecision::RejectAsViolation,
    };
    match s.decide_review(id, decision, actor, now)? {
        Some(r) => Ok(Ok(serde_json::to_value(r).unwrap_or_default())),
        None => Ok(Err(ApiError::Conflict(format!(
            "message {id} is not waiting for review"
        )))),
    }
}

/// Both blacklists: accounts and numbers.
fn blacklist_list(s: &Store) -> AdminResult {
    let accounts = s.accounts()?;
    let mut numbers = s
        .number_blacklist(NumberScope::Global)?
        .into_iter()
        .map(|b| {
            json!({"account": null, "number": b.number, "reason": b.reason,
                   "added_by": b.added_by, "added_at": b.added_at})
        })
        .collect::<Vec<_>>();
    for a in &accounts {
        for b in s.number_blacklist(NumberScope::Account(a.id))? {
            numbers.push(json!({"account": a.name, "number": b.number,
                "reason": b.reason, "added_by": b.added_by, "added_at": b.added_at}));
        }
    }
    let blacklisted: Vec<_> = accounts
        .iter()
        .filter_map(|a| {
            a.blacklisted
                .as_ref()
                .map(|b| json!({"account": a.name, "reason": b.reason, "since": b.since}))
        })
        .collect();
    Ok(Ok(json!({"accounts": blacklisted, "numbers": numbers})))
}

/// Blacklists a number (globally or for an account) or an account.
fn blacklist_add(
    s: &mut Store,
    account: Option<String>,
    number: Option<String>,
    reason: String,
    actor: &str,
    now: Timestamp,
) -> AdminResult {
    if number.is_none() && account.is_none() {
        return Ok(Err(ApiError::InvalidField(
            "name a number, an account, or both".into(),
        )));
    }
    let id = match &account {
        Some(a) => Some(id_or_return!(account_id(s, a))),
        None => None,
    };
    let changed = s.blacklist(number.as_deref(), id, &reason, actor, now)?;
    Ok(Ok(json!({"changed": changed})))
}

/// Lifts a blacklisting of a number or an account.
fn blacklist_remove(
    s: &mut Store,
    account: Option<String>,
    number: Option<String>,
    reason: String,
    actor: &str,
    now: Timestamp,
) -> AdminResult {
    let id = match &account {
        Some(a) => Some(id_or_return!(account_id(s, a))),
        None => None,
    };
    if number.is_none() && account.is_none() {
        return Ok(Err(ApiError::InvalidField(
            "name a number, an account, or both".into(),
        )));
    }
    let changed = s.lift_blacklist(number.as_deref(), id, &reason, actor, now)?;
    Ok(Ok(json!({"changed": changed})))
}

/// The review list with every rule word found in each held text (`"matches"`: category,
/// word, and the byte span `start..end` in `"text"`), by `rules`: the queue keeps only the
/// decisive word, the reviewer needs to see them all. Items without a text get none.
pub(crate) fn with_matches(
    mut list: serde_json::Value,
    rules: &crate::policy::content::RuleSet,
) -> serde_json::Value {
    if let Some(items) = list["reviews"].as_array_mut() {
        for item in items {
            let matches = item["text"]
                .as_str()
                .map(|text| rules.check(text).matches)
                .unwrap_or_default();
            item["matches"] = json!(matches
                .iter()
                .map(|m| json!({"category": m.category, "word": m.word,
                                "start": m.start, "end": m.end}))
                .collect::<Vec<_>>());
        }
    }
    list
}

#[cfg(test)]
mod staff_tests {
    use super::*;

    #[test]
    fn the_review_list_names_every_matched_word_with_its_span() {
        let rules = crate::policy::content::RuleSet::from_toml(
            "[[category]]\nname = \"loans\"\naction = \"review\"\nwords = [\"贷款\", \"利息\"]\n",
            "test",
        )
        .unwrap();
        let text = "低息贷款，利息优惠";
        let list =
            json!({"reviews": [{"id": 1, "text": text, "word": "贷款"}, {"id": 2, "text": null}]});
        let out = with_matches(list, &rules);
        let m = out["reviews"][0]["matches"].as_array().unwrap();
        let words: Vec<&str> = m
            .iter()
            .map(|m| {
                let (s, e) = (m["start"].as_u64().unwrap(), m["end"].as_u64().unwrap());
                &text[s as usize..e as usize]
            })
            .collect();
        assert_eq!(words, ["贷款", "利息"]);
        assert_eq!(out["reviews"][1]["matches"], json!([]));
    }
}
