//! The API: HTTP/1.1 with JSON on the daemon's Unix socket. It owns the routes, the request and
//! response shapes ([`types`]), the mapping from a connecting process's peer credentials to a
//! [`Caller`] ([`access`]), and the mapping from every failure to a JSON error with the right
//! HTTP status ([`ApiError`]). What the requests *do* is the daemon's business, behind the
//! [`Backend`] trait.
//!
//! The daemon wires it in four steps: [`crate::config::Config::load`], [`AccessMap::from_config`],
//! [`bind_socket`] (then tell systemd READY=1), and [`serve`] with its [`Backend`] and a shutdown
//! future. The CLI clients use [`client::ApiClient`].
//!
//! What must always hold: no request, however malformed or large, panics the server or takes it
//! down; every non-2xx answer is `{"error": {"code", "message"}}`; a caller acts only for its own
//! account unless it is an admin (root or the configured admin group); an unmapped uid gets 403.

use std::future::Future;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub mod access;
pub mod admin;
pub mod audit;
pub mod client;
pub mod console;
mod extract;
pub mod listener;
pub mod server;
mod session;
pub mod types;
pub mod users;

pub use access::{AccessMap, AccountAccess, PeerCredentials};
pub use extract::FRONTEND_ACCOUNT_HEADER;
pub use listener::ConnectionLimits;
pub use server::{bind_socket, router, serve, serve_with};
pub use session::SESSION_HEADER;
use types::{
    ErrorBody, ErrorDetail, Health, InboxList, InboxQuery, ListQuery, MessageId, MessageList,
    MessageView, ModemView, SendRequest, SendResponse,
};

/// Who is asking, as established from the socket's peer credentials and the configuration.
/// `account` is the account the request acts for: the caller's own, or (admins only) the one
/// named in the request.
///
/// A front end forwarding a logged-in user ([`SESSION_HEADER`]) is the user's role: a
/// customer acts for its account, an admin is `admin`, a reviewer is `reviewer` (the review
/// queue and reading modems, gateways and health; the `session` module refuses the rest);
/// `session` names the session and its user (for the audit log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub account: Option<String>,
    pub admin: bool,
    /// A reviewer's session: may list and decide reviews (`admin` is false).
    pub reviewer: bool,
    /// The session of a logged-in user, when the request came with one.
    pub session: Option<users::CallerSession>,
}

