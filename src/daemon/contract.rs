//! The contract in the running daemon: the acceptance decision applied to a send request, the
//! admin operations (accounts, credit, review, blacklists), the inbound opt-out and the daily
//! audit purge. Each operation runs on the store inside one transaction, so a message, its
//! credit reservation and its audit entries commit together or not at all.
//!
//! What must always hold: a request is decided by [`crate::policy::decide`] on facts read in the
//! same store call that applies it (the store is behind one mutex, so two requests cannot spend
//! the same credit); a refusal that must leave a trace (the violation's charge and blacklisting,
//! the audit of a rejected request) is committed before the error is returned; a message's
//! deadline is its validity counted from the earliest time it may be sent (not from now), and a
//! request whose explicit validity ends before its own `not_before` is refused before anything
//! is reserved; the database is the one source of truth for accounts: the configuration's
//! `[[accounts]]` are upserted into it at start and `smsgate account add` adds more at run time.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use crate::api::admin::{AdminOp, ReviewVerdict};
use crate::api::types::Refusal;
use crate::api::{AccessMap, ApiError};
use crate::audit::{AuditEntry, AuditEvent, Retention};
use crate::config::Config;
use crate::number::Number;
use crate::policy::content::RulesFile;
use crate::policy::{
    self, Acceptance, Decision, OptOutConfig, RecipientDecision, Refusal as PolicyRefusal, RuleSet,
};
use crate::store::contract::{self as sc, ContractError, NewAccount, NewLot, NumberScope};
use crate::store::{self, InitialState, MessageId, NewMessage, NewPart, Store, StoreError};

/// The contract's settings that SIGHUP reloads.
#[derive(Debug, Clone)]
pub(crate) struct ContractSettings {
    pub rules: Arc<RuleSet>,
    pub optout: OptOutConfig,
    pub retention: Retention,
}

impl ContractSettings {
    /// Reads the rules file named in `[policy] rules` (none: no content rules).
    pub fn from_config(config: &Config) -> Result<ContractSettings, String> {
        Ok(ContractSettings {
            rules: Arc::new(load_rules(config.policy.rules.as_deref())?),
            optout: OptOutConfig {
                words: config.policy.unsubscribe_words.clone(),
                lookback_days: config.policy.optout_lookback_days,
            },
            retention: Retention::days(config.audit.retention_days)
                .map_err(|e| format!("audit.retention_days: {e}"))?,
        })
    }
}

fn load_rules(path: Option<&Path>) -> Result<RuleSet, String> {
    let file = match path {
        None => RulesFile::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("policy.rules {}: {e}", p.display()))?;
            RulesFile::parse(&text, &p.display().to_string()).map_err(|e| e.to_string())?
        }
    };
    RuleSet::compile(file).map_err(|e| e.to_string())
}

fn contract_err(e: ContractError) -> StoreError {
    StoreError::Contract(e.to_string())
}

/// Upserts the configuration's accounts (with group names resolved in `access`) into the
/// database: a new name is created, an existing one gets the configured uids and gids.
pub(crate) fn upsert_accounts(
    store: &mut Store,
    config: &Config,
    access: &AccessMap,
    now: Timestamp,
) -> Result<(), StoreError> {
    store.transaction(|tx| {
        for a in &access.accounts {
            let id = match sc::account_by_name(tx, &a.name).map_err(contract_err)? {
                Some(existing) => {
                    sc::set_peers(tx, existing.id, &a.uids, &a.gids).map_err(contract_err)?;
                    existing.id
                }
                None => {
                    let new = NewAccount {
                        name: a.name.clone(),
                        uids: a.uids.clone(),
                        gids: a.gids.clone(),
                        ..NewAccount::default()
                    };
                    sc::create_account(tx, &new, now).map_err(contract_err)?
                }
            };
            let Some(c) = config.accounts.iter().find(|c| c.name == a.name) else {
                continue;
            };
            sc::set_unmetered(tx, id, c.unmetered).map_err(contract_err)?;
            let settings = policy::AccountSettings {
                signature_required: c.signature_required,
                unsubscribe_suffix: c.unsubscribe_suffix.clone().filter(|s| !s.is_empty()),
                send_window: c
                    .send_window
                    .as_deref()
                    .map(policy::SendWindow::parse)
                    .transpose()
                    .map_err(|e| StoreError::Invalid(format!("accounts {:?}: {e}", c.name)))?,
            };
            sc::update_settings(tx, id, &settings).map_err(contract_err)?;
        }
        Ok(())
    })
}

