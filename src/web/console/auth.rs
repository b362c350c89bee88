//! Logging in and out, the first-login password change, and the language switch.
//!
//! What must always hold: a login attempt counts against its client address's rate
//! (`session::LoginLimiter`) before the daemon is asked; the same words answer an unknown
//! login, a wrong password and a disabled user (the daemon's `bad_login`); the session cookie
//! is set only from a token the daemon issued and is cleared on logout; the password never
//! appears in a log line or a page; after a login, only a local path is followed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;

use super::daemon::{self, AsUser};
use super::session::{self, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE};
use super::{lang_of, Console, Ctx};
use crate::api::client::ClientError;
use crate::api::types::ErrorBody;

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /login`: the form, with a fresh pre-login cookie for its CSRF token.
pub async fn login_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    login_form(&console, &headers, q.next.as_deref(), None, StatusCode::OK)
}

fn login_form(
    console: &Console,
    headers: &HeaderMap,
    next: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = lang_of(headers);
    // Keep the browser's pre-login cookie when it has one (two tabs), else a new one.
    let pre = session::cookie(headers, LOGIN_COOKIE)
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .unwrap_or_else(session::random_token);
    let mut r = console.render(
        lang,
        None,
        "login.html",
        context! {
            login_csrf => session::csrf_token(&pre),
            next => session::local_path(next),
            error => error,
        },
        status,
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_COOKIE, &pre, console.tls, None),
    );
    r
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`.
pub async fn login(
    State(console): State<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    let ip = peer.ip().to_canonical();
    let next = form.next.as_deref();
    if console.logins.take(ip, Instant::now()).is_err() {
        tracing::info!(client = %ip, "console: login rate exceeded");
        let msg = lang.word("login_too_many");
        return login_form(
            &console,
            &headers,
            next,
            Some(msg),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let login = form.login.trim();
    if login.is_empty() || login.len() > 128 || form.password.len() > 1024 {
        let msg = lang.word("login_bad");
        return login_form(
            &console,
            &headers,
            next,
            Some(msg),
            StatusCode::UNAUTHORIZED,
        );
    }
    match daemon::login(&console.web, login, &form.password, ip).await {
        Ok(s) => {
            tracing::info!(client = %ip, "console: login");
            let to = if s.user.must_change_password {
                "/password".to_owned()
            } else {
                session::local_path(next)
            };
            let mut r = Redirect::to(&to).into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                session::set_cookie(SESSION_COOKIE, &s.token, console.tls, None),
            );
            h.append(
                header::SET_COOKIE,
                session::set_cookie(LOGIN_COOKIE, "", console.tls, Some(0)),
            );
            r
        }
        Err(ClientError::Api { status: 423, .. }) => {
            let msg = lang.word("login_locked");
            login_form(&console, &headers, next, Some(msg), StatusCode::LOCKED)
        }
        Err(ClientError::Api { status: 401, .. }) => {
            let msg = lang.word("login_bad");
            login_form(
                &console,
                &headers,
                next,
                Some(msg),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => {
            tracing::warn!("console: login: {e}");
            let msg = lang.word("error_daemon");
            login_form(
                &console,
                &headers,
                next,
                Some(msg),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

/// `POST /logout`: ends the session in the daemon and clears the cookie.
pub async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(token) = session::cookie(&headers, SESSION_COOKIE) {
        let user = AsUser::new(&console.web, token);
        // Gone already or not: the cookie goes either way.
        let _ = user
            .raw(axum::http::Method::DELETE, "/v1/sessions/current")
            .await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", console.tls, Some(0)),
    );
    r
}

/// `GET /password`.
pub async fn password_page(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    console.page(
        &ctx,
        "password.html",
        context! { error => None::<String>, done => false },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    new2: String,
}

/// `POST /password`: `POST /v1/users/me/password` as the user (the daemon checks the rules
/// and ends the user's other sessions).
pub async fn password(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Form(form): Form<PasswordForm>,
) -> Response {
    let again = |error: String, status: StatusCode| {
        let mut r = console.page(
            &ctx,
            "password.html",
            context! { error => error, done => false },
        );
        *r.status_mut() = status;
        r
    };
    if form.new != form.new2 {
        return again(
            ctx.lang.word("password_mismatch").into(),
            StatusCode::BAD_REQUEST,
        );
    }
    let body = serde_json::json!({ "current": form.current, "new": form.new });
    let user = AsUser::new(&console.web, &ctx.token);
    let answer = user
        .raw_json(axum::http::Method::POST, "/v1/users/me/password", &body)
        .await;
    match answer {
        Ok((status, _)) if status.is_success() => {
            let mut ctx = ctx;
            ctx.user.must_change_password = false;
            console.page(
                &ctx,
                "password.html",
                context! { error => None::<String>, done => true },
            )
        }
        Ok((status, bytes)) => {
            if status == StatusCode::UNAUTHORIZED {
                return super::to_login("/password");
            }
            // A wrong current password in our words; the rules (length, not the old one) in
            // the daemon's, which states them.
            let message = if status == StatusCode::FORBIDDEN {
                ctx.lang.word("password_wrong_current").to_owned()
            } else {
                serde_json::from_slice::<ErrorBody>(&bytes)
                    .map(|e| e.error.message)
                    .unwrap_or_else(|_| ctx.lang.word("error_title").into())
            };
            again(message, StatusCode::BAD_REQUEST)
        }
        Err(e) => console.daemon_error(&ctx, e),
    }
}

#[derive(Deserialize)]
pub struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

/// `GET /lang?to=en&back=/path`: sets the `lang` cookie (a year) and goes back.
pub async fn switch_lang(
    State(console): State<Arc<Console>>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = if q.to.as_deref() == Some("en") {
        "en"
    } else {
        "zh"
    };
    let mut r = Redirect::to(&session::local_path(q.back.as_deref())).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LANG_COOKIE, lang, console.tls, Some(365 * 24 * 3600)),
    );
    r
}
