//! Inbound SMS: each received part is stored with its raw PDU, duplicates are dropped, and
//! concatenated parts are reassembled into one message.
//!
//! What must always hold: a part delivered twice (a modem re-sending an unacknowledged +CMT,
//! or the same message read again from SIM storage) is stored once: same sender, SIM, concat
//! reference, total and sequence number (or, unconcatenated, the same raw PDU) within the
//! window; a message is `complete` exactly when all its parts are present, and its text is then
//! the parts' texts in sequence order. A message that becomes complete is queued, in the same
//! transaction, for the webhooks of the accounts that messaged its sender (`store::webhooks`).

use crate::store::CachedSql;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, Transaction};

use super::{ms, ts, ts_opt, InboundId, SimId, Store, StoreError};
use crate::ids::before;
use crate::number;

/// How long a part can still join (or duplicate) an earlier one.
pub const INBOUND_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// Concatenation header fields of a received part (UDH IE 0x00 or 0x08).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    /// 1-based.
    pub seq: u8,
}

/// One received part, decoded by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundPart {
    pub sim: Option<SimId>,
    pub sender: String,
    /// This part's text.
    pub text: String,
    pub concat: Option<Concat>,
    /// The service centre time stamp.
    pub scts: Option<Timestamp>,
    pub raw_pdu: String,
}

/// What storing a part did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Seen before: nothing stored.
    Duplicate(InboundId),
    /// Stored; the message still misses parts.
    Partial(InboundId),
    /// Stored; the message is whole.
    Complete(InboundId),
}

/// Which inbound messages to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxQuery {
    pub sim: Option<SimId>,
    pub since: Option<Timestamp>,
    pub include_incomplete: bool,
    pub limit: u32,
}

impl Default for InboxQuery {
    fn default() -> Self {
        InboxQuery {
            sim: None,
            since: None,
            include_incomplete: false,
            limit: 100,
        }
    }
}

/// A received message (whole, or partial when asked for).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InboundMessage {
    pub id: InboundId,
    pub sim: Option<SimId>,
    pub sender: String,
    pub text: String,
    pub complete: bool,
    pub parts_received: u32,
    pub parts_total: u32,
    pub scts: Option<Timestamp>,
    pub received_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// The account a gateway MO named by its Dest_Id's extension (None for modem SMS).
    pub account: Option<String>,
}

impl Store {
    /// Stores one received part (de-duplicated, reassembled) in one transaction.
    pub fn store_inbound(
        &mut self,
        part: &InboundPart,
        now: Timestamp,
    ) -> Result<InboundOutcome, StoreError> {
        if let Some(c) = part.concat {
            if c.total == 0 || c.seq == 0 || c.seq > c.total {
                return Err(StoreError::Invalid(format!(
                    "concatenated part {} of {}",
                    c.seq, c.total
                )));
            }
        }
        self.transaction(|tx| store_inbound_in(tx, part, now))
    }