/// What a send request needs besides the account and its recipients.
pub(crate) struct SubmitInput {
    pub account: String,
    /// Who acted, for the audit log: `account:<name>` or `admin:uid <n>`.
    pub actor: String,
    /// Recipients that parsed, in request order.
    pub recipients: Vec<Number>,
    pub text: String,
    pub priority: i32,
    pub not_before: Option<Timestamp>,
    /// How long the message may wait once it may be sent (the request's or the default).
    pub validity_span: jiff::SignedDuration,
    /// Whether the request stated its validity (a default one is never refused).
    pub validity_explicit: bool,
    pub report: bool,
    pub validity: Option<crate::pdu::ValidityPeriod>,
}

impl SubmitInput {
    /// The deadline: `validity_span` after the earliest time the message may be sent (`now`,
    /// the request's `not_before`, the opening of the account's send window), so a message
    /// that must wait is not accepted already doomed to expire unsent.
    fn deadline(&self, earliest: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        earliest
            .map_or(now, |e| e.max(now))
            .checked_add(self.validity_span)
            .ok()
    }

    /// An explicit validity that ends (counted from the request) before the request's own
    /// `not_before`: the request contradicts itself, and accepting it would reserve credit
    /// for a message that can only expire.
    fn contradiction(&self, now: Timestamp) -> Option<ApiError> {
        let nb = self.not_before.filter(|_| self.validity_explicit)?;
        let ends = now.checked_add(self.validity_span).ok()?;
        (ends <= nb).then(|| {
            ApiError::InvalidField(format!(
                "validity: {:#} from now ends at {ends}, before not_before {nb}; nothing was \
                 reserved (give a longer validity or an earlier not_before)",
                self.validity_span
            ))
        })
    }
}

/// What the store call decided.
pub(crate) struct SubmitOutcome {
    pub ids: Vec<MessageId>,
    pub parts: u32,
    pub refused: Vec<Refusal>,
    pub held: bool,
}

/// Encodes `text` for one recipient (see `backend::encode_for`).
type Encoder<'a> = &'a dyn Fn(&Number, &str) -> Result<(String, Vec<NewPart>), ApiError>;

fn audit_rejected(
    tx: &rusqlite::Transaction<'_>,
    account_id: i64,
    input: &SubmitInput,
    recipients: &[String],
    parts: u32,
    why: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    for r in recipients {
        let mut e = AuditEntry::new(AuditEvent::Rejected, now, &input.actor);
        e.account_id = Some(account_id);
        e.recipient = Some(crate::number::key(r));
        e.text = Some(input.text.clone());
        e.parts = Some(i64::from(parts));
        e.outcome = why.to_string();
        store::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))?;
    }
    Ok(())
}

fn recipient_refusal(number: &str, d: RecipientDecision) -> Option<Refusal> {
    let (code, message) = match d {
        RecipientDecision::Accept => return None,
        RecipientDecision::RefusedOptedOut => (
            "opted_out",
            "the recipient replied with an unsubscribe word: not sent, not charged",
        ),
        RecipientDecision::RefusedBlacklisted => (
            "number_blacklisted",
            "the number is on a blacklist: not sent, not charged",
        ),
    };
    Some(Refusal {
        to: number.to_string(),
        code: code.into(),
        message: message.into(),
    })
}

