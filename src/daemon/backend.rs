//! The API's backend in the daemon: requests become store transactions, store rows become the
//! API's views. Submission validates each recipient, encodes the text once per recipient with
//! the codec, and accepts the whole batch in one transaction before answering 202.
//!
//! What must always hold: an id is returned only for a message whose row and parts are committed;
//! an account sees and touches only its own messages (admins see all); a refused recipient is
//! reported and costs nothing, and does not fail the others.

use std::sync::Arc;

use jiff::Timestamp;

use super::{admin, contract, submit, Shared};
use crate::api::types::{
    self as t, Health, HealthStatus, InboundView, InboxList, InboxQuery, ListQuery, MessageList,
    ModemCounters, ModemState, ModemView, Priority, QuotaLeft, Refusal, SendRequest, SendResponse,
};
use crate::api::{ApiError, Backend, Caller};
use crate::number;
use crate::pdu::{self, Address, SubmitOptions, ValidityPeriod};
use crate::store::acceptance;
use crate::store::{
    MessageId, MessageQuery, MessageState, MessageView, NewPart, PartState, Settlement, StoreError,
};

/// The daemon's implementation of [`Backend`].
pub struct DaemonBackend {
    shared: Arc<Shared>,
}

impl DaemonBackend {
    pub(crate) fn new(shared: Arc<Shared>) -> DaemonBackend {
        DaemonBackend { shared }
    }

    /// Loads a message and checks the caller may see it (a foreign message is "not found").
    async fn visible(&self, caller: &Caller, id: t::MessageId) -> Result<MessageView, ApiError> {
        let sid = store_id(id)?;
        let view = self
            .shared
            .db
            .call(move |s| s.message(sid))
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::NotFound(format!("no message {}", id.0)))?;
        if !caller.admin && view.summary.account != caller.account {
            return Err(ApiError::NotFound(format!("no message {}", id.0)));
        }
        Ok(view)
    }

    async fn view(&self, view: MessageView) -> Result<t::MessageView, ApiError> {
        let sims = self.shared.db.call(|s| s.sims()).await.map_err(internal)?;
        Ok(api_view(view, &sims))
    }
}

/// Who an admin is, for the audit log: the user name as well as the uid (reviewer identity),
/// or the logged-in user of a front end's session (`api::users`).
fn admin_actor(caller: &Caller) -> String {
    if let Some(session) = &caller.session {
        return super::users::session_actor(session);
    }
    let uid = caller.uid;
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("admin:{} (uid {uid})", u.name),
        _ => format!("admin:uid {uid}"),
    }
}

pub(super) fn internal(e: StoreError) -> ApiError {
    if e.is_storage_full() {
        return ApiError::InsufficientStorage(format!(
            "the gateway's disk is full; nothing was accepted, try again later ({e})"
        ));
    }
    ApiError::Internal(format!("store: {e}"))
}

/// A refused state change (cancel a sent message, retry past its deadline) is the caller's
/// conflict; anything else is the daemon's fault.
fn conflict_or_internal(e: StoreError) -> ApiError {
    match e {
        StoreError::BadMessageTransition { .. }
        | StoreError::BadPartTransition { .. }
        | StoreError::NotClaimable { .. }
        | StoreError::Invalid(_) => ApiError::Conflict(e.to_string()),
        e => internal(e),
    }
}

fn store_id(id: t::MessageId) -> Result<MessageId, ApiError> {
    i64::try_from(id.0)
        .map(MessageId)
        .map_err(|_| ApiError::NotFound(format!("no message {}", id.0)))
}

fn api_state(s: MessageState) -> t::MessageState {
    match s {
        MessageState::Queued => t::MessageState::Queued,
        MessageState::HeldForReview => t::MessageState::HeldForReview,
        MessageState::Scheduled => t::MessageState::Scheduled,
        MessageState::Sending => t::MessageState::Sending,
        MessageState::Sent => t::MessageState::Sent,
        MessageState::Delivered => t::MessageState::Delivered,
        MessageState::Failed => t::MessageState::Failed,
        MessageState::Expired => t::MessageState::Expired,
        MessageState::Cancelled => t::MessageState::Cancelled,
        MessageState::Rejected => t::MessageState::Rejected,
    }
}

