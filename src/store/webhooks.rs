//! Webhooks (pushed reports, issue 13): each account's URL and secret, and the durable outbox
//! of events (tables and the message-state trigger in migration 0010). Here: setting an
//! account's webhook (audited), queueing an inbound reply for the accounts it answers, the due
//! events a front end takes, and its acknowledgement (delivered, or the next attempt), which
//! stamps the first and latest attempt (migration 0012; the console lists stuck events).
//!
//! What must always hold: an event is queued in the transaction of the change it reports; an
//! event is delivered at most once acknowledged and never handed out again after; events of
//! one message are handed out in order (none while an earlier one of the same message waits);
//! a failed attempt waits [`backoff`] before the next, and an event older than [`GIVE_UP`] is
//! given up instead (kept, with its last error).

use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{ms, Store, StoreError};
use crate::audit::{AuditEntry, AuditEvent};
use crate::store::audit::append;

/// Events are retried for this long after they were queued.
pub const GIVE_UP: SignedDuration = SignedDuration::from_hours(24);

/// The wait after the `attempts`-th failed attempt: 1 s doubling up to 10 minutes.
pub fn backoff(attempts: u32) -> SignedDuration {
    let secs = 1i64 << attempts.saturating_sub(1).min(10);
    SignedDuration::from_secs(secs.min(600))
}

/// An account's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub account: String,
    pub url: String,
    pub secret: String,
}

/// A due event, with where and how to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEvent {
    pub id: i64,
    pub account: String,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub attempts: u32,
}

/// Queues an inbound reply (inbound row `inbound_id`, from `sender`) for every account with a
/// webhook that has messaged the sender. In the inbound transaction.
pub(crate) fn enqueue_inbound(
    tx: &Transaction<'_>,
    inbound_id: i64,
    sender: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO webhook_outbox (account_id, kind, body, created_at, next_attempt_at)
         SELECT w.account_id, 'inbound',
                json_object('event', 'inbound', 'inbound_id', i.id, 'from', i.sender,
                            'text', i.text, 'received_at', i.received_at),
                ?3, ?3
         FROM webhooks w JOIN accounts a ON a.id = w.account_id, inbound i
         WHERE i.id = ?1
           AND EXISTS (SELECT 1 FROM messages m WHERE m.account = a.name AND m.recipient = ?2)",
    )?
    .execute(params![inbound_id, crate::number::key(sender), ms(now)])?;
    Ok(())
}

fn audit_err(e: crate::audit::AuditError) -> StoreError {
    StoreError::Contract(e.to_string())
}

