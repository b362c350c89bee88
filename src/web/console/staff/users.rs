//! Users of the console: every user (`GET /v1/users`), adding one (`POST /v1/users`), setting
//! a new initial password (`POST /v1/users/{login}/password`), disabling and enabling
//! (`POST /v1/users/{login}/disable|enable`) — what `smsgate user add|list|passwd|disable|
//! enable` do.
//!
//! What must always hold: admins only; a password left empty is made here at random (the
//! [`random_password`](crate::api::users::random_password)) and shown once, in the answer
//! to the POST that set it (never in a URL, a log or a redirect); the daemon checks the
//! rules (length, login, account, role) and its refusal is shown on the page.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::Form;
use minijinja::context;
use serde::Deserialize;
use serde_json::Value as Json;

use super::super::daemon::{encode, AsUser};
use super::super::{Console, Ctx};
use super::{account_names, act, done, filled, forbid, notice, Notice, ADMIN};
use crate::api::client::ClientError;

/// A password shown once: for whom, and the password.
struct Shown {
    login: String,
    password: String,
}

/// The users page, with a password to show once or the daemon's refusal.
async fn users_page(
    console: &Console,
    ctx: &Ctx,
    shown: Option<Shown>,
    form_error: Option<String>,
    flash: Option<&str>,
) -> Response {
    let user = AsUser::new(&console.web, &ctx.token);
    let users: Json = match user.get("/v1/users").await {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    let names = match account_names(&user).await {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    console.page(
        ctx,
        "staff_users.html",
        context! {
            users => users["users"].clone(),
            accounts => names,
            shown => shown.map(|s| context! { login => s.login, password => s.password }),
            form_error => form_error,
            flash => flash,
        },
    )
}

/// `GET /staff/users`.
pub async fn page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<Notice>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let flash = notice(&ctx, q.ok.as_deref());
    users_page(&console, &ctx, None, None, flash).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// The daemon's refusal of a form, shown on the page; anything else is the error page.
async fn refused(console: &Console, ctx: &Ctx, e: ClientError) -> Response {
    match e {
        ClientError::Api {
            status: 400 | 404 | 409,
            message,
            ..
        } => users_page(console, ctx, None, Some(message), None).await,
        e => console.daemon_error(ctx, e),
    }
}

/// `POST /staff/users`: a new user with an initial password (typed, or random and shown).
pub async fn add(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Form(form): Form<NewUserForm>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let (password, made_here) = match filled(&form.password) {
        Some(p) => (p, false),
        None => (crate::api::users::random_password(), true),
    };
    let body = serde_json::json!({
        "login": form.login.trim(),
        "account": filled(&form.account),
        "role": form.role.trim(),
        "password": password,
    });
    let user = AsUser::new(&console.web, &ctx.token);
    match act(&user, Method::POST, "/v1/users", Some(&body)).await {
        Ok(_) => {
            tracing::info!("console: a user was added");
            let shown = made_here.then(|| Shown {
                login: form.login.trim().to_owned(),
                password,
            });
            users_page(&console, &ctx, shown, None, None).await
        }
        Err(e) => refused(&console, &ctx, e).await,
    }
}

#[derive(Deserialize, Default)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
}

/// `POST /staff/users/{login}/password`: a new initial password (random unless typed), shown
/// once; the user must change it, is unlocked, and its sessions end.
pub async fn reset(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(login): Path<String>,
    Form(form): Form<ResetForm>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let (password, made_here) = match filled(&form.password) {
        Some(p) => (p, false),
        None => (crate::api::users::random_password(), true),
    };
    let body = serde_json::json!({ "password": password });
    let user = AsUser::new(&console.web, &ctx.token);
    let path = format!("/v1/users/{}/password", encode(&login));
    match act(&user, Method::POST, &path, Some(&body)).await {
        Ok(_) => {
            let shown = made_here.then_some(Shown { login, password });
            users_page(&console, &ctx, shown, None, None).await
        }
        Err(e) => refused(&console, &ctx, e).await,
    }
}

async fn set_disabled(console: &Console, ctx: &Ctx, login: &str, disabled: bool) -> Response {
    if let Some(r) = forbid(console, ctx, ADMIN) {
        return r;
    }
    let verb = if disabled { "disable" } else { "enable" };
    let user = AsUser::new(&console.web, &ctx.token);
    let path = format!("/v1/users/{}/{verb}", encode(login));
    match act(&user, Method::POST, &path, None::<&()>).await {
        Ok(_) => done(
            "/staff/users",
            if disabled {
                "ok_disabled"
            } else {
                "ok_enabled"
            },
        ),
        Err(e) => refused(console, ctx, e).await,
    }
}

/// `POST /staff/users/{login}/disable`.
pub async fn disable(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(login): Path<String>,
) -> Response {
    set_disabled(&console, &ctx, &login, true).await
}

/// `POST /staff/users/{login}/enable`.
pub async fn enable(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(login): Path<String>,
) -> Response {
    set_disabled(&console, &ctx, &login, false).await
}