fn api_part_state(s: PartState) -> t::MessageState {
    match s {
        PartState::Queued => t::MessageState::Queued,
        PartState::Sending => t::MessageState::Sending,
        PartState::Sent => t::MessageState::Sent,
        PartState::Delivered => t::MessageState::Delivered,
        PartState::Failed => t::MessageState::Failed,
        PartState::Expired => t::MessageState::Expired,
        PartState::Cancelled => t::MessageState::Cancelled,
        PartState::Unknown => t::MessageState::Unknown,
    }
}

/// The store keeps a message with an `unknown` part `sending` (nothing else will move it); the
/// API says `unknown`, so the operator sees it needs a decision (retry or settle), not patience.
/// A message already failed, cancelled or expired for another part keeps that final state.
fn api_message_state(v: &MessageView) -> t::MessageState {
    if v.summary.state == MessageState::Sending
        && v.parts.iter().any(|p| p.state == PartState::Unknown)
    {
        t::MessageState::Unknown
    } else {
        api_state(v.summary.state)
    }
}

/// The store's state behind an API state filter: `unknown` messages are stored `sending`.
fn store_state(s: t::MessageState) -> MessageState {
    match s {
        t::MessageState::Queued => MessageState::Queued,
        t::MessageState::HeldForReview => MessageState::HeldForReview,
        t::MessageState::Scheduled => MessageState::Scheduled,
        t::MessageState::Sending => MessageState::Sending,
        t::MessageState::Sent => MessageState::Sent,
        t::MessageState::Delivered => MessageState::Delivered,
        t::MessageState::Failed => MessageState::Failed,
        t::MessageState::Expired => MessageState::Expired,
        t::MessageState::Cancelled => MessageState::Cancelled,
        t::MessageState::Rejected => MessageState::Rejected,
        t::MessageState::Unknown => MessageState::Sending,
    }
}

fn api_view(v: MessageView, sims: &[crate::store::SimRecord]) -> t::MessageView {
    let sim_name = |id: crate::store::SimId| {
        sims.iter()
            .find(|s| s.id == id)
            .and_then(|s| s.iccid.clone().or_else(|| s.imsi.clone()))
            .unwrap_or_else(|| format!("sim-{}", id.0))
    };
    t::MessageView {
        id: t::MessageId(v.summary.id.0.max(0) as u64),
        to: v.summary.recipient.clone(),
        state: api_message_state(&v),
        parts: v
            .parts
            .iter()
            .map(|p| t::PartView {
                seq: p.seq,
                state: api_part_state(p.state),
                sim: p.sim.map(sim_name),
                mr: p.tp_mr,
                error: p.error.clone(),
                msg_id: p.gateway_msg_id.clone(),
            })
            .collect(),
        created: v.summary.created_at,
        sent: v.summary.sent_at,
        delivered: v.summary.delivered_at,
        sender: Some(v.channel.sender_kind.clone()),
        gateway: v.channel.gateway.clone(),
        src_id: v.channel.src_id.clone(),
    }
}

fn priority(p: Priority) -> i32 {
    match p {
        Priority::Low => -1,
        Priority::Normal => 0,
        Priority::High => 1,
    }
}

/// Encodes `text` for one recipient: each part as the neutral SMS-SUBMIT the store keeps (split
/// and counted by the codec's one rule; the modem encodes it for its dialect when it sends it,
/// `modem::encode`) and its AT+CMGS length.
fn encode_for(
    recipient: &number::Number,
    text: &str,
    report: bool,
    validity: Option<ValidityPeriod>,
    concat_reference: u16,
) -> Result<(String, Vec<NewPart>), pdu::PduError> {
    let mut opts = SubmitOptions::new(Address::parse_number(recipient.canonical())?);
    opts.status_report = report;
    opts.validity = validity;
    opts.concat_reference = concat_reference;
    let parts = pdu::encode_submit(&opts, text)?;
    let encoding = parts
        .first()
        .map(|p| p.encoding.as_str().to_string())
        .unwrap_or_else(|| "gsm7".into());
    Ok((
        encoding,
        parts
            .iter()
            .map(|p| NewPart {
                pdu_hex: p.hex(),
                cmgs_length: p.cmgs_length as u32,
            })
            .collect(),
    ))
}

/// The codec acceptance builds, reserves and charges parts with ([`encode_for`] with a fresh
/// concatenation reference per message): [`acceptance::submit`] gets it for a send, and
/// [`acceptance::quote`] for a quote, so a quote is what the send costs.
pub(super) fn codec(
    report: bool,
    validity: Option<ValidityPeriod>,
) -> impl Fn(&number::Number, &str) -> Result<(String, Vec<NewPart>), String> {
    move |n: &number::Number, text: &str| {
        let reference: u16 = rand::random();
        encode_for(n, text, report, validity, reference).map_err(|e| format!("text: {e}"))
    }
}

