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
//! cannot stall the gateway); shutdown closes every link and the listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::events::EventLog;
use super::SimError;
use crate::cmpp::{
    self, connect_status, Body, CmppError, ConnectResp, Deliver, DeliverContent, MsgFmt, MsgId,
    MsgIdResult, Pdu, StatusReport, Version,
};

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

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, mut shut: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let Ok((stream, peer)) = conn else { continue };
                let _ = stream.set_nodelay(true);
                let (tx, rx) = mpsc::channel(64);
                let id = ctx.with(|s| {
                    s.next_link += 1;
                    s.links.insert(s.next_link, LinkEntry { tx, version: None });
                    s.next_link
                });
                ctx.events.log(None, json!({"event": "cmpp_link_open", "link": id, "peer": peer.to_string()}));
                let link = Link { id, ctx: ctx.clone(), version: None, timers: Vec::new(), unacked: BTreeMap::new(), pending: 0, seq: 0 };
                tokio::spawn(link.run(stream, rx, shut.clone()));
            }
            _ = shut.changed() => return,
        }
    }
}

/// A PDU due on the link at a time; `resp` marks a SUBMIT_RESP (it frees a window slot).
/// Any other timer is a status report (a kept one when the link closes).
#[derive(Debug)]
struct Timer {
    at: Instant,
    body: Body,
    sequence_id: Option<u32>,
    resp: bool,
}

struct Link {
    id: u64,
    ctx: Arc<Ctx>,
    /// Set once logged in.
    version: Option<Version>,
    timers: Vec<Timer>,
    /// Reports written and not acknowledged yet, by their DELIVER's sequence id.
    unacked: BTreeMap<u32, Timer>,
    /// SUBMITs accepted and not answered yet.
    pending: usize,
    /// Sequence ids of the PDUs the gateway starts (DELIVER, ACTIVE_TEST).
    seq: u32,
}

const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

