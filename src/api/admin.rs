//! The admin routes of the API: accounts, credit, the review queue and blacklists. The shapes
//! are [`AdminOp`] (what the daemon executes, see `Backend::admin`) and the request bodies below.
//!
//! What must always hold: every admin route is for admins only (root or the admin group, or an
//! admin's session), except `GET /v1/accounts/{name}/credit`, which an account may read for
//! itself, the review queue, which a reviewer's session may list and decide, and the webhook
//! routes, where an account lists and sets its own webhook (self-service, issue 13); the audit
//! actor is derived from the peer credentials (`admin:uid N`, `account:NAME`), never from the
//! request.
//!
//! Routes:
//! - `GET /v1/accounts`, `POST /v1/accounts` `{"name", "uids", "gids", "signature_required",
//!   "unsubscribe_suffix", "send_window"}`
//! - `GET /v1/accounts/{name}/credit`, `POST /v1/accounts/{name}/credit`
//!   `{"messages", "price_fen", "expires"}`
//! - `GET /v1/reviews` (each item with `matches`: every rule word in its text with its byte
//!   span, added by the daemon), `POST /v1/reviews/{id}`
//!   `{"decision": "approve"|"reject"|"reject_as_violation"}`
//! - `GET /v1/blacklist`, `POST /v1/blacklist` and `POST /v1/blacklist/remove`
//!   `{"account", "number", "reason"}`
//! - `GET /v1/keys[?account=A]`, `POST /v1/keys` `{"account", "name", "allow_ips"}` (the key is
//!   in the answer, once), `DELETE /v1/keys/{id}`: API keys of the network API (admins)
//! - `POST /v1/keys/verify` `{"key", "ip"}`: the key's account, or 401 (unknown or revoked) or
//!   403 (outside its IP allow-list); for front ends (`frontends`) and admins only
//! - `GET /v1/webhooks[?account=A]`, `POST /v1/webhooks` `{"account", "url"}` (a new secret in
//!   the answer; `url` null removes the webhook): the accounts' webhooks (admins: any; an
//!   account: its own)
//! - `GET /v1/webhooks/due?limit=N`, `POST /v1/webhooks/due/{id}/ack` `{"error"}` (null:
//!   delivered): the outbox of pushed reports (front ends and admins)

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::extract::{
    admin_only, caller, frontend_or_admin, json_body, refuse_if_shutting_down, ApiState, Peer,
};
use super::{ApiError, Backend, Caller};

/// A reviewer's decision as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    Approve,
    Reject,
    RejectAsViolation,
}

/// One admin operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminOp {
    AccountList,
    AccountAdd {
        name: String,
        uids: Vec<u32>,
        gids: Vec<u32>,
        /// Every text must start with a 【signature】.
        signature_required: bool,
        /// Appended to every text unless already there, e.g. "回T退订".
        unsubscribe_suffix: Option<String>,
        /// e.g. "08:00-22:00 Asia/Shanghai": messages outside wait.
        send_window: Option<String>,
    },
    CreditShow {
        account: String,
    },
    CreditAdd {
        account: String,
        messages: u64,
        price_fen: i64,
        expires: Option<Timestamp>,
    },
    ReviewList,
    ReviewDecide {
        id: i64,
        decision: ReviewVerdict,
    },
    BlacklistList,
    BlacklistAdd {
        account: Option<String>,
        number: Option<String>,
        reason: String,
    },
    BlacklistRemove {
        account: Option<String>,
        number: Option<String>,
        reason: String,
    },
    /// A new API key for `account`; the answer carries the key itself, the only time it is
    /// ever shown (the store keeps its SHA-256).
    KeyAdd {
        account: String,
        name: String,
        /// CIDRs ("203.0.113.0/24") or single addresses; empty: any address.
        allow_ips: Vec<String>,
    },
    KeyList {
        account: Option<String>,
    },
    KeyRevoke {
        id: i64,
        /// Only a key of this account (an account revoking its own); `None`: any (admins).
        account: Option<String>,
    },
    /// Which account a presented key acts for, from client address `ip` (front ends).
    KeyVerify {
        key: String,
        ip: String,
    },
    /// Sets an account's webhook URL with a new secret (in the answer), or removes it (None).
    WebhookSet {
        account: String,
        url: Option<String>,
    },
    WebhookList,
    /// Events due for delivery (front ends).
    WebhookDue {
        limit: u32,
    },
    /// One delivery attempt's outcome: `error` None when the customer answered 2xx.
    WebhookAck {
        id: i64,
        error: Option<String>,
    },
}

