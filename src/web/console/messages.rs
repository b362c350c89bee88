//! The messages pages: search by number, date range, state and batch; one message with its
//! parts; and the server-sent events that move a listed message's state without a reload
//! (`GET /messages/events?ids=..`: the web process polls the daemon once a second and pushes
//! each change).
//!
//! The daemon lists an account's messages newest first, filtered by state only; its `after`
//! cursor is exclusive from above (a page holds ids below it, and `next_after` is the page's
//! smallest id). Ids grow with acceptance time, so the end of a date range is found by a binary
//! search over the cursor (about 50 one-row calls); the rest is filtered here while scanning
//! towards older messages, at most [`SCAN_PAGES`] pages. A batch is the id range one
//! submission got (the send page shows it as `first-last`).
//!
//! What must always hold: every call is the user's own (the daemon scopes the list to the
//! account); a search reads a bounded number of pages; an event stream ends when every
//! watched message is final or after [`WATCH_FOR`], and watches at most [`MAX_WATCH`] ids.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::daemon::AsUser;
use super::{Console, Ctx};
use crate::api::client::ClientError;
use crate::api::types::{MessageList, MessageState, MessageView};

/// Pages of 1,000 one search may read.
pub const SCAN_PAGES: usize = 30;
/// Rows one search shows (the newest matches).
pub const SHOW: usize = 200;
/// Ids one event stream watches, and for how long.
pub const MAX_WATCH: usize = 200;
pub const WATCH_FOR: Duration = Duration::from_secs(15 * 60);

const STATES: &[MessageState] = &[
    MessageState::Queued,
    MessageState::HeldForReview,
    MessageState::Scheduled,
    MessageState::Sending,
    MessageState::Sent,
    MessageState::Delivered,
    MessageState::Failed,
    MessageState::Expired,
    MessageState::Rejected,
    MessageState::Cancelled,
    MessageState::Unknown,
];

/// A state that will not change again by itself.
pub fn is_final(s: MessageState) -> bool {
    matches!(
        s,
        MessageState::Delivered
            | MessageState::Failed
            | MessageState::Expired
            | MessageState::Rejected
            | MessageState::Cancelled
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    number: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    batch: String,
}

/// `first-last` (or one id).
fn parse_batch(s: &str) -> Option<(u64, u64)> {
    let s = s.trim();
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?);
    (a >= 1 && a <= b).then_some((a, b))
}

/// A date (`YYYY-MM-DD`) as the instant it starts in China, `end` the next day's start.
fn day_start(s: &str, next: bool) -> Option<jiff::Timestamp> {
    let d: jiff::civil::Date = s.trim().parse().ok()?;
    let d = if next { d.tomorrow().ok()? } else { d };
    d.to_zoned_datetime(super::china())
        .ok()
        .map(|z| z.timestamp())
}

struct Lister<'a> {
    user: AsUser<'a>,
    state: Option<MessageState>,
}

impl Lister<'_> {
    /// Up to `limit` messages below id `below` (None: the newest), newest first.
    async fn page(&self, below: Option<u64>, limit: u32) -> Result<MessageList, ClientError> {
        let mut path = format!("/v1/messages?limit={limit}");
        if let Some(b) = below {
            path.push_str(&format!("&after={b}"));
        }
        if let Some(s) = self.state {
            path.push_str(&format!("&state={}", s.as_str()));
        }
        self.user.get(&path).await
    }

    /// The cursor below which every message was created before `to`: the largest `x` whose
    /// newest message below it is older than `to` (None: every message is).
    async fn before_instant(&self, to: jiff::Timestamp) -> Result<Option<u64>, ClientError> {
        let older = |list: &MessageList| list.messages.first().is_none_or(|m| m.created < to);
        let top = 1u64 << 53;
        if older(&self.page(Some(top), 1).await?) {
            return Ok(None);
        }
        let (mut lo, mut hi) = (1u64, top);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if older(&self.page(Some(mid), 1).await?) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(Some(lo))
    }
}

/// `GET /messages`: the search form and the newest matching messages.
pub async fn search(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<SearchQuery>,
) -> Response {
    let state = STATES.iter().copied().find(|s| s.as_str() == q.state);
    let lister = Lister {
        user: AsUser::new(&console.web, &ctx.token),
        state,
    };
    let filter = Filter {
        batch: parse_batch(&q.batch),
        from: day_start(&q.from, false),
        to: day_start(&q.to, true),
        number: q.number.trim().to_owned(),
    };
    let (rows, capped) = match run_search(&lister, &filter).await {
        Ok(r) => r,
        Err(e) => return console.daemon_error(&ctx, e),
    };
    let watch: Vec<u64> = rows
        .iter()
        .filter(|m| !is_final(m.state))
        .take(MAX_WATCH)
        .map(|m| m.id.0)
        .collect();
    let states: Vec<_> = STATES.iter().map(|s| s.as_str()).collect();
    console.page(
        &ctx,
        "messages.html",
        context! {
            q => context! { number => q.number, from => q.from, to => q.to, state => q.state, batch => q.batch },
            states => states,
            rows => rows,
            capped => capped,
            watch => watch.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        },
    )
}

