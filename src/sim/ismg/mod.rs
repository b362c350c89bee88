//! The virtual carrier gateway (ISMG) of `smsgate sim --cmpp ADDR`: a CMPP 2.0/3.0 server on
//! real TCP that plays the GATEWAY's side for the 106-number channel, as the modem bank plays
//! the modems'. It shares no code with the client side except the codec in `crate::cmpp`
//! (as the modem bank may use `pdu/`): its login checks, window, Msg_Id numbering and
//! report timing are its own, so a client built on wrong assumptions fails against it.
//!
//! What it does: checks CONNECT (SP id, MD5 authenticator against the configured secret),
//! speaks the version the client asked (a 3.0 login to a 2.0-only gateway gets status 4,
//! "version too high", in the 2.0 layout, and the link is closed), enforces a window of
//! unanswered SUBMITs (one more is answered at once with result 8), gives Msg_Ids in the
//! standard layout (UTC time, the configured gateway code, a 16-bit sequence; n recipients
//! get n consecutive ids), answers after `latency`, sends a status-report DELIVER
//! `report_delay` after a SUBMIT that asked for one (71 bytes on 3.0, 60 on 2.0), answers
//! ACTIVE_TEST and TERMINATE, and logs each accepted SUBMIT per recipient to events.jsonl
//! (event "cmpp_submit"). Faults on `sim ctl` ([`IsmgControl`]): MO DELIVERs, flow control
//! at a rate, every login refused as a wrong password, link drop, silence, reports before
//! responses, 60-byte reports on 3.0 links.
//!
//! Status reports are kept until the client acknowledges them, as an ISMG keeps them: a report
//! still due on a link that closes, one whose write failed, and one written but never answered
//! by a DELIVER_RESP go to another logged-in link of the SP at once (keeping their due times),
//! or, with none, wait in the shared state and go out after the next successful login.
//!
//! Known limits: one SP per gateway; a kept report waits for ever (no validity period); MO
//! text is one DELIVER (ASCII or UCS2, no GBK, no parts).
//!
//! Invariants: one task per TCP link owns its socket and timers; shared state (faults,
//! counters, the Msg_Id sequence, the links, the kept reports) lives in one mutex never held
//! across an await; a report is handed to another link only while that link is in the links
//! map under the mutex, and a closing link leaves the map before it drains its channel, so a
//! report handed over is never lost between two closing links;
//! a write that does not finish within a second drops the link (a client that does not read
//! cannot stall the gateway); shutdown closes every link and the listener.//!
//! Files: this one holds the public types (config, `sim ctl` commands, status), the [`Ismg`]
//! handle and the state the links share; `link.rs` the task of one TCP link (read loop,
//! timers, writes); `handlers.rs` the login and SUBMIT handlers; `reports.rs` the kept
//! status reports a closing link hands on.

mod handlers;
mod link;
mod reports;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::link::{accept_loop, Timer};
use super::events::EventLog;
use super::SimError;
use crate::cmpp::{Body, Deliver, DeliverContent, MsgFmt, Pdu, Version};

/// How to run the gateway.
#[derive(Debug, Clone)]
pub struct IsmgConfig {
    /// Where to listen (port 0 picks one; [`Ismg::local_addr`] tells which).
    pub listen: SocketAddr,
    /// The SP id a CONNECT must carry as Source_Addr.
    pub sp_id: String,
    /// The shared secret of the MD5 authenticator.
    pub secret: Vec<u8>,
    /// The highest version spoken: V20 makes a 2.0-only gateway.
    pub max_version: Version,
    /// Unanswered SUBMITs allowed per link.
    pub window: usize,
    /// Time from a SUBMIT to its SUBMIT_RESP.
    pub latency: Duration,
    /// Time from a SUBMIT_RESP to the status report.
    pub report_delay: Duration,
    /// The 22-bit gateway code in the Msg_Ids given.
    pub gateway_code: u32,
}