/// `POST /v1/webhooks`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookRequest {
    pub account: String,
    pub url: Option<String>,
}

/// `GET /v1/webhooks/due`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DueQuery {
    pub limit: Option<u32>,
}

/// One event of `GET /v1/webhooks/due`: POST `body` to `url`, signed with `secret`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueEvent {
    pub id: i64,
    pub account: String,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub attempts: u32,
}

/// Never prints the secret.
impl std::fmt::Debug for DueEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueEvent")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("url", &self.url)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// The answer of `GET /v1/webhooks/due`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueEvents {
    pub events: Vec<DueEvent>,
}

/// `POST /v1/webhooks/due/{id}/ack`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AckRequest {
    pub error: Option<String>,
}

/// `POST /v1/keys`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewKeyRequest {
    pub account: String,
    pub name: String,
    pub allow_ips: Vec<String>,
}

/// `POST /v1/keys/verify`
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyKeyRequest {
    pub key: String,
    pub ip: String,
}

/// Never prints the key.
impl std::fmt::Debug for VerifyKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKeyRequest")
            .field("key", &"<redacted>")
            .field("ip", &self.ip)
            .finish()
    }
}

/// The answer of `POST /v1/keys/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedKey {
    pub account: String,
    pub key_id: i64,
}

/// `?account=` of `GET /v1/keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyListQuery {
    pub account: Option<String>,
}

/// `POST /v1/accounts`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewAccountRequest {
    pub name: String,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    pub signature_required: bool,
    pub unsubscribe_suffix: Option<String>,
    pub send_window: Option<String>,
}

/// `POST /v1/accounts/{name}/credit`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreditRequest {
    pub messages: u64,
    /// Price of the lot in fen (0.01 yuan).
    pub price_fen: i64,
    /// Default: one year after purchase.
    pub expires: Option<Timestamp>,
}

/// `POST /v1/reviews/{id}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub decision: ReviewVerdict,
}

/// `POST /v1/blacklist`, `POST /v1/blacklist/remove`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlacklistRequest {
    pub account: Option<String>,
    pub number: Option<String>,
    pub reason: String,
}

/// The admin routes, merged by [`super::server::router`] (which adds the state, the body
/// limit and the JSON fallbacks).
pub(super) fn routes<B: Backend>() -> Router<ApiState<B>> {
    Router::new()
        .route(
            "/v1/accounts",
            get(accounts_get::<B>).post(accounts_post::<B>),
        )
        .route(
            "/v1/accounts/{name}/credit",
            get(credit_get::<B>).post(credit_post::<B>),
        )
        .route("/v1/reviews", get(reviews_get::<B>))
        .route("/v1/reviews/{id}", post(review_post::<B>))
        .route(
            "/v1/blacklist",
            get(blacklist_get::<B>).post(blacklist_add::<B>),
        )
        .route("/v1/blacklist/remove", post(blacklist_remove::<B>))
        .route("/v1/keys", get(keys_get::<B>).post(keys_post::<B>))
        .route("/v1/keys/verify", post(keys_verify::<B>))
        .route("/v1/keys/{id}", axum::routing::delete(keys_delete::<B>))
        .route(
            "/v1/webhooks",
            get(webhooks_get::<B>).post(webhooks_post::<B>),
        )
        .route("/v1/webhooks/due", get(webhooks_due::<B>))
        .route("/v1/webhooks/due/{id}/ack", post(webhooks_ack::<B>))
}

