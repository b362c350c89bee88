//! The operator's staff pages of the console (issue 13, "what the operator's staff see"):
//! modems and gateways live (`live.rs`), the review queue with the matched words highlighted
//! (`reviews.rs`), accounts and their credit lots (`accounts.rs`), users (`users.rs`),
//! blacklists with reasons (`blacklist.rs`), and the audit log's verify and export
//! (`audit.rs`). Their words are in `words.rs` ([`words::TABLE`], read by `i18n.rs` after its
//! own), their menu lines in [`NAV`], their templates in [`TEMPLATES`] (`templates/staff_*`),
//! their one script `assets/staff.js` (`/static/staff.js`: the live tables' polling) and
//! their few styles `assets/staff.css` (`/static/staff.css`, linked from each staff page).
//!
//! Who sees what: a reviewer the live page and the review queue, an admin every staff page, a
//! customer none (403 page). That is the web's own first check ([`forbid`]); each call then
//! goes to the daemon with the user's session, and the daemon decides again (its
//! `session::REVIEWER_ROUTES` and admin checks), so a page offers exactly what the CLI and the
//! socket API allow that user, nothing more.
//!
//! Stable element ids (the browser tests drive these; keep them):
//! - menu: `nav-live`, `nav-reviews`, `nav-accounts`, `nav-users`, `nav-blacklist`, `nav-audit`;
//! - live: `live-tables`, `live-updated`, `modems-table` (body `modems-body`, rows
//!   `modem-<n>`, state cells `modem-state-<n>`), `gateways-table` (body `gateways-body`, rows
//!   `gateway-<name>`, parts/min cells `gateway-rate-<name>`);
//! - reviews: `reviews-table`, rows `review-<id>`, text `review-text-<id>` (matched words in
//!   `<mark class="hit">`), buttons `approve-<id>`, `reject-<id>`, `violation-<id>`;
//! - accounts: `accounts-table`, rows `account-<name>`; one account: `credit-available`,
//!   `lots` (rows `lot-<id>`), `credit-messages`, `credit-price`, `credit-expires`,
//!   `credit-add`, `account-users`;
//! - users: `users-table`, rows `user-<login>`, `new-login`, `new-account`, `new-role`,
//!   `new-password`, `user-add`, `shown-password`, `reset-<login>`, `disable-<login>`,
//!   `enable-<login>`;
//! - blacklist: `bl-number`, `bl-account`, `bl-reason`, `bl-add`, `bl-accounts`, `bl-numbers`,
//!   `bl-remove-<n>`;
//! - audit: `audit-verify`, `audit-result`, `audit-from`, `audit-to`, `audit-number`,
//!   `audit-account`, `audit-format`, `audit-export`.
//!
//! What must always hold: every staff handler checks [`forbid`] before calling the daemon; every
//! state change is a POST (through the console's CSRF layer) answered by a redirect to the page
//! (so a reload does not repeat it), except where a password made here must be shown once;
//! a password is never logged, kept, or put in a URL.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use serde_json::Value as Json;

use super::daemon::{AsUser, Role};
use super::{Console, Ctx, NavItem};
use crate::api::client::ClientError;

pub mod accounts;
pub mod audit;
pub mod blacklist;
pub mod live;
pub mod reviews;
pub mod users;
pub mod words;

/// Reviewers and admins.
pub const STAFF: &[Role] = &[Role::Reviewer, Role::Admin];
/// Admins only.
pub const ADMIN: &[Role] = &[Role::Admin];

/// The staff pages' menu lines (after the console's own).
pub const NAV: &[NavItem] = &[
    NavItem {
        id: "live",
        href: "/staff/live",
        word: "nav_live",
        roles: STAFF,
    },
    NavItem {
        id: "reviews",
        href: "/staff/reviews",
        word: "nav_reviews",
        roles: STAFF,
    },
    NavItem {
        id: "accounts",
        href: "/staff/accounts",
        word: "nav_accounts",
        roles: ADMIN,
    },
    NavItem {
        id: "users",
        href: "/staff/users",
        word: "nav_users",
        roles: ADMIN,
    },
    NavItem {
        id: "blacklist",
        href: "/staff/blacklist",
        word: "nav_blacklist",
        roles: ADMIN,
    },
    NavItem {
        id: "audit",
        href: "/staff/audit",
        word: "nav_audit",
        roles: ADMIN,
    },
];

