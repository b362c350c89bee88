//! The carrier-gateway channel in the store (issue 12): a message's channel (sender kind,
//! gateway, Src_Id, fallback), the gateway's due parts and their claims, SUBMIT outcomes keyed
//! by the gateway's Msg_Id, CMPP status reports matched by Msg_Id, MO messages with the account
//! their Dest_Id names, and the fallback of 106 messages to the modems.
//!
//! What must always hold: a gateway part is `sending` in a committed row before its SUBMIT is
//! written (the same rule as a modem part and AT+CMGS), through the same transitions and
//! therefore the same credit and audit hooks; a modem never claims a gateway message and a
//! gateway never claims a modem message; a flow-controlled SUBMIT (result 8: the gateway did not
//! take it) goes back to the queue without counting as an attempt; every report is recorded,
//! once per (gateway, Msg_Id), and a report that arrives before its part has its Msg_Id waits
//! unmatched and is applied when the Msg_Id is recorded; only a message none of whose parts has
//! left falls back to the modems (a long message is never split over two senders).

use super::*;
use crate::store::inbound::{store_inbound_in, InboundOutcome, InboundPart};
use crate::store::CachedSql;

/// The channel of an accepted message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageChannel {
    /// "mobile", "phs" or "106".
    pub sender_kind: String,
    /// The `[[gateways]]` name; None: the modem bank.
    pub gateway: Option<String>,
    /// The Src_Id of its SUBMITs (access number + extension).
    pub src_id: Option<String>,
    /// May go to the modems while its gateway is down.
    pub fallback: bool,
}

/// Records `id`'s channel, inside the acceptance transaction.
pub fn set_message_channel(
    tx: &Transaction<'_>,
    id: MessageId,
    c: &MessageChannel,
) -> Result<(), StoreError> {
    // The columns' defaults are the modem bank from a mobile number: nothing to write then
    // (acceptance is a hot path).
    if c.sender_kind == "mobile" && c.gateway.is_none() && c.src_id.is_none() && !c.fallback {
        return Ok(());
    }
    tx.prepare_cached(
        "UPDATE messages SET sender_kind = ?2, gateway = ?3, src_id = ?4, fallback = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        id.0,
        c.sender_kind,
        c.gateway,
        c.src_id,
        c.fallback
    ])?;
    Ok(())
}

/// A gateway part that is due (or whose message's deadline passed: `expired`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayDue {
    pub part: PartId,
    pub message: MessageId,
    pub seq: u32,
    pub expired: bool,
}

/// What the gateway task needs to submit a claimed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayClaim {
    pub part: PartId,
    pub message: MessageId,
    pub seq: u32,
    pub total: u32,
    pub pdu_hex: String,
    /// Src_Id recorded at acceptance ("" when none was: the bare access number).
    pub src_id: String,
    pub attempt: u32,
}

/// What became of one SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayOutcome {
    /// SUBMIT_RESP result 0.
    Sent { part: PartId, msg_id: u64 },
    /// Refused (classified), or provably never written: the retry policy decides.
    Failed {
        part: PartId,
        error: String,
        kind: FailureKind,
    },
    /// Written, never answered: `unknown`, never resent by itself.
    Unknown { part: PartId, error: String },
    /// Flow control (result 8) or the link went down before the write: not taken, not a
    /// failure; due again at `at`, the attempt not counted.
    Deferred {
        part: PartId,
        error: String,
        at: Timestamp,
    },
}

impl GatewayOutcome {
    pub fn part(&self) -> PartId {
        match self {
            GatewayOutcome::Sent { part, .. }
            | GatewayOutcome::Failed { part, .. }
            | GatewayOutcome::Unknown { part, .. }
            | GatewayOutcome::Deferred { part, .. } => *part,
        }
    }
}

/// A CMPP status report as the link hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayReportIn {
    pub gateway: String,
    pub msg_id: u64,
    /// DELIVRD, UNDELIV, ...
    pub stat: String,
    pub delivered: bool,
    /// Dest_terminal_Id of the report.
    pub recipient: String,
}

