//! The running bank: one tokio task per modem that owns its [`Engine`] and [`Pty`], arms the
//! engine's timers, applies faults that live below the AT layer (hang, garbage, unplug), and
//! logs events; plus the DIR/ctl.sock server. Invariants: a modem task never blocks on a client
//! that does not read (writes give up after a second); unplug removes the link before the
//! pty closes and relinks only once the new pty is ready; shutdown removes links and ctl.sock.

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
use super::modem::{Action, Engine, FailMode, FailRule, Timer};
use super::pty::{ClientEvent, Pty};
use super::{SimConfig, SimError};

type Request = (Control, oneshot::Sender<Result<ControlReply, String>>);

/// A running virtual modem bank.
#[derive(Debug)]
pub struct Bank {
    dir: PathBuf,
    handle: Handle,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the ctl.sock server needs to reach the modems.
#[derive(Debug, Clone)]
struct Handle {
    modems: Arc<Vec<mpsc::Sender<Request>>>,
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
        match cmd.modem() {
            Some(i) => self.ask(i, cmd).await,
            None => {
                let mut all = ControlReply::done();
                for i in 0..self.modems.len() {
                    all.modems
                        .extend(self.ask(i, Control::Status).await?.modems);
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
            let engine = Engine::new(
                profile,
                identity,
                seed.wrapping_add(i as u64),
                cfg.latency,
                cfg.report_delay,
            );
            let link = cfg.dir.join(format!("modem{i}"));
            let pty = Pty::open(&link).map_err(io(format!("open pty for {}", link.display())))?;
            events.log(Some(i), json!({"event": "port_open", "port": link.display().to_string(), "tty": pty.tty.display().to_string(), "dialect": dialect.name()}));
            let (tx, rx) = mpsc::channel(16);
            senders.push(tx);
            let task = ModemTask {
                index: i,
                engine,
                pty: Some(pty),
                link,
                events: events.clone(),
                timers: Vec::new(),
                hung_until: None,
                replug_at: None,
                chatter: cfg.chatter,
                last_input: None,
                swallowed: 0,
                clients: 0,
                listening: true,
                rng: StdRng::seed_from_u64(seed ^ 0x5EED ^ i as u64),
            };
            tasks.push(tokio::spawn(task.run(rx, shut_rx.clone())));
        }
        let handle = Handle {
            modems: Arc::new(senders),
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
            handle,
            shutdown,
            tasks,
        })
    }

    /// DIR/modem{i}: the path a client opens.
    pub fn port_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("modem{i}"))
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

struct ModemTask {
    index: usize,
    engine: Engine,
    pty: Option<Pty>,
    link: PathBuf,
    events: Arc<EventLog>,
    timers: Vec<(Instant, Timer)>,
    hung_until: Option<Instant>,
    replug_at: Option<Instant>,
    chatter: Option<Duration>,
    /// When the client last wrote; chatter only goes to a port somebody is using, so it does
    /// not pile up in the pty for the next client to read as stale lines.
    last_input: Option<Instant>,
    /// Clients that have the device open (from inotify).
    clients: u32,
    /// False once the last client closed and nothing was read since: output is discarded.
    listening: bool,
    /// Bytes swallowed while hung (shown by status, so a test knows its input arrived).
    swallowed: u64,
    rng: StdRng,
}

/// Far enough to mean "until recovered".
const FOREVER: Duration = Duration::from_secs(86400 * 365);

/// `now + d`, saturating at [`FOREVER`] so a huge duration from ctl.sock cannot overflow.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(FOREVER)).unwrap_or(now)
}

/// Concatenated DELIVERs number their parts in one octet: at most 255 UCS2 parts of 67 units.
const MAX_INJECT_UTF16: usize = 255 * 67;