/// Decides and applies a send request in one store call. `Err(ApiError)` for a refusal of the
/// whole request (after committing what the refusal itself must record).
pub(crate) fn submit(
    s: &mut Store,
    rules: &RuleSet,
    input: &SubmitInput,
    encode: Encoder<'_>,
    now: Timestamp,
) -> Result<Result<SubmitOutcome, ApiError>, StoreError> {
    if let Some(e) = input.contradiction(now) {
        return Ok(Err(e));
    }
    let Some(account) = sc::account_by_name(&s.conn, &input.account).map_err(contract_err)? else {
        return Ok(Err(ApiError::Forbidden(format!(
            "account {:?} does not exist (see `smsgate account add`)",
            input.account
        ))));
    };
    let numbers: Vec<String> = input
        .recipients
        .iter()
        .map(|n| crate::number::key(n.canonical()))
        .collect();
    let mut facts =
        sc::acceptance_facts(&s.conn, account.id, &numbers, now).map_err(contract_err)?;
    let unmetered = sc::is_unmetered(&s.conn, account.id).map_err(contract_err)?;
    if unmetered {
        facts.available_credit = u64::MAX;
    }
    let count_parts = |text: &str| -> u32 {
        input
            .recipients
            .first()
            .and_then(|n| encode(n, text).ok())
            .map(|(_, p)| p.len() as u32)
            .unwrap_or(1)
    };
    let decision = policy::decide(
        &account,
        &facts,
        rules,
        &numbers,
        &input.text,
        now,
        &count_parts,
    );
    let acc: Acceptance = match decision {
        Decision::Accepted(a) => a,
        Decision::Refused(refusal) => {
            return refuse(s, &account, input, &numbers, refusal, encode, now);
        }
    };
    // Refused recipients (opted out, blacklisted) are reported, audited, never charged.
    let mut refused = Vec::new();
    let mut accepted = Vec::new();
    for (o, n) in acc.recipients.iter().zip(&input.recipients) {
        match recipient_refusal(n.canonical(), o.decision) {
            Some(r) => refused.push(r),
            None => accepted.push(n.clone()),
        }
    }
    let not_before = match (input.not_before, acc.not_before) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let deadline = input.deadline(not_before, now);
    let mut batch = Vec::with_capacity(accepted.len());
    let mut parts = 0u32;
    for n in &accepted {
        let (encoding, new_parts) = match encode(n, &acc.final_text) {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        parts = parts.max(new_parts.len() as u32);
        batch.push(NewMessage {
            account: Some(account.name.clone()),
            recipient: n.canonical().to_string(),
            recipient_carrier: n.carrier(),
            text: acc.final_text.clone(),
            encoding,
            priority: input.priority,
            not_before,
            deadline,
            report_requested: input.report,
            initial: if acc.hold.is_some() {
                InitialState::HeldForReview
            } else {
                InitialState::Ready
            },
            parts: new_parts,
        });
    }
    let hold = acc.hold.clone();
    let refused_numbers: Vec<(String, String)> = refused
        .iter()
        .map(|r| (r.to.clone(), r.code.clone()))
        .collect();
    let ids = s.transaction(|tx| -> Result<Vec<MessageId>, StoreError> {
        let ids = store::insert_messages(tx, &batch, now)?;
        for (id, m) in ids.iter().zip(&batch) {
            // `decide` saw enough credit under the store's mutex, so this cannot fall short; if
            // it did, the error rolls the whole request back.
            if !unmetered {
                sc::reserve(tx, account.id, m.parts.len() as u32, now, &[id.0])
                    .map_err(contract_err)?;
            }
            let outcome = match &hold {
                Some(h) => format!("accepted, held for review ({})", h.category),
                None => "accepted".to_string(),
            };
            let e = AuditEntry::message(
                AuditEvent::Accepted,
                now,
                &input.actor,
                account.id,
                id.0,
                &crate::number::key(&m.recipient),
                &m.text,
                m.parts.len() as u32,
                &format!("{outcome}; {} parts reserved", m.parts.len()),
            );
            store::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))?;
            if let Some(h) = &hold {
                sc::hold_for_review(tx, id.0, account.id, &h.category, &h.word, now)
                    .map_err(contract_err)?;
            }
        }
        for (number, code) in &refused_numbers {
            audit_rejected(
                tx,
                account.id,
                input,
                std::slice::from_ref(number),
                acc.parts,
                &format!("recipient refused: {code}"),
                now,
            )?;
        }
        Ok(ids)
    })?;
    Ok(Ok(SubmitOutcome {
        ids,
        parts: if parts == 0 { acc.parts } else { parts },
        refused,
        held: hold.is_some(),
    }))
}

