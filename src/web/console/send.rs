//! The send page and the JSON calls its script makes: the recipients check (typed numbers or
//! an uploaded CSV/XLSX) that fills the preview, the live quote of the text as it will be
//! sent, and the submission of one chunk of a batch (the script sends chunks in turn and moves
//! the progress bar).
//!
//! What must always hold: the preview's verdicts are the daemon's (`POST /v1/recipients/check`)
//! and the counter's figures are the daemon's (`POST /v1/quote`, the billing code path), never
//! computed here; a submission is one `POST /v1/messages` of at most `MAX_RECIPIENTS` numbers
//! as the user; every answer to the script is JSON, errors in the socket API's shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;

use super::daemon::AsUser;
use super::{upload, Console, Ctx};
use crate::api::client::ClientError;
use crate::api::types::{ErrorBody, ErrorDetail, SendRequest, MAX_RECIPIENTS};

/// Validity choices of the form (empty: the configured default).
pub const VALIDITIES: &[&str] = &["", "1h", "6h", "24h", "48h", "72h"];

/// `GET /send`.
pub async fn page(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    console.page(
        &ctx,
        "send.html",
        context! {
            validities => VALIDITIES,
            chunk => CHUNK,
        },
    )
}

/// Numbers per submission request of the script (progress moves per chunk).
pub const CHUNK: usize = 500;

/// A JSON error for the script.
fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.into(),
            message: message.into(),
        },
    };
    (status, Json(body)).into_response()
}

/// The daemon's refusal passed on to the script as is; unreachable is 503.
fn json_client_error(e: ClientError) -> Response {
    match e {
        ClientError::Api {
            status,
            code,
            message,
        } => json_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            &code,
            message,
        ),
        other => {
            tracing::warn!("console: {other}");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "smsgate is not reachable at the moment; try again later",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CheckRequest {
    #[serde(default)]
    numbers: Option<Vec<String>>,
    #[serde(default)]
    typed: Option<String>,
}

/// One row of the preview: the daemon's verdict, and the row's own text from a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewRow {
    pub input: String,
    #[serde(default)]
    pub number: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckAnswer {
    rows: Vec<PreviewRow>,
}

/// The preview: rows and counts by status.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub rows: Vec<PreviewRow>,
    pub counts: super::Counts,
    pub total: usize,
}

async fn preview(
    console: &Console,
    ctx: &Ctx,
    inputs: Vec<String>,
    texts: Vec<Option<String>>,
) -> Result<Preview, Response> {
    if inputs.is_empty() {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            ctx.lang.word("no_valid"),
        ));
    }
    if inputs.len() > upload::MAX_ROWS {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("at most {} numbers at once", upload::MAX_ROWS),
        ));
    }
    let body = serde_json::json!({ "numbers": inputs });
    let answer: CheckAnswer = AsUser::new(&console.web, &ctx.token)
        .post("/v1/recipients/check", &body)
        .await
        .map_err(json_client_error)?;
    let mut rows = answer.rows;
    for (row, text) in rows.iter_mut().zip(texts) {
        row.text = text;
    }
    let mut counts = super::Counts::new();
    for s in ["valid", "invalid", "duplicate", "opted_out", "blacklisted"] {
        counts.insert(s.into(), 0);
    }
    for r in &rows {
        *counts.entry(r.status.clone()).or_default() += 1;
    }
    Ok(Preview {
        total: rows.len(),
        rows,
        counts,
    })
}

/// `POST /send/check` `{"typed": "..."}` or `{"numbers": [...]}`: the preview of typed numbers.
pub async fn check(State(console): State<Arc<Console>>, ctx: Ctx, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<CheckRequest>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "expected {\"typed\": TEXT}",
        );
    };
    let inputs = match (req.numbers, req.typed) {
        (Some(n), _) => n,
        (None, Some(t)) => upload::split_numbers(&t),
        (None, None) => Vec::new(),
    };
    let texts = vec![None; inputs.len()];
    match preview(&console, &ctx, inputs, texts).await {
        Ok(p) => Json(p).into_response(),
        Err(r) => r,
    }
}