/// A search's bounds and number.
struct Filter {
    batch: Option<(u64, u64)>,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    number: String,
}

/// The newest [`SHOW`] matches, newest first, and whether the scan stopped at its cap.
async fn run_search(
    lister: &Lister<'_>,
    f: &Filter,
) -> Result<(Vec<MessageView>, bool), ClientError> {
    let mut below = match (f.batch, f.to) {
        (Some((_, last)), _) => Some(last.saturating_add(1)),
        (None, Some(to)) => lister.before_instant(to).await?,
        (None, None) => None,
    };
    let mut matches = Vec::new();
    for _ in 0..SCAN_PAGES {
        let page = lister.page(below, 1000).await?;
        for m in page.messages {
            let too_old = f.batch.is_some_and(|(first, _)| m.id.0 < first)
                || f.from.is_some_and(|from| m.created < from);
            if too_old {
                return Ok((matches, false));
            }
            if f.to.is_some_and(|to| m.created >= to) || !m.to.contains(f.number.as_str()) {
                continue;
            }
            matches.push(m);
            if matches.len() == SHOW {
                return Ok((matches, false));
            }
        }
        match page.next_after {
            Some(next) => below = Some(next.0),
            None => return Ok((matches, false)),
        }
    }
    Ok((matches, true))
}

/// `GET /messages/{id}`: one message, its parts, SIM or gateway, delivery.
pub async fn one(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return console.error(
            ctx.lang,
            Some(&ctx),
            StatusCode::NOT_FOUND,
            ctx.lang.word("error_not_found"),
        );
    };
    let answer: Result<MessageView, _> = AsUser::new(&console.web, &ctx.token)
        .get(&format!("/v1/messages/{id}"))
        .await;
    match answer {
        Ok(m) => console.page(&ctx, "message.html", context! { m => m, watch => if is_final(m.state) { String::new() } else { id.to_string() } }),
        Err(e) => console.daemon_error(&ctx, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    ids: String,
}

/// `GET /messages/events?ids=1,2,3`: `state` events `{"id","state","label","delivered"}`
/// (the delivery time as shown, or empty), first the
/// current state of each, then each change, polled once a second.
pub async fn events(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<EventsQuery>,
) -> Response {
    let mut ids: Vec<u64> = q
        .ids
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|i| *i > 0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(MAX_WATCH);
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(watch(console, ctx, ids, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Polls the watched ids and sends each change; ends with the client or when all are final.
async fn watch(
    console: Arc<Console>,
    ctx: Ctx,
    ids: Vec<u64>,
    tx: tokio::sync::mpsc::Sender<Event>,
) {
    let user = AsUser::new(&console.web, &ctx.token);
    let mut seen: HashMap<u64, MessageState> = HashMap::new();
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < WATCH_FOR && !tx.is_closed() {
        tick.tick().await;
        let Some(states) = current(&user, &ids).await else {
            continue; // the daemon restarting: try again next tick
        };
        for (id, state, delivered) in states {
            if seen.insert(id, state) != Some(state) {
                let data = serde_json::json!({
                    "id": id,
                    "state": state.as_str(),
                    "label": ctx.lang.word(&format!("s_{}", state.as_str())),
                    "delivered": delivered,
                });
                if tx
                    .send(Event::default().event("state").data(data.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if ids
            .iter()
            .all(|i| seen.get(i).is_some_and(|s| is_final(*s)))
        {
            let _ = tx.send(Event::default().event("done").data("{}")).await;
            return;
        }
    }
}

/// The states of `ids` (sorted), read by listing their id range, newest first (a few pages
/// at most).
async fn current(user: &AsUser<'_>, ids: &[u64]) -> Option<Vec<(u64, MessageState, String)>> {
    let (&first, &last) = (ids.first()?, ids.last()?);
    let mut out = Vec::new();
    let mut below = last.saturating_add(1);
    for _ in 0..5 {
        let path = format!("/v1/messages?limit=1000&after={below}");
        let list: MessageList = match user.get(&path).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("console: live states: {e}");
                return None;
            }
        };
        for m in &list.messages {
            if m.id.0 < first {
                return Some(out);
            }
            if ids.binary_search(&m.id.0).is_ok() {
                let delivered = m.delivered.map(|t| super::local_time(t.to_string().into()));
                out.push((m.id.0, m.state, delivered.unwrap_or_default()));
            }
        }
        match list.next_after {
            Some(n) => below = n.0,
            None => break,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_and_days_are_read() {
        assert_eq!(parse_batch("120-180"), Some((120, 180)));
        assert_eq!(parse_batch(" 7 "), Some((7, 7)));
        assert_eq!(parse_batch("9-3"), None);
        assert_eq!(parse_batch("0-3"), None);
        assert_eq!(parse_batch("x"), None);
        assert_eq!(
            day_start("2026-11-30", false).unwrap().to_string(),
            "2026-11-29T16:00:00Z"
        );
        assert_eq!(
            day_start("2026-11-30", true).unwrap().to_string(),
            "2026-11-30T16:00:00Z"
        );
        assert!(day_start("", false).is_none());
        assert!(is_final(MessageState::Delivered) && !is_final(MessageState::Unknown));
    }
}
