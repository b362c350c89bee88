//! What every handler extracts from a request, shared by the message routes (`server.rs`) and
//! the admin routes (`admin.rs`): the connection's [`Peer`] credentials and the [`caller`] they
//! resolve to, the handlers' [`ApiState`], JSON bodies with their refusals, and the refusal of
//! mutating requests during shutdown. Neither route file imports the other; both import this.
//!
//! What must always hold: the caller is resolved from the connection's peer credentials on every
//! request, never from anything the client says; a body is refused as 413 over
//! [`MAX_BODY_BYTES`], 400 `bad_json` when malformed and 400 `invalid_field` when well-formed with
//! a bad field; mutating requests are refused with 503 once shutdown has begun.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tokio::net::UnixListener;

use super::access::{AccessMap, PeerCredentials};
use super::listener::ApiListener;
use super::types::MAX_BODY_BYTES;
use super::users::{CallerSession, Role};
use super::{ApiError, Backend, Caller};

/// The peer credentials of one connection, read once when it is accepted, the account a
/// front end names for this request in [`FRONTEND_ACCOUNT_HEADER`] (set per request by
/// [`frontend_account`]; honoured only for the uids of the configuration's `frontends`), and
/// the session of a logged-in user the front end forwards (set per request by
/// `session::resolve` from [`SESSION_HEADER`](super::SESSION_HEADER), already checked).
#[derive(Debug, Clone)]
pub struct Peer(
    pub Option<PeerCredentials>,
    pub Option<String>,
    pub Option<CallerSession>,
);

/// The header in which a front end (`smsgate web`) names the account it acts for, percent-encoded
/// UTF-8 (account names may be Chinese).
pub const FRONTEND_ACCOUNT_HEADER: &str = "x-smsgate-account";

impl Connected<axum::serve::IncomingStream<'_, ApiListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, ApiListener>) -> Self {
        Peer(stream.io().peer(), None, None)
    }
}

/// For serving [`router`](super::router) on a plain `UnixListener` (tests, tools); the daemon
/// uses [`serve`](super::serve).
impl Connected<axum::serve::IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, UnixListener>) -> Self {
        Peer(
            stream.io().peer_cred().ok().map(|cred| PeerCredentials {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            }),
            None,
            None,
        )
    }
}

/// Shared by every handler.
pub struct ApiState<B> {
    pub(super) backend: Arc<B>,
    pub(super) access: Arc<AccessMap>,
    pub(super) shutting_down: Arc<AtomicBool>,
}

