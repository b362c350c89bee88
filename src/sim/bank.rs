//! The running bank: one tokio task per modem that owns its [`Engine`] and [`Pty`], arms the
//! engine's timers, applies faults that live below the AT layer (hang, garbage, unplug), and
//! logs events; plus the DIR/ctl.sock server. A modem has one pty per AT port (DIR/modemN, and
//! DIR/modemN-at2 when configured with a second port). Invariants: a modem task never blocks on
//! a client that does not read (writes give up after a second); unplug removes the links before
//! the ptys close and relinks only once the new ptys are ready; an unplugged or rebooting modem
//! loses its own timers but not the network's (status reports); shutdown removes links and
//! ctl.sock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::control::{describe_fail, identity_fields, Control, ControlReply, ModemStatus, Quirk};
use super::events::EventLog;
use super::identity::Identity;
use super::ismg::Ismg;
use super::modem::{Action, Engine, FailMode, FailRule, Port, Timer};
use super::pty::{ClientEvent, Pty};
use super::{SimConfig, SimError};

type Request = (Control, oneshot::Sender<Result<ControlReply, String>>);

/// A running virtual modem bank.
#[derive(Debug)]
pub struct Bank {
    dir: PathBuf,
    /// Modems that expose a second AT port.
    second_port: Vec<usize>,
    handle: Handle,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the ctl.sock server needs to reach the modems.
#[derive(Debug, Clone)]
struct Handle {
    modems: Arc<Vec<mpsc::Sender<Request>>>,
    /// The virtual CMPP gateway, when configured.
    ismg: Option<Arc<Ismg>>,
}

impl Handle {
    async fn ask(&self, i: usize, cmd: Control) -> Result<ControlReply, SimError> {
        let tx = self
            .modems
            .get(i)
            .ok_or(SimError::NoSuchModem(i, self.modems.len()))?;
        let (rtx, rrx) = oneshot::channel();
        tx.send((cmd, rtx)).await.map_err(|_| SimError::Gone)?;
        rrx.await
            .map_err(|_| SimError::Gone)?
            .map_err(SimError::Refused)
    }

    async fn control(&self, cmd: Control) -> Result<ControlReply, SimError> {
        if let Control::Cmpp(c) = cmd {
            let ismg = self.ismg.as_ref().ok_or_else(|| {
                SimError::Refused("no CMPP gateway (start the sim with --cmpp)".into())
            })?;
            let mut reply = ControlReply::done();
            reply.gateway = Some(ismg.control(c).await?);
            return Ok(reply);
        }
        match cmd.modem() {
            Some(i) => self.ask(i, cmd).await,
            None => {
                let mut all = ControlReply::done();
                for i in 0..self.modems.len() {
                    all.modems
                        .extend(self.ask(i, Control::Status).await?.modems);
                }
                if let Some(ismg) = &self.ismg {
                    all.gateway = Some(ismg.control(super::IsmgControl::Status).await?);
                }
                Ok(all)
            }
        }
    }
}

impl Bank {
    /// Creates the ptys and links, starts the modem tasks (and ctl.sock if configured).
    pub async fn start(cfg: SimConfig) -> Result<Bank, SimError> {
        let io = |what: String| move |e| SimError::Io(what, e);
        std::fs::create_dir_all(&cfg.dir).map_err(io(format!("create {}", cfg.dir.display())))?;
        let events = Arc::new(
            EventLog::open(&cfg.dir.join("events.jsonl"))
                .map_err(io("open events.jsonl".into()))?,
        );
        let seed = cfg.seed.unwrap_or_else(rand::random);
        let (shutdown, shut_rx) = watch::channel(false);
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..cfg.modems {
            let dialect = cfg.dialect.for_modem(i);
            let profile = dialect.profile();
            let identity = Identity::generate(seed, i, profile.number_toa == 0x81);
            let mut engine = Engine::new(
                profile,
                identity,
                seed.wrapping_add(i as u64),
                cfg.latency,
                cfg.report_delay,
            );
            let mut links = vec![cfg.dir.join(format!("modem{i}"))];
            if cfg.second_port.contains(&i) {
                engine.add_port();
                links.push(second_port_link(&cfg.dir, i));
            }
            let mut ports = Vec::new();
            for link in links {
                let pty =
                    Pty::open(&link).map_err(io(format!("open pty for {}", link.display())))?;
                events.log(Some(i), json!({"event": "port_open", "port": link.display().to_string(), "tty": pty.tty.display().to_string(), "dialect": dialect.name()}));
                ports.push(PortSlot {
                    link,
                    pty: Some(pty),
                    clients: 0,
                    listening: true,
                });
            }
            let (tx, rx) = mpsc::channel(16);
            senders.push(tx);
            let task = ModemTask {
                index: i,
                engine,
                ports,
                events: events.clone(),
                timers: Vec::new(),
                hung_until: None,
                replug_at: None,
                unplug_for: Duration::from_secs(5),
                booting_until: None,
                chatter: cfg.chatter,
                last_input: None,
                swallowed: 0,
                rng: StdRng::seed_from_u64(seed ^ 0x5EED ^ i as u64),
            };
            tasks.push(tokio::spawn(task.run(rx, shut_rx.clone())));
        }
        let ismg = match cfg.cmpp.clone() {
            Some(c) => Some(Arc::new(Ismg::start(c, events.clone()).await?)),
            None => None,
        };
        let handle = Handle {
            modems: Arc::new(senders),
            ismg,
        };
        if cfg.control_socket {
            let sock = cfg.dir.join("ctl.sock");
            let _ = std::fs::remove_file(&sock);
            let listener =
                UnixListener::bind(&sock).map_err(io(format!("bind {}", sock.display())))?;
            tasks.push(tokio::spawn(serve_ctl(
                listener,
                handle.clone(),
                shut_rx.clone(),
            )));
        }
        events.log(
            None,
            json!({"event": "bank_start", "modems": cfg.modems, "seed": seed}),
        );
        Ok(Bank {
            dir: cfg.dir,
            second_port: cfg.second_port,
            handle,
            shutdown,
            tasks,
        })
    }

