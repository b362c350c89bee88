//! Users, logins and sessions on the socket API (issue 13): the request and answer shapes and
//! the routes. A front end (`frontends`) logs a user in with `POST /v1/sessions` and then
//! forwards that user's requests with the session token in [`SESSION_HEADER`](super::SESSION_HEADER);
//! `session.rs` resolves the header to a [`Caller`] on every request. Passwords are checked and
//! hashed by the daemon (`Backend::users`), never here.
//!
//! Routes:
//! - `POST /v1/sessions` `{"login", "password", "client_ip"}` (front ends and admins): 200
//!   [`LoginAnswer`], 401 `bad_login` (unknown login, wrong password and disabled user alike),
//!   423 `locked`
//! - `POST /v1/sessions/verify` `{"token"}` (front ends and admins): 200 [`SessionView`] or 401
//! - `DELETE /v1/sessions/current` (a session): 204, the session ends
//! - `POST /v1/users/me/password` `{"current", "new"}` (a session): 204
//! - `POST /v1/users` [`NewUserRequest`] (admins): 201 [`UserView`]; `GET /v1/users[?account=]`
//!   (admins): [`UserList`]; `POST /v1/users/{login}/password` `{"password"}`,
//!   `POST /v1/users/{login}/disable`, `POST /v1/users/{login}/enable` (admins): 204
//!
//! What must always hold: no password, token or hash is ever printed by a `Debug` of these
//! types (they are redacted), nor answered but the new token, once, to the front end that
//! logged the user in; the login routes are for front ends and admins, the user routes for
//! admins (a uid in the admin group or an admin session), the own-password and logout routes
//! for a session only.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::extract::{
    admin_only, caller, frontend_or_admin, json_body, refuse_if_shutting_down, ApiState, Peer,
};
use super::{ApiError, Backend, Caller};

/// What a user may do: an account's `customer` (that account's rights), or the operator's staff:
/// `reviewer` (the review queue, and reading modems, gateways and health) or `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Reviewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "customer" => Some(Role::Customer),
            "reviewer" => Some(Role::Reviewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The user of a session, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub login: String,
    /// The customer's account; `null` for staff.
    pub account: Option<String>,
    pub role: Role,
    /// The session may only change the password (or log out) until it is changed.
    pub must_change_password: bool,
}

/// A live session as the backend resolves a token ([`Backend::session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub user: UserInfo,
    pub expires_at: Timestamp,
}

/// The session a [`Caller`] acts in (set from [`SESSION_HEADER`](super::SESSION_HEADER)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerSession {
    pub id: i64,
    pub user_id: i64,
    pub login: String,
    pub account: Option<String>,
    pub role: Role,
    pub must_change_password: bool,
}

impl From<Session> for CallerSession {
    fn from(s: Session) -> Self {
        CallerSession {
            id: s.id,
            user_id: s.user_id,
            login: s.user.login,
            account: s.user.account,
            role: s.user.role,
            must_change_password: s.user.must_change_password,
        }
    }
}

/// `POST /v1/sessions`
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
    /// The address the user connected to the front end from (audited).
    #[serde(default)]
    pub client_ip: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("client_ip", &self.client_ip)
            .finish()
    }
}

/// The answer of `POST /v1/sessions`: the token, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAnswer {
    pub token: String,
    pub expires_at: Timestamp,
    pub user: UserInfo,
}

impl std::fmt::Debug for LoginAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAnswer")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish()
    }
}

/// `POST /v1/sessions/verify`
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub token: String,
}

impl std::fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyRequest { token: <redacted> }")
    }
}

/// The answer of `POST /v1/sessions/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub expires_at: Timestamp,
    pub user: UserInfo,
}

/// `POST /v1/users/me/password`
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnPasswordRequest {
    pub current: String,
    pub new: String,
}

impl std::fmt::Debug for OwnPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnPasswordRequest { <redacted> }")
    }
}

/// `POST /v1/users`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub login: String,
    /// Required for a customer, `null` for staff.
    #[serde(default)]
    pub account: Option<String>,
    pub role: Role,
    /// The initial password (at least [`MIN_PASSWORD_CHARS`]); the user must change it.
    pub password: String,
}

/// Characters of a generated password: letters and digits that are not easily confused.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// A random initial password of 16 characters from [`ALPHABET`] (about 93 bits), for
/// `smsgate user add` and the staff pages when none is given; shown once, changed at first
/// login.
pub fn random_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl std::fmt::Debug for NewUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserRequest")
            .field("login", &self.login)
            .field("account", &self.account)
            .field("role", &self.role)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/users/{login}/password`
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub password: String,
}

impl std::fmt::Debug for ResetPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetPasswordRequest { password: <redacted> }")
    }
}

/// `?account=` of `GET /v1/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserListQuery {
    pub account: Option<String>,
}

/// One user of `GET /v1/users` (no password hash, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub login: String,
    pub account: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    pub locked_until: Option<Timestamp>,
    pub last_login: Option<Timestamp>,
}

