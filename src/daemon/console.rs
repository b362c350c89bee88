//! The console operations in the running daemon ([`ConsoleOp`], issue 13): a quote by the
//! codec and the text-as-sent rule acceptance bills with, the recipients check by the facts
//! acceptance decides on, and the account's statistics, opt-outs, send log (CSV), webhooks and
//! stuck webhook events from the store.
//!
//! What must always hold: a quote's parts and cost are what a send of the same text reserves
//! (`acceptance::quote` with `backend::codec`, never a second count); the recipients check
//! compares numbers by their key as the store does (`number::key`, `acceptance_facts`); an
//! unknown account is 404; nothing here writes, except a webhook attempt's failure; the long
//! reads (statistics, send log) go through the daemon's second connection (`Shared::reads`), so
//! they never hold up the sending path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;

use super::{backend, Shared};
use crate::api::console::{ConsoleAnswer, ConsoleOp};
use crate::api::types::{
    HourStats, OptOutList, OptOutView, QuoteResponse, RecipientCheck, RecipientRow,
    RecipientStatus, Stats, StuckEvent, StuckEvents, Tally,
};
use crate::api::{ApiError, Caller};
use crate::number;
use crate::pdu::ValidityPeriod;
use crate::store::acceptance;
use crate::store::console::SEND_LOG_MAX_ROWS;
use crate::store::{Store, StoreError};

/// Webhook events listed as stuck at most.
const STUCK_LIMIT: u32 = 500;

/// Any valid number: the parts of a text do not depend on its recipient.
const QUOTE_RECIPIENT: &str = "13800138000";

fn json<T: serde::Serialize>(v: &T) -> Result<ConsoleAnswer, ApiError> {
    serde_json::to_value(v)
        .map(ConsoleAnswer::Json)
        .map_err(|e| ApiError::Internal(format!("encoding the answer: {e}")))
}

fn account_id(s: &Store, name: &str) -> Result<Result<i64, ApiError>, StoreError> {
    Ok(match s.account_by_name(name)? {
        Some(a) => Ok(a.id),
        None => Err(ApiError::NotFound(format!("no account {name:?}"))),
    })
}

