//! One CMPP link actor: a task that owns one connection to the gateway at a time and
//! everything about it (login, Sequence_Ids, the in-flight table, heartbeat, reconnects), and
//! the cloneable [`GatewayHandle`] that talks to it. What must always hold (see the module
//! doc of `gateway` for the payload rule):
//! - Only the actor touches the socket; every write is bounded by `write_timeout`.
//! - A request moves Queued -> Written only in the actor, just before its bytes go into the
//!   write buffer, and Queued -> Abandoned only in the handle when its caller's bound ran
//!   out; whichever comes first decides (an atomic compare-and-swap), so a request is either
//!   provably not written (NotSent) or possibly written (MaybeSent), never both.
//! - A written SUBMIT is answered exactly once: by its SUBMIT_RESP, by its response timeout,
//!   or by the link's end (MaybeSent). A result 8 puts it back to Queued for a resend.
//! - A DELIVER_RESP is written only when the consumer acknowledged, on the connection the
//!   DELIVER came on (an acknowledgement for an older connection is refused: the gateway
//!   will deliver again).
//! - The actor holds only a weak sender to its own control queue: it stops when every handle
//!   (and every outstanding acknowledgement) is gone, or on `shutdown`.
//!
//! The actor blocks while the event channel is full (backpressure to the gateway: DELIVERs
//! are then not read); drain it.

mod actor;
mod login;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::part::{build_submit, decode_mo, split_udh, GatewayPart};
use super::rate::RateLimiter;
use super::{GatewayConfig, GatewayLinkError, Protocol, SubmitOutcome};
use crate::cmpp::{
    self, classify_submit_result, connect_status, Body, CmppError, Connect, DeliverContent, MsgFmt,
    MsgIdResult, Pdu, Submit, SubmitClass, Version,
};
use crate::pdu::Udh;

/// Anything the link can speak CMPP over.
pub trait LinkIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> LinkIo for T {}

pub type BoxedStream = Box<dyn LinkIo>;

/// Opens a new connection to the gateway (TCP in production; anything in tests).
pub type Connector =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send>> + Send + Sync>;

/// Where the link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Up {
        version: Version,
    },
    Down {
        reason: String,
        permanent: bool,
    },
    /// Shut down; the actor has ended.
    Stopped,
}

/// Counters for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub in_flight: usize,
    /// SUBMITs written (resends after flow control included).
    pub written: u64,
    /// SUBMIT_RESP results by code.
    pub results: BTreeMap<u32, u64>,
    /// SUBMITs written and never answered (MaybeSent).
    pub unconfirmed: u64,
    pub logins: u64,
    pub last_error: Option<String>,
}

/// What the link reports.
#[derive(Debug)]
pub enum GatewayEvent {
    /// Logged in.
    Up { version: Version },
    /// The link is down (or a login failed); the next attempt is in `retry_in`. `permanent`
    /// means only an operator can fix it (wrong secret, unknown SP id).
    Down {
        reason: String,
        permanent: bool,
        retry_in: Duration,
    },
    /// A status report (DELIVER with Registered_Delivery 1); may come before its
    /// SUBMIT_RESP.
    Report(ReportEvent),
    /// A mobile-originated message.
    Mo(MoMessage),
    /// A SUBMIT_RESP for a SUBMIT whose caller was already told MaybeSent (response timeout).
    LateResponse {
        sequence_id: u32,
        msg_id: u64,
        result: u32,
    },
}

/// A status report.
#[derive(Debug)]
pub struct ReportEvent {
    /// The Msg_Id the SUBMIT_RESP gave.
    pub msg_id: u64,
    /// DELIVRD, UNDELIV, EXPIRED, ... or a vendor code.
    pub stat: String,
    pub delivered: bool,
    pub dest_terminal_id: String,
    /// YYMMDDHHMM.
    pub submit_time: String,
    pub done_time: String,
    pub ack: DeliverAck,
}