impl Backend for DaemonBackend {
    async fn submit(&self, caller: Caller, req: SendRequest) -> Result<SendResponse, ApiError> {
        if self.shared.is_stopping() {
            return Err(ApiError::ShuttingDown);
        }
        let account = caller.account.clone();
        let now = Timestamp::now();
        let tunables = self.shared.tunables();
        let validity = req.validity.unwrap_or(tunables.default_validity);
        let vp = ValidityPeriod::from_duration(validity.unsigned_abs());
        let mut refused = Vec::new();
        let mut recipients = Vec::with_capacity(req.to.len());
        for to in &req.to {
            match number::parse(to) {
                Ok(n) => recipients.push(n),
                Err(e) => refused.push(Refusal {
                    to: to.clone(),
                    code: "invalid_number".into(),
                    message: e.to_string(),
                }),
            }
        }
        let Some(account_name) = account.clone() else {
            return Err(ApiError::InvalidField(
                "account: this caller has no account of its own; name one with \"account\"".into(),
            ));
        };
        if recipients.is_empty() {
            return Ok(SendResponse {
                ids: Vec::new(),
                parts: 0,
                refused,
            });
        }
        // Text problems the codec finds are the request's fault, whatever the policy says.
        if let Some(first) = recipients.first() {
            encode_for(first, &req.text, req.report, Some(vp), 0)
                .map_err(|e| ApiError::InvalidField(format!("text: {e}")))?;
        }
        let actor = if caller.admin {
            admin_actor(&caller)
        } else {
            format!("account:{account_name}")
        };
        let channel = self.shared.channels().resolve(&account_name, req.sender)?;
        let input = acceptance::SubmitInput {
            channel,
            account: account_name,
            actor,
            recipients,
            text: req.text.clone(),
            priority: priority(req.priority),
            not_before: req.not_before,
            validity_span: validity,
            validity_explicit: req.validity.is_some(),
            report: req.report,
        };
        let rules = self.shared.contract().rules;
        // Committed together with the requests that arrive meanwhile (group commit); the answer
        // comes after that commit.
        let outcome = self
            .shared
            .accept
            .submit(Box::new(move |tx| {
                let encode = codec(input.report, Some(vp));
                acceptance::submit(tx, &rules, &input, &encode, now)
            }))
            .await?;
        refused.extend(outcome.refused.into_iter().map(submit::api_refusal));
        let ids = outcome.ids;
        let parts = outcome.parts;
        if !ids.is_empty() {
            tracing::info!(
                messages = ids.len(),
                parts,
                held = outcome.held,
                account = account.as_deref().unwrap_or("-"),
                "messages accepted"
            );
            self.shared.wake_all();
        }
        Ok(SendResponse {
            ids: ids
                .iter()
                .map(|i| t::MessageId(i.0.max(0) as u64))
                .collect(),
            parts,
            refused,
        })
    }

    async fn get(&self, caller: Caller, id: t::MessageId) -> Result<t::MessageView, ApiError> {
        let v = self.visible(&caller, id).await?;
        self.view(v).await
    }

    async fn list(&self, caller: Caller, query: ListQuery) -> Result<MessageList, ApiError> {
        let limit = query.limit.unwrap_or(100);
        let q = MessageQuery {
            state: query.state.map(store_state),
            // The API's `unknown` is a `sending` message with an unknown part (see
            // `api_message_state`), and its `sending` one without.
            unknown_parts: match query.state {
                Some(t::MessageState::Unknown) => Some(true),
                Some(t::MessageState::Sending) => Some(false),
                _ => None,
            },
            account: if caller.admin {
                query.account.clone()
            } else {
                caller.account.clone()
            },
            before: query
                .after
                .map(|a| MessageId(a.0.min(i64::MAX as u64) as i64)),
            limit,
        };
        let (views, sims) = self
            .shared
            .db
            .call(move |s| {
                let mut views = Vec::new();
                for m in s.list_messages(&q)? {
                    if let Some(v) = s.message(m.id)? {
                        views.push(v);
                    }
                }
                Ok((views, s.sims()?))
            })
            .await
            .map_err(internal)?;
        let next_after = if views.len() as u32 >= limit {
            views
                .last()
                .map(|v| t::MessageId(v.summary.id.0.max(0) as u64))
        } else {
            None
        };
        Ok(MessageList {
            messages: views.into_iter().map(|v| api_view(v, &sims)).collect(),
            next_after,
        })
    }

