//! The gateway channel in the running daemon (issue 12): one [`GatewayLink`] per configured
//! connection of each `[[gateways]]` entry, a sending task per gateway beside the modems'
//! runner, and an event task per link that takes status reports and MO messages into the store.
//!
//! The sending task claims due parts of its gateway's messages through the store's ordinary
//! gateway claim (one committed transaction), then submits each on the least busy link that is
//! up; outcomes are committed together (group commit) as they come. The modems' runner never
//! sees these parts (the store filters by channel) and this task never sees modem parts.
//!
//! What must always hold (RELIABILITY.md, as for modems): no SUBMIT without a committed claim;
//! SUBMIT_RESP 0 records the part sent with its Msg_Id; result 8 (flow control) and a link that
//! was down before the write put the part back in the queue (not an attempt, not a failure);
//! other results are failures classified by the codec's table (permanent / transient); a SUBMIT
//! written and never answered is `unknown` and never resent by itself (a late SUBMIT_RESP or a
//! report settles it); a known outcome is retried until durable; a DELIVER is acknowledged
//! only after what it carried is committed; the shared secret is never logged; the sending
//! task sleeps until woken (a new message, a free window slot, a link up) or until the next
//! part is due, beating at most every [`HEARTBEAT`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::{DaemonError, Shared};
use crate::config::{Config, GatewayEntry};
use crate::gateway::{
    GatewayConfig, GatewayEvent, GatewayHandle, GatewayLink, GatewayLinkError, GatewayPart,
    LinkState, Protocol, RateLimiter, SubmitClass, SubmitOutcome,
};
use crate::modem::PayloadFate;
use crate::scheduler::FailureKind;
use crate::store::{
    Concat, GatewayClaim, GatewayOutcome, GatewayReportIn, InboundPart, PartId, StoreError,
};

/// The sending task wakes at least this often (a missed wake-up costs at most this).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a part waits after flow control or a link that was down before the write.
const DEFER: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);
/// Bounds of one SUBMIT inside the daemon: the drain at shutdown ([`super::DRAIN_LIMIT`])
/// waits for the answers in flight, so they must fit in it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(40);
/// Most unconfirmed SUBMITs remembered for a late SUBMIT_RESP.
const UNCONFIRMED_KEPT: usize = 10_000;

/// Counters of one gateway for `GET /v1/gateways` (the links' own counters are added).
#[derive(Debug, Default, Clone)]
struct Counters {
    submits: u64,
    results: BTreeMap<u32, u64>,
    reports: u64,
    mo: u64,
    last_error: Option<String>,
    down_since: Option<std::time::Instant>,
}

/// One gateway: its links and what the daemon counts about it.
pub(crate) struct Gateway {
    pub name: String,
    cfg: GatewayConfig,
    links: Vec<GatewayHandle>,
    /// With no link up this long, `fallback` messages go to the modems.
    fallback_after: Duration,
    /// Wakes the sending task.
    wake: Notify,
    /// SUBMITs of this task waiting for an answer.
    in_flight: AtomicUsize,
    counters: Mutex<Counters>,
    /// (link, Sequence_Id) of SUBMITs that ended `unknown` -> their part, for a late
    /// SUBMIT_RESP.
    unconfirmed: Mutex<HashMap<(usize, u32), PartId>>,
}

