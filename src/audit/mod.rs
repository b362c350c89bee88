//! The audit log: an append-only, hash-chained record of every accepted, rejected, held,
//! reviewed, sent, failed and delivered message and every opt-out and blacklist change.
//! This module owns the record type, its canonical encoding and hash, the chain check, the
//! retention setting and the export formats; the SQL (append, triggers, purge) is in
//! `store::audit`.
//!
//! What must always hold: record `n` carries the SHA-256 of record `n-1` (32 zero bytes for the
//! first), and its own hash is SHA-256(prev_hash || canonical encoding); the canonical encoding
//! is length-prefixed so no two different records encode the same; after a purge the first
//! remaining row is an anchor that stands in for the last purged record (its hash) so the chain
//! stays verifiable; retention is never below 90 days.

pub mod export;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Minimum retention (the contract: at least 3 months).
pub const MIN_RETENTION_DAYS: u32 = 90;
/// Default retention (MIIT Order 31 asks for 5 months; 180 days covers it).
pub const DEFAULT_RETENTION_DAYS: u32 = 180;

/// Errors of the audit layer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit retention of {days} days is below the minimum of {min} days")]
    RetentionTooShort { days: u32, min: u32 },
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("audit record {seq}: {detail}")]
    Corrupt { seq: i64, detail: String },
    #[error("audit export: {0}")]
    Io(#[from] std::io::Error),
}

/// How long records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    /// A retention of `days`; below [`MIN_RETENTION_DAYS`] is a configuration error.
    pub fn days(days: u32) -> Result<Retention, AuditError> {
        if days < MIN_RETENTION_DAYS {
            return Err(AuditError::RetentionTooShort {
                days,
                min: MIN_RETENTION_DAYS,
            });
        }
        Ok(Retention { days })
    }

    pub fn as_days(&self) -> u32 {
        self.days
    }

    /// Records strictly older than this instant may be purged.
    pub fn cutoff(&self, now: Timestamp) -> Timestamp {
        now.checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(self.days)))
            .unwrap_or(Timestamp::MIN)
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// What a record is about. Unknown kinds read from the database are kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    Accepted,
    Rejected,
    Held,
    Reviewed,
    Sent,
    Failed,
    Delivered,
    Charged,
    OptOut,
    /// An opt-out lifted by an admin (renewed consent).
    OptIn,
    AccountBlacklisted,
    AccountUnblacklisted,
    NumberBlacklisted,
    NumberUnblacklisted,
    /// A purge happened (chained like any record).
    Purged,
    /// Stands in for the last purged record at the start of the chain (not chained itself).
    Anchor,
    Other(String),
}

