//! Supervision of the bank: follows the ports [`discover::watch`] reports (hot-plug both ways)
//! and keeps one supervisor task per present port, which opens the port's modem actor, hands it
//! to the [`Host`] while it runs, and reopens it with back-off when it stops while the port is
//! still there. What a running modem means (its SIM, its inbound messages, the store) is the
//! host's business, not the bank's.
//!
//! What must always hold: at most one supervisor per port (keyed by the reported name) at any
//! time; a supervisor ends when its port is gone or the bank is told to stop, never restarts a
//! modem after the stop, and waits between restarts (1 s growing to 60 s, started over after
//! five minutes of running fine) so a failing modem cannot spin; with `modems.dialect = "auto"`
//! (the host's config without a dialect) the udev rules' `SMSGATE_DIALECT` hint for the port,
//! when it names a known dialect, is used instead of probing (see [`udev`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{discover, udev, PortEvent, PortPatterns};
use crate::modem::{Modem, ModemConfig, ModemEvent, ModemHandle};

/// What the bank needs from whoever runs it (the daemon): how to drive a port's modem, and
/// what to do with one while it runs.
pub trait Host: Send + Sync + 'static {
    /// How to drive the modem on `port`; `dialect: None` means detect it (the bank fills it
    /// from the udev hint when there is one). The bank sets `name` to the port.
    fn modem_config(&self, port: &str) -> ModemConfig;

    /// A modem actor runs on `port`: follow its events until it ends or `stop` changes, tidy
    /// up after it, and say why it ended (for the log).
    fn run_modem(
        &self,
        port: &str,
        handle: ModemHandle,
        events: mpsc::Receiver<ModemEvent>,
        stop: &mut watch::Receiver<bool>,
    ) -> impl Future<Output = String> + Send;
}

/// Where the bank looks beside the ports themselves.
#[derive(Debug, Clone)]
pub struct BankOptions {
    /// The udev database (normally [`udev::UDEV_DATA`]); a test points it at a temporary
    /// directory with a fake entry.
    pub udev_data: PathBuf,
}

impl Default for BankOptions {
    fn default() -> BankOptions {
        BankOptions {
            udev_data: PathBuf::from(udev::UDEV_DATA),
        }
    }
}

/// Back-off between restarts of a port's modem actor.
const RESTART_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(60),
];

/// Follows the ports and keeps one supervisor per present port, until the port watcher stops.
pub async fn run<H: Host>(
    host: Arc<H>,
    patterns: PortPatterns,
    options: BankOptions,
    stop: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel(64);
    let watcher = tokio::spawn(discover::watch(patterns, tx));
    let supervised: Arc<Mutex<BTreeSet<PathBuf>>> = Arc::default();
    let options = Arc::new(options);
    while let Some(event) = rx.recv().await {
        match event {
            PortEvent::Added(path) => {
                let fresh = supervised
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(path.clone());
                if fresh {
                    tracing::info!(port = %path.display(), "modem port appeared");
                    let host = Arc::clone(&host);
                    let options = Arc::clone(&options);
                    let supervised = Arc::clone(&supervised);
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        supervise(&*host, &options, &path, stop).await;
                        supervised
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&path);
                    });
                }
            }
            PortEvent::Removed(path) => {
                // The actor sees the port vanish itself (EIO / EOF) and its supervisor ends.
                tracing::info!(port = %path.display(), "modem port vanished");
            }
        }
    }
    match watcher.await {
        Ok(Err(e)) => tracing::error!("port watcher stopped: {e}"),
        Err(e) => tracing::error!("port watcher failed: {e}"),
        Ok(Ok(())) => {}
    }
}

/// Runs the modem on `path` until the port is gone for good or the bank stops.
async fn supervise<H: Host>(
    host: &H,
    options: &BankOptions,
    path: &Path,
    mut stop: watch::Receiver<bool>,
) {
    let port = path.to_string_lossy().into_owned();
    let mut attempt = 0usize;
    loop {
        if *stop.borrow() || !path.exists() {
            return;
        }
        let mut config = host.modem_config(&port);
        config.name = port.clone();
        if config.dialect.is_none() {
            // `modems.dialect = "auto"`: the udev rules may know the vendor (read at each
            // open: a re-plugged port may be another device).
            config.dialect = udev::dialect_hint(&options.udev_data, path);
        }
        let started = std::time::Instant::now();
        match Modem::open(path, &config) {
            Ok((handle, events)) => {
                let reason = host.run_modem(&port, handle, events, &mut stop).await;
                if *stop.borrow() {
                    tracing::info!(port = %port, "modem stopped: {reason}");
                } else {
                    tracing::warn!(port = %port, "modem stopped: {reason}");
                }
            }
            Err(e) => tracing::warn!(port = %port, "cannot open modem port: {e}"),
        }
        if *stop.borrow() {
            return;
        }
        if started.elapsed() > Duration::from_secs(300) {
            attempt = 0; // it ran fine for a while: start the back-off over
        }
        let delay = RESTART_BACKOFF[attempt.min(RESTART_BACKOFF.len() - 1)];
        attempt += 1;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}