/// The review queue is for admins and reviewers (a reviewer's session, `api::users`).
fn admin_or_reviewer(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.reviewer {
        return Ok(());
    }
    admin_only(caller, what)
}

async fn run<B: Backend>(
    state: &ApiState<B>,
    caller: Caller,
    op: AdminOp,
) -> Result<Response, ApiError> {
    let uid = caller.uid;
    let v = state.backend().admin(caller, op).await?;
    tracing::info!(uid, "api: admin operation done");
    Ok(Json(v).into_response())
}

pub(super) async fn accounts_get<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    admin_only(&c, "listing accounts")?;
    run(&state, c, AdminOp::AccountList).await
}

pub(super) async fn accounts_post<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "adding an account")?;
    let r: NewAccountRequest = json_body(body)?;
    let op = AdminOp::AccountAdd {
        name: r.name,
        uids: r.uids,
        gids: r.gids,
        signature_required: r.signature_required,
        unsubscribe_suffix: r.unsubscribe_suffix,
        send_window: r.send_window,
    };
    run(&state, c, op).await
}

fn name_of(raw: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    raw.map(|UrlPath(n)| n)
        .map_err(|_| ApiError::NotFound("no such account".into()))
}

pub(super) async fn credit_get<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    let name = name_of(name)?;
    if !c.admin && c.account.as_deref() != Some(name.as_str()) {
        return Err(ApiError::Forbidden(format!(
            "uid {} may only read its own account's credit",
            c.uid
        )));
    }
    run(&state, c, AdminOp::CreditShow { account: name }).await
}

pub(super) async fn credit_post<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    name: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "adding credit")?;
    let name = name_of(name)?;
    let r: CreditRequest = json_body(body)?;
    let op = AdminOp::CreditAdd {
        account: name,
        messages: r.messages,
        price_fen: r.price_fen,
        expires: r.expires,
    };
    run(&state, c, op).await
}

pub(super) async fn reviews_get<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    admin_or_reviewer(&c, "the review queue")?;
    run(&state, c, AdminOp::ReviewList).await
}

pub(super) async fn review_post<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_or_reviewer(&c, "reviewing")?;
    let id = name_of(id)?
        .parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::NotFound("no message with such an id".into()))?;
    let r: ReviewRequest = json_body(body)?;
    run(
        &state,
        c,
        AdminOp::ReviewDecide {
            id,
            decision: r.decision,
        },
    )
    .await
}

pub(super) async fn blacklist_get<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    admin_only(&c, "the blacklist")?;
    run(&state, c, AdminOp::BlacklistList).await
}

pub(super) async fn blacklist_add<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "changing the blacklist")?;
    let r: BlacklistRequest = json_body(body)?;
    let op = AdminOp::BlacklistAdd {
        account: r.account,
        number: r.number,
        reason: r.reason,
    };
    run(&state, c, op).await
}

pub(super) async fn blacklist_remove<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "changing the blacklist")?;
    let r: BlacklistRequest = json_body(body)?;
    let op = AdminOp::BlacklistRemove {
        account: r.account,
        number: r.number,
        reason: r.reason,
    };
    run(&state, c, op).await
}

pub(super) async fn keys_get<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<axum::extract::Query<KeyListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    let axum::extract::Query(q) =
        q.map_err(|r| ApiError::InvalidField(format!("bad query string: {}", r.body_text())))?;
    if c.admin {
        return run(&state, c, AdminOp::KeyList { account: q.account }).await;
    }
    // An account's own keys (self-service: the console's keys page).
    let c = super::access::act_for(c, q.account.as_deref())?;
    let account = own_account(&c, "listing API keys")?;
    run(
        &state,
        c,
        AdminOp::KeyList {
            account: Some(account),
        },
    )
    .await
}

