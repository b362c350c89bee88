//! The console routes of the API (issue 13): what the web console (`smsgate web`, as a front end
//! acting for a logged-in customer) and an account's own programs read and check, each scoped to
//! one account. The shapes are in [`super::types`]; what the daemon executes is a [`ConsoleOp`]
//! (see `Backend::console`).
//!
//! What must always hold: every route acts for the caller's own account, and only an admin may
//! name another (`account`, through [`act_for`]: 403 otherwise); an admin who names none gets 400
//! where the route needs one account; parameters out of range are 400 before the backend runs;
//! `POST /v1/webhooks/due/{id}/fail` is for front ends (and admins), like the acknowledgement.
//! This file uses the admin routes' webhook operation and front-end check (`admin.rs`); the
//! admin routes do not use this file.
//!
//! Routes:
//! - `POST /v1/quote` `{"text", "sender"?, "recipients"?, "account"?}`: the text as sent, its
//!   characters, encoding, parts and cost, by the code acceptance bills with
//! - `POST /v1/recipients/check` `{"numbers", "account"?}`: each number valid / invalid /
//!   duplicate / opted_out / blacklisted, as a send would judge it (at most 10,000)
//! - `GET /v1/stats?account=&days=7`: today, this month, the delivery rate, parts per hour
//! - `GET /v1/optouts?account=`: the account's opt-out list
//! - `GET /v1/sendlog.csv?account=&from=&to=`: the account's sends, one CSV row per part
//! - `GET /v1/accounts/{name}/webhook`, `PUT` `{"url"}` (a new secret in the answer), `DELETE`:
//!   the account's webhook (the network API's `/api/v1/webhook`)
//! - `GET /v1/webhooks/stuck?account=`: events not delivered after at least one attempt
//! - `POST /v1/webhooks/due/{id}/fail` `{"error"}`: one failed delivery attempt (front ends)

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::access::act_for;
use super::admin::AdminOp;
use super::extract::{
    caller, frontend_or_admin, json_body, refuse_if_shutting_down, ApiState, Peer,
};
use super::types::{
    AccountQuery, FailRequest, QuoteRequest, RecipientCheckRequest, SendLogQuery, StatsQuery,
    WebhookPut, MAX_RECIPIENTS, MAX_TEXT_CHARS,
};
use super::{ApiError, Backend, Caller};

/// Days of hourly statistics at most (`GET /v1/stats?days=`).
pub const MAX_STATS_DAYS: u32 = 31;
/// The longest range of one send-log export.
pub const MAX_SEND_LOG_DAYS: i64 = 366;

/// One console operation; the server has checked the caller's rights and the parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ConsoleOp {
    Quote {
        account: String,
        text: String,
        sender: Option<crate::config::SenderKind>,
        recipients: u32,
    },
    CheckRecipients {
        account: String,
        numbers: Vec<String>,
    },
    Stats {
        account: String,
        days: u32,
    },
    OptOuts {
        account: String,
    },
    /// The parts of the account's messages accepted in `[from, to)`.
    SendLog {
        account: String,
        from: Timestamp,
        to: Timestamp,
    },
    /// The webhooks of one account (or of all, admins).
    Webhooks {
        account: Option<String>,
    },
    StuckEvents {
        account: Option<String>,
    },
    /// A failed delivery attempt of outbox event `id`.
    WebhookFail {
        id: i64,
        error: String,
    },
}

/// What a console operation answers.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleAnswer {
    Json(serde_json::Value),
    /// `text/csv; charset=utf-8`, with a header row.
    Csv(String),
}

impl IntoResponse for ConsoleAnswer {
    fn into_response(self) -> Response {
        match self {
            ConsoleAnswer::Json(v) => Json(v).into_response(),
            ConsoleAnswer::Csv(text) => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"sendlog.csv\"",
                    ),
                ],
                text,
            )
                .into_response(),
        }
    }
}

/// The console routes, merged by [`super::server::router`].
pub(super) fn routes<B: Backend>() -> Router<ApiState<B>> {
    Router::new()
        .route("/v1/quote", post(quote::<B>))
        .route("/v1/recipients/check", post(check::<B>))
        .route("/v1/stats", get(stats::<B>))
        .route("/v1/optouts", get(optouts::<B>))
        .route("/v1/sendlog.csv", get(sendlog::<B>))
        .route(
            "/v1/accounts/{name}/webhook",
            get(webhook_get::<B>)
                .put(webhook_put::<B>)
                .delete(webhook_delete::<B>),
        )
        .route("/v1/webhooks/stuck", get(stuck::<B>))
        .route("/v1/webhooks/due/{id}/fail", post(fail::<B>))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|rejection| {
        ApiError::InvalidField(format!("bad query string: {}", rejection.body_text()))
    })
}

