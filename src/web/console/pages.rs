//! The customer's pages other than send and messages: the dashboard (credit by lot with the
//! 30-day expiry warning, today and this month, delivery rate, the SVG chart), replies,
//! opt-outs, the send-log export, API keys and the webhook.
//!
//! What must always hold: every figure shown is the daemon's answer to the user's own session;
//! a new API key and a new webhook secret appear once, in the answer to the request that made
//! them, and are never stored or logged here; a dashboard whose statistics cannot be read
//! still shows the credit.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::Value as Json;

use super::chart;
use super::daemon::{encode, AsUser, Role};
use super::{Console, Ctx};
use crate::api::client::ClientError;

/// A lot expiring within this many days is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

fn num(v: &Json) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// `GET /`: the dashboard (staff: their home).
pub async fn dashboard(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    if ctx.user.role != Role::Customer {
        return console.page(&ctx, "staff_home.html", context! {});
    }
    let user = AsUser::new(&console.web, &ctx.token);
    let credit: Json = match user
        .get(&format!("/v1/accounts/{}/credit", encode(ctx.account())))
        .await
    {
        Ok(c) => c,
        Err(e) => return console.daemon_error(&ctx, e),
    };
    let now = jiff::Timestamp::now();
    let warn_before = now + jiff::SignedDuration::from_hours(24 * EXPIRY_WARNING_DAYS);
    let mut expiring_any = false;
    let lots: Vec<Value> = credit["lots"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let state = l["state"].as_str().unwrap_or("active");
            let expires = l["lot"]["expires_at"].as_str().unwrap_or_default();
            let expiring = state == "active"
                && num(&l["available"]) > 0
                && expires
                    .parse::<jiff::Timestamp>()
                    .is_ok_and(|t| t <= warn_before);
            expiring_any |= expiring;
            context! {
                id => l["lot"]["id"].as_i64().unwrap_or(0),
                quantity => num(&l["lot"]["quantity"]),
                available => num(&l["available"]),
                purchased => l["lot"]["purchased_at"].as_str().unwrap_or_default(),
                expires => expires,
                state => state,
                expiring => expiring,
            }
        })
        .collect();
    let stats: Option<Json> = match user.get::<Json>("/v1/stats?days=7").await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("console: stats: {e}");
            None
        }
    };
    let (today, month, rate, svg) = match &stats {
        Some(s) => {
            let hours: Vec<chart::Hour> =
                serde_json::from_value(s["hours"].clone()).unwrap_or_default();
            let w = ctx.lang;
            let svg = chart::svg(
                &hours,
                [
                    w.word("chart_sent"),
                    w.word("chart_delivered"),
                    w.word("chart_failed"),
                ],
                w.word("chart_title"),
            );
            let rate = s["delivery_rate"]
                .as_f64()
                .map(|r| format!("{:.1}%", r * 100.0));
            let tally = |k: &str| context! { messages => num(&s[k]["messages"]), parts => num(&s[k]["parts"]) };
            (Some(tally("today")), Some(tally("month")), rate, Some(svg))
        }
        None => (None, None, None, None),
    };
    console.page(
        &ctx,
        "dashboard.html",
        context! {
            available => num(&credit["available"]),
            lots => lots,
            expiring => expiring_any,
            today => today,
            month => month,
            rate => rate,
            chart => svg.map(Value::from_safe_string),
        },
    )
}

/// `GET /inbox`: the newest 200 replies (the daemon lists them newest first).
pub async fn inbox(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    let answer: Result<Json, _> = AsUser::new(&console.web, &ctx.token)
        .get("/v1/inbox?limit=200")
        .await;
    match answer {
        Ok(v) => console.page(
            &ctx,
            "inbox.html",
            context! { rows => v["messages"].clone() },
        ),
        Err(e) => console.daemon_error(&ctx, e),
    }
}

/// `GET /optouts`.
pub async fn optouts(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    let answer: Result<Json, _> = AsUser::new(&console.web, &ctx.token)
        .get("/v1/optouts")
        .await;
    match answer {
        Ok(v) => console.page(
            &ctx,
            "optouts.html",
            context! { rows => v["optouts"].clone() },
        ),
        Err(e) => console.daemon_error(&ctx, e),
    }
}

