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

use super::state::{MessageState, PartState};
use super::{ms, ts, ts_opt, MessageId, PartId, SimId, Store, StoreError};
use crate::number::{self, Carrier};
use crate::scheduler::{DuePart, FailureFacts, FailureKind, PartFate, RetryPolicy};

/// How long a sent part can still be matched by a status report (TP-MR wraps at 256).
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
    /// The full PDU as sent to the modem (SMSC octets included), upper- or lower-case hex.
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

// ---------------------------------------------------------------------------------------------
// The one place where states change.

fn message_state(conn: &Connection, id: MessageId) -> Result<MessageState, StoreError> {
    let s: Option<String> = conn
        .query_row("SELECT state FROM messages WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .optional()?;
    let s = s.ok_or(StoreError::NoSuchMessage(id.0))?;
    Ok(MessageState::parse(&s)?)
}

fn part_state(conn: &Connection, id: PartId) -> Result<PartState, StoreError> {
    let s: Option<String> = conn
        .query_row("SELECT state FROM parts WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .optional()?;
    let s = s.ok_or(StoreError::NoSuchPart(id.0))?;
    Ok(PartState::parse(&s)?)
}

/// Changes a message's state (checked and logged) and stamps the matching time column.
pub(crate) fn set_message_state(
    conn: &Connection,
    id: MessageId,
    to: MessageState,
    now: Timestamp,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let from = message_state(conn, id)?;
    if from == to {
        if let Some(e) = error {
            conn.execute(
                "UPDATE messages SET last_error = ?2 WHERE id = ?1",
                params![id.0, e],
            )?;
        }
        return Ok(());
    }
    if !from.can_become(to) {
        return Err(StoreError::BadMessageTransition { id: id.0, from, to });
    }
    let now_ms = ms(now);
    conn.execute(
        "UPDATE messages SET state = ?2,
             sent_at = CASE WHEN ?2 = 'sent' AND sent_at IS NULL THEN ?3 ELSE sent_at END,
             delivered_at = CASE WHEN ?2 = 'delivered' THEN ?3 ELSE delivered_at END,
             finished_at = CASE WHEN ?4 THEN ?3 ELSE NULL END,
             last_error = COALESCE(?5, last_error)
         WHERE id = ?1",
        params![id.0, to.as_str(), now_ms, to.is_final(), error],
    )?;
    tracing::debug!(message = id.0, %from, %to, "message state");
    Ok(())
}

/// Changes a part's state (checked and logged). Other columns are set by the caller in the
/// same transaction.
pub(crate) fn set_part_state(
    conn: &Transaction<'_>,
    id: PartId,
    to: PartState,
    now: Timestamp,
) -> Result<PartState, StoreError> {
    let from = part_state(conn, id)?;
    if from == to {
        return Ok(from);
    }
    if !from.can_become(to) {
        return Err(StoreError::BadPartTransition { id: id.0, from, to });
    }
    conn.execute(
        "UPDATE parts SET state = ?2 WHERE id = ?1",
        params![id.0, to.as_str()],
    )?;
    tracing::debug!(part = id.0, %from, %to, "part state");
    // Credit and audit follow the part in the same transaction (see store::hooks).
    super::hooks::part_changed(conn, id, from, to, now)?;
    Ok(from)
}

/// The message state its parts imply, or `None` when all parts are still queued (the message
/// keeps `queued` / `scheduled` / `held_for_review`).
pub(crate) fn derive(parts: &[PartState]) -> Option<MessageState> {
    use PartState as P;
    let any = |s: P| parts.contains(&s);
    let in_flight = any(P::Sending) || any(P::Queued);
    if any(P::Failed) {
        return Some(MessageState::Failed);
    }
    if any(P::Expired) && !in_flight {
        return Some(MessageState::Expired);
    }
    if any(P::Cancelled) && !any(P::Sending) {
        return Some(MessageState::Cancelled);
    }
    if !parts.is_empty() && parts.iter().all(|p| *p == P::Delivered) {
        return Some(MessageState::Delivered);
    }
    if !parts.is_empty() && parts.iter().all(|p| p.is_sent()) {
        return Some(MessageState::Sent);
    }
    if parts
        .iter()
        .any(|p| matches!(p, P::Sending | P::Sent | P::Delivered | P::Unknown))
    {
        return Some(MessageState::Sending);
    }
    if any(P::Expired) || any(P::Cancelled) {
        return None;
    }
    Some(MessageState::Queued)
}

fn part_states(conn: &Connection, id: MessageId) -> Result<Vec<PartState>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT state FROM parts WHERE message_id = ?1")?;
    let names = stmt
        .query_map([id.0], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    names
        .iter()
        .map(|n| PartState::parse(n).map_err(StoreError::from))
        .collect()
}

/// [`recompute`] for other store modules.
pub(super) fn recompute_message(
    conn: &Connection,
    id: MessageId,
    now: Timestamp,
) -> Result<MessageState, StoreError> {
    recompute(conn, id, now, None)
}

/// Brings a message's state in line with its parts. A transition the table forbids (a part
/// finishing after its message was cancelled) leaves the message as it is.
fn recompute(
    conn: &Connection,
    id: MessageId,
    now: Timestamp,
    error: Option<&str>,
) -> Result<MessageState, StoreError> {
    let current = message_state(conn, id)?;
    let Some(mut to) = derive(&part_states(conn, id)?) else {
        return Ok(current);
    };
    if to == MessageState::Queued
        && matches!(
            current,
            MessageState::Scheduled | MessageState::HeldForReview
        )
    {
        to = current;
    }
    if current.can_become(to) {
        set_message_state(conn, id, to, now, error)?;
        Ok(to)
    } else {
        Ok(current)
    }
}

// ---------------------------------------------------------------------------------------------
// Acceptance.

fn validate(m: &NewMessage, index: usize) -> Result<(), StoreError> {
    let bad = |what: String| Err(StoreError::Invalid(format!("message {index}: {what}")));
    if m.recipient.trim().is_empty() {
        return bad("recipient is empty".into());
    }
    if m.parts.is_empty() || m.parts.len() > 255 {
        return bad(format!("{} parts (1-255 allowed)", m.parts.len()));
    }
    for (i, p) in m.parts.iter().enumerate() {
        let bytes = match hex::decode(&p.pdu_hex) {
            Ok(b) => b,
            Err(e) => return bad(format!("part {}: PDU is not hex: {e}", i + 1)),
        };
        if p.cmgs_length == 0 || p.cmgs_length as usize > bytes.len() {
            return bad(format!(
                "part {}: CMGS length {} outside 1..={}",
                i + 1,
                p.cmgs_length,
                bytes.len()
            ));
        }
    }
    Ok(())
}

/// Inserts messages and their parts inside the caller's transaction; returns their ids in
/// order. Nothing is inserted when any message is invalid (the caller's rollback undoes rows
/// written before the error).
pub fn insert_messages(
    tx: &Transaction<'_>,
    batch: &[NewMessage],
    now: Timestamp,
) -> Result<Vec<MessageId>, StoreError> {
    for (i, m) in batch.iter().enumerate() {
        validate(m, i)?;
    }
    let mut ids = Vec::with_capacity(batch.len());
    let mut insert_message = tx.prepare_cached(
        "INSERT INTO messages (account, recipient, recipient_carrier, text, encoding, part_count,
             state, priority, not_before, deadline, report_requested, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut insert_part = tx.prepare_cached(
        "INSERT INTO parts (message_id, seq, state, pdu_hex, cmgs_length)
         VALUES (?1, ?2, 'queued', ?3, ?4)",
    )?;
    for m in batch {
        let state = match m.initial {
            InitialState::HeldForReview => MessageState::HeldForReview,
            InitialState::Ready if m.not_before.is_some_and(|t| t > now) => MessageState::Scheduled,
            InitialState::Ready => MessageState::Queued,
        };
        insert_message.execute(params![
            m.account,
            m.recipient,
            m.recipient_carrier.as_str(),
            m.text,
            m.encoding,
            m.parts.len() as i64,
            state.as_str(),
            m.priority,
            m.not_before.map(ms),
            m.deadline.map(ms),
            m.report_requested,
            ms(now),
        ])?;
        let id = MessageId(tx.last_insert_rowid());
        for (i, p) in m.parts.iter().enumerate() {
            insert_part.execute(params![
                id.0,
                i as i64 + 1,
                p.pdu_hex.to_ascii_uppercase(),
                p.cmgs_length
            ])?;
        }
        tracing::debug!(
            message = id.0,
            recipient = %number::mask(&m.recipient),
            parts = m.parts.len(),
            %state,
            "accepted"
        );
        ids.push(id);
    }
    Ok(ids)
}

/// Review approved: the held message becomes due (contract layer, in its transaction).
pub fn release_from_review(
    tx: &Transaction<'_>,
    id: MessageId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let from = message_state(tx, id)?;
    if from != MessageState::HeldForReview {
        return Err(StoreError::Invalid(format!(
            "message {} is {from}, not held for review",
            id.0
        )));
    }
    let not_before: Option<i64> = tx.query_row(
        "SELECT not_before FROM messages WHERE id = ?1",
        [id.0],
        |r| r.get(0),
    )?;
    let to = if not_before.is_some_and(|t| t > ms(now)) {
        MessageState::Scheduled
    } else {
        MessageState::Queued
    };
    set_message_state(tx, id, to, now, None)
}

/// Policy refused the message: its parts are cancelled, the message `rejected`.
pub fn reject(
    tx: &Transaction<'_>,
    id: MessageId,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    for part in part_ids_in(tx, id, &[PartState::Queued])? {
        set_part_state(tx, part, PartState::Cancelled, now)?;
    }
    set_message_state(tx, id, MessageState::Rejected, now, Some(reason))
}

/// The body of [`Store::cancel`] and [`Store::cancel_by_admin`] (`admin`: the actor).
fn cancel_in(
    tx: &Transaction<'_>,
    id: MessageId,
    admin: Option<&str>,
    now: Timestamp,
) -> Result<CancelOutcome, StoreError> {
    let state = message_state(tx, id)?;
    if state.is_final() {
        return Err(StoreError::Invalid(format!(
            "message {} is already {state}",
            id.0
        )));
    }
    if state == MessageState::HeldForReview {
        let Some(actor) = admin else {
            return Err(StoreError::Invalid(format!(
                "message {} is held for review: it cannot be cancelled while it waits; a \
                 reviewer approves or rejects it (an administrator may cancel it, which closes \
                 the review)",
                id.0
            )));
        };
        super::contract::close_review(tx, id.0, actor, now)
            .map_err(|e| StoreError::Contract(e.to_string()))?;
    }
    let queued = part_ids_in(tx, id, &[PartState::Queued])?;
    for p in &queued {
        set_part_state(tx, *p, PartState::Cancelled, now)?;
    }
    let total = part_states(tx, id)?.len();
    if !queued.is_empty() || state == MessageState::HeldForReview {
        set_message_state(tx, id, MessageState::Cancelled, now, None)?;
    }
    Ok(CancelOutcome {
        cancelled_parts: queued.len(),
        already_sent_parts: total - queued.len(),
    })
}

fn part_ids_in(
    conn: &Connection,
    id: MessageId,
    states: &[PartState],
) -> Result<Vec<PartId>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, state FROM parts WHERE message_id = ?1 ORDER BY seq")?;
    let rows = stmt
        .query_map([id.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (pid, s) in rows {
        if states.contains(&PartState::parse(&s)?) {
            out.push(PartId(pid));
        }
    }
    Ok(out)
}

fn parse_avoid(s: &str) -> Vec<SimId> {
    s.split(',')
        .filter_map(|x| x.trim().parse::<i64>().ok())
        .map(SimId)
        .collect()
}

/// Whether a report's recipient names the stored recipient (reports may use another format):
/// equal [`number::key`]s. No suffix guessing: an empty or alphanumeric report recipient keys
/// to itself, which equals no stored (parsed) recipient.
pub(super) fn same_recipient(a: &str, b: &str) -> bool {
    number::key(a) == number::key(b)
}

/// [`Store::retry`] inside the caller's transaction.
fn retry_in(tx: &Transaction<'_>, id: MessageId, now: Timestamp) -> Result<usize, StoreError> {
    let state = message_state(tx, id)?;
    if matches!(
        state,
        MessageState::Cancelled | MessageState::Expired | MessageState::Rejected
    ) {
        return Err(StoreError::Invalid(format!(
            "message {} is {state}; it cannot be retried",
            id.0
        )));
    }
    let deadline: Option<i64> =
        tx.query_row("SELECT deadline FROM messages WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })?;
    if deadline.is_some_and(|d| d <= ms(now)) {
        return Err(StoreError::Invalid(format!(
            "message {}: its deadline has passed; it cannot be retried",
            id.0
        )));
    }
    let parts = part_ids_in(tx, id, &[PartState::Unknown, PartState::Failed])?;
    for p in &parts {
        set_part_state(tx, *p, PartState::Queued, now)?;
        tx.execute(
            // A fresh budget of attempts: the operator decided to try again.
            "UPDATE parts SET next_attempt_at = NULL, sim_id = NULL, report_status = NULL,
                 attempts = 0, avoid_sims = ''
             WHERE id = ?1",
            [p.0],
        )?;
    }
    if !parts.is_empty() {
        recompute(tx, id, now, None)?;
        tracing::info!(message = id.0, parts = parts.len(), "operator retry");
    }
    Ok(parts.len())
}

/// [`Store::settle_unknown`] inside the caller's transaction. Settled as not sent, the part
/// fails like a permanent failure: with it the message's parts not sent yet (they could only
/// follow it), so none of them stays queued with its credit reserved in a failed message.
fn settle_in(
    tx: &Transaction<'_>,
    part: PartId,
    verdict: Settlement,
    now: Timestamp,
) -> Result<(), StoreError> {
    let from = part_state(tx, part)?;
    if from != PartState::Unknown {
        return Err(StoreError::Invalid(format!(
            "part {} is {from}, not unknown; only a part whose fate is unknown can be settled",
            part.0
        )));
    }
    let (message, seq): (i64, u32) = tx.query_row(
        "SELECT message_id, seq FROM parts WHERE id = ?1",
        [part.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match verdict {
        Settlement::Sent => {
            set_part_state(tx, part, PartState::Sent, now)?;
            tx.execute(
                "UPDATE parts SET sent_at = COALESCE(claimed_at, ?2),
                     error = 'settled as sent by operator'
                 WHERE id = ?1",
                params![part.0, ms(now)],
            )?;
        }
        Settlement::NotSent => {
            tx.execute(
                "UPDATE parts SET error = 'settled as not sent by operator' WHERE id = ?1",
                [part.0],
            )?;
            set_part_state(tx, part, PartState::Failed, now)?;
            let sibling_error = format!("not sent: part {seq} settled as not sent");
            for p in part_ids_in(tx, MessageId(message), &[PartState::Queued])? {
                tx.execute(
                    "UPDATE parts SET error = ?2 WHERE id = ?1",
                    params![p.0, sibling_error],
                )?;
                set_part_state(tx, p, PartState::Failed, now)?;
            }
        }
    }
    let why = (verdict == Settlement::NotSent).then_some("settled as not sent by operator");
    recompute(tx, MessageId(message), now, why)?;
    Ok(())
}

/// Appends the audit record of an operator's action on message `id` (retry, settle).
fn audit_operator(
    tx: &Transaction<'_>,
    id: MessageId,
    event: &str,
    actor: &str,
    outcome: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (account_id, recipient, parts): (Option<i64>, String, i64) = tx.query_row(
        "SELECT (SELECT a.id FROM accounts a WHERE a.name = m.account), m.recipient,
                m.part_count
         FROM messages m WHERE m.id = ?1",
        [id.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut e = crate::audit::AuditEntry::new(
        crate::audit::AuditEvent::Other(event.to_string()),
        now,
        actor,
    );
    e.account_id = account_id;
    e.message_id = Some(id.0);
    // Canonical, as every audit record keeps numbers (an export by number finds it).
    e.recipient = Some(crate::number::key(&recipient));
    e.parts = Some(parts);
    e.outcome = outcome.to_string();
    super::audit::append(tx, e).map_err(|e| StoreError::Contract(e.to_string()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Store operations: each one transaction.

impl Store {
    /// Accepts a batch of messages in one transaction; all or nothing.
    pub fn accept(
        &mut self,
        batch: &[NewMessage],
        now: Timestamp,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.transaction(|tx| insert_messages(tx, batch, now))
    }

    /// Marks a part `sending` on `sim` and commits, BEFORE the driver writes AT+CMGS. Refuses
    /// a part that is not queued, whose message is not sendable or past its deadline, whose
    /// previous part is not sent, or whose earlier parts went to another SIM.
    pub fn claim(
        &mut self,
        part: PartId,
        sim: SimId,
        now: Timestamp,
    ) -> Result<ClaimedPart, StoreError> {
        self.transaction(|tx| claim_in(tx, part, sim, now))
    }

    /// The network accepted the part (+CMGS: mr).
    pub fn mark_sent(&mut self, part: PartId, tp_mr: u8, now: Timestamp) -> Result<(), StoreError> {
        self.transaction(|tx| mark_sent_in(tx, part, tp_mr, now))
    }

    /// A send failed. Transient failures (modem or SIM) put the part back in the queue with
    /// back-off, remembering the SIM to avoid, and count against the SIM (resting it when the
    /// policy says so); permanent failures, or too many attempts, fail the part, its message and
    /// the message's unsent parts.
    pub fn mark_failed(
        &mut self,
        part: PartId,
        error: &str,
        kind: FailureKind,
        now: Timestamp,
    ) -> Result<FailOutcome, StoreError> {
        let policy = self.retry_policy;
        self.transaction(|tx| mark_failed_in(tx, &policy, part, error, kind, now))
    }

    /// Matches a status report to the most recent sent part with the same SIM, TP-MR and
    /// recipient, and applies it; without one, to an `unknown` part of the same SIM and
    /// recipient claimed inside the settle window (which the report settles as sent first).
    /// Every report is recorded, matched or not.
    pub fn apply_status_report(
        &mut self,
        report: &StatusReportIn,
        now: Timestamp,
    ) -> Result<ReportOutcome, StoreError> {
        let window = self.settle_window();
        self.transaction(|tx| apply_report_in(tx, report, window, now))
    }

    /// At start-up: every `sending` part becomes `unknown` (it may or may not have left the
    /// modem). Returns them; they are not sent again unless the operator retries.
    pub fn recover_after_crash(&mut self, now: Timestamp) -> Result<Vec<PartId>, StoreError> {
        self.transaction(|tx| {
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM parts WHERE state = 'sending' ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                set_part_state(tx, PartId(*id), PartState::Unknown, now)?;
                tx.execute(
                    "UPDATE parts SET error = 'daemon stopped while sending',
                         next_attempt_at = NULL WHERE id = ?1",
                    [id],
                )?;
            }
            if !ids.is_empty() {
                tracing::warn!(
                    parts = ids.len(),
                    at = %now,
                    "parts were sending when the daemon stopped; marked unknown"
                );
            }
            Ok(ids.into_iter().map(PartId).collect())
        })
    }

    /// The PDU left for the modem but no confirmation came back (the link broke or timed out
    /// after the payload): the part becomes `unknown`, exactly like a part found `sending` after a
    /// crash, and is not sent again unless the operator retries it.
    pub fn mark_unknown(
        &mut self,
        part: PartId,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| mark_unknown_in(tx, part, error, now))
    }

    /// The operator asks to send again: `unknown` and `failed` parts go back to the queue.
    /// Returns how many parts were requeued.
    pub fn retry(&mut self, id: MessageId, now: Timestamp) -> Result<usize, StoreError> {
        self.transaction(|tx| retry_in(tx, id, now))
    }

    /// [`Store::retry`] asked by an operator through the API: refused (nothing written) when
    /// the message has no `unknown` or `failed` part, and recorded in the audit log with
    /// `actor` (e.g. `admin:root (uid 0)`) in the same transaction.
    pub fn operator_retry(
        &mut self,
        id: MessageId,
        actor: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            let n = retry_in(tx, id, now)?;
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "message {} has no unknown or failed part to send again",
                    id.0
                )));
            }
            audit_operator(
                tx,
                id,
                "retried",
                actor,
                &format!("operator retry: {n} part(s) queued again (may send a duplicate)"),
                now,
            )?;
            Ok(n)
        })
    }

    /// The operator settles an `unknown` part.
    pub fn settle_unknown(
        &mut self,
        part: PartId,
        verdict: Settlement,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| settle_in(tx, part, verdict, now))
    }

    /// The operator settles every `unknown` part of message `id` (as [`Store::settle_unknown`]
    /// would), recorded in the audit log with `actor` in the same transaction. Returns how many
    /// parts were settled; refused (nothing written) when the message has none.
    pub fn operator_settle(
        &mut self,
        id: MessageId,
        verdict: Settlement,
        actor: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            let state = message_state(tx, id)?;
            let parts = part_ids_in(tx, id, &[PartState::Unknown])?;
            if parts.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "message {} has no unknown part to settle (it is {state}); only a part \
                     whose fate is unknown can be settled",
                    id.0
                )));
            }
            for p in &parts {
                settle_in(tx, *p, verdict, now)?;
            }
            let what = match verdict {
                Settlement::Sent => "as sent (credit used)",
                Settlement::NotSent => "as not sent (credit refunded)",
            };
            audit_operator(
                tx,
                id,
                "settled",
                actor,
                &format!("operator settled {} unknown part(s) {what}", parts.len()),
                now,
            )?;
            Ok(parts.len())
        })
    }

    /// Cancels the unsent parts of a message; parts already sent (or in flight) stay. A message
    /// held for review is refused: its sender cannot withdraw it from the reviewer (content that
    /// must be judged, and charged if prohibited, would escape judgement); see
    /// [`Store::cancel_by_admin`].
    pub fn cancel(&mut self, id: MessageId, now: Timestamp) -> Result<CancelOutcome, StoreError> {
        self.transaction(|tx| cancel_in(tx, id, None, now))
    }

    /// An administrator's cancel: as [`Store::cancel`], and a message held for review is
    /// cancelled too (its credit refunded), its review row closed as `cancelled` by `actor`
    /// (audited) in the same transaction, so no review is left pending that nothing can act on.
    pub fn cancel_by_admin(
        &mut self,
        id: MessageId,
        actor: &str,
        now: Timestamp,
    ) -> Result<CancelOutcome, StoreError> {
        self.transaction(|tx| cancel_in(tx, id, Some(actor), now))
    }

    /// Expires the queued parts of sendable messages whose deadline has passed; returns the
    /// messages touched.
    pub fn expire(&mut self, now: Timestamp) -> Result<Vec<MessageId>, StoreError> {
        self.transaction(|tx| {
            let ids: Vec<i64> = tx
                .prepare(
                    "SELECT DISTINCT m.id FROM messages m JOIN parts p ON p.message_id = m.id
                     WHERE m.deadline IS NOT NULL AND m.deadline <= ?1
                       AND m.state IN ('queued', 'scheduled', 'sending')
                       AND p.state = 'queued'
                     ORDER BY m.id",
                )?
                .query_map([ms(now)], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                let id = MessageId(*id);
                for p in part_ids_in(tx, id, &[PartState::Queued])? {
                    set_part_state(tx, p, PartState::Expired, now)?;
                }
                recompute(tx, id, now, Some("deadline passed"))?;
            }
            Ok(ids.into_iter().map(MessageId).collect())
        })
    }

    /// The queued parts of sendable messages that are due at `now`, as scheduler input, higher
    /// priority and older first: the message's `not_before` and the part's back-off have passed
    /// and its previous part is sent, or its message's deadline has passed (so the plan reports
    /// it expired). Parts that are not due are left out, so that however many of them wait they
    /// never crowd a due part out of the `limit` (issue 8: a message could starve behind 2,048
    /// parts scheduled for later); when they become due is [`Store::next_wake_at`]'s answer.
    /// The reference for `Store::due_parts_indexed`, which must return the same rows.
    pub fn due_parts(&self, limit: u32, now: Timestamp) -> Result<Vec<DuePart>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.message_id, p.seq, m.part_count, m.recipient_carrier, m.priority,
                    m.created_at, m.not_before, m.deadline, p.next_attempt_at, p.avoid_sims,
                    (SELECT q.sim_id FROM parts q WHERE q.message_id = p.message_id
                        AND q.seq < p.seq AND q.state IN ('sent', 'delivered')
                        ORDER BY q.seq DESC LIMIT 1),
                    (p.seq = 1 OR EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id
                        AND q.seq = p.seq - 1 AND q.state IN ('sent', 'delivered')))
             FROM parts p JOIN messages m ON m.id = p.message_id
             WHERE p.state = 'queued' AND m.state IN ('queued', 'scheduled', 'sending')
               AND (m.deadline <= ?2
                    OR ((m.not_before IS NULL OR m.not_before <= ?2)
                        AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= ?2)
                        AND (p.seq = 1 OR EXISTS (SELECT 1 FROM parts q
                            WHERE q.message_id = p.message_id AND q.seq = p.seq - 1
                              AND q.state IN ('sent', 'delivered')))))
             ORDER BY m.priority DESC, m.created_at, p.message_id, p.seq
             LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit, ms(now)], due_part_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One message with its parts, or `None`.
    pub fn message(&self, id: MessageId) -> Result<Option<MessageView>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, account, recipient, state, part_count, priority, created_at, sent_at,
                        delivered_at, last_error, text, encoding, not_before, deadline,
                        report_requested
                 FROM messages WHERE id = ?1",
                [id.0],
                |r| {
                    Ok((
                        summary_row(r)?,
                        r.get::<_, String>(10)?,
                        r.get::<_, String>(11)?,
                        r.get::<_, Option<i64>>(12)?,
                        r.get::<_, Option<i64>>(13)?,
                        r.get::<_, bool>(14)?,
                    ))
                },
            )
            .optional()?;
        let Some((summary, text, encoding, not_before, deadline, report_requested)) = row else {
            return Ok(None);
        };
        let summary = summary.finish()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, seq, state, sim_id, tp_mr, attempts, next_attempt_at, error,
                    report_status, sent_at, delivered_at
             FROM parts WHERE message_id = ?1 ORDER BY seq",
        )?;
        let raw = stmt
            .query_map([id.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<u8>>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<u8>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut parts = Vec::with_capacity(raw.len());
        for (pid, seq, state, sim, mr, attempts, next, error, report, sent, delivered) in raw {
            parts.push(PartView {
                id: PartId(pid),
                seq,
                state: PartState::parse(&state)?,
                sim: sim.map(SimId),
                tp_mr: mr,
                attempts,
                next_attempt_at: ts_opt(next),
                error,
                report_status: report,
                sent_at: ts_opt(sent),
                delivered_at: ts_opt(delivered),
            });
        }
        Ok(Some(MessageView {
            summary,
            text,
            encoding,
            not_before: ts_opt(not_before),
            deadline: ts_opt(deadline),
            report_requested,
            parts,
        }))
    }

    /// Messages, newest first, filtered by state and account; `before` pages by id.
    pub fn list_messages(&self, q: &MessageQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, account, recipient, state, part_count, priority, created_at, sent_at,
                    delivered_at, last_error
             FROM messages
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR account = ?2)
               AND (?3 IS NULL OR id < ?3)
               AND (?5 IS NULL OR ?5 = EXISTS (SELECT 1 FROM parts p
                        WHERE p.message_id = messages.id AND p.state = 'unknown'))
             ORDER BY id DESC LIMIT ?4",
        )?;
        let limit = if q.limit == 0 { 100 } else { q.limit };
        let rows = stmt
            .query_map(
                params![
                    q.state.map(|s| s.as_str()),
                    q.account,
                    q.before.map(|b| b.0),
                    limit,
                    q.unknown_parts
                ],
                summary_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(SummaryRow::finish).collect()
    }

    /// How many messages are in each state (states with none are left out).
    pub fn counts_by_state(&self) -> Result<Vec<(MessageState, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM messages GROUP BY state ORDER BY state")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (s, n) in rows {
            out.push((MessageState::parse(&s)?, n.max(0) as u64));
        }
        out.sort();
        Ok(out)
    }
}

