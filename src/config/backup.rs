//! `[backup]`: where the scheduled `smsgate backup` writes and how many backups it keeps.
//!
//! What must hold: `keep` is at least 1 (the backup just made is kept; checked by
//! [`super::Config::validate`]); unknown keys are errors.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[backup]`: where `smsgate backup` (with neither `--to` nor `--to-dir`, as the daily
/// smsgate-backup.timer runs it) writes, and how many of its backups it keeps there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    pub dir: PathBuf,
    /// The newest this many `smsgate-*.db` files in `dir` are kept; older ones are removed
    /// after a new backup has passed its checks.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: PathBuf::from("/var/lib/smsgate/backups"),
            keep: 14,
        }
    }
}