impl Gateway {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The links that are logged in.
    fn up_links(&self) -> Vec<usize> {
        self.links
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l.state(), LinkState::Up { .. }))
            .map(|(i, _)| i)
            .collect()
    }

    /// The status view.
    pub fn view(&self) -> crate::api::types::GatewayView {
        // Our counters count parts (the links' count resends after flow control too).
        let c = self.counters().clone();
        let mut results = c.results.clone();
        let mut links = Vec::new();
        let mut window_in_use = 0;
        for (i, l) in self.links.iter().enumerate() {
            let stats = l.stats();
            window_in_use += stats.in_flight;
            let (state, version) = match l.state() {
                LinkState::Up { version } => ("up".to_string(), Some(format!("{version:?}"))),
                LinkState::Connecting => ("connecting".into(), None),
                LinkState::Down {
                    permanent: true, ..
                } => ("refused".into(), None),
                LinkState::Down { .. } => ("down".into(), None),
                LinkState::Stopped => ("stopped".into(), None),
            };
            links.push(crate::api::types::GatewayLinkView {
                link: i as u32,
                state,
                version,
                in_flight: stats.in_flight as u32,
                written: stats.written,
                unconfirmed: stats.unconfirmed,
                logins: stats.logins,
                last_error: stats.last_error.clone(),
            });
        }
        results.retain(|_, n| *n > 0);
        crate::api::types::GatewayView {
            name: self.name.clone(),
            address: self.cfg.address.clone(),
            src_id: self.cfg.src_id.clone(),
            links_up: links.iter().filter(|l| l.state == "up").count() as u32,
            links,
            window: self.cfg.window as u32,
            window_in_use: window_in_use as u32,
            submits: c.submits,
            results: results
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            reports: c.reports,
            mo: c.mo,
            last_error: c.last_error,
        }
    }
}

/// Every configured gateway.
#[derive(Default)]
pub(crate) struct GatewaySet {
    pub gateways: Vec<Arc<Gateway>>,
}

impl GatewaySet {
    /// Wakes every gateway's sending task (a message was accepted or released).
    pub fn wake(&self) {
        for g in &self.gateways {
            g.wake.notify_one();
        }
    }

    /// (links up, links) over all gateways, for the STATUS line.
    pub fn link_summary(&self) -> (usize, usize) {
        let up = self.gateways.iter().map(|g| g.up_links().len()).sum();
        let all = self.gateways.iter().map(|g| g.links.len()).sum();
        (up, all)
    }
}

/// The event receivers of the links, handed to [`spawn`] once the daemon's state exists.
pub(crate) type LinkEvents = Vec<(Arc<Gateway>, usize, mpsc::Receiver<GatewayEvent>)>;

fn link_config(entry: &GatewayEntry, secret: String) -> GatewayConfig {
    let mut cfg = GatewayConfig::new(
        &entry.name,
        &entry.address,
        &entry.sp_id,
        &secret,
        &entry.src_id,
    );
    cfg.protocol = match entry.protocol.as_str() {
        "cmpp2" => Protocol::Cmpp2,
        _ => Protocol::Cmpp3,
    };
    cfg.service_id = entry.service_id.clone();
    cfg.window = entry.window as usize;
    cfg.max_per_second = entry.max_per_second;
    cfg.response_timeout = RESPONSE_TIMEOUT;
    cfg.submit_timeout = SUBMIT_TIMEOUT;
    cfg
}

/// Opens `connections` links per configured gateway (they share the gateway's rate limit).
/// Must run in the daemon's runtime.
pub(crate) fn start_links(config: &Config) -> Result<(GatewaySet, LinkEvents), DaemonError> {
    let mut set = GatewaySet::default();
    let mut events = Vec::new();
    for entry in &config.gateways {
        let secret = entry.read_secret().map_err(|e| {
            DaemonError::Config(format!(
                "gateways.secret_file: gateway {:?}: {e}",
                entry.name
            ))
        })?;
        let cfg = link_config(entry, secret);
        let limiter = RateLimiter::new(cfg.max_per_second);
        let mut links = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..entry.connections.max(1) {
            let addr = cfg.address.clone();
            let connector: crate::gateway::Connector = Arc::new(move || {
                let addr = addr.clone();
                Box::pin(async move {
                    let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
                    s.set_nodelay(true)?;
                    Ok(Box::new(s) as crate::gateway::BoxedStream)
                })
            });
            let (handle, rx) = GatewayLink::spawn_with(cfg.clone(), connector, limiter.clone());
            links.push(handle);
            receivers.push(rx);
        }
        tracing::info!(
            gateway = %entry.name,
            address = %entry.address,
            links = links.len(),
            "gateway links started"
        );
        let g = Arc::new(Gateway {
            name: entry.name.clone(),
            cfg,
            links,
            fallback_after: entry
                .fallback_after
                .try_into()
                .unwrap_or(Duration::from_secs(30)),
            wake: Notify::new(),
            in_flight: AtomicUsize::new(0),
            counters: Mutex::new(Counters {
                down_since: Some(std::time::Instant::now()),
                ..Counters::default()
            }),
            unconfirmed: Mutex::new(HashMap::new()),
        });
        for (i, rx) in receivers.into_iter().enumerate() {
            events.push((Arc::clone(&g), i, rx));
        }
        set.gateways.push(g);
    }
    Ok((set, events))
}

