//! Users, logins and sessions, the daemon's side (issue 13): passwords hashed and checked with
//! argon2id, session tokens made and resolved, and the user operations of `api::users` run on
//! the store (`store::users`, one transaction each, audited there).
//!
//! Passwords: argon2id with the crate's default parameters (19 MiB, 2 passes), a random salt,
//! kept in PHC form. A hash costs tens of milliseconds and 19 MiB, so it runs in the blocking
//! pool and at most [`HASHING_AT_ONCE`] run at once (a burst of logins waits instead of taking
//! the box's memory). A login for an unknown or disabled user still checks the password (against
//! a hash of a random password), so the answer's time does not tell which logins exist.
//! Tokens: 32 bytes from the operating system's random source in hex, kept as SHA-256 (as API
//! keys: a token cannot be guessed, so a slow hash would add only cost to every request).
//!
//! What must always hold: a password, a token or a hash is never logged, audited or answered
//! (but the new token, once, to the front end that logged the user in); an unknown login, a
//! wrong password and a disabled user get the same 401 `bad_login`; a locked user gets 423
//! `locked` saying until when, without its password being checked.

use std::net::IpAddr;

use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};

use super::backend::internal;
use super::Shared;
use crate::api::users::{
    CallerSession, LoginAnswer, LoginRequest, NewUserRequest, OwnPasswordRequest, Role, Session,
    UserInfo, UserList, UserOp, UserView, MIN_PASSWORD_CHARS,
};
use crate::api::{ApiError, Caller};
use crate::store::users::{
    LoginFailure, LoginOutcome, NewUser, SessionPolicy, SessionUser, UserRole, UserRow,
};
use crate::store::StoreError;

/// Password hashes computed at the same time, at most (argon2id takes 19 MiB each).
pub const HASHING_AT_ONCE: usize = 2;

static HASHING: Semaphore = Semaphore::const_new(HASHING_AT_ONCE);

/// The longest password accepted, in bytes (bounds the hashing work of one request).
const MAX_PASSWORD_BYTES: usize = 1024;

/// The longest login name, in characters.
const MAX_LOGIN_CHARS: usize = 64;

fn policy() -> SessionPolicy {
    SessionPolicy::default()
}

/// argon2id of `password` with a fresh random salt, in PHC form.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing: {e}")))?;
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        use rand::TryRngCore;
        let mut salt = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|e| ApiError::Internal(format!("no random source for a salt: {e}")))?;
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| ApiError::Internal(format!("password salt: {e}")))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("password hashing: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password hashing task: {e}")))?
}

/// Whether `password` matches `hash` (PHC form); a malformed hash matches nothing.
pub async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("password check: {e}")))?;
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password check task: {e}")))
}

/// A password is checked against this when there is no user's hash to check it against.
async fn decoy_hash() -> Result<String, ApiError> {
    static DECOY: OnceCell<String> = OnceCell::const_new();
    DECOY
        .get_or_try_init(|| async {
            let (token, _) = new_token()?;
            hash_password(token).await
        })
        .await
        .cloned()
}

/// A fresh session token and its SHA-256.
fn new_token() -> Result<(String, [u8; 32]), ApiError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no random source for a session: {e}")))?;
    let token = hex::encode(bytes);
    let hash = Sha256::digest(token.as_bytes()).into();
    Ok((token, hash))
}

/// The SHA-256 of a presented token; `None` when it cannot be one of ours (64 hex digits).
fn token_hash(token: &str) -> Option<[u8; 32]> {
    let token = token.trim();
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Sha256::digest(token.to_ascii_lowercase().as_bytes()).into())
}

/// Who a session's user is in the audit log: `user:LOGIN (ROLE, web)` (`account NAME` for a
/// customer). The store may prefix it (a review decision is `reviewer:` + the actor).
pub(super) fn session_actor(s: &CallerSession) -> String {
    match s.role {
        Role::Customer => format!(
            "user:{} (account {}, web)",
            s.login,
            s.account.as_deref().unwrap_or("-")
        ),
        role => format!("user:{} ({}, web)", s.login, role.as_str()),
    }
}

fn role(r: UserRole) -> Role {
    match r {
        UserRole::Customer => Role::Customer,
        UserRole::Reviewer => Role::Reviewer,
        UserRole::Admin => Role::Admin,
    }
}

fn store_role(r: Role) -> UserRole {
    match r {
        Role::Customer => UserRole::Customer,
        Role::Reviewer => UserRole::Reviewer,
        Role::Admin => UserRole::Admin,
    }
}

