//! Read-only views the daemon's API needs beyond the message and SIM queries: lifetime totals
//! per SIM, and whether an account has messaged a number (which scopes its inbox).

use rusqlite::params;

use super::{SimId, Store, StoreError};

/// What one SIM has done since it was first seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimTotals {
    pub sent: u64,
    pub failed: u64,
    pub delivered: u64,
    pub received: u64,
}

impl Store {
    /// Parts sent (including those later delivered), failed and delivered on `sim`, and inbound
    /// messages it received.
    pub fn sim_totals(&self, sim: SimId) -> Result<SimTotals, StoreError> {
        let (sent, failed, delivered): (i64, i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(state IN ('sent', 'delivered')), 0),
                    COALESCE(SUM(state = 'failed'), 0),
                    COALESCE(SUM(state = 'delivered'), 0)
             FROM parts WHERE sim_id = ?1",
            params![sim.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let received: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM inbound WHERE sim_id = ?1",
            params![sim.0],
            |r| r.get(0),
        )?;
        let n = |v: i64| v.max(0) as u64;
        Ok(SimTotals {
            sent: n(sent),
            failed: n(failed),
            delivered: n(delivered),
            received: n(received),
        })
    }

    /// Whether `account` has ever addressed a message to `number` (any form: an inbound
    /// sender is compared by its [`crate::number::key`], which is how recipients are stored).
    pub fn account_messaged(&self, account: &str, number: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE account = ?1 AND recipient = ?2)",
            params![account, crate::number::key(number)],
            |r| r.get(0),
        )?)
    }
}