/// The answer of `GET /v1/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// The shortest password accepted (initial, reset or own).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// One operation on users and sessions for [`Backend::users`] (the server has checked who may
/// ask; the backend checks the passwords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOp {
    /// Answers a [`LoginAnswer`].
    Login(LoginRequest),
    /// Ends the caller's session.
    Logout,
    ChangeOwnPassword(OwnPasswordRequest),
    /// Answers the new [`UserView`].
    Add(NewUserRequest),
    /// Answers a [`UserList`].
    List {
        account: Option<String>,
    },
    ResetPassword {
        login: String,
        request: ResetPasswordRequest,
    },
    Disable {
        login: String,
    },
    Enable {
        login: String,
    },
}

/// The user and session routes, merged by [`super::server::router`].
pub(super) fn routes<B: Backend>() -> Router<ApiState<B>> {
    Router::new()
        .route("/v1/sessions", post(login::<B>))
        .route("/v1/sessions/verify", post(verify::<B>))
        .route("/v1/sessions/current", axum::routing::delete(logout::<B>))
        .route("/v1/users", get(list::<B>).post(add::<B>))
        .route("/v1/users/me/password", post(own_password::<B>))
        .route("/v1/users/{login}/password", post(reset::<B>))
        .route("/v1/users/{login}/disable", post(disable::<B>))
        .route("/v1/users/{login}/enable", post(enable::<B>))
}

fn in_session(c: &Caller, what: &str) -> Result<(), ApiError> {
    if c.session.is_some() {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(format!(
            "{what} needs a session: the front end forwards the user's token in {}",
            super::SESSION_HEADER
        )))
    }
}

fn login_of(raw: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    raw.map(|UrlPath(n)| n)
        .map_err(|_| ApiError::NotFound("no such user".into()))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn login<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = frontend_or_admin(&state, peer, "logging users in").await?;
    refuse_if_shutting_down(&state)?;
    let r: LoginRequest = json_body(body)?;
    let v = state.backend().users(c, UserOp::Login(r)).await?;
    Ok(Json(v).into_response())
}

async fn verify<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    frontend_or_admin(&state, peer, "verifying sessions").await?;
    let r: VerifyRequest = json_body(body)?;
    let s = state.backend().session(r.token).await?;
    Ok(Json(SessionView {
        expires_at: s.expires_at,
        user: s.user,
    })
    .into_response())
}

async fn logout<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    in_session(&c, "logging out")?;
    state.backend().users(c, UserOp::Logout).await?;
    Ok(no_content())
}

async fn own_password<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    in_session(&c, "changing one's own password")?;
    let r: OwnPasswordRequest = json_body(body)?;
    state
        .backend()
        .users(c, UserOp::ChangeOwnPassword(r))
        .await?;
    Ok(no_content())
}

async fn add<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "adding users")?;
    let r: NewUserRequest = json_body(body)?;
    let v = state.backend().users(c, UserOp::Add(r)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<UserListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    admin_only(&c, "listing users")?;
    let Query(q) =
        q.map_err(|r| ApiError::InvalidField(format!("bad query string: {}", r.body_text())))?;
    let v = state
        .backend()
        .users(c, UserOp::List { account: q.account })
        .await?;
    Ok(Json(v).into_response())
}

async fn reset<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    login: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "resetting passwords")?;
    let login = login_of(login)?;
    let request: ResetPasswordRequest = json_body(body)?;
    state
        .backend()
        .users(c, UserOp::ResetPassword { login, request })
        .await?;
    Ok(no_content())
}

async fn disable<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    login: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "disabling users")?;
    let login = login_of(login)?;
    state.backend().users(c, UserOp::Disable { login }).await?;
    Ok(no_content())
}

async fn enable<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    login: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    admin_only(&c, "enabling users")?;
    let login = login_of(login)?;
    state.backend().users(c, UserOp::Enable { login }).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = super::random_password();
        assert_eq!(a.chars().count(), 16);
        assert!(a.bytes().all(|b| super::ALPHABET.contains(&b)), "{a}");
        assert_ne!(a, super::random_password());
    }

    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let login = LoginRequest {
            login: "alice".into(),
            password: "hunter2-secret".into(),
            client_ip: None,
        };
        let answer = LoginAnswer {
            token: "f00dfeed".into(),
            expires_at: Timestamp::UNIX_EPOCH,
            user: UserInfo {
                login: "alice".into(),
                account: None,
                role: Role::Admin,
                must_change_password: false,
            },
        };
        let op = UserOp::ResetPassword {
            login: "alice".into(),
            request: ResetPasswordRequest {
                password: "hunter2-secret".into(),
            },
        };
        let own = UserOp::ChangeOwnPassword(OwnPasswordRequest {
            current: "hunter2-secret".into(),
            new: "hunter2-secret".into(),
        });
        let text = format!(
            "{login:?} {answer:?} {op:?} {own:?} {:?}",
            VerifyRequest {
                token: "f00dfeed".into()
            }
        );
        assert!(text.contains("alice"), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("f00dfeed"),
            "{text}"
        );
        assert_eq!(
            serde_json::to_value(Role::Reviewer).unwrap(),
            serde_json::json!("reviewer")
        );
    }
}