/// Every way a request can fail, each with its HTTP status and a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (or not UTF-8), or the query string does not parse.
    #[error("{0}")]
    BadJson(String),
    /// Well-formed JSON, but a field is missing, of the wrong type, or out of range.
    #[error("{0}")]
    InvalidField(String),
    /// No credentials, or credentials that are not valid (an unknown or revoked API key).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The message is in a state that does not allow the operation (e.g. cancel after sending).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// The client did not send its request body in time (slow-loris); the connection is closed.
    #[error("{0}")]
    Timeout(String),
    /// The account has not enough credit for the request.
    #[error("{0}")]
    InsufficientCredit(String),
    /// Refused by policy for the whole request (content, blacklist, send window...). `code` names
    /// the rule, e.g. "content_prohibited".
    #[error("{message}")]
    Policy { code: String, message: String },
    /// Over the account's request rate (network API); answered with `Retry-After`.
    #[error("too many requests: at most {per_second} per second for this account; retry after {retry_after_secs} s")]
    RateLimited {
        per_second: u32,
        retry_after_secs: u64,
    },
    #[error("smsgate is shutting down; try again when it is back")]
    ShuttingDown,
    /// A front end cannot reach the daemon (`smsgate web` without its socket).
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot take the write (disk full): nothing of the request was kept.
    #[error("{0}")]
    InsufficientStorage(String),
    /// A fault of the daemon (database, bug). The message is for the operator's log as well.
    #[error("{0}")]
    Internal(String),
    /// A login refused: unknown login, wrong password or disabled user, deliberately alike.
    #[error("wrong login or password")]
    BadLogin,
    /// A user locked after repeated failed logins; the message says until when.
    #[error("{0}")]
    Locked(String),
    /// The session's user must change the password before anything else.
    #[error("the password must be changed first (POST /v1/users/me/password)")]
    PasswordChangeRequired,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadJson(_) | ApiError::InvalidField(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::InsufficientCredit(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::Policy { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ShuttingDown | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BadLogin => StatusCode::UNAUTHORIZED,
            ApiError::Locked(_) => StatusCode::LOCKED,
            ApiError::PasswordChangeRequired => StatusCode::FORBIDDEN,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::BadJson(_) => "bad_json",
            ApiError::InvalidField(_) => "invalid_field",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Timeout(_) => "timeout",
            ApiError::InsufficientCredit(_) => "insufficient_credit",
            ApiError::Policy { code, .. } => code,
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::InsufficientStorage(_) => "insufficient_storage",
            ApiError::Internal(_) => "internal",
            ApiError::BadLogin => "bad_login",
            ApiError::Locked(_) => "locked",
            ApiError::PasswordChangeRequired => "password_change_required",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(code = self.code(), "api: {self}");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// What the API asks of the daemon. Every method takes the [`Caller`] (already authenticated;
/// `account` already checked against the caller's rights) and answers with a typed value or an
/// [`ApiError`]. The daemon implements it over the store, policy and bank; tests use in-memory
/// doubles.
///
/// Contract for implementors: `caller.account` is `None` only for an admin who named no account;
/// read routes then cover every account, and `submit` is never called so (the server refuses it).
/// `submit` normalises and validates each recipient itself and reports
/// the ones it refuses in `SendResponse::refused` rather than failing the request; the server has
/// already checked the request's shape (recipient count, text length, validity range).
pub trait Backend: Send + Sync + 'static {
    fn submit(
        &self,
        caller: Caller,
        request: SendRequest,
    ) -> impl Future<Output = Result<SendResponse, ApiError>> + Send;

    fn get(
        &self,
        caller: Caller,
        id: MessageId,
    ) -> impl Future<Output = Result<MessageView, ApiError>> + Send;

    /// `query.limit` is already clamped to 1..=[`types::MAX_PAGE`] and defaulted.
    fn list(
        &self,
        caller: Caller,
        query: ListQuery,
    ) -> impl Future<Output = Result<MessageList, ApiError>> + Send;

    /// Cancels a message that has not started sending; [`ApiError::Conflict`] otherwise.
    fn cancel(
        &self,
        caller: Caller,
        id: MessageId,
    ) -> impl Future<Output = Result<MessageView, ApiError>> + Send;

    /// Admin only (the server checks): sends again a message whose parts are `unknown` or `failed`.
    fn retry(
        &self,
        caller: Caller,
        id: MessageId,
    ) -> impl Future<Output = Result<MessageView, ApiError>> + Send;

    /// Admin only (the server checks): the operator's verdict on the message's `unknown` parts
    /// (sent on the air or not, from the modem's log, the recipient...): `sent` makes them
    /// `sent` and uses their credit; not sent makes them `failed` (with the message's parts not
    /// sent yet) and refunds it. [`ApiError::Conflict`] when the message has no `unknown` part.
    fn settle(
        &self,
        caller: Caller,
        id: MessageId,
        sent: bool,
    ) -> impl Future<Output = Result<MessageView, ApiError>> + Send;

    fn modems(
        &self,
        caller: Caller,
    ) -> impl Future<Output = Result<Vec<ModemView>, ApiError>> + Send;

    /// The carrier gateways and their links (issue 12); none by default.
    fn gateways(
        &self,
        caller: Caller,
    ) -> impl Future<Output = Result<Vec<types::GatewayView>, ApiError>> + Send {
        let _ = caller;
        async { Ok(Vec::new()) }
    }

    fn inbox(
        &self,
        caller: Caller,
        query: InboxQuery,
    ) -> impl Future<Output = Result<InboxList, ApiError>> + Send;

    fn health(&self, caller: Caller) -> impl Future<Output = Result<Health, ApiError>> + Send;

    /// Prometheus text exposition format (version 0.0.4).
    fn metrics(&self, caller: Caller) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// Admin operations (accounts, credit, review, blacklists); the server has checked the
    /// caller's rights. A backend without them answers 404.
    fn admin(
        &self,
        caller: Caller,
        op: admin::AdminOp,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send {
        async move {
            let _ = (caller, op);
            Err(ApiError::NotFound(
                "admin operations are not available here".into(),
            ))
        }
    }

    /// The live session of a token ([`SESSION_HEADER`], `POST /v1/sessions/verify`), its
    /// idle time slid; [`ApiError::Unauthorized`] for a bad, ended or expired one. A backend
    /// without users answers 401 to every token.
    fn session(
        &self,
        token: String,
    ) -> impl Future<Output = Result<users::Session, ApiError>> + Send {
        async move {
            let _ = token;
            Err(ApiError::Unauthorized(
                "sessions are not available here".into(),
            ))
        }
    }

    /// Users, logins and sessions (`api::users`); the server has checked who may ask. A
    /// backend without them answers 404.
    fn users(
        &self,
        caller: Caller,
        op: users::UserOp,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send {
        async move {
            let _ = (caller, op);
            Err(ApiError::NotFound("users are not available here".into()))
        }
    }

    /// The console's account-scoped reads and checks (`api::console`: quote, recipients,
    /// statistics, opt-outs, send log, webhooks, stuck events); the server has checked the
    /// caller's rights and the parameters. A backend without them answers 404.
    fn console(
        &self,
        caller: Caller,
        op: console::ConsoleOp,
    ) -> impl Future<Output = Result<console::ConsoleAnswer, ApiError>> + Send {
        async move {
            let _ = (caller, op);
            Err(ApiError::NotFound(
                "console operations are not available here".into(),
            ))
        }
    }

    /// The audit log's verify and export (`api::audit`, admins; the server has checked the
    /// caller and the parameters). A backend without them answers 404.
    fn audit(
        &self,
        caller: Caller,
        op: audit::AuditOp,
    ) -> impl Future<Output = Result<audit::AuditAnswer, ApiError>> + Send {
        async move {
            let _ = (caller, op);
            Err(ApiError::NotFound(
                "the audit log is not available here".into(),
            ))
        }
    }

    /// The account a peer acts for when the configuration maps it to none (accounts added at
    /// run time). Default: none.
    fn account_for_peer(
        &self,
        uid: u32,
        gids: Vec<u32>,
    ) -> impl Future<Output = Option<String>> + Send {
        async move {
            let _ = (uid, gids);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status() {
        assert_eq!(ApiError::BadJson("x".into()).status(), 400);
        assert_eq!(ApiError::Forbidden("x".into()).status(), 403);
        assert_eq!(ApiError::Conflict("x".into()).status(), 409);
        assert_eq!(ApiError::TooLarge("x".into()).status(), 413);
        assert_eq!(ApiError::InsufficientCredit("x".into()).status(), 402);
        let policy = ApiError::Policy {
            code: "content_prohibited".into(),
            message: "no".into(),
        };
        assert_eq!(policy.status(), 422);
        assert_eq!(policy.code(), "content_prohibited");
        assert_eq!(ApiError::ShuttingDown.status(), 503);
        assert_eq!(ApiError::Unauthorized("x".into()).status(), 401);
        let limited = ApiError::RateLimited {
            per_second: 2,
            retry_after_secs: 1,
        };
        assert_eq!(limited.status(), 429);
        let response = limited.into_response();
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
    }
}
