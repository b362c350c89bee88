//! The web console's reads of one account (issue 13): its statistics (messages and parts today
//! and this month, parts sent / delivered / failed per hour), its send log for a date range, its
//! opt-out list, and the webhook events that are stuck (not delivered after an attempt). The
//! indexes behind them are migration 0012's, whose hook ([`add_console_columns`]) is here.
//!
//! What must always hold: every query is bounded by an index range (the account and a time, or
//! a time and then the message by its id), never a scan of `messages` or `parts`, so a store of
//! millions of parts answers at once (a unit test checks the plans); an account's reads see only
//! its own messages (`messages.account`); the send log is capped ([`SEND_LOG_MAX_ROWS`]) and
//! says so rather than being cut short silently.

use jiff::Timestamp;
use rusqlite::params;

use super::{ms, ts, ts_opt, Store, StoreError};

/// The most parts one send-log export holds; a longer range is refused (ask for a shorter one).
pub const SEND_LOG_MAX_ROWS: u32 = 200_000;

const HOUR_MS: i64 = 3_600_000;

/// Messages accepted today and this month, with their parts. `?2`: the earlier of the two
/// starts, `?3`: today's start, `?4`: the month's.
const TALLY_SQL: &str = "SELECT COALESCE(SUM(created_at >= ?3), 0),
            COALESCE(SUM(CASE WHEN created_at >= ?3 THEN part_count ELSE 0 END), 0),
            COALESCE(SUM(created_at >= ?4), 0),
            COALESCE(SUM(CASE WHEN created_at >= ?4 THEN part_count ELSE 0 END), 0)
     FROM messages WHERE account = ?1 AND created_at >= ?2";

/// Parts per hour since `?2`: sent (by `sent_at`, with how many of them are delivered now),
/// delivered (by `delivered_at`), failed or expired (by their message's `finished_at`). CROSS
/// JOIN fixes the loop order: along the time index first, then the message by its id (the
/// account's equality alone would tempt the planner into all of the account's messages).
const HOURS_SQL: &str = "SELECT h, SUM(s), SUM(d), SUM(f), SUM(sd) FROM (
        SELECT p.sent_at / 3600000 AS h, 1 AS s, 0 AS d, 0 AS f, p.state = 'delivered' AS sd
        FROM parts p CROSS JOIN messages m
        WHERE p.sent_at >= ?2 AND m.id = p.message_id AND m.account = ?1
      UNION ALL
        SELECT p.delivered_at / 3600000, 0, 1, 0, 0
        FROM parts p CROSS JOIN messages m
        WHERE p.delivered_at >= ?2 AND m.id = p.message_id AND m.account = ?1
      UNION ALL
        SELECT m.finished_at / 3600000, 0, 0, 1, 0
        FROM messages m CROSS JOIN parts p
        WHERE m.account = ?1 AND m.finished_at >= ?2 AND p.message_id = m.id
          AND p.state IN ('failed', 'expired')
     ) GROUP BY h ORDER BY h";

/// The parts of an account's messages accepted in `[?2, ?3)`, oldest first.
const SEND_LOG_SQL: &str = "SELECT m.id, p.seq, m.recipient, m.sender_kind, m.gateway, m.src_id,
            s.iccid, s.imsi, p.state, m.created_at, p.sent_at, p.delivered_at, p.error
     FROM messages m JOIN parts p ON p.message_id = m.id LEFT JOIN sims s ON s.id = p.sim_id
     WHERE m.account = ?1 AND m.created_at >= ?2 AND m.created_at < ?3
     ORDER BY m.created_at, m.id, p.seq LIMIT ?4";