    async fn cancel(&self, caller: Caller, id: t::MessageId) -> Result<t::MessageView, ApiError> {
        let v = self.visible(&caller, id).await?;
        let sid = v.summary.id;
        // A message held for review: its sender gets 409; an admin's cancel closes the review.
        let admin = caller.admin.then(|| admin_actor(&caller));
        let outcome = self
            .shared
            .db
            .call(move |s| match &admin {
                Some(actor) => s.cancel_by_admin(sid, actor, Timestamp::now()),
                None => s.cancel(sid, Timestamp::now()),
            })
            .await
            .map_err(conflict_or_internal)?;
        if outcome.cancelled_parts == 0 {
            return Err(ApiError::Conflict(format!(
                "message {} has no unsent part left to cancel",
                id.0
            )));
        }
        let v = self.visible(&caller, id).await?;
        self.view(v).await
    }

    async fn retry(&self, caller: Caller, id: t::MessageId) -> Result<t::MessageView, ApiError> {
        let v = self.visible(&caller, id).await?;
        let sid = v.summary.id;
        let actor = admin_actor(&caller);
        self.shared
            .db
            .call(move |s| s.operator_retry(sid, &actor, Timestamp::now()))
            .await
            .map_err(conflict_or_internal)?;
        self.shared.wake_all();
        let v = self.visible(&caller, id).await?;
        self.view(v).await
    }

    async fn settle(
        &self,
        caller: Caller,
        id: t::MessageId,
        sent: bool,
    ) -> Result<t::MessageView, ApiError> {
        let v = self.visible(&caller, id).await?;
        let sid = v.summary.id;
        let actor = admin_actor(&caller);
        let verdict = if sent {
            Settlement::Sent
        } else {
            Settlement::NotSent
        };
        let n = self
            .shared
            .db
            .call(move |s| s.operator_settle(sid, verdict, &actor, Timestamp::now()))
            .await
            .map_err(conflict_or_internal)?;
        tracing::info!(
            message = id.0,
            parts = n,
            sent,
            "operator settled unknown parts"
        );
        let v = self.visible(&caller, id).await?;
        self.view(v).await
    }

    async fn gateways(
        &self,
        _caller: Caller,
    ) -> Result<Vec<crate::api::types::GatewayView>, ApiError> {
        Ok(self
            .shared
            .gateways
            .gateways
            .iter()
            .map(|g| g.view())
            .collect())
    }

    async fn modems(&self, _caller: Caller) -> Result<Vec<ModemView>, ApiError> {
        let now = Timestamp::now();
        let defaults = self.shared.tunables().default_quota();
        let slots = self.shared.modems.snapshot();
        let sim_ids: Vec<_> = slots.iter().filter_map(|(_, s)| s.sim).collect();
        let stats = self
            .shared
            .db
            .call(move |s| {
                let mut out = std::collections::BTreeMap::new();
                for id in sim_ids {
                    let Some(rec) = s.sim(id)? else { continue };
                    let counts = s.sent_counts(id, now)?;
                    let totals = s.sim_totals(id)?;
                    out.insert(id, (rec, counts, totals));
                }
                Ok(out)
            })
            .await
            .map_err(internal)?;
        Ok(slots
            .into_iter()
            .map(|(port, slot)| {
                let stat = slot.sim.and_then(|id| stats.get(&id));
                let quota_left = stat.map(|(rec, c, _)| {
                    let q = rec.quota.over(defaults);
                    QuotaLeft {
                        minute: q.per_minute.saturating_sub(c.minute),
                        hour: q.per_hour.saturating_sub(c.hour),
                        day: q.per_day.saturating_sub(c.day),
                    }
                });
                let resting = stat
                    .and_then(|(rec, _, _)| rec.rested_until)
                    .is_some_and(|r| r > now);
                let state = if resting && slot.state == ModemState::Ready {
                    ModemState::Resting
                } else {
                    slot.state
                };
                ModemView {
                    port,
                    state,
                    iccid: slot.identity.as_ref().and_then(|i| i.iccid.clone()),
                    imsi: slot.identity.as_ref().and_then(|i| i.imsi.clone()),
                    operator: slot.health.operator.clone(),
                    signal_dbm: slot.health.dbm.map(i32::from),
                    counters: stat
                        .map(|(_, _, t)| ModemCounters {
                            sent: t.sent,
                            failed: t.failed,
                            delivered: t.delivered,
                            received: t.received,
                        })
                        .unwrap_or_default(),
                    quota_left,
                    quota_used: stat.map(|(_, c, _)| QuotaLeft {
                        minute: c.minute,
                        hour: c.hour,
                        day: c.day,
                    }),
                    last_error: slot
                        .last_error
                        .clone()
                        .or_else(|| stat.and_then(|(rec, _, _)| rec.last_error.clone())),
                }
            })
            .collect())
    }