    /// DIR/modem{i}: the path a client opens.
    pub fn port_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("modem{i}"))
    }

    /// DIR/modem{i}-at2, the second AT port of modem i, if it was configured with one.
    pub fn second_port_path(&self, i: usize) -> Option<PathBuf> {
        (i < self.len() && self.second_port.contains(&i)).then(|| second_port_link(&self.dir, i))
    }

    /// Where the virtual CMPP gateway listens (None without [`SimConfig::cmpp`]).
    pub fn cmpp_addr(&self) -> Option<std::net::SocketAddr> {
        self.handle.ismg.as_ref().map(|i| i.local_addr())
    }

    /// DIR/events.jsonl.
    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    pub fn len(&self) -> usize {
        self.handle.modems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handle.modems.is_empty()
    }

    /// Runs one control command (the same as over ctl.sock).
    pub async fn control(&self, cmd: Control) -> Result<ControlReply, SimError> {
        self.handle.control(cmd).await
    }

    /// Stops every modem, removes the links and ctl.sock.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        if let Some(ismg) = &self.handle.ismg {
            ismg.shutdown().await;
        }
        let _ = std::fs::remove_file(self.dir.join("ctl.sock"));
    }
}

/// A bank dropped without [`Bank::shutdown`] (a panicking test) still stops its tasks, which
/// remove their links as they end.
impl Drop for Bank {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The name of modem i's second AT port: `modem{i}-at2`, which a `DIR/modem*` glob matches
/// as well (a daemon sees both ports, as it sees ttyUSB2 and ttyUSB3 of one Quectel module).
fn second_port_link(dir: &std::path::Path, i: usize) -> PathBuf {
    dir.join(format!("modem{i}-at2"))
}

async fn serve_ctl(listener: UnixListener, handle: Handle, mut shut: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let Ok((stream, _)) = conn else { continue };
                let handle = handle.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply = match serde_json::from_str::<Control>(&line) {
                            Ok(cmd) => handle.control(cmd).await.unwrap_or_else(|e| ControlReply::error(e.to_string())),
                            Err(e) => ControlReply::error(format!("bad command: {e}")),
                        };
                        let mut out = serde_json::to_string(&reply).unwrap_or_else(|_| "{\"ok\":false}".into());
                        out.push('\n');
                        if w.write_all(out.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
            _ = shut.changed() => return,
        }
    }
}

/// One AT port of a modem: DIR/modemN (the primary) or DIR/modemN-at2 (the second port of a
/// two-port module), its pty while plugged in, and who has it open.
struct PortSlot {
    link: PathBuf,
    pty: Option<Pty>,
    /// Clients that have the device open (from inotify).
    clients: u32,
    /// False once the last client closed (or the port came back and nobody opened it yet)
    /// and nothing was read since: output is discarded.
    listening: bool,
}