    /// Received messages, newest first.
    pub fn inbox(&self, q: &InboxQuery) -> Result<Vec<InboundMessage>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.id, i.sim_id, i.sender, i.text, i.complete,
                    (SELECT COUNT(*) FROM inbound_parts p WHERE p.inbound_id = i.id),
                    i.concat_total, i.scts, i.received_at, i.completed_at, i.account
             FROM inbound i
             WHERE (?1 IS NULL OR i.sim_id = ?1) AND (?2 IS NULL OR i.received_at >= ?2)
               AND (?3 OR i.complete)
             ORDER BY i.received_at DESC, i.id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![
                q.sim.map(|s| s.0),
                q.since.map(ms),
                q.include_incomplete,
                q.limit
            ],
            |r| {
                Ok(InboundMessage {
                    id: InboundId(r.get(0)?),
                    sim: r.get::<_, Option<i64>>(1)?.map(SimId),
                    sender: r.get(2)?,
                    text: r.get(3)?,
                    complete: r.get(4)?,
                    parts_received: r.get(5)?,
                    parts_total: r.get(6)?,
                    scts: ts_opt(r.get(7)?),
                    received_at: ts(r.get(8)?),
                    completed_at: ts_opt(r.get(9)?),
                    account: r.get(10)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

pub(in crate::store) fn store_inbound_in(
    tx: &Transaction<'_>,
    part: &InboundPart,
    now: Timestamp,
) -> Result<InboundOutcome, StoreError> {
    let since = ms(before(now, INBOUND_WINDOW));
    let sim = part.sim.map(|s| s.0);
    let Some(c) = part.concat else {
        let dup: Option<i64> = tx
            .prepare_cached(
                "SELECT i.id FROM inbound i JOIN inbound_parts p ON p.inbound_id = i.id
                 WHERE i.sender = ?1 AND i.sim_id IS ?2 AND i.concat_ref IS NULL
                   AND p.raw_pdu = ?3 AND i.received_at >= ?4 LIMIT 1",
            )?
            .query_map(params![part.sender, sim, part.raw_pdu, since], |r| r.get(0))?
            .next()
            .transpose()?;
        if let Some(id) = dup {
            return Ok(InboundOutcome::Duplicate(InboundId(id)));
        }
        let id = new_message(tx, part, None, 1, now)?;
        add_part(tx, id, 1, part, now)?;
        complete_if_whole(tx, id, 1, now)?;
        super::webhooks::enqueue_inbound(tx, id, &part.sender, now)?;
        log_received(part, id, true);
        return Ok(InboundOutcome::Complete(InboundId(id)));
    };
    // Candidates with the same sender, SIM and concat header, most recent first.
    let candidates: Vec<(i64, bool)> = tx
        .prepare_cached(
            "SELECT id, complete FROM inbound
             WHERE sender = ?1 AND sim_id IS ?2 AND concat_ref = ?3 AND concat_total = ?4
               AND received_at >= ?5
             ORDER BY id DESC",
        )?
        .query_map(
            params![part.sender, sim, c.reference, c.total, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut target = None;
    for (id, complete) in &candidates {
        let existing: Option<String> = tx
            .prepare_cached("SELECT text FROM inbound_parts WHERE inbound_id = ?1 AND seq = ?2")?
            .query_map(params![id, c.seq], |r| r.get(0))?
            .next()
            .transpose()?;
        match existing {
            // Same part again. (A different text under the same header is another message
            // that reused the 8-bit reference.)
            Some(text) if text == part.text => {
                return Ok(InboundOutcome::Duplicate(InboundId(*id)));
            }
            None if !complete && target.is_none() => target = Some(*id),
            _ => {}
        }
    }
    let id = match target {
        Some(id) => id,
        None => new_message(tx, part, Some(c.reference), c.total, now)?,
    };
    add_part(tx, id, c.seq, part, now)?;
    let whole = complete_if_whole(tx, id, c.total, now)?;
    if whole {
        super::webhooks::enqueue_inbound(tx, id, &part.sender, now)?;
    }
    log_received(part, id, whole);
    Ok(if whole {
        InboundOutcome::Complete(InboundId(id))
    } else {
        InboundOutcome::Partial(InboundId(id))
    })
}

fn new_message(
    tx: &Transaction<'_>,
    part: &InboundPart,
    reference: Option<u16>,
    total: u8,
    now: Timestamp,
) -> Result<i64, StoreError> {
    tx.execute_cached(
        "INSERT INTO inbound (sim_id, sender, concat_ref, concat_total, scts, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            part.sim.map(|s| s.0),
            part.sender,
            reference,
            total,
            part.scts.map(ms),
            ms(now)
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn add_part(
    tx: &Transaction<'_>,
    id: i64,
    seq: u8,
    part: &InboundPart,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.execute_cached(
        "INSERT INTO inbound_parts (inbound_id, seq, text, raw_pdu, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, seq, part.text, part.raw_pdu, ms(now)],
    )?;
    Ok(())
}

/// Refreshes the message text from its parts; marks it complete when all are present.
fn complete_if_whole(
    tx: &Transaction<'_>,
    id: i64,
    total: u8,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let texts: Vec<String> = tx
        .prepare_cached("SELECT text FROM inbound_parts WHERE inbound_id = ?1 ORDER BY seq")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let whole = texts.len() >= usize::from(total);
    tx.execute_cached(
        "UPDATE inbound SET text = ?2, complete = ?3,
             completed_at = CASE WHEN ?3 THEN ?4 ELSE NULL END
         WHERE id = ?1",
        params![id, texts.concat(), whole, ms(now)],
    )?;
    Ok(whole)
}

fn log_received(part: &InboundPart, id: i64, whole: bool) {
    tracing::info!(
        inbound = id,
        sender = %number::mask(&part.sender),
        complete = whole,
        "inbound SMS part stored"
    );
}