impl AuditEvent {
    pub fn as_str(&self) -> &str {
        match self {
            AuditEvent::Accepted => "accepted",
            AuditEvent::Rejected => "rejected",
            AuditEvent::Held => "held",
            AuditEvent::Reviewed => "reviewed",
            AuditEvent::Sent => "sent",
            AuditEvent::Failed => "failed",
            AuditEvent::Delivered => "delivered",
            AuditEvent::Charged => "charged",
            AuditEvent::OptOut => "opt_out",
            AuditEvent::OptIn => "opt_in",
            AuditEvent::AccountBlacklisted => "account_blacklisted",
            AuditEvent::AccountUnblacklisted => "account_unblacklisted",
            AuditEvent::NumberBlacklisted => "number_blacklisted",
            AuditEvent::NumberUnblacklisted => "number_unblacklisted",
            AuditEvent::Purged => "purged",
            AuditEvent::Anchor => "anchor",
            AuditEvent::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> AuditEvent {
        match s {
            "accepted" => AuditEvent::Accepted,
            "rejected" => AuditEvent::Rejected,
            "held" => AuditEvent::Held,
            "reviewed" => AuditEvent::Reviewed,
            "sent" => AuditEvent::Sent,
            "failed" => AuditEvent::Failed,
            "delivered" => AuditEvent::Delivered,
            "charged" => AuditEvent::Charged,
            "opt_out" => AuditEvent::OptOut,
            "opt_in" => AuditEvent::OptIn,
            "account_blacklisted" => AuditEvent::AccountBlacklisted,
            "account_unblacklisted" => AuditEvent::AccountUnblacklisted,
            "number_blacklisted" => AuditEvent::NumberBlacklisted,
            "number_unblacklisted" => AuditEvent::NumberUnblacklisted,
            "purged" => AuditEvent::Purged,
            "anchor" => AuditEvent::Anchor,
            other => AuditEvent::Other(other.to_string()),
        }
    }
}

/// The content of a record, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix seconds. Part of the hashed content, so it stays in seconds in the database too,
    /// the one time column that is not in milliseconds (store migration 0008 says why).
    pub time: i64,
    pub event: String,
    pub account_id: Option<i64>,
    pub message_id: Option<i64>,
    pub sim_iccid: Option<String>,
    pub sim_number: Option<String>,
    pub recipient: Option<String>,
    pub text: Option<String>,
    pub parts: Option<i64>,
    /// Free-form outcome detail (error code, reason, category).
    pub outcome: String,
    /// Who acted: `daemon`, `account:<name>`, `admin:<user>`, `reviewer:<user>`, `inbound`.
    pub actor: String,
}

impl AuditEntry {
    /// A new entry of `event` at `now` by `actor`; fill the other fields as needed.
    pub fn new(event: AuditEvent, now: Timestamp, actor: &str) -> AuditEntry {
        AuditEntry {
            time: now.as_second(),
            event: event.as_str().to_string(),
            actor: actor.to_string(),
            ..AuditEntry::default()
        }
    }
}

impl AuditEntry {
    /// An entry about one message to one recipient (accepted, rejected, held, sent, failed,
    /// delivered): the fields a lawful request asks for.
    #[allow(clippy::too_many_arguments)]
    pub fn message(
        event: AuditEvent,
        now: Timestamp,
        actor: &str,
        account_id: i64,
        message_id: i64,
        recipient: &str,
        text: &str,
        parts: u32,
        outcome: &str,
    ) -> AuditEntry {
        AuditEntry {
            account_id: Some(account_id),
            message_id: Some(message_id),
            recipient: Some(recipient.to_string()),
            text: Some(text.to_string()),
            parts: Some(i64::from(parts)),
            outcome: outcome.to_string(),
            ..AuditEntry::new(event, now, actor)
        }
    }

    /// Adds the sending SIM (ICCID and its number).
    pub fn with_sim(mut self, iccid: &str, number: Option<&str>) -> AuditEntry {
        self.sim_iccid = Some(iccid.to_string());
        self.sim_number = number.map(str::to_string);
        self
    }
}

/// A chained record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; 32],
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("hash is not 32 bytes"))
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => buf.push(0),
        Some(b) => {
            buf.push(1);
            buf.extend_from_slice(&(b.len() as u64).to_be_bytes());
            buf.extend_from_slice(b);
        }
    }
}

