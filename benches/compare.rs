//! Side by side with the field (issue 14): smsgate, Debian's gammu-smsd (files backend, one
//! instance per modem) and Debian's smstools3 (smsd), each in its documented default
//! configuration and in the fastest one its documentation allows, driving the same virtual
//! modem bank (`smsgate sim`, real pseudo-terminals) one after the other; then smsgate's PDU
//! codec against libgammu's on one pinned core. Prints one table with the ratios to smsgate.
//!
//! Run it with `benches/compare/run [--quick]` (README "Side by side with gammu-smsd and
//! smstools3"): the script installs the Debian packages when missing, builds the libgammu harness
//! (benches/compare/gammu_codec.c) and runs this binary with `cargo bench --bench compare`.
//! Options: `--quick` (2 probes after 3 s idle), `--probes N`, `--idle SECS`, `--messages N`,
//! `--latency MS` (the bank's AT+CMGS network time, default 0: the modems answer at once, so
//! the figures are the daemons' own), `--only smsgate,gammu-default,...,codec`,
//! `--gammu-codec PATH` (the built harness; without it the codec part is skipped), `--keep`.
//!
//! What is measured, every time from the bank's events.jsonl (the `cmgs` event is written when
//! the modem takes the PDU after the `> ` prompt):
//! - idle -> AT+CMGS: the daemon sat idle for `--idle` seconds, then one message is submitted
//!   the way its users do; from just before the submission to the `cmgs` event of that text;
//! - a burst of `--messages` Chinese (UCS2, single-part) messages on 1 and on 4 modems, from
//!   just before the first submission to the last `cmgs` event.
//!
//! Submissions: smsgate through its API (probes) and `smsgate send --file` (bursts, one request
//! per row, as the CLI sends them); gammu-smsd through `gammu-smsd-inject` (round robin over the
//! instances); smstools3 through message files written beside its outgoing directory and
//! renamed into it (the documented way, which `trust_outgoing` relies on).
//!
//! What must hold: nothing is mocked (real binaries, real ptys, real files); every process this
//! program starts is ended by it (SIGTERM, then SIGKILL) and every file is in a private temp
//! dir; it exits non-zero only when a daemon could not be run at all (a daemon that is merely
//! slow, or does not finish within the time limit, is a result).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use smsgate::api::client::ApiClient;
use smsgate::api::types::{Priority, SendRequest};
use smsgate::config::{AccountConfig, Config};
use smsgate::pdu::{encode_submit, Address, Sms, SubmitOptions};

type R<T> = Result<T, Box<dyn std::error::Error>>;

/// The smsgate binary cargo built beside this benchmark (release profile).
const SMSGATE: &str = env!("CARGO_BIN_EXE_smsgate");

#[derive(Debug, Clone)]
struct Opts {
    probes: usize,
    idle: Duration,
    messages: usize,
    latency_ms: u64,
    only: Option<Vec<String>>,
    gammu_codec: Option<PathBuf>,
    keep: bool,
}

