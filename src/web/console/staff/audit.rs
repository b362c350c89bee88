//! The audit log's verify and export: `GET /staff/audit[?verify=1]` walks the hash chain
//! (`GET /v1/audit/verify`) and shows the result; `GET /staff/audit/export` downloads the
//! records of a range of days (`GET /v1/audit/export`) — what `smsgate log verify` and
//! `smsgate log export` do, through the daemon (the web process cannot read the database).
//!
//! What must always hold: admins only; the days are China's (from 00:00 of the first day to
//! 00:00 after the last, the CLI's inclusive days); a bad range is shown on the page, not sent;
//! the export is passed through as the daemon wrote it, as a download.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use serde_json::Value as Json;

use super::super::daemon::AsUser;
use super::super::{china, Console, Ctx};
use super::{account_names, filled, forbid, ADMIN};
use crate::api::audit::{AuditFormat, ExportQuery};

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    verify: Option<String>,
}

async fn audit_page(
    console: &Console,
    ctx: &Ctx,
    report: Option<Json>,
    form_error: Option<&str>,
) -> Response {
    let names = match account_names(&AsUser::new(&console.web, &ctx.token)).await {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    let today = jiff::Timestamp::now().to_zoned_datetime(china()).date();
    let from = today
        .checked_sub(jiff::Span::new().days(7))
        .unwrap_or(today);
    console.page(
        ctx,
        "staff_audit.html",
        context! {
            report => report,
            form_error => form_error,
            accounts => names,
            from => from.to_string(),
            to => today.to_string(),
        },
    )
}

/// `GET /staff/audit`, verifying the chain when `verify` is set.
pub async fn page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let report = if q.verify.is_some() {
        match AsUser::new(&console.web, &ctx.token)
            .get::<Json>("/v1/audit/verify")
            .await
        {
            Ok(v) => Some(v),
            Err(e) => return console.daemon_error(&ctx, e),
        }
    } else {
        None
    };
    audit_page(&console, &ctx, report, None).await
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    account: String,
}

/// `[from 00:00, the day after to 00:00)` in China's time, or `None` when not a range.
pub fn day_range(from: &str, to: &str) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let from: jiff::civil::Date = from.trim().parse().ok()?;
    let to: jiff::civil::Date = to.trim().parse().ok()?;
    let start = from.to_zoned_datetime(china()).ok()?.timestamp();
    let end = to
        .tomorrow()
        .ok()?
        .to_zoned_datetime(china())
        .ok()?
        .timestamp();
    (start < end).then_some((start, end))
}

/// `GET /staff/audit/export`: the records as a download.
pub async fn export(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(form): Query<ExportForm>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let Some((from, to)) = day_range(&form.from, &form.to) else {
        let e = ctx.lang.word("audit_bad_range");
        return audit_page(&console, &ctx, None, Some(e)).await;
    };
    let format = if form.format == "jsonl" {
        AuditFormat::Jsonl
    } else {
        AuditFormat::Csv
    };
    let query = ExportQuery {
        from: Some(from),
        to: Some(to),
        format: Some(format),
        number: filled(&form.number),
        account: filled(&form.account),
    };
    let client = console.web.client.with_session(&ctx.token);
    let answer = {
        let _permit = console.web.permit().await;
        client.audit_export(&query).await
    };
    match answer {
        Ok(body) => {
            let (kind, name) = match format {
                AuditFormat::Csv => ("text/csv; charset=utf-8", "audit.csv"),
                AuditFormat::Jsonl => ("application/jsonl", "audit.jsonl"),
            };
            let mut r = (StatusCode::OK, body).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => console.daemon_error(&ctx, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_china_days_with_the_last_one_included() {
        let (a, b) = day_range("2026-11-01", "2026-11-30").unwrap();
        assert_eq!(a.to_string(), "2026-10-31T16:00:00Z");
        assert_eq!(b.to_string(), "2026-11-30T16:00:00Z");
        assert!(day_range("2026-11-30", "2026-11-30").is_some());
        assert!(day_range("2026-11-30", "2026-11-01").is_none());
        assert!(day_range("", "2026-11-01").is_none());
    }
}