struct SummaryRow {
    id: i64,
    account: Option<String>,
    recipient: String,
    state: String,
    part_count: u32,
    priority: i32,
    created_at: i64,
    sent_at: Option<i64>,
    delivered_at: Option<i64>,
    last_error: Option<String>,
}

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok(SummaryRow {
        id: r.get(0)?,
        account: r.get(1)?,
        recipient: r.get(2)?,
        state: r.get(3)?,
        part_count: r.get(4)?,
        priority: r.get(5)?,
        created_at: r.get(6)?,
        sent_at: r.get(7)?,
        delivered_at: r.get(8)?,
        last_error: r.get(9)?,
    })
}

impl SummaryRow {
    fn finish(self) -> Result<MessageSummary, StoreError> {
        Ok(MessageSummary {
            id: MessageId(self.id),
            account: self.account,
            recipient: self.recipient,
            state: MessageState::parse(&self.state)?,
            part_count: self.part_count,
            priority: self.priority,
            created_at: ts(self.created_at),
            sent_at: ts_opt(self.sent_at),
            delivered_at: ts_opt(self.delivered_at),
            last_error: self.last_error,
        })
    }
}

pub(super) fn claim_in(
    tx: &Transaction<'_>,
    part: PartId,
    sim: SimId,
    now: Timestamp,
) -> Result<ClaimedPart, StoreError> {
    let refuse = |why: String| StoreError::NotClaimable { part: part.0, why };
    let row = tx
        .query_row(
            "SELECT p.message_id, p.seq, m.part_count, p.state, m.state, m.deadline, p.pdu_hex,
                    p.cmgs_length, p.attempts
             FROM parts p JOIN messages m ON m.id = p.message_id WHERE p.id = ?1",
            [part.0],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, u32>(7)?,
                    r.get::<_, u32>(8)?,
                ))
            },
        )
        .optional()?
        .ok_or(StoreError::NoSuchPart(part.0))?;
    let (message, seq, total, pstate, mstate, deadline, pdu_hex, cmgs_length, attempts) = row;
    let message = MessageId(message);
    let pstate = PartState::parse(&pstate)?;
    let mstate = MessageState::parse(&mstate)?;
    if pstate != PartState::Queued {
        return Err(refuse(format!("part is {pstate}")));
    }
    if !mstate.is_sendable() {
        return Err(refuse(format!("message is {mstate}")));
    }
    if deadline.is_some_and(|d| d <= ms(now)) {
        return Err(refuse("message deadline passed".into()));
    }
    let sim_exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sims WHERE id = ?1)",
        [sim.0],
        |r| r.get(0),
    )?;
    if !sim_exists {
        return Err(StoreError::NoSuchSim(sim.0));
    }
    if seq > 1 {
        let prev: Option<(String, Option<i64>)> = tx
            .query_row(
                "SELECT state, sim_id FROM parts WHERE message_id = ?1 AND seq = ?2",
                params![message.0, seq - 1],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((prev_state, prev_sim)) = prev else {
            return Err(StoreError::Corrupt(format!(
                "message {} has no part {}",
                message.0,
                seq - 1
            )));
        };
        if !PartState::parse(&prev_state)?.is_sent() {
            return Err(refuse(format!("part {} is {prev_state}", seq - 1)));
        }
        if prev_sim.is_some_and(|s| s != sim.0) {
            return Err(refuse(format!(
                "earlier parts went to SIM {}",
                prev_sim.unwrap_or_default()
            )));
        }
    }
    set_part_state(tx, part, PartState::Sending, now)?;
    tx.execute(
        "UPDATE parts SET sim_id = ?2, attempts = attempts + 1, claimed_at = ?3 WHERE id = ?1",
        params![part.0, sim.0, ms(now)],
    )?;
    tx.execute(
        "INSERT INTO send_attempts (sim_id, part_id, at) VALUES (?1, ?2, ?3)",
        params![sim.0, part.0, ms(now)],
    )?;
    tx.execute(
        "UPDATE sims SET last_used_at = ?2 WHERE id = ?1",
        params![sim.0, ms(now)],
    )?;
    set_message_state(tx, message, MessageState::Sending, now, None)?;
    Ok(ClaimedPart {
        part,
        message,
        seq,
        total,
        sim,
        pdu_hex,
        cmgs_length,
        attempt: attempts + 1,
    })
}