struct ModemTask {
    index: usize,
    engine: Engine,
    /// The primary port first; a second one for a two-port module.
    ports: Vec<PortSlot>,
    events: Arc<EventLog>,
    timers: Vec<(Instant, Timer)>,
    hung_until: Option<Instant>,
    replug_at: Option<Instant>,
    /// How long an `unplug --after-submit` keeps the modem away once it fires.
    unplug_for: Duration,
    /// A rebooting modem answers nothing until then, then writes its boot burst.
    booting_until: Option<Instant>,
    chatter: Option<Duration>,
    /// When the client last wrote; chatter only goes to a port somebody is using, so it does
    /// not pile up in the pty for the next client to read as stale lines.
    last_input: Option<Instant>,
    /// Bytes swallowed while hung or booting (shown by status, so a test knows its input
    /// arrived).
    swallowed: u64,
    rng: StdRng,
}

/// Far enough to mean "until recovered".
const FOREVER: Duration = Duration::from_secs(86400 * 365);

/// How long `reboot` keeps a modem deaf when the command does not say.
const DEFAULT_BOOT: Duration = Duration::from_millis(300);

/// `now + d`, saturating at [`FOREVER`] so a huge duration from ctl.sock cannot overflow.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(FOREVER)).unwrap_or(now)
}

/// Concatenated DELIVERs number their parts in one octet: at most 255 UCS2 parts of 67 units.
const MAX_INJECT_UTF16: usize = 255 * 67;

