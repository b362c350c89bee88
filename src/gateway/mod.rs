//! The carrier-gateway channel for 106 numbers (issue 12): the CLIENT side of a CMPP 2.0/3.0
//! link to a carrier's ISMG, built on the sans-I/O codec in `crate::cmpp`. This module owns
//! one link actor per TCP connection ([`GatewayLink`]): connect, CONNECT with the MD5
//! authenticator (3.0 falling back to 2.0 when the gateway answers "version too high"), a
//! window of in-flight SUBMITs matched by Sequence_Id, ACTIVE_TEST on idle and as the gateway
//! asks, reconnect with back-off, a token-bucket rate limit, TERMINATE on shutdown; and the
//! translation of a stored part (an SMS-SUBMIT TPDU in hex, as the modems get) into a CMPP
//! SUBMIT ([`part`]). The daemon's `daemon/gateways.rs` opens the links of each `[[gateways]]`
//! entry and feeds them the gateway's claimed parts.
//!
//! What must always hold:
//! - A SUBMIT whose bytes were handed to the socket and whose SUBMIT_RESP never came (timeout,
//!   link drop, shutdown bound) is [`PayloadFate::MaybeSent`]: the part becomes `unknown` and
//!   the link never resends it on its own. Only a SUBMIT the gateway refused with result 8
//!   (flow control, an explicit "not taken") is resent by the link, a bounded number of times.
//!   A failure before the write is [`PayloadFate::NotSent`].
//! - A DELIVER (status report or MO) is answered with DELIVER_RESP only after the consumer
//!   called [`DeliverAck::ack`]: nothing the gateway gave us is lost by a crash in between (the
//!   gateway sends it again on a later link; the store de-duplicates).
//! - The shared secret appears in no log, no event, no error and no `Debug` output.
//! - Every wait is bounded (login, responses, ACTIVE_TEST, writes, shutdown).
//!
//! # API
//! - [`GatewayConfig`] (plain struct; `Debug` hides the secret), [`Protocol`].
//! - [`GatewayLink::spawn`]`(cfg)` over TCP, [`GatewayLink::spawn_with`]`(cfg, connector,
//!   limiter)` over any stream -> `(`[`GatewayHandle`]`, Receiver<`[`GatewayEvent`]`>)`.
//! - [`GatewayHandle::submit`]`(&`[`GatewayPart`]`) -> Result<`[`SubmitOutcome`]`,
//!   `[`GatewayLinkError`]`>`, [`GatewayHandle::state`], [`GatewayHandle::stats`],
//!   [`GatewayHandle::shutdown`].
//! - [`GatewayEvent`]: `Up`, `Down`, `Report`, `Mo`, `LateResponse`; reports and MOs carry a
//!   [`DeliverAck`].
//! - [`RateLimiter`]: the per-gateway token bucket, cloneable so several links of one gateway
//!   can share it.

mod link;
pub mod part;
mod rate;

use std::time::Duration;

pub use crate::cmpp::SubmitClass;
pub use link::{
    BoxedStream, Connector, DeliverAck, GatewayEvent, GatewayHandle, GatewayLink, LinkState,
    LinkStats, MoMessage, ReportEvent,
};
pub use part::{build_submit, decode_mo, dest_terminal_id, GatewayPart, PartError};
pub use rate::{RateLimiter, TokenBucket};

/// The protocol a gateway speaks (SGIP and SMGP come later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// CMPP 3.0, falling back to 2.0 when the gateway says the version is too high.
    Cmpp3,
    /// CMPP 2.0 only.
    Cmpp2,
}

