//! The audit log's routes of the API (issue 13, the staff console): what `smsgate log verify`
//! and `smsgate log export` do from the database file, through the socket for admins, so the
//! web console (which has no access to the database file) can offer them. What the daemon
//! executes is an [`AuditOp`] (see `Backend::audit`).
//!
//! What must always hold: both routes are for admins only (root, the admin group, or an admin's
//! session; a reviewer's session is refused by `session::REVIEWER_ROUTES` before this runs);
//! both only read; an export covers `[from, to)` with `from < to`, both required, and is at
//! most [`MAX_EXPORT_BYTES`] (413 otherwise: narrow the range), so one request cannot make the
//! daemon hold an unbounded answer in memory.
//!
//! Routes:
//! - `GET /v1/audit/verify`: `{"result": "intact", "records": N}` or
//!   `{"result": "broken", "seq": N, "fault": ...}` (the CLI's `log verify --json`), 200 either way
//! - `GET /v1/audit/export?from=&to=&format=csv|jsonl&number=&account=`: the records, as the
//!   CLI's `log export` writes them (`text/csv` or `application/jsonl`)

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::extract::{caller, ApiState, Peer};
use super::{ApiError, Backend};

/// The largest export one request may produce.
pub const MAX_EXPORT_BYTES: usize = 64 * 1024 * 1024;

/// The export's format, as the CLI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFormat {
    Csv,
    Jsonl,
}

/// One audit operation; the server has checked the caller (an admin) and the parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AuditOp {
    Verify,
    Export {
        from: Timestamp,
        to: Timestamp,
        format: AuditFormat,
        number: Option<String>,
        account: Option<String>,
    },
}

/// What an audit operation answers.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditAnswer {
    Json(serde_json::Value),
    Export { format: AuditFormat, body: Vec<u8> },
}

impl IntoResponse for AuditAnswer {
    fn into_response(self) -> Response {
        match self {
            AuditAnswer::Json(v) => Json(v).into_response(),
            AuditAnswer::Export { format, body } => {
                let (kind, name) = match format {
                    AuditFormat::Csv => ("text/csv; charset=utf-8", "audit.csv"),
                    AuditFormat::Jsonl => ("application/jsonl", "audit.jsonl"),
                };
                (
                    [
                        (header::CONTENT_TYPE, kind.to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{name}\""),
                        ),
                    ],
                    body,
                )
                    .into_response()
            }
        }
    }
}

/// `?from=&to=&format=&number=&account=` of `GET /v1/audit/export`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportQuery {
    /// Inclusive, RFC 3339.
    pub from: Option<Timestamp>,
    /// Exclusive, RFC 3339.
    pub to: Option<Timestamp>,
    pub format: Option<AuditFormat>,
    /// Only records about this number (recipient or sending SIM).
    pub number: Option<String>,
    /// Only records of this account.
    pub account: Option<String>,
}

/// The audit routes, merged by [`super::server::router`].
pub(super) fn routes<B: Backend>() -> Router<ApiState<B>> {
    Router::new()
        .route("/v1/audit/verify", get(verify::<B>))
        .route("/v1/audit/export", get(export::<B>))
}

async fn admin_caller<B: Backend>(
    state: &ApiState<B>,
    peer: Peer,
    what: &str,
) -> Result<super::Caller, ApiError> {
    let c = caller(state, peer).await?;
    if !c.admin {
        return Err(ApiError::Forbidden(format!(
            "uid {}: {what} is for admins only",
            c.uid
        )));
    }
    Ok(c)
}

async fn verify<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let c = admin_caller(&state, peer, "verifying the audit log").await?;
    Ok(state
        .backend()
        .audit(c, AuditOp::Verify)
        .await?
        .into_response())
}

async fn export<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let c = admin_caller(&state, peer, "exporting the audit log").await?;
    let Query(q) =
        q.map_err(|r| ApiError::InvalidField(format!("bad query string: {}", r.body_text())))?;
    let op = export_op(q)?;
    Ok(state.backend().audit(c, op).await?.into_response())
}

/// Checks an export's parameters (the CLI's checks: both ends, `to` after `from`).
pub fn export_op(q: ExportQuery) -> Result<AuditOp, ApiError> {
    let (Some(from), Some(to)) = (q.from, q.to) else {
        return Err(ApiError::InvalidField(
            "from and to (RFC 3339) are both required".into(),
        ));
    };
    if to <= from {
        return Err(ApiError::InvalidField("to must be after from".into()));
    }
    let blank = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(AuditOp::Export {
        from,
        to,
        format: q.format.unwrap_or(AuditFormat::Csv),
        number: blank(q.number),
        account: blank(q.account),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_needs_an_ordered_range() {
        let t = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        let q = |from, to| ExportQuery {
            from,
            to,
            ..Default::default()
        };
        assert!(export_op(q(None, t("2026-11-30T00:00:00Z"))).is_err());
        assert!(export_op(q(t("2026-11-30T00:00:00Z"), t("2026-11-30T00:00:00Z"))).is_err());
        let op = export_op(ExportQuery {
            number: Some("  ".into()),
            account: Some("e2e".into()),
            ..q(t("2026-11-29T00:00:00Z"), t("2026-11-30T00:00:00Z"))
        })
        .unwrap();
        assert_eq!(
            op,
            AuditOp::Export {
                from: t("2026-11-29T00:00:00Z").unwrap(),
                to: t("2026-11-30T00:00:00Z").unwrap(),
                format: AuditFormat::Csv,
                number: None,
                account: Some("e2e".into()),
            }
        );
    }
}
