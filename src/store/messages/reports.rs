//! Status reports: matching a report to the part it is about (SIM, TP-MR and recipient, or an
//! `unknown` part of the same SIM and recipient inside the settle window) and applying it,
//! including a report that arrives before its part is marked sent.
//!
//! What must always hold: every report is recorded, matched or not; a failure reported after a
//! delivery is stale and the delivery stands.

use super::*;
use crate::store::CachedSql;

impl Store {
    /// Matches a status report to the most recent sent part with the same SIM, TP-MR and
    /// recipient, and applies it; without one, to an `unknown` part of the same SIM and
    /// recipient claimed inside the settle window (which the report settles as sent first).
    /// Every report is recorded, matched or not.
    pub fn apply_status_report(
        &mut self,
        report: &StatusReportIn,
        now: Timestamp,
    ) -> Result<ReportOutcome, StoreError> {
        let window = self.settle_window();
        self.transaction(|tx| apply_report_in(tx, report, window, now))
    }
}

pub(super) fn apply_report_in(
    tx: &Transaction<'_>,
    report: &StatusReportIn,
    window: jiff::SignedDuration,
    now: Timestamp,
) -> Result<ReportOutcome, StoreError> {
    let candidates: Vec<(i64, i64, String)> = tx
        .prepare_cached(
            "SELECT p.id, p.message_id, m.recipient FROM parts p
             JOIN messages m ON m.id = p.message_id
             WHERE p.sim_id = ?1 AND p.tp_mr = ?2 AND p.sent_at >= ?3
               AND p.state IN ('sent', 'delivered')
             ORDER BY p.sent_at DESC, p.id DESC",
        )?
        .query_map(
            params![report.sim.0, report.tp_mr, ms(now) - REPORT_MATCH_WINDOW_MS],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut matched = candidates
        .into_iter()
        .find(|(_, _, rcpt)| same_recipient(rcpt, &report.recipient));
    if matched.is_none() {
        // No sent part: maybe an `unknown` one (its PDU left, no answer came) that the
        // network did take. The report settles it (RELIABILITY.md).
        matched = crate::store::settle::settle_unknown_by_report_in(
            tx,
            report.sim,
            report.tp_mr,
            &report.recipient,
            window,
            now,
        )?
        .map(|(p, m)| (p.0, m.0, report.recipient.clone()));
    }
    tx.execute_cached(
        "INSERT INTO status_reports (sim_id, tp_mr, recipient, status, raw_pdu, received_at,
             part_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            report.sim.0,
            report.tp_mr,
            report.recipient,
            report.status,
            report.raw_pdu,
            ms(now),
            matched.as_ref().map(|m| m.0)
        ],
    )?;
    let Some((part, message, _)) = matched else {
        tracing::info!(
            sim = report.sim.0,
            mr = report.tp_mr,
            recipient = %number::mask(&report.recipient),
            "status report matched no sent part"
        );
        return Ok(ReportOutcome::Unmatched);
    };
    apply_status(tx, PartId(part), MessageId(message), report.status, now)
}

/// Applies a report's TP-Status to the sent part it is about.
pub(super) fn apply_status(
    tx: &Transaction<'_>,
    part: PartId,
    message: MessageId,
    status: u8,
    now: Timestamp,
) -> Result<ReportOutcome, StoreError> {
    tx.execute_cached(
        "UPDATE parts SET report_status = ?2 WHERE id = ?1",
        params![part.0, status],
    )?;
    // TS 23.040 9.2.3.15: 0x00-0x1F completed, 0x20-0x3F SC still trying, the rest failed.
    let outcome = match status {
        0x00..=0x1F => {
            set_part_state(tx, part, PartState::Delivered, now)?;
            tx.execute_cached(
                "UPDATE parts SET delivered_at = ?2 WHERE id = ?1",
                params![part.0, ms(now)],
            )?;
            ReportOutcome::Delivered { part, message }
        }
        0x20..=0x3F => return Ok(ReportOutcome::Pending { part, message }),
        s => {
            if part_state(tx, part)? == PartState::Delivered {
                // A failure after a delivery is stale; the delivery stands.
                return Ok(ReportOutcome::Delivered { part, message });
            }
            set_part_state(tx, part, PartState::Failed, now)?;
            let error = format!("status report: TP-Status 0x{s:02X}");
            tx.execute_cached(
                "UPDATE parts SET error = ?2 WHERE id = ?1",
                params![part.0, error],
            )?;
            let seq: u32 =
                tx.query_row_cached("SELECT seq FROM parts WHERE id = ?1", [part.0], |r| {
                    r.get(0)
                })?;
            let current = message_state(tx, message)?;
            if current.is_sendable() || current == MessageState::Sent {
                fail_message(tx, message, seq, &error, now)?;
            }
            ReportOutcome::Failed { part, message }
        }
    };
    recompute(tx, message, now, None)?;
    Ok(outcome)
}

/// A status report that arrived before its part's outcome was written (the group commit was
/// slower than the network, or the outcome waited for disk space) matched nothing and was kept
/// unmatched: now that the part has its TP-MR, the report is applied to it.
pub(super) fn apply_early_report(
    tx: &Transaction<'_>,
    part: PartId,
    message: MessageId,
    sim: SimId,
    tp_mr: u8,
    now: Timestamp,
) -> Result<(), StoreError> {
    let recipient: String = tx.query_row_cached(
        "SELECT recipient FROM messages WHERE id = ?1",
        [message.0],
        |r| r.get(0),
    )?;
    let early: Vec<(i64, String, u8)> = tx
        .prepare_cached(
            "SELECT id, recipient, status FROM status_reports
             WHERE sim_id = ?1 AND tp_mr = ?2 AND part_id IS NULL
               AND received_at >= (SELECT claimed_at FROM parts WHERE id = ?3)
             ORDER BY received_at DESC, id DESC",
        )?
        .query_map(params![sim.0, tp_mr, part.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let Some((report, _, status)) = early
        .into_iter()
        .find(|(_, rcpt, _)| same_recipient(rcpt, &recipient))
    else {
        return Ok(());
    };
    tx.execute_cached(
        "UPDATE status_reports SET part_id = ?2 WHERE id = ?1",
        params![report, part.0],
    )?;
    tracing::info!(
        part = part.0,
        "a status report that came before the outcome applied"
    );
    apply_status(tx, part, message, status, now)?;
    Ok(())
}
