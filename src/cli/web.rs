//! `smsgate web --config FILE`: what smsgate-web.service runs. Loads the same configuration file
//! as the daemon (its `[web]` table and `socket`), sets up logging at its level (SMSGATE_LOG
//! overrides), and serves the network API until SIGTERM or SIGINT.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct WebArgs {
    /// The TOML configuration file (the daemon's).
    #[arg(long, short, default_value = "/etc/smsgate/smsgate.toml")]
    pub config: PathBuf,
}

pub fn run(args: WebArgs) -> anyhow::Result<()> {
    let config = crate::config::Config::load(&args.config)?;
    super::init_tracing(&config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("smsgate-web")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        crate::web::run(&config, shutdown).await?;
        Ok(())
    })
}
