//! `[audit]`: how long the send log is kept.
//!
//! What must hold: retention is never below [`MIN_AUDIT_RETENTION_DAYS`], the contract's 3 months
//! (checked by [`super::Config::validate`]); the default is MIIT Order 31's 5 months and more.

use serde::{Deserialize, Serialize};

/// The contract keeps send logs unmodified for at least 3 months (DOMAIN.md).
pub const MIN_AUDIT_RETENTION_DAYS: u32 = 90;

/// `[audit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days the send log is kept; at least 90 (the contract's 3 months). MIIT Order 31 asks 5
    /// months for commercial SMS, hence the default of 180.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 180,
        }
    }
}