/// Runs one console operation. The server has scoped it (the account in `op` is one the
/// caller may act for), so nothing here depends on who asked.
pub(super) async fn run(
    shared: &Arc<Shared>,
    _caller: Caller,
    op: ConsoleOp,
) -> Result<ConsoleAnswer, ApiError> {
    let now = Timestamp::now();
    let db = &shared.db;
    match op {
        ConsoleOp::Quote {
            account,
            text,
            sender,
            recipients,
        } => {
            // A sender kind the account may not use is refused as a send would refuse it.
            shared.channels().resolve(&account, sender)?;
            let validity = shared.tunables().default_validity;
            let vp = ValidityPeriod::from_duration(validity.unsigned_abs());
            let name = account.clone();
            let found = db
                .call(move |s| s.account_by_name(&name))
                .await
                .map_err(backend::internal)?
                .ok_or_else(|| ApiError::NotFound(format!("no account {account:?}")))?;
            let recipient = number::parse(QUOTE_RECIPIENT)
                .map_err(|e| ApiError::Internal(format!("quote recipient: {e}")))?;
            let encode = backend::codec(true, Some(vp));
            let q = acceptance::quote(&found, &text, &recipient, &encode)
                .map_err(|e| ApiError::InvalidField(e.to_string()))?;
            json(&QuoteResponse {
                characters: q.text_as_sent.chars().count() as u32,
                text_as_sent: q.text_as_sent,
                encoding: q.encoding,
                parts: q.parts,
                cost: u64::from(q.parts) * u64::from(recipients),
                signature_missing: q.signature_missing,
            })
        }
        ConsoleOp::CheckRecipients { account, numbers } => {
            let rows = db
                .call(move |s| check_recipients(s, &account, numbers, now))
                .await
                .map_err(backend::internal)??;
            // Every status, zeros included, so a preview can show them all.
            let name = |status: RecipientStatus| {
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            let mut counts: BTreeMap<String, u64> = [
                RecipientStatus::Valid,
                RecipientStatus::Invalid,
                RecipientStatus::Duplicate,
                RecipientStatus::OptedOut,
                RecipientStatus::Blacklisted,
            ]
            .into_iter()
            .map(|s| (name(s), 0))
            .collect();
            for r in &rows {
                *counts.entry(name(r.status)).or_insert(0) += 1;
            }
            json(&RecipientCheck { rows, counts })
        }
        ConsoleOp::Stats { account, days } => {
            let stats = stats(shared, account, days, now).await?;
            json(&stats)
        }
        ConsoleOp::OptOuts { account } => {
            let name = account.clone();
            let list = db
                .call(move |s| {
                    Ok(match account_id(s, &name)? {
                        Ok(id) => Ok(s.opt_out_list(id)?),
                        Err(e) => Err(e),
                    })
                })
                .await
                .map_err(backend::internal)??;
            json(&OptOutList {
                account,
                optouts: list
                    .into_iter()
                    .map(|o| OptOutView {
                        number: o.number,
                        at: o.at,
                        source: o.source,
                    })
                    .collect(),
            })
        }
        ConsoleOp::SendLog { account, from, to } => {
            let rows = shared
                .reads
                .call(move |s| {
                    Ok(match account_id(s, &account)? {
                        Ok(_) => Ok(s.send_log(&account, from, to, SEND_LOG_MAX_ROWS + 1)?),
                        Err(e) => Err(e),
                    })
                })
                .await
                .map_err(backend::internal)??;
            if rows.len() > SEND_LOG_MAX_ROWS as usize {
                return Err(ApiError::InvalidField(format!(
                    "from, to: more than {SEND_LOG_MAX_ROWS} parts in this range; export a \
                     shorter one"
                )));
            }
            Ok(ConsoleAnswer::Csv(send_log_csv(&rows)))
        }
        ConsoleOp::Webhooks { account } => {
            let hooks = db
                .call(move |s| {
                    if let Some(a) = &account {
                        if let Err(e) = account_id(s, a)? {
                            return Ok(Err(e));
                        }
                    }
                    let all = s.webhooks()?;
                    Ok(Ok(all
                        .into_iter()
                        .filter(|w| account.as_ref().is_none_or(|a| *a == w.account))
                        .collect::<Vec<_>>()))
                })
                .await
                .map_err(backend::internal)??;
            let list: Vec<_> = hooks
                .iter()
                .map(|w| {
                    serde_json::json!({
                        "account": w.account,
                        "url": w.url,
                        "secret_prefix": w.secret.chars().take(14).collect::<String>(),
                    })
                })
                .collect();
            Ok(ConsoleAnswer::Json(serde_json::json!({ "webhooks": list })))
        }
        ConsoleOp::StuckEvents { account } => {
            let events = db
                .call(move |s| {
                    let id = match &account {
                        Some(a) => match account_id(s, a)? {
                            Ok(id) => Some(id),
                            Err(e) => return Ok(Err(e)),
                        },
                        None => None,
                    };
                    Ok(Ok(s.stuck_webhook_events(id, STUCK_LIMIT)?))
                })
                .await
                .map_err(backend::internal)??;
            json(&StuckEvents {
                events: events
                    .into_iter()
                    .map(|e| StuckEvent {
                        id: e.id,
                        account: e.account,
                        kind: e.kind,
                        message_id: e.message_id,
                        attempts: e.attempts,
                        created: e.created,
                        first_attempt: e.first_attempt,
                        last_attempt: e.last_attempt,
                        last_error: e.last_error,
                        next_attempt: e.next_attempt,
                        given_up: e.given_up,
                    })
                    .collect(),
            })
        }
        ConsoleOp::WebhookFail { id, error } => {
            let v = db
                .call(move |s| super::webhooks::ack(s, id, Some(error), now))
                .await
                .map_err(backend::internal)??;
            Ok(ConsoleAnswer::Json(v))
        }
    }
}

/// Each number as a send would judge it: parsed (invalid: the parser's words), the same number
/// again in any spelling (duplicate of the first), then blacklisted before opted out, as
/// `policy::decide` orders them, from the same facts (`acceptance_facts`, by `number::key`).
fn check_recipients(
    s: &Store,
    account: &str,
    numbers: Vec<String>,
    now: Timestamp,
) -> Result<Result<Vec<RecipientRow>, ApiError>, StoreError> {
    let id = match account_id(s, account)? {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    let mut first_row: HashMap<String, usize> = HashMap::new();
    let mut parsed = Vec::with_capacity(numbers.len());
    for (i, input) in numbers.iter().enumerate() {
        match number::parse(input) {
            Ok(n) => {
                let key = number::key(n.canonical());
                let earlier = first_row.get(&key).copied();
                if earlier.is_none() {
                    first_row.insert(key.clone(), i);
                }
                parsed.push(Ok((n.canonical().to_owned(), key, earlier)));
            }
            Err(e) => parsed.push(Err(e.to_string())),
        }
    }
    let keys: Vec<String> = first_row.keys().cloned().collect();
    let facts = s.acceptance_facts(id, &keys, now)?;
    let rows = numbers
        .into_iter()
        .zip(parsed)
        .map(|(input, p)| match p {
            Err(reason) => RecipientRow {
                input,
                number: None,
                status: RecipientStatus::Invalid,
                reason: Some(reason),
            },
            Ok((canonical, key, earlier)) => {
                let (status, reason) = if let Some(row) = earlier {
                    (
                        RecipientStatus::Duplicate,
                        Some(format!("the same number as row {}", row + 1)),
                    )
                } else if facts.blacklisted_numbers.contains(&key) {
                    (RecipientStatus::Blacklisted, None)
                } else if facts.opted_out.contains(&key) {
                    (RecipientStatus::OptedOut, None)
                } else {
                    (RecipientStatus::Valid, None)
                };
                RecipientRow {
                    input,
                    number: Some(canonical),
                    status,
                    reason,
                }
            }
        })
        .collect();
    Ok(Ok(rows))
}

/// The account's statistics: today and this month in the daemon's time zone, parts per hour
/// over the last `days` days (the current hour last).
async fn stats(
    shared: &Arc<Shared>,
    account: String,
    days: u32,
    now: Timestamp,
) -> Result<Stats, ApiError> {
    let zoned = now.to_zoned_datetime(jiff::tz::TimeZone::system());
    let start = |d: jiff::civil::Date| {
        d.to_zoned_datetime(zoned.time_zone().clone())
            .map(|z| z.timestamp())
            .unwrap_or(now)
    };
    let today = start(zoned.date());
    let month = start(zoned.date().first_of_month());
    let hours = i64::from(days) * 24 - 1;
    let since = now
        .checked_sub(jiff::SignedDuration::from_hours(hours))
        .unwrap_or(Timestamp::MIN);
    let name = account.clone();
    let found = shared
        .reads
        .call(move |s| {
            Ok(match account_id(s, &name)? {
                Ok(_) => Ok(s.account_stats(&name, today, month, since, now)?),
                Err(e) => Err(e),
            })
        })
        .await
        .map_err(backend::internal)??;
    Ok(Stats {
        account,
        days,
        today: Tally {
            messages: found.today.0,
            parts: found.today.1,
        },
        month: Tally {
            messages: found.month.0,
            parts: found.month.1,
        },
        delivery_rate: (found.sent > 0)
            .then(|| (found.delivered_of_sent as f64 / found.sent as f64).min(1.0)),
        hours: found
            .hours
            .iter()
            .map(|h| HourStats {
                hour: h.hour_ms,
                sent: h.sent,
                delivered: h.delivered,
                failed: h.failed,
            })
            .collect(),
    })
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The send log as CSV, a header row first; times in RFC 3339 (UTC).
fn send_log_csv(rows: &[crate::store::console::SendLogRow]) -> String {
    use std::fmt::Write;
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
    let mut out =
        String::from("message_id,part,recipient,sender,via,state,created,sent,delivered,error\r\n");
    for r in rows {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{}\r\n",
            r.message_id,
            r.seq,
            field(&r.recipient),
            field(&r.sender_kind),
            field(r.via.as_deref().unwrap_or("")),
            field(&r.state),
            r.created,
            time(r.sent),
            time(r.delivered),
            field(r.error.as_deref().unwrap_or("")),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(field("+8613912345678"), "+8613912345678");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let row = crate::store::console::SendLogRow {
            message_id: 7,
            seq: 1,
            recipient: "+8613912345678".into(),
            sender_kind: "mobile".into(),
            via: Some("SIM 8986".into()),
            state: "failed".into(),
            created: Timestamp::from_second(1_800_000_000).unwrap(),
            sent: None,
            delivered: None,
            error: Some("+CMS ERROR: 21, rejected".into()),
        };
        let csv = send_log_csv(&[row]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "message_id,part,recipient,sender,via,state,created,sent,delivered,error"
        );
        assert_eq!(
            lines[1],
            "7,1,+8613912345678,mobile,SIM 8986,failed,2027-01-15T08:00:00Z,,,\
             \"+CMS ERROR: 21, rejected\""
        );
    }

    #[test]
    fn recipients_are_judged_as_a_send_judges_them() {
        let mut s = Store::open_in_memory().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let new = crate::store::contract::NewAccount {
            name: "shop".into(),
            ..Default::default()
        };
        let id = s.add_account(&new, "test", now).unwrap();
        s.blacklist(Some("13900000001"), None, "complaint", "test", now)
            .unwrap();
        s.transaction(|tx| {
            crate::store::contract::add_opt_out(tx, id, "+86 139 0000 0002", "TD", now)
                .map_err(|e| StoreError::Contract(e.to_string()))
        })
        .unwrap();
        let numbers = [
            "13900000001",
            "139-0000-0002",
            "12345",
            "13900000003",
            "+8613900000003",
            "008613900000001",
        ]
        .map(String::from)
        .to_vec();
        let rows = check_recipients(&s, "shop", numbers, now).unwrap().unwrap();
        let got: Vec<(RecipientStatus, Option<&str>)> = rows
            .iter()
            .map(|r| (r.status, r.number.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (RecipientStatus::Blacklisted, Some("+8613900000001")),
                (RecipientStatus::OptedOut, Some("+8613900000002")),
                (RecipientStatus::Invalid, None),
                (RecipientStatus::Valid, Some("+8613900000003")),
                (RecipientStatus::Duplicate, Some("+8613900000003")),
                (RecipientStatus::Duplicate, Some("+8613900000001")),
            ]
        );
        assert!(rows[2].reason.as_deref().is_some_and(|r| !r.is_empty()));
        assert_eq!(rows[4].reason.as_deref(), Some("the same number as row 4"));
        let e = check_recipients(&s, "nobody", vec![], now)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.status(), 404);
    }
}
