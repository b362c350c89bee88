//! Acceptance of a send request, as one transaction body: the request decided by
//! [`crate::policy::decide`] on facts read in the transaction that applies it, then, when
//! accepted, its messages inserted with their channel, credit reservations, holds for review and
//! audit entries; when refused, what the refusal must record (the audit of a rejected request;
//! for blocked content the charge and the blacklisting). The daemon's group commit
//! (`daemon::submit::AcceptWriter`) runs [`submit`] for each request in its own SAVEPOINT of one
//! transaction ([`super::Store::each_in_one_commit`]) and maps the answer to the API's errors.
//!
//! What must always hold: a request is decided after the requests before it in the same
//! transaction wrote theirs (the store is behind one mutex, so two requests cannot spend the
//! same credit); a refusal that must leave a trace returns `Ok(Err(_))` so its writes commit; a
//! message's deadline is its validity counted from the earliest time it may be sent (not from
//! now), and a request whose explicit validity ends before its own `not_before` is refused
//! before anything is reserved. The refusals here are the store's own terms ([`Refusal`],
//! [`RecipientRefusal`]); their texts are the API's, which maps them one to one.

use jiff::Timestamp;
use rusqlite::Transaction;

use crate::audit::{AuditEntry, AuditEvent};
use crate::number::Number;
use crate::policy::{
    self, Acceptance, Decision, RecipientDecision, Refusal as PolicyRefusal, RuleSet,
};
use crate::store::contract::{self as sc, ContractError};
use crate::store::{
    self, InitialState, MessageChannel, MessageId, NewMessage, NewPart, StoreError,
};

fn contract_err(e: ContractError) -> StoreError {
    StoreError::Contract(e.to_string())
}

/// Why a whole request was refused; each case is one of the API's errors (same text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A field of the request is wrong (the text does not encode, an empty text, no recipient,
    /// a validity that ends before `not_before`); the text names the field first.
    #[error("{0}")]
    InvalidField(String),
    /// The account does not exist.
    #[error("{0}")]
    Forbidden(String),
    /// Refused by the contract's policy; `code` names the rule (e.g. `content_prohibited`).
    #[error("{message}")]
    Policy { code: String, message: String },
    /// The account has not enough credit for the request.
    #[error("{0}")]
    InsufficientCredit(String),
}

/// One recipient refused while the others go ahead (opted out, blacklisted): not sent, not
/// charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRefusal {
    /// The number as the request gave it, canonical.
    pub to: String,
    /// The machine-readable reason, e.g. `opted_out`.
    pub code: String,
    pub message: String,
}

/// What a send request needs besides the account and its recipients.
pub struct SubmitInput {
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
    /// The modem bank or a gateway, with the sender kind (issue 12).
    pub channel: MessageChannel,
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
    fn contradiction(&self, now: Timestamp) -> Option<Refusal> {
        let nb = self.not_before.filter(|_| self.validity_explicit)?;
        let ends = now.checked_add(self.validity_span).ok()?;
        (ends <= nb).then(|| {
            Refusal::InvalidField(format!(
                "validity: {:#} from now ends at {ends}, before not_before {nb}; nothing was \
                 reserved (give a longer validity or an earlier not_before)",
                self.validity_span
            ))
        })
    }
}

/// What the store call decided.
pub struct SubmitOutcome {
    pub ids: Vec<MessageId>,
    pub parts: u32,
    pub refused: Vec<RecipientRefusal>,
    pub held: bool,
}

/// What a text costs an account per recipient before it is sent ([`quote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The text as [`submit`] sends it ([`policy::accept::text_as_sent`]).
    pub text_as_sent: String,
    /// The codec's encoding name ("gsm7" or "ucs2").
    pub encoding: String,
    /// Parts per recipient: what [`submit`] reserves and charges for each.
    pub parts: u32,
    /// The account requires a 【signature】 and the text has none: [`submit`] would refuse it.
    pub signature_missing: bool,
}

/// Prices `text` for `account` as [`submit`] bills it: the same text as sent and the same
/// `encode` (the daemon passes the codec it gives [`submit`]) for `recipient` (the parts of a
/// text do not depend on the recipient's number). `Err` names the field, like [`submit`].
pub fn quote(
    account: &policy::Account,
    text: &str,
    recipient: &Number,
    encode: Encoder<'_>,
) -> Result<Quote, Refusal> {
    let text_as_sent = policy::accept::text_as_sent(&account.settings, text);
    let (encoding, parts) = encode(recipient, &text_as_sent).map_err(Refusal::InvalidField)?;
    Ok(Quote {
        text_as_sent,
        encoding,
        parts: parts.len() as u32,
        signature_missing: account.settings.signature_required
            && !policy::accept::has_signature(text),
    })
}

