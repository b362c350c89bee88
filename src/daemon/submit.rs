//! Submission in the running daemon: a send request decided by the contract and, when accepted,
//! inserted with its credit reservation and audit entries in one store call. Requests that
//! arrive together share one transaction and one fsync ([`AcceptWriter`], group commit), each in
//! its own SAVEPOINT.
//!
//! What must always hold: a request is decided by [`crate::policy::decide`] on facts read in the
//! transaction that applies it, after the requests before it in that transaction wrote theirs
//! (the store is behind one mutex, so two requests cannot spend the same credit); no request is
//! answered before the transaction holding it committed; a refusal that must leave a trace (the violation's charge and blacklisting,
//! the audit of a rejected request) is committed before the error is returned; a message's
//! deadline is its validity counted from the earliest time it may be sent (not from now), and a
//! request whose explicit validity ends before its own `not_before` is refused before anything
//! is reserved.

use jiff::Timestamp;

use crate::api::types::Refusal;
use crate::api::ApiError;
use crate::audit::{AuditEntry, AuditEvent};
use crate::number::Number;
use crate::policy::{
    self, Acceptance, Decision, RecipientDecision, Refusal as PolicyRefusal, RuleSet,
};
use crate::store::contract::{self as sc};
use crate::store::{self, InitialState, MessageId, NewMessage, NewPart, StoreError};
use rusqlite::Transaction;
use tokio::sync::{mpsc, oneshot};

/// The contract's settings that SIGHUP reloads.
use super::contract::contract_err;

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
    /// The modem bank or a gateway, with the sender kind (issue 12).
    pub channel: store::MessageChannel,
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

/// One request's acceptance, run inside the group commit's transaction.
pub(crate) type AcceptJob =
    Box<dyn FnOnce(&Transaction<'_>) -> Result<Result<SubmitOutcome, ApiError>, StoreError> + Send>;

/// Group commit of acceptance: requests that arrive while a commit is in progress are decided
/// and written together in the next transaction, each in its own SAVEPOINT
/// ([`store::Store::each_in_one_commit`]), so many requests share one fsync. Each caller hears back
/// only after the transaction holding its request committed; if that commit fails, every
/// request of the batch gets the error and none of them was written.
#[derive(Clone)]
pub(crate) struct AcceptWriter(mpsc::UnboundedSender<(AcceptJob, oneshot::Sender<Accepted>)>);

type Accepted = Result<SubmitOutcome, ApiError>;

impl AcceptWriter {
    /// How many requests one transaction takes at most (a 10,000-recipient request is one).
    const MAX_BATCH: usize = 64;

    /// Starts the writer task; it ends when every handle is gone.
    pub(crate) fn start(db: super::Db) -> AcceptWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<(AcceptJob, oneshot::Sender<Accepted>)>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first.0];
                let mut replies = vec![first.1];
                while jobs.len() < Self::MAX_BATCH {
                    match rx.try_recv() {
                        Ok((job, reply)) => {
                            jobs.push(job);
                            replies.push(reply);
                        }
                        Err(_) => break,
                    }
                }
                match db.call(move |s| s.each_in_one_commit(jobs)).await {
                    Ok(results) => {
                        for (reply, r) in replies.into_iter().zip(results) {
                            let _ = reply.send(r.map_err(super::backend::internal).and_then(|r| r));
                        }
                    }
                    Err(e) => {
                        // The whole transaction is lost: nothing of the batch was written.
                        let full = e.is_storage_full();
                        let text = e.to_string();
                        for reply in replies {
                            let e = if full {
                                ApiError::InsufficientStorage(format!(
                                    "the gateway's disk is full; nothing was accepted, try \
                                     again later ({text})"
                                ))
                            } else {
                                ApiError::Internal(format!("store: {text}"))
                            };
                            let _ = reply.send(Err(e));
                        }
                    }
                }
            }
        });
        AcceptWriter(tx)
    }

    /// A writer with no task behind it (unit tests without a runtime): every submit is
    /// refused as if the daemon were stopping.
    #[cfg(test)]
    pub(crate) fn unstarted() -> AcceptWriter {
        AcceptWriter(mpsc::unbounded_channel().0)
    }

    /// Decides and writes one request in the next group commit; returns once it is durable.
    pub(crate) async fn submit(&self, job: AcceptJob) -> Accepted {
        let stopped = || ApiError::ShuttingDown;
        let (tx, rx) = oneshot::channel();
        self.0.send((job, tx)).map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
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
    tx: &Transaction<'_>,
    rules: &RuleSet,
    input: &SubmitInput,
    encode: Encoder<'_>,
    now: Timestamp,
) -> Result<Result<SubmitOutcome, ApiError>, StoreError> {
    if let Some(e) = input.contradiction(now) {
        return Ok(Err(e));
    }
    let Some(account) = sc::account_by_name(tx, &input.account).map_err(contract_err)? else {
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