enum Flow {
    Go,
    Close(&'static str),
}

impl Link {
    async fn run(
        mut self,
        mut stream: TcpStream,
        mut rx: mpsc::Receiver<LinkCmd>,
        mut shut: watch::Receiver<bool>,
    ) {
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let reason = loop {
            let next = self.timers.iter().map(|t| t.at).min();
            tokio::select! {
                r = stream.read(&mut chunk) => {
                    match r {
                        Ok(0) => break "peer closed",
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[..n]);
                            match self.on_bytes(&mut buf, &mut stream).await {
                                Flow::Go => {}
                                Flow::Close(why) => break why,
                            }
                        }
                        Err(_) => break "read error",
                    }
                }
                cmd = rx.recv() => match cmd {
                    Some(LinkCmd::Send(body)) => {
                        if self.ctx.with(|s| s.faults.silent) { continue; }
                        let seq = self.next_seq();
                        if self.write(&mut stream, Pdu::new(seq, *body)).await.is_err() { break "write failed"; }
                    }
                    Some(LinkCmd::Adopt(timers)) => self.adopt(timers),
                    Some(LinkCmd::Close) | None => break "dropped by sim ctl",
                },
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    if let Flow::Close(why) = self.fire(&mut stream).await { break why; }
                }
                _ = shut.changed() => break "shutdown",
            }
        };
        let _ = stream.shutdown().await;
        self.hand_off_reports(&mut rx);
        self.ctx.events.log(
            None,
            json!({"event": "cmpp_link_close", "link": self.id, "reason": reason}),
        );
    }

    /// Leaves the links map, then gives every report not acknowledged on this link (due,
    /// written and unanswered, or handed here after the link stopped reading) to another
    /// logged-in link, or keeps it for the next login.
    fn hand_off_reports(&mut self, rx: &mut mpsc::Receiver<LinkCmd>) {
        let id = self.id;
        self.ctx.with(|s| s.links.remove(&id));
        // Out of the map now: nothing more is handed here, and what was is in the channel.
        while let Ok(cmd) = rx.try_recv() {
            if let LinkCmd::Adopt(timers) = cmd {
                self.timers.extend(timers);
            }
        }
        let mut kept: Vec<Timer> = std::mem::take(&mut self.unacked).into_values().collect();
        kept.extend(
            std::mem::take(&mut self.timers)
                .into_iter()
                .filter(|t| !t.resp),
        );
        if kept.is_empty() {
            return;
        }
        let n = kept.len();
        let to = self.ctx.with(|s| {
            s.status.reports_kept += n as u64;
            let mut kept = Some(kept);
            for (other, l) in &s.links {
                if l.version.is_none() {
                    continue;
                }
                // Sent under the mutex: `other` is in the map, so it has not drained its
                // channel yet and will find them there if it closes now.
                match l
                    .tx
                    .try_send(LinkCmd::Adopt(kept.take().unwrap_or_default()))
                {
                    Ok(()) => return Some(*other),
                    Err(e) => {
                        if let LinkCmd::Adopt(t) = e.into_inner() {
                            kept = Some(t);
                        }
                    }
                }
            }
            s.waiting.extend(kept.unwrap_or_default());
            None
        });
        self.ctx.events.log(
            None,
            json!({"event": "cmpp_reports_kept", "link": id, "reports": n, "to_link": to}),
        );
    }

    /// Takes reports of a closed link; each is re-laid out for this link's version.
    fn adopt(&mut self, timers: Vec<Timer>) {
        let v = self.v();
        let short = self.ctx.with(|s| s.faults.short_reports);
        for mut t in timers {
            if let Body::Deliver(d) = &mut t.body {
                if let DeliverContent::Report(r) = &mut d.content {
                    // A 3.0 recipient longer than 21 octets does not fit a 60-byte report.
                    r.layout = if (v == Version::V30 && !short) || r.dest_terminal_id.len() > 21 {
                        Version::V30
                    } else {
                        Version::V20
                    };
                }
            }
            self.timers.push(t);
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn v(&self) -> Version {
        self.version.unwrap_or(Version::V30)
    }

    async fn write(&mut self, stream: &mut TcpStream, pdu: Pdu) -> Result<(), ()> {
        self.write_in(stream, pdu, self.v()).await
    }

    async fn write_in(&mut self, stream: &mut TcpStream, pdu: Pdu, v: Version) -> Result<(), ()> {
        let Ok(bytes) = pdu.emit(v) else {
            tracing::warn!(
                "sim cmpp link {}: cannot emit {:?}",
                self.id,
                pdu.body.command_id()
            );
            return Err(());
        };
        match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn on_bytes(&mut self, buf: &mut Vec<u8>, stream: &mut TcpStream) -> Flow {
        loop {
            match cmpp::decode(buf, self.v()) {
                Ok((None, _)) => return Flow::Go,
                Ok((Some(pdu), n)) => {
                    buf.drain(..n);
                    if self.ctx.with(|s| {
                        if s.faults.silent {
                            s.status.swallowed += 1;
                        }
                        s.faults.silent
                    }) {
                        continue;
                    }
                    if let Flow::Close(why) = self.on_pdu(pdu, stream).await {
                        return Flow::Close(why);
                    }
                }
                Err(CmppError::Body {
                    command_id,
                    sequence_id,
                    consumed,
                    source,
                }) => {
                    buf.drain(..consumed);
                    self.ctx.events.log(None, json!({"event": "cmpp_bad_pdu", "link": self.id, "command_id": command_id, "error": source.to_string()}));
                    // A SUBMIT we cannot read is answered "wrong structure" (1), as an
                    // ISMG does; anything else unreadable is ignored.
                    if command_id == 4 && self.version.is_some() {
                        let resp = Body::SubmitResp(MsgIdResult {
                            msg_id: 0,
                            result: 1,
                        });
                        if self
                            .write(stream, Pdu::new(sequence_id, resp))
                            .await
                            .is_err()
                        {
                            return Flow::Close("write failed");
                        }
                    }
                }
                Err(e) => {
                    self.ctx.events.log(None, json!({"event": "cmpp_bad_stream", "link": self.id, "error": e.to_string()}));
                    return Flow::Close("unframeable input");
                }
            }
        }
    }

    async fn on_pdu(&mut self, pdu: Pdu, stream: &mut TcpStream) -> Flow {
        let seq = pdu.sequence_id;
        match (pdu.body, self.version) {
            (Body::Connect(c), None) => self.on_connect(seq, c, stream).await,
            (Body::Connect(_), Some(_)) => Flow::Close("CONNECT on a logged-in link"),
            (_, None) => Flow::Close("PDU before login"),
            (Body::Submit(s), Some(v)) => self.on_submit(seq, s, v, stream).await,
            (Body::ActiveTest, Some(_)) => {
                self.ctx.with(|s| s.status.active_tests += 1);
                self.reply(stream, seq, Body::ActiveTestResp(Some(0))).await
            }
            (Body::Terminate, Some(_)) => {
                let _ = self.reply(stream, seq, Body::TerminateResp).await;
                Flow::Close("TERMINATE")
            }
            (Body::DeliverResp(r), Some(_)) => {
                // Answered (whatever the result): the report is settled. Matched by sequence
                // id, or by the DELIVER's Msg_Id that the response repeats.
                if self.unacked.remove(&seq).is_none() {
                    self.unacked.retain(
                        |_, t| !matches!(&t.body, Body::Deliver(d) if d.msg_id == r.msg_id),
                    );
                }
                Flow::Go
            }
            (Body::ActiveTestResp(_) | Body::TerminateResp, Some(_)) => Flow::Go,
            (other, Some(_)) => {
                self.ctx.events.log(None, json!({"event": "cmpp_ignored", "link": self.id, "command_id": other.command_id().to_u32()}));
                Flow::Go
            }
        }
    }

    async fn reply(&mut self, stream: &mut TcpStream, seq: u32, body: Body) -> Flow {
        match self.write(stream, Pdu::new(seq, body)).await {
            Ok(()) => Flow::Go,
            Err(()) => Flow::Close("write failed"),
        }
    }

    async fn on_connect(&mut self, seq: u32, c: cmpp::Connect, stream: &mut TcpStream) -> Flow {
        let cfg = &self.ctx.cfg;
        let asked = Version::from_byte(c.version);
        let auth_fail = self.ctx.with(|s| s.faults.auth_fail);
        let status = if c.source_addr != cfg.sp_id.as_bytes() {
            connect_status::ILLEGAL_SOURCE
        } else if auth_fail || !c.verify(&cfg.secret) {
            connect_status::AUTH_FAILED
        } else if asked == Version::V30 && cfg.max_version == Version::V20 {
            connect_status::VERSION_TOO_HIGH
        } else {
            connect_status::OK
        };
        // A refusal for the version goes out in the layout the gateway speaks (2.0).
        let layout = if status == connect_status::VERSION_TOO_HIGH {
            Version::V20
        } else {
            asked
        };
        let resp = ConnectResp {
            status,
            authenticator_ismg: cmpp::authenticator_ismg(
                status,
                layout,
                &c.authenticator_source,
                &cfg.secret,
            ),
            version: cfg.max_version.byte(),
        };
        let sp = String::from_utf8_lossy(&c.source_addr).into_owned();
        self.ctx.events.log(
            None,
            json!({"event": "cmpp_login", "link": self.id, "sp_id": sp, "version": format!("{:#04x}", c.version), "status": status}),
        );
        let sent = self
            .write_in(stream, Pdu::new(seq, Body::ConnectResp(resp)), layout)
            .await;
        let id = self.id;
        if status != connect_status::OK {
            self.ctx.with(|s| s.status.logins_refused += 1);
            return Flow::Close("login refused");
        }
        self.version = Some(asked);
        // Reports kept while no link was logged in go out after this CONNECT_RESP.
        let waiting = self.ctx.with(|s| {
            s.status.logins_ok += 1;
            if let Some(l) = s.links.get_mut(&id) {
                l.version = Some(asked);
            }
            std::mem::take(&mut s.waiting)
        });
        if !waiting.is_empty() {
            self.ctx.events.log(
                None,
                json!({"event": "cmpp_reports_resent", "link": id, "reports": waiting.len()}),
            );
            self.adopt(waiting);
        }
        match sent {
            Ok(()) => Flow::Go,
            Err(()) => Flow::Close("write failed"),
        }
    }

    async fn on_submit(
        &mut self,
        seq: u32,
        sub: cmpp::Submit,
        v: Version,
        stream: &mut TcpStream,
    ) -> Flow {
        let cfg = &self.ctx.cfg;
        if self.pending >= cfg.window {
            self.ctx.with(|s| s.status.window_full += 1);
            self.ctx.events.log(None, json!({"event": "cmpp_window_full", "link": self.id, "seq": seq, "window": cfg.window}));
            let body = Body::SubmitResp(MsgIdResult {
                msg_id: 0,
                result: 8,
            });
            return self.reply(stream, seq, body).await;
        }
        let rate = self.ctx.with(|s| s.faults.flow_control_rate);
        let refused = if rate > 0.0 && rand::rng().random::<f64>() < rate {
            Some(8)
        } else if sub.dest_terminal_ids.is_empty()
            || sub.dest_terminal_ids.iter().any(Vec::is_empty)
        {
            Some(13)
        } else if sub.src_id.is_empty() {
            Some(10)
        } else {
            None
        };
        if let Some(result) = refused {
            self.ctx.with(|s| {
                if result == 8 {
                    s.status.flow_controlled += 1;
                }
            });
            self.ctx.events.log(None, json!({"event": "cmpp_submit_refused", "link": self.id, "seq": seq, "result": result}));
            let body = Body::SubmitResp(MsgIdResult { msg_id: 0, result });
            return self.reply(stream, seq, body).await;
        }
        // n recipients get Msg_Id, Msg_Id+1, ...: the sequence advances by n.
        let n = sub.dest_terminal_ids.len() as u16;
        let now_utc = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
        let first = self.ctx.with(|s| {
            let first = s.msg_seq;
            s.msg_seq = s.msg_seq.wrapping_add(n);
            s.status.submits_accepted += u64::from(n);
            first
        });
        let base = MsgId {
            month: now_utc.month() as u8,
            day: now_utc.day() as u8,
            hour: now_utc.hour() as u8,
            minute: now_utc.minute() as u8,
            second: now_utc.second() as u8,
            gateway: cfg.gateway_code,
            sequence: first,
        };
        let content_hex: String = sub.msg_content.iter().map(|b| format!("{b:02x}")).collect();
        let mut ids = Vec::new();
        for (i, dest) in sub.dest_terminal_ids.iter().enumerate() {
            let id = MsgId {
                sequence: first.wrapping_add(i as u16),
                ..base
            }
            .build();
            ids.push((id, dest.clone()));
            self.ctx.events.log(
                None,
                json!({
                    "event": "cmpp_submit",
                    "link": self.id,
                    "version": version_name(v),
                    "seq": seq,
                    "msg_id": id,
                    "src_id": String::from_utf8_lossy(&sub.src_id),
                    "dest": String::from_utf8_lossy(dest),
                    "pk_total": sub.pk_total,
                    "pk_number": sub.pk_number,
                    "msg_fmt": sub.msg_fmt.to_u8(),
                    "udhi": sub.tp_udhi,
                    "registered_delivery": sub.registered_delivery,
                    "service_id": String::from_utf8_lossy(&sub.service_id),
                    "content": content_hex,
                }),
            );
        }
        let (reports_first, short) = self
            .ctx
            .with(|s| (s.faults.reports_first, s.faults.short_reports));
        let now = Instant::now();
        let resp_at = now + cfg.latency;
        let report_at = resp_at + cfg.report_delay;
        if sub.registered_delivery == 1 {
            let layout = if v == Version::V30 && !short {
                Version::V30
            } else {
                Version::V20
            };
            for (id, dest) in &ids {
                // A 3.0 recipient longer than 21 octets does not fit a 60-byte report.
                let layout = if dest.len() > 21 {
                    Version::V30
                } else {
                    layout
                };
                let yymmddhhmm = now_utc.strftime("%y%m%d%H%M").to_string();
                let report = StatusReport {
                    msg_id: *id,
                    stat: b"DELIVRD".to_vec(),
                    submit_time: yymmddhhmm.clone().into_bytes(),
                    done_time: yymmddhhmm.into_bytes(),
                    dest_terminal_id: dest.clone(),
                    smsc_sequence: u32::from(base.sequence),
                    layout,
                };
                let mut d = Deliver::new(&sub.src_id, dest, DeliverContent::Report(report));
                d.msg_id = *id;
                d.service_id = sub.service_id.clone();
                let at = if reports_first { now } else { report_at };
                self.timers.push(Timer {
                    at,
                    body: Body::Deliver(d),
                    sequence_id: None,
                    resp: false,
                });
            }
        }
        // With reports first, the response waits until the reports went (the timers fire in
        // order of time, and a report due at the same instant is pushed first).
        let resp_at = if reports_first && sub.registered_delivery == 1 {
            resp_at.max(now) + Duration::from_millis(1)
        } else {
            resp_at
        };
        self.pending += 1;
        self.timers.push(Timer {
            at: resp_at,
            body: Body::SubmitResp(MsgIdResult {
                msg_id: ids[0].0,
                result: 0,
            }),
            sequence_id: Some(seq),
            resp: true,
        });
        if cfg.latency.is_zero() && !(reports_first && sub.registered_delivery == 1) {
            return self.fire(stream).await;
        }
        Flow::Go
    }

    /// Writes every timer that is due, in order of time (first pushed first on a tie).
    async fn fire(&mut self, stream: &mut TcpStream) -> Flow {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut rest = Vec::new();
        for t in std::mem::take(&mut self.timers) {
            if t.at <= now {
                due.push(t);
            } else {
                rest.push(t);
            }
        }
        self.timers = rest;
        due.sort_by_key(|t| t.at);
        let mut due = due.into_iter();
        while let Some(t) = due.next() {
            if t.resp {
                self.pending = self.pending.saturating_sub(1);
            }
            if self.ctx.with(|s| s.faults.silent) {
                continue;
            }
            let seq = match t.sequence_id {
                Some(s) => s,
                None => self.next_seq(),
            };
            // A report is kept until its DELIVER_RESP (or handed on when the link closes).
            let report = (!t.resp).then(|| Timer {
                at: t.at,
                body: t.body.clone(),
                sequence_id: None,
                resp: false,
            });
            if self.write(stream, Pdu::new(seq, t.body)).await.is_err() {
                self.timers.extend(report);
                self.timers.extend(due.filter(|t| !t.resp));
                return Flow::Close("write failed");
            }
            if let Some(r) = report {
                self.unacked.insert(seq, r);
                self.ctx.with(|s| s.status.reports_sent += 1);
            }
        }
        Flow::Go
    }
}