/// The staff pages' templates, by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "staff_live.html",
        include_str!("../templates/staff_live.html"),
    ),
    (
        "staff_live_modems.html",
        include_str!("../templates/staff_live_modems.html"),
    ),
    (
        "staff_live_gateways.html",
        include_str!("../templates/staff_live_gateways.html"),
    ),
    (
        "staff_live_rows.html",
        include_str!("../templates/staff_live_rows.html"),
    ),
    (
        "staff_reviews.html",
        include_str!("../templates/staff_reviews.html"),
    ),
    (
        "staff_accounts.html",
        include_str!("../templates/staff_accounts.html"),
    ),
    (
        "staff_account.html",
        include_str!("../templates/staff_account.html"),
    ),
    (
        "staff_users.html",
        include_str!("../templates/staff_users.html"),
    ),
    (
        "staff_blacklist.html",
        include_str!("../templates/staff_blacklist.html"),
    ),
    (
        "staff_bl_remove.html",
        include_str!("../templates/staff_bl_remove.html"),
    ),
    (
        "staff_audit.html",
        include_str!("../templates/staff_audit.html"),
    ),
];

const JS: &str = include_str!("../assets/staff.js");
const CSS: &str = include_str!("../assets/staff.css");

/// The staff routes (merged into the console's router before its CSRF layer).
pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/staff/live", get(live::page))
        .route("/staff/live/rows", get(live::rows))
        .route("/staff/reviews", get(reviews::page))
        .route("/staff/reviews/{id}", post(reviews::decide))
        .route("/staff/accounts", get(accounts::list))
        .route("/staff/accounts/{name}", get(accounts::one))
        .route("/staff/accounts/{name}/credit", post(accounts::add_credit))
        .route("/staff/users", get(users::page).post(users::add))
        .route("/staff/users/{login}/password", post(users::reset))
        .route("/staff/users/{login}/disable", post(users::disable))
        .route("/staff/users/{login}/enable", post(users::enable))
        .route(
            "/staff/blacklist",
            get(blacklist::page).post(blacklist::add),
        )
        .route("/staff/blacklist/remove", post(blacklist::remove))
        .route("/staff/audit", get(audit::page))
        .route("/staff/audit/export", get(audit::export))
        .route("/static/staff.js", get(js))
        .route("/static/staff.css", get(css))
}

async fn css() -> Response {
    super::asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    super::asset("text/javascript; charset=utf-8", JS)
}

/// The web's own role check: the 403 page unless the user's role is in `roles` (`None`: go
/// on).
pub fn forbid(console: &Console, ctx: &Ctx, roles: &[Role]) -> Option<Response> {
    if roles.contains(&ctx.user.role) {
        return None;
    }
    tracing::info!(
        path = ctx.path.as_str(),
        role = ctx.user.role.as_str(),
        "console: a staff page refused"
    );
    Some(console.error(
        ctx.lang,
        Some(ctx),
        StatusCode::FORBIDDEN,
        ctx.lang.word("error_staff_only"),
    ))
}

/// One call as the user (without a body when `body` is None) whose answer may be empty
/// (204): the JSON, `null` when empty.
pub async fn act<B: Serialize>(
    user: &AsUser<'_>,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<Json, ClientError> {
    let (status, bytes) = match body {
        Some(b) => user.raw_json(method, path, b).await?,
        None => user.raw(method, path).await?,
    };
    if !status.is_success() {
        return Err(
            match serde_json::from_slice::<crate::api::types::ErrorBody>(&bytes) {
                Ok(b) => ClientError::Api {
                    status: status.as_u16(),
                    code: b.error.code,
                    message: b.error.message,
                },
                Err(_) => ClientError::Protocol(format!("HTTP {status}")),
            },
        );
    }
    if bytes.is_empty() {
        return Ok(Json::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Protocol(format!("cannot decode the answer: {e}")))
}

/// Back to `path` after a change, with `ok` naming the word of the notice the page shows.
pub fn done(path: &str, ok: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}ok={ok}")).into_response()
}

/// A page's query after a change (`?ok=...`, see [`done`] and [`notice`]).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Notice {
    #[serde(default)]
    pub ok: Option<String>,
}

/// The notice a page shows after a change: only the words listed here (the query is not
/// echoed).
pub fn notice(ctx: &Ctx, ok: Option<&str>) -> Option<&'static str> {
    const NOTICES: &[&str] = &[
        "ok_approve",
        "ok_reject",
        "ok_reject_as_violation",
        "ok_credit",
        "ok_blacklisted",
        "ok_lifted",
        "ok_unchanged",
        "ok_disabled",
        "ok_enabled",
    ];
    ok.filter(|k| NOTICES.contains(k)).map(|k| ctx.lang.word(k))
}

/// Every account's name (for the staff forms' account choices), as the daemon lists them.
pub async fn account_names(user: &AsUser<'_>) -> Result<Vec<String>, ClientError> {
    let accounts: Json = user.get("/v1/accounts").await?;
    Ok(accounts["accounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a["name"].as_str().map(str::to_owned))
        .collect())
}

/// A form's optional text: trimmed, `None` when blank.
pub fn filled(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests;
