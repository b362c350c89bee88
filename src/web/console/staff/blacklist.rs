//! Blacklists with their reasons: both lists (`GET /v1/blacklist`: blacklisted accounts, and
//! numbers globally or per account), adding (`POST /v1/blacklist`) and lifting
//! (`POST /v1/blacklist/remove`) — what `smsgate blacklist list|add|remove` do.
//!
//! What must always hold: admins only; every change carries a reason (the daemon refuses one
//! without, and the refusal is shown on the page); a number is sent as typed (the daemon
//! normalises it, as for the CLI).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::Form;
use minijinja::context;
use serde::Deserialize;
use serde_json::Value as Json;

use super::super::daemon::AsUser;
use super::super::{Console, Ctx};
use super::{account_names, act, done, filled, forbid, notice, Notice, ADMIN};
use crate::api::client::ClientError;

async fn blacklist_page(
    console: &Console,
    ctx: &Ctx,
    form_error: Option<String>,
    flash: Option<&str>,
) -> Response {
    let user = AsUser::new(&console.web, &ctx.token);
    let list: Json = match user.get("/v1/blacklist").await {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    let names = match account_names(&user).await {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    console.page(
        ctx,
        "staff_blacklist.html",
        context! {
            blocked_accounts => list["accounts"].clone(),
            numbers => list["numbers"].clone(),
            accounts => names,
            form_error => form_error,
            flash => flash,
        },
    )
}

/// `GET /staff/blacklist`.
pub async fn page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<Notice>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let flash = notice(&ctx, q.ok.as_deref());
    blacklist_page(&console, &ctx, None, flash).await
}

#[derive(Debug, Default, Deserialize)]
pub struct BlacklistForm {
    #[serde(default)]
    number: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    reason: String,
}

async fn change(console: &Console, ctx: &Ctx, form: BlacklistForm, remove: bool) -> Response {
    if let Some(r) = forbid(console, ctx, ADMIN) {
        return r;
    }
    let body = serde_json::json!({
        "number": filled(&form.number),
        "account": filled(&form.account),
        "reason": form.reason.trim(),
    });
    let path = if remove {
        "/v1/blacklist/remove"
    } else {
        "/v1/blacklist"
    };
    let user = AsUser::new(&console.web, &ctx.token);
    match act(&user, Method::POST, path, Some(&body)).await {
        Ok(v) => {
            let ok = match (v["changed"].as_bool(), remove) {
                (Some(false), _) => "ok_unchanged",
                (_, true) => "ok_lifted",
                (_, false) => "ok_blacklisted",
            };
            tracing::info!(remove, "console: blacklist changed");
            done("/staff/blacklist", ok)
        }
        Err(ClientError::Api {
            status: 400 | 404 | 422,
            message,
            ..
        }) => blacklist_page(console, ctx, Some(message), None).await,
        Err(e) => console.daemon_error(ctx, e),
    }
}

/// `POST /staff/blacklist`.
pub async fn add(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Form(form): Form<BlacklistForm>,
) -> Response {
    change(&console, &ctx, form, false).await
}

/// `POST /staff/blacklist/remove`.
pub async fn remove(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Form(form): Form<BlacklistForm>,
) -> Response {
    change(&console, &ctx, form, true).await
}
