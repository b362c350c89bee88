//! Views of messages: the due parts the runner plans with, one message with its parts, the
//! listing behind GET /v1/messages, and counts by state.
//!
//! What must always hold: reads only, no state changes here.

use super::*;

impl Store {
    /// The queued parts of sendable messages that are due at `now`, as scheduler input, higher
    /// priority and older first: the message's `not_before` and the part's back-off have passed
    /// and its previous part is sent, or its message's deadline has passed (so the plan reports
    /// it expired). Parts that are not due are left out, so that however many of them wait they
    /// never crowd a due part out of the `limit` (issue 8: a message could starve behind 2,048
    /// parts scheduled for later); when they become due is [`Store::next_wake_at`]'s answer.
    /// The reference for `Store::due_parts_indexed`, which must return the same rows.
    pub fn due_parts(&self, limit: u32, now: Timestamp) -> Result<Vec<DuePart>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.message_id, p.seq, m.part_count, m.recipient_carrier, m.priority,
                    m.created_at, m.not_before, m.deadline, p.next_attempt_at, p.avoid_sims,
                    (SELECT q.sim_id FROM parts q WHERE q.message_id = p.message_id
                        AND q.seq < p.seq AND q.state IN ('sent', 'delivered')
                        ORDER BY q.seq DESC LIMIT 1),
                    (p.seq = 1 OR EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id
                        AND q.seq = p.seq - 1 AND q.state IN ('sent', 'delivered')))
             FROM parts p JOIN messages m ON m.id = p.message_id
             WHERE p.state = 'queued' AND m.state IN ('queued', 'scheduled', 'sending')
               AND (m.gateway IS NULL OR m.deadline <= ?2)
               AND (m.deadline <= ?2
                    OR ((m.not_before IS NULL OR m.not_before <= ?2)
                        AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= ?2)
                        AND (p.seq = 1 OR EXISTS (SELECT 1 FROM parts q
                            WHERE q.message_id = p.message_id AND q.seq = p.seq - 1
                              AND q.state IN ('sent', 'delivered')))))
             ORDER BY m.priority DESC, m.created_at, p.message_id, p.seq
             LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit, ms(now)], due_part_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One message with its parts, or `None`.
    pub fn message(&self, id: MessageId) -> Result<Option<MessageView>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, account, recipient, state, part_count, priority, created_at, sent_at,
                        delivered_at, last_error, text, encoding, not_before, deadline,
                        report_requested, sender_kind, gateway, src_id, fallback
                 FROM messages WHERE id = ?1",
                [id.0],
                |r| {
                    Ok((
                        summary_row(r)?,
                        r.get::<_, String>(10)?,
                        r.get::<_, String>(11)?,
                        r.get::<_, Option<i64>>(12)?,
                        r.get::<_, Option<i64>>(13)?,
                        r.get::<_, bool>(14)?,
                        MessageChannel {
                            sender_kind: r.get(15)?,
                            gateway: r.get(16)?,
                            src_id: r.get(17)?,
                            fallback: r.get(18)?,
                        },
                    ))
                },
            )
            .optional()?;
        let Some((summary, text, encoding, not_before, deadline, report_requested, channel)) = row
        else {
            return Ok(None);
        };
        let summary = summary.finish()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, seq, state, sim_id, tp_mr, attempts, next_attempt_at, error,
                    report_status, sent_at, delivered_at, gateway_msg_id
             FROM parts WHERE message_id = ?1 ORDER BY seq",
        )?;
        let raw = stmt
            .query_map([id.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<u8>>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<u8>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut parts = Vec::with_capacity(raw.len());
        for (pid, seq, state, sim, mr, attempts, next, error, report, sent, delivered, msg_id) in
            raw
        {
            parts.push(PartView {
                id: PartId(pid),
                seq,
                state: PartState::parse(&state)?,
                sim: sim.map(SimId),
                tp_mr: mr,
                attempts,
                next_attempt_at: ts_opt(next),
                error,
                report_status: report,
                sent_at: ts_opt(sent),
                delivered_at: ts_opt(delivered),
                gateway_msg_id: msg_id,
            });
        }
        Ok(Some(MessageView {
            summary,
            text,
            encoding,
            not_before: ts_opt(not_before),
            deadline: ts_opt(deadline),
            report_requested,
            parts,
            channel,
        }))
    }

    /// Messages, newest first, filtered by state and account; `before` pages by id.
    pub fn list_messages(&self, q: &MessageQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, account, recipient, state, part_count, priority, created_at, sent_at,
                    delivered_at, last_error
             FROM messages
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR account = ?2)
               AND (?3 IS NULL OR id < ?3)
               AND (?5 IS NULL OR ?5 = EXISTS (SELECT 1 FROM parts p
                        WHERE p.message_id = messages.id AND p.state = 'unknown'))
             ORDER BY id DESC LIMIT ?4",
        )?;
        let limit = if q.limit == 0 { 100 } else { q.limit };
        let rows = stmt
            .query_map(
                params![
                    q.state.map(|s| s.as_str()),
                    q.account,
                    q.before.map(|b| b.0),
                    limit,
                    q.unknown_parts
                ],
                summary_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(SummaryRow::finish).collect()
    }

    /// How many messages are in each state (states with none are left out).
    pub fn counts_by_state(&self) -> Result<Vec<(MessageState, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM messages GROUP BY state ORDER BY state")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (s, n) in rows {
            out.push((MessageState::parse(&s)?, n.max(0) as u64));
        }
        out.sort();
        Ok(out)
    }
}

pub(super) struct SummaryRow {
    id: i64,
    account: Option<String>,
    recipient: String,
    state: String,
    part_count: u32,
    priority: i32,
    created_at: i64,
    sent_at: Option<i64>,
    delivered_at: Option<i64>,
    last_error: Option<String>,
}

pub(super) fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok(SummaryRow {
        id: r.get(0)?,
        account: r.get(1)?,
        recipient: r.get(2)?,
        state: r.get(3)?,
        part_count: r.get(4)?,
        priority: r.get(5)?,
        created_at: r.get(6)?,
        sent_at: r.get(7)?,
        delivered_at: r.get(8)?,
        last_error: r.get(9)?,
    })
}

impl SummaryRow {
    fn finish(self) -> Result<MessageSummary, StoreError> {
        Ok(MessageSummary {
            id: MessageId(self.id),
            account: self.account,
            recipient: self.recipient,
            state: MessageState::parse(&self.state)?,
            part_count: self.part_count,
            priority: self.priority,
            created_at: ts(self.created_at),
            sent_at: ts_opt(self.sent_at),
            delivered_at: ts_opt(self.delivered_at),
            last_error: self.last_error,
        })
    }
}

/// One row of the due-parts queries ([`Store::due_parts`] and `Store::due_parts_indexed`), which
/// select the same columns in the same order.
pub(in crate::store) fn due_part_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DuePart> {
    Ok(DuePart {
        part: PartId(r.get(0)?),
        message: MessageId(r.get(1)?),
        seq: r.get(2)?,
        total: r.get(3)?,
        recipient_carrier: Carrier::from_name(&r.get::<_, String>(4)?),
        priority: r.get(5)?,
        created_at: ts(r.get(6)?),
        not_before: ts_opt(r.get(7)?),
        deadline: ts_opt(r.get(8)?),
        next_attempt_at: ts_opt(r.get(9)?),
        avoid_sims: parse_avoid(&r.get::<_, String>(10)?),
        pinned_sim: r.get::<_, Option<i64>>(11)?.map(SimId),
        previous_sent: r.get(12)?,
    })
}