/// The caller acting for `requested` (its own account when None), and that one account.
pub(super) async fn one_account<B: Backend>(
    state: &ApiState<B>,
    peer: Peer,
    requested: Option<&str>,
) -> Result<(Caller, String), ApiError> {
    let c = act_for(caller(state, peer).await?, requested)?;
    match c.account.clone() {
        Some(account) => Ok((c, account)),
        None => Err(ApiError::InvalidField(
            "account: this caller has no account of its own; name one with \"account\"".into(),
        )),
    }
}

async fn run<B: Backend>(
    state: &ApiState<B>,
    caller: Caller,
    op: ConsoleOp,
) -> Result<Response, ApiError> {
    Ok(state.backend().console(caller, op).await?.into_response())
}

async fn quote<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let r: QuoteRequest = json_body(body)?;
    let (c, account) = one_account(&state, peer, r.account.as_deref()).await?;
    if r.text.trim().is_empty() {
        return Err(ApiError::InvalidField("text: must not be empty".into()));
    }
    let chars = r.text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(ApiError::InvalidField(format!(
            "text: at most {MAX_TEXT_CHARS} characters, got {chars}"
        )));
    }
    let recipients = r.recipients.unwrap_or(1);
    if recipients == 0 || recipients as usize > MAX_RECIPIENTS {
        return Err(ApiError::InvalidField(format!(
            "recipients: must be between 1 and {MAX_RECIPIENTS}, got {recipients}"
        )));
    }
    let op = ConsoleOp::Quote {
        account,
        text: r.text,
        sender: r.sender,
        recipients,
    };
    run(&state, c, op).await
}

async fn check<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let r: RecipientCheckRequest = json_body(body)?;
    let (c, account) = one_account(&state, peer, r.account.as_deref()).await?;
    if r.numbers.len() > MAX_RECIPIENTS {
        return Err(ApiError::InvalidField(format!(
            "numbers: at most {MAX_RECIPIENTS} per request, got {}",
            r.numbers.len()
        )));
    }
    let op = ConsoleOp::CheckRecipients {
        account,
        numbers: r.numbers,
    };
    run(&state, c, op).await
}

async fn stats<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let days = q.days.unwrap_or(7);
    if !(1..=MAX_STATS_DAYS).contains(&days) {
        return Err(ApiError::InvalidField(format!(
            "days: must be between 1 and {MAX_STATS_DAYS}, got {days}"
        )));
    }
    let (c, account) = one_account(&state, peer, q.account.as_deref()).await?;
    run(&state, c, ConsoleOp::Stats { account, days }).await
}

async fn optouts<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let (c, account) = one_account(&state, peer, q.account.as_deref()).await?;
    run(&state, c, ConsoleOp::OptOuts { account }).await
}

/// A bound of the send log: an RFC 3339 instant, or a date (its start in the daemon's time
/// zone; with `end`, the start of the next day, so the date is included whole).
pub fn parse_bound(field: &str, value: &str, end: bool) -> Result<Timestamp, ApiError> {
    let value = value.trim();
    if let Ok(t) = value.parse::<Timestamp>() {
        return Ok(t);
    }
    let bad = || {
        ApiError::InvalidField(format!(
            "{field}: expected an RFC 3339 time (2026-03-01T08:00:00+08:00) or a date \
             (2026-03-01), got {value:?}"
        ))
    };
    // Only the plain date form: jiff's civil parser would also take a date-time without offset.
    if value.len() != 10 {
        return Err(bad());
    }
    let date: jiff::civil::Date = value.parse().map_err(|_| bad())?;
    let date = if end {
        date.tomorrow().map_err(|_| bad())?
    } else {
        date
    };
    date.to_zoned_datetime(jiff::tz::TimeZone::system())
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

/// `[from, to)` of a send-log query: default the 30 days up to now; at most
/// [`MAX_SEND_LOG_DAYS`] long; `from` before `to`.
pub fn send_log_range(
    q: &SendLogQuery,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let to = match &q.to {
        Some(v) => parse_bound("to", v, true)?,
        None => now,
    };
    let from = match &q.from {
        Some(v) => parse_bound("from", v, false)?,
        None => to
            .checked_sub(jiff::SignedDuration::from_hours(30 * 24))
            .unwrap_or(Timestamp::MIN),
    };
    if from >= to {
        return Err(ApiError::InvalidField(format!(
            "from: {from} is not before to {to}"
        )));
    }
    if to.duration_since(from) > jiff::SignedDuration::from_hours(MAX_SEND_LOG_DAYS * 24) {
        return Err(ApiError::InvalidField(format!(
            "from, to: at most {MAX_SEND_LOG_DAYS} days in one export"
        )));
    }
    Ok((from, to))
}

async fn sendlog<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<SendLogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let (from, to) = send_log_range(&q, Timestamp::now())?;
    let (c, account) = one_account(&state, peer, q.account.as_deref()).await?;
    run(&state, c, ConsoleOp::SendLog { account, from, to }).await
}

