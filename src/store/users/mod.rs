//! Users of the web console and their sessions (tables `users` and `sessions`, migration 0011):
//! adding users, the outcome of a login attempt (a session, or a counted failure that may lock
//! the user), resolving a session token's hash on every request (idle and absolute expiry, the
//! sliding idle time), logout, password changes and resets, disabling and enabling. Each write is
//! one transaction with its audit record. The daemon hashes passwords and tokens and decides
//! what to ask; the numbers it applies are a [`SessionPolicy`].
//!
//! What must always hold: the store never sees a password or a token, only an argon2id hash of
//! the one and the SHA-256 of the other, and neither is ever written to an audit record; a login
//! attempt is audited (`login_ok`, `login_failed`, `login_locked`) with the login name and the
//! client address; `policy.max_failures` consecutive wrong passwords lock the user for
//! `policy.lock_for`, and a locked or disabled user gets no session even with the right
//! password; disabling a user, resetting its password or its own password change end its
//! (other) sessions in the same transaction; a session past its idle or absolute end is never
//! resolved (and is deleted when found).

use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::{ms, ts, ts_opt, Store, StoreError};
use crate::audit::{AuditEntry, AuditEvent};
use crate::store::audit::append;

/// What a user may do (see `api::users`): an account's customer, or the operator's staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRole {
    Customer,
    Reviewer,
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Customer => "customer",
            UserRole::Reviewer => "reviewer",
            UserRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<UserRole> {
        match s {
            "customer" => Some(UserRole::Customer),
            "reviewer" => Some(UserRole::Reviewer),
            "admin" => Some(UserRole::Admin),
            _ => None,
        }
    }
}

/// The numbers of logins and sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Consecutive wrong passwords that lock a user.
    pub max_failures: u32,
    pub lock_for: SignedDuration,
    /// A session unused this long ends (sliding).
    pub idle: SignedDuration,
    /// A session ends this long after the login, used or not.
    pub absolute: SignedDuration,
    /// The last use is written at most this often (one write per request would make every
    /// page view a write transaction); the idle timeout is that much less precise.
    pub touch_every: SignedDuration,
}

impl Default for SessionPolicy {
    /// Issue 13: locked after 5 failures for 15 minutes; 30 minutes idle, 12 hours at most.
    fn default() -> Self {
        SessionPolicy {
            max_failures: 5,
            lock_for: SignedDuration::from_mins(15),
            idle: SignedDuration::from_mins(30),
            absolute: SignedDuration::from_hours(12),
            touch_every: SignedDuration::from_secs(60),
        }
    }
}

/// A new user's row.
#[derive(Clone)]
pub struct NewUser {
    pub login: String,
    /// The account of a customer; `None` for staff.
    pub account_id: Option<i64>,
    pub role: UserRole,
    /// argon2id, PHC string form.
    pub password_hash: String,
}

/// Never prints the hash.
impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("login", &self.login)
            .field("account_id", &self.account_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// One user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub login: String,
    pub account_id: Option<i64>,
    pub account: Option<String>,
    pub role: UserRole,
    /// argon2id, PHC string form: for the daemon's check only, never shown.
    pub password_hash: String,
    pub must_change_password: bool,
    pub disabled_at: Option<Timestamp>,
    pub failed_logins: u32,
    pub locked_until: Option<Timestamp>,
    pub last_login_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Never prints the hash.
impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("login", &self.login)
            .field("account", &self.account)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .field("disabled_at", &self.disabled_at)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

impl UserRow {
    /// The end of a lock still in force at `now`.
    pub fn locked_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| *until > now)
    }
}

/// The user behind a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub session_id: i64,
    pub user_id: i64,
    pub login: String,
    pub account_id: Option<i64>,
    pub account: Option<String>,
    pub role: UserRole,
    pub must_change_password: bool,
    /// When the session ends unless used again (the idle end, or the absolute one if sooner).
    pub expires_at: Timestamp,
}

/// Why a login attempt failed, as the daemon found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    UnknownLogin,
    WrongPassword,
    Disabled,
    /// The user is locked: the password was not even checked.
    Locked,
}

/// What [`Store::login_succeeded`] found when it came to write the session: the password was
/// right, but the user may have changed meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Session(SessionUser),
    Disabled,
    Locked(Timestamp),
    /// The user was removed meanwhile.
    Gone,
}

const SELECT_USER: &str = "SELECT u.id, u.login, u.account_id, a.name, u.role, u.password_hash, \
     u.must_change_password, u.disabled_at, u.failed_logins, u.locked_until, u.last_login_at, \
     u.created_at FROM users u LEFT JOIN accounts a ON a.id = u.account_id";