impl ModemTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut shut: watch::Receiver<bool>) {
        let mut buf = [0u8; 1024];
        let has_chatter = self.chatter.is_some() && !self.engine.profile.chatter.is_empty();
        let mut next_chatter = Instant::now() + self.chatter_gap();
        loop {
            let next_timer = self.timers.iter().map(|t| t.0).min();
            let pty = self.pty.as_ref();
            tokio::select! {
                r = async { match pty { Some(p) => p.read(&mut buf).await, None => std::future::pending().await } } => {
                    match r {
                        Ok(n) if n > 0 => {
                            let bytes = buf[..n].to_vec();
                            self.last_input = Some(Instant::now());
                            self.listening = true;
                            if self.is_hung() {
                                self.swallowed += n as u64;
                                continue;
                            }
                            let actions = self.engine.feed(&bytes);
                            self.apply(actions).await;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("sim modem {}: read: {e}", self.index);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_timer.unwrap_or_else(|| Instant::now() + FOREVER)), if next_timer.is_some() => {
                    let now = Instant::now();
                    let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers).into_iter().partition(|t| t.0 <= now);
                    self.timers = rest;
                    for (_, timer) in due {
                        let actions = self.engine.fire(timer);
                        self.apply(actions).await;
                    }
                }
                _ = tokio::time::sleep_until(self.replug_at.unwrap_or_else(|| Instant::now() + FOREVER)), if self.replug_at.is_some() => {
                    self.replug_at = None;
                    self.replug();
                }
                _ = tokio::time::sleep_until(next_chatter), if has_chatter => {
                    next_chatter = Instant::now() + self.chatter_gap();
                    let active = self.last_input.is_some_and(|t| t.elapsed() < Duration::from_secs(30));
                    if self.pty.is_some() && !self.is_hung() && active {
                        let actions = self.engine.chatter();
                        self.apply(actions).await;
                    }
                }
                ev = async { match pty { Some(p) => p.client_events().await, None => std::future::pending().await } } => {
                    match ev {
                        Ok(list) => {
                            for e in list {
                                self.client_event(e);
                            }
                        }
                        Err(e) => {
                            tracing::warn!("sim modem {}: inotify: {e}", self.index);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                req = rx.recv() => {
                    let Some((cmd, reply)) = req else { break };
                    let r = self.control(cmd).await;
                    let _ = reply.send(r);
                }
                _ = shut.changed() => break,
            }
        }
        if let Some(p) = self.pty.take() {
            self.events.log(Some(self.index), json!({"event": "port_close", "tty": p.tty.display().to_string(), "reason": "shutdown"}));
        }
    }

    fn client_event(&mut self, e: ClientEvent) {
        let tty = self.pty.as_ref().map(|p| p.tty.display().to_string());
        match e {
            ClientEvent::Opened => {
                self.clients += 1;
                self.listening = true;
                self.events.log(
                    Some(self.index),
                    json!({"event": "client_open", "tty": tty, "clients": self.clients}),
                );
            }
            ClientEvent::Closed => {
                self.clients = self.clients.saturating_sub(1);
                self.events.log(
                    Some(self.index),
                    json!({"event": "client_close", "tty": tty, "clients": self.clients}),
                );
                if self.clients == 0 {
                    self.listening = false;
                    if let Some(p) = &self.pty {
                        p.discard_unread_output();
                    }
                }
            }
        }
    }

    fn chatter_gap(&mut self) -> Duration {
        let mean = self.chatter.unwrap_or(FOREVER).as_millis().max(2) as u64;
        Duration::from_millis(self.rng.random_range(mean / 2..mean + mean / 2))
    }

    fn is_hung(&self) -> bool {
        self.hung_until.is_some_and(|t| Instant::now() < t)
    }

    async fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Write(bytes) => self.write(&bytes).await,
                Action::Arm(d, t) => self.timers.push((after(d), t)),
                Action::Event(e) => self.events.log(Some(self.index), e),
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        if self.is_hung() {
            return;
        }
        if !self.listening {
            tracing::debug!(
                "sim modem {}: no client, {} bytes dropped",
                self.index,
                bytes.len()
            );
            return;
        }
        if let Some(p) = &self.pty {
            if let Err(e) = p.write_all(bytes, Duration::from_secs(1)).await {
                tracing::warn!("sim modem {}: output dropped: {e}", self.index);
            }
        }
    }

    fn replug(&mut self) {
        match Pty::open(&self.link) {
            Ok(p) => {
                self.engine.reset_session();
                self.last_input = None;
                self.clients = 0;
                self.listening = true;
                self.events.log(Some(self.index), json!({"event": "port_open", "port": self.link.display().to_string(), "tty": p.tty.display().to_string(), "reason": "replug"}));
                self.pty = Some(p);
            }
            Err(e) => {
                tracing::warn!("sim modem {}: replug failed: {e}", self.index);
                self.replug_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    fn status(&self) -> ModemStatus {
        let e = &self.engine;
        let (imei, imsi, iccid, number, operator) = identity_fields(&e.identity);
        let (used, cap) = e.storage_use();
        ModemStatus {
            index: self.index,
            dialect: e.profile.dialect,
            port: self.link.display().to_string(),
            tty: self.pty.as_ref().map(|p| p.tty.display().to_string()),
            imei,
            imsi,
            iccid,
            number,
            operator,
            state: if self.pty.is_none() {
                "unplugged".into()
            } else if self.is_hung() {
                "hung".into()
            } else {
                e.state().into()
            },
            latency_ms: e.latency.as_millis() as u64,
            hung: self.is_hung(),
            swallowed_bytes: self.swallowed,
            clients: self.clients,
            sim_present: e.sim_present,
            registered: e.registered,
            memory_full: e.memory_full,
            fail: describe_fail(&e.fail),
            smsc_drop: e.smsc_drop,
            report_status: e.report_status,
            storage_used: used,
            storage_capacity: cap,
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
                })
            }
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
                self.write(&noise).await;
            }
            Control::Unplug { for_ms, .. } => {
                if let Some(p) = self.pty.take() {
                    let _ = std::fs::remove_file(&self.link);
                    log(
                        self,
                        json!({"event": "port_close", "tty": p.tty.display().to_string(), "reason": "unplug"}),
                    );
                    drop(p);
                }
                self.timers.clear();
                self.replug_at = Some(after(Duration::from_millis(for_ms.unwrap_or(5000))));
                log(
                    self,
                    json!({"event": "fault", "kind": "unplug", "for_ms": for_ms.unwrap_or(5000)}),
                );
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
                let mut a = Vec::new();
                if !self.engine.sim_present {
                    a.extend(self.engine.set_sim(true));
                }
                if !self.engine.registered {
                    a.extend(self.engine.set_network(true));
                }
                self.apply(a).await;
                if self.pty.is_none() {
                    self.replug_at = None;
                    self.replug();
                }
                log(self, json!({"event": "fault", "kind": "recover"}));
            }
        }
        Ok(ControlReply::done())
    }
}