async fn read_port(pty: Option<&Pty>, buf: &mut [u8]) -> std::io::Result<usize> {
    match pty {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn port_events(pty: Option<&Pty>) -> std::io::Result<Vec<ClientEvent>> {
    match pty {
        Some(p) => p.client_events().await,
        None => std::future::pending().await,
    }
}

/// Timers that belong to the network, not to the modem: a status report still arrives when
/// the modem rebooted or was unplugged meanwhile (it is stored if nobody can take it).
fn network_side(t: &(Instant, Timer)) -> bool {
    matches!(t.1, Timer::StatusReport { .. })
}

impl ModemTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut shut: watch::Receiver<bool>) {
        let mut buf0 = [0u8; 1024];
        let mut buf1 = [0u8; 1024];
        let has_chatter = self.chatter.is_some() && !self.engine.profile.chatter.is_empty();
        let mut next_chatter = Instant::now() + self.chatter_gap();
        loop {
            let next_timer = self.timers.iter().map(|t| t.0).min();
            let p0 = self.ports.first().and_then(|s| s.pty.as_ref());
            let p1 = self.ports.get(1).and_then(|s| s.pty.as_ref());
            tokio::select! {
                r = read_port(p0, &mut buf0) => {
                    let r = r.map(|n| buf0[..n].to_vec());
                    self.on_read(0, r).await;
                }
                r = read_port(p1, &mut buf1) => {
                    let r = r.map(|n| buf1[..n].to_vec());
                    self.on_read(1, r).await;
                }
                _ = tokio::time::sleep_until(next_timer.unwrap_or_else(|| Instant::now() + FOREVER)), if next_timer.is_some() => {
                    let now = Instant::now();
                    let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers).into_iter().partition(|t| t.0 <= now);
                    self.timers = rest;
                    for (_, timer) in due {
                        self.sync_listening();
                        let actions = self.engine.fire(timer);
                        self.apply(actions).await;
                    }
                }
                _ = tokio::time::sleep_until(self.replug_at.unwrap_or_else(|| Instant::now() + FOREVER)), if self.replug_at.is_some() => {
                    self.replug_at = None;
                    self.replug();
                }
                _ = tokio::time::sleep_until(self.booting_until.unwrap_or_else(|| Instant::now() + FOREVER)), if self.booting_until.is_some() => {
                    self.booting_until = None;
                    self.events.log(Some(self.index), json!({"event": "boot", "urcs": self.engine.profile.boot_urcs}));
                    let actions = self.engine.boot_burst();
                    self.apply(actions).await;
                }
                _ = tokio::time::sleep_until(next_chatter), if has_chatter => {
                    next_chatter = Instant::now() + self.chatter_gap();
                    let active = self.last_input.is_some_and(|t| t.elapsed() < Duration::from_secs(30));
                    if self.ports[0].pty.is_some() && !self.is_deaf() && active {
                        let actions = self.engine.chatter();
                        self.apply(actions).await;
                    }
                }
                ev = port_events(p0) => self.on_client_events(0, ev).await,
                ev = port_events(p1) => self.on_client_events(1, ev).await,
                req = rx.recv() => {
                    let Some((cmd, reply)) = req else { break };
                    let r = self.control(cmd).await;
                    let _ = reply.send(r);
                }
                _ = shut.changed() => break,
            }
        }
        for slot in &mut self.ports {
            if let Some(p) = slot.pty.take() {
                self.events.log(Some(self.index), json!({"event": "port_close", "port": slot.link.display().to_string(), "tty": p.tty.display().to_string(), "reason": "shutdown"}));
            }
        }
    }

    async fn on_read(&mut self, port: Port, r: std::io::Result<Vec<u8>>) {
        match r {
            Ok(bytes) if !bytes.is_empty() => {
                self.last_input = Some(Instant::now());
                self.ports[port].listening = true;
                if self.is_deaf() {
                    self.swallowed += bytes.len() as u64;
                    return;
                }
                let actions = self.engine.feed_port(port, &bytes);
                self.apply(actions).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("sim modem {} port {port}: read: {e}", self.index);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    async fn on_client_events(&mut self, port: Port, ev: std::io::Result<Vec<ClientEvent>>) {
        match ev {
            Ok(list) => {
                for e in list {
                    self.client_event(port, e);
                }
            }
            Err(e) => {
                tracing::warn!("sim modem {} port {port}: inotify: {e}", self.index);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn client_event(&mut self, port: Port, e: ClientEvent) {
        let slot = &mut self.ports[port];
        let tty = slot.pty.as_ref().map(|p| p.tty.display().to_string());
        let link = slot.link.display().to_string();
        match e {
            ClientEvent::Opened => {
                slot.clients += 1;
                slot.listening = true;
                let clients = slot.clients;
                self.events.log(
                    Some(self.index),
                    json!({"event": "client_open", "port": link, "tty": tty, "clients": clients}),
                );
            }
            ClientEvent::Closed => {
                slot.clients = slot.clients.saturating_sub(1);
                let clients = slot.clients;
                if clients == 0 {
                    slot.listening = false;
                    if let Some(p) = &slot.pty {
                        p.discard_unread_output();
                    }
                }
                self.events.log(
                    Some(self.index),
                    json!({"event": "client_close", "port": link, "tty": tty, "clients": clients}),
                );
            }
        }
    }

    /// Tells the engine whether an unsolicited line on the primary port reaches anybody.
    fn sync_listening(&mut self) {
        let p = &self.ports[0];
        self.engine.te_listening = p.pty.is_some() && p.listening;
    }

    fn chatter_gap(&mut self) -> Duration {
        let mean = self.chatter.unwrap_or(FOREVER).as_millis().max(2) as u64;
        Duration::from_millis(self.rng.random_range(mean / 2..mean + mean / 2))
    }

    fn is_hung(&self) -> bool {
        self.hung_until.is_some_and(|t| Instant::now() < t)
    }

    /// Hung, or still booting: input is swallowed and nothing is written.
    fn is_deaf(&self) -> bool {
        self.is_hung() || self.booting_until.is_some()
    }

    async fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Write(port, bytes) => self.write(port, &bytes).await,
                Action::Arm(d, t) => self.timers.push((after(d), t)),
                Action::Event(e) => self.events.log(Some(self.index), e),
                Action::Unplug => self.unplug(self.unplug_for, "unplug-after-submit"),
            }
        }
    }

    async fn write(&mut self, port: Port, bytes: &[u8]) {
        if self.is_deaf() {
            return;
        }
        let Some(slot) = self.ports.get(port) else {
            return;
        };
        if !slot.listening {
            tracing::debug!(
                "sim modem {} port {port}: no client, {} bytes dropped",
                self.index,
                bytes.len()
            );
            return;
        }
        if let Some(p) = &slot.pty {
            if let Err(e) = p.write_all(bytes, Duration::from_secs(1)).await {
                tracing::warn!("sim modem {} port {port}: output dropped: {e}", self.index);
            }
        }
    }

    /// The module drops off the bus: every port's link goes, then its pty (a client's open
    /// port dies); the modem's own timers die with it, the network's stay.
    fn unplug(&mut self, for_d: Duration, reason: &str) {
        for slot in &mut self.ports {
            if let Some(p) = slot.pty.take() {
                let _ = std::fs::remove_file(&slot.link);
                self.events.log(
                    Some(self.index),
                    json!({"event": "port_close", "port": slot.link.display().to_string(), "tty": p.tty.display().to_string(), "reason": reason}),
                );
                drop(p);
            }
            slot.clients = 0;
            slot.listening = false;
        }
        self.timers.retain(network_side);
        self.booting_until = None;
        self.replug_at = Some(after(for_d));
    }

    fn replug(&mut self) {
        let mut failed = false;
        for slot in &mut self.ports {
            if slot.pty.is_some() {
                continue;
            }
            match Pty::open(&slot.link) {
                Ok(p) => {
                    // Nobody has the new device open yet: until a client opens it, what the
                    // modem writes goes nowhere (and status reports are stored).
                    slot.clients = 0;
                    slot.listening = false;
                    self.events.log(Some(self.index), json!({"event": "port_open", "port": slot.link.display().to_string(), "tty": p.tty.display().to_string(), "reason": "replug"}));
                    slot.pty = Some(p);
                }
                Err(e) => {
                    tracing::warn!("sim modem {}: replug failed: {e}", self.index);
                    failed = true;
                }
            }
        }
        if failed {
            self.replug_at = Some(Instant::now() + Duration::from_secs(1));
        }
        self.engine.reset_session();
        self.last_input = None;
    }

    fn status(&self) -> ModemStatus {
        let e = &self.engine;
        let (imei, imsi, iccid, number, operator) = identity_fields(&e.identity);
        let (used, cap) = e.storage_use();
        let primary = &self.ports[0];
        let second = self.ports.get(1);
        ModemStatus {
            index: self.index,
            dialect: e.profile.dialect,
            port: primary.link.display().to_string(),
            tty: primary.pty.as_ref().map(|p| p.tty.display().to_string()),
            imei,
            imsi,
            iccid,
            number,
            operator,
            state: if primary.pty.is_none() {
                "unplugged".into()
            } else if self.is_hung() {
                "hung".into()
            } else if self.booting_until.is_some() {
                "booting".into()
            } else {
                e.state().into()
            },
            latency_ms: e.latency.as_millis() as u64,
            hung: self.is_hung(),
            swallowed_bytes: self.swallowed,
            clients: primary.clients,
            sim_present: e.sim_present,
            registered: e.registered,
            memory_full: e.memory_full,
            fail: describe_fail(&e.fail),
            smsc_drop: e.smsc_drop,
            report_status: e.report_status,
            storage_used: used,
            storage_capacity: cap,
            reports_stored: e.reports_stored().0,
            second_port: second.map(|s| s.link.display().to_string()),
            second_tty: second.and_then(|s| s.pty.as_ref().map(|p| p.tty.display().to_string())),
            second_clients: second.map_or(0, |s| s.clients),
            unplug_after_submit: e.unplug_after_submit,
            late_ms: e.late_next.map(|d| d.as_millis() as u64),
            counters: (&e.counters).into(),
        }
    }

    async fn control(&mut self, cmd: Control) -> Result<ControlReply, String> {
        let log = |s: &Self, v: serde_json::Value| s.events.log(Some(s.index), v);
        match cmd {
            Control::Status => {
                return Ok(ControlReply {
                    ok: true,
                    error: None,
                    modems: vec![self.status()],
                    gateway: None,
                })
            }
            // Routed to the gateway by `Handle::control`, never to a modem.
            Control::Cmpp(_) => return Err("not a modem command".into()),
            Control::Inject { from, text, .. } => {
                if from.is_empty() || text.is_empty() {
                    return Err("inject needs --from and --text".into());
                }
                if text.encode_utf16().count() > MAX_INJECT_UTF16 {
                    return Err(format!(
                        "inject text longer than {MAX_INJECT_UTF16} UTF-16 units (255 parts)"
                    ));
                }
                if !from
                    .trim_start_matches('+')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    || from.len() > 21
                {
                    return Err(format!("inject --from {from:?}: expected up to 20 digits, optionally with a leading +"));
                }
                let a = self.engine.inject(&from, &text);
                self.apply(a).await;
            }
            Control::Latency { ms, .. } => {
                self.engine.latency = Duration::from_millis(ms);
                log(self, json!({"event": "fault", "kind": "latency", "ms": ms}));
            }
            Control::Fail {
                mode: FailMode::Rate(p),
                ..
            } if !(0.0..=1.0).contains(&p) => {
                return Err(format!("fail rate {p} outside 0..=1"));
            }
            Control::Fail { cms, mode, .. } => {
                self.engine.fail = Some(FailRule { cms, mode });
                log(
                    self,
                    json!({"event": "fault", "kind": "fail", "cms": cms, "mode": mode}),
                );
            }
            Control::Hang { for_ms, .. } => {
                self.hung_until = Some(after(for_ms.map_or(FOREVER, Duration::from_millis)));
                log(
                    self,
                    json!({"event": "fault", "kind": "hang", "for_ms": for_ms}),
                );
            }
            Control::Garbage { .. } => {
                let n = self.rng.random_range(16..48);
                let noise: Vec<u8> = (0..n).map(|_| self.rng.random::<u8>()).collect();
                log(
                    self,
                    json!({"event": "fault", "kind": "garbage", "bytes": hex::encode_upper(&noise)}),
                );
                self.write(0, &noise).await;
            }
            Control::Unplug {
                for_ms,
                after_submit: true,
                ..
            } => {
                // Armed: the next submit the network accepts is followed by the unplug
                // instead of its "+CMGS:" (engine Action::Unplug).
                self.engine.unplug_after_submit = true;
                self.unplug_for = Duration::from_millis(for_ms.unwrap_or(5000));
                log(
                    self,
                    json!({"event": "fault", "kind": "unplug", "after_submit": true, "for_ms": for_ms.unwrap_or(5000)}),
                );
            }
            Control::Unplug { for_ms, .. } => {
                log(
                    self,
                    json!({"event": "fault", "kind": "unplug", "for_ms": for_ms.unwrap_or(5000)}),
                );
                self.unplug(Duration::from_millis(for_ms.unwrap_or(5000)), "unplug");
            }
            Control::Late { ms, .. } => {
                self.engine.late_next = Some(Duration::from_millis(ms).min(FOREVER));
                log(self, json!({"event": "fault", "kind": "late", "ms": ms}));
            }
            Control::Reboot { for_ms, .. } => {
                let boot = for_ms.map_or(DEFAULT_BOOT, Duration::from_millis);
                log(
                    self,
                    json!({"event": "fault", "kind": "reboot", "for_ms": boot.as_millis() as u64}),
                );
                self.engine.power_on();
                self.timers.retain(network_side);
                self.booting_until = Some(after(boot));
            }
            Control::SimRemove { .. } => {
                log(self, json!({"event": "fault", "kind": "sim_remove"}));
                let a = self.engine.set_sim(false);
                self.apply(a).await;
            }
            Control::SimInsert { .. } => {
                log(self, json!({"event": "fault", "kind": "sim_insert"}));
                let a = self.engine.set_sim(true);
                self.apply(a).await;
            }
            Control::Network { up, .. } => {
                log(
                    self,
                    json!({"event": "fault", "kind": if up { "network_back" } else { "network_lost" }}),
                );
                let a = self.engine.set_network(up);
                self.apply(a).await;
            }
            Control::MemoryFull { full, .. } => {
                self.engine.memory_full = full;
                log(
                    self,
                    json!({"event": "fault", "kind": "memory_full", "on": full}),
                );
            }
            Control::Quirk { quirk, on, .. } => {
                match quirk {
                    Quirk::SmscDrop => self.engine.smsc_drop = on,
                }
                log(
                    self,
                    json!({"event": "fault", "kind": "quirk", "quirk": quirk, "on": on}),
                );
            }
            Control::ReportStatus { status, .. } => {
                self.engine.report_status = status;
                log(
                    self,
                    json!({"event": "fault", "kind": "report_status", "status": status}),
                );
            }
            Control::Recover { .. } => {
                self.hung_until = None;
                self.engine.fail = None;
                self.engine.smsc_drop = self.engine.profile.drops_reply_with_smsc;
                self.engine.report_status = 0;
                self.engine.memory_full = false;
                self.engine.late_next = None;
                self.engine.unplug_after_submit = false;
                let mut a = Vec::new();
                if !self.engine.sim_present {
                    a.extend(self.engine.set_sim(true));
                }
                if !self.engine.registered {
                    a.extend(self.engine.set_network(true));
                }
                self.apply(a).await;
                if self.ports.iter().any(|s| s.pty.is_none()) {
                    self.replug_at = None;
                    self.replug();
                }
                log(self, json!({"event": "fault", "kind": "recover"}));
            }
        }
        Ok(ControlReply::done())
    }
}