impl IsmgConfig {
    pub fn new(listen: SocketAddr, sp_id: &str, secret: &[u8]) -> IsmgConfig {
        IsmgConfig {
            listen,
            sp_id: sp_id.into(),
            secret: secret.to_vec(),
            max_version: Version::V30,
            window: 16,
            latency: Duration::ZERO,
            report_delay: Duration::from_secs(1),
            gateway_code: 100_001,
        }
    }
}

/// `sim ctl` commands for the gateway; on the wire inside `{"cmd":"cmpp","cmpp":...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmpp", rename_all = "kebab-case")]
pub enum IsmgControl {
    /// An MO message from `from` to `to` (our 106 number + extension) on a logged-in link.
    Mo {
        from: String,
        to: String,
        text: String,
    },
    /// SUBMITs answered with result 8 (flow control) at this rate 0..=1 (0 = off).
    FlowControl { rate: f64 },
    /// Every login refused with status 3 (as a wrong password would be), or back to normal.
    AuthFail { on: bool },
    /// Close every link now (the listener stays: clients may reconnect).
    Drop,
    /// Read and discard everything, answer nothing (until off or `recover`).
    Silence { on: bool },
    /// Status reports are sent before their SUBMIT_RESP.
    ReportsFirst { on: bool },
    /// 60-byte (2.0) report bodies on 3.0 links too.
    ShortReports { on: bool },
    /// Clear every fault.
    Recover,
    /// Links, counters and faults.
    Status,
}

/// The gateway as `sim ctl cmpp-status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IsmgStatus {
    pub addr: String,
    /// Logged-in links and the version each speaks ("2.0"/"3.0").
    pub links: Vec<String>,
    pub logins_ok: u64,
    pub logins_refused: u64,
    pub submits_accepted: u64,
    pub flow_controlled: u64,
    pub window_full: u64,
    pub reports_sent: u64,
    /// Reports of closed links handed to another link or kept for the next login.
    #[serde(default)]
    pub reports_kept: u64,
    /// Reports waiting for a login (no link was logged in when theirs closed).
    #[serde(default)]
    pub reports_waiting: u64,
    pub mo_sent: u64,
    pub active_tests: u64,
    /// PDUs swallowed while silent.
    pub swallowed: u64,
    pub flow_control_rate: f64,
    pub auth_fail: bool,
    pub silent: bool,
    pub reports_first: bool,
    pub short_reports: bool,
}

#[derive(Debug, Default)]
struct Faults {
    flow_control_rate: f64,
    auth_fail: bool,
    silent: bool,
    reports_first: bool,
    short_reports: bool,
}

/// What a link task is told from outside.
#[derive(Debug)]
enum LinkCmd {
    Close,
    Send(Box<Body>),
    /// Reports of a link that closed: added to this link's timers with their due times.
    Adopt(Vec<Timer>),
}

#[derive(Debug)]
struct LinkEntry {
    tx: mpsc::Sender<LinkCmd>,
    version: Option<Version>,
}

#[derive(Debug, Default)]
struct Shared {
    faults: Faults,
    status: IsmgStatus,
    msg_seq: u16,
    next_link: u64,
    links: BTreeMap<u64, LinkEntry>,
    /// Reports no logged-in link could take; the next login takes them.
    waiting: Vec<Timer>,
}

