//! `smsgate daemon --config FILE`: what systemd runs. Loads the configuration, sets up logging at
//! the configured level (SMSGATE_LOG overrides), and runs the daemon until SIGTERM or SIGINT;
//! SIGHUP reloads the configuration. It refuses to start on the errors `smsgate config check`
//! reports, with the same messages (both call `config::check::check_file`), and logs its
//! warnings.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// The runtime's blocking pool (store calls, file work): see `run`.
const MAX_BLOCKING_THREADS: usize = 8;

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core), and each
/// arena keeps freed memory for itself; the daemon's threads (the runtime's workers and its
/// blocking pool) allocate little, so two arenas serve them: VmRSS with 64 modems and a
/// million queued went from 22.4-24.6 MiB to 20.8-21.9 MiB (issue 14's memory figure). An explicit
/// `MALLOC_ARENA_MAX` in the environment wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's tuning; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The TOML configuration file.
    #[arg(long, short, default_value = "/etc/smsgate/smsgate.toml")]
    pub config: PathBuf,
}

pub fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let report = crate::config::check::check_file(&args.config);
    let config = match report.config {
        Some(config) if report.errors.is_empty() => config,
        _ => anyhow::bail!("{}", report.errors.join("\n")),
    };
    super::init_tracing(&config.log_level);
    for w in &report.warnings {
        tracing::warn!("configuration: {w}");
    }
    // The store is one connection behind one mutex, so more blocking threads than a few only
    // wait on it; each would also keep its own malloc arena (resident memory with 64 modems).
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("smsgate")
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                if reload_tx.send(()).await.is_err() {
                    return;
                }
            }
        });
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        crate::daemon::run(config, Some(args.config), shutdown, Some(reload_rx)).await?;
        Ok(())
    })
}