/// Applies a refusal of the whole request: audit (and, for blocked content, the charge and the
/// blacklisting), committed; then the error for the caller.
fn refuse(
    s: &mut Store,
    account: &policy::Account,
    input: &SubmitInput,
    numbers: &[String],
    refusal: PolicyRefusal,
    encode: Encoder<'_>,
    now: Timestamp,
) -> Result<Result<SubmitOutcome, ApiError>, StoreError> {
    // Counted as `decide` counts: the text as it would have been sent (with the suffix).
    let final_text =
        policy::accept::with_suffix(&input.text, account.settings.unsubscribe_suffix.as_deref());
    let parts = input
        .recipients
        .first()
        .and_then(|n| encode(n, &final_text).ok())
        .map(|(_, p)| p.len() as u32)
        .unwrap_or(1);
    let (why, err) = match &refusal {
        PolicyRefusal::EmptyText => (
            "refused: empty text".to_string(),
            ApiError::InvalidField("text: must not be empty".into()),
        ),
        PolicyRefusal::NoRecipients => (
            "refused: no recipients".to_string(),
            ApiError::InvalidField("to: at least one recipient is required".into()),
        ),
        PolicyRefusal::AccountBlacklisted { reason } => (
            format!("refused: account blacklisted ({reason})"),
            ApiError::Policy {
                code: "account_blacklisted".into(),
                message: format!(
                    "account {} is blacklisted ({reason}); an administrator must lift it \
                     (`smsgate blacklist remove --account {} --reason ...`)",
                    account.name, account.name
                ),
            },
        ),
        PolicyRefusal::MissingSignature => (
            "refused: missing 【signature】".to_string(),
            ApiError::Policy {
                code: "signature_required".into(),
                message: format!(
                    "account {} must start every text with its 【signature】",
                    account.name
                ),
            },
        ),
        PolicyRefusal::AllRecipientsRefused { recipients } => {
            let refused: Vec<Refusal> = recipients
                .iter()
                .zip(&input.recipients)
                .filter_map(|(o, n)| recipient_refusal(n.canonical(), o.decision))
                .collect();
            let codes: Vec<(String, String)> = refused
                .iter()
                .map(|r| (r.to.clone(), r.code.clone()))
                .collect();
            s.transaction(|tx| {
                for (n, code) in &codes {
                    audit_rejected(
                        tx,
                        account.id,
                        input,
                        std::slice::from_ref(n),
                        parts,
                        &format!("recipient refused: {code}"),
                        now,
                    )?;
                }
                Ok::<_, StoreError>(())
            })?;
            return Ok(Ok(SubmitOutcome {
                ids: Vec::new(),
                parts,
                refused,
                held: false,
            }));
        }
        PolicyRefusal::BlockedContent { category, .. } => {
            let category = category.clone();
            let charged = blocked(s, account, input, numbers, &category, parts, now)?;
            return Ok(Err(ApiError::Policy {
                code: "content_prohibited".into(),
                message: format!(
                    "prohibited content ({category}): not sent; {charged} parts charged; \
                     account {} is now blacklisted",
                    account.name
                ),
            }));
        }
        PolicyRefusal::InsufficientCredit {
            needed,
            available,
            shortfall,
        } => (
            format!("refused: insufficient credit (short by {shortfall})"),
            ApiError::InsufficientCredit(format!(
                "insufficient credit: {needed} parts needed, {available} available, short by \
                 {shortfall}"
            )),
        ),
    };
    s.transaction(|tx| audit_rejected(tx, account.id, input, numbers, parts, &why, now))?;
    Ok(Err(err))
}

