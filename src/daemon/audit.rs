//! The audit log's staff routes in the running daemon (`api::audit`): verify the hash chain and
//! export records, exactly as `smsgate log verify` / `smsgate log export` do on the file
//! (`store::audit::verify` / `export`), but on the daemon's second connection.
//!
//! What must always hold: both only read, on `Shared::reads` (a walk over a large log neither
//! waits for nor holds up the sending path); an export larger than
//! [`api::audit::MAX_EXPORT_BYTES`](crate::api::audit::MAX_EXPORT_BYTES) stops there and answers
//! 413 rather than growing without bound; an unknown account is 404.

use std::sync::Arc;

use crate::api::audit::{AuditAnswer, AuditFormat, AuditOp, MAX_EXPORT_BYTES};
use crate::api::{ApiError, Caller};
use crate::audit::export::ExportFormat;
use crate::store::audit::ExportFilter;

use super::backend::internal;
use super::Shared;

/// A writer that refuses to grow past `limit` bytes.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("the export is too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs one audit operation (the API server has checked that the caller is an admin).
pub(super) async fn run(
    shared: &Arc<Shared>,
    caller: Caller,
    op: AuditOp,
) -> Result<AuditAnswer, ApiError> {
    let _ = caller; // an admin: every account's records
    match op {
        AuditOp::Verify => {
            let report = shared
                .reads
                .call(|s| s.audit_verify())
                .await
                .map_err(internal)?;
            tracing::info!("audit log verified through the API");
            Ok(AuditAnswer::Json(
                serde_json::to_value(report).unwrap_or_default(),
            ))
        }
        AuditOp::Export {
            from,
            to,
            format,
            number,
            account,
        } => {
            let export_format = match format {
                AuditFormat::Csv => ExportFormat::Csv,
                AuditFormat::Jsonl => ExportFormat::JsonLines,
            };
            let answer = shared
                .reads
                .call(move |s| {
                    let account_id = match &account {
                        Some(name) => match s.account_by_name(name)? {
                            Some(a) => Some(a.id),
                            None => return Ok(Err(ApiError::NotFound(format!("no account {name:?}")))),
                        },
                        None => None,
                    };
                    let filter = ExportFilter {
                        from: Some(from),
                        to: Some(to),
                        number,
                        account_id,
                    };
                    let mut out = Capped {
                        buf: Vec::new(),
                        limit: MAX_EXPORT_BYTES,
                        over: false,
                    };
                    match s.audit_export(&filter, export_format, &mut out) {
                        Ok(_) => Ok(Ok(out.buf)),
                        Err(_) if out.over => Ok(Err(ApiError::TooLarge(format!(
                            "the export is larger than {} MiB: narrow the period, or name a number or an account",
                            MAX_EXPORT_BYTES / (1024 * 1024)
                        )))),
                        Err(e) => Err(e),
                    }
                })
                .await
                .map_err(internal)??;
            tracing::info!(bytes = answer.len(), "audit log exported through the API");
            Ok(AuditAnswer::Export {
                format,
                body: answer,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_capped_writer_stops_at_its_limit() {
        let mut w = Capped {
            buf: Vec::new(),
            limit: 4,
            over: false,
        };
        w.write_all(b"abc").unwrap();
        assert!(w.write_all(b"de").is_err());
        assert!(w.over);
        assert_eq!(w.buf, b"abc");
    }
}