fn role_of(s: String) -> rusqlite::Result<UserRole> {
    UserRole::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            format!("unknown user role {s:?}").into(),
        )
    })
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(0)?,
        login: row.get(1)?,
        account_id: row.get(2)?,
        account: row.get(3)?,
        role: role_of(row.get(4)?)?,
        password_hash: row.get(5)?,
        must_change_password: row.get(6)?,
        disabled_at: ts_opt(row.get(7)?),
        failed_logins: row.get::<_, i64>(8)?.clamp(0, i64::from(u32::MAX)) as u32,
        locked_until: ts_opt(row.get(9)?),
        last_login_at: ts_opt(row.get(10)?),
        created_at: ts(row.get(11)?),
    })
}

fn audit_err(e: crate::audit::AuditError) -> StoreError {
    StoreError::Contract(e.to_string())
}

fn audit(
    tx: &Transaction<'_>,
    event: &str,
    account_id: Option<i64>,
    outcome: String,
    actor: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut e = AuditEntry::new(AuditEvent::Other(event.into()), now, actor);
    e.account_id = account_id;
    e.outcome = outcome;
    append(tx, e).map_err(audit_err)?;
    Ok(())
}

fn user_in(tx: &Transaction<'_>, login: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(tx
        .query_row(
            &format!("{SELECT_USER} WHERE u.login = ?1"),
            [login],
            user_from_row,
        )
        .optional()?)
}

fn user_by_id_in(tx: &Transaction<'_>, id: i64) -> Result<Option<UserRow>, StoreError> {
    Ok(tx
        .query_row(
            &format!("{SELECT_USER} WHERE u.id = ?1"),
            [id],
            user_from_row,
        )
        .optional()?)
}

/// "from 203.0.113.9", or nothing when the front end named no address.
fn from_ip(client_ip: Option<&str>) -> String {
    client_ip
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default()
}

fn end_sessions_of(
    tx: &Transaction<'_>,
    user_id: i64,
    except: Option<i64>,
) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2)",
        params![user_id, except],
    )
}