/// An MO message.
#[derive(Debug)]
pub struct MoMessage {
    pub msg_id: u64,
    /// The sender.
    pub src_terminal_id: String,
    /// Our 106 number plus the extension the reply was sent to.
    pub dest_id: String,
    /// `dest_id` after the gateway's `src_id` (None when it does not start with it).
    pub extension: Option<String>,
    pub msg_fmt: MsgFmt,
    /// The UDH of a part of a long MO.
    pub udh: Option<Udh>,
    /// Msg_Content after the UDH, as it came.
    pub content: Vec<u8>,
    /// The text (ASCII, UCS2 or GBK); None for binary formats.
    pub text: Option<String>,
    pub ack: DeliverAck,
}

/// Acknowledges one DELIVER; dropping it without `ack` sends no DELIVER_RESP, so the gateway
/// delivers again later.
#[derive(Debug)]
pub struct DeliverAck {
    tx: mpsc::Sender<Ctl>,
    epoch: u64,
    sequence_id: u32,
    msg_id: u64,
}

impl DeliverAck {
    /// Sends the DELIVER_RESP (result 0); call once the consumer has stored the DELIVER.
    pub async fn ack(self) -> Result<(), GatewayLinkError> {
        let (reply, rx) = oneshot::channel();
        let req = Ctl::Ack {
            epoch: self.epoch,
            sequence_id: self.sequence_id,
            msg_id: self.msg_id,
            reply,
        };
        let bound = Duration::from_secs(30);
        let r = tokio::time::timeout(bound, async {
            self.tx
                .send(req)
                .await
                .map_err(|_| GatewayLinkError::Closed)?;
            rx.await.map_err(|_| GatewayLinkError::Closed)?
        })
        .await;
        r.unwrap_or_else(|_| Err(GatewayLinkError::AckLost("no answer from the link".into())))
    }
}

enum Ctl {
    Ack {
        epoch: u64,
        sequence_id: u32,
        msg_id: u64,
        reply: oneshot::Sender<Result<(), GatewayLinkError>>,
    },
    Shutdown {
        bound: Duration,
        reply: oneshot::Sender<()>,
    },
}

const QUEUED: u8 = 0;
const WRITTEN: u8 = 1;
const ABANDONED: u8 = 2;

/// Who owns a request's fate (see the module doc).
#[derive(Debug, Default)]
struct Claim {
    state: AtomicU8,
    sequence_id: AtomicU32,
}

type Reply = oneshot::Sender<Result<SubmitOutcome, GatewayLinkError>>;

struct SubmitReq {
    submit: Submit,
    claim: Arc<Claim>,
    reply: Reply,
    flow_attempts: u32,
}

impl SubmitReq {
    fn answer(self, r: Result<SubmitOutcome, GatewayLinkError>) {
        let _ = self.reply.send(r);
    }
}