fn parse_opts() -> R<Opts> {
    let mut o = Opts {
        probes: 5,
        idle: Duration::from_secs(10),
        messages: 100,
        latency_ms: 0,
        only: None,
        gammu_codec: None,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            // `cargo bench` passes --bench to every bench binary.
            "--bench" => {}
            "--quick" => {
                o.probes = 2;
                o.idle = Duration::from_secs(3);
            }
            "--probes" => o.probes = value("--probes")?.parse()?,
            "--idle" => o.idle = Duration::from_secs_f64(value("--idle")?.parse()?),
            "--messages" => o.messages = value("--messages")?.parse()?,
            "--latency" => o.latency_ms = value("--latency")?.parse()?,
            "--only" => {
                o.only = Some(
                    value("--only")?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .collect(),
                )
            }
            "--gammu-codec" => o.gammu_codec = Some(PathBuf::from(value("--gammu-codec")?)),
            "--keep" => o.keep = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.probes == 0 || o.messages == 0 {
        return Err("--probes and --messages must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {e}");
            std::process::exit(2);
        }
    };
    let wanted = |name: &str| {
        opts.only
            .as_ref()
            .is_none_or(|l| l.iter().any(|w| w == name))
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("compare: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "machine: {} cores, {}; virtual bank: generic dialect, AT+CMGS answered after {} ms",
        cores(),
        load(),
        opts.latency_ms
    );
    println!(
        "idle -> AT+CMGS: {} probes, each after {:.0} s idle; bursts: {} Chinese (UCS2) messages",
        opts.probes,
        opts.idle.as_secs_f64(),
        opts.messages
    );

    let mut rows: Vec<Row> = Vec::new();
    let mut could_not_run = false;
    for daemon in Daemon::ALL {
        if !wanted(daemon.key()) {
            continue;
        }
        eprintln!("== {}", daemon.label());
        match measure(&runtime, daemon, &opts) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("{}: could not be run: {e}", daemon.label());
                could_not_run = true;
                rows.push(Row {
                    daemon,
                    probes: Vec::new(),
                    burst1: None,
                    burst4: None,
                    failure: Some(e.to_string()),
                });
            }
        }
    }
    if !rows.is_empty() {
        println!();
        print!("{}", table(&rows, &opts));
    }

    if wanted("codec") {
        println!();
        match codec(&opts) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("codec: could not be run: {e}");
                could_not_run = true;
            }
        }
    }
    if could_not_run {
        std::process::exit(1);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn load() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let first: Vec<&str> = l.split_whitespace().take(3).collect();
    format!("load average {}", first.join(" "))
}

// ---------------------------------------------------------------------------------------------
// The daemons and their configurations.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Daemon {
    Smsgate,
    GammuDefault,
    GammuFast,
    SmstoolsDefault,
    SmstoolsFast,
}

impl Daemon {
    const ALL: [Daemon; 5] = [
        Daemon::Smsgate,
        Daemon::GammuDefault,
        Daemon::GammuFast,
        Daemon::SmstoolsDefault,
        Daemon::SmstoolsFast,
    ];

    fn key(self) -> &'static str {
        match self {
            Daemon::Smsgate => "smsgate",
            Daemon::GammuDefault => "gammu-default",
            Daemon::GammuFast => "gammu-fast",
            Daemon::SmstoolsDefault => "smstools-default",
            Daemon::SmstoolsFast => "smstools-fast",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Daemon::Smsgate => "smsgate",
            Daemon::GammuDefault => "gammu-smsd, default",
            Daemon::GammuFast => "gammu-smsd, fastest",
            Daemon::SmstoolsDefault => "smstools3, default",
            Daemon::SmstoolsFast => "smstools3, fastest",
        }
    }

    /// How long one measurement may take before it is reported as not finished.
    fn limit(self) -> Duration {
        match self {
            Daemon::Smsgate => Duration::from_secs(120),
            _ => Duration::from_secs(600),
        }
    }
}

/// gammu-smsd's [smsd] settings for the fastest configuration gammu-smsdrc(5) allows: the
/// outbox is scanned on every loop (CommTimeout 0) and the loop does not sleep (LoopSleep 0,
/// "might cause Gammu to consume quite a lot of CPU power"), no periodic phone status, signal,
/// battery, network or PIN checks, and received messages are checked as rarely as allowed
/// while sending.
const GAMMU_FAST: &str = "CommTimeout = 0
LoopSleep = 0
SendTimeout = 30
ReceiveFrequency = 3600
StatusFrequency = 0
CheckSecurity = 0
CheckBattery = 0
CheckSignal = 0
CheckNetwork = 0
";

/// smstools3's global settings for the fastest configuration its manual allows
/// (configure.html): one-second sleeps (the smallest whole value), the inotify notifier that
/// wakes the main process as soon as a file appears, trusted outgoing files (created by rename),
/// the files handled in disk order without priority or age checks.
const SMSTOOLS_FAST_GLOBAL: &str = "delaytime = 1
delaytime_mainprocess = 1
sleeptime_mainprocess = 1
notifier = yes
trust_outgoing = yes
spool_directory_order = yes
status_interval = 0
";

