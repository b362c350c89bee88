//! Shared helpers of the end-to-end tests (tests/e2e_*.rs): the real `smsgate` binary run as
//! child processes — `smsgate sim` (the virtual modem bank on real ptys) and `smsgate daemon`
//! (with a TOML config in a tempdir) — an API client on the daemon's real Unix socket, `sim ctl`,
//! and readers of the bank's DIR/events.jsonl (what the "network" actually received).
//!
//! What must always hold: every child is killed when its guard drops (a failing test leaves no
//! process behind); every wait polls with a deadline and fails with a message that says what was
//! awaited and shows the daemon's log tail; no sleep is ever an assertion.
#![allow(dead_code)] // each e2e test binary uses a different subset

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use smsgate::api::client::ApiClient;
use smsgate::api::types::{MessageId, MessageState, MessageView, SendRequest};

pub const BIN: &str = env!("CARGO_BIN_EXE_smsgate");

/// Polls `f` every 50 ms until it returns Some, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The virtual modem bank (`smsgate sim`), killed when dropped.
pub struct Sim {
    child: Child,
    pub dir: PathBuf,
    pub modems: usize,
}

impl Sim {
    /// Starts `smsgate sim` with `modems` generic modems in `dir`, 50 ms send latency and status
    /// reports 100 ms later; returns once it printed "ready" (every port answers).
    pub fn start(dir: &Path, modems: usize) -> Sim {
        Sim::start_with(dir, modems, "50ms")
    }

    /// [`Sim::start`] with another AT+CMGS latency ("300ms").
    pub fn start_with(dir: &Path, modems: usize, latency: &str) -> Sim {
        Sim::start_args(dir, modems, latency, &[])
    }

    /// [`Sim::start_with`] with more `smsgate sim` arguments (e.g. `--second-port 0`).
    pub fn start_args(dir: &Path, modems: usize, latency: &str, extra: &[&str]) -> Sim {
        let mut child = Command::new(BIN)
            .arg("sim")
            .args(["--modems", &modems.to_string(), "--dir"])
            .arg(dir)
            .args([
                "--latency",
                latency,
                "--report-delay",
                "100ms",
                "--seed",
                "7",
            ])
            .args(extra)
            .env_remove("SMSGATE_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn smsgate sim");
        let out = child.stdout.take().expect("sim stdout");
        let mut ready = false;
        for line in BufReader::new(out).lines() {
            if line.expect("sim stdout line") == "ready" {
                ready = true;
                break;
            }
        }
        assert!(ready, "smsgate sim ended before printing ready");
        Sim {
            child,
            dir: dir.to_path_buf(),
            modems,
        }
    }

    /// Takes over a `smsgate sim` child started by the caller (after its "ready").
    pub fn from_child(child: Child, dir: &Path, modems: usize) -> Sim {
        Sim {
            child,
            dir: dir.to_path_buf(),
            modems,
        }
    }