/// A running virtual gateway.
#[derive(Debug)]
pub struct Ismg {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Ismg {
    /// Binds the listener and starts accepting links.
    pub async fn start(cfg: IsmgConfig, events: Arc<EventLog>) -> Result<Ismg, SimError> {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| SimError::Io(format!("cmpp: bind {}", cfg.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimError::Io("cmpp: local address".into(), e))?;
        let shared = Arc::new(Mutex::new(Shared {
            status: IsmgStatus {
                addr: addr.to_string(),
                ..Default::default()
            },
            ..Default::default()
        }));
        let (shutdown, shut_rx) = watch::channel(false);
        events.log(
            None,
            json!({"event": "cmpp_listen", "addr": addr.to_string(), "max_version": version_name(cfg.max_version), "window": cfg.window}),
        );
        let ctx = Arc::new(Ctx {
            cfg,
            events,
            shared: shared.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, ctx, shut_rx));
        Ok(Ismg {
            addr,
            shared,
            shutdown,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs one control command.
    pub async fn control(&self, cmd: IsmgControl) -> Result<IsmgStatus, SimError> {
        let mut sends = Vec::new();
        let status = {
            let mut s = self.shared.lock().map_err(|_| SimError::Gone)?;
            match cmd {
                IsmgControl::Mo { from, to, text } => {
                    let (fmt, content) = encode_mo(&text).map_err(SimError::Refused)?;
                    let entry = s
                        .links
                        .values()
                        .find(|l| l.version.is_some())
                        .ok_or_else(|| SimError::Refused("cmpp: no logged-in link".into()))?;
                    let mut d = Deliver::new(
                        to.as_bytes(),
                        from.as_bytes(),
                        DeliverContent::Message(content),
                    );
                    d.msg_fmt = fmt;
                    d.registered_delivery = 0;
                    // Checked here, so a bad number from ctl is refused instead of making the
                    // link's write fail (which would drop the link).
                    let v = entry.version.unwrap_or(Version::V30);
                    Pdu::new(0, Body::Deliver(d.clone()))
                        .emit(v)
                        .map_err(|e| SimError::Refused(format!("cmpp-mo: {e}")))?;
                    sends.push((entry.tx.clone(), LinkCmd::Send(Box::new(Body::Deliver(d)))));
                    s.status.mo_sent += 1;
                }
                IsmgControl::FlowControl { rate } => {
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(SimError::Refused(format!("rate {rate} outside 0..=1")));
                    }
                    s.faults.flow_control_rate = rate;
                }
                IsmgControl::AuthFail { on } => s.faults.auth_fail = on,
                IsmgControl::Drop => {
                    for l in s.links.values() {
                        sends.push((l.tx.clone(), LinkCmd::Close));
                    }
                }
                IsmgControl::Silence { on } => s.faults.silent = on,
                IsmgControl::ReportsFirst { on } => s.faults.reports_first = on,
                IsmgControl::ShortReports { on } => s.faults.short_reports = on,
                IsmgControl::Recover => s.faults = Faults::default(),
                IsmgControl::Status => {}
            }
            s.snapshot()
        };
        for (tx, cmd) in sends {
            tx.send(cmd).await.map_err(|_| SimError::Gone)?;
        }
        Ok(status)
    }

    /// Closes every link and the listener.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

impl Drop for Ismg {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl Shared {
    fn snapshot(&self) -> IsmgStatus {
        let mut st = self.status.clone();
        st.links = self
            .links
            .values()
            .filter_map(|l| l.version.map(version_name).map(str::to_string))
            .collect();
        st.reports_waiting = self.waiting.len() as u64;
        st.flow_control_rate = self.faults.flow_control_rate;
        st.auth_fail = self.faults.auth_fail;
        st.silent = self.faults.silent;
        st.reports_first = self.faults.reports_first;
        st.short_reports = self.faults.short_reports;
        st
    }
}

fn version_name(v: Version) -> &'static str {
    match v {
        Version::V20 => "2.0",
        Version::V30 => "3.0",
    }
}

/// ASCII text as Msg_Fmt 0, anything else as UCS2 (8); one DELIVER holds 140 octets.
fn encode_mo(text: &str) -> Result<(MsgFmt, Vec<u8>), String> {
    let (fmt, bytes) = if text.is_ascii() {
        (MsgFmt::Ascii, text.as_bytes().to_vec())
    } else {
        let b: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        (MsgFmt::Ucs2, b)
    };
    let max = if fmt == MsgFmt::Ascii { 160 } else { 140 };
    if bytes.len() > max {
        return Err(format!(
            "cmpp: MO text of {} octets does not fit one DELIVER ({max})",
            bytes.len()
        ));
    }
    Ok((fmt, bytes))
}

struct Ctx {
    cfg: IsmgConfig,
    events: Arc<EventLog>,
    shared: Arc<Mutex<Shared>>,
}

impl Ctx {
    fn with<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }
}