/// ... and per modem: no check for unexpected input before each command, the fastest polling
/// of answers the manual mentions (poll_faster 30: "some modems work even faster with greater
/// value, like 30"), no network registration check, no incoming polling.
const SMSTOOLS_FAST_MODEM: &str = "detect_unexpected_input = no
poll_faster = 30
check_network = 0
incoming = no
";

/// A child process ended on drop: SIGTERM, up to 5 s to exit, then SIGKILL.
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> R<Proc> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.alive() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("compare: {} did not stop on SIGTERM, killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The virtual bank: `smsgate sim` as a child, ready when it printed "ready".
struct Bank {
    dir: PathBuf,
    _proc: Proc,
}

impl Bank {
    fn start(dir: &Path, modems: usize, latency_ms: u64) -> R<Bank> {
        let bank_dir = dir.join("bank");
        let log = dir.join("sim.log");
        let proc = Proc::spawn(
            "smsgate sim",
            Command::new(SMSGATE)
                .args(["sim", "--modems", &modems.to_string(), "--dir"])
                .arg(&bank_dir)
                .args(["--latency", &format!("{latency_ms}ms")])
                .args(["--report-delay", "60m", "--seed", "14"]),
            &log,
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().any(|l| l.trim() == "ready") {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the virtual bank did not start: {text}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Bank {
            dir: bank_dir,
            _proc: proc,
        })
    }

    fn port(&self, i: usize) -> PathBuf {
        self.dir.join(format!("modem{i}"))
    }

    fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }
}

/// Follows events.jsonl: the time of each `cmgs` event by its text.
struct Events {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    cmgs: HashMap<String, Timestamp>,
}

impl Events {
    fn new(path: PathBuf) -> Events {
        Events {
            path,
            offset: 0,
            partial: Vec::new(),
            cmgs: HashMap::new(),
        }
    }

    fn poll(&mut self) -> R<()> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in BufReader::new(&complete[..]).lines() {
            let line = line?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["event"] == "cmgs" {
                if let (Some(text), Some(time)) = (v["text"].as_str(), v["time"].as_str()) {
                    self.cmgs.insert(text.to_string(), time.parse()?);
                }
            }
        }
        Ok(())
    }

    /// Waits until every text has a `cmgs` event or `limit` passed; the times found.
    fn wait(&mut self, texts: &[String], limit: Duration) -> R<Vec<Timestamp>> {
        let deadline = Instant::now() + limit;
        loop {
            self.poll()?;
            let found: Vec<Timestamp> = texts
                .iter()
                .filter_map(|t| self.cmgs.get(t).copied())
                .collect();
            if found.len() == texts.len() || Instant::now() > deadline {
                return Ok(found);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// One daemon running against a bank, able to take messages the way its users submit them.
struct Running {
    daemon: Daemon,
    dir: PathBuf,
    procs: Vec<Proc>,
    /// smsgate: the API socket.
    socket: PathBuf,
    /// gammu-smsd: one configuration file per instance (modem).
    gammu_configs: Vec<PathBuf>,
    /// smstools3: the outgoing directory.
    outgoing: PathBuf,
    next_gammu: usize,
    files: usize,
}

fn start(daemon: Daemon, dir: &Path, bank: &Bank, modems: usize) -> R<Running> {
    let mut run = Running {
        daemon,
        dir: dir.to_path_buf(),
        procs: Vec::new(),
        socket: dir.join("api.sock"),
        gammu_configs: Vec::new(),
        outgoing: dir.join("outgoing"),
        next_gammu: 0,
        files: 0,
    };
    match daemon {
        Daemon::Smsgate => {
            let mut config = Config {
                socket: run.socket.clone(),
                database: dir.join("smsgate.db"),
                log_level: "warn".into(),
                ..Config::default()
            };
            config.modems.ports = vec![format!("{}/modem*", bank.dir.display())];
            config.admin_group = "root".into();
            config.accounts = vec![AccountConfig {
                name: "bench".into(),
                uids: vec![nix::unistd::getuid().as_raw()],
                groups: Vec::new(),
                unmetered: true,
                ..AccountConfig::default()
            }];
            // The other daemons have no per-SIM quotas; smsgate's defaults (10 a minute, 3 s
            // apart) would measure the quota, not the daemon.
            config.quota.per_minute = 1_000_000;
            config.quota.per_hour = 10_000_000;
            config.quota.per_day = 100_000_000;
            config.quota.min_interval = jiff::SignedDuration::ZERO;
            let path = dir.join("smsgate.toml");
            std::fs::write(&path, toml::to_string(&config)?)?;
            run.procs.push(Proc::spawn(
                "smsgate daemon",
                Command::new(SMSGATE)
                    .args(["daemon", "--config"])
                    .arg(&path),
                &dir.join("smsgate.log"),
            )?);
        }
        Daemon::GammuDefault | Daemon::GammuFast => {
            for i in 0..modems {
                let d = dir.join(format!("gammu{i}"));
                for sub in ["inbox", "outbox", "sent", "error"] {
                    std::fs::create_dir_all(d.join(sub))?;
                }
                let mut conf = format!(
                    "[gammu]\ndevice = {}\nconnection = at\n\n[smsd]\nService = files\n\
                     LogFile = {}\nPhoneID = modem{i}\nInboxPath = {}/\nOutboxPath = {}/\n\
                     SentSMSPath = {}/\nErrorSMSPath = {}/\n",
                    bank.port(i).display(),
                    d.join("smsd.log").display(),
                    d.join("inbox").display(),
                    d.join("outbox").display(),
                    d.join("sent").display(),
                    d.join("error").display(),
                );
                if daemon == Daemon::GammuFast {
                    conf.push_str(GAMMU_FAST);
                }
                let path = d.join("smsdrc");
                std::fs::write(&path, conf)?;
                run.procs.push(Proc::spawn(
                    &format!("gammu-smsd {i}"),
                    Command::new("gammu-smsd").arg("-c").arg(&path),
                    &d.join("stdout.log"),
                )?);
                run.gammu_configs.push(path);
            }
        }
        Daemon::SmstoolsDefault | Daemon::SmstoolsFast => {
            let d = dir.join("smstools");
            for sub in ["outgoing", "checked", "failed", "incoming", "sent", "tmp"] {
                std::fs::create_dir_all(d.join(sub))?;
            }
            run.outgoing = d.join("outgoing");
            let devices: Vec<String> = (1..=modems).map(|i| format!("GSM{i}")).collect();
            let mut conf = format!(
                "devices = {}\noutgoing = {}\nchecked = {}\nfailed = {}\nincoming = {}\n\
                 sent = {}\nlogfile = {}\ninfofile = {}\npidfile = {}\n",
                devices.join(","),
                d.join("outgoing").display(),
                d.join("checked").display(),
                d.join("failed").display(),
                d.join("incoming").display(),
                d.join("sent").display(),
                d.join("smsd.log").display(),
                d.join("smsd.working").display(),
                d.join("smsd.pid").display(),
            );
            if daemon == Daemon::SmstoolsFast {
                conf.push_str(SMSTOOLS_FAST_GLOBAL);
            }
            for (i, name) in devices.iter().enumerate() {
                let _ = write!(conf, "\n[{name}]\ndevice = {}\n", bank.port(i).display());
                if daemon == Daemon::SmstoolsFast {
                    conf.push_str(SMSTOOLS_FAST_MODEM);
                }
            }
            let path = d.join("smsd.conf");
            std::fs::write(&path, conf)?;
            // -t: stay in the foreground (this program ends it).
            run.procs.push(Proc::spawn(
                "smsd",
                Command::new("smsd")
                    .arg("-t")
                    .arg(format!("-c{}", path.display())),
                &d.join("stdout.log"),
            )?);
        }
    }
    Ok(run)
}

impl Running {
    fn check_alive(&mut self) -> R<()> {
        for p in &mut self.procs {
            if !p.alive() {
                return Err(format!("{} exited (logs in {})", p.name, self.dir.display()).into());
            }
        }
        Ok(())
    }

    /// Submits messages `(to, text)` the way this daemon's users do.
    fn submit(&mut self, rt: &tokio::runtime::Runtime, msgs: &[(String, String)]) -> R<()> {
        match self.daemon {
            Daemon::Smsgate if msgs.len() == 1 => {
                let client = ApiClient::new(&self.socket);
                let req = SendRequest {
                    to: vec![msgs[0].0.clone()],
                    text: msgs[0].1.clone(),
                    report: false,
                    validity: None,
                    not_before: None,
                    priority: Priority::Normal,
                    account: None,
                    sender: None,
                };
                rt.block_on(client.send(&req))?;
            }
            Daemon::Smsgate => {
                let mut csv = String::from("number,text\n");
                for (to, text) in msgs {
                    let _ = writeln!(csv, "{to},{text}");
                }
                self.files += 1;
                let path = self.dir.join(format!("batch{}.csv", self.files));
                std::fs::write(&path, csv)?;
                let out = Command::new(SMSGATE)
                    .args(["send", "--no-report", "--socket"])
                    .arg(&self.socket)
                    .arg("--file")
                    .arg(&path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .output()?;
                if !out.status.success() {
                    return Err(format!(
                        "smsgate send --file: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )
                    .into());
                }
            }
            Daemon::GammuDefault | Daemon::GammuFast => {
                for (to, text) in msgs {
                    let conf = &self.gammu_configs[self.next_gammu % self.gammu_configs.len()];
                    self.next_gammu += 1;
                    let out = Command::new("gammu-smsd-inject")
                        .arg("-c")
                        .arg(conf)
                        .args(["TEXT", to, "-unicode", "-text", text])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .output()?;
                    if !out.status.success() {
                        return Err(format!(
                            "gammu-smsd-inject: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        )
                        .into());
                    }
                }
            }
            Daemon::SmstoolsDefault | Daemon::SmstoolsFast => {
                let tmp = self.outgoing.with_file_name("tmp");
                for (to, text) in msgs {
                    self.files += 1;
                    let name = format!("msg{:06}", self.files);
                    // smstools3 numbers are international without "+".
                    let body = format!(
                        "To: {}\nAlphabet: UTF-8\n\n{text}",
                        to.trim_start_matches('+')
                    );
                    std::fs::write(tmp.join(&name), body)?;
                    std::fs::rename(tmp.join(&name), self.outgoing.join(&name))?;
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/// The messages: Chinese, single-part UCS2, each text unique (the events log is matched by
/// text), each to its own China Mobile number.
fn message(n: usize) -> (String, String) {
    (
        format!("+86139{:08}", 10_000_000 + n),
        format!(
            "【示例科技】您的验证码是{:06}，5分钟内有效，请勿泄露。",
            100_000 + n
        ),
    )
}

struct Burst {
    secs: f64,
    sent: usize,
    submit_secs: f64,
}

struct Row {
    daemon: Daemon,
    /// idle -> AT+CMGS of each probe, seconds (None: not sent within the limit).
    probes: Vec<Option<f64>>,
    burst1: Option<Burst>,
    burst4: Option<Burst>,
    failure: Option<String>,
}

fn temp(name: &str) -> R<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix(&format!("smsgate-compare-{name}-"))
        .tempdir()?)
}

/// Starts `daemon` on a fresh bank of `modems`, and waits until it sent one message on every
/// modem (gammu: one per instance; the others choose the modem themselves, so `modems`
/// messages and then every modem opened). A daemon that cannot do that could not be run.
fn bring_up(
    rt: &tokio::runtime::Runtime,
    daemon: Daemon,
    dir: &Path,
    modems: usize,
    opts: &Opts,
    counter: &mut usize,
) -> R<(Bank, Running, Events)> {
    let bank = Bank::start(dir, modems, opts.latency_ms)?;
    let mut events = Events::new(bank.events());
    let mut run = start(daemon, dir, &bank, modems)?;
    // smsgate answers once its socket is bound; the others take files at once.
    if daemon == Daemon::Smsgate {
        let client = ApiClient::new(&run.socket);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            run.check_alive()?;
            if let Ok(h) = rt.block_on(client.health()) {
                if h.modems_ready as usize >= modems {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{modems} modems not ready within 60 s").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let warm: Vec<(String, String)> = (0..modems)
        .map(|_| {
            *counter += 1;
            message(*counter)
        })
        .collect();
    run.submit(rt, &warm)?;
    let texts: Vec<String> = warm.iter().map(|m| m.1.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        run.check_alive()?;
        let got = events.wait(&texts, Duration::from_millis(500))?;
        if got.len() == texts.len() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {} warm-up messages sent within 120 s (logs in {})",
                got.len(),
                texts.len(),
                dir.display()
            )
            .into());
        }
    }
    Ok((bank, run, events))
}

fn measure(rt: &tokio::runtime::Runtime, daemon: Daemon, opts: &Opts) -> R<Row> {
    let mut counter = 0usize;
    let mut row = Row {
        daemon,
        probes: Vec::new(),
        burst1: None,
        burst4: None,
        failure: None,
    };
    for modems in [1usize, 4] {
        let dir = temp(daemon.key())?;
        let result = (|| -> R<()> {
            let (_bank, mut run, mut events) =
                bring_up(rt, daemon, dir.path(), modems, opts, &mut counter)?;
            if modems == 1 {
                for i in 0..opts.probes {
                    std::thread::sleep(opts.idle);
                    run.check_alive()?;
                    counter += 1;
                    let msg = message(counter);
                    let t0 = Timestamp::now();
                    run.submit(rt, std::slice::from_ref(&msg))?;
                    let got = events.wait(std::slice::from_ref(&msg.1), daemon.limit())?;
                    let secs = got.first().map(|t| secs_between(t0, *t));
                    eprintln!(
                        "  probe {}: {}",
                        i + 1,
                        secs.map_or("not sent".into(), fmt_secs)
                    );
                    row.probes.push(secs);
                }
            }
            std::thread::sleep(opts.idle);
            run.check_alive()?;
            let msgs: Vec<(String, String)> = (0..opts.messages)
                .map(|_| {
                    counter += 1;
                    message(counter)
                })
                .collect();
            let texts: Vec<String> = msgs.iter().map(|m| m.1.clone()).collect();
            let t0 = Timestamp::now();
            let started = Instant::now();
            run.submit(rt, &msgs)?;
            let submit_secs = started.elapsed().as_secs_f64();
            let got = events.wait(&texts, daemon.limit())?;
            let last = got.iter().max().copied();
            let burst = Burst {
                secs: last.map_or(f64::NAN, |t| secs_between(t0, t)),
                sent: got.len(),
                submit_secs,
            };
            eprintln!(
                "  burst of {} on {modems} modem(s): {} sent, last AT+CMGS after {} (submitting took {})",
                opts.messages,
                burst.sent,
                fmt_secs(burst.secs),
                fmt_secs(burst.submit_secs)
            );
            if modems == 1 {
                row.burst1 = Some(burst);
            } else {
                row.burst4 = Some(burst);
            }
            run.check_alive()?;
            Ok(())
        })();
        if opts.keep {
            let kept = dir.keep();
            eprintln!("  kept {}", kept.display());
        }
        result?;
    }
    Ok(row)
}

fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64()
}

fn fmt_secs(s: f64) -> String {
    if s.is_nan() {
        "-".into()
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ratio(x: f64, base: f64) -> String {
    if x.is_nan() || base.is_nan() || base <= 0.0 {
        "-".into()
    } else if x / base < 10.0 {
        format!("{:.1}x", x / base)
    } else {
        format!("{:.0}x", x / base)
    }
}

fn table(rows: &[Row], opts: &Opts) -> String {
    let probe_median = |r: &Row| -> f64 {
        let mut v: Vec<f64> = r.probes.iter().flatten().copied().collect();
        if v.len() < r.probes.len() {
            return f64::NAN;
        }
        median(&mut v)
    };
    let burst_secs = |b: &Option<Burst>| -> f64 {
        match b {
            Some(b) if b.sent == opts.messages => b.secs,
            _ => f64::NAN,
        }
    };
    let base = rows.iter().find(|r| r.daemon == Daemon::Smsgate);
    let base_probe = base.map_or(f64::NAN, probe_median);
    let base1 = base.map_or(f64::NAN, |r| burst_secs(&r.burst1));
    let base4 = base.map_or(f64::NAN, |r| burst_secs(&r.burst4));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| daemon, configuration | idle -> AT+CMGS, median (min-max) | x smsgate | {n} messages, 1 modem | x smsgate | {n} messages, 4 modems | x smsgate |",
        n = opts.messages
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        if let Some(f) = &r.failure {
            let _ = writeln!(
                out,
                "| {} | could not be run: {f} | | | | | |",
                r.daemon.label()
            );
            continue;
        }
        let sent: Vec<f64> = r.probes.iter().flatten().copied().collect();
        let min = sent.iter().copied().fold(f64::INFINITY, f64::min);
        let max = sent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let p = probe_median(r);
        let probe_cell = if p.is_nan() {
            format!(
                "{} of {} not sent within {} s",
                r.probes.len() - sent.len(),
                r.probes.len(),
                r.daemon.limit().as_secs()
            )
        } else {
            format!("{} ({}-{})", fmt_secs(p), fmt_secs(min), fmt_secs(max))
        };
        let burst_cell = |b: &Option<Burst>| match b {
            Some(b) if b.sent == opts.messages => fmt_secs(b.secs),
            Some(b) => format!(
                "{} of {} sent in {} s",
                b.sent,
                opts.messages,
                r.daemon.limit().as_secs()
            ),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.daemon.label(),
            probe_cell,
            ratio(p, base_probe),
            burst_cell(&r.burst1),
            ratio(burst_secs(&r.burst1), base1),
            burst_cell(&r.burst4),
            ratio(burst_secs(&r.burst4), base4),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The codec side by side.

/// The same 14-character cycle as benches/pdu.rs and benches/compare/gammu_codec.c.
fn chinese(n: usize) -> String {
    "您好欢迎使用短信平台退订回T"
        .chars()
        .cycle()
        .take(n)
        .collect()
}

/// The single-part DELIVERs of /work/shared/vectors/pdu.json ("gsm7-deliver-classic" and
/// "ucs2-deliver-chinese"), also in gammu_codec.c.
const GSM7_DELIVER: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
const UCS2_DELIVER: &str = "07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF";

/// Median ns per call over 7 batches of about 0.2 s, the method of gammu_codec.c.
fn time_ns(mut f: impl FnMut() -> usize) -> f64 {
    const BATCH_NS: f64 = 2e8;
    let mut iters: u64 = 1;
    let mut sink = 0usize;
    loop {
        let t0 = Instant::now();
        for _ in 0..iters {
            sink = sink.wrapping_add(std::hint::black_box(f()));
        }
        let t = t0.elapsed().as_nanos() as f64;
        if t > BATCH_NS / 4.0 {
            iters = (iters as f64 * BATCH_NS / t) as u64 + 1;
            break;
        }
        iters *= 2;
    }
    let mut per: Vec<f64> = (0..7)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..iters {
                sink = sink.wrapping_add(std::hint::black_box(f()));
            }
            t0.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    std::hint::black_box(sink);
    median(&mut per)
}

/// Pins this thread to CPU 1 (the core the harness runs on through `taskset -c 1`).
fn pin_to_cpu1() -> R<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only read
    // and write that set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(1, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    Ok(())
}

fn smsgate_codec() -> R<Vec<(&'static str, f64)>> {
    let gsm7 = hex::decode(GSM7_DELIVER)?;
    let ucs2 = hex::decode(UCS2_DELIVER)?;
    let opts = SubmitOptions::new(Address::parse_number("+8613912345678")?);
    let text70 = chinese(70);
    let text300 = chinese(300);
    // Check once, as the harness does: the same results, or no figures.
    let text_of = |b: &[u8]| -> R<String> {
        let sms = Sms::parse(b)?;
        Ok(sms
            .tpdu
            .user_data()
            .and_then(|u| u.body.text())
            .unwrap_or_default()
            .to_string())
    };
    if text_of(&gsm7)? != "How are you?" || text_of(&ucs2)? != "中兴通讯" {
        return Err("smsgate decoded a vector wrongly".into());
    }
    let (p70, p300) = (
        encode_submit(&opts, &text70)?.len(),
        encode_submit(&opts, &text300)?.len(),
    );
    if (p70, p300) != (1, 5) {
        return Err(format!("smsgate encoded {p70} and {p300} parts (want 1 and 5)").into());
    }
    Ok(vec![
        (
            "decode_gsm7",
            time_ns(|| Sms::parse(&gsm7).map_or(0, |s| s.smsc.is_some() as usize)),
        ),
        (
            "decode_ucs2",
            time_ns(|| Sms::parse(&ucs2).map_or(0, |s| s.smsc.is_some() as usize)),
        ),
        (
            "encode_70",
            time_ns(|| encode_submit(&opts, &text70).map_or(0, |v| v.len())),
        ),
        (
            "encode_300",
            time_ns(|| encode_submit(&opts, &text300).map_or(0, |v| v.len())),
        ),
    ])
}

/// Runs the libgammu harness on CPU 1, with the environment's TZ removed or set to `tz`.
fn gammu_codec(path: &Path, tz: Option<&str>) -> R<HashMap<String, f64>> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1"]).arg(path);
    match tz {
        Some(tz) => cmd.env("TZ", tz),
        None => cmd.env_remove("TZ"),
    };
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let mut map = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [name, ns, ..] = f[..] {
            map.insert(name.to_string(), ns.parse()?);
        }
    }
    Ok(map)
}

fn codec(opts: &Opts) -> R<String> {
    let Some(harness) = &opts.gammu_codec else {
        return Ok(
            "codec: skipped (no --gammu-codec; benches/compare/run builds the harness)\n".into(),
        );
    };
    let gammu_local = gammu_codec(harness, None)?;
    let gammu_utc = gammu_codec(harness, Some("UTC"))?;
    let handle = std::thread::spawn(|| -> Result<Vec<(&'static str, f64)>, String> {
        pin_to_cpu1().map_err(|e| e.to_string())?;
        smsgate_codec().map_err(|e| e.to_string())
    });
    let ours = handle.join().map_err(|_| "the codec thread panicked")??;
    let names: HashSet<&str> = ours.iter().map(|(n, _)| *n).collect();
    for m in [&gammu_local, &gammu_utc] {
        if !names.iter().all(|n| m.contains_key(*n)) {
            return Err("the libgammu harness did not print every operation".into());
        }
    }
    let label = |n: &str| match n {
        "decode_gsm7" => "decode: GSM 7-bit DELIVER, 1 part",
        "decode_ucs2" => "decode: UCS2 DELIVER, 1 part",
        "encode_70" => "encode: 70 Chinese characters, 1 part",
        "encode_300" => "encode: 300 Chinese characters, 5 parts",
        _ => "?",
    };
    let fmt_ns = |ns: f64| {
        if ns >= 1000.0 {
            format!("{:.2} µs", ns / 1000.0)
        } else {
            format!("{ns:.0} ns")
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "codec, one core (taskset -c 1 / sched_setaffinity), median of 7 batches of 0.2 s:"
    );
    let _ = writeln!(
        out,
        "| operation | smsgate | libgammu, TZ unset | x smsgate | libgammu, TZ=UTC | x smsgate |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (name, ns) in &ours {
        let (l, u) = (gammu_local[*name], gammu_utc[*name]);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            label(name),
            fmt_ns(*ns),
            fmt_ns(l),
            ratio(l, *ns),
            fmt_ns(u),
            ratio(u, *ns),
        );
    }
    Ok(out)
}