/// `GET /sendlog`: the export form (the last 30 days by default).
pub async fn sendlog(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(super::china())
        .date();
    let from = today
        .checked_sub(jiff::Span::new().days(30))
        .unwrap_or(today);
    console.page(
        &ctx,
        "sendlog.html",
        context! { from => from.to_string(), to => today.to_string() },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct Range {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A `YYYY-MM-DD` date, or nothing.
fn date(s: &str) -> Option<String> {
    s.trim()
        .parse::<jiff::civil::Date>()
        .ok()
        .map(|d| d.to_string())
}

/// The daemon's refusal in a raw answer, as [`ClientError::Api`].
fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<crate::api::types::ErrorBody>(body) {
        Ok(b) => ClientError::Api {
            status: status.as_u16(),
            code: b.error.code,
            message: b.error.message,
        },
        Err(_) => ClientError::Protocol(format!("HTTP {status}")),
    }
}

/// `GET /sendlog.csv?from=&to=`: the daemon's CSV of the account's own sends, as a download.
pub async fn sendlog_csv(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(r): Query<Range>,
) -> Response {
    let mut path = "/v1/sendlog.csv".to_owned();
    let mut sep = '?';
    for (k, v) in [("from", date(&r.from)), ("to", date(&r.to))] {
        if let Some(v) = v {
            path.push_str(&format!("{sep}{k}={v}"));
            sep = '&';
        }
    }
    match AsUser::new(&console.web, &ctx.token)
        .raw(Method::GET, &path)
        .await
    {
        Ok((status, body)) if status.is_success() => {
            let mut resp = (StatusCode::OK, body).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"sendlog.csv\""),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Ok((status, body)) => console.daemon_error(&ctx, api_error(status, &body)),
        Err(e) => console.daemon_error(&ctx, e),
    }
}

/// The keys page, with what the last action produced.
async fn keys_page(
    console: &Console,
    ctx: &Ctx,
    new_key: Option<Json>,
    flash: Option<&str>,
) -> Response {
    let path = format!("/v1/keys?account={}", encode(ctx.account()));
    let answer: Result<Json, _> = AsUser::new(&console.web, &ctx.token).get(&path).await;
    match answer {
        Ok(v) => console.page(
            ctx,
            "keys.html",
            context! { keys => v["keys"].clone(), new_key => new_key, flash => flash },
        ),
        Err(e) => console.daemon_error(ctx, e),
    }
}

/// `GET /keys`.
pub async fn keys(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    keys_page(&console, &ctx, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    name: String,
    #[serde(default)]
    ips: String,
}

/// `POST /keys`: a new key for the account, shown this once.
pub async fn key_create(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Form(form): Form<KeyForm>,
) -> Response {
    let allow: Vec<String> = form
        .ips
        .split(|c: char| c.is_whitespace() || c == ',' || c == '，')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let body = serde_json::json!({
        "account": ctx.account(),
        "name": form.name.trim(),
        "allow_ips": allow,
    });
    let answer: Result<Json, _> = AsUser::new(&console.web, &ctx.token)
        .post("/v1/keys", &body)
        .await;
    match answer {
        Ok(v) => keys_page(&console, &ctx, Some(v), None).await,
        Err(e) => console.daemon_error(&ctx, e),
    }
}

/// `POST /keys/{id}/revoke`.
pub async fn key_revoke(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return console.error(
            ctx.lang,
            Some(&ctx),
            StatusCode::NOT_FOUND,
            ctx.lang.word("error_not_found"),
        );
    };
    let answer: Result<Json, _> = AsUser::new(&console.web, &ctx.token)
        .call(Method::DELETE, &format!("/v1/keys/{id}"), None::<&()>)
        .await;
    match answer {
        Ok(_) => keys_page(&console, &ctx, None, Some(ctx.lang.word("key_revoked_ok"))).await,
        Err(e) => console.daemon_error(&ctx, e),
    }
}

fn webhook_path(ctx: &Ctx) -> String {
    format!("/v1/accounts/{}/webhook", encode(ctx.account()))
}

/// The webhook page, with what the last action produced.
async fn webhook_page(
    console: &Console,
    ctx: &Ctx,
    secret: Option<String>,
    flash: Option<&str>,
) -> Response {
    let user = AsUser::new(&console.web, &ctx.token);
    let hook: Json = match user.get(&webhook_path(ctx)).await {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    let stuck: Json = user.get("/v1/webhooks/stuck").await.unwrap_or_else(|e| {
        tracing::warn!("console: stuck webhook events: {e}");
        Json::Null
    });
    console.page(
        ctx,
        "webhook.html",
        context! {
            url => hook["url"].as_str().unwrap_or_default(),
            secret => secret,
            flash => flash,
            stuck => stuck["events"].clone(),
        },
    )
}

/// `GET /webhook`.
pub async fn webhook(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    webhook_page(&console, &ctx, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    url: String,
    /// "save" or "remove".
    #[serde(default)]
    action: String,
}

/// `POST /webhook`: sets the URL (a new secret, shown this once) or removes the webhook.
pub async fn webhook_save(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Form(form): Form<WebhookForm>,
) -> Response {
    let user = AsUser::new(&console.web, &ctx.token);
    if form.action == "remove" {
        // 204 without a body: read the status, not JSON.
        return match user.raw(Method::DELETE, &webhook_path(&ctx)).await {
            Ok((status, _)) if status.is_success() => {
                webhook_page(&console, &ctx, None, Some(ctx.lang.word("webhook_removed"))).await
            }
            Ok((status, body)) => console.daemon_error(&ctx, api_error(status, &body)),
            Err(e) => console.daemon_error(&ctx, e),
        };
    }
    let body = serde_json::json!({ "url": form.url.trim() });
    match user
        .call::<Json, _>(Method::PUT, &webhook_path(&ctx), Some(&body))
        .await
    {
        Ok(v) => {
            let secret = v["secret"].as_str().map(str::to_owned);
            webhook_page(&console, &ctx, secret, None).await
        }
        Err(e) => console.daemon_error(&ctx, e),
    }
}