/// The body of [`Store::mark_sent`], inside the caller's transaction.
pub(super) fn mark_sent_in(
    tx: &Transaction<'_>,
    part: PartId,
    tp_mr: u8,
    now: Timestamp,
) -> Result<(), StoreError> {
    // Only a part in flight can be sent; a second +CMGS for it would be a driver bug.
    let from = part_state(tx, part)?;
    if from != PartState::Sending {
        return Err(StoreError::BadPartTransition {
            id: part.0,
            from,
            to: PartState::Sent,
        });
    }
    set_part_state(tx, part, PartState::Sent, now)?;
    let (message, sim): (i64, Option<i64>) = tx.query_row(
        "UPDATE parts SET tp_mr = ?2, sent_at = ?3, next_attempt_at = NULL, error = NULL
         WHERE id = ?1 RETURNING message_id, sim_id",
        params![part.0, tp_mr, ms(now)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if let Some(sim) = sim {
        tx.execute(
            "UPDATE sims SET consecutive_errors = 0 WHERE id = ?1",
            [sim],
        )?;
    }
    recompute(tx, MessageId(message), now, None)?;
    if let Some(sim) = sim {
        apply_early_report(tx, part, MessageId(message), SimId(sim), tp_mr, now)?;
    }
    Ok(())
}

/// A status report that arrived before its part's outcome was written (the group commit was
/// slower than the network, or the outcome waited for disk space) matched nothing and was kept
/// unmatched: now that the part has its TP-MR, the report is applied to it.
fn apply_early_report(
    tx: &Transaction<'_>,
    part: PartId,
    message: MessageId,
    sim: SimId,
    tp_mr: u8,
    now: Timestamp,
) -> Result<(), StoreError> {
    let recipient: String = tx.query_row(
        "SELECT recipient FROM messages WHERE id = ?1",
        [message.0],
        |r| r.get(0),
    )?;
    let early: Vec<(i64, String, u8)> = tx
        .prepare_cached(
            "SELECT id, recipient, status FROM status_reports
             WHERE sim_id = ?1 AND tp_mr = ?2 AND part_id IS NULL
               AND received_at >= (SELECT claimed_at FROM parts WHERE id = ?3)
             ORDER BY received_at DESC, id DESC",
        )?
        .query_map(params![sim.0, tp_mr, part.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let Some((report, _, status)) = early
        .into_iter()
        .find(|(_, rcpt, _)| same_recipient(rcpt, &recipient))
    else {
        return Ok(());
    };
    tx.execute(
        "UPDATE status_reports SET part_id = ?2 WHERE id = ?1",
        params![report, part.0],
    )?;
    tracing::info!(
        part = part.0,
        "a status report that came before the outcome applied"
    );
    apply_status(tx, part, message, status, now)?;
    Ok(())
}

/// The body of [`Store::mark_unknown`], inside the caller's transaction.
pub(super) fn mark_unknown_in(
    tx: &Transaction<'_>,
    part: PartId,
    error: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    set_part_state(tx, part, PartState::Unknown, now)?;
    let message: i64 = tx.query_row(
        // next_attempt_at cleared: an old back-off time must never read as a requeue time
        // (store::settle requeues unknown parts that have one).
        "UPDATE parts SET error = ?2, next_attempt_at = NULL WHERE id = ?1 RETURNING message_id",
        params![part.0, error],
        |r| r.get(0),
    )?;
    recompute(tx, MessageId(message), now, Some(error))?;
    Ok(())
}

/// Part `seq` of `message` failed for good: its queued siblings will not be sent (the
/// recipient could not reassemble the message without it) and the message fails.
fn fail_message(
    tx: &Transaction<'_>,
    message: MessageId,
    seq: u32,
    why: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let sibling_error = format!("not sent: part {seq} failed");
    for p in part_ids_in(tx, message, &[PartState::Queued])? {
        tx.execute(
            "UPDATE parts SET error = ?2 WHERE id = ?1",
            params![p.0, sibling_error],
        )?;
        set_part_state(tx, p, PartState::Failed, now)?;
    }
    set_message_state(tx, message, MessageState::Failed, now, Some(why))
}

pub(super) fn mark_failed_in(
    tx: &Transaction<'_>,
    policy: &RetryPolicy,
    part: PartId,
    error: &str,
    kind: FailureKind,
    now: Timestamp,
) -> Result<FailOutcome, StoreError> {
    let (message, seq, sim, attempts, avoid): (i64, u32, Option<i64>, u32, String) = tx
        .query_row(
            "SELECT message_id, seq, sim_id, attempts, avoid_sims FROM parts WHERE id = ?1",
            [part.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?
        .ok_or(StoreError::NoSuchPart(part.0))?;
    let message = MessageId(message);
    let state = part_state(tx, part)?;
    if state != PartState::Sending {
        return Err(StoreError::BadPartTransition {
            id: part.0,
            from: state,
            to: PartState::Failed,
        });
    }
    // The SIM's health, counted first: the decision reads the count after this failure.
    let sim_errors = match (sim, policy.counts_against_sim(kind)) {
        (Some(sim), true) => Some(tx.query_row(
            "UPDATE sims SET consecutive_errors = consecutive_errors + 1, last_error = ?2
             WHERE id = ?1 RETURNING consecutive_errors",
            params![sim, error],
            |r| r.get::<_, u32>(0),
        )?),
        _ => None,
    };
    // A message cancelled or expired while this part was in flight takes no retry.
    let message_closed = !message_state(tx, message)?.is_sendable();
    let facts = FailureFacts {
        kind,
        attempts,
        sim_errors,
        message_closed,
    };
    // The scheduler decides what the failure means; this transaction only applies it.
    let decision = policy.on_failure(&facts, error, now);
    if let (Some(sim), Some(until)) = (sim, decision.rest_sim_until) {
        tx.execute(
            "UPDATE sims SET rested_until = ?2 WHERE id = ?1",
            params![sim, ms(until)],
        )?;
        let errors = sim_errors.unwrap_or_default();
        tracing::warn!(sim, errors, until = %until, "SIM rested after errors");
    }
    let at = match decision.part {
        PartFate::Fail {
            why,
            fail_message: whole_message,
        } => {
            // The error first: the audit record the state change appends carries it.
            tx.execute(
                "UPDATE parts SET error = ?2, next_attempt_at = NULL WHERE id = ?1",
                params![part.0, why],
            )?;
            set_part_state(tx, part, PartState::Failed, now)?;
            if whole_message {
                fail_message(tx, message, seq, &why, now)?;
            } else {
                recompute(tx, message, now, None)?;
            }
            return Ok(FailOutcome::Failed);
        }
        PartFate::Requeue { at } => at,
    };
    let mut avoid_list = parse_avoid(&avoid);
    if let Some(s) = sim.map(SimId) {
        if !avoid_list.contains(&s) {
            avoid_list.push(s);
        }
    }
    let avoid_text = avoid_list
        .iter()
        .map(|s| s.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    set_part_state(tx, part, PartState::Queued, now)?;
    tx.execute(
        "UPDATE parts SET sim_id = NULL, next_attempt_at = ?2, avoid_sims = ?3, error = ?4
         WHERE id = ?1",
        params![part.0, ms(at), avoid_text, error],
    )?;
    tx.execute(
        "UPDATE messages SET last_error = ?2 WHERE id = ?1",
        params![message.0, error],
    )?;
    Ok(FailOutcome::Retrying { at })
}

fn apply_report_in(
    tx: &Transaction<'_>,
    report: &StatusReportIn,
    window: jiff::SignedDuration,
    now: Timestamp,
) -> Result<ReportOutcome, StoreError> {
    let candidates: Vec<(i64, i64, String)> = tx
        .prepare_cached(
            "SELECT p.id, p.message_id, m.recipient FROM parts p
             JOIN messages m ON m.id = p.message_id
             WHERE p.sim_id = ?1 AND p.tp_mr = ?2 AND p.sent_at >= ?3
               AND p.state IN ('sent', 'delivered')
             ORDER BY p.sent_at DESC, p.id DESC",
        )?
        .query_map(
            params![report.sim.0, report.tp_mr, ms(now) - REPORT_MATCH_WINDOW_MS],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut matched = candidates
        .into_iter()
        .find(|(_, _, rcpt)| same_recipient(rcpt, &report.recipient));
    if matched.is_none() {
        // No sent part: maybe an `unknown` one (its PDU left, no answer came) that the
        // network did take. The report settles it (RELIABILITY.md).
        matched = super::settle::settle_unknown_by_report_in(
            tx,
            report.sim,
            report.tp_mr,
            &report.recipient,
            window,
            now,
        )?
        .map(|(p, m)| (p.0, m.0, report.recipient.clone()));
    }
    tx.execute(
        "INSERT INTO status_reports (sim_id, tp_mr, recipient, status, raw_pdu, received_at,
             part_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            report.sim.0,
            report.tp_mr,
            report.recipient,
            report.status,
            report.raw_pdu,
            ms(now),
            matched.as_ref().map(|m| m.0)
        ],
    )?;
    let Some((part, message, _)) = matched else {
        tracing::info!(
            sim = report.sim.0,
            mr = report.tp_mr,
            recipient = %number::mask(&report.recipient),
            "status report matched no sent part"
        );
        return Ok(ReportOutcome::Unmatched);
    };
    apply_status(tx, PartId(part), MessageId(message), report.status, now)
}

/// Applies a report's TP-Status to the sent part it is about.
fn apply_status(
    tx: &Transaction<'_>,
    part: PartId,
    message: MessageId,
    status: u8,
    now: Timestamp,
) -> Result<ReportOutcome, StoreError> {
    tx.execute(
        "UPDATE parts SET report_status = ?2 WHERE id = ?1",
        params![part.0, status],
    )?;
    // TS 23.040 9.2.3.15: 0x00-0x1F completed, 0x20-0x3F SC still trying, the rest failed.
    let outcome = match status {
        0x00..=0x1F => {
            set_part_state(tx, part, PartState::Delivered, now)?;
            tx.execute(
                "UPDATE parts SET delivered_at = ?2 WHERE id = ?1",
                params![part.0, ms(now)],
            )?;
            ReportOutcome::Delivered { part, message }
        }
        0x20..=0x3F => return Ok(ReportOutcome::Pending { part, message }),
        s => {
            if part_state(tx, part)? == PartState::Delivered {
                // A failure after a delivery is stale; the delivery stands.
                return Ok(ReportOutcome::Delivered { part, message });
            }
            set_part_state(tx, part, PartState::Failed, now)?;
            let error = format!("status report: TP-Status 0x{s:02X}");
            tx.execute(
                "UPDATE parts SET error = ?2 WHERE id = ?1",
                params![part.0, error],
            )?;
            let seq: u32 = tx.query_row("SELECT seq FROM parts WHERE id = ?1", [part.0], |r| {
                r.get(0)
            })?;
            let current = message_state(tx, message)?;
            if current.is_sendable() || current == MessageState::Sent {
                fail_message(tx, message, seq, &error, now)?;
            }
            ReportOutcome::Failed { part, message }
        }
    };
    recompute(tx, message, now, None)?;
    Ok(outcome)
}

/// One row of the due-parts queries ([`Store::due_parts`] and `Store::due_parts_indexed`), which
/// select the same columns in the same order.
pub(super) fn due_part_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DuePart> {
    Ok(DuePart {
        part: PartId(r.get(0)?),
        message: MessageId(r.get(1)?),
        seq: r.get(2)?,
        total: r.get(3)?,
        recipient_carrier: Carrier::from_name(&r.get::<_, String>(4)?),
        priority: r.get(5)?,
        created_at: ts(r.get(6)?),
        not_before: ts_opt(r.get(7)?),
        deadline: ts_opt(r.get(8)?),
        next_attempt_at: ts_opt(r.get(9)?),
        avoid_sims: parse_avoid(&r.get::<_, String>(10)?),
        pinned_sim: r.get::<_, Option<i64>>(11)?.map(SimId),
        previous_sent: r.get(12)?,
    })
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
