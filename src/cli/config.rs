//! `smsgate config check [--config FILE] [--json]`: the configuration as the daemon would take
//! it, every default filled in, with its errors (the daemon would refuse to start) and its
//! warnings (legal but unwise). The checks are `config::check`'s, the daemon's own.
//!
//! What must always hold: exit status 0 when the daemon would start (warnings or not), 1 when
//! it would refuse, 2 on bad arguments (clap); the effective configuration goes to stdout,
//! errors and warnings to stderr, `--json` puts all of it on stdout as one object.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration and its rules file; print the effective configuration.
    Check {
        /// The TOML configuration file.
        #[arg(long, short, default_value = "/etc/smsgate/smsgate.toml")]
        config: PathBuf,
        /// One JSON object: file, ok, errors, warnings, config.
        #[arg(long)]
        json: bool,
    },
}

/// The check failed: the errors are printed already, exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    match args.command {
        ConfigCommand::Check { config, json } => check(&config, json),
    }
}

fn check(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let report = crate::config::check::check_file(path);
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "file": report.file,
            "ok": report.is_ok(),
            "errors": report.errors,
            "warnings": report.warnings,
            "config": report.config,
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        if let Some(config) = &report.config {
            writeln!(
                out,
                "# the effective configuration of {}, defaults filled in",
                path.display()
            )?;
            write!(out, "{}", toml::to_string(config)?)?;
        }
        out.flush()?;
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    if !report.is_ok() {
        bail!(
            "{}: {} error(s): the daemon would not start",
            path.display(),
            report.errors.len()
        );
    }
    if !json {
        eprintln!(
            "{}: ok, {} warning(s)",
            path.display(),
            report.warnings.len()
        );
    }
    Ok(())
}
