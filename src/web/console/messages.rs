//! The messages pages: search by number, date range, state and batch; one message with its
//! parts; and the server-sent events that move a listed message's state without a reload
//! (`GET /messages/events?ids=..`: the web process polls the daemon once a second and pushes
//! each change).
//!
//! The daemon lists an account's messages by ascending id from `after`, filtered by state
//! only. Ids grow with acceptance time, so a date bound or "the most recent" is found by a
//! binary search over `after` (about 50 one-row calls), and the rest is filtered here while
//! scanning forward, at most [`SCAN_PAGES`] pages. A batch is the id range one submission got
//! (the send page shows it as `first-last`).
//!
//! What must always hold: every call is the user's own (the daemon scopes the list to the
//! account); a search reads a bounded number of pages; an event stream ends when every
//! watched message is final or after [`WATCH_FOR`], and watches at most [`MAX_WATCH`] ids.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::daemon::{encode, AsUser};
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
    async fn page(&self, after: u64, limit: u32) -> Result<MessageList, ClientError> {
        let mut path = format!("/v1/messages?limit={limit}&after={after}");
        if let Some(s) = self.state {
            path.push_str(&format!("&state={}", s.as_str()));
        }
        self.user.get(&path).await
    }

    /// The smallest `after` for which `keep(first message after it)` holds (None: no message
    /// after it, which always holds). Monotone because ids grow with time.
    async fn search<F>(&self, keep: F) -> Result<u64, ClientError>
    where
        F: Fn(Option<&MessageView>, &MessageList) -> bool,
    {
        let (mut lo, mut hi) = (0u64, 1u64 << 53);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let list = self.page(mid, 1).await?;
            if keep(list.messages.first(), &list) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
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
    let batch = parse_batch(&q.batch);
    let from = day_start(&q.from, false);
    let to = day_start(&q.to, true);
    let number = q.number.trim().to_owned();
    let result = run_search(&lister, batch, from, to, &number).await;
    let (rows, capped) = match result {
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

/// The newest [`SHOW`] matches, newest first, and whether the scan stopped at its cap.
async fn run_search(
    lister: &Lister<'_>,
    batch: Option<(u64, u64)>,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    number: &str,
) -> Result<(Vec<MessageView>, bool), ClientError> {
    let mut after: u64 = match (batch, from) {
        (Some((first, _)), _) => first - 1,
        (None, Some(from)) => {
            lister
                .search(|m, _| m.is_none_or(|m| m.created >= from))
                .await?
        }
        // No lower bound: the most recent messages, at most one page of them. The last id
        // first (nothing after it), then a window back from it doubled while the account
        // still has at most one page in it (ids are shared by all accounts).
        (None, None) => {
            let last = lister.search(|m, _| m.is_none()).await?;
            let mut start = last.saturating_sub(SHOW as u64);
            for _ in 0..40 {
                if start == 0 {
                    break;
                }
                let wider = last.saturating_sub((last - start).saturating_mul(2));
                if lister.page(wider, 1000).await?.next_after.is_some() {
                    break;
                }
                start = wider;
            }
            start
        }
    };
    let mut matches: VecDeque<MessageView> = VecDeque::new();
    // Without a lower bound, older messages were not searched.
    let mut capped = batch.is_none() && from.is_none() && after > 0 && !number.is_empty();
    for n in 0.. {
        if n == SCAN_PAGES {
            capped = true;
            break;
        }
        let page = lister.page(after, 1000).await?;
        let mut past_end = false;
        for m in page.messages {
            if batch.is_some_and(|(_, last)| m.id.0 > last) || to.is_some_and(|t| m.created >= t) {
                past_end = true;
                break;
            }
            if from.is_some_and(|f| m.created < f) || !m.to.contains(number) {
                continue;
            }
            matches.push_back(m);
            if matches.len() > SHOW {
                matches.pop_front();
            }
        }
        match page.next_after {
            Some(next) if !past_end => after = next.0,
            _ => break,
        }
    }
    Ok((matches.into_iter().rev().collect(), capped))
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

/// `GET /messages/events?ids=1,2,3`: `state` events `{"id","state","label"}`, first the
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
        for (id, state) in states {
            if seen.insert(id, state) != Some(state) {
                let data = serde_json::json!({
                    "id": id,
                    "state": state.as_str(),
                    "label": ctx.lang.word(&format!("s_{}", state.as_str())),
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

/// The states of `ids` (sorted), read by listing their id range (a few pages at most).
async fn current(user: &AsUser<'_>, ids: &[u64]) -> Option<Vec<(u64, MessageState)>> {
    let (&first, &last) = (ids.first()?, ids.last()?);
    let mut out = Vec::new();
    let mut after = first - 1;
    for _ in 0..5 {
        let list: MessageList = user
            .get(&format!(
                "/v1/messages?limit=1000&after={}",
                encode(&after.to_string())
            ))
            .await
            .ok()?;
        for m in &list.messages {
            if m.id.0 > last {
                return Some(out);
            }
            if ids.binary_search(&m.id.0).is_ok() {
                out.push((m.id.0, m.state));
            }
        }
        match list.next_after {
            Some(n) => after = n.0,
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