/// One carrier gateway account, as `[[gateways]]` will describe it. `Debug` never shows the
/// secret.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Name for logs and events.
    pub name: String,
    pub protocol: Protocol,
    /// `host:port` of the ISMG.
    pub address: String,
    /// The SP id (Source_Addr of CONNECT, Msg_src of SUBMIT), at most 6 octets.
    pub sp_id: String,
    /// The shared secret of the MD5 authenticator (read from `secret_file` later).
    pub secret: String,
    /// The 106 access number; an account's extension is appended for Src_Id.
    pub src_id: String,
    /// Service_Id of every SUBMIT (10 octets at most).
    pub service_id: String,
    /// Most SUBMITs in flight without a SUBMIT_RESP.
    pub window: usize,
    /// The provider's contracted rate (submits per second); None = no limit.
    pub max_per_second: Option<u32>,
    /// ACTIVE_TEST after this long without a PDU from the gateway.
    pub heartbeat: Duration,
    /// Wait for an ACTIVE_TEST_RESP; after `active_test_attempts` unanswered the link is dead.
    pub active_test_timeout: Duration,
    pub active_test_attempts: u32,
    /// Wait for a SUBMIT_RESP once the SUBMIT is written (then the part is MaybeSent).
    pub response_timeout: Duration,
    /// Bound on one `submit` call as the caller sees it (queueing included).
    pub submit_timeout: Duration,
    /// Bound on TCP connect plus login.
    pub connect_timeout: Duration,
    /// Back-off between reconnects after a transient failure, by consecutive failures
    /// (the last value repeats).
    pub reconnect_backoff: Vec<Duration>,
    /// Back-off after a permanent login refusal (wrong secret, unknown SP id).
    pub refused_backoff: Duration,
    /// Resends of a SUBMIT refused with result 8 before it is reported as FlowControl.
    pub flow_control_retries: u32,
    /// First pause after a result 8 (doubles while they continue, up to 16x).
    pub flow_control_pause: Duration,
    /// Bound on a single socket write.
    pub write_timeout: Duration,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("address", &self.address)
            .field("sp_id", &self.sp_id)
            .field("secret", &"****")
            .field("src_id", &self.src_id)
            .field("service_id", &self.service_id)
            .field("window", &self.window)
            .field("max_per_second", &self.max_per_second)
            .field("heartbeat", &self.heartbeat)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl GatewayConfig {
    /// Defaults from the CMPP spec's link rules: window 16, ACTIVE_TEST after 3 minutes idle,
    /// 60 s for a response, 3 attempts.
    pub fn new(name: &str, address: &str, sp_id: &str, secret: &str, src_id: &str) -> Self {
        GatewayConfig {
            name: name.into(),
            protocol: Protocol::Cmpp3,
            address: address.into(),
            sp_id: sp_id.into(),
            secret: secret.into(),
            src_id: src_id.into(),
            service_id: String::new(),
            window: 16,
            max_per_second: None,
            heartbeat: Duration::from_secs(180),
            active_test_timeout: Duration::from_secs(60),
            active_test_attempts: 3,
            response_timeout: Duration::from_secs(60),
            submit_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
            reconnect_backoff: [1, 2, 5, 10, 30, 60]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            refused_backoff: Duration::from_secs(600),
            flow_control_retries: 3,
            flow_control_pause: Duration::from_millis(100),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// What became of a part's SUBMIT when `submit` failed (the modems' rule, RELIABILITY.md).
pub use crate::modem::PayloadFate;

/// The gateway's answer to one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// SUBMIT_RESP result 0: the part is sent; its report will carry `msg_id`.
    Accepted { msg_id: u64 },
    /// Any other result but 8, classified by the codec's table.
    Refused { result: u32, class: SubmitClass },
    /// Result 8 still after the link slowed down and resent it `attempts` times: not taken,
    /// not a failure; the scheduler tries it later.
    FlowControl { attempts: u32 },
}

/// Why `submit` gave no outcome. [`GatewayLinkError::payload_fate`] says whether the part may
/// be tried again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayLinkError {
    /// The link is not logged in (connecting, backing off, refused): nothing was written.
    #[error("gateway link down: {0}")]
    Down(String),
    /// The part cannot be expressed as a CMPP SUBMIT (nothing was written); resending it
    /// will not help.
    #[error("part cannot be submitted: {0}")]
    Unsendable(#[from] PartError),
    /// No window slot within the caller's bound: nothing was written.
    #[error("no window slot within {0:?}")]
    QueueTimeout(Duration),
    /// The SUBMIT was written (Sequence_Id `sequence_id`) and then `cause`: the gateway may
    /// have it. Never resend automatically.
    #[error("SUBMIT seq {sequence_id} written, then {cause}; outcome unknown")]
    Unconfirmed { sequence_id: u32, cause: String },
    /// The link actor has stopped (shut down); nothing was written.
    #[error("gateway link stopped")]
    Closed,
    /// A DELIVER_RESP could not be sent: the link it came on is gone (the gateway sends the
    /// DELIVER again on a later link).
    #[error("acknowledgement not sent: {0}")]
    AckLost(String),
}

impl GatewayLinkError {
    pub fn payload_fate(&self) -> PayloadFate {
        match self {
            GatewayLinkError::Unconfirmed { .. } => PayloadFate::MaybeSent,
            _ => PayloadFate::NotSent,
        }
    }
}
