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
use super::{ApiError, Backend, Caller};

/// The peer credentials of one connection, read once when it is accepted.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<PeerCredentials>);

impl Connected<axum::serve::IncomingStream<'_, ApiListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, ApiListener>) -> Self {
        Peer(stream.io().peer())
    }
}

/// For serving [`router`](super::router) on a plain `UnixListener` (tests, tools); the daemon
/// uses [`serve`](super::serve).
impl Connected<axum::serve::IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, UnixListener>) -> Self {
        Peer(stream.io().peer_cred().ok().map(|cred| PeerCredentials {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        }))
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
        }),
        None => resolved,
    }
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