fn put_int(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => buf.push(0),
        Some(v) => {
            buf.push(1);
            buf.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// The canonical encoding of a record's content and position (version 1): fields in a fixed
/// order, each tagged present/absent and length-prefixed, so the encoding is injective.
pub fn canonical_encoding(seq: i64, e: &AuditEntry) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    buf.push(1);
    put_int(&mut buf, Some(seq));
    put_int(&mut buf, Some(e.time));
    put_bytes(&mut buf, Some(e.event.as_bytes()));
    put_int(&mut buf, e.account_id);
    put_int(&mut buf, e.message_id);
    put_bytes(&mut buf, e.sim_iccid.as_deref().map(str::as_bytes));
    put_bytes(&mut buf, e.sim_number.as_deref().map(str::as_bytes));
    put_bytes(&mut buf, e.recipient.as_deref().map(str::as_bytes));
    put_bytes(&mut buf, e.text.as_deref().map(str::as_bytes));
    put_int(&mut buf, e.parts);
    put_bytes(&mut buf, Some(e.outcome.as_bytes()));
    put_bytes(&mut buf, Some(e.actor.as_bytes()));
    buf
}

/// The hash of a record: SHA-256(prev_hash || canonical encoding).
pub fn record_hash(prev_hash: &[u8; 32], seq: i64, e: &AuditEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(canonical_encoding(seq, e));
    h.finalize().into()
}

/// Chains an entry after a record whose hash is `prev_hash`.
pub fn chain(prev_hash: [u8; 32], seq: i64, entry: AuditEntry) -> AuditRecord {
    let hash = record_hash(&prev_hash, seq, &entry);
    AuditRecord {
        seq,
        entry,
        prev_hash,
        hash,
    }
}

/// What is wrong at the first bad record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainFault {
    /// The record's content no longer matches its hash.
    Altered,
    /// Records before this one are missing (a gap in sequence numbers).
    Removed { after_seq: Option<i64> },
    /// The record does not link to the one before it although no sequence number is missing:
    /// it was inserted or the rows were reordered.
    Inserted,
    /// An anchor somewhere other than the start of the chain.
    MisplacedAnchor,
    /// The last record is not the head the log recorded: records were removed from the end.
    TruncatedTail { expected_seq: i64 },
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum VerifyReport {
    Intact { records: u64 },
    Broken { seq: i64, fault: ChainFault },
}

/// Walks records in sequence order. `head` is the (seq, hash) of the last record appended, as
/// the log keeps it, to detect removal from the end.
pub fn verify_chain<I>(records: I, head: Option<(i64, [u8; 32])>) -> VerifyReport
where
    I: IntoIterator<Item = AuditRecord>,
{
    let mut prev: Option<(i64, [u8; 32])> = None;
    let mut count = 0u64;
    for r in records {
        let is_anchor = r.entry.event == AuditEvent::Anchor.as_str();
        if is_anchor {
            if prev.is_some() {
                return VerifyReport::Broken {
                    seq: r.seq,
                    fault: ChainFault::MisplacedAnchor,
                };
            }
            // The anchor stands in for the last purged record: its hash starts the chain.
            prev = Some((r.seq, r.hash));
            count += 1;
            continue;
        }
        let expected_prev = prev.map(|p| p.1).unwrap_or([0u8; 32]);
        if record_hash(&r.prev_hash, r.seq, &r.entry) != r.hash {
            // Content intact but renumbered by one: rows were shifted to make room for an
            // inserted record, or to close the gap after a removed one.
            let fault = if record_hash(&r.prev_hash, r.seq.wrapping_sub(1), &r.entry) == r.hash {
                ChainFault::Inserted
            } else if record_hash(&r.prev_hash, r.seq.wrapping_add(1), &r.entry) == r.hash {
                ChainFault::Removed {
                    after_seq: prev.map(|p| p.0),
                }
            } else {
                ChainFault::Altered
            };
            return VerifyReport::Broken { seq: r.seq, fault };
        }
        let expected_seq = prev.map(|p| p.0 + 1).unwrap_or(1);
        if r.prev_hash != expected_prev || r.seq != expected_seq {
            let fault = if r.seq > expected_seq {
                ChainFault::Removed {
                    after_seq: prev.map(|p| p.0),
                }
            } else {
                ChainFault::Inserted
            };
            return VerifyReport::Broken { seq: r.seq, fault };
        }
        prev = Some((r.seq, r.hash));
        count += 1;
    }
    if let Some((hseq, hhash)) = head {
        match prev {
            Some((seq, hash)) if seq == hseq && hash == hhash => {}
            Some((seq, _)) if seq < hseq => {
                return VerifyReport::Broken {
                    seq,
                    fault: ChainFault::TruncatedTail { expected_seq: hseq },
                }
            }
            Some((seq, _)) => {
                return VerifyReport::Broken {
                    seq,
                    fault: ChainFault::Inserted,
                }
            }
            None => {
                return VerifyReport::Broken {
                    seq: 0,
                    fault: ChainFault::TruncatedTail { expected_seq: hseq },
                }
            }
        }
    }
    VerifyReport::Intact { records: count }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_floor() {
        assert!(matches!(
            Retention::days(89),
            Err(AuditError::RetentionTooShort { days: 89, min: 90 })
        ));
        assert_eq!(Retention::days(90).unwrap().as_days(), 90);
        assert_eq!(Retention::default().as_days(), 180);
    }

    #[test]
    fn encoding_separates_fields() {
        let a = AuditEntry {
            sim_iccid: Some("ab".into()),
            ..AuditEntry::default()
        };
        let b = AuditEntry {
            sim_number: Some("ab".into()),
            ..AuditEntry::default()
        };
        assert_ne!(canonical_encoding(1, &a), canonical_encoding(1, &b));
        let c = AuditEntry {
            recipient: Some(String::new()),
            ..AuditEntry::default()
        };
        assert_ne!(
            canonical_encoding(1, &c),
            canonical_encoding(1, &AuditEntry::default())
        );
    }
}