/// `POST /send/upload` (the file's bytes as the body): the preview of a CSV/XLSX file.
pub async fn upload(State(console): State<Arc<Console>>, ctx: Ctx, body: Bytes) -> Response {
    let rows = match tokio::task::spawn_blocking(move || upload::read(&body)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            let msg = format!("{}: {e}", ctx.lang.word("file_unreadable"));
            return json_error(StatusCode::BAD_REQUEST, "unreadable_file", msg);
        }
        Err(e) => {
            tracing::error!("console: reading an upload: {e}");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "cannot read the file",
            );
        }
    };
    let (inputs, texts) = rows.into_iter().map(|r| (r.input, r.text)).unzip();
    match preview(&console, &ctx, inputs, texts).await {
        Ok(p) => Json(p).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub struct QuoteRequest {
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sender: Option<String>,
    /// Recipients of the send (the cost is parts x recipients), at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipients: Option<u32>,
}

/// `POST /send/quote` `{"text", "sender"?, "recipients"?}`: the daemon's quote, passed on.
pub async fn quote(State(console): State<Arc<Console>>, ctx: Ctx, body: Bytes) -> Response {
    let Ok(mut req) = serde_json::from_slice::<QuoteRequest>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "expected {\"text\": TEXT}",
        );
    };
    req.sender = req.sender.filter(|s| !s.is_empty());
    req.recipients = req.recipients.map(|n| n.clamp(1, MAX_RECIPIENTS as u32));
    let answer: Result<Json_, _> = AsUser::new(&console.web, &ctx.token)
        .post("/v1/quote", &req)
        .await;
    match answer {
        Ok(v) => Json(v).into_response(),
        Err(e) => json_client_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct SubmitRequest {
    to: Vec<String>,
    text: String,
    #[serde(default)]
    sender: Option<String>,
    /// `YYYY-MM-DDTHH:MM` in China's time (the form's datetime-local), empty: now.
    #[serde(default)]
    not_before: Option<String>,
    /// "24h" and the like, empty: the default.
    #[serde(default)]
    validity: Option<String>,
}

/// `POST /send/submit`: one chunk of the batch, `POST /v1/messages` as the user; the daemon's
/// answer (ids, parts, refused) passed on.
pub async fn submit(State(console): State<Arc<Console>>, ctx: Ctx, body: Bytes) -> Response {
    let req = match serde_json::from_slice::<SubmitRequest>(&body) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_json", e.to_string()),
    };
    match build_send(req) {
        Ok(send) => {
            let answer: Result<Json_, _> = AsUser::new(&console.web, &ctx.token)
                .post("/v1/messages", &send)
                .await;
            match answer {
                Ok(v) => (StatusCode::ACCEPTED, Json(v)).into_response(),
                Err(e) => json_client_error(e),
            }
        }
        Err(msg) => json_error(StatusCode::BAD_REQUEST, "invalid_field", msg),
    }
}

/// The socket API's request from the form's fields.
fn build_send(req: SubmitRequest) -> Result<SendRequest, String> {
    if req.to.is_empty() || req.to.len() > MAX_RECIPIENTS {
        return Err(format!("to: 1 to {MAX_RECIPIENTS} numbers"));
    }
    let sender = match req.sender.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            serde_json::from_value(Json_::String(s.to_owned()))
                .map_err(|_| format!("sender: unknown kind {s:?}"))?,
        ),
    };
    let not_before = match req
        .not_before
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => Some(parse_local(s).ok_or_else(|| format!("not_before: cannot read {s:?}"))?),
    };
    let validity = match req
        .validity
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(v) => {
            Some(crate::api::types::parse_duration(v).map_err(|e| format!("validity: {e}"))?)
        }
    };
    Ok(SendRequest {
        to: req.to,
        text: req.text,
        report: true,
        validity,
        not_before,
        priority: Default::default(),
        account: None,
        sender,
    })
}

/// A datetime-local value (`2026-12-01T09:30`, seconds optional) in China's time.
pub fn parse_local(s: &str) -> Option<jiff::Timestamp> {
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    dt.to_zoned_datetime(super::china())
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_socket_request() {
        let req = SubmitRequest {
            to: vec!["13912345678".into()],
            text: "你好".into(),
            sender: Some("106".into()),
            not_before: Some("2030-01-02T08:00".into()),
            validity: Some("24h".into()),
        };
        let send = build_send(req).unwrap();
        assert_eq!(send.not_before.unwrap().to_string(), "2030-01-02T00:00:00Z");
        assert_eq!(send.validity.unwrap().as_secs(), 24 * 3600);
        assert!(send.sender.is_some());
        let bad = SubmitRequest {
            to: vec!["1".into()],
            text: "x".into(),
            sender: Some("pigeon".into()),
            not_before: None,
            validity: None,
        };
        assert!(build_send(bad).unwrap_err().starts_with("sender"));
        let none = SubmitRequest {
            to: vec![],
            text: "x".into(),
            sender: None,
            not_before: Some("tomorrow".into()),
            validity: None,
        };
        assert!(build_send(none).is_err());
        assert!(parse_local("2030-13-01T00:00").is_none());
    }
}