/// Events not delivered after at least one attempt (of one account, or all with `?1` NULL):
/// along the partial index of exactly those (the planner would rather walk the whole outbox in
/// id order).
const STUCK_SQL: &str = "SELECT o.id, a.name, o.kind, o.message_id, o.attempts, o.created_at,
            o.first_attempt_at, o.last_attempt_at, o.last_error, o.next_attempt_at, o.given_up_at
     FROM webhook_outbox o INDEXED BY webhook_outbox_stuck JOIN accounts a ON a.id = o.account_id
     WHERE o.delivered_at IS NULL AND o.attempts >= 1 AND (?1 IS NULL OR o.account_id = ?1)
     ORDER BY o.id LIMIT ?2";

/// Migration 0012's columns (see that file), each only where missing: SQLite has no
/// `ADD COLUMN IF NOT EXISTS`, and migrations must be replayable.
pub(super) fn add_console_columns(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    for column in ["first_attempt_at", "last_attempt_at"] {
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('webhook_outbox') WHERE name = ?1)",
            [column],
            |r| r.get(0),
        )?;
        if !exists {
            tx.execute_batch(&format!(
                "ALTER TABLE webhook_outbox ADD COLUMN {column} INTEGER"
            ))?;
        }
    }
    Ok(())
}

/// One hour of [`AccountStats::hours`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourCounts {
    /// The hour's start.
    pub hour_ms: i64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// What [`Store::account_stats`] finds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountStats {
    /// (messages, parts) accepted since today's start.
    pub today: (u64, u64),
    /// (messages, parts) accepted since the month's start.
    pub month: (u64, u64),
    /// Parts sent since `since`, and how many of those are delivered now.
    pub sent: u64,
    pub delivered_of_sent: u64,
    /// Every hour from `since`'s hour to `now`'s, oldest first (zeros included).
    pub hours: Vec<HourCounts>,
}

/// One part of the send log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLogRow {
    pub message_id: i64,
    pub seq: u32,
    pub recipient: String,
    /// "mobile", "phs" or "106".
    pub sender_kind: String,
    /// The gateway (106) or the SIM (ICCID, else IMSI) that sent it, when known.
    pub via: Option<String>,
    pub state: String,
    pub created: Timestamp,
    pub sent: Option<Timestamp>,
    pub delivered: Option<Timestamp>,
    pub error: Option<String>,
}

/// A webhook event not delivered after at least one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckEvent {
    pub id: i64,
    pub account: String,
    pub kind: String,
    pub message_id: Option<i64>,
    pub attempts: u32,
    pub created: Timestamp,
    pub first_attempt: Option<Timestamp>,
    pub last_attempt: Option<Timestamp>,
    pub last_error: Option<String>,
    /// None once given up.
    pub next_attempt: Option<Timestamp>,
    pub given_up: Option<Timestamp>,
}

