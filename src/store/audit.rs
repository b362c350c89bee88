//! The audit log's SQL: append (chained to the head), read, verify, purge, export.
//!
//! What must always hold: `append` runs inside the caller's transaction, so a record commits
//! with the change it describes or not at all; rows are never updated, and deleted only by
//! [`purge`], which sets the `purge_guard` flag inside its own transaction and clears it before
//! returning; after a purge the first row is an anchor carrying the hash of the last purged
//! record, so [`verify`] still walks an unbroken chain.

use crate::store::CachedSql;
use std::io::Write;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::audit::export::{write_header, write_record, ExportFormat};
use crate::audit::{
    chain, verify_chain, AuditEntry, AuditError, AuditEvent, AuditRecord, Retention, VerifyReport,
};
use crate::number::key;

const COLUMNS: &str = "seq, time, event, account_id, message_id, sim_iccid, sim_number, \
                       recipient, text, parts, outcome, actor, prev_hash, hash";

fn hash_col(row: &Row<'_>, idx: usize, seq: i64) -> rusqlite::Result<[u8; 32]> {
    let v: Vec<u8> = row.get(idx)?;
    // A wrong-length hash is tampering, not a crash: report it as a value that cannot match.
    Ok(v.try_into().unwrap_or_else(|_| {
        tracing::warn!(seq, "audit record with a malformed hash column");
        [0xFF; 32]
    }))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    let seq: i64 = row.get(0)?;
    Ok(AuditRecord {
        seq,
        entry: AuditEntry {
            time: row.get(1)?,
            event: row.get(2)?,
            account_id: row.get(3)?,
            message_id: row.get(4)?,
            sim_iccid: row.get(5)?,
            sim_number: row.get(6)?,
            recipient: row.get(7)?,
            text: row.get(8)?,
            parts: row.get(9)?,
            outcome: row.get(10)?,
            actor: row.get(11)?,
        },
        prev_hash: hash_col(row, 12, seq)?,
        hash: hash_col(row, 13, seq)?,
    })
}

fn insert(tx: &Transaction<'_>, r: &AuditRecord) -> Result<(), AuditError> {
    let e = &r.entry;
    tx.execute_cached(
        &format!("INSERT INTO audit_log ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"),
        params![
            r.seq,
            e.time,
            e.event,
            e.account_id,
            e.message_id,
            e.sim_iccid,
            e.sim_number,
            e.recipient,
            e.text,
            e.parts,
            e.outcome,
            e.actor,
            r.prev_hash.as_slice(),
            r.hash.as_slice()
        ],
    )?;
    Ok(())
}

/// The (seq, hash) of the last record appended.
pub fn head(conn: &Connection) -> Result<Option<(i64, [u8; 32])>, AuditError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((seq, h)) => {
            let h: [u8; 32] = h.try_into().map_err(|_| AuditError::Corrupt {
                seq,
                detail: "head hash is not 32 bytes".into(),
            })?;
            Ok(Some((seq, h)))
        }
    }
}

/// Appends an entry, chained to the current head, in the caller's transaction.
pub fn append(tx: &Transaction<'_>, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
    let (seq, prev) = match head(tx)? {
        Some((seq, h)) => (seq + 1, h),
        None => (1, [0u8; 32]),
    };
    let rec = chain(prev, seq, entry);
    insert(tx, &rec)?;
    tx.execute_cached(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        params![rec.seq, rec.hash.as_slice()],
    )?;
    Ok(rec)
}

