//! Export of audit records for a lawful request: CSV (RFC 4180 quoting) or JSON lines.
//!
//! What must always hold: every field is written; a CSV field holding a comma, quote, CR or LF
//! is quoted with inner quotes doubled, so any text round-trips through a CSV reader; each JSON
//! line is one complete record.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::{AuditError, AuditRecord};

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 15] = [
    "seq",
    "time",
    "event",
    "account_id",
    "message_id",
    "sim_iccid",
    "sim_number",
    "recipient",
    "text",
    "parts",
    "outcome",
    "actor",
    "prev_hash",
    "hash",
    "time_rfc3339",
];

/// Quotes one CSV field when needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Writes the header line (CSV only).
pub fn write_header(out: &mut dyn Write, format: ExportFormat) -> Result<(), AuditError> {
    if format == ExportFormat::Csv {
        write!(out, "{}\r\n", CSV_HEADER.join(","))?;
    }
    Ok(())
}

/// Writes one record.
pub fn write_record(
    out: &mut dyn Write,
    format: ExportFormat,
    r: &AuditRecord,
) -> Result<(), AuditError> {
    match format {
        ExportFormat::JsonLines => {
            let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        }
        ExportFormat::Csv => {
            let e = &r.entry;
            let rfc = jiff::Timestamp::from_second(e.time)
                .map(|t| t.to_string())
                .unwrap_or_default();
            let fields = [
                r.seq.to_string(),
                e.time.to_string(),
                e.event.clone(),
                opt(&e.account_id),
                opt(&e.message_id),
                opt(&e.sim_iccid),
                opt(&e.sim_number),
                opt(&e.recipient),
                opt(&e.text),
                opt(&e.parts),
                e.outcome.clone(),
                e.actor.clone(),
                hex::encode(r.prev_hash),
                hex::encode(r.hash),
                rfc,
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            write!(out, "{}\r\n", line.join(","))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("l1\nl2"), "\"l1\nl2\"");
    }
}