impl Store {
    /// The statistics of `account` (by name, as `messages.account`): the tallies since `today`
    /// and since `month`, and parts per hour from `since` to `now`. (The daemon's one
    /// connection is behind its mutex: no write comes between the two statements.)
    pub fn account_stats(
        &self,
        account: &str,
        today: Timestamp,
        month: Timestamp,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<AccountStats, StoreError> {
        let first = today.min(month);
        let since_ms = ms(since).div_euclid(HOUR_MS) * HOUR_MS;
        let last_hour = ms(now).div_euclid(HOUR_MS);
        {
            let tx = &self.conn;
            let (m_today, p_today, m_month, p_month): (i64, i64, i64, i64) = tx
                .prepare_cached(TALLY_SQL)?
                .query_row(params![account, ms(first), ms(today), ms(month)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
            let mut st = tx.prepare_cached(HOURS_SQL)?;
            let rows = st.query_map(params![account, since_ms], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            let first_hour = since_ms / HOUR_MS;
            let span = usize::try_from(last_hour - first_hour + 1).unwrap_or(0);
            let mut hours: Vec<HourCounts> = (0..span as i64)
                .map(|i| HourCounts {
                    hour_ms: (first_hour + i) * HOUR_MS,
                    ..HourCounts::default()
                })
                .collect();
            let mut stats = AccountStats::default();
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            for row in rows {
                let (h, s, d, f, sd) = row?;
                stats.sent += count(s);
                stats.delivered_of_sent += count(sd);
                // An hour past `now` (a clock set back) has no bucket; its parts still count.
                let Some(bucket) = usize::try_from(h - first_hour)
                    .ok()
                    .and_then(|i| hours.get_mut(i))
                else {
                    continue;
                };
                bucket.sent += count(s);
                bucket.delivered += count(d);
                bucket.failed += count(f);
            }
            stats.hours = hours;
            stats.month = (count(m_month), count(p_month));
            stats.today = (count(m_today), count(p_today));
            Ok(stats)
        }
    }

    /// The parts of `account`'s messages accepted in `[from, to)`, at most `limit`, oldest
    /// first.
    pub fn send_log(
        &self,
        account: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<SendLogRow>, StoreError> {
        let mut st = self.conn.prepare_cached(SEND_LOG_SQL)?;
        let rows = st.query_map(params![account, ms(from), ms(to), limit], |r| {
            let gateway: Option<String> = r.get(4)?;
            let src_id: Option<String> = r.get(5)?;
            let sim: Option<String> = r.get::<_, Option<String>>(6)?.or(r.get(7)?);
            let via = match (gateway, src_id) {
                (Some(g), Some(src)) => Some(format!("gateway {g} ({src})")),
                (Some(g), None) => Some(format!("gateway {g}")),
                _ => sim.map(|s| format!("SIM {s}")),
            };
            Ok(SendLogRow {
                message_id: r.get(0)?,
                seq: r.get(1)?,
                recipient: r.get(2)?,
                sender_kind: r.get(3)?,
                via,
                state: r.get(8)?,
                created: ts(r.get(9)?),
                sent: ts_opt(r.get(10)?),
                delivered: ts_opt(r.get(11)?),
                error: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An account's opt-out list, by number.
    pub fn opt_out_list(
        &self,
        account_id: i64,
    ) -> Result<Vec<super::contract::OptOut>, StoreError> {
        super::contract::opt_outs(&self.conn, account_id)
            .map_err(|e| StoreError::Contract(e.to_string()))
    }

    /// Webhook events not delivered after at least one attempt (given up ones included), of
    /// one account or of all, oldest first.
    pub fn stuck_webhook_events(
        &self,
        account_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StuckEvent>, StoreError> {
        let mut st = self.conn.prepare_cached(STUCK_SQL)?;
        let rows = st.query_map(params![account_id, limit], |r| {
            let given_up = ts_opt(r.get(10)?);
            Ok(StuckEvent {
                id: r.get(0)?,
                account: r.get(1)?,
                kind: r.get(2)?,
                message_id: r.get(3)?,
                attempts: r.get(4)?,
                created: ts(r.get(5)?),
                first_attempt: ts_opt(r.get(6)?),
                last_attempt: ts_opt(r.get(7)?),
                last_error: r.get(8)?,
                next_attempt: if given_up.is_some() {
                    None
                } else {
                    ts_opt(r.get(9)?)
                },
                given_up,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    const T0: i64 = 1_800_000_000_000; // a whole hour (2027-01-15T08:00:00Z)

    fn at(offset_ms: i64) -> Timestamp {
        ts(T0 + offset_ms)
    }

    /// A message of `account` with `states.len()` parts, the message's state and times set by
    /// hand (the runner's transitions are tested elsewhere; here: what the queries count).
    #[allow(clippy::too_many_arguments)]
    fn message(
        s: &Store,
        account: &str,
        created: i64,
        state: &str,
        finished: Option<i64>,
        parts: &[(&str, Option<i64>, Option<i64>)],
    ) -> i64 {
        s.conn
            .execute(
                "INSERT INTO messages (account, recipient, text, encoding, part_count, state,
                     created_at, finished_at) VALUES (?1, '+8613912345678', 'x', 'ucs2', ?2, ?3,
                     ?4, ?5)",
                params![
                    account,
                    parts.len() as i64,
                    state,
                    T0 + created,
                    finished.map(|f| T0 + f)
                ],
            )
            .unwrap();
        let id = s.conn.last_insert_rowid();
        for (i, (state, sent, delivered)) in parts.iter().enumerate() {
            s.conn
                .execute(
                    "INSERT INTO parts (message_id, seq, state, pdu_hex, cmgs_length, sent_at,
                         delivered_at) VALUES (?1, ?2, ?3, '00', 1, ?4, ?5)",
                    params![
                        id,
                        i as i64 + 1,
                        state,
                        sent.map(|t| T0 + t),
                        delivered.map(|t| T0 + t)
                    ],
                )
                .unwrap();
        }
        id
    }

    #[test]
    fn stats_count_the_accounts_own_parts_per_hour() {
        let s = Store::open_in_memory().unwrap();
        let h = HOUR_MS;
        // shop: a 2-part message delivered (sent in hour 0, delivered in hour 1), a 1-part one
        // failed in hour 2, a 1-part one sent and not yet delivered in hour 2; yesterday's
        // message (before `today`) counts for the month only.
        message(
            &s,
            "shop",
            10,
            "delivered",
            Some(h + 5),
            &[
                ("delivered", Some(20), Some(h + 5)),
                ("delivered", Some(30), Some(h + 6)),
            ],
        );
        message(
            &s,
            "shop",
            2 * h,
            "failed",
            Some(2 * h + 9),
            &[("failed", None, None)],
        );
        message(
            &s,
            "shop",
            2 * h,
            "sent",
            None,
            &[("sent", Some(2 * h + 1), None)],
        );
        message(&s, "shop", -30 * h, "sent", None, &[("sent", None, None)]);
        // Another account's parts in the same hours are not counted.
        message(
            &s,
            "other",
            10,
            "delivered",
            Some(h),
            &[("delivered", Some(20), Some(h))],
        );
        let now = at(2 * h + 100);
        let stats = s
            .account_stats("shop", at(-h), at(-40 * h), at(-h), now)
            .unwrap();
        assert_eq!(stats.today, (3, 4));
        assert_eq!(stats.month, (4, 5));
        assert_eq!((stats.sent, stats.delivered_of_sent), (3, 2));
        let hours: Vec<(i64, u64, u64, u64)> = stats
            .hours
            .iter()
            .map(|b| ((b.hour_ms - T0) / h, b.sent, b.delivered, b.failed))
            .collect();
        assert_eq!(
            hours,
            [(-1, 0, 0, 0), (0, 2, 0, 0), (1, 0, 2, 0), (2, 1, 0, 1)]
        );
        // Each period counts from its own start, whichever is earlier.
        let stats = s
            .account_stats("shop", at(-40 * h), at(-h), at(-h), now)
            .unwrap();
        assert_eq!(stats.today, (4, 5));
        assert_eq!(stats.month, (3, 4));
        // Nothing for an account without messages, and no panic for a `since` after `now`.
        let none = s.account_stats("nobody", at(0), at(0), at(0), now).unwrap();
        assert_eq!((none.today, none.sent), ((0, 0), 0));
        let odd = s
            .account_stats("shop", at(0), at(0), at(9 * h), now)
            .unwrap();
        assert!(odd.hours.is_empty());
    }

    #[test]
    fn send_log_of_a_range_and_its_via() {
        let s = Store::open_in_memory().unwrap();
        let id = message(
            &s,
            "shop",
            10,
            "sent",
            None,
            &[("sent", Some(20), None), ("delivered", Some(21), Some(40))],
        );
        s.conn
            .execute(
                "UPDATE messages SET sender_kind = '106', gateway = 'cmcc', src_id = '1065001'
                 WHERE id = ?1",
                [id],
            )
            .unwrap();
        message(&s, "shop", 5_000, "queued", None, &[("queued", None, None)]);
        message(&s, "other", 10, "queued", None, &[("queued", None, None)]);
        let rows = s.send_log("shop", at(0), at(1_000), 10).unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].message_id, rows[0].seq), (id, 1));
        assert_eq!(rows[1].state, "delivered");
        assert_eq!(rows[1].delivered, Some(at(40)));
        assert_eq!(rows[0].via.as_deref(), Some("gateway cmcc (1065001)"));
        assert_eq!(rows[0].sender_kind, "106");
        assert_eq!(s.send_log("shop", at(0), at(10_000), 2).unwrap().len(), 2);
        assert_eq!(s.send_log("shop", at(0), at(10_000), 9).unwrap().len(), 3);
    }

    #[test]
    fn stuck_events_carry_their_attempts() {
        let mut s = Store::open_in_memory().unwrap();
        let t0 = at(0);
        let account = crate::store::contract::NewAccount {
            name: "shop".into(),
            ..Default::default()
        };
        let account_id = s.add_account(&account, "admin", t0).unwrap();
        s.set_webhook(account_id, Some(("http://127.0.0.1:9/h", "k")), "admin", t0)
            .unwrap();
        for body in ["a", "b"] {
            s.conn
                .execute(
                    "INSERT INTO webhook_outbox (account_id, kind, body, created_at,
                         next_attempt_at) VALUES (?1, 'inbound', ?2, ?3, ?3)",
                    params![account_id, body, ms(t0)],
                )
                .unwrap();
        }
        assert!(s.stuck_webhook_events(None, 10).unwrap().is_empty());
        let due = s.due_webhook_events(t0, 10).unwrap();
        s.ack_webhook_event(due[0].id, Some("HTTP 500"), t0)
            .unwrap();
        let t1 = t0.checked_add(SignedDuration::from_secs(5)).unwrap();
        s.ack_webhook_event(due[0].id, Some("connect refused"), t1)
            .unwrap();
        s.ack_webhook_event(due[1].id, None, t0).unwrap();
        let stuck = s.stuck_webhook_events(Some(account_id), 10).unwrap();
        assert_eq!(stuck.len(), 1, "the delivered one is not stuck: {stuck:?}");
        let e = &stuck[0];
        assert_eq!((e.id, e.attempts), (due[0].id, 2));
        assert_eq!((e.first_attempt, e.last_attempt), (Some(t0), Some(t1)));
        assert_eq!(e.last_error.as_deref(), Some("connect refused"));
        assert_eq!(
            e.next_attempt,
            Some(t1.checked_add(SignedDuration::from_secs(2)).unwrap())
        );
        assert!(s
            .stuck_webhook_events(Some(account_id + 1), 10)
            .unwrap()
            .is_empty());
        assert_eq!(s.stuck_webhook_events(None, 10).unwrap(), stuck);
    }

    /// Every console query walks an index range: no full scan of messages, parts or the
    /// outbox, however large they are.
    #[test]
    fn console_queries_are_indexed() {
        let s = Store::open_in_memory().unwrap();
        for (sql, args) in [
            (TALLY_SQL, 4),
            (HOURS_SQL, 2),
            (SEND_LOG_SQL, 4),
            (STUCK_SQL, 2),
        ] {
            let mut st = s
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let values: Vec<rusqlite::types::Value> = (0..args)
                .map(|i| {
                    if i == 0 {
                        rusqlite::types::Value::Text("shop".into())
                    } else {
                        rusqlite::types::Value::Integer(T0)
                    }
                })
                .collect();
            let plan: Vec<String> = st
                .query_map(rusqlite::params_from_iter(values), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let text = plan.join("\n");
            for line in &plan {
                // Scanning the union's own rows (already bounded) is fine; a table is not.
                let scan = line.starts_with("SCAN ")
                    && !line.contains("USING INDEX")
                    && !line.contains("USING COVERING INDEX")
                    && !line.starts_with("SCAN (subquery");
                assert!(!scan, "a full scan in the plan of\n{sql}\n{text}");
            }
            assert!(
                text.contains("INDEX"),
                "no index in the plan of\n{sql}\n{text}"
            );
        }
    }
}
