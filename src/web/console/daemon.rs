//! The console's calls to the daemon: logging in and checking a session as the front end, and
//! every other call as the logged-in user (the `x-smsgate-session` header), so the daemon, not
//! the web process, decides what the user may see and do.
//!
//! What must always hold: no call for a page is made without the user's session (the daemon
//! scopes it to the user's account or role); each call holds one of the web process's
//! [`super::super::DAEMON_CALLS`] slots; the token is never logged.

use axum::http::{Method, StatusCode};
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::Web;
use crate::api::client::{ApiClient, ClientError};

/// A user's role as the daemon names it (the daemon's own type).
pub use crate::api::users::Role;

/// The user a session belongs to (`"user"` of `POST /v1/sessions[/verify]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub login: String,
    #[serde(default)]
    pub account: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub must_change_password: bool,
}

/// `POST /v1/sessions`'s answer.
#[derive(Debug, Clone, Deserialize)]
pub struct NewSession {
    pub token: String,
    pub user: SessionUser,
}

#[derive(Debug, Clone, Deserialize)]
struct Verified {
    user: SessionUser,
}

/// Logs `login` in for a client at `client_ip` (the daemon checks the password and locks
/// after repeated failures).
pub async fn login(
    web: &Web,
    login: &str,
    password: &str,
    client_ip: std::net::IpAddr,
) -> Result<NewSession, ClientError> {
    let body = serde_json::json!({
        "login": login,
        "password": password,
        "client_ip": client_ip.to_string(),
    });
    let _permit = web.permit().await;
    web.client
        .call(Method::POST, "/v1/sessions", Some(&body))
        .await
}

/// Who `token` belongs to (401 from the daemon when it is unknown or expired).
pub async fn verify(web: &Web, token: &str) -> Result<SessionUser, ClientError> {
    let body = serde_json::json!({ "token": token });
    let _permit = web.permit().await;
    let v: Verified = web
        .client
        .call(Method::POST, "/v1/sessions/verify", Some(&body))
        .await?;
    Ok(v.user)
}

/// The daemon client acting with a user's session.
fn session_client(client: &ApiClient, token: &str) -> ApiClient {
    client.with_session(token)
}

/// Calls to the daemon as one logged-in user.
#[derive(Clone)]
pub struct AsUser<'w> {
    web: &'w Web,
    client: ApiClient,
}

impl<'w> AsUser<'w> {
    pub fn new(web: &'w Web, token: &str) -> AsUser<'w> {
        AsUser {
            web,
            client: session_client(&web.client, token),
        }
    }

    /// One call with an optional JSON body; a 2xx answer decoded as `T`.
    pub async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let _permit = self.web.permit().await;
        self.client.call(method, path, body).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// One call whose answer is not JSON (the send-log CSV): the status and the body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let _permit = self.web.permit().await;
        self.client.raw(method, path, Vec::new()).await
    }

    /// One call with a JSON body whose answer the caller reads whole (status and body), for
    /// pages that show the daemon's refusal in place.
    pub async fn raw_json<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        let _permit = self.web.permit().await;
        self.client.raw(method, path, bytes).await
    }
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
