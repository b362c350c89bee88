//! The daemon: the store, the scheduler's runner, the modem bank, the carrier gateways' links and
//! the API, wired together. `run(config, shutdown)` is what `smsgate daemon` and `smsgate demo`
//! call.
//!
//! What must always hold: a part is claimed (`sending`, committed) before AT+CMGS is written, and
//! its outcome is committed before its SIM is offered another part, so a crash leaves at most one
//! `unknown` part per modem and nothing is ever sent twice by the daemon's own doing; the runner
//! sleeps until something happens (a new message, a send finishing, a modem changing, a timer
//! the scheduler asked for): there is no polling loop; on shutdown no new send starts, sends in
//! flight finish (bounded), and the socket stops accepting. The same holds for a gateway part and
//! its SUBMIT (`gateways.rs`, a task per gateway beside the runner, which never sees gateway
//! parts). Besides the runner's rounds, acceptance claims for idle SIMs in its own transaction
//! (`handover.rs`: the runner's round, made there), under the same rules.

mod admin;
mod audit;
mod backend;
mod channels;
mod console;
mod contract;
mod gateways;
mod handover;
pub mod keys;
mod modems;
mod runner;
mod submit;
mod users;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::scheduler::Quota;
use crate::store::{Store, StoreError};

pub use backend::DaemonBackend;

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("database {path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("API socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("modem ports: {0}")]
    Ports(#[from] crate::bank::discover::DiscoverError),
    /// Another daemon (or a restore) holds the database's lock file.
    #[error(
        "database {}: another smsgate daemon or a restore holds it (lock {})",
        path.display(), lock.display()
    )]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("database {path}: {source}")]
    Lock {
        path: PathBuf,
        source: crate::store::backup::BackupError,
    },
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The store behind a mutex, used from async code through the blocking pool: SQLite calls (and
/// their fsyncs) never stall the async workers.
#[derive(Clone)]
pub(crate) struct Db(Arc<Mutex<Store>>);

impl Db {
    pub(crate) fn new(store: Store) -> Db {
        Db(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` on the store in the blocking pool.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock poisons it; the store itself is still consistent
            // (every change is one transaction), so carry on with it.
            let mut store = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut store)
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Invalid(format!("store task failed: {e}"))))
    }
}

/// The parts of the configuration that SIGHUP reloads.
#[derive(Debug, Clone)]
pub(crate) struct Tunables {
    pub quota: crate::config::QuotaConfig,
    pub default_validity: jiff::SignedDuration,
    pub on_ambiguous: crate::config::OnAmbiguous,
    pub settle_window: jiff::SignedDuration,
}

impl Tunables {
    fn from_config(config: &Config) -> Tunables {
        Tunables {
            quota: config.quota.clone(),
            default_validity: config.default_validity,
            on_ambiguous: config.modems.on_ambiguous,
            settle_window: config.modems.settle_window,
        }
    }

    pub fn default_quota(&self) -> Quota {
        quota_of(self.quota.defaults())
    }
}

pub(crate) fn quota_of(l: crate::config::QuotaLimits) -> Quota {
    Quota {
        per_minute: l.per_minute,
        per_hour: l.per_hour,
        per_day: l.per_day,
        min_interval: l.min_interval,
    }
}

/// State shared by the runner, the bank and the API backend.
pub(crate) struct Shared {
    pub db: Db,
    /// A second connection for the console's long reads (statistics, send log): in WAL mode
    /// they neither wait for nor hold up the sending path's transactions on `db`. (The same
    /// store as `db` where there is no file, in unit tests.)
    pub reads: Db,
    /// Acceptance's group commit (see [`submit::AcceptWriter`]).
    pub accept: submit::AcceptWriter,
    /// Wakes the runner: a new message, a send finished, a modem changed.
    pub wake: Notify,
    pub modems: modems::Registry,
    pub tunables: RwLock<Tunables>,
    pub modem_config: crate::modem::ModemConfig,
    /// Set once shutdown begins: the API refuses new work and the runner claims nothing new.
    pub stopping: AtomicBool,
    pub started: Timestamp,
    /// Content rules, opt-out words, audit retention (reloaded on SIGHUP).
    pub contract: RwLock<contract::ContractSettings>,
    /// The runner's last heartbeat (see `runner::HEARTBEAT_EVERY`): the watchdog follows it.
    pub heartbeat: Mutex<std::time::Instant>,
    /// Send outcomes known but not yet durable: while any is, nothing new is claimed.
    pub outcomes_unwritten: std::sync::atomic::AtomicUsize,
    /// Why the store cannot write, since when (None while it writes).
    pub store_fault: Mutex<Option<(String, std::time::Instant)>>,
    /// The accounts' sender kinds and gateways (issue 12; reloaded on SIGHUP).
    pub channels: RwLock<channels::Channels>,
    /// The carrier gateways' links (issue 12).
    pub gateways: gateways::GatewaySet,
}

/// Held while one send's outcome waits to be durable.
pub(crate) struct OutcomePending<'a>(&'a Shared);

impl Drop for OutcomePending<'_> {
    fn drop(&mut self) {
        self.0.outcomes_unwritten.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    pub fn tunables(&self) -> Tunables {
        self.tunables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn contract(&self) -> contract::ContractSettings {
        self.contract
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn channels(&self) -> channels::Channels {
        self.channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wakes the modems' runner and every gateway's sending task (new work may be due).
    pub fn wake_all(&self) {
        self.wake.notify_one();
        self.gateways.wake();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The runner is alive.
    pub fn beat(&self) {
        *self.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    }

    /// How long since the runner's last heartbeat.
    pub fn since_beat(&self) -> Duration {
        self.heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Counts one outcome as not yet durable until the guard is dropped.
    pub fn outcome_pending(&self) -> OutcomePending<'_> {
        self.outcomes_unwritten.fetch_add(1, Ordering::SeqCst);
        OutcomePending(self)
    }

    /// Whether some known outcome is not durable yet.
    pub fn outcomes_pending(&self) -> bool {
        self.outcomes_unwritten.load(Ordering::SeqCst) > 0
    }

    /// Records that the store cannot write (`Some(why)`) or writes again (`None`).
    pub fn store_fault(&self, fault: Option<String>) {
        let mut f = self.store_fault.lock().unwrap_or_else(|p| p.into_inner());
        match (fault, f.as_ref()) {
            (None, Some(_)) => {
                tracing::info!("the database writes again");
                *f = None;
            }
            (None, None) => {}
            // Keep the time it started.
            (Some(why), Some((_, since))) => *f = Some((why, *since)),
            (Some(why), None) => {
                tracing::error!("the database cannot write: {why}");
                *f = Some((why, std::time::Instant::now()));
            }
        }
    }

    /// Why the store cannot write and for how long, if it cannot.
    pub fn store_trouble(&self) -> Option<(String, Duration)> {
        self.store_fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(why, since)| (why.clone(), since.elapsed()))
    }
}

/// How long shutdown waits for sends in flight (a GSM part takes 2.5-10 s). Inside the unit's
/// `TimeoutStopSec=60s` with room for closing the modems and the database: a send still in
/// flight then (a hung modem) is left `sending` and shows as `unknown` at the next start,
/// which is what systemd's kill would have left too, minus the kill.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(45);
/// Bound on closing the modems after the drain.
const MODEM_SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);
/// How long the store may stay unwritable before the watchdog pings stop (systemd then
/// restarts the daemon, which opens the database afresh).
const STORE_FAULT_GRACE: Duration = Duration::from_secs(60);
/// Back-off between attempts to write what is known but not yet durable (a send's outcome, an
/// inbound SMS, a status report) while the store cannot write; the last delay repeats.
pub(crate) const WRITE_RETRY: [Duration; 4] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
];

/// The delay before write attempt `attempt + 1` (see [`WRITE_RETRY`]).
pub(crate) fn write_retry_delay(attempt: usize) -> Duration {
    WRITE_RETRY[attempt.min(WRITE_RETRY.len() - 1)]
}

/// The watchdog is pinged only while the runner beat within this.
const HEARTBEAT_STALE: Duration = Duration::from_secs(20);

/// Runs the daemon until `shutdown` resolves. `reload` yields each time the configuration should
/// be re-read (SIGHUP); `config_path` is where from.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    mut reload: Option<tokio::sync::mpsc::Receiver<()>>,
) -> Result<(), DaemonError> {
    // The checks of `smsgate config check` (the CLI ran them already, with file and line).
    if let Some((key, message)) = crate::config::check::startup_errors(&config)
        .into_iter()
        .next()
    {
        return Err(DaemonError::Config(match key {
            Some(key) => format!("{key}: {message}"),
            None => message,
        }));
    }
    for path in [&config.database, &config.socket] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DaemonError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
    }
    // Held until this function returns (or the process dies): one daemon per database, and
    // `smsgate restore` refuses while it is held.
    let _lock = match crate::store::backup::DbLock::try_acquire(&config.database) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return Err(DaemonError::Locked {
                path: config.database.clone(),
                lock: crate::store::backup::DbLock::path_for(&config.database),
            })
        }
        Err(source) => {
            return Err(DaemonError::Lock {
                path: config.database.clone(),
                source,
            })
        }
    };
    let now = Timestamp::now();
    let mut store = Store::open(&config.database).map_err(|source| DaemonError::Store {
        path: config.database.clone(),
        source,
    })?;
    store.set_settle_window(config.modems.settle_window);
    let unknown = store
        .recover_after_crash(now)
        .map_err(|source| DaemonError::Store {
            path: config.database.clone(),
            source,
        })?;
    if !unknown.is_empty() {
        tracing::warn!(
            parts = unknown.len(),
            "parts were being sent when the daemon stopped: marked unknown, not resent (see `smsgate retry`)"
        );
    }
    let patterns = crate::bank::PortPatterns::new(&config.modems.ports)?;
    let access = crate::api::AccessMap::from_config(&config).map_err(DaemonError::Config)?;
    // The database is the one source of truth for accounts; the configuration's are upserted.
    contract::upsert_accounts(&mut store, &config, &access, now).map_err(|source| {
        DaemonError::Store {
            path: config.database.clone(),
            source,
        }
    })?;
    let contract_settings =
        contract::ContractSettings::from_config(&config).map_err(DaemonError::Config)?;
    let listener =
        crate::api::bind_socket(&config.socket).map_err(|source| DaemonError::Socket {
            path: config.socket.clone(),
            source,
        })?;

    let mut modem_config = crate::modem::ModemConfig::new("modem");
    modem_config.baud_rate = config.modems.baud;
    modem_config.pin = config.modems.pin.clone();
    modem_config.send_timeout = config
        .modems
        .send_timeout
        .try_into()
        .unwrap_or(modem_config.send_timeout);
    modem_config.dialect = match config.modems.dialect.as_str() {
        "" | "auto" => None,
        name => Some(crate::modem::dialect::by_name(name).ok_or_else(|| {
            DaemonError::Config(format!("modems.dialect: unknown dialect {name:?}"))
        })?),
    };

    // One link per configured connection of each gateway; they log in on their own.
    let (gateway_set, link_events) = gateways::start_links(&config)?;
    let db = Db::new(store);
    let reads = Db::new(
        Store::open(&config.database).map_err(|source| DaemonError::Store {
            path: config.database.clone(),
            source,
        })?,
    );
    let shared = Arc::new(Shared {
        accept: submit::AcceptWriter::start(db.clone()),
        db,
        reads,
        wake: Notify::new(),
        modems: modems::Registry::default(),
        tunables: RwLock::new(Tunables::from_config(&config)),
        modem_config,
        stopping: AtomicBool::new(false),
        started: now,
        contract: RwLock::new(contract_settings),
        heartbeat: Mutex::new(std::time::Instant::now()),
        outcomes_unwritten: std::sync::atomic::AtomicUsize::new(0),
        store_fault: Mutex::new(None),
        channels: RwLock::new(channels::Channels::from_config(&config)),
        gateways: gateway_set,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let runner = tokio::spawn(runner::run(Arc::clone(&shared), stop_rx.clone()));
    let gateway_tasks = gateways::spawn(&shared, link_events, stop_rx.clone());
    // The modems stop only after the drain: a supervisor that saw the stop first would drop
    // its modem (and the send in flight), leaving the part `sending` (found by the e2e tests).
    let (bank_stop_tx, bank_stop_rx) = watch::channel(false);
    let bank = tokio::spawn(crate::bank::supervise::run(
        Arc::new(modems::BankHost(Arc::clone(&shared))),
        patterns,
        crate::bank::BankOptions::default(),
        bank_stop_rx,
    ));
    let notifier = tokio::spawn(notify_systemd(Arc::clone(&shared), stop_rx.clone()));
    let purger = tokio::spawn(purge_daily(Arc::clone(&shared), stop_rx.clone()));
    if let (Some(rx), Some(path)) = (reload.as_mut(), config_path.clone()) {
        let shared = Arc::clone(&shared);
        let mut rx = std::mem::replace(rx, tokio::sync::mpsc::channel(1).1);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                reload_config(&shared, &path);
            }
        });
    }

    let backend = Arc::new(DaemonBackend::new(Arc::clone(&shared)));
    let api_shared = Arc::clone(&shared);
    let api_shutdown = async move {
        shutdown.await;
        api_shared.stopping.store(true, Ordering::SeqCst);
    };
    tracing::info!(socket = %config.socket.display(), "smsgate daemon ready");
    let served = crate::api::serve(listener, backend, access, api_shutdown).await;
    if let Err(e) = &served {
        tracing::error!("API server stopped: {e}");
    }

    // Shutdown: no new claims; sends in flight finish; modems are closed.
    shared.stopping.store(true, Ordering::SeqCst);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    shared.wake.notify_one();
    let _ = runner.await;
    for t in gateway_tasks {
        let _ = t.await;
    }
    let drained = std::time::Instant::now();
    if tokio::time::timeout(DRAIN_LIMIT, shared.modems.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!("sends still in flight after {DRAIN_LIMIT:?}: they will show as unknown");
    }
    // The gateways' SUBMITs in flight are answered within the same limit, then TERMINATE.
    gateways::drain(&shared, DRAIN_LIMIT.saturating_sub(drained.elapsed())).await;
    let _ = bank_stop_tx.send(true);
    shared.modems.shutdown_all(MODEM_SHUTDOWN_LIMIT).await;
    bank.abort();
    notifier.abort();
    purger.abort();
    let _ = std::fs::remove_file(&config.socket);
    tracing::info!("smsgate daemon stopped");
    served.map_err(|source| DaemonError::Socket {
        path: config.socket.clone(),
        source,
    })
}

fn reload_config(shared: &Shared, path: &Path) {
    match Config::load(path) {
        Ok(config) => {
            *shared.tunables.write().unwrap_or_else(|p| p.into_inner()) =
                Tunables::from_config(&config);
            // Accounts' sender kinds and extensions; the gateways' links need a restart.
            *shared.channels.write().unwrap_or_else(|p| p.into_inner()) =
                channels::Channels::from_config(&config);
            match contract::ContractSettings::from_config(&config) {
                Ok(c) => {
                    *shared.contract.write().unwrap_or_else(|p| p.into_inner()) = c;
                    tracing::info!("content rules and opt-out words reloaded");
                }
                Err(e) => tracing::error!("content rules not reloaded, keeping the old ones: {e}"),
            }
            tracing::info!(
                "configuration reloaded (quotas, validity); socket, database, ports and accounts need a restart"
            );
            shared.wake.notify_one();
        }
        Err(e) => tracing::error!("configuration not reloaded, keeping the old one: {e}"),
    }
}

/// The daily purge of the audit log past its retention (and of old opt-out attribution rows):
/// once at start, then every 24 hours.
async fn purge_daily(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let c = shared.contract();
        let lookback = c.optout.lookback_days;
        match shared
            .db
            .call(move |s| contract::purge(s, &c.retention, lookback, Timestamp::now()))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "audit log: records past retention purged"),
            Err(e) => tracing::error!("audit log purge failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(24 * 3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// READY once running, STATUS with the bank's summary, WATCHDOG pings while the runner lives.
/// Without systemd (no NOTIFY_SOCKET) every call is a no-op.
async fn notify_systemd(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let period = sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .unwrap_or(Duration::from_secs(10))
        .min(Duration::from_secs(10));
    loop {
        if *stop.borrow() {
            return;
        }
        let (status, alive) = systemd_status(&shared);
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&status)]);
        if alive {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
        tokio::time::sleep(period).await;
    }
}

/// The STATUS= line, and whether the watchdog may be pinged: only while the runner's heartbeat
/// is fresh and the store has not been unwritable for longer than [`STORE_FAULT_GRACE`].
fn systemd_status(shared: &Shared) -> (String, bool) {
    let summary = shared.modems.summary();
    let mut status = format!(
        "{} of {} modems ready, {} sending",
        summary.ready, summary.total, summary.busy
    );
    let (up, links) = shared.gateways.link_summary();
    if links > 0 {
        status.push_str(&format!("; {up} of {links} gateway links up"));
    }
    let mut alive = true;
    if let Some((why, for_)) = shared.store_trouble() {
        status.push_str(&format!(
            "; DATABASE NOT WRITABLE for {}s, sending paused: {why}",
            for_.as_secs()
        ));
        alive &= for_ < STORE_FAULT_GRACE;
    }
    let since = shared.since_beat();
    if since > HEARTBEAT_STALE {
        status.push_str(&format!("; scheduler silent for {}s", since.as_secs()));
        alive = false;
    }
    (status, alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        let config = Config::default();
        let db = Db::new(Store::open_in_memory().unwrap());
        Shared {
            reads: db.clone(),
            db,
            accept: submit::AcceptWriter::unstarted(),
            wake: Notify::new(),
            modems: modems::Registry::default(),
            tunables: RwLock::new(Tunables::from_config(&config)),
            modem_config: crate::modem::ModemConfig::new("test"),
            stopping: AtomicBool::new(false),
            started: Timestamp::now(),
            contract: RwLock::new(contract::ContractSettings::from_config(&config).unwrap()),
            heartbeat: Mutex::new(std::time::Instant::now()),
            outcomes_unwritten: std::sync::atomic::AtomicUsize::new(0),
            store_fault: Mutex::new(None),
            channels: RwLock::new(channels::Channels::from_config(&config)),
            gateways: gateways::GatewaySet::default(),
        }
    }

    #[test]
    fn watchdog_follows_the_runner_heartbeat() {
        // Issue 8.5: the watchdog was pinged whatever the runner did.
        let s = shared();
        s.beat();
        assert!(systemd_status(&s).1);
        *s.heartbeat.lock().unwrap() = std::time::Instant::now() - Duration::from_secs(25);
        let (status, alive) = systemd_status(&s);
        assert!(!alive, "{status}");
        assert!(status.contains("scheduler silent"), "{status}");
    }

    #[test]
    fn watchdog_stops_when_the_store_stays_unwritable() {
        let s = shared();
        s.beat();
        s.store_fault(Some("database or disk is full".into()));
        let (status, alive) = systemd_status(&s);
        assert!(alive, "a short fault is survived: {status}");
        assert!(status.contains("DATABASE NOT WRITABLE"), "{status}");
        *s.store_fault.lock().unwrap() = Some((
            "database or disk is full".into(),
            std::time::Instant::now() - STORE_FAULT_GRACE - Duration::from_secs(1),
        ));
        assert!(!systemd_status(&s).1);
        s.store_fault(None);
        let (status, alive) = systemd_status(&s);
        assert!(alive && !status.contains("DATABASE"), "{status}");
    }

    #[tokio::test]
    async fn status_line_counts_gateway_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "x").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut config = Config::default();
        // Nothing listens on port 9 of the loopback here: the links stay down.
        config.gateways = vec![crate::config::GatewayEntry {
            name: "cmcc".into(),
            address: "127.0.0.1:9".into(),
            sp_id: "901234".into(),
            secret_file: secret,
            src_id: "1069012345".into(),
            connections: 2,
            ..Default::default()
        }];
        let (set, _events) = gateways::start_links(&config).unwrap();
        let mut s = shared();
        s.gateways = set;
        s.beat();
        let (status, alive) = systemd_status(&s);
        assert!(alive, "{status}");
        assert!(status.contains("0 of 2 gateway links up"), "{status}");
        assert!(!systemd_status(&shared()).0.contains("gateway"));
    }

    #[test]
    fn outcome_guard_counts_what_is_not_durable() {
        let s = shared();
        assert!(!s.outcomes_pending());
        let g = s.outcome_pending();
        assert!(s.outcomes_pending());
        drop(g);
        assert!(!s.outcomes_pending());
    }
}
