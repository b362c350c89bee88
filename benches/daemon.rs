//! The daemon's benchmark (issue 4 "Proof"): the real daemon (`smsgate::daemon::run` in-process,
//! or the real binary as a child for the memory figure) over its real Unix socket, against the
//! virtual modem bank over real pseudo-terminals. Prints four figures:
//!
//! - `latency`: submit -> AT+CMGS on an idle bank, from the API's 202 (the response reaching
//!   the client) to the time of the sim's "cmgs" event in events.jsonl (issue 14: target p50 <= 2 ms,
//!   p99 <= 10 ms);
//! - `throughput`: parts/s through the whole pipeline (submit, accept, plan, claim, AT+CMGS,
//!   outcome) with 32 zero-latency modems (target >= 2,000 parts/s);
//! - `accept16`: single-recipient requests from 16 concurrent clients, each waiting for its
//!   202 before the next (the group commit of acceptance, issue 14; target >= 2,000 requests/s);
//! - `drain`: 800 single-part messages on 16 modems at 200 ms per part against the ideal
//!   800 x 0.2 / 16 s, from the first acceptance call to the last AT+CMGS (issue 14's target:
//!   within 2 %); `drain5000`: the older 5,000 parts at 500 ms per part (target within 5 %);
//! - `gateway`: submit -> CMPP SUBMIT on an idle 106 channel (issue 12: target p50 <= 5 ms):
//!   the virtual ISMG of the bank, a `[[gateways]]` entry of one link and an account whose
//!   sender is 106; from the submit call to the time of the ISMG's "cmpp_submit" event;
//! - `memory`: VmRSS of the daemon binary with 64 modems and 1,000,000 queued messages, after
//!   it settled (issue 14: target <= 24 MiB).
//!
//! Run: `cargo bench --bench daemon` (all), or name some: `cargo bench --bench daemon -- latency
//! drain`. Quotas are raised for the throughput and drain runs (configuration: a bank of SIMs
//! with no per-SIM limits), never for the memory run. What must hold: every figure comes from
//! the real socket, the real store file (WAL, synchronous = FULL) and real ptys; nothing is
//! mocked. Times are wall-clock on whatever machine runs it: the load average is printed
//! with each figure, because on a shared box it moves them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use smsgate::api::client::ApiClient;
use smsgate::api::types::SendRequest;
use smsgate::config::{AccountConfig, Config, GatewayEntry, SenderKind};
use smsgate::sim::{Bank, Dialect, DialectChoice, IsmgConfig, SimConfig};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const TEXT: &str = "【示例科技】您的验证码是 428913，5分钟内有效。";

