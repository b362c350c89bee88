//! `[quota]` and `[quota.sims."ICCID"]`: the per-SIM send limits that keep each SIM inside what
//! its carrier tolerates, with per-ICCID overrides, and the check of one set of limits.
//!
//! What must hold: a SIM without overrides gets the `[quota]` defaults, an override replaces only
//! the keys it names; limits are non-zero and grow with their window (checked by `check_limits`,
//! called from [`super::Config::validate`]); unknown keys are errors.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::durations::{duration, duration_opt};

/// Per-SIM limits. Carriers suspend ordinary SIMs that send in bulk (DOMAIN.md); these keep each
/// SIM inside what its carrier tolerates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaLimits {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
    /// Least time between two parts sent by one SIM.
    #[serde(with = "duration")]
    pub min_interval: SignedDuration,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        QuotaLimits {
            per_minute: 10,
            per_hour: 200,
            per_day: 1000,
            min_interval: SignedDuration::from_secs(3),
        }
    }
}

/// One SIM's overrides, keyed by ICCID; absent keys take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaOverride {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    #[serde(with = "duration_opt")]
    pub min_interval: Option<SignedDuration>,
}

/// `[quota]` defaults, `[quota.sims."ICCID"]` overrides. (Not a flattened [`QuotaLimits`]:
/// serde's flatten loses both `deny_unknown_fields` and the error positions.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
    #[serde(with = "duration")]
    pub min_interval: SignedDuration,
    pub sims: BTreeMap<String, QuotaOverride>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        let d = QuotaLimits::default();
        QuotaConfig {
            per_minute: d.per_minute,
            per_hour: d.per_hour,
            per_day: d.per_day,
            min_interval: d.min_interval,
            sims: BTreeMap::new(),
        }
    }
}

impl QuotaConfig {
    /// The limits of a SIM without overrides.
    pub fn defaults(&self) -> QuotaLimits {
        QuotaLimits {
            per_minute: self.per_minute,
            per_hour: self.per_hour,
            per_day: self.per_day,
            min_interval: self.min_interval,
        }
    }

    /// The limits that apply to the SIM with this ICCID.
    pub fn for_sim(&self, iccid: &str) -> QuotaLimits {
        let d = self.defaults();
        match self.sims.get(iccid) {
            None => d,
            Some(o) => QuotaLimits {
                per_minute: o.per_minute.unwrap_or(d.per_minute),
                per_hour: o.per_hour.unwrap_or(d.per_hour),
                per_day: o.per_day.unwrap_or(d.per_day),
                min_interval: o.min_interval.unwrap_or(d.min_interval),
            },
        }
    }
}

pub(super) fn check_limits(prefix: &str, q: &QuotaLimits) -> Result<(), (String, String)> {
    for (key, value) in [
        ("per_minute", q.per_minute),
        ("per_hour", q.per_hour),
        ("per_day", q.per_day),
    ] {
        if value == 0 {
            return Err((
                format!("{prefix}.{key}"),
                "must be at least 1 (take the SIM out of the ports list to stop it)".into(),
            ));
        }
    }
    if q.per_minute > q.per_hour || q.per_hour > q.per_day {
        let culprit = if q.per_minute > q.per_hour {
            "per_minute"
        } else {
            "per_day"
        };
        return Err((
            format!("{prefix}.{culprit}"),
            format!(
                "limits must grow with the window: per_minute {} <= per_hour {} <= per_day {}",
                q.per_minute, q.per_hour, q.per_day
            ),
        ));
    }
    if q.min_interval.is_negative() {
        return Err((
            format!("{prefix}.min_interval"),
            "must not be negative".into(),
        ));
    }
    Ok(())
}