    /// `smsgate sim ctl --dir DIR ARGS...`, which must succeed.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .args(["sim", "ctl", "--dir"])
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("run sim ctl");
        assert!(
            out.status.success(),
            "sim ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `sim ctl status --json`: one object per modem (index, iccid, imsi, counters, ...).
    pub fn status(&self) -> Vec<Value> {
        let out = self.ctl(&["status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("status json");
        v.as_array().cloned().unwrap_or_default()
    }

    /// ICCID -> modem index.
    pub fn iccids(&self) -> BTreeMap<String, usize> {
        self.status()
            .iter()
            .map(|m| {
                (
                    m["iccid"].as_str().unwrap_or_default().to_string(),
                    m["index"].as_u64().unwrap_or(u64::MAX) as usize,
                )
            })
            .collect()
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// Every event logged so far, in order.
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.events_path())
    }

    /// Every PDU the network accepted (`cmgs` events), in order.
    pub fn submits(&self) -> Vec<Submit> {
        submits(&self.events())
    }

    /// The glob the daemon's `[modems] ports` takes.
    pub fn ports_glob(&self) -> String {
        format!("{}/modem*", self.dir.display())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

pub fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad events line {l:?}: {e}")))
        .collect()
}

/// One SUBMIT the virtual network accepted (a `cmgs` event of events.jsonl).
#[derive(Debug, Clone, PartialEq)]
pub struct Submit {
    pub modem: usize,
    pub pdu: String,
    pub to: String,
    pub mr: u64,
    /// (reference, total, seq) of a concatenated part.
    pub concat: Option<(u64, u64, u64)>,
    pub time: String,
}

/// Recipient, and (UDH reference, sequence number) of a concatenated part.
pub type PartKey = (String, Option<(u64, u64)>);

impl Submit {
    /// What identifies one part on the network: recipient, and UDH reference and sequence
    /// number for a concatenated part. Two submits with the same key are the same part twice.
    pub fn key(&self) -> PartKey {
        (self.to.clone(), self.concat.map(|(r, _, s)| (r, s)))
    }
}

pub fn submits(events: &[Value]) -> Vec<Submit> {
    events
        .iter()
        .filter(|e| e["event"] == "cmgs")
        .map(|e| Submit {
            modem: e["modem"].as_u64().expect("cmgs without modem") as usize,
            pdu: e["pdu"].as_str().unwrap_or_default().to_string(),
            to: e["to"].as_str().unwrap_or_default().to_string(),
            mr: e["mr"].as_u64().unwrap_or_default(),
            concat: e.get("concat").filter(|c| c.is_object()).map(|c| {
                (
                    c["ref"].as_u64().unwrap_or_default(),
                    c["total"].as_u64().unwrap_or_default(),
                    c["seq"].as_u64().unwrap_or_default(),
                )
            }),
            time: e["time"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Keys submitted more than once, with their counts.
pub fn duplicates(submits: &[Submit]) -> Vec<(PartKey, usize)> {
    let mut counts: BTreeMap<PartKey, usize> = BTreeMap::new();
    for s in submits {
        *counts.entry(s.key()).or_default() += 1;
    }
    counts.into_iter().filter(|(_, n)| *n > 1).collect()
}

/// `smsgate daemon --config DIR/smsgate.toml` as a child process; killed when dropped (its log,
/// DIR/daemon.log, is printed if the test is failing).
pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub database: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

/// The test config: quotas raised far above what a test sends, no minimum interval, the test's
/// uid as account "e2e" (root is admin). `modems_extra` is added to the `[modems]` table
/// verbatim (e.g. `send_timeout = "2s"`).
pub fn write_config(dir: &Path, ports_glob: &str, modems_extra: &str) -> PathBuf {
    let uid = nix::unistd::getuid().as_raw();
    let accounts = format!("[[accounts]]\nname = \"e2e\"\nuids = [{uid}]\nunmetered = true\n");
    write_config_with(dir, ports_glob, modems_extra, &accounts)
}

/// [`write_config`] with the `[[accounts]]` tables given verbatim (e.g. a metered account).
pub fn write_config_with(
    dir: &Path,
    ports_glob: &str,
    modems_extra: &str,
    accounts: &str,
) -> PathBuf {
    let text = format!(
        r#"socket = "{socket}"
database = "{db}"
admin_group = "root"
log_level = "info"

[modems]
ports = ["{ports_glob}"]
dialect = "generic"
{modems_extra}

[quota]
per_minute = 10000
per_hour = 100000
per_day = 1000000
min_interval = "0s"

{accounts}"#,
        socket = dir.join("api.sock").display(),
        db = dir.join("smsgate.db").display(),
    );
    let path = dir.join("smsgate.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

impl Daemon {
    /// Starts the daemon on `dir` (config written there if missing) watching the bank's ports.
    pub fn start(dir: &Path, sim: &Sim) -> Daemon {
        Daemon::start_with(dir, sim, "", &[])
    }

    pub fn start_with(dir: &Path, sim: &Sim, modems_extra: &str, env: &[(&str, &str)]) -> Daemon {
        let config = dir.join("smsgate.toml");
        if !config.exists() {
            write_config(dir, &sim.ports_glob(), modems_extra);
        }
        let log = dir.join("daemon.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("daemon log");
        let mut cmd = Command::new(BIN);
        cmd.arg("daemon")
            .arg("--config")
            .arg(&config)
            .env_remove("NOTIFY_SOCKET")
            .env("SMSGATE_LOG", "smsgate=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn smsgate daemon");
        Daemon {
            child: Some(child),
            dir: dir.to_path_buf(),
            socket: dir.join("api.sock"),
            database: dir.join("smsgate.db"),
            config,
            log,
        }
    }

    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.socket)
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("daemon running").id() as i32)
    }

    /// Waits until the API answers and `n` modems are ready.
    pub async fn wait_ready(&self, n: u32) {
        let client = self.client();
        let what = format!("{n} modems ready (log:\n{})", self.log_tail());
        wait_for(&what, Duration::from_secs(30), || {
            let client = client.clone();
            async move {
                let h = client.health().await.ok()?;
                (h.modems_ready >= n).then_some(())
            }
        })
        .await
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Sends `signal` and waits up to `timeout` for the exit; panics if it does not come.
    pub async fn stop(&mut self, signal: Signal, timeout: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("daemon running");
        let started = Instant::now();
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal the daemon");
        loop {
            if let Some(status) = child.try_wait().expect("wait daemon") {
                return (status, started.elapsed());
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "daemon did not exit within {timeout:?} of {signal}; log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last 60 lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// `smsgate ARGS... --socket SOCKET` (a client command of the real binary).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .env_remove("SMSGATE_SOCKET")
            .env_remove("SMSGATE_LOG")
            .output()
            .expect("run smsgate client")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- daemon log ({}):\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
        self.kill9();
    }
}

/// A send request with the defaults the tests use (delivery report asked).
pub fn request(to: Vec<String>, text: &str) -> SendRequest {
    SendRequest {
        to,
        text: text.to_string(),
        report: true,
        validity: None,
        not_before: None,
        priority: Default::default(),
        account: None,
        sender: None,
    }
}

/// A distinct mobile number per index, over the carriers' prefixes (DOMAIN.md numbering).
pub fn recipient(i: usize) -> String {
    const PREFIXES: [&str; 8] = ["139", "130", "189", "135", "186", "133", "150", "177"];
    format!("{}{:08}", PREFIXES[i % PREFIXES.len()], 10_000_000 + i)
}

/// A long Chinese text (more than 70 UCS2 characters: concatenated parts).
pub fn long_text(i: usize) -> String {
    format!(
        "【测试商城】尊敬的会员{i}您好：您订购的商品已经发出，预计两天内送达，请注意查收。\
         收货时请当面检查外包装是否完好，如有破损请拒收并联系客服。回T退订"
    )
}

/// Sends a batch of `n` messages: one per recipient, every third one long (concatenated).
/// Returns the ids.
pub async fn send_batch(client: &ApiClient, first: usize, n: usize) -> Vec<MessageId> {
    send_batch_with(client, first, n, true).await
}

/// [`send_batch`], asking for delivery reports or not (without them nothing but the operator
/// settles an `unknown` part).
pub async fn send_batch_with(
    client: &ApiClient,
    first: usize,
    n: usize,
    report: bool,
) -> Vec<MessageId> {
    let mut ids = Vec::new();
    let mut i = first;
    while i < first + n {
        // Groups of up to 10 recipients per request share a text.
        let k = (first + n - i).min(10);
        let to: Vec<String> = (i..i + k).map(recipient).collect();
        let text = if (i / 10) % 3 == 0 {
            long_text(i)
        } else {
            format!("【测试】您的验证码是 {:06}，5分钟内有效。", i)
        };
        let mut req = request(to, &text);
        req.report = report;
        let resp = client.send(&req).await.expect("send");
        assert!(resp.refused.is_empty(), "refused: {:?}", resp.refused);
        assert_eq!(resp.ids.len(), k);
        ids.extend(resp.ids);
        i += k;
    }
    ids
}

/// Current views of `ids`.
pub async fn views(client: &ApiClient, ids: &[MessageId]) -> Vec<MessageView> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(client.status(*id, None).await.expect("status"));
    }
    out
}

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

/// Waits until every message satisfies `done`; returns the views.
pub async fn wait_messages(
    client: &ApiClient,
    ids: &[MessageId],
    timeout: Duration,
    what: &str,
    done: impl Fn(&MessageView) -> bool,
) -> Vec<MessageView> {
    let deadline = Instant::now() + timeout;
    loop {
        let v = views(client, ids).await;
        if v.iter().all(&done) {
            return v;
        }
        if Instant::now() > deadline {
            let stuck: Vec<String> = v
                .iter()
                .filter(|m| !done(m))
                .take(10)
                .map(|m| format!("#{} {:?} {:?}", m.id.0, m.state, m.parts))
                .collect();
            panic!("timed out after {timeout:?} waiting for {what}; e.g. {stuck:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Count of parts in each state, read straight from the SQLite file (WAL, read-only).
pub fn part_states(database: &Path) -> BTreeMap<String, i64> {
    let conn =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open database");
    let mut stmt = conn
        .prepare("SELECT state, count(*) FROM parts GROUP BY state")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}