/// Cloneable handle to one link actor.
#[derive(Clone)]
pub struct GatewayHandle {
    cfg: Arc<GatewayConfig>,
    submits: mpsc::Sender<SubmitReq>,
    ctl: mpsc::Sender<Ctl>,
    state: watch::Receiver<LinkState>,
    stats: Arc<Mutex<LinkStats>>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("gateway", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

impl GatewayHandle {
    /// Submits one part and waits for the gateway's answer (bounded by `submit_timeout`).
    pub async fn submit(&self, part: &GatewayPart) -> Result<SubmitOutcome, GatewayLinkError> {
        let submit = build_submit(&self.cfg, part)?;
        let bound = self.cfg.submit_timeout;
        let deadline = Instant::now() + bound;
        let claim = Arc::new(Claim::default());
        let (reply, rx) = oneshot::channel();
        let req = SubmitReq {
            submit,
            claim: claim.clone(),
            reply,
            flow_attempts: 0,
        };
        match tokio::time::timeout_at(deadline, self.submits.send(req)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(GatewayLinkError::Closed),
            Err(_) => return Err(GatewayLinkError::QueueTimeout(bound)),
        }
        let answer = tokio::time::timeout_at(deadline, rx).await;
        match answer {
            Ok(Ok(r)) => r,
            // No answer: whether the SUBMIT went out is decided by who claims it first.
            other => {
                let abandoned = claim
                    .state
                    .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                match (abandoned, other) {
                    (true, Ok(Err(_))) => Err(GatewayLinkError::Closed),
                    (true, _) => Err(GatewayLinkError::QueueTimeout(bound)),
                    (false, _) => Err(GatewayLinkError::Unconfirmed {
                        sequence_id: claim.sequence_id.load(Ordering::Acquire),
                        cause: format!("no answer from the link within {bound:?}"),
                    }),
                }
            }
        }
    }

    /// The link's state now.
    pub fn state(&self) -> LinkState {
        self.state.borrow().clone()
    }

    /// A receiver of state changes.
    pub fn watch_state(&self) -> watch::Receiver<LinkState> {
        self.state.clone()
    }

    pub fn stats(&self) -> LinkStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops taking submits, waits up to `bound` for the SUBMITs in flight to be answered
    /// (those still unanswered then are MaybeSent), sends TERMINATE, closes. Returns when the
    /// actor has ended (or `bound` plus a margin passed).
    pub async fn shutdown(&self, bound: Duration) {
        let (reply, rx) = oneshot::channel();
        let margin = bound + Duration::from_secs(3);
        let _ = tokio::time::timeout(margin, async {
            if self.ctl.send(Ctl::Shutdown { bound, reply }).await.is_ok() {
                let _ = rx.await;
            }
        })
        .await;
    }
}

/// Entry points.
pub struct GatewayLink;

impl GatewayLink {
    /// A link over TCP to `cfg.address`, limited by its own bucket of `max_per_second`.
    /// Must run in a tokio runtime.
    pub fn spawn(cfg: GatewayConfig) -> (GatewayHandle, mpsc::Receiver<super::GatewayEvent>) {
        let addr = cfg.address.clone();
        let connector: Connector = Arc::new(move || {
            let addr = addr.clone();
            Box::pin(async move {
                let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
                s.set_nodelay(true)?;
                Ok(Box::new(s) as BoxedStream)
            })
        });
        let limiter = RateLimiter::new(cfg.max_per_second);
        Self::spawn_with(cfg, connector, limiter)
    }

    /// A link over whatever `connector` opens, drawing from `limiter` (share one between the
    /// links of a gateway).
    pub fn spawn_with(
        cfg: GatewayConfig,
        connector: Connector,
        limiter: RateLimiter,
    ) -> (GatewayHandle, mpsc::Receiver<GatewayEvent>) {
        let cfg = Arc::new(cfg);
        let (submits_tx, submits) = mpsc::channel(cfg.window.max(1) * 4);
        let (ctl_tx, ctl) = mpsc::channel(64);
        let (events, events_rx) = mpsc::channel(256);
        let (state_tx, state) = watch::channel(LinkState::Connecting);
        let stats = Arc::new(Mutex::new(LinkStats::default()));
        let version = match cfg.protocol {
            Protocol::Cmpp3 => Version::V30,
            Protocol::Cmpp2 => Version::V20,
        };
        let actor = Actor {
            cfg: cfg.clone(),
            connector,
            limiter,
            submits,
            ctl,
            ctl_weak: ctl_tx.downgrade(),
            events,
            state: state_tx,
            stats: stats.clone(),
            seq: 0,
            epoch: 0,
            version,
            failures: 0,
        };
        tokio::spawn(actor.run());
        (
            GatewayHandle {
                cfg,
                submits: submits_tx,
                ctl: ctl_tx,
                state,
                stats,
            },
            events_rx,
        )
    }
}

struct Actor {
    cfg: Arc<GatewayConfig>,
    connector: Connector,
    limiter: RateLimiter,
    submits: mpsc::Receiver<SubmitReq>,
    ctl: mpsc::Receiver<Ctl>,
    ctl_weak: mpsc::WeakSender<Ctl>,
    events: mpsc::Sender<GatewayEvent>,
    state: watch::Sender<LinkState>,
    stats: Arc<Mutex<LinkStats>>,
    seq: u32,
    epoch: u64,
    /// The version to ask for; falls back to 2.0 for good once a gateway said 3.0 is too
    /// high (a gateway upgrade is rare; a second login per reconnect is not free).
    version: Version,
    failures: usize,
}