/// Blocked content: the messages are recorded as `rejected`, charged as committed (as far as
/// credit goes), the account blacklisted; all audited, in one transaction. Returns the parts
/// charged.
fn blocked(
    s: &mut Store,
    account: &policy::Account,
    input: &SubmitInput,
    numbers: &[String],
    category: &str,
    parts: u32,
    now: Timestamp,
) -> Result<u64, StoreError> {
    // Only recipients that would have been sent to are charged (not opted-out/blacklisted).
    let facts = sc::acceptance_facts(&s.conn, account.id, numbers, now).map_err(contract_err)?;
    let batch: Vec<NewMessage> = input
        .recipients
        .iter()
        .zip(numbers)
        .filter(|(_, c)| !facts.blacklisted_numbers.contains(*c) && !facts.opted_out.contains(*c))
        .map(|(n, _)| NewMessage {
            account: Some(account.name.clone()),
            recipient: n.canonical().to_string(),
            recipient_carrier: n.carrier(),
            text: input.text.clone(),
            encoding: String::new(),
            priority: input.priority,
            not_before: None,
            deadline: input.deadline(None, now),
            report_requested: false,
            initial: InitialState::HeldForReview,
            // A placeholder part per counted part: the rows only carry the charge; they are
            // rejected in the same transaction and never reach a modem.
            parts: (0..parts.max(1))
                .map(|_| NewPart {
                    pdu_hex: "00".into(),
                    cmgs_length: 1,
                })
                .collect(),
        })
        .collect();
    let actor = input.actor.clone();
    s.transaction(|tx| {
        let ids = store::insert_messages(tx, &batch, now)?;
        let raw: Vec<i64> = ids.iter().map(|i| i.0).collect();
        let charge =
            sc::charge_violation(tx, account.id, parts.max(1), &raw, category, &actor, now)
                .map_err(contract_err)?;
        let reason = format!("prohibited content ({category})");
        for (id, m) in ids.iter().zip(&batch) {
            store::reject(tx, *id, &reason, now)?;
            let e = AuditEntry::message(
                AuditEvent::Rejected,
                now,
                &actor,
                account.id,
                id.0,
                &crate::number::key(&m.recipient),
                &m.text,
                parts,
                &format!("refused: {reason}; charged"),
            );
            store::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))?;
        }
        if ids.is_empty() {
            // Nobody to charge, but the account is still blacklisted.
            sc::blacklist_account(tx, account.id, &reason, &actor, now).map_err(contract_err)?;
        }
        Ok(charge.charged)
    })
}

// ---------------------------------------------------------------------------------------------
// Admin operations