    async fn inbox(&self, caller: Caller, query: InboxQuery) -> Result<InboxList, ApiError> {
        let limit = query.limit.unwrap_or(100);
        let account = if caller.admin {
            query.account.clone()
        } else {
            caller.account.clone()
        };
        let before = query.after;
        let (messages, sims) = self
            .shared
            .db
            .call(move |s| {
                let q = crate::store::InboxQuery {
                    limit: limit.saturating_mul(4).max(limit),
                    ..Default::default()
                };
                let mut out = Vec::new();
                for m in s.inbox(&q)? {
                    if before.is_some_and(|b| m.id.0.max(0) as u64 >= b) {
                        continue;
                    }
                    // An account sees replies from the numbers it has messaged; a reply through
                    // a gateway names its account (the extension it was sent to).
                    if let Some(a) = &account {
                        let seen = match &m.account {
                            Some(named) => named == a,
                            None => s.account_messaged(a, &m.sender)?,
                        };
                        if !seen {
                            continue;
                        }
                    }
                    out.push(m);
                    if out.len() as u32 >= limit {
                        break;
                    }
                }
                Ok((out, s.sims()?))
            })
            .await
            .map_err(internal)?;
        let next_after = if messages.len() as u32 >= limit {
            messages.last().map(|m| m.id.0.max(0) as u64)
        } else {
            None
        };
        Ok(InboxList {
            messages: messages
                .into_iter()
                .map(|m| InboundView {
                    id: m.id.0.max(0) as u64,
                    from: m.sender,
                    text: m.text,
                    received: m.received_at,
                    sim: m.sim.and_then(|id| {
                        sims.iter()
                            .find(|s| s.id == id)
                            .and_then(|s| s.iccid.clone().or_else(|| s.imsi.clone()))
                    }),
                })
                .collect(),
            next_after,
        })
    }

    async fn health(&self, _caller: Caller) -> Result<Health, ApiError> {
        let summary = self.shared.modems.summary();
        let counts = self
            .shared
            .db
            .call(|s| s.counts_by_state())
            .await
            .map_err(internal)?;
        let pending = counts
            .iter()
            .filter(|(s, _)| {
                matches!(
                    s,
                    MessageState::Queued | MessageState::Scheduled | MessageState::Sending
                )
            })
            .map(|(_, n)| *n)
            .sum();
        let store_error = self.shared.store_trouble().map(|(why, _)| why);
        let status = if self.shared.is_stopping() {
            HealthStatus::ShuttingDown
        } else if summary.ready == 0 || store_error.is_some() {
            HealthStatus::Degraded
        } else {
            HealthStatus::Ok
        };
        Ok(Health {
            status,
            version: env!("CARGO_PKG_VERSION").to_string(),
            modems_ready: summary.ready as u32,
            modems_total: summary.total as u32,
            pending,
            store_error,
        })
    }