/// Starts each gateway's sending task and each link's event task. The sending tasks end on
/// `stop`; [`drain`] then waits for their answers.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    events: LinkEvents,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (g, link, rx) in events {
        tokio::spawn(take_events(Arc::clone(shared), g, link, rx));
    }
    for g in &shared.gateways.gateways {
        let outcomes = start_outcome_writer(shared.db.clone());
        tasks.push(tokio::spawn(send_loop(
            Arc::clone(shared),
            Arc::clone(g),
            outcomes,
            stop.clone(),
        )));
    }
    tasks
}

/// Waits (up to `limit`) for the SUBMITs in flight to be answered and their outcomes committed,
/// then closes every link (TERMINATE).
pub(crate) async fn drain(shared: &Shared, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    for g in &shared.gateways.gateways {
        while g.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = g.in_flight.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(gateway = %g.name, left, "SUBMITs still unanswered at shutdown: they will show as unknown");
        }
        for l in &g.links {
            l.shutdown(Duration::from_secs(3)).await;
        }
    }
}

/// One outcome waiting for the group commit, and who waits.
type Pending = (
    GatewayOutcome,
    Timestamp,
    oneshot::Sender<Result<(), String>>,
);

/// Group commit of SUBMIT outcomes (as the modems' runner does): outcomes that arrive while a
/// commit runs go together into the next transaction.
fn start_outcome_writer(db: super::Db) -> mpsc::UnboundedSender<Pending> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let items: Vec<_> = batch.iter().map(|(o, t, _)| (o.clone(), *t)).collect();
            let written = db.call(move |s| s.record_gateway_outcomes(&items)).await;
            match written {
                Ok(results) => {
                    for ((_, _, reply), r) in batch.into_iter().zip(results) {
                        let _ = reply.send(r.map_err(|e| format!("refused: {e}")));
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    for (_, _, reply) in batch {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    });
    tx
}

/// Commits one outcome, retrying while the store cannot write (the part stays `sending`
/// meanwhile, and becomes `unknown` at the next start if the daemon stops first).
async fn commit_durably(
    shared: &Shared,
    outcomes: &mpsc::UnboundedSender<Pending>,
    outcome: GatewayOutcome,
) {
    let now = Timestamp::now();
    let part = outcome.part();
    let mut attempt = 0usize;
    let mut pending = None;
    loop {
        let (tx, rx) = oneshot::channel();
        let sent = outcomes.send((outcome.clone(), now, tx)).is_ok();
        let result = if sent {
            rx.await
                .unwrap_or_else(|_| Err("outcome writer stopped".into()))
        } else {
            Err("outcome writer stopped".into())
        };
        match result {
            Ok(()) => {
                if attempt > 0 {
                    shared.store_fault(None);
                }
                return;
            }
            Err(e) if e.starts_with("refused") => {
                tracing::error!(part = part.0, "gateway outcome {e}");
                return;
            }
            Err(e) => {
                pending.get_or_insert_with(|| shared.outcome_pending());
                shared.store_fault(Some(format!("gateway outcome not written: {e}")));
                if shared.is_stopping() && attempt >= super::WRITE_RETRY.len() {
                    tracing::error!(
                        part = part.0,
                        "gateway outcome not written at shutdown: {e}"
                    );
                    return;
                }
                let delay = super::write_retry_delay(attempt);
                attempt += 1;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// The sending task of one gateway.
async fn send_loop(
    shared: Arc<Shared>,
    g: Arc<Gateway>,
    outcomes: mpsc::UnboundedSender<Pending>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_link = 0usize;
    loop {
        if *stop.borrow() || shared.is_stopping() {
            return;
        }
        let up = g.up_links();
        let mut wake_at = None;
        if up.is_empty() {
            let since = g.counters().down_since;
            if since.is_some_and(|s| s.elapsed() >= g.fallback_after) {
                let name = g.name.clone();
                match shared.db.call(move |s| s.fall_back_to_modems(&name)).await {
                    Ok(moved) if !moved.is_empty() => {
                        tracing::warn!(gateway = %g.name, messages = moved.len(), "gateway down: messages whose accounts allow it go to the modems");
                        shared.wake.notify_one();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(gateway = %g.name, "fallback not written: {e}"),
                }
            }
        } else if !shared.outcomes_pending() {
            let capacity =
                (up.len() * g.cfg.window).saturating_sub(g.in_flight.load(Ordering::SeqCst));
            if capacity > 0 {
                match claim_due(&shared, &g, capacity as u32).await {
                    Ok((claims, next)) => {
                        wake_at = next;
                        for c in claims {
                            let up = g.up_links();
                            // The least busy link that is up (round-robin among equals).
                            let link = pick_link(&g, &up, &mut next_link);
                            g.in_flight.fetch_add(1, Ordering::SeqCst);
                            let (shared, g, outcomes) =
                                (Arc::clone(&shared), Arc::clone(&g), outcomes.clone());
                            tokio::spawn(async move {
                                submit_one(&shared, &g, &outcomes, link, c).await;
                                g.in_flight.fetch_sub(1, Ordering::SeqCst);
                                g.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        tracing::error!(gateway = %g.name, "gateway round failed: {e}");
                        wake_at = Some(Timestamp::now() + jiff::SignedDuration::from_secs(1));
                    }
                }
            }
        }
        if up.is_empty() {
            // Down: look again when the fallback time comes (a link coming up wakes us).
            let since = g.counters().down_since;
            if let Some(s) = since {
                let left = g.fallback_after.saturating_sub(s.elapsed());
                if !left.is_zero() {
                    wake_at = Some(Timestamp::now() + left);
                }
            }
        }
        let sleep = wake_at
            .map(|at| Duration::from_millis((at - Timestamp::now()).as_millis().max(0) as u64))
            .unwrap_or(HEARTBEAT)
            .min(HEARTBEAT);
        tokio::select! {
            _ = g.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => return,
        }
    }
}

fn pick_link(g: &Gateway, up: &[usize], next: &mut usize) -> usize {
    if up.is_empty() {
        return 0;
    }
    *next = next.wrapping_add(1);
    let start = *next % up.len();
    let order = up[start..].iter().chain(&up[..start]);
    *order
        .min_by_key(|&&i| g.links[i].stats().in_flight)
        .unwrap_or(&up[0])
}

/// Reads the gateway's due parts (expiring those past their deadline) and claims up to
/// `limit` of them in one committed transaction. Returns the claims and when to look again.
async fn claim_due(
    shared: &Shared,
    g: &Gateway,
    limit: u32,
) -> Result<(Vec<GatewayClaim>, Option<Timestamp>), StoreError> {
    let name = g.name.clone();
    let now = Timestamp::now();
    let claims = shared
        .db
        .call(move |s| {
            let due = s.gateway_due_parts(&name, limit, now)?;
            if due.iter().any(|d| d.expired) {
                let expired = s.expire(now)?;
                tracing::info!(messages = expired.len(), "messages expired unsent");
            }
            let parts: Vec<PartId> = due.iter().filter(|d| !d.expired).map(|d| d.part).collect();
            let claimed = if parts.is_empty() {
                Vec::new()
            } else {
                s.claim_gateway_many(&parts, &name, now)?
            };
            let next = s.gateway_next_due(&name, now)?;
            Ok((claimed, next))
        })
        .await;
    let (claimed, next) = match claims {
        Ok(c) => {
            shared.store_fault(None);
            c
        }
        Err(e) => {
            shared.store_fault(Some(format!("gateway claims not written: {e}")));
            return Err(e);
        }
    };
    let mut out = Vec::new();
    for c in claimed {
        match c {
            Ok(c) => out.push(c),
            Err(e) => tracing::debug!(gateway = %g.name, "gateway claim refused: {e}"),
        }
    }
    Ok((out, next))
}

/// Submits one claimed part on `link` and commits its outcome.
async fn submit_one(
    shared: &Shared,
    g: &Gateway,
    outcomes: &mpsc::UnboundedSender<Pending>,
    link: usize,
    c: GatewayClaim,
) {
    let part = c.part;
    // The account's extension: what follows the access number in the stored Src_Id.
    let extension = c
        .src_id
        .strip_prefix(g.cfg.src_id.as_str())
        .map(str::to_string);
    let outcome = match extension {
        None => GatewayOutcome::Failed {
            part,
            error: format!(
                "Src_Id {} is not under gateway {}'s access number {} (configuration changed?)",
                c.src_id, g.name, g.cfg.src_id
            ),
            kind: FailureKind::PermanentForMessage,
        },
        Some(ext) => {
            let result = g.links[link]
                .submit(&GatewayPart::new(c.pdu_hex, ext))
                .await;
            classify(g, link, part, result)
        }
    };
    match &outcome {
        GatewayOutcome::Sent { msg_id, .. } => {
            tracing::debug!(gateway = %g.name, part = part.0, msg_id, "part submitted")
        }
        GatewayOutcome::Deferred { error, .. } => {
            tracing::debug!(gateway = %g.name, part = part.0, "part deferred: {error}")
        }
        GatewayOutcome::Failed { error, .. } | GatewayOutcome::Unknown { error, .. } => {
            tracing::info!(gateway = %g.name, part = part.0, "part not sent: {error}");
            g.counters().last_error = Some(error.clone());
        }
    }
    commit_durably(shared, outcomes, outcome).await;
}

/// What a SUBMIT's answer means for its part.
fn classify(
    g: &Gateway,
    link: usize,
    part: PartId,
    result: Result<SubmitOutcome, GatewayLinkError>,
) -> GatewayOutcome {
    let now = Timestamp::now();
    let mut c = g.counters();
    match result {
        Ok(SubmitOutcome::Accepted { msg_id }) => {
            c.submits += 1;
            *c.results.entry(0).or_default() += 1;
            GatewayOutcome::Sent { part, msg_id }
        }
        Ok(SubmitOutcome::FlowControl { attempts }) => {
            c.submits += 1;
            *c.results.entry(8).or_default() += 1;
            GatewayOutcome::Deferred {
                part,
                error: format!("flow control (result 8) after {attempts} resends"),
                at: now + DEFER,
            }
        }
        Ok(SubmitOutcome::Refused { result, class }) => {
            c.submits += 1;
            *c.results.entry(result).or_default() += 1;
            let kind = match class {
                SubmitClass::Permanent => FailureKind::PermanentForMessage,
                _ => FailureKind::TransientForModem,
            };
            GatewayOutcome::Failed {
                part,
                error: format!("gateway {} refused the SUBMIT: result {result}", g.name),
                kind,
            }
        }
        Err(e) => match (e.payload_fate(), &e) {
            (PayloadFate::MaybeSent, _) => {
                c.submits += 1;
                if let GatewayLinkError::Unconfirmed { sequence_id, .. } = &e {
                    let mut map = g.unconfirmed.lock().unwrap_or_else(|p| p.into_inner());
                    // Bounded: a late SUBMIT_RESP comes within minutes or never; after a wrap
                    // of the Sequence_Ids an old entry could only mislead.
                    if map.len() >= UNCONFIRMED_KEPT {
                        map.clear();
                    }
                    map.insert((link, *sequence_id), part);
                }
                GatewayOutcome::Unknown {
                    part,
                    error: e.to_string(),
                }
            }
            (PayloadFate::NotSent, GatewayLinkError::Unsendable(_)) => GatewayOutcome::Failed {
                part,
                error: e.to_string(),
                kind: FailureKind::PermanentForMessage,
            },
            // Never written (link down, no window slot, stopped): not an attempt.
            (PayloadFate::NotSent, _) => GatewayOutcome::Deferred {
                part,
                error: e.to_string(),
                at: now + DEFER,
            },
        },
    }
}

/// Takes one link's events: state changes, status reports, MO messages, late responses.
async fn take_events(
    shared: Arc<Shared>,
    g: Arc<Gateway>,
    link: usize,
    mut rx: mpsc::Receiver<GatewayEvent>,
) {
    while let Some(ev) = rx.recv().await {
        match ev {
            GatewayEvent::Up { version } => {
                tracing::info!(gateway = %g.name, link, ?version, "gateway link up");
                g.counters().down_since = None;
                g.wake.notify_one();
            }
            GatewayEvent::Down {
                reason,
                permanent,
                retry_in,
            } => {
                if permanent {
                    tracing::error!(gateway = %g.name, link, ?retry_in, "gateway login refused: {reason}");
                } else {
                    tracing::warn!(gateway = %g.name, link, ?retry_in, "gateway link down: {reason}");
                }
                let mut c = g.counters();
                c.last_error = Some(reason);
                if g.up_links().is_empty() && c.down_since.is_none() {
                    c.down_since = Some(std::time::Instant::now());
                }
                drop(c);
                g.wake.notify_one();
            }
            GatewayEvent::Report(r) => {
                let input = GatewayReportIn {
                    gateway: g.name.clone(),
                    msg_id: r.msg_id,
                    stat: r.stat.clone(),
                    delivered: r.delivered,
                    recipient: r.dest_terminal_id.clone(),
                };
                match super::modems::write_durably(&shared, "gateway report", move |s| {
                    s.apply_gateway_report(&input, Timestamp::now())
                })
                .await
                {
                    Ok(outcome) => {
                        tracing::debug!(gateway = %g.name, ?outcome, "gateway report applied");
                        g.counters().reports += 1;
                        if let Err(e) = r.ack.ack().await {
                            tracing::debug!(gateway = %g.name, "report stored, DELIVER_RESP not sent: {e}");
                        }
                    }
                    Err(e) => tracing::error!(gateway = %g.name, "gateway report not stored: {e}"),
                }
            }
            GatewayEvent::Mo(m) => {
                let concat = m
                    .udh
                    .as_ref()
                    .and_then(|u| u.concat_info())
                    .map(|c| Concat {
                        reference: c.reference,
                        total: c.total,
                        seq: c.seq,
                    });
                let text = m
                    .text
                    .clone()
                    .unwrap_or_else(|| format!("[binary {}]", crate::pdu::encode_hex(&m.content)));
                let part = InboundPart {
                    sim: None,
                    sender: m.src_terminal_id.clone(),
                    text,
                    concat: concat.filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total),
                    scts: None,
                    // The Msg_Id makes a DELIVER the gateway sends again a duplicate.
                    raw_pdu: format!(
                        "cmpp:{}:{}:{}",
                        g.name,
                        m.msg_id,
                        crate::pdu::encode_hex(&m.content)
                    ),
                };
                let account = shared
                    .channels()
                    .account_for_extension(&g.name, m.extension.as_deref());
                let optout = shared.contract().optout;
                let name = g.name.clone();
                let masked = crate::number::mask(&m.src_terminal_id);
                let acct = account.clone();
                match super::modems::write_durably(&shared, "gateway MO", move |s| {
                    s.store_gateway_mo(&part, &name, acct.as_deref(), &optout, Timestamp::now())
                })
                .await
                {
                    Ok(outcome) => {
                        tracing::info!(gateway = %g.name, from = %masked, account = ?account, ?outcome, "gateway MO stored");
                        g.counters().mo += 1;
                        if let Err(e) = m.ack.ack().await {
                            tracing::debug!(gateway = %g.name, "MO stored, DELIVER_RESP not sent: {e}");
                        }
                    }
                    Err(e) => tracing::error!(gateway = %g.name, "gateway MO not stored: {e}"),
                }
            }
            GatewayEvent::LateResponse {
                sequence_id,
                msg_id,
                result,
            } => {
                let part = g
                    .unconfirmed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&(link, sequence_id));
                let Some(part) = part else {
                    continue;
                };
                if result != 0 {
                    tracing::info!(gateway = %g.name, part = part.0, result, "late SUBMIT_RESP refused an unknown part; it stays unknown for the operator");
                    continue;
                }
                match shared
                    .db
                    .call(move |s| s.settle_gateway_late(part, msg_id, Timestamp::now()))
                    .await
                {
                    Ok(true) => {
                        tracing::info!(gateway = %g.name, part = part.0, "unknown part settled as sent by a late SUBMIT_RESP")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(gateway = %g.name, "late SUBMIT_RESP not recorded: {e}")
                    }
                }
            }
        }
    }
}