/// Encodes `text` for one recipient (the daemon's codec): the encoding's name and the parts,
/// or why the text does not encode (the field's name first, e.g. `text: ...`).
pub type Encoder<'a> = &'a dyn Fn(&Number, &str) -> Result<(String, Vec<NewPart>), String>;

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

fn recipient_refusal(number: &str, d: RecipientDecision) -> Option<RecipientRefusal> {
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
    Some(RecipientRefusal {
        to: number.to_string(),
        code: code.into(),
        message: message.into(),
    })
}

/// Decides and applies a send request inside `tx`. `Ok(Err(Refusal))` for a refusal of the
/// whole request (what the refusal itself must record is written, to be committed); `Err` for a
/// store failure, which rolls the request back.
pub fn submit(
    tx: &Transaction<'_>,
    rules: &RuleSet,
    input: &SubmitInput,
    encode: Encoder<'_>,
    now: Timestamp,
) -> Result<Result<SubmitOutcome, Refusal>, StoreError> {
    if let Some(e) = input.contradiction(now) {
        return Ok(Err(e));
    }
    let Some(account) = sc::account_by_name(tx, &input.account).map_err(contract_err)? else {
        return Ok(Err(Refusal::Forbidden(format!(
            "account {:?} does not exist (see `smsgate account add`)",
            input.account
        ))));
    };
    let numbers: Vec<String> = input
        .recipients
        .iter()
        .map(|n| crate::number::key(n.canonical()))
        .collect();
    let mut facts = sc::acceptance_facts(tx, account.id, &numbers, now).map_err(contract_err)?;
    let unmetered = sc::is_unmetered(tx, account.id).map_err(contract_err)?;
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
            return refuse(tx, &account, input, &numbers, refusal, encode, now);
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
            Err(e) => return Ok(Err(Refusal::InvalidField(e))),
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
    let ids = {
        let ids = store::insert_messages(tx, &batch, now)?;
        let via = match (&input.channel.gateway, &input.channel.src_id) {
            (Some(g), Some(src)) => format!("; sender 106 via gateway {g}, Src_Id {src}"),
            _ => format!("; sender {}", input.channel.sender_kind),
        };
        for (id, m) in ids.iter().zip(&batch) {
            store::set_message_channel(tx, *id, &input.channel)?;
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
                &format!("{outcome}; {} parts reserved{via}", m.parts.len()),
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
        ids
    };
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
    tx: &Transaction<'_>,
    account: &policy::Account,
    input: &SubmitInput,
    numbers: &[String],
    refusal: PolicyRefusal,
    encode: Encoder<'_>,
    now: Timestamp,
) -> Result<Result<SubmitOutcome, Refusal>, StoreError> {
    // Counted as `decide` counts: the text as it would have been sent (with the suffix).
    let final_text = policy::accept::text_as_sent(&account.settings, &input.text);
    let parts = input
        .recipients
        .first()
        .and_then(|n| encode(n, &final_text).ok())
        .map(|(_, p)| p.len() as u32)
        .unwrap_or(1);
    let (why, err) = match &refusal {
        PolicyRefusal::EmptyText => (
            "refused: empty text".to_string(),
            Refusal::InvalidField("text: must not be empty".into()),
        ),
        PolicyRefusal::NoRecipients => (
            "refused: no recipients".to_string(),
            Refusal::InvalidField("to: at least one recipient is required".into()),
        ),
        PolicyRefusal::AccountBlacklisted { reason } => (
            format!("refused: account blacklisted ({reason})"),
            Refusal::Policy {
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
            Refusal::Policy {
                code: "signature_required".into(),
                message: format!(
                    "account {} must start every text with its 【signature】",
                    account.name
                ),
            },
        ),
        PolicyRefusal::AllRecipientsRefused { recipients } => {
            let refused: Vec<RecipientRefusal> = recipients
                .iter()
                .zip(&input.recipients)
                .filter_map(|(o, n)| recipient_refusal(n.canonical(), o.decision))
                .collect();
            let codes: Vec<(String, String)> = refused
                .iter()
                .map(|r| (r.to.clone(), r.code.clone()))
                .collect();
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
            return Ok(Ok(SubmitOutcome {
                ids: Vec::new(),
                parts,
                refused,
                held: false,
            }));
        }
        PolicyRefusal::BlockedContent { category, .. } => {
            let category = category.clone();
            let charged = blocked(tx, account, input, numbers, &category, parts, now)?;
            return Ok(Err(Refusal::Policy {
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
            Refusal::InsufficientCredit(format!(
                "insufficient credit: {needed} parts needed, {available} available, short by \
                 {shortfall}"
            )),
        ),
    };
    audit_rejected(tx, account.id, input, numbers, parts, &why, now)?;
    Ok(Err(err))
}

/// Blocked content: the messages are recorded as `rejected`, charged as committed (as far as
/// credit goes), the account blacklisted; all audited, in one transaction. Returns the parts
/// charged.
fn blocked(
    tx: &Transaction<'_>,
    account: &policy::Account,
    input: &SubmitInput,
    numbers: &[String],
    category: &str,
    parts: u32,
    now: Timestamp,
) -> Result<u64, StoreError> {
    // Only recipients that would have been sent to are charged (not opted-out/blacklisted).
    let facts = sc::acceptance_facts(tx, account.id, numbers, now).map_err(contract_err)?;
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
    {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::content::RulesFile;
    use crate::store::contract::{NewAccount, NewLot};
    use crate::store::Store;

    // Vector "ucs2-submit-china" of /work/shared/vectors/pdu.json (AT+CMGS=21).
    const PDU: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";

    fn store_with_account(window: Option<&str>, now: Timestamp) -> Store {
        let mut s = Store::open_in_memory().unwrap();
        let new = NewAccount {
            name: "acme".into(),
            settings: policy::AccountSettings {
                send_window: window.map(|w| policy::SendWindow::parse(w).unwrap()),
                ..Default::default()
            },
            ..NewAccount::default()
        };
        let id = s.add_account(&new, "test", now).unwrap();
        let lot = NewLot {
            quantity: 10,
            price_fen: 0,
            purchased_at: now,
            expires_at: None,
        };
        s.add_credit(id, &lot, "test", now).unwrap();
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
            channel: MessageChannel {
                sender_kind: "mobile".into(),
                gateway: None,
                src_id: None,
                fallback: false,
            },
        }
    }

    fn submit_one(
        s: &mut Store,
        input: &SubmitInput,
        now: Timestamp,
    ) -> Result<MessageId, Refusal> {
        let rules = RuleSet::compile(RulesFile::default()).unwrap();
        let encode = |_: &Number, _: &str| -> Result<_, String> {
            Ok((
                "ucs2".to_string(),
                vec![NewPart {
                    pdu_hex: PDU.into(),
                    cmgs_length: 21,
                }],
            ))
        };
        s.transaction(|tx| submit(tx, &rules, input, &encode, now))
            .unwrap()
            .map(|o| o.ids[0])
    }

    fn available(s: &Store, now: Timestamp) -> u64 {
        let a = s.account_by_name("acme").unwrap().unwrap();
        s.credit_summary(a.id, now).unwrap().available
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
            matches!(&err, Refusal::InvalidField(m) if m.starts_with("validity:")),
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

    /// A quote prices the text as `submit` sends and reserves it: the suffix is in both, and
    /// the parts are the same encoder's (here one part per 5 characters, so the suffix shows).
    #[test]
    fn a_quote_is_what_submit_reserves() {
        let now: Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let mut s = store_with_account(None, now);
        let mut a = s.account_by_name("acme").unwrap().unwrap();
        a.settings.unsubscribe_suffix = Some("回T退订".into());
        a.settings.signature_required = true;
        s.transaction(|tx| sc::update_settings(tx, a.id, &a.settings).map_err(contract_err))
            .unwrap();
        let encode = |_: &Number, text: &str| -> Result<_, String> {
            let n = text.chars().count().div_ceil(5);
            let part = NewPart {
                pdu_hex: PDU.into(),
                cmgs_length: 21,
            };
            Ok(("ucs2".to_string(), vec![part; n]))
        };
        let recipient = crate::number::parse("13910199192").unwrap();
        let q = quote(&a, "hello", &recipient, &encode).unwrap();
        assert_eq!(q.text_as_sent, "hello回T退订");
        assert_eq!(q.parts, 2, "9 characters with the suffix");
        assert!(q.signature_missing);
        let signed = quote(&a, "【acme】hi", &recipient, &encode).unwrap();
        assert!(!signed.signature_missing);
        let mut req = input(None, 24, false);
        req.text = "【acme】hello".into();
        let q = quote(&a, &req.text, &recipient, &encode).unwrap();
        let rules = RuleSet::compile(RulesFile::default()).unwrap();
        let out = s
            .transaction(|tx| submit(tx, &rules, &req, &encode, now))
            .unwrap()
            .unwrap();
        assert_eq!(out.parts, q.parts);
        assert_eq!(available(&s, now), 10 - u64::from(q.parts));
        let v = s.message(out.ids[0]).unwrap().unwrap();
        assert_eq!(v.text, q.text_as_sent);
        let bad = |_: &Number, _: &str| -> Result<(String, Vec<NewPart>), String> {
            Err("text: cannot encode".into())
        };
        assert!(matches!(
            quote(&a, "x", &recipient, &bad),
            Err(Refusal::InvalidField(m)) if m.starts_with("text:")
        ));
    }
}