/// The caller's own account, for the routes an account may use for itself; 403 otherwise.
fn own_account(c: &Caller, what: &str) -> Result<String, ApiError> {
    c.account.clone().ok_or_else(|| {
        ApiError::Forbidden(format!(
            "uid {}: {what} is for admins and accounts (their own)",
            c.uid
        ))
    })
}

pub(super) async fn keys_post<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    let r: NewKeyRequest = json_body(body)?;
    // Admins for any account, an account for its own (self-service).
    let c = super::access::act_for(c, Some(&r.account))?;
    let op = AdminOp::KeyAdd {
        account: r.account,
        name: r.name,
        allow_ips: r.allow_ips,
    };
    run(&state, c, op).await
}

pub(super) async fn keys_delete<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    // Admins any key; an account only its own (another account's key is not found).
    let account = if c.admin {
        None
    } else {
        Some(own_account(&c, "revoking API keys")?)
    };
    let id = name_of(id)?
        .parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::NotFound("no API key with such an id".into()))?;
    run(&state, c, AdminOp::KeyRevoke { id, account }).await
}

/// For front ends and admins: a front end has no account of its own, so it is checked by uid
/// before (instead of) the usual caller resolution.
pub(super) async fn keys_verify<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = frontend_or_admin(&state, peer, "verifying API keys").await?;
    let r: VerifyKeyRequest = json_body(body)?;
    let v = state
        .backend()
        .admin(
            c,
            AdminOp::KeyVerify {
                key: r.key,
                ip: r.ip,
            },
        )
        .await?;
    Ok(Json(v).into_response())
}

pub(super) async fn webhooks_get<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<
        axum::extract::Query<super::types::AccountQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    let axum::extract::Query(q) =
        q.map_err(|r| ApiError::InvalidField(format!("bad query string: {}", r.body_text())))?;
    if c.admin && q.account.is_none() {
        return run(&state, c, AdminOp::WebhookList).await;
    }
    // One account's: an account's own (self-service), or the one an admin names.
    let c = super::access::act_for(c, q.account.as_deref())?;
    let Some(account) = c.account.clone() else {
        return Err(ApiError::Forbidden(format!(
            "uid {}: listing webhooks is for admins and accounts (their own)",
            c.uid
        )));
    };
    let mut v = state.backend().admin(c, AdminOp::WebhookList).await?;
    if let Some(list) = v.get_mut("webhooks").and_then(|l| l.as_array_mut()) {
        list.retain(|w| w["account"].as_str() == Some(account.as_str()));
    }
    Ok(Json(v).into_response())
}

pub(super) async fn webhooks_post<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    let r: WebhookRequest = json_body(body)?;
    // Admins for any account, an account for its own (self-service).
    let c = super::access::act_for(c, Some(&r.account))?;
    let op = AdminOp::WebhookSet {
        account: r.account,
        url: r.url,
    };
    run(&state, c, op).await
}

pub(super) async fn webhooks_due<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<axum::extract::Query<DueQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let c = frontend_or_admin(&state, peer, "taking webhook events").await?;
    let axum::extract::Query(q) =
        q.map_err(|r| ApiError::InvalidField(format!("bad query string: {}", r.body_text())))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let v = state
        .backend()
        .admin(c, AdminOp::WebhookDue { limit })
        .await?;
    Ok(Json(v).into_response())
}

pub(super) async fn webhooks_ack<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = frontend_or_admin(&state, peer, "acknowledging webhook events").await?;
    let id = name_of(id)?
        .parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::NotFound("no webhook event with such an id".into()))?;
    let r: AckRequest = json_body(body)?;
    let v = state
        .backend()
        .admin(c, AdminOp::WebhookAck { id, error: r.error })
        .await?;
    Ok(Json(v).into_response())
}