impl Store {
    /// Sets (or with `url` None removes) an account's webhook, audited (`webhook_set`,
    /// `webhook_removed`; the URL, never the secret).
    pub fn set_webhook(
        &mut self,
        account_id: i64,
        url: Option<(&str, &str)>,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| {
            let event = match url {
                Some((url, secret)) => {
                    tx.execute(
                        "INSERT INTO webhooks (account_id, url, secret, created_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (account_id) DO UPDATE SET url = ?2, secret = ?3",
                        params![account_id, url, secret, ms(now)],
                    )?;
                    ("webhook_set", format!("webhook {url}"))
                }
                None => {
                    tx.execute("DELETE FROM webhooks WHERE account_id = ?1", [account_id])?;
                    ("webhook_removed", "webhook removed".to_owned())
                }
            };
            let mut e = AuditEntry::new(AuditEvent::Other(event.0.into()), now, actor);
            e.account_id = Some(account_id);
            e.outcome = event.1;
            append(tx, e).map_err(audit_err)?;
            Ok::<_, StoreError>(())
        })
    }

    /// Every account's webhook.
    pub fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT a.name, w.url, w.secret FROM webhooks w JOIN accounts a ON a.id = w.account_id
             ORDER BY a.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Webhook {
                account: r.get(0)?,
                url: r.get(1)?,
                secret: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` events due at `now`, oldest first, none behind an undelivered earlier
    /// event of the same message; events of an account without a webhook now wait.
    pub fn due_webhook_events(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueEvent>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT o.id, a.name, w.url, w.secret, o.body, o.attempts
             FROM webhook_outbox o
             JOIN webhooks w ON w.account_id = o.account_id
             JOIN accounts a ON a.id = o.account_id
             WHERE o.delivered_at IS NULL AND o.given_up_at IS NULL AND o.next_attempt_at <= ?1
               AND NOT EXISTS (
                   SELECT 1 FROM webhook_outbox e
                   WHERE e.message_id = o.message_id AND e.id < o.id
                     AND e.delivered_at IS NULL AND e.given_up_at IS NULL)
             ORDER BY o.id LIMIT ?2",
        )?;
        let rows = st.query_map(params![ms(now), limit], |r| {
            Ok(DueEvent {
                id: r.get(0)?,
                account: r.get(1)?,
                url: r.get(2)?,
                secret: r.get(3)?,
                body: r.get(4)?,
                attempts: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The outcome of one delivery attempt: delivered (`error` None), or failed with `error`
    /// (the next attempt after [`backoff`], or given up after [`GIVE_UP`]). `None`: no such
    /// event or already settled (nothing changed).
    pub fn ack_webhook_event(
        &mut self,
        id: i64,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<&'static str>, StoreError> {
        self.transaction(|tx| {
            let row: Option<(i64, u32)> = tx
                .query_row(
                    "SELECT created_at, attempts FROM webhook_outbox
                     WHERE id = ?1 AND delivered_at IS NULL AND given_up_at IS NULL",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((created, attempts)) = row else {
                return Ok(None);
            };
            let attempts = attempts.saturating_add(1);
            let outcome = match error {
                None => {
                    tx.execute(
                        "UPDATE webhook_outbox SET delivered_at = ?2, attempts = ?3,
                             last_error = NULL, last_attempt_at = ?2,
                             first_attempt_at = COALESCE(first_attempt_at, ?2) WHERE id = ?1",
                        params![id, ms(now), attempts],
                    )?;
                    "delivered"
                }
                Some(e) if ms(now).saturating_sub(created) >= GIVE_UP.as_millis() as i64 => {
                    tx.execute(
                        "UPDATE webhook_outbox SET given_up_at = ?2, attempts = ?3,
                             last_error = ?4, last_attempt_at = ?2,
                             first_attempt_at = COALESCE(first_attempt_at, ?2) WHERE id = ?1",
                        params![id, ms(now), attempts, e],
                    )?;
                    "given_up"
                }
                Some(e) => {
                    let next = now.checked_add(backoff(attempts)).unwrap_or(now);
                    tx.execute(
                        "UPDATE webhook_outbox SET next_attempt_at = ?2, attempts = ?3,
                             last_error = ?4, last_attempt_at = ?5,
                             first_attempt_at = COALESCE(first_attempt_at, ?5) WHERE id = ?1",
                        params![id, ms(next), attempts, e, ms(now)],
                    )?;
                    "retry"
                }
            };
            Ok::<_, StoreError>(Some(outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_ten_minutes() {
        assert_eq!(backoff(1), SignedDuration::from_secs(1));
        assert_eq!(backoff(2), SignedDuration::from_secs(2));
        assert_eq!(backoff(5), SignedDuration::from_secs(16));
        assert_eq!(backoff(30), SignedDuration::from_secs(600));
        assert_eq!(backoff(u32::MAX), SignedDuration::from_secs(600));
    }

    #[test]
    fn events_in_order_per_message_retry_and_give_up() {
        let mut s = Store::open_in_memory().unwrap();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let account = crate::store::contract::NewAccount {
            name: "shop".into(),
            ..Default::default()
        };
        let account_id = s.add_account(&account, "admin", t0).unwrap();
        s.set_webhook(
            account_id,
            Some(("http://127.0.0.1:9/h", "whsec_x")),
            "admin",
            t0,
        )
        .unwrap();
        for (message, body) in [(Some(7), "a"), (Some(7), "b"), (None, "c")] {
            s.conn
                .execute(
                    "INSERT INTO webhook_outbox (account_id, kind, message_id, body, created_at,
                         next_attempt_at) VALUES (?1, 'message_state', ?2, ?3, ?4, ?4)",
                    params![account_id, message, body, ms(t0)],
                )
                .unwrap();
        }
        let due = s.due_webhook_events(t0, 10).unwrap();
        let bodies: Vec<&str> = due.iter().map(|e| e.body.as_str()).collect();
        assert_eq!(bodies, ["a", "c"], "b waits behind a");
        assert_eq!(due[0].secret, "whsec_x");
        assert_eq!(
            s.ack_webhook_event(due[0].id, Some("HTTP 500"), t0)
                .unwrap(),
            Some("retry")
        );
        assert_eq!(
            s.ack_webhook_event(due[1].id, None, t0).unwrap(),
            Some("delivered")
        );
        assert_eq!(s.ack_webhook_event(due[1].id, None, t0).unwrap(), None);
        assert!(s.due_webhook_events(t0, 10).unwrap().is_empty());
        let t1 = t0.checked_add(SignedDuration::from_secs(1)).unwrap();
        let due = s.due_webhook_events(t1, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].body.as_str(), due[0].attempts), ("a", 1));
        let late = t0.checked_add(GIVE_UP).unwrap();
        assert_eq!(
            s.ack_webhook_event(due[0].id, Some("down"), late).unwrap(),
            Some("given_up")
        );
        let due = s.due_webhook_events(late, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].body, "b");
    }

    #[test]
    fn a_final_state_queues_an_event_for_an_account_with_a_webhook() {
        let mut s = Store::open_in_memory().unwrap();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let account = crate::store::contract::NewAccount {
            name: "shop".into(),
            ..Default::default()
        };
        let account_id = s.add_account(&account, "admin", t0).unwrap();
        s.set_webhook(account_id, Some(("http://127.0.0.1:9/h", "k")), "admin", t0)
            .unwrap();
        for account in ["shop", "other"] {
            s.conn
                .execute(
                    "INSERT INTO messages (account, recipient, text, encoding, part_count, state,
                         created_at) VALUES (?1, '8613912345678', 'hi', 'gsm7', 1, 'sent', 0)",
                    [account],
                )
                .unwrap();
        }
        s.conn
            .execute("UPDATE messages SET state = 'delivered'", [])
            .unwrap();
        let now = Timestamp::now()
            .checked_add(SignedDuration::from_secs(5))
            .unwrap();
        let due = s.due_webhook_events(now, 10).unwrap();
        assert_eq!(due.len(), 1, "only shop has a webhook: {due:?}");
        let body: serde_json::Value = serde_json::from_str(&due[0].body).unwrap();
        assert_eq!(body["state"], "delivered");
        assert_eq!(body["event"], "message_state");
        s.set_webhook(account_id, None, "admin", t0).unwrap();
        assert!(s.due_webhook_events(now, 10).unwrap().is_empty());
    }
}