/// What a gateway report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayReportOutcome {
    /// Seen before (the gateway sent it again): nothing changed.
    Duplicate,
    /// No part has this Msg_Id yet (it may come with a later SUBMIT_RESP): kept.
    Unmatched,
    Delivered {
        part: PartId,
        message: MessageId,
    },
    Failed {
        part: PartId,
        message: MessageId,
    },
}

/// What storing an MO did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayMoOutcome {
    pub stored: InboundOutcome,
    /// The accounts the sender opted out of (an unsubscribe word), if any.
    pub opted_out: Option<Vec<i64>>,
}

impl Store {
    /// The due parts of `gateway`'s messages, in priority order (at most `limit`): queued, their
    /// message sendable and due, their back-off passed, their previous part sent; and those whose
    /// message's deadline passed (`expired`), for the caller to expire.
    pub fn gateway_due_parts(
        &self,
        gateway: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<GatewayDue>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.message_id, p.seq, (m.deadline IS NOT NULL AND m.deadline <= ?3)
             FROM messages m INDEXED BY messages_gateway_state
                  JOIN parts p ON p.message_id = m.id
             WHERE m.gateway = ?1 AND m.state IN ('queued', 'scheduled', 'sending')
               AND p.state = 'queued'
               AND (m.deadline <= ?3
                    OR ((m.not_before IS NULL OR m.not_before <= ?3)
                        AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= ?3)
                        AND (p.seq = 1 OR EXISTS (SELECT 1 FROM parts q
                            WHERE q.message_id = p.message_id AND q.seq = p.seq - 1
                              AND q.state IN ('sent', 'delivered')))))
             ORDER BY m.priority DESC, m.created_at, m.id, p.seq
             LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![gateway, limit, ms(now)], |r| {
            Ok(GatewayDue {
                part: PartId(r.get(0)?),
                message: MessageId(r.get(1)?),
                seq: r.get(2)?,
                expired: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When `gateway`'s next queued part becomes due (its message's `not_before` or its own
    /// back-off), if it waits on time.
    pub fn gateway_next_due(
        &self,
        gateway: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let t: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT MIN(MAX(COALESCE(m.not_before, 0), COALESCE(p.next_attempt_at, 0)))
             FROM messages m INDEXED BY messages_gateway_state
                  JOIN parts p ON p.message_id = m.id
             WHERE m.gateway = ?1 AND m.state IN ('queued', 'scheduled', 'sending')
               AND p.state = 'queued'
               AND MAX(COALESCE(m.not_before, 0), COALESCE(p.next_attempt_at, 0)) > ?2",
            )?
            .query_row(params![gateway, ms(now)], |r| r.get(0))?;
        Ok(t.map(ts))
    }

    /// Claims each part for `gateway` (`sending`), all in one transaction committed before this
    /// returns; each item as [`Store::claim`] would decide it, minus the SIM.
    pub fn claim_gateway_many(
        &mut self,
        parts: &[PartId],
        gateway: &str,
        now: Timestamp,
    ) -> Result<Vec<Result<GatewayClaim, StoreError>>, StoreError> {
        let jobs: Vec<_> = parts
            .iter()
            .map(|&p| move |tx: &Transaction<'_>| claim_gateway_in(tx, p, gateway, now))
            .collect();
        self.each_in_one_commit(jobs)
    }

    /// Commits SUBMIT outcomes, one transaction, each in its own SAVEPOINT.
    pub fn record_gateway_outcomes(
        &mut self,
        items: &[(GatewayOutcome, Timestamp)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let policy = self.retry_policy;
        let jobs: Vec<_> = items
            .iter()
            .map(|(o, now)| {
                move |tx: &Transaction<'_>| -> Result<(), StoreError> {
                    let now = *now;
                    match o {
                        GatewayOutcome::Sent { part, msg_id } => {
                            mark_gateway_sent_in(tx, *part, *msg_id, now)
                        }
                        GatewayOutcome::Failed { part, error, kind } => {
                            mark_failed_in(tx, &policy, *part, error, *kind, now).map(|_| ())
                        }
                        GatewayOutcome::Unknown { part, error } => {
                            mark_unknown_in(tx, *part, error, now)
                        }
                        GatewayOutcome::Deferred { part, error, at } => {
                            defer_in(tx, *part, error, *at, now)
                        }
                    }
                }
            })
            .collect();
        self.each_in_one_commit(jobs)
    }

    /// An `unknown` part whose SUBMIT_RESP came late (result 0 with `msg_id`): it did go out;
    /// it becomes `sent` with its Msg_Id (and a report already here is applied).
    pub fn settle_gateway_late(
        &mut self,
        part: PartId,
        msg_id: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transaction(|tx| {
            if part_state(tx, part)? != PartState::Unknown {
                return Ok(false);
            }
            let message: i64 = tx.query_row_cached(
                "UPDATE parts SET error = 'settled by a late SUBMIT_RESP', gateway_msg_id = ?2,
                     next_attempt_at = NULL, sent_at = COALESCE(claimed_at, ?3)
                 WHERE id = ?1 RETURNING message_id",
                params![part.0, msg_id.to_string(), ms(now)],
                |r| r.get(0),
            )?;
            set_part_state(tx, part, PartState::Sent, now)?;
            recompute(tx, MessageId(message), now, None)?;
            apply_waiting_report(tx, part, MessageId(message), msg_id, now)?;
            Ok(true)
        })
    }

    /// Records a CMPP status report and applies it to the part with its Msg_Id; without one,
    /// to an `unknown` part of the gateway and recipient claimed inside the settle window
    /// (settled as sent first). Recorded once per (gateway, Msg_Id).
    pub fn apply_gateway_report(
        &mut self,
        r: &GatewayReportIn,
        now: Timestamp,
    ) -> Result<GatewayReportOutcome, StoreError> {
        let window = self.settle_window();
        self.transaction(|tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO gateway_reports
                         (gateway, msg_id, stat, recipient, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    r.gateway,
                    r.msg_id.to_string(),
                    r.stat,
                    r.recipient,
                    ms(now)
                ])?;
            if inserted == 0 {
                return Ok(GatewayReportOutcome::Duplicate);
            }
            let report_id = tx.last_insert_rowid();
            let found: Option<(i64, i64, String)> = tx
                .prepare_cached(
                    "SELECT p.id, p.message_id, p.state FROM parts p
                     JOIN messages m ON m.id = p.message_id
                     WHERE p.gateway_msg_id = ?1 AND m.gateway = ?2",
                )?
                .query_row(params![r.msg_id.to_string(), r.gateway], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            let matched = match found {
                Some((p, m, _)) => Some((PartId(p), MessageId(m))),
                None => settle_unknown_gateway(tx, r, window, now)?,
            };
            let Some((part, message)) = matched else {
                tracing::info!(
                    gateway = %r.gateway,
                    msg_id = r.msg_id,
                    "gateway report matched no part (yet)"
                );
                return Ok(GatewayReportOutcome::Unmatched);
            };
            tx.execute_cached(
                "UPDATE gateway_reports SET part_id = ?2 WHERE id = ?1",
                params![report_id, part.0],
            )?;
            apply_stat(tx, part, message, &r.stat, r.delivered, now)
        })
    }

    /// Stores an MO that came through `gateway` (de-duplicated like any inbound part: give
    /// `raw_pdu` the Msg_Id), naming `account` (from Dest_Id's extension); an unsubscribe word
    /// opts the sender out of that account (of every account that messaged it when the
    /// extension named none). One transaction.
    pub fn store_gateway_mo(
        &mut self,
        part: &InboundPart,
        gateway: &str,
        account: Option<&str>,
        optout: &crate::policy::OptOutConfig,
        now: Timestamp,
    ) -> Result<GatewayMoOutcome, StoreError> {
        self.transaction(|tx| {
            let stored = store_inbound_in(tx, part, now)?;
            let id = match stored {
                InboundOutcome::Duplicate(_) => {
                    return Ok(GatewayMoOutcome {
                        stored,
                        opted_out: None,
                    })
                }
                InboundOutcome::Partial(id) | InboundOutcome::Complete(id) => id,
            };
            tx.execute_cached(
                "UPDATE inbound SET account = ?2, gateway = ?3 WHERE id = ?1",
                params![id.0, account, gateway],
            )?;
            let single = part.concat.is_none() && !part.sender.is_empty();
            let mut opted_out = None;
            if single && optout.is_unsubscribe(&part.text) {
                let known = match account {
                    Some(name) => crate::store::contract::account_by_name(tx, name)
                        .map_err(|e| StoreError::Contract(e.to_string()))?,
                    None => None,
                };
                opted_out = match known {
                    Some(a) => {
                        let source =
                            format!("inbound reply {:?} via gateway {gateway}", part.text.trim());
                        crate::store::contract::add_opt_out(tx, a.id, &part.sender, &source, now)
                            .map_err(|e| StoreError::Contract(e.to_string()))?;
                        tracing::info!(
                            sender = %number::mask(&part.sender),
                            gateway,
                            "opt-out received through the gateway"
                        );
                        Some(vec![a.id])
                    }
                    None => crate::store::contract::apply_inbound_opt_out(
                        tx,
                        &part.sender,
                        &part.text,
                        optout,
                        now,
                    )
                    .map_err(|e| StoreError::Contract(e.to_string()))?,
                };
            }
            Ok(GatewayMoOutcome { stored, opted_out })
        })
    }

    /// The account of an inbound message that came through a gateway, if it named one.
    pub fn inbound_account(&self, id: crate::ids::InboundId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT account FROM inbound WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// `gateway` is down: its messages whose account allows it (`fallback`) and none of whose
    /// parts has left go to the modem bank instead. Returns them.
    pub fn fall_back_to_modems(&mut self, gateway: &str) -> Result<Vec<MessageId>, StoreError> {
        self.transaction(|tx| {
            let ids: Vec<i64> = tx
                .prepare_cached(
                    "UPDATE messages SET gateway = NULL, src_id = NULL,
                         last_error = 'gateway ' || ?1 || ' down: sent by the modems (fallback)'
                     WHERE gateway = ?1 AND fallback = 1
                       AND state IN ('queued', 'scheduled', 'sending')
                       AND NOT EXISTS (SELECT 1 FROM parts p WHERE p.message_id = messages.id
                                       AND p.state != 'queued')
                     RETURNING id",
                )?
                .query_map([gateway], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                tracing::info!(
                    message = id,
                    gateway,
                    "gateway down: message falls back to the modems"
                );
            }
            Ok(ids.into_iter().map(MessageId).collect())
        })
    }
}

pub(in crate::store) fn claim_gateway_in(
    tx: &Transaction<'_>,
    part: PartId,
    gateway: &str,
    now: Timestamp,
) -> Result<GatewayClaim, StoreError> {
    let refuse = |why: String| StoreError::NotClaimable { part: part.0, why };
    let row = tx
        .prepare_cached(
            "SELECT p.message_id, p.seq, m.part_count, p.state, m.state, m.deadline, p.pdu_hex,
                    p.attempts, m.gateway, m.src_id
             FROM parts p JOIN messages m ON m.id = p.message_id WHERE p.id = ?1",
        )?
        .query_row([part.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, u32>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })
        .optional()?
        .ok_or(StoreError::NoSuchPart(part.0))?;
    let (message, seq, total, pstate, mstate, deadline, pdu_hex, attempts, gw, src_id) = row;
    let message = MessageId(message);
    if gw.as_deref() != Some(gateway) {
        return Err(refuse(match gw {
            Some(g) => format!("message goes by gateway {g}"),
            None => "message goes by the modems".into(),
        }));
    }
    check_claimable(part, &pstate, &mstate, deadline, now)?;
    previous_part_sent(tx, part, message, seq)?;
    set_part_state(tx, part, PartState::Sending, now)?;
    tx.execute_cached(
        "UPDATE parts SET attempts = attempts + 1, claimed_at = ?2 WHERE id = ?1",
        params![part.0, ms(now)],
    )?;
    set_message_state(tx, message, MessageState::Sending, now, None)?;
    Ok(GatewayClaim {
        part,
        message,
        seq,
        total,
        pdu_hex,
        src_id: src_id.unwrap_or_default(),
        attempt: attempts + 1,
    })
}

fn mark_gateway_sent_in(
    tx: &Transaction<'_>,
    part: PartId,
    msg_id: u64,
    now: Timestamp,
) -> Result<(), StoreError> {
    expect_in_flight(tx, part, PartState::Sent)?;
    let message: i64 = tx.query_row_cached(
        "UPDATE parts SET gateway_msg_id = ?2, sent_at = ?3, next_attempt_at = NULL, error = NULL
         WHERE id = ?1 RETURNING message_id",
        params![part.0, msg_id.to_string(), ms(now)],
        |r| r.get(0),
    )?;
    set_part_state(tx, part, PartState::Sent, now)?;
    recompute(tx, MessageId(message), now, None)?;
    apply_waiting_report(tx, part, MessageId(message), msg_id, now)
}

/// Flow control: back to the queue, due at `at`, the attempt not counted.
fn defer_in(
    tx: &Transaction<'_>,
    part: PartId,
    error: &str,
    at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    expect_in_flight(tx, part, PartState::Queued)?;
    set_part_state(tx, part, PartState::Queued, now)?;
    tx.execute_cached(
        "UPDATE parts SET attempts = MAX(attempts - 1, 0), next_attempt_at = ?2, error = ?3
         WHERE id = ?1",
        params![part.0, ms(at), error],
    )?;
    Ok(())
}

/// A report that came before the part's Msg_Id was recorded: applied now.
fn apply_waiting_report(
    tx: &Transaction<'_>,
    part: PartId,
    message: MessageId,
    msg_id: u64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let early: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT r.id, r.stat FROM gateway_reports r
             JOIN messages m ON m.gateway = r.gateway
             WHERE r.msg_id = ?1 AND r.part_id IS NULL AND m.id = ?2",
        )?
        .query_row(params![msg_id.to_string(), message.0], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((report, stat)) = early else {
        return Ok(());
    };
    tx.execute_cached(
        "UPDATE gateway_reports SET part_id = ?2 WHERE id = ?1",
        params![report, part.0],
    )?;
    tracing::info!(
        part = part.0,
        "a gateway report that came before its SUBMIT_RESP applied"
    );
    apply_stat(tx, part, message, &stat, stat == "DELIVRD", now)?;
    Ok(())
}

/// An `unknown` part of this gateway and recipient claimed inside the settle window, settled
/// as sent (the network had it) for the report to apply to.
fn settle_unknown_gateway(
    tx: &Transaction<'_>,
    r: &GatewayReportIn,
    window: jiff::SignedDuration,
    now: Timestamp,
) -> Result<Option<(PartId, MessageId)>, StoreError> {
    let since = ms(now) - window.as_millis() as i64;
    let candidates: Vec<(i64, i64, String)> = tx
        .prepare_cached(
            "SELECT p.id, p.message_id, m.recipient FROM parts p
             JOIN messages m ON m.id = p.message_id
             WHERE m.gateway = ?1 AND p.state = 'unknown' AND p.claimed_at >= ?2
               AND p.gateway_msg_id IS NULL
             ORDER BY p.claimed_at, p.id",
        )?
        .query_map(params![r.gateway, since], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let Some((part, message, _)) = candidates
        .into_iter()
        .find(|(_, _, rcpt)| same_recipient(rcpt, &r.recipient))
    else {
        return Ok(None);
    };
    tx.execute_cached(
        "UPDATE parts SET error = 'settled by a gateway report', gateway_msg_id = ?2,
             next_attempt_at = NULL, sent_at = COALESCE(claimed_at, ?3)
         WHERE id = ?1",
        params![part, r.msg_id.to_string(), ms(now)],
    )?;
    set_part_state(tx, PartId(part), PartState::Sent, now)?;
    recompute(tx, MessageId(message), now, None)?;
    tracing::info!(part, "unknown gateway part settled as sent by a report");
    Ok(Some((PartId(part), MessageId(message))))
}

/// Applies a report's Stat to a part that left (sent or delivered).
fn apply_stat(
    tx: &Transaction<'_>,
    part: PartId,
    message: MessageId,
    stat: &str,
    delivered: bool,
    now: Timestamp,
) -> Result<GatewayReportOutcome, StoreError> {
    let state = part_state(tx, part)?;
    if !state.is_sent() {
        // Still `sending` (the SUBMIT_RESP is being written): the report waits for it.
        return Ok(GatewayReportOutcome::Unmatched);
    }
    let outcome = if delivered {
        if state != PartState::Delivered {
            set_part_state(tx, part, PartState::Delivered, now)?;
            tx.execute_cached(
                "UPDATE parts SET delivered_at = ?2 WHERE id = ?1",
                params![part.0, ms(now)],
            )?;
        }
        GatewayReportOutcome::Delivered { part, message }
    } else {
        if state == PartState::Delivered {
            // A failure after a delivery is stale; the delivery stands.
            return Ok(GatewayReportOutcome::Delivered { part, message });
        }
        let error = format!("gateway report: {stat}");
        tx.execute_cached(
            "UPDATE parts SET error = ?2 WHERE id = ?1",
            params![part.0, error],
        )?;
        set_part_state(tx, part, PartState::Failed, now)?;
        let seq: u32 =
            tx.query_row_cached("SELECT seq FROM parts WHERE id = ?1", [part.0], |r| {
                r.get(0)
            })?;
        let current = message_state(tx, message)?;
        if current.is_sendable() || current == MessageState::Sent {
            fail_message(tx, message, seq, &error, now)?;
        }
        GatewayReportOutcome::Failed { part, message }
    };
    recompute(tx, message, now, None)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{InitialState, NewMessage, NewPart, SimIdentity};

    const PDU: &str = "0011000D91683119325476F80008AA0C4F60597D4E16754C0021";

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap()
    }

    fn msg(i: usize, parts: usize) -> NewMessage {
        NewMessage {
            account: None,
            recipient: format!("+86139{i:08}"),
            recipient_carrier: Carrier::ChinaMobile,
            text: "x".into(),
            encoding: "ucs2".into(),
            priority: 0,
            not_before: None,
            deadline: None,
            report_requested: true,
            initial: InitialState::Ready,
            parts: (0..parts)
                .map(|_| NewPart {
                    pdu_hex: PDU.into(),
                    cmgs_length: 24,
                })
                .collect(),
        }
    }

    fn channel(fallback: bool) -> MessageChannel {
        MessageChannel {
            sender_kind: "106".into(),
            gateway: Some("cmcc".into()),
            src_id: Some("106901234542".into()),
            fallback,
        }
    }

    /// One message on the gateway, one on the modems.
    fn setup(fallback: bool, parts: usize) -> (Store, MessageId, MessageId) {
        let mut s = Store::open_in_memory().unwrap();
        let gw = s
            .transaction(|tx| {
                let ids = crate::store::insert_messages(tx, &[msg(1, parts)], t(0))?;
                set_message_channel(tx, ids[0], &channel(fallback))?;
                Ok::<_, StoreError>(ids[0])
            })
            .unwrap();
        let modem = s.accept(&[msg(2, 1)], t(1)).unwrap()[0];
        (s, gw, modem)
    }

    fn sent(s: &mut Store, part: PartId, msg_id: u64, now: Timestamp) {
        let r = s
            .record_gateway_outcomes(&[(GatewayOutcome::Sent { part, msg_id }, now)])
            .unwrap();
        r[0].as_ref().unwrap();
    }

    #[test]
    fn modems_and_gateways_never_take_each_others_parts() {
        let (mut s, gw, modem) = setup(false, 1);
        let sim = s
            .upsert_sim(
                &SimIdentity {
                    iccid: Some("89860000000000000001".into()),
                    imsi: None,
                    own_number: None,
                },
                "/dev/m1",
                t(0),
            )
            .unwrap();
        let modem_due = s.due_parts(100, t(10)).unwrap();
        assert_eq!(
            modem_due.iter().map(|d| d.message).collect::<Vec<_>>(),
            vec![modem]
        );
        assert_eq!(s.due_parts_indexed(100, t(10)).unwrap(), modem_due);
        let gw_due = s.gateway_due_parts("cmcc", 100, t(10)).unwrap();
        assert_eq!(
            gw_due.iter().map(|d| d.message).collect::<Vec<_>>(),
            vec![gw]
        );
        assert!(s.gateway_due_parts("other", 100, t(10)).unwrap().is_empty());
        // The claims refuse the other channel's parts.
        let err = s.claim(gw_due[0].part, sim, t(11)).unwrap_err();
        assert!(err.to_string().contains("gateway cmcc"), "{err}");
        let r = s
            .claim_gateway_many(&[modem_due[0].part], "cmcc", t(11))
            .unwrap();
        assert!(r[0].as_ref().unwrap_err().to_string().contains("modems"));
        let c = s
            .claim_gateway_many(&[gw_due[0].part], "cmcc", t(11))
            .unwrap();
        let c = c[0].as_ref().unwrap();
        assert_eq!(
            (c.src_id.as_str(), c.attempt, c.total),
            ("106901234542", 1, 1)
        );
        assert!(s.gateway_due_parts("cmcc", 100, t(12)).unwrap().is_empty());
    }

    #[test]
    fn reports_match_by_msg_id_even_before_the_submit_resp() {
        let (mut s, gw, _) = setup(false, 2);
        let due = s.gateway_due_parts("cmcc", 100, t(10)).unwrap();
        // Only the first part is due: parts go in order.
        assert_eq!(due.len(), 1);
        let p1 = due[0].part;
        s.claim_gateway_many(&[p1], "cmcc", t(11)).unwrap();
        // The report overtakes the SUBMIT_RESP.
        let report = |id: u64, stat: &str| GatewayReportIn {
            gateway: "cmcc".into(),
            msg_id: id,
            stat: stat.into(),
            delivered: stat == "DELIVRD",
            recipient: "13900000001".into(),
        };
        let big = u64::MAX - 5; // top bit set: stored as text, not as i64
        assert_eq!(
            s.apply_gateway_report(&report(big, "DELIVRD"), t(12))
                .unwrap(),
            GatewayReportOutcome::Unmatched
        );
        sent(&mut s, p1, big, t(13));
        let v = s.message(gw).unwrap().unwrap();
        assert_eq!(v.parts[0].state, PartState::Delivered, "{v:?}");
        // A repeated report changes nothing.
        assert_eq!(
            s.apply_gateway_report(&report(big, "UNDELIV"), t(14))
                .unwrap(),
            GatewayReportOutcome::Duplicate
        );
        let p2 = s.gateway_due_parts("cmcc", 100, t(15)).unwrap()[0].part;
        s.claim_gateway_many(&[p2], "cmcc", t(15)).unwrap();
        sent(&mut s, p2, 7, t(16));
        assert!(matches!(
            s.apply_gateway_report(&report(7, "UNDELIV"), t(17))
                .unwrap(),
            GatewayReportOutcome::Failed { .. }
        ));
        let v = s.message(gw).unwrap().unwrap();
        assert_eq!(v.summary.state, MessageState::Failed, "{v:?}");
    }

    #[test]
    fn a_report_under_an_unknown_msg_id_settles_the_unknown_part_of_its_recipient() {
        // Issue 12: a SUBMIT whose SUBMIT_RESP never came is `unknown`; the gateway's report
        // for it carries a Msg_Id the store never learned, and settles it by gateway,
        // recipient and the settle window, as status reports do for modems.
        let (mut s, gw, _) = setup(false, 1);
        let p = s.gateway_due_parts("cmcc", 10, t(10)).unwrap()[0].part;
        s.claim_gateway_many(&[p], "cmcc", t(10)).unwrap();
        let unknown = GatewayOutcome::Unknown {
            part: p,
            error: "no SUBMIT_RESP".into(),
        };
        s.record_gateway_outcomes(&[(unknown, t(11))]).unwrap()[0]
            .as_ref()
            .unwrap();
        let report = |recipient: &str, id: u64| GatewayReportIn {
            gateway: "cmcc".into(),
            msg_id: id,
            stat: "DELIVRD".into(),
            delivered: true,
            recipient: recipient.into(),
        };
        // Another recipient's report settles nothing.
        assert_eq!(
            s.apply_gateway_report(&report("13900000999", 41), t(12))
                .unwrap(),
            GatewayReportOutcome::Unmatched
        );
        assert_eq!(
            s.message(gw).unwrap().unwrap().parts[0].state,
            PartState::Unknown
        );
        // Its own recipient's report settles it: sent, then delivered.
        s.apply_gateway_report(&report("13900000001", 42), t(13))
            .unwrap();
        let v = s.message(gw).unwrap().unwrap();
        assert_eq!(v.parts[0].state, PartState::Delivered, "{v:?}");
        assert_eq!(v.summary.state, MessageState::Delivered, "{v:?}");
    }

    #[test]
    fn flow_control_is_not_an_attempt_and_unknown_is_never_due() {
        let (mut s, _, _) = setup(false, 1);
        let p = s.gateway_due_parts("cmcc", 10, t(10)).unwrap()[0].part;
        s.claim_gateway_many(&[p], "cmcc", t(10)).unwrap();
        let deferred = GatewayOutcome::Deferred {
            part: p,
            error: "flow control".into(),
            at: t(500),
        };
        s.record_gateway_outcomes(&[(deferred, t(11))]).unwrap()[0]
            .as_ref()
            .unwrap();
        assert!(s.gateway_due_parts("cmcc", 10, t(100)).unwrap().is_empty());
        assert_eq!(s.gateway_next_due("cmcc", t(100)).unwrap(), Some(t(500)));
        let c = s.claim_gateway_many(&[p], "cmcc", t(500)).unwrap();
        assert_eq!(c[0].as_ref().unwrap().attempt, 1, "flow control counted");
        let unknown = GatewayOutcome::Unknown {
            part: p,
            error: "no SUBMIT_RESP".into(),
        };
        s.record_gateway_outcomes(&[(unknown, t(501))]).unwrap()[0]
            .as_ref()
            .unwrap();
        assert!(s
            .gateway_due_parts("cmcc", 10, t(99_999))
            .unwrap()
            .is_empty());
        // A late SUBMIT_RESP settles it as sent with its Msg_Id.
        assert!(s.settle_gateway_late(p, 99, t(600)).unwrap());
        assert_eq!(
            s.message(MessageId(1)).unwrap().unwrap().parts[0].state,
            PartState::Sent
        );
    }

    #[test]
    fn only_untouched_fallback_messages_go_to_the_modems() {
        let (mut s, gw, _) = setup(true, 1);
        let (mut t2, gw2, _) = setup(false, 1);
        assert_eq!(s.fall_back_to_modems("cmcc").unwrap(), vec![gw]);
        assert_eq!(s.due_parts(10, t(10)).unwrap().len(), 2);
        assert!(t2.fall_back_to_modems("cmcc").unwrap().is_empty());
        assert_eq!(
            t2.gateway_due_parts("cmcc", 10, t(10)).unwrap()[0].message,
            gw2
        );
    }

    #[test]
    fn audit_names_the_gateway_and_src_id() {
        let (mut s, _, _) = setup(false, 1);
        let p = s.gateway_due_parts("cmcc", 10, t(10)).unwrap()[0].part;
        s.claim_gateway_many(&[p], "cmcc", t(10)).unwrap();
        sent(&mut s, p, 5, t(11));
        let records = crate::store::audit::all_records(&s.conn).unwrap();
        let r = records.iter().find(|r| r.entry.event == "sent").unwrap();
        assert_eq!(r.entry.sim_iccid.as_deref(), Some("gateway:cmcc"));
        assert_eq!(r.entry.sim_number.as_deref(), Some("106901234542"));
    }
}