impl<B> ApiState<B> {
    pub(super) fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B> Clone for ApiState<B> {
    fn clone(&self) -> Self {
        ApiState {
            backend: Arc::clone(&self.backend),
            access: Arc::clone(&self.access),
            shutting_down: Arc::clone(&self.shutting_down),
        }
    }
}

/// The caller of this request, from the connection's credentials.
/// The configuration's map answers first; a peer it does not map to an account is looked up
/// in the backend's accounts (added at run time with `smsgate account add`).
pub(super) async fn caller<B: Backend>(
    state: &ApiState<B>,
    peer: Peer,
) -> Result<Caller, ApiError> {
    let Some(cred) = peer.0 else {
        return Err(ApiError::Forbidden(
            "cannot read the peer credentials of this connection".into(),
        ));
    };
    if let Some(session) = peer.2 {
        return session_caller(state, cred.uid, peer.1.is_some(), session);
    }
    if let Some(account) = peer.1 {
        // A front end acting for the account it authenticated: that account's rights, no more.
        if !state.access.frontends.contains(&cred.uid) {
            return Err(ApiError::Forbidden(format!(
                "uid {} is not a front end: only the uids in `frontends` of the smsgate \
                 configuration may name an account in {FRONTEND_ACCOUNT_HEADER}",
                cred.uid
            )));
        }
        if account.trim().is_empty() {
            return Err(ApiError::InvalidField(format!(
                "{FRONTEND_ACCOUNT_HEADER}: must not be empty"
            )));
        }
        return Ok(Caller {
            uid: cred.uid,
            account: Some(account),
            ..Caller::default()
        });
    }
    let gids = tokio::task::spawn_blocking(move || cred.groups())
        .await
        .unwrap_or_else(|_| vec![cred.gid]);
    let resolved = state.access.resolve(cred.uid, &gids);
    if matches!(&resolved, Ok(c) if c.account.is_some()) {
        return resolved;
    }
    match state.backend.account_for_peer(cred.uid, gids).await {
        Some(name) => Ok(Caller {
            uid: cred.uid,
            account: Some(name),
            admin: resolved.map(|c| c.admin).unwrap_or(false),
            ..Caller::default()
        }),
        None => resolved,
    }
}

/// The caller of a front end's request for a logged-in user: the user's role, never the front
/// end's own rights.
fn session_caller<B>(
    state: &ApiState<B>,
    uid: u32,
    names_account: bool,
    session: CallerSession,
) -> Result<Caller, ApiError> {
    if !state.access.frontends.contains(&uid) {
        return Err(ApiError::Forbidden(format!(
            "uid {uid} is not a front end: only the uids in `frontends` may present a session"
        )));
    }
    if names_account {
        return Err(ApiError::InvalidField(format!(
            "{FRONTEND_ACCOUNT_HEADER}: a request with a session acts for the session's user; \
             name no account"
        )));
    }
    let (account, admin, reviewer) = match session.role {
        Role::Customer => match &session.account {
            Some(a) => (Some(a.clone()), false, false),
            None => {
                return Err(ApiError::Forbidden(format!(
                    "user {:?} has no account",
                    session.login
                )))
            }
        },
        Role::Admin => (None, true, false),
        Role::Reviewer => (None, false, true),
    };
    Ok(Caller {
        uid,
        account,
        admin,
        reviewer,
        session: Some(session),
    })
}

/// Whether this connection's peer is a front end of the configuration (`frontends`).
pub(super) fn is_frontend<B>(state: &ApiState<B>, peer: &Peer) -> bool {
    peer.0
        .is_some_and(|cred| state.access.frontends.contains(&cred.uid))
}

/// Middleware: moves the front end's [`FRONTEND_ACCOUNT_HEADER`] into the request's [`Peer`],
/// where [`caller`] judges it. A value that is not percent-encoded UTF-8 is refused (400).
pub(super) async fn frontend_account(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(value) = req.headers().get(FRONTEND_ACCOUNT_HEADER) {
        let Some(account) = value.to_str().ok().and_then(percent_decode) else {
            return ApiError::InvalidField(format!(
                "{FRONTEND_ACCOUNT_HEADER}: not percent-encoded UTF-8"
            ))
            .into_response();
        };
        if let Some(axum::extract::ConnectInfo(peer)) =
            req.extensions_mut()
                .get_mut::<axum::extract::ConnectInfo<Peer>>()
        {
            peer.1 = Some(account);
        }
    }
    next.run(req).await
}

/// `%XX` escapes to bytes, then UTF-8; `None` for a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(super) fn refuse_if_shutting_down<B>(state: &ApiState<B>) -> Result<(), ApiError> {
    if state.shutting_down.load(Ordering::SeqCst) {
        Err(ApiError::ShuttingDown)
    } else {
        Ok(())
    }
}

/// Parses a JSON body, telling malformed JSON (400 bad_json) from a well-formed body with a bad
/// field (400 invalid_field), and an oversize body (413) from a broken connection.
pub(super) fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body is larger than the limit of {MAX_BODY_BYTES} bytes"
            ))
        } else {
            ApiError::BadJson(format!("cannot read the request body: {rejection}"))
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|err| {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => ApiError::InvalidField(format!("invalid request: {err}")),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::BadJson(format!("malformed JSON: {err}"))
            }
        }
    })
}

/// Admins only; others get 403 naming what they tried.
pub(super) fn admin_only(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "uid {}: {what} is for admins only",
            caller.uid
        )))
    }
}

/// A front end (not naming an account: it acts for none here) or an admin (key and session checks, webhook events).
pub(super) async fn frontend_or_admin<B: Backend>(
    state: &ApiState<B>,
    peer: Peer,
    what: &str,
) -> Result<Caller, ApiError> {
    if is_frontend(state, &peer) && peer.1.is_none() && peer.2.is_none() {
        let uid = peer.0.map(|p| p.uid).unwrap_or(u32::MAX);
        return Ok(Caller {
            uid,
            ..Caller::default()
        });
    }
    let c = caller(state, peer).await?;
    admin_only(&c, &format!("{what} (front ends and admins)"))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("shop").as_deref(), Some("shop"));
        assert_eq!(
            percent_decode("%E5%95%86%E6%88%B7").as_deref(),
            Some("商户")
        );
        assert_eq!(percent_decode("%E5%95"), None);
        assert_eq!(percent_decode("%G1"), None);
        assert_eq!(percent_decode("ab%4"), None);
        assert_eq!(percent_decode("%"), None);
    }
}