fn account_id(s: &Store, name: &str) -> Result<Result<i64, ApiError>, StoreError> {
    Ok(
        match sc::account_by_name(&s.conn, name).map_err(contract_err)? {
            Some(a) => Ok(a.id),
            None => Err(ApiError::NotFound(format!("no account {name:?}"))),
        },
    )
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
pub(crate) fn admin(
    s: &mut Store,
    op: AdminOp,
    actor: &str,
    now: Timestamp,
) -> Result<Result<serde_json::Value, ApiError>, StoreError> {
    use serde_json::json;
    let v = match op {
        AdminOp::AccountList => {
            let list = sc::accounts(&s.conn).map_err(contract_err)?;
            json!({"accounts": list.iter().map(account_json).collect::<Vec<_>>()})
        }
        AdminOp::AccountAdd {
            name,
            uids,
            gids,
            signature_required,
            unsubscribe_suffix,
            send_window,
        } => {
            let send_window = match send_window.as_deref().map(policy::SendWindow::parse) {
                None => None,
                Some(Ok(w)) => Some(w),
                Some(Err(e)) => {
                    return Ok(Err(ApiError::InvalidField(format!("send_window: {e}"))))
                }
            };
            if name.trim().is_empty() {
                return Ok(Err(ApiError::InvalidField(
                    "name: must not be empty".into(),
                )));
            }
            if sc::account_by_name(&s.conn, &name)
                .map_err(contract_err)?
                .is_some()
            {
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
            s.transaction(|tx| {
                let id = sc::create_account(tx, &new, now).map_err(contract_err)?;
                let mut e = AuditEntry::new(AuditEvent::Other("account_added".into()), now, actor);
                e.account_id = Some(id);
                e.outcome = format!("account {name} added");
                store::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))
            })?;
            let a = sc::account_by_name(&s.conn, &name).map_err(contract_err)?;
            json!({"account": a.as_ref().map(account_json)})
        }
        AdminOp::CreditShow { account } => {
            let id = id_or_return!(account_id(s, &account));
            let sum = sc::credit_summary(&s.conn, id, now).map_err(contract_err)?;
            serde_json::to_value(sum).unwrap_or_default()
        }
        AdminOp::CreditAdd {
            account,
            messages,
            price_fen,
            expires,
        } => {
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
            let lot_id = s.transaction(|tx| {
                let lot_id = sc::add_lot(tx, id, &lot).map_err(contract_err)?;
                let mut e = AuditEntry::new(AuditEvent::Other("credit_added".into()), now, actor);
                e.account_id = Some(id);
                e.parts = i64::try_from(messages).ok();
                e.outcome = format!("lot {lot_id}: {messages} messages, price {price_fen} fen");
                store::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))?;
                Ok::<_, StoreError>(lot_id)
            })?;
            let sum = sc::credit_summary(&s.conn, id, now).map_err(contract_err)?;
            json!({"lot": lot_id, "credit": sum})
        }
        AdminOp::ReviewList => {
            let items = sc::pending_reviews(&s.conn).map_err(contract_err)?;
            let accounts = sc::accounts(&s.conn).map_err(contract_err)?;
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
            json!({"reviews": out})
        }
        AdminOp::ReviewDecide { id, decision } => {
            let decision = match decision {
                ReviewVerdict::Approve => sc::ReviewDecision::Approve,
                ReviewVerdict::Reject => sc::ReviewDecision::Reject,
                ReviewVerdict::RejectAsViolation => sc::ReviewDecision::RejectAsViolation,
            };
            let reviewer = actor.to_string();
            let r = s.transaction(|tx| {
                let r = match sc::decide_review(tx, id, decision, &reviewer, now) {
                    Ok(r) => r,
                    Err(ContractError::ReviewNotPending(id)) => {
                        return Ok(Err(ApiError::Conflict(format!(
                            "message {id} is not waiting for review"
                        ))))
                    }
                    Err(e) => return Err(contract_err(e)),
                };
                match decision {
                    sc::ReviewDecision::Approve => {
                        store::release_from_review(tx, MessageId(id), now)?
                    }
                    sc::ReviewDecision::Reject => {
                        store::reject(tx, MessageId(id), "rejected by a reviewer", now)?
                    }
                    sc::ReviewDecision::RejectAsViolation => store::reject(
                        tx,
                        MessageId(id),
                        "rejected by a reviewer as prohibited content",
                        now,
                    )?,
                }
                Ok::<_, StoreError>(Ok(r))
            })?;
            match r {
                Ok(r) => serde_json::to_value(r).unwrap_or_default(),
                Err(e) => return Ok(Err(e)),
            }
        }
        AdminOp::BlacklistList => {
            let accounts = sc::accounts(&s.conn).map_err(contract_err)?;
            let mut numbers = sc::number_blacklist(&s.conn, NumberScope::Global)
                .map_err(contract_err)?
                .into_iter()
                .map(|b| {
                    json!({"account": null, "number": b.number, "reason": b.reason,
                           "added_by": b.added_by, "added_at": b.added_at})
                })
                .collect::<Vec<_>>();
            for a in &accounts {
                for b in sc::number_blacklist(&s.conn, NumberScope::Account(a.id))
                    .map_err(contract_err)?
                {
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
            json!({"accounts": blacklisted, "numbers": numbers})
        }
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
            return Ok(Err(ApiError::InvalidField(
                "reason: a blacklist change needs a reason".into(),
            )));
        }
        AdminOp::BlacklistAdd {
            account,
            number,
            reason,
        } => {
            if number.is_none() && account.is_none() {
                return Ok(Err(ApiError::InvalidField(
                    "name a number, an account, or both".into(),
                )));
            }
            let id = match &account {
                Some(a) => Some(id_or_return!(account_id(s, a))),
                None => None,
            };
            let changed = s.transaction(|tx| {
                match (&number, id) {
                    (Some(n), id) => {
                        let scope = id.map_or(NumberScope::Global, NumberScope::Account);
                        sc::add_number_blacklist(tx, scope, n, &reason, actor, now)
                    }
                    (None, Some(id)) => sc::blacklist_account(tx, id, &reason, actor, now),
                    (None, None) => Ok(false),
                }
                .map_err(contract_err)
            })?;
            json!({"changed": changed})
        }
        AdminOp::BlacklistRemove {
            account,
            number,
            reason,
        } => {
            let id = match &account {
                Some(a) => Some(id_or_return!(account_id(s, a))),
                None => None,
            };
            if number.is_none() && account.is_none() {
                return Ok(Err(ApiError::InvalidField(
                    "name a number, an account, or both".into(),
                )));
            }
            let changed = s.transaction(|tx| {
                match (&number, id) {
                    (Some(n), id) => {
                        let scope = id.map_or(NumberScope::Global, NumberScope::Account);
                        sc::remove_number_blacklist(tx, scope, n, &reason, actor, now)
                    }
                    (None, Some(id)) => sc::lift_account_blacklist(tx, id, &reason, actor, now),
                    (None, None) => Ok(false),
                }
                .map_err(contract_err)
            })?;
            json!({"changed": changed})
        }
    };
    Ok(Ok(v))
}