impl Store {
    /// Stores a new user (who must change the password at first login), audited
    /// (`user_added`). `None` when the login is taken (case-insensitively).
    pub fn add_user(
        &mut self,
        user: &NewUser,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        self.transaction(|tx| {
            if user_in(tx, &user.login)?.is_some() {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO users (login, account_id, role, password_hash, must_change_password, \
                 created_at, password_changed_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
                params![
                    user.login,
                    user.account_id,
                    user.role.as_str(),
                    user.password_hash,
                    ms(now)
                ],
            )?;
            let id = tx.last_insert_rowid();
            audit(
                tx,
                "user_added",
                user.account_id,
                format!(
                    "user {:?} ({}) added; must change the password at first login",
                    user.login,
                    user.role.as_str()
                ),
                actor,
                now,
            )?;
            Ok::<_, StoreError>(Some(id))
        })
    }

    /// The user with this login (case-insensitive).
    pub fn user_by_login(&self, login: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("{SELECT_USER} WHERE u.login = ?1"),
                [login],
                user_from_row,
            )
            .optional()?)
    }

    pub fn user(&self, id: i64) -> Result<Option<UserRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("{SELECT_USER} WHERE u.id = ?1"),
                [id],
                user_from_row,
            )
            .optional()?)
    }

    /// Every user (of one account), by login.
    pub fn users(&self, account_id: Option<i64>) -> Result<Vec<UserRow>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "{SELECT_USER} WHERE ?1 IS NULL OR u.account_id = ?1 ORDER BY u.login"
        ))?;
        let rows = st.query_map([account_id], user_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The password was right: a new session with this token hash, unless the user was
    /// disabled or locked meanwhile. Resets the failure count, records the login, audits
    /// `login_ok`, and deletes every session past its end (of any user).
    #[allow(clippy::too_many_arguments)]
    pub fn login_succeeded(
        &mut self,
        user_id: i64,
        token_hash: &[u8; 32],
        client_ip: Option<&str>,
        policy: &SessionPolicy,
        actor: &str,
        now: Timestamp,
    ) -> Result<LoginOutcome, StoreError> {
        self.transaction(|tx| {
            let Some(user) = user_by_id_in(tx, user_id)? else {
                return Ok(LoginOutcome::Gone);
            };
            if user.disabled_at.is_some() {
                return Ok(LoginOutcome::Disabled);
            }
            if let Some(until) = user.locked_at(now) {
                return Ok(LoginOutcome::Locked(until));
            }
            tx.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2",
                params![ms(now), ms(now.saturating_sub(policy.idle).unwrap_or(now))],
            )?;
            let absolute = now.saturating_add(policy.absolute).unwrap_or(now);
            tx.execute(
                "INSERT INTO sessions (user_id, token_hash, client_ip, created_at, last_seen_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![
                    user.id,
                    token_hash.as_slice(),
                    client_ip,
                    ms(now),
                    ms(absolute)
                ],
            )?;
            let session_id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = ?2 \
                 WHERE id = ?1",
                params![user.id, ms(now)],
            )?;
            audit(
                tx,
                "login_ok",
                user.account_id,
                format!("login {:?}{}", user.login, from_ip(client_ip)),
                actor,
                now,
            )?;
            let idle_end = now.saturating_add(policy.idle).unwrap_or(now);
            Ok::<_, StoreError>(LoginOutcome::Session(SessionUser {
                session_id,
                user_id: user.id,
                login: user.login,
                account_id: user.account_id,
                account: user.account,
                role: user.role,
                must_change_password: user.must_change_password,
                expires_at: idle_end.min(absolute),
            }))
        })
    }

    /// A failed login attempt, audited (`login_failed`, with the login name as typed and the
    /// client address). A wrong password counts: the `max_failures`-th in a row locks the user
    /// for `lock_for` (audited `login_locked`). Answers the end of the lock in force after this
    /// attempt, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn login_failed(
        &mut self,
        login: &str,
        client_ip: Option<&str>,
        failure: LoginFailure,
        policy: &SessionPolicy,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.transaction(|tx| {
            let user = user_in(tx, login)?;
            let account_id = user.as_ref().and_then(|u| u.account_id);
            let attempt = format!("login {login:?}{}", from_ip(client_ip));
            let Some(user) = user else {
                audit(
                    tx,
                    "login_failed",
                    None,
                    format!("{attempt}: unknown login"),
                    actor,
                    now,
                )?;
                return Ok(None);
            };
            if let Some(until) = user.locked_at(now) {
                let why = format!("{attempt}: refused, locked until {until}");
                audit(tx, "login_failed", account_id, why, actor, now)?;
                return Ok(Some(until));
            }
            match failure {
                LoginFailure::WrongPassword => {}
                LoginFailure::Disabled => {
                    let why = format!("{attempt}: user disabled");
                    audit(tx, "login_failed", account_id, why, actor, now)?;
                    return Ok(None);
                }
                // Not locked any more (or never found so): nothing to count.
                LoginFailure::UnknownLogin | LoginFailure::Locked => {
                    let why = format!("{attempt}: refused");
                    audit(tx, "login_failed", account_id, why, actor, now)?;
                    return Ok(None);
                }
            }
            let failures = user.failed_logins.saturating_add(1);
            let why = format!(
                "{attempt}: wrong password ({failures} of {} in a row)",
                policy.max_failures
            );
            audit(tx, "login_failed", account_id, why, actor, now)?;
            if failures < policy.max_failures {
                tx.execute(
                    "UPDATE users SET failed_logins = ?2 WHERE id = ?1",
                    params![user.id, failures],
                )?;
                return Ok(None);
            }
            // As stored (ms), so the answer, the audit record and a listing say the same.
            let until = ts(ms(now.saturating_add(policy.lock_for).unwrap_or(now)));
            tx.execute(
                "UPDATE users SET failed_logins = 0, locked_until = ?2 WHERE id = ?1",
                params![user.id, ms(until)],
            )?;
            audit(
                tx,
                "login_locked",
                account_id,
                format!(
                    "user {:?} locked until {until} after {failures} wrong passwords{}",
                    user.login,
                    from_ip(client_ip)
                ),
                actor,
                now,
            )?;
            Ok::<_, StoreError>(Some(until))
        })
    }

    /// The user of the live session with this token hash; `None` for an unknown, ended,
    /// expired (idle or absolute) session or a disabled user. An expired session found here is
    /// deleted; a live one's last use is moved to `now` (at most every `touch_every`). Each
    /// write is one statement.
    pub fn resolve_session(
        &mut self,
        token_hash: &[u8; 32],
        policy: &SessionPolicy,
        now: Timestamp,
    ) -> Result<Option<SessionUser>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT s.id, s.last_seen_at, s.expires_at, u.id, u.login, u.account_id, a.name, \
                 u.role, u.must_change_password, u.disabled_at FROM sessions s \
                 JOIN users u ON u.id = s.user_id LEFT JOIN accounts a ON a.id = u.account_id \
                 WHERE s.token_hash = ?1",
                [token_hash.as_slice()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        ts(r.get(1)?),
                        ts(r.get(2)?),
                        SessionUser {
                            session_id: r.get(0)?,
                            user_id: r.get(3)?,
                            login: r.get(4)?,
                            account_id: r.get(5)?,
                            account: r.get(6)?,
                            role: role_of(r.get(7)?)?,
                            must_change_password: r.get(8)?,
                            expires_at: ts(r.get(2)?),
                        },
                        r.get::<_, Option<i64>>(9)?.is_some(),
                    ))
                },
            )
            .optional()?;
        let Some((id, last_seen, absolute, mut user, disabled)) = found else {
            return Ok(None);
        };
        let idle_end = last_seen.saturating_add(policy.idle).unwrap_or(last_seen);
        if disabled || now >= absolute || now >= idle_end {
            self.conn
                .execute("DELETE FROM sessions WHERE id = ?1", [id])?;
            return Ok(None);
        }
        let mut seen = last_seen;
        if now.duration_since(last_seen) >= policy.touch_every {
            self.conn.execute(
                "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2",
                params![id, ms(now)],
            )?;
            seen = now;
        }
        user.expires_at = seen
            .saturating_add(policy.idle)
            .unwrap_or(seen)
            .min(absolute);
        Ok(Some(user))
    }

    /// Logout: ends session `id`, audited (`logout`). `false` when it had ended already.
    pub fn end_session(
        &mut self,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transaction(|tx| {
            let user = tx
                .query_row(
                    "SELECT u.login, u.account_id FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id = ?1",
                    [id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
                )
                .optional()?;
            let Some((login, account_id)) = user else {
                return Ok(false);
            };
            tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
            audit(
                tx,
                "logout",
                account_id,
                format!("user {login:?} logged out"),
                actor,
                now,
            )?;
            Ok::<_, StoreError>(true)
        })
    }

    /// A user's own password change (the current one checked by the daemon): the new hash,
    /// no change required any more, every other session of the user ended; audited
    /// (`password_changed`). `false` when the user is gone.
    pub fn change_own_password(
        &mut self,
        user_id: i64,
        keep_session: i64,
        new_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transaction(|tx| {
            let Some(user) = user_by_id_in(tx, user_id)? else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE users SET password_hash = ?2, must_change_password = 0, \
                 password_changed_at = ?3 WHERE id = ?1",
                params![user_id, new_hash, ms(now)],
            )?;
            let ended = end_sessions_of(tx, user_id, Some(keep_session))?;
            audit(
                tx,
                "password_changed",
                user.account_id,
                format!(
                    "user {:?} changed its password; {ended} other session(s) ended",
                    user.login
                ),
                actor,
                now,
            )?;
            Ok::<_, StoreError>(true)
        })
    }

    /// An admin's reset: the new hash, to be changed at the next login, the user unlocked, all
    /// its sessions ended; audited (`user_password_reset`). `false` for an unknown login.
    pub fn reset_password(
        &mut self,
        login: &str,
        new_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transaction(|tx| {
            let Some(user) = user_in(tx, login)? else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE users SET password_hash = ?2, must_change_password = 1, \
                 failed_logins = 0, locked_until = NULL, password_changed_at = ?3 WHERE id = ?1",
                params![user.id, new_hash, ms(now)],
            )?;
            let ended = end_sessions_of(tx, user.id, None)?;
            audit(
                tx,
                "user_password_reset",
                user.account_id,
                format!(
                    "password of user {:?} reset (must change it at next login, unlocked); \
                     {ended} session(s) ended",
                    user.login
                ),
                actor,
                now,
            )?;
            Ok::<_, StoreError>(true)
        })
    }

    /// Disables (ending every session of the user) or enables a user, audited
    /// (`user_disabled`, `user_enabled`). `None`: no such login; `Some(false)`: it already was
    /// (nothing audited).
    pub fn set_user_disabled(
        &mut self,
        login: &str,
        disabled: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<bool>, StoreError> {
        self.transaction(|tx| {
            let Some(user) = user_in(tx, login)? else {
                return Ok(None);
            };
            if user.disabled_at.is_some() == disabled {
                if disabled {
                    // Nothing can have made one, but a disabled user has none, whatever happened.
                    end_sessions_of(tx, user.id, None)?;
                }
                return Ok(Some(false));
            }
            let (event, outcome) = if disabled {
                tx.execute(
                    "UPDATE users SET disabled_at = ?2 WHERE id = ?1",
                    params![user.id, ms(now)],
                )?;
                let ended = end_sessions_of(tx, user.id, None)?;
                (
                    "user_disabled",
                    format!("user {:?} disabled; {ended} session(s) ended", user.login),
                )
            } else {
                tx.execute(
                    "UPDATE users SET disabled_at = NULL WHERE id = ?1",
                    [user.id],
                )?;
                ("user_enabled", format!("user {:?} enabled", user.login))
            };
            audit(tx, event, user.account_id, outcome, actor, now)?;
            Ok::<_, StoreError>(Some(true))
        })
    }
}

#[cfg(test)]
mod tests;