/// Every record in sequence order.
pub fn all_records(conn: &Connection) -> Result<Vec<AuditRecord>, AuditError> {
    let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Walks the whole chain and names the first bad record.
pub fn verify(conn: &Connection) -> Result<VerifyReport, AuditError> {
    let head = head(conn)?;
    let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"))?;
    let rows = st.query_map([], from_row)?;
    // Stream the rows (the log can be large); a read error stops the walk and is returned
    // instead of being mistaken for a truncated chain.
    let mut failed = None;
    let records = rows.map_while(|r| match r {
        Ok(r) => Some(r),
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    let report = verify_chain(records, head);
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(report),
    }
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeOutcome {
    pub removed: u64,
    /// The sequence number of the last purged record (now the anchor's), if any.
    pub through_seq: Option<i64>,
}

/// Removes records older than the retention, leaving an anchor for the last purged record and
/// a chained `purged` record saying what was removed. Runs in the caller's transaction.
pub fn purge(
    tx: &Transaction<'_>,
    retention: &Retention,
    now: Timestamp,
    actor: &str,
) -> Result<PurgeOutcome, AuditError> {
    let cutoff = retention.cutoff(now).as_second();
    // Purge a prefix of the chain: everything up to the last record older than the cutoff.
    let last: Option<i64> = tx.query_row_cached(
        "SELECT MAX(seq) FROM audit_log WHERE time < ?1 AND event != 'anchor'",
        [cutoff],
        |r| r.get(0),
    )?;
    let Some(through) = last else {
        return Ok(PurgeOutcome {
            removed: 0,
            through_seq: None,
        });
    };
    let last_rec = tx.query_row_cached(
        &format!("SELECT {COLUMNS} FROM audit_log WHERE seq = ?1"),
        [through],
        from_row,
    )?;
    // The guard allows the delete and the anchor's insert below the head, and only inside
    // this transaction: it is cleared again before anything else can run.
    tx.execute_cached("UPDATE purge_guard SET active = 1 WHERE id = 1", [])?;
    let removed = tx.execute_cached("DELETE FROM audit_log WHERE seq <= ?1", [through])?;
    let mut anchor = AuditEntry::new(AuditEvent::Anchor, now, actor);
    anchor.outcome = format!("stands for record {through} and all before it");
    insert(
        tx,
        &AuditRecord {
            seq: through,
            entry: anchor,
            prev_hash: [0u8; 32],
            hash: last_rec.hash,
        },
    )?;
    tx.execute_cached("UPDATE purge_guard SET active = 0 WHERE id = 1", [])?;
    let mut note = AuditEntry::new(AuditEvent::Purged, now, actor);
    note.outcome = format!(
        "removed {removed} records through seq {through} (older than {} days), anchor hash {}",
        retention.as_days(),
        hex::encode(last_rec.hash)
    );
    append(tx, note)?;
    Ok(PurgeOutcome {
        removed: removed as u64,
        through_seq: Some(through),
    })
}

/// Which records to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Inclusive lower bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
    /// Recipient or SIM number, in any form: compared by [`crate::number::key`], so records
    /// written before the number module was unified (mobiles stored as bare 11 digits) and
    /// after (`+86...`) are both found.
    pub number: Option<String>,
    pub account_id: Option<i64>,
}

/// Writes the matching records (with a CSV header line) and returns how many were written.
pub fn export(
    conn: &Connection,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64, AuditError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE (?1 IS NULL OR time >= ?1) AND (?2 IS NULL OR time < ?2)
           AND (?3 IS NULL OR account_id = ?3)
         ORDER BY seq"
    ))?;
    let rows = st.query_map(
        params![
            filter.from.map(|t| t.as_second()),
            filter.to.map(|t| t.as_second()),
            filter.account_id
        ],
        from_row,
    )?;
    // The hash-chained rows are never rewritten, so historical rows keep the form they were
    // written in; comparing keys here (not stored strings in SQL) finds every form.
    let wanted = filter.number.as_deref().map(key);
    let matches = |r: &AuditRecord| match &wanted {
        None => true,
        Some(k) => [&r.entry.recipient, &r.entry.sim_number]
            .into_iter()
            .flatten()
            .any(|n| key(n) == *k),
    };
    write_header(out, format)?;
    let mut n = 0;
    for r in rows {
        let r = r?;
        if matches(&r) {
            write_record(out, format, &r)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The audit log as the daemon's staff routes read it (`api::audit`): the same functions the
/// CLI runs on the database file, on the store's connection.
impl super::Store {
    /// [`verify`] on this store.
    pub fn audit_verify(&self) -> Result<VerifyReport, super::StoreError> {
        verify(&self.conn).map_err(audit_store_error)
    }

    /// [`export`] on this store, into `out`. An error of `out` (e.g. a size limit) is
    /// `StoreError::Invalid` with its text.
    pub fn audit_export(
        &self,
        filter: &ExportFilter,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<u64, super::StoreError> {
        export(&self.conn, filter, format, out).map_err(audit_store_error)
    }
}

fn audit_store_error(e: AuditError) -> super::StoreError {
    match e {
        AuditError::Sqlite(e) => super::StoreError::Sqlite(e),
        AuditError::Io(e) => super::StoreError::Invalid(format!("audit export: {e}")),
        other => super::StoreError::Corrupt(other.to_string()),
    }
}