/// An inbound SMS: an unsubscribe word opts its sender out (audited in the same transaction).
pub(crate) fn inbound_opt_out(
    s: &mut Store,
    sender: &str,
    text: &str,
    cfg: &OptOutConfig,
    now: Timestamp,
) -> Result<Option<Vec<i64>>, StoreError> {
    if sender.is_empty() || !cfg.is_unsubscribe(text) {
        return Ok(None);
    }
    s.transaction(|tx| sc::apply_inbound_opt_out(tx, sender, text, cfg, now).map_err(contract_err))
}

/// The daily purge: audit records past retention, and sends older than the opt-out look-back.
pub(crate) fn purge(
    s: &mut Store,
    retention: &Retention,
    lookback_days: u32,
    now: Timestamp,
) -> Result<u64, StoreError> {
    s.transaction(|tx| {
        let out = store::audit::purge(tx, retention, now, "daemon")
            .map_err(|e| StoreError::Contract(e.to_string()))?;
        let keep = jiff::SignedDuration::from_hours(24 * i64::from(lookback_days.max(1)));
        let before = now.checked_sub(keep).unwrap_or(Timestamp::MIN);
        sc::prune_recent_sends(tx, before).map_err(contract_err)?;
        Ok(out.removed)
    })
}

/// The account a peer acts for, from the database (accounts added at run time).
pub(crate) fn account_for_peer(
    s: &Store,
    uid: u32,
    gids: &[u32],
) -> Result<Option<String>, StoreError> {
    Ok(sc::account_for_peer(&s.conn, uid, gids)
        .map_err(contract_err)?
        .map(|a| a.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_load_from_the_example_or_are_empty() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.toml");
        let rules = load_rules(Some(&example)).unwrap();
        assert!(rules.pattern_count() > 0);
        let none = load_rules(None).unwrap();
        assert_eq!(none.check("任何内容").action, policy::ContentAction::Allow);
        let err = load_rules(Some(Path::new("/nonexistent/rules.toml"))).unwrap_err();
        assert!(err.contains("/nonexistent/rules.toml"), "{err}");
    }

    // Vector "ucs2-submit-china" of /work/shared/vectors/pdu.json (AT+CMGS=21).
    const PDU: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";

    fn store_with_account(window: Option<&str>, now: Timestamp) -> Store {
        let mut s = Store::open_in_memory().unwrap();
        s.transaction(|tx| {
            let new = NewAccount {
                name: "acme".into(),
                settings: policy::AccountSettings {
                    send_window: window.map(|w| policy::SendWindow::parse(w).unwrap()),
                    ..Default::default()
                },
                ..NewAccount::default()
            };
            let id = sc::create_account(tx, &new, now).map_err(contract_err)?;
            let lot = NewLot {
                quantity: 10,
                price_fen: 0,
                purchased_at: now,
                expires_at: None,
            };
            sc::add_lot(tx, id, &lot).map_err(contract_err)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
        s
    }

    fn input(not_before: Option<Timestamp>, hours: i64, explicit: bool) -> SubmitInput {
        SubmitInput {
            account: "acme".into(),
            actor: "account:acme".into(),
            recipients: vec![crate::number::parse("13910199192").unwrap()],
            text: "hello".into(),
            priority: 0,
            not_before,
            validity_span: jiff::SignedDuration::from_hours(hours),
            validity_explicit: explicit,
            report: false,
            validity: None,
        }
    }

    fn submit_one(
        s: &mut Store,
        input: &SubmitInput,
        now: Timestamp,
    ) -> Result<MessageId, ApiError> {
        let rules = load_rules(None).unwrap();
        let encode = |_: &Number, _: &str| {
            Ok((
                "ucs2".to_string(),
                vec![NewPart {
                    pdu_hex: PDU.into(),
                    cmgs_length: 21,
                }],
            ))
        };
        submit(s, &rules, input, &encode, now)
            .unwrap()
            .map(|o| o.ids[0])
    }

    fn available(s: &Store, now: Timestamp) -> u64 {
        let a = sc::account_by_name(&s.conn, "acme").unwrap().unwrap();
        sc::credit_summary(&s.conn, a.id, now).unwrap().available
    }

    #[test]
    fn the_deadline_counts_from_the_earliest_send_time() {
        let now: Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let day = jiff::SignedDuration::from_hours(24);
        // not_before three days ahead, the default 24 h validity: it gets its 24 h from then.
        let mut s = store_with_account(None, now);
        let nb = now.checked_add(day * 3).unwrap();
        let id = submit_one(&mut s, &input(Some(nb), 24, false), now).unwrap();
        let v = s.message(id).unwrap().unwrap();
        assert_eq!(v.deadline, Some(nb.checked_add(day).unwrap()));
        assert_eq!(v.summary.state, store::MessageState::Scheduled);
        // Three days on, the message is still due, not expired.
        let then = nb.checked_add(jiff::SignedDuration::from_secs(1)).unwrap();
        assert!(s.expire(then).unwrap().is_empty());

        // A closed send window: the validity starts when the window opens (08:00 UTC).
        let mut s = store_with_account(Some("08:00-22:00 UTC"), now);
        let id = submit_one(&mut s, &input(None, 2, false), now).unwrap();
        let v = s.message(id).unwrap().unwrap();
        let opens: Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
        assert_eq!(v.not_before, Some(opens));
        assert_eq!(
            v.deadline,
            Some(
                opens
                    .checked_add(jiff::SignedDuration::from_hours(2))
                    .unwrap()
            )
        );
    }

    #[test]
    fn an_explicit_validity_ending_before_not_before_is_refused_and_reserves_nothing() {
        let now: Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let mut s = store_with_account(None, now);
        let nb = now
            .checked_add(jiff::SignedDuration::from_hours(72))
            .unwrap();
        let err = submit_one(&mut s, &input(Some(nb), 24, true), now).unwrap_err();
        assert!(
            matches!(&err, ApiError::InvalidField(m) if m.starts_with("validity:")),
            "{err:?}"
        );
        assert_eq!(available(&s, now), 10, "nothing reserved");
        assert!(s
            .list_messages(&store::MessageQuery::default())
            .unwrap()
            .is_empty());
        // A validity that outlasts the wait is accepted, counted from not_before.
        let id = submit_one(&mut s, &input(Some(nb), 96, true), now).unwrap();
        let v = s.message(id).unwrap().unwrap();
        assert_eq!(
            v.deadline,
            Some(
                nb.checked_add(jiff::SignedDuration::from_hours(96))
                    .unwrap()
            )
        );
        assert_eq!(available(&s, now), 9);
    }

    #[test]
    fn settings_refuse_short_retention() {
        let mut config = Config::default();
        config.audit.retention_days = 30;
        assert!(ContractSettings::from_config(&config).is_err());
        config.audit.retention_days = 90;
        assert!(ContractSettings::from_config(&config).is_ok());
    }
}