fn info(u: &SessionUser) -> UserInfo {
    UserInfo {
        login: u.login.clone(),
        account: u.account.clone(),
        role: role(u.role),
        must_change_password: u.must_change_password,
    }
}

fn view(u: &UserRow, now: Timestamp) -> UserView {
    UserView {
        login: u.login.clone(),
        account: u.account.clone(),
        role: role(u.role),
        disabled: u.disabled_at.is_some(),
        must_change_password: u.must_change_password,
        locked_until: u.locked_at(now),
        last_login: u.last_login_at,
    }
}

fn json<T: serde::Serialize>(t: &T) -> Result<Value, ApiError> {
    serde_json::to_value(t).map_err(|e| ApiError::Internal(format!("encoding an answer: {e}")))
}

fn locked(until: Timestamp) -> ApiError {
    ApiError::Locked(format!(
        "too many failed logins: this user is locked until {until}; an admin may reset the \
         password to unlock it sooner"
    ))
}

/// A login name: 1 to 64 letters, digits and `._-@` (it appears in URLs and audit records).
pub fn check_login(login: &str) -> Result<(), ApiError> {
    let n = login.chars().count();
    if n == 0 || n > MAX_LOGIN_CHARS {
        return Err(ApiError::InvalidField(format!(
            "login: 1 to {MAX_LOGIN_CHARS} characters"
        )));
    }
    if !login
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(ApiError::InvalidField(
            "login: letters, digits and . _ - @ only".into(),
        ));
    }
    if login.eq_ignore_ascii_case("me") {
        return Err(ApiError::InvalidField(
            "login: \"me\" is reserved (/v1/users/me)".into(),
        ));
    }
    Ok(())
}