fn name_of(raw: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    raw.map(|UrlPath(n)| n)
        .map_err(|_| ApiError::NotFound("no such account".into()))
}

async fn webhook_get<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(name)?;
    let (c, account) = one_account(&state, peer, Some(&name)).await?;
    let v = state
        .backend()
        .console(
            c,
            ConsoleOp::Webhooks {
                account: Some(account.clone()),
            },
        )
        .await?;
    // One account's webhook, not a list: `url` null when it has none.
    let item = match v {
        ConsoleAnswer::Json(v) => v["webhooks"]
            .as_array()
            .and_then(|list| list.first().cloned())
            .unwrap_or_else(|| serde_json::json!({"account": account, "url": null})),
        ConsoleAnswer::Csv(_) => {
            return Err(ApiError::Internal("webhook: a CSV answer".into()));
        }
    };
    Ok(Json(item).into_response())
}

async fn webhook_put<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    name: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(name)?;
    refuse_if_shutting_down(&state)?;
    let r: WebhookPut = json_body(body)?;
    let (c, account) = one_account(&state, peer, Some(&name)).await?;
    if r.url.trim().is_empty() {
        return Err(ApiError::InvalidField(
            "url: must not be empty (DELETE removes the webhook)".into(),
        ));
    }
    let op = AdminOp::WebhookSet {
        account,
        url: Some(r.url),
    };
    Ok(Json(state.backend().admin(c, op).await?).into_response())
}

async fn webhook_delete<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(name)?;
    refuse_if_shutting_down(&state)?;
    let (c, account) = one_account(&state, peer, Some(&name)).await?;
    let op = AdminOp::WebhookSet { account, url: None };
    Ok(Json(state.backend().admin(c, op).await?).into_response())
}

async fn stuck<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let c = act_for(caller(&state, peer).await?, q.account.as_deref())?;
    let account = c.account.clone();
    run(&state, c, ConsoleOp::StuckEvents { account }).await
}

async fn fail<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = frontend_or_admin(&state, peer, "reporting webhook attempts").await?;
    let id = id
        .ok()
        .and_then(|UrlPath(raw)| raw.parse::<i64>().ok())
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::NotFound("no webhook event with such an id".into()))?;
    let r: FailRequest = json_body(body)?;
    if r.error.trim().is_empty() {
        return Err(ApiError::InvalidField(
            "error: say why the attempt failed".into(),
        ));
    }
    run(&state, c, ConsoleOp::WebhookFail { id, error: r.error }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_log_bounds() {
        let now: Timestamp = "2026-03-10T00:00:00Z".parse().unwrap();
        let q = |from: Option<&str>, to: Option<&str>| SendLogQuery {
            account: None,
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        };
        let (from, to) = send_log_range(&q(None, None), now).unwrap();
        assert_eq!(to, now);
        assert_eq!(to.duration_since(from).as_hours(), 30 * 24);
        let (from, to) = send_log_range(
            &q(
                Some("2026-03-01T00:00:00Z"),
                Some("2026-03-02T12:00:00+08:00"),
            ),
            now,
        )
        .unwrap();
        assert_eq!(from, "2026-03-01T00:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(to, "2026-03-02T04:00:00Z".parse::<Timestamp>().unwrap());
        // A `to` date includes its whole day.
        let (from, to) = send_log_range(&q(Some("2026-03-01"), Some("2026-03-01")), now).unwrap();
        assert_eq!(to.duration_since(from).as_hours(), 24);
        for (f, t) in [
            (Some("yesterday"), None),
            (Some("2026-03-01T00:00:00"), None),
            (Some("2026-13-01"), None),
            (Some("2026-03-02"), Some("2026-03-01")),
            (Some("2020-01-01"), Some("2026-01-01")),
        ] {
            let e = send_log_range(&q(f, t), now).unwrap_err();
            assert_eq!(e.status(), 400, "{f:?} {t:?}: {e}");
        }
    }
}
