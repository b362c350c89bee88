//! `smsgate backup` and `smsgate restore`: thin over `store::backup`. A backup works while the
//! daemon runs; a restore refuses while it does (the daemon's lock file beside the database).
//!
//! What must always hold: a backup or restore that printed success left a checked file (integrity
//! check and audit log verify passed); a failed one left the database as it was; pruning
//! (`--keep`) only removes older backups after the new one passed its checks.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::admin::DatabaseOpts;
use super::BadInput;
use crate::store::backup as sb;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Write the backup to this file (which must not exist).
    #[arg(long, conflicts_with_all = ["to_dir", "keep"])]
    pub to: Option<PathBuf>,
    /// Write smsgate-<UTC time>.db into this directory (default: [backup] dir of --config).
    #[arg(long)]
    pub to_dir: Option<PathBuf>,
    /// Keep the newest N backups in the directory (default: [backup] keep of --config).
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,
    /// Print what was written and checked as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DatabaseOpts,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore.
    #[arg(long)]
    pub from: PathBuf,
    /// Print what was restored as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DatabaseOpts,
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    if args.keep == Some(0) {
        return Err(BadInput("--keep must be at least 1".into()).into());
    }
    let db = args.db.path()?;
    let (dest, prune) = match args.to {
        Some(file) => (file, None),
        None => {
            let (dir, keep) = match (args.to_dir, args.keep) {
                (Some(dir), Some(keep)) => (dir, keep),
                (dir, keep) => {
                    let config = crate::config::Config::load(&args.db.config)?;
                    (
                        dir.unwrap_or(config.backup.dir),
                        keep.unwrap_or(config.backup.keep),
                    )
                }
            };
            if !dir.is_dir() {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let name = format!(
                "{}{}{}",
                sb::DIR_PREFIX,
                sb::stamp(jiff::Timestamp::now()),
                sb::DIR_SUFFIX
            );
            (dir.join(name), Some((dir, keep)))
        }
    };
    let checked = sb::backup(&db, &dest)?;
    let removed = match prune {
        Some((dir, keep)) => sb::prune(&dir, keep as usize)?,
        None => Vec::new(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "backup": checked, "removed": removed })
        );
    } else {
        println!(
            "backup {}: {} bytes, schema v{}, {} messages, integrity ok, audit log intact: {} \
             records",
            checked.file.display(),
            checked.bytes,
            checked.schema_version,
            checked.messages,
            checked.audit_records
        );
        for r in removed {
            println!("removed old backup {}", r.display());
        }
    }
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let db = args.db.path()?;
    let restored = sb::restore(&args.from, &db, jiff::Timestamp::now())?;
    if args.json {
        println!("{}", serde_json::to_string(&restored)?);
    } else {
        if let Some(aside) = &restored.kept_aside {
            println!("the database that was there is kept as {}", aside.display());
        }
        let c = &restored.check;
        println!(
            "restored {} from {}: schema v{}, {} messages, integrity ok, audit log intact: {} \
             records",
            db.display(),
            args.from.display(),
            c.schema_version,
            c.messages,
            c.audit_records
        );
    }
    Ok(())
}