/// A new password's shape (never echoed in the error).
pub fn check_password(field: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::InvalidField(format!(
            "{field}: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::InvalidField(format!(
            "{field}: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The live session of `token` ([`crate::api::Backend::session`]).
pub(super) async fn session(shared: &Shared, token: String) -> Result<Session, ApiError> {
    let refused = || {
        ApiError::Unauthorized(
            "this session is not valid (logged out, expired or unknown): log in again".into(),
        )
    };
    let hash = token_hash(&token).ok_or_else(refused)?;
    let found = shared
        .db
        .call(move |s| s.resolve_session(&hash, &policy(), Timestamp::now()))
        .await
        .map_err(internal)?;
    let u = found.ok_or_else(refused)?;
    Ok(Session {
        id: u.session_id,
        user_id: u.user_id,
        user: info(&u),
        expires_at: u.expires_at,
    })
}

/// One operation of `api::users` ([`crate::api::Backend::users`]); `actor` is the caller as the
/// audit log names it.
pub(super) async fn users(
    shared: &Shared,
    caller: Caller,
    op: UserOp,
    actor: String,
) -> Result<Value, ApiError> {
    let db = &shared.db;
    let now = Timestamp::now();
    match op {
        UserOp::Login(r) => login(shared, r, actor).await,
        UserOp::Logout => {
            let s = caller
                .session
                .ok_or(ApiError::Unauthorized("no session".into()))?;
            let login = s.login.clone();
            db.call(move |st| st.end_session(s.id, &actor, now))
                .await
                .map_err(internal)?;
            tracing::info!(login, "user logged out");
            Ok(Value::Null)
        }
        UserOp::ChangeOwnPassword(r) => {
            let s = caller
                .session
                .ok_or(ApiError::Unauthorized("no session".into()))?;
            change_own_password(shared, s, r, actor).await
        }
        UserOp::Add(r) => add(shared, r, actor).await,
        UserOp::List { account } => {
            let rows = db
                .call(move |s| {
                    let id = match &account {
                        Some(name) => match s.account_by_name(name)? {
                            Some(a) => Some(a.id),
                            None => {
                                return Ok(Err(ApiError::NotFound(format!("no account {name:?}"))))
                            }
                        },
                        None => None,
                    };
                    Ok(Ok(s.users(id)?))
                })
                .await
                .map_err(internal)??;
            json(&UserList {
                users: rows.iter().map(|u| view(u, now)).collect(),
            })
        }
        UserOp::ResetPassword { login, request } => {
            check_password("password", &request.password)?;
            let hash = hash_password(request.password).await?;
            let name = login.clone();
            let found = db
                .call(move |s| s.reset_password(&name, &hash, &actor, now))
                .await
                .map_err(internal)?;
            if !found {
                return Err(ApiError::NotFound(format!("no user {login:?}")));
            }
            tracing::info!(login, "user password reset by an admin");
            Ok(Value::Null)
        }
        UserOp::Disable { login } | UserOp::Enable { login } if login.is_empty() => {
            Err(ApiError::NotFound("no such user".into()))
        }
        UserOp::Disable { login } => set_disabled(shared, login, true, actor).await,
        UserOp::Enable { login } => set_disabled(shared, login, false, actor).await,
    }
}

async fn set_disabled(
    shared: &Shared,
    login: String,
    disabled: bool,
    actor: String,
) -> Result<Value, ApiError> {
    let name = login.clone();
    let changed = shared
        .db
        .call(move |s| s.set_user_disabled(&name, disabled, &actor, Timestamp::now()))
        .await
        .map_err(internal)?;
    match changed {
        None => Err(ApiError::NotFound(format!("no user {login:?}"))),
        Some(changed) => {
            if changed {
                tracing::info!(login, disabled, "user disabled or enabled");
            }
            Ok(Value::Null)
        }
    }
}

async fn add(shared: &Shared, r: NewUserRequest, actor: String) -> Result<Value, ApiError> {
    check_login(&r.login)?;
    check_password("password", &r.password)?;
    match (r.role, &r.account) {
        (Role::Customer, None) => {
            return Err(ApiError::InvalidField(
                "account: a customer user belongs to an account".into(),
            ))
        }
        (Role::Reviewer | Role::Admin, Some(_)) => {
            return Err(ApiError::InvalidField(
                "account: staff (reviewer, admin) belong to no account; leave it null".into(),
            ))
        }
        _ => {}
    }
    let hash = hash_password(r.password.clone()).await?;
    let now = Timestamp::now();
    let (login, account, role) = (r.login.clone(), r.account.clone(), store_role(r.role));
    let row = shared
        .db
        .call(move |s| {
            let account_id = match &account {
                Some(name) => match s.account_by_name(name)? {
                    Some(a) => Some(a.id),
                    None => return Ok(Err(ApiError::NotFound(format!("no account {name:?}")))),
                },
                None => None,
            };
            let user = NewUser {
                login: login.clone(),
                account_id,
                role,
                password_hash: hash,
            };
            if s.add_user(&user, &actor, now)?.is_none() {
                return Ok(Err(ApiError::Conflict(format!(
                    "a user {login:?} exists already (logins ignore case)"
                ))));
            }
            s.user_by_login(&login)?
                .ok_or_else(|| StoreError::Invalid("the new user is not there".into()))
                .map(Ok)
        })
        .await
        .map_err(internal)??;
    tracing::info!(login = row.login, role = r.role.as_str(), "user added");
    json(&view(&row, now))
}

/// The address a front end names, canonical; a malformed one is the front end's error.
fn client_ip(ip: Option<String>) -> Result<Option<String>, ApiError> {
    ip.filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<IpAddr>()
                .map(|ip| ip.to_canonical().to_string())
                .map_err(|_| {
                    ApiError::InvalidField(format!("client_ip: {s:?} is not an IP address"))
                })
        })
        .transpose()
}

async fn login(shared: &Shared, r: LoginRequest, actor: String) -> Result<Value, ApiError> {
    let ip = client_ip(r.client_ip)?;
    let policy = policy();
    let now = Timestamp::now();
    // Not even a candidate (a name too long to exist, an empty or huge password): refused
    // before any work, whoever it names.
    let login = r.login.trim().to_owned();
    if login.is_empty()
        || login.chars().count() > MAX_LOGIN_CHARS
        || r.password.is_empty()
        || r.password.len() > MAX_PASSWORD_BYTES
    {
        return Err(ApiError::BadLogin);
    }
    let name = login.clone();
    let user = shared
        .db
        .call(move |s| s.user_by_login(&name))
        .await
        .map_err(internal)?;
    let failure = match &user {
        None => {
            verify_password(r.password, decoy_hash().await?).await?;
            Some(LoginFailure::UnknownLogin)
        }
        Some(u) if u.disabled_at.is_some() => {
            verify_password(r.password, u.password_hash.clone()).await?;
            Some(LoginFailure::Disabled)
        }
        Some(u) if u.locked_at(now).is_some() => Some(LoginFailure::Locked),
        Some(u) => {
            if verify_password(r.password, u.password_hash.clone()).await? {
                None
            } else {
                Some(LoginFailure::WrongPassword)
            }
        }
    };
    let (user, ip2, actor2) = (user, ip.clone(), actor.clone());
    if let Some(failure) = failure {
        let name = login.clone();
        let until = shared
            .db
            .call(move |s| s.login_failed(&name, ip2.as_deref(), failure, &policy, &actor2, now))
            .await
            .map_err(internal)?;
        tracing::info!(
            login,
            client = ip.as_deref().unwrap_or("-"),
            "login refused"
        );
        return Err(match (failure, until) {
            (LoginFailure::WrongPassword | LoginFailure::Locked, Some(until)) => locked(until),
            _ => ApiError::BadLogin,
        });
    }
    let Some(user) = user else {
        return Err(ApiError::BadLogin);
    };
    let (token, hash) = new_token()?;
    let outcome = shared
        .db
        .call(move |s| s.login_succeeded(user.id, &hash, ip2.as_deref(), &policy, &actor2, now))
        .await
        .map_err(internal)?;
    match outcome {
        LoginOutcome::Session(u) => {
            tracing::info!(
                login = u.login,
                client = ip.as_deref().unwrap_or("-"),
                "user logged in"
            );
            json(&LoginAnswer {
                token,
                expires_at: u.expires_at,
                user: info(&u),
            })
        }
        LoginOutcome::Locked(until) => Err(locked(until)),
        LoginOutcome::Disabled | LoginOutcome::Gone => Err(ApiError::BadLogin),
    }
}

async fn change_own_password(
    shared: &Shared,
    s: CallerSession,
    r: OwnPasswordRequest,
    actor: String,
) -> Result<Value, ApiError> {
    check_password("new", &r.new)?;
    if r.new == r.current {
        return Err(ApiError::InvalidField(
            "new: must differ from the current password".into(),
        ));
    }
    let now = Timestamp::now();
    let user_id = s.user_id;
    let user = shared
        .db
        .call(move |st| st.user(user_id))
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::Unauthorized("this session's user is gone".into()))?;
    if let Some(until) = user.locked_at(now) {
        return Err(locked(until));
    }
    if r.current.len() > MAX_PASSWORD_BYTES
        || !verify_password(r.current, user.password_hash.clone()).await?
    {
        // Counted as a failed login: a session is not a way around the lockout.
        let (login, actor) = (user.login.clone(), actor.clone());
        let policy = policy();
        let until = shared
            .db
            .call(move |st| {
                st.login_failed(
                    &login,
                    None,
                    LoginFailure::WrongPassword,
                    &policy,
                    &actor,
                    now,
                )
            })
            .await
            .map_err(internal)?;
        return Err(match until {
            Some(until) => locked(until),
            None => ApiError::Forbidden("current: this is not the current password".into()),
        });
    }
    let hash = hash_password(r.new).await?;
    let session_id = s.id;
    let changed = shared
        .db
        .call(move |st| st.change_own_password(user_id, session_id, &hash, &actor, now))
        .await
        .map_err(internal)?;
    if !changed {
        return Err(ApiError::Unauthorized("this session's user is gone".into()));
    }
    tracing::info!(login = s.login, "user changed its password");
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_hashes_check_and_differ_by_salt() {
        let a = hash_password("correct horse".into()).await.unwrap();
        let b = hash_password("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password("correct horse".into(), a.clone())
            .await
            .unwrap());
        assert!(!verify_password("correct horsE".into(), a).await.unwrap());
        assert!(!verify_password("x".into(), "not a hash".into())
            .await
            .unwrap());
    }

    #[test]
    fn tokens_logins_and_passwords() {
        let (token, hash) = new_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(token_hash(&token), Some(hash));
        assert_eq!(token_hash(&token.to_ascii_uppercase()), Some(hash));
        assert_eq!(token_hash("abc"), None);
        assert_eq!(token_hash(&"g".repeat(64)), None);
        assert!(check_login("alice.w@shop-1").is_ok());
        assert!(check_login("张伟").is_ok());
        for bad in ["", "a b", "a/b", "me", "ME", &"x".repeat(65)] {
            assert!(check_login(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("new", "123456789").is_err());
        assert!(check_password("new", "1234567890").is_ok());
        let err = check_password("new", "short-pw").unwrap_err().to_string();
        assert!(!err.contains("short-pw"), "{err}");
        assert!(check_password("new", &"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        let ip = client_ip(Some("::ffff:192.0.2.1".into())).unwrap();
        assert_eq!(ip.as_deref(), Some("192.0.2.1"));
        assert!(client_ip(Some("nope".into())).is_err());
        assert_eq!(client_ip(None).unwrap(), None);
    }
}