    async fn metrics(&self, _caller: Caller) -> Result<String, ApiError> {
        use std::fmt::Write;
        let summary = self.shared.modems.summary();
        let counts = self
            .shared
            .db
            .call(|s| s.counts_by_state())
            .await
            .map_err(internal)?;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP smsgate_messages Messages in the store by state."
        );
        let _ = writeln!(out, "# TYPE smsgate_messages gauge");
        for (state, n) in counts {
            let _ = writeln!(out, "smsgate_messages{{state=\"{}\"}} {n}", state.as_str());
        }
        let _ = writeln!(out, "# HELP smsgate_modems Modem ports by condition.");
        let _ = writeln!(out, "# TYPE smsgate_modems gauge");
        let _ = writeln!(
            out,
            "smsgate_modems{{condition=\"present\"}} {}",
            summary.total
        );
        let _ = writeln!(
            out,
            "smsgate_modems{{condition=\"ready\"}} {}",
            summary.ready
        );
        let _ = writeln!(
            out,
            "smsgate_modems{{condition=\"sending\"}} {}",
            summary.busy
        );
        let gateways: Vec<_> = self
            .shared
            .gateways
            .gateways
            .iter()
            .map(|g| g.view())
            .collect();
        if !gateways.is_empty() {
            // Per gateway (issue 12); never its secret.
            for (name, help, kind) in [
                (
                    "smsgate_gateway_links_up",
                    "Gateway links logged in.",
                    "gauge",
                ),
                (
                    "smsgate_gateway_window_in_use",
                    "SUBMITs in flight.",
                    "gauge",
                ),
                (
                    "smsgate_gateway_submits_total",
                    "Parts submitted.",
                    "counter",
                ),
                (
                    "smsgate_gateway_results_total",
                    "SUBMIT_RESP results by code.",
                    "counter",
                ),
                (
                    "smsgate_gateway_reports_total",
                    "Status reports taken.",
                    "counter",
                ),
                ("smsgate_gateway_mo_total", "MO messages taken.", "counter"),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                for g in &gateways {
                    let l = format!("gateway=\"{}\"", g.name);
                    match name {
                        "smsgate_gateway_links_up" => {
                            let _ = writeln!(out, "{name}{{{l}}} {}", g.links_up);
                        }
                        "smsgate_gateway_window_in_use" => {
                            let _ = writeln!(out, "{name}{{{l}}} {}", g.window_in_use);
                        }
                        "smsgate_gateway_submits_total" => {
                            let _ = writeln!(out, "{name}{{{l}}} {}", g.submits);
                        }
                        "smsgate_gateway_results_total" => {
                            for (code, n) in &g.results {
                                let _ = writeln!(out, "{name}{{{l},result=\"{code}\"}} {n}");
                            }
                        }
                        "smsgate_gateway_reports_total" => {
                            let _ = writeln!(out, "{name}{{{l}}} {}", g.reports);
                        }
                        _ => {
                            let _ = writeln!(out, "{name}{{{l}}} {}", g.mo);
                        }
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP smsgate_uptime_seconds Seconds since the daemon started."
        );
        let _ = writeln!(out, "# TYPE smsgate_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "smsgate_uptime_seconds {}",
            (Timestamp::now() - self.shared.started).as_secs()
        );
        Ok(out)
    }
    async fn admin(
        &self,
        caller: Caller,
        op: crate::api::admin::AdminOp,
    ) -> Result<serde_json::Value, ApiError> {
        let actor = if caller.admin || caller.reviewer {
            admin_actor(&caller)
        } else {
            format!("account:{}", caller.account.as_deref().unwrap_or("-"))
        };
        let review_list = matches!(op, crate::api::admin::AdminOp::ReviewList);
        let woke = matches!(
            op,
            crate::api::admin::AdminOp::ReviewDecide {
                decision: crate::api::admin::ReviewVerdict::Approve,
                ..
            }
        );
        let v = self
            .shared
            .db
            .call(move |s| admin::admin(s, op, &actor, Timestamp::now()))
            .await
            .map_err(internal)??;
        if review_list {
            // The reviewer sees every matched word, by the rules in force now.
            return Ok(admin::with_matches(v, &self.shared.contract().rules));
        }
        if woke {
            // An approved message is due: the runner must look.
            self.shared.wake_all();
        }
        Ok(v)
    }

    async fn session(&self, token: String) -> Result<crate::api::users::Session, ApiError> {
        super::users::session(&self.shared, token).await
    }

    async fn users(
        &self,
        caller: Caller,
        op: crate::api::users::UserOp,
    ) -> Result<serde_json::Value, ApiError> {
        let actor = if caller.admin || caller.session.is_some() {
            admin_actor(&caller)
        } else {
            // A front end logging a user in.
            format!("frontend:uid {}", caller.uid)
        };
        super::users::users(&self.shared, caller, op, actor).await
    }

    async fn console(
        &self,
        caller: Caller,
        op: crate::api::console::ConsoleOp,
    ) -> Result<crate::api::console::ConsoleAnswer, ApiError> {
        super::console::run(&self.shared, caller, op).await
    }

    async fn audit(
        &self,
        caller: Caller,
        op: crate::api::audit::AuditOp,
    ) -> Result<crate::api::audit::AuditAnswer, ApiError> {
        super::audit::run(&self.shared, caller, op).await
    }

    async fn account_for_peer(&self, uid: u32, gids: Vec<u32>) -> Option<String> {
        self.shared
            .db
            .call(move |s| contract::account_for_peer(s, uid, &gids))
            .await
            .ok()
            .flatten()
    }
}