fn main() {
    // `cargo bench` passes `--bench`; everything else that is not a flag names a scenario.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    // SMSGATE_BENCH_LOG=filter: the in-process daemon's log on stderr (e.g. "smsgate=debug").
    if let Ok(filter) = std::env::var("SMSGATE_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("daemon bench: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    println!("machine: {} cores, {}", cores(), load());
    let mut failed = false;
    let mut report = |name: &str, r: BenchResult<()>| {
        if let Err(e) = r {
            eprintln!("{name}: FAILED: {e}");
            failed = true;
        }
    };
    if run("latency") {
        report("latency", runtime.block_on(latency(200)));
    }
    if run("throughput") {
        report("throughput", runtime.block_on(throughput(32, 10_000)));
    }
    if run("accept") {
        report("accept", runtime.block_on(accept(10_000, 5)));
    }
    if run("accept16") {
        report("accept16", runtime.block_on(accept_concurrent(16, 10_000)));
    }
    if run("drain") {
        report("drain", runtime.block_on(drain(16, 800, 200, 2.0)));
    }
    if run("drain5000") {
        report("drain5000", runtime.block_on(drain(16, 5_000, 500, 5.0)));
    }
    if run("gateway") {
        report("gateway", runtime.block_on(gateway_latency(200)));
    }
    if run("memory") {
        report("memory", runtime.block_on(memory(64, 1_000_000)));
    }
    if failed {
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

/// This process's CPU time (user + system), to tell our work from the box's other load.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a whole rusage into the pointer on success.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: rc == 0, so the struct was written.
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn temp_dir(name: &str) -> BenchResult<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix(&format!("smsgate-bench-{name}-"))
        .tempdir()?)
}

/// A distinct valid China Mobile number for each `i`.
fn recipient(i: usize) -> String {
    format!("+86139{:08}", i % 100_000_000)
}

fn daemon_config(dir: &Path, open_quotas: bool) -> Config {
    let mut config = Config {
        socket: dir.join("api.sock"),
        database: dir.join("smsgate.db"),
        log_level: "warn".into(),
        ..Config::default()
    };
    config.modems.ports = vec![format!("{}/modem*", dir.join("modems").display())];
    config.modems.dialect = "generic".into();
    config.admin_group = "root".into();
    config.accounts = vec![AccountConfig {
        name: "bench".into(),
        uids: vec![nix::unistd::getuid().as_raw()],
        groups: Vec::new(),
        // The benchmark measures sending, not credit accounting.
        unmetered: true,
        ..AccountConfig::default()
    }];
    if open_quotas {
        // A bank whose SIMs carry no per-SIM limits (e.g. an operator's own test SIMs).
        config.quota.per_minute = 1_000_000;
        config.quota.per_hour = 10_000_000;
        config.quota.per_day = 100_000_000;
        config.quota.min_interval = jiff::SignedDuration::ZERO;
    }
    config
}

async fn start_bank(dir: &Path, modems: usize, latency: Duration) -> BenchResult<Bank> {
    let mut sim = SimConfig::new(modems, dir.join("modems"));
    sim.dialect = DialectChoice::One(Dialect::Generic);
    sim.latency = latency;
    sim.report_delay = Duration::from_secs(3600);
    sim.seed = Some(4);
    sim.control_socket = false;
    sim.chatter = None;
    Ok(Bank::start(sim).await?)
}

/// The in-process daemon and the bank, all modems ready.
struct Rig {
    _dir: tempfile::TempDir,
    bank: Bank,
    client: ApiClient,
    stop: tokio::sync::oneshot::Sender<()>,
    daemon: tokio::task::JoinHandle<Result<(), smsgate::daemon::DaemonError>>,
    events: CmgsLog,
}

impl Rig {
    async fn start(name: &str, modems: usize, latency: Duration) -> BenchResult<Rig> {
        let dir = temp_dir(name)?;
        let bank = start_bank(dir.path(), modems, latency).await?;
        let config = daemon_config(dir.path(), true);
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let daemon = tokio::spawn(smsgate::daemon::run(
            config.clone(),
            None,
            async move {
                let _ = stop_rx.await;
            },
            None,
        ));
        let client = ApiClient::new(&config.socket);
        wait_ready(&client, modems).await?;
        let events = CmgsLog::new(bank.events_path(), "cmgs");
        Ok(Rig {
            _dir: dir,
            bank,
            client,
            stop,
            daemon,
            events,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.daemon).await;
        self.bank.shutdown().await;
    }
}

async fn wait_ready(client: &ApiClient, modems: usize) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(h) = client.health().await {
            if h.modems_ready as usize >= modems {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{modems} modems not ready within 120 s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows events.jsonl: the times of "cmgs" events (a PDU the modem accepted), or of another
/// kind ("cmpp_submit": a SUBMIT the virtual ISMG accepted).
struct CmgsLog {
    path: PathBuf,
    /// `"event":"<kind>"` as the log writes it.
    needle: String,
    offset: u64,
    /// Bytes of a line not yet complete (the reader may catch the writer mid-line).
    partial: Vec<u8>,
    /// Every event's time by the modem (index) it came from, for the drain's breakdown.
    by_modem: BTreeMap<u64, Vec<Timestamp>>,
}

impl CmgsLog {
    fn new(path: PathBuf, kind: &str) -> CmgsLog {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        CmgsLog {
            path,
            needle: format!("\"event\":\"{kind}\""),
            offset,
            partial: Vec::new(),
            by_modem: BTreeMap::new(),
        }
    }

    /// The cmgs events written since the last call.
    fn poll(&mut self) -> BenchResult<Vec<Timestamp>> {
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::new(f);
        let mut out = Vec::new();
        let mut line = std::mem::take(&mut self.partial);
        loop {
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            if !line.ends_with(b"\n") {
                // Caught the writer mid-line: finish it on the next poll.
                break;
            }
            let text = String::from_utf8_lossy(&line);
            if text.contains(&self.needle) {
                let v: serde_json::Value = serde_json::from_str(&text)?;
                if let Some(t) = v["time"].as_str() {
                    let t = t.parse::<Timestamp>()?;
                    if let Some(m) = v["modem"].as_u64() {
                        self.by_modem.entry(m).or_default().push(t);
                    }
                    out.push(t);
                }
            }
            line.clear();
        }
        self.partial = line;
        Ok(out)
    }

    /// Waits for `n` more cmgs events; returns their times.
    async fn wait_for(&mut self, n: usize, limit: Duration) -> BenchResult<Vec<Timestamp>> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            got.extend(self.poll()?);
            if got.len() >= n {
                break;
            }
            if Instant::now() > deadline {
                return Err(
                    format!("only {} of {n} parts sent within {limit:?}", got.len()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(got)
    }
}

fn request(to: Vec<String>) -> SendRequest {
    SendRequest {
        to,
        text: TEXT.into(),
        report: false,
        validity: None,
        not_before: None,
        priority: Default::default(),
        account: None,
        sender: None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One message at a time on an idle bank of 4 zero-latency modems: from the submit call (and
/// from its 202) to the moment the AT+CMGS command reaches the modem (the sim's
/// "send_command" event: issue 14's figure), and to the modem's answer (its "cmgs" event,
/// which the bank writes from a timer: up to a millisecond of its own on top).
async fn latency(samples: usize) -> BenchResult<()> {
    let mut rig = Rig::start("latency", 4, Duration::ZERO).await?;
    let mut commands = CmgsLog::new(rig.events.path.clone(), "send_command");
    let (mut cmd_call, mut cmd_202) = (Vec::new(), Vec::new());
    let (mut ans_call, mut ans_202) = (Vec::new(), Vec::new());
    // A few unmeasured sends first: connections, statement caches, page cache.
    for i in 0..samples + 10 {
        let called = Timestamp::now();
        rig.client.send(&request(vec![recipient(i)])).await?;
        let accepted = Timestamp::now();
        let answered = rig.events.wait_for(1, Duration::from_secs(10)).await?;
        let command = commands.wait_for(1, Duration::from_secs(10)).await?;
        let ms = |at: Option<&Timestamp>, from: Timestamp| {
            // The modem may start before the 202 reaches the client: counted as 0.
            ((*at.unwrap_or(&accepted) - from).as_secs_f64() * 1000.0).max(0.0)
        };
        if i >= 10 {
            cmd_call.push(ms(command.first(), called));
            cmd_202.push(ms(command.first(), accepted));
            ans_call.push(ms(answered.first(), called));
            ans_202.push(ms(answered.first(), accepted));
        }
        // Idle between samples: the bank and the daemon are quiet when the next one comes.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.stop().await;
    for v in [&mut cmd_call, &mut cmd_202, &mut ans_call, &mut ans_202] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "latency: submit -> AT+CMGS on an idle bank (4 modems, {} samples): from the submit call p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p50 <= 2, p99 <= 10); from the 202 p50 {:.2} ms, p99 {:.2} ms; to the modem's answer (cmgs) from the call p50 {:.2} ms, p99 {:.2} ms, from the 202 p50 {:.2} ms; {}",
        cmd_call.len(),
        percentile(&cmd_call, 0.50),
        percentile(&cmd_call, 0.99),
        percentile(&cmd_call, 1.0),
        percentile(&cmd_202, 0.50),
        percentile(&cmd_202, 0.99),
        percentile(&ans_call, 0.50),
        percentile(&ans_call, 0.99),
        percentile(&ans_202, 0.50),
        load()
    );
    Ok(())
}

async fn gateway_latency(samples: usize) -> BenchResult<()> {
    let dir = temp_dir("gateway")?;
    let mut sim = SimConfig::new(0, dir.path().join("modems"));
    sim.seed = Some(4);
    sim.control_socket = false;
    sim.chatter = None;
    sim.cmpp = Some(IsmgConfig::new("127.0.0.1:0".parse()?, "901234", b"secret"));
    let bank = Bank::start(sim).await?;
    let addr = bank.cmpp_addr().ok_or("the bank has no virtual ISMG")?;
    let secret = dir.path().join("cmcc.secret");
    std::fs::write(&secret, "secret\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
    let mut config = daemon_config(dir.path(), true);
    config.gateways = vec![GatewayEntry {
        name: "cmcc".into(),
        address: addr.to_string(),
        sp_id: "901234".into(),
        secret_file: secret,
        src_id: "1069012345".into(),
        service_id: "MXX0000001".into(),
        connections: 1,
        ..GatewayEntry::default()
    }];
    for a in &mut config.accounts {
        a.sender = SenderKind::Service106;
        a.gateway = Some("cmcc".into());
        a.extension = "42".into();
    }
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(smsgate::daemon::run(
        config.clone(),
        None,
        async move {
            let _ = stop_rx.await;
        },
        None,
    ));
    let client = ApiClient::new(&config.socket);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = client
            .gateways()
            .await
            .ok()
            .and_then(|g| g.first().map(|g| g.links_up));
        if up.unwrap_or(0) >= 1 {
            break;
        }
        if Instant::now() > deadline {
            return Err("the gateway link not up within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut events = CmgsLog::new(bank.events_path(), "cmpp_submit");
    let mut from_call = Vec::with_capacity(samples);
    // A few unmeasured sends first: connections, statement caches, page cache.
    for i in 0..samples + 10 {
        let called = Timestamp::now();
        client.send(&request(vec![recipient(i)])).await?;
        let sent = events.wait_for(1, Duration::from_secs(10)).await?;
        let at = sent.first().copied().unwrap_or(called);
        if i >= 10 {
            from_call.push((at - called).as_secs_f64() * 1000.0);
        }
        // Idle between samples: the link is quiet (its reports answered) when the next comes.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), daemon).await;
    bank.shutdown().await;
    from_call.sort_by(f64::total_cmp);
    println!(
        "gateway: submit -> CMPP SUBMIT on an idle 106 link through the daemon ({} samples): from the submit call p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p50 <= 5); {}",
        from_call.len(),
        percentile(&from_call, 0.50),
        percentile(&from_call, 0.99),
        percentile(&from_call, 1.0),
        load()
    );
    Ok(())
}

/// One request with `recipients` recipients, timed to its 202 (validation, policy, encoding, the
/// store transaction with its audit entries): issue 5's acceptance target is < 1 s for 10,000.
async fn accept(recipients: usize, runs: usize) -> BenchResult<()> {
    let rig = Rig::start("accept", 4, Duration::from_millis(500)).await?;
    let mut secs = Vec::with_capacity(runs);
    for run in 0..runs {
        let to: Vec<String> = (0..recipients)
            .map(|i| recipient(run * recipients + i))
            .collect();
        let t = std::time::Instant::now();
        let resp = rig.client.send(&request(to)).await?;
        secs.push(t.elapsed().as_secs_f64());
        if resp.ids.len() != recipients {
            return Err(format!("{} of {recipients} accepted", resp.ids.len()).into());
        }
    }
    rig.stop().await;
    secs.sort_by(f64::total_cmp);
    println!(
        "accept: one request with {recipients} recipients, {runs} runs: median {:.3} s, max {:.3} s (target < 1 s); {}",
        percentile(&secs, 0.5),
        percentile(&secs, 1.0),
        load()
    );
    Ok(())
}

/// Submits `parts` single-part messages in requests of 500 while the bank sends them.
async fn submit_all(client: &ApiClient, parts: usize, first: usize) -> BenchResult<()> {
    let mut i = 0;
    while i < parts {
        let n = (parts - i).min(500);
        let to = (first + i..first + i + n).map(recipient).collect();
        let resp = client.send(&request(to)).await?;
        if resp.ids.len() != n {
            return Err(format!("{} of {n} accepted: {:?}", resp.ids.len(), resp.refused).into());
        }
        i += n;
    }
    Ok(())
}

/// `parts` parts through `modems` zero-latency modems, submitted while the bank sends.
async fn throughput(modems: usize, parts: usize) -> BenchResult<()> {
    let mut rig = Rig::start("throughput", modems, Duration::ZERO).await?;
    let cpu0 = cpu_time();
    let t0 = Timestamp::now();
    let client = ApiClient::new(rig.client.socket());
    let submit = tokio::spawn(async move {
        let r = submit_all(&client, parts, 0).await;
        (r.map_err(|e| e.to_string()), Timestamp::now())
    });
    let sent = rig.events.wait_for(parts, Duration::from_secs(600)).await?;
    let (submitted, t_sub) = submit.await?;
    submitted?;
    let cpu = cpu_time() - cpu0;
    let last = sent.iter().max().copied().unwrap_or(t0);
    let secs = (last - t0).as_secs_f64();
    rig.stop().await;
    println!(
        "throughput: {parts} parts on {modems} zero-latency modems in {secs:.2} s = {:.0} parts/s (target >= 2000); submission alone took {:.2} s; CPU {:.2} s (bench + daemon + sim in one process) = {:.0} parts per CPU-second; {}",
        parts as f64 / secs,
        (t_sub - t0).as_secs_f64(),
        cpu.as_secs_f64(),
        parts as f64 / cpu.as_secs_f64().max(1e-9),
        load()
    );
    Ok(())
}

/// `requests` single-recipient requests from `clients` concurrent clients, each client sending
/// its next request when the 202 of the last one came: accepted requests per second. Every 202
/// means the message, its reservation and its audit entry are committed (WAL, synchronous =
/// FULL); concurrent requests share commits.
async fn accept_concurrent(clients: usize, requests: usize) -> BenchResult<()> {
    // One slow modem: the bank sends a little meanwhile, as in production, without competing
    // much for the two cores.
    let rig = Rig::start("accept16", 1, Duration::from_secs(1)).await?;
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let client = ApiClient::new(rig.client.socket());
        let mine: Vec<usize> = (c..requests).step_by(clients).collect();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(mine.len());
            for i in mine {
                let r = client
                    .send(&request(vec![recipient(i)]))
                    .await
                    .map_err(|e| e.to_string())?;
                ids.extend(r.ids.into_iter().map(|id| id.0));
            }
            Ok::<_, String>(ids)
        }));
    }
    let mut ids = Vec::with_capacity(requests);
    for t in tasks {
        ids.extend(t.await??);
    }
    let secs = t0.elapsed().as_secs_f64();
    rig.stop().await;
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != requests {
        return Err(format!("{} distinct messages accepted of {requests}", ids.len()).into());
    }
    println!(
        "accept16: {requests} single-recipient requests from {clients} concurrent clients in {secs:.2} s = {:.0} accepted requests/s, each durable before its 202 (target >= 2000); {}",
        requests as f64 / secs,
        load()
    );
    Ok(())
}

/// `parts` parts queued at once on `modems` modems of `latency_ms`: time from the first
/// acceptance call to the last cmgs, against the ideal.
async fn drain(modems: usize, parts: usize, latency_ms: u64, target_pct: f64) -> BenchResult<()> {
    let mut rig = Rig::start("drain", modems, Duration::from_millis(latency_ms)).await?;
    let t0 = Timestamp::now();
    submit_all(&rig.client, parts, 0).await?;
    let sent = rig
        .events
        .wait_for(parts, Duration::from_secs(1800))
        .await?;
    let last = sent.iter().max().copied().unwrap_or(t0);
    let secs = (last - t0).as_secs_f64();
    let ideal = parts as f64 * latency_ms as f64 / 1000.0 / modems as f64;
    let by_modem = std::mem::take(&mut rig.events.by_modem);
    rig.stop().await;
    // Where the time went: parts per modem (an uneven split costs whole sends at the end),
    // the gap between one modem's answers (our own cost per part is the gap minus the
    // modem's time), and when each modem's first and last answers came.
    if std::env::var_os("SMSGATE_BENCH_VERBOSE").is_some() {
        for (m, ts) in &by_modem {
            let g: Vec<String> = ts
                .windows(2)
                .map(|w| format!("{:.1}", (w[1] - w[0]).as_secs_f64() * 1000.0))
                .collect();
            eprintln!("  modem {m}: {} parts, gaps {}", ts.len(), g.join(" "));
        }
    }
    let counts: Vec<usize> = by_modem.values().map(Vec::len).collect();
    let mut gaps: Vec<f64> = by_modem
        .values()
        .flat_map(|ts| ts.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0))
        .collect();
    gaps.sort_by(f64::total_cmp);
    let firsts: Vec<f64> = by_modem
        .values()
        .filter_map(|ts| ts.first().map(|f| (*f - t0).as_secs_f64() * 1000.0))
        .collect();
    let lasts: Vec<f64> = by_modem
        .values()
        .filter_map(|ts| ts.last().map(|l| (last - *l).as_secs_f64() * 1000.0))
        .collect();
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}-{hi:.0} ms")
    };
    println!(
        "drain: {parts} parts on {modems} modems at {latency_ms} ms/part in {secs:.2} s; ideal {ideal:.2} s; {:+.2} % (target within {target_pct} %); parts per modem {}-{}; gap between a modem's answers p50 {:.1} ms, p90 {:.1} ms; first answers after {}; last answers {} before the end; {}",
        (secs / ideal - 1.0) * 100.0,
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0),
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.9),
        range(&firsts),
        range(&lasts),
        load()
    );
    Ok(())
}

/// Pre-fills the store with `messages` queued messages (one transaction per 10,000), starts the
/// daemon binary with `modems` modems, waits until they are ready and it settled, reads VmRSS.
async fn memory(modems: usize, messages: usize) -> BenchResult<()> {
    let dir = temp_dir("memory")?;
    let config = daemon_config(dir.path(), false);
    let fill = Instant::now();
    prefill(&config.database, messages)?;
    let fill_secs = fill.elapsed().as_secs_f64();
    let db_mb = std::fs::metadata(&config.database)?.len() as f64 / 1e6;

    let bank = start_bank(dir.path(), modems, Duration::from_millis(500)).await?;
    let config_path = dir.path().join("smsgate.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    // SMSGATE_BENCH_BIN measures another build of the binary (e.g. a saved older one).
    let bin = std::env::var_os("SMSGATE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smsgate")));
    let child = Command::new(&bin)
        .args(["daemon", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut child = KillOnDrop(child);
    let client = ApiClient::new(&config.socket);
    let started = Instant::now();
    wait_ready(&client, modems).await?;
    let ready_secs = started.elapsed().as_secs_f64();
    // Settled: let it plan, claim and send for a while (quotas are the defaults here).
    let mut samples = Vec::new();
    let cpu0 = proc_cpu_secs(child.0.id())?;
    // SMSGATE_BENCH_SETTLE_SECS watches longer (default 10 s).
    let settle: u32 = std::env::var("SMSGATE_BENCH_SETTLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .max(1);
    for _ in 0..settle {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(status_kb(child.0.id(), "VmRSS")?);
        if std::env::var_os("SMSGATE_BENCH_VERBOSE").is_some() {
            eprintln!("  VmRSS {} kB", samples.last().copied().unwrap_or(0));
        }
    }
    let hwm = status_kb(child.0.id(), "VmHWM")?;
    let cpu = proc_cpu_secs(child.0.id())? - cpu0;
    let rss = samples.last().copied().unwrap_or(0);
    let health = client.health().await?;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = tokio::task::spawn_blocking(move || child.0.wait()).await;
    bank.shutdown().await;
    println!(
        "memory: daemon binary, {modems} modems, {messages} queued messages ({db_mb:.0} MB database, filled in {fill_secs:.1} s): VmRSS {:.1} MiB after settling (peak VmHWM {:.1} MiB; min/max over {settle} s {:.1}/{:.1} MiB) (target <= 24 MiB); ready after {ready_secs:.1} s; daemon CPU {cpu:.2} s over those {settle} s; {} still pending; {}",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        samples.iter().min().copied().unwrap_or(0) as f64 / 1024.0,
        samples.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
        health.pending,
        load()
    );
    Ok(())
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User + system CPU seconds of process `pid` (/proc/PID/stat fields 14 and 15).
fn proc_cpu_secs(pid: u32) -> BenchResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> BenchResult<f64> {
        Ok(fields
            .get(i)
            .ok_or("short /proc/PID/stat")?
            .parse::<f64>()?)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // Fields 14 and 15 of the whole line are 12 and 13 after the name (state is field 3).
    Ok((ticks(11)? + ticks(12)?) / hz)
}

fn status_kb(pid: u32, field: &str) -> BenchResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb = rest.trim().trim_end_matches("kB").trim();
            return Ok(kb.parse()?);
        }
    }
    Err(format!("{field} not in /proc/{pid}/status").into())
}

fn prefill(db: &Path, messages: usize) -> BenchResult<()> {
    use smsgate::pdu::{Address, SubmitOptions};
    use smsgate::store::{InitialState, NewMessage, NewPart, Store};
    let mut store = Store::open(db)?;
    let number = smsgate::number::parse(&recipient(0))?;
    let opts = SubmitOptions::new(Address::parse_number(number.canonical())?);
    let encoded = smsgate::pdu::encode_submit(&opts, TEXT)?;
    let parts: Vec<NewPart> = encoded
        .iter()
        .map(|p| NewPart {
            pdu_hex: p.hex(),
            cmgs_length: p.cmgs_length as u32,
        })
        .collect();
    let now = Timestamp::now();
    let mut done = 0;
    while done < messages {
        let n = (messages - done).min(10_000);
        let batch: Vec<NewMessage> = (done..done + n)
            .map(|i| NewMessage {
                account: Some("bench".into()),
                recipient: recipient(i),
                recipient_carrier: number.carrier(),
                text: TEXT.into(),
                encoding: "ucs2".into(),
                priority: 0,
                not_before: None,
                deadline: now.checked_add(jiff::SignedDuration::from_hours(24)).ok(),
                report_requested: false,
                initial: InitialState::Ready,
                parts: parts.clone(),
            })
            .collect();
        store.accept(&batch, now)?;
        done += n;
    }
    Ok(())
}
