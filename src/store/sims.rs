//! SIMs: identity across ports and restarts, health, rest, quota overrides, and the per-SIM send
//! counts the quotas are enforced on.
//!
//! What must always hold: a SIM is one row, found by ICCID (or by IMSI when the modem cannot
//! read the ICCID), whatever port it shows up on; a port holds at most one SIM; send counts
//! come from `send_attempts` rows committed at claim time, so they survive restarts.

use crate::store::CachedSql;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, OptionalExtension};

use super::{ms, ts_opt, SimId, Store, StoreError};
use crate::ids::before;
use crate::number::{self, Carrier};
use crate::scheduler::{Quota, SimSlot};

/// How a SIM identifies itself; at least one of ICCID and IMSI is needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimIdentity {
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub own_number: Option<String>,
}

/// A modem's report on its SIM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimHealth {
    pub healthy: bool,
    pub registered: bool,
    pub signal_dbm: Option<i32>,
    pub error: Option<String>,
}

/// Per-SIM quota overrides; `None` keeps the daemon's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimQuota {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    pub min_interval: Option<SignedDuration>,
}

impl SimQuota {
    /// The effective quota over `defaults`.
    pub fn over(&self, defaults: Quota) -> Quota {
        Quota {
            per_minute: self.per_minute.unwrap_or(defaults.per_minute),
            per_hour: self.per_hour.unwrap_or(defaults.per_hour),
            per_day: self.per_day.unwrap_or(defaults.per_day),
            min_interval: self.min_interval.unwrap_or(defaults.min_interval),
        }
    }
}

/// A SIM as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecord {
    pub id: SimId,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub own_number: Option<String>,
    pub carrier: Carrier,
    pub port: Option<String>,
    pub healthy: bool,
    pub registered: bool,
    pub signal_dbm: Option<i32>,
    pub consecutive_errors: u32,
    pub last_error: Option<String>,
    pub rested_until: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub quota: SimQuota,
}

/// Sends (claims) of one SIM in the rolling windows ending now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentCounts {
    pub minute: u32,
    pub hour: u32,
    pub day: u32,
}

fn clean(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

const SIM_COLUMNS: &str = "id, iccid, imsi, own_number, carrier, port, healthy, registered,
    signal_dbm, consecutive_errors, last_error, rested_until, last_used_at, quota_per_minute,
    quota_per_hour, quota_per_day, min_interval_ms";

fn sim_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SimRecord> {
    Ok(SimRecord {
        id: SimId(r.get(0)?),
        iccid: r.get(1)?,
        imsi: r.get(2)?,
        own_number: r.get(3)?,
        carrier: Carrier::from_name(&r.get::<_, String>(4)?),
        port: r.get(5)?,
        healthy: r.get(6)?,
        registered: r.get(7)?,
        signal_dbm: r.get(8)?,
        consecutive_errors: r.get(9)?,
        last_error: r.get(10)?,
        rested_until: ts_opt(r.get(11)?),
        last_used_at: ts_opt(r.get(12)?),
        quota: SimQuota {
            per_minute: r.get(13)?,
            per_hour: r.get(14)?,
            per_day: r.get(15)?,
            min_interval: r
                .get::<_, Option<i64>>(16)?
                .map(SignedDuration::from_millis),
        },
    })
}

impl Store {
    /// Finds or creates the SIM with this identity and records that it is now on `port`.
    /// Another SIM that was on the port is detached from it.
    pub fn upsert_sim(
        &mut self,
        identity: &SimIdentity,
        port: &str,
        now: Timestamp,
    ) -> Result<SimId, StoreError> {
        let iccid = clean(&identity.iccid).map(str::to_owned);
        let imsi = clean(&identity.imsi).map(str::to_owned);
        let own = clean(&identity.own_number).map(str::to_owned);
        if iccid.is_none() && imsi.is_none() {
            return Err(StoreError::Invalid(
                "a SIM needs an ICCID or an IMSI".into(),
            ));
        }
        let carrier = imsi
            .as_deref()
            .map(number::carrier_of_imsi)
            .unwrap_or(Carrier::Unknown);
        self.transaction(|tx| {
            let by_iccid: Option<i64> = match &iccid {
                Some(c) => tx
                    .query_row("SELECT id FROM sims WHERE iccid = ?1", [c], |r| r.get(0))
                    .optional()?,
                None => None,
            };
            // Without an ICCID match, an IMSI-only row (or, when we have no ICCID, any row with
            // this IMSI) is the same SIM.
            let by_imsi: Option<i64> = match (&imsi, by_iccid) {
                (Some(i), None) => tx
                    .query_row(
                        "SELECT id FROM sims WHERE imsi = ?1 AND (iccid IS NULL OR ?2 IS NULL)
                         ORDER BY id LIMIT 1",
                        params![i, iccid],
                        |r| r.get(0),
                    )
                    .optional()?,
                _ => None,
            };
            tx.execute_cached("UPDATE sims SET port = NULL WHERE port = ?1", [port])?;
            let id = match by_iccid.or(by_imsi) {
                Some(id) => {
                    tx.execute_cached(
                        "UPDATE sims SET iccid = COALESCE(?2, iccid), imsi = COALESCE(?3, imsi),
                             own_number = COALESCE(?4, own_number),
                             carrier = CASE WHEN ?5 = 'unknown' THEN carrier ELSE ?5 END,
                             port = ?6, last_seen_at = ?7
                         WHERE id = ?1",
                        params![id, iccid, imsi, own, carrier.as_str(), port, ms(now)],
                    )?;
                    id
                }
                None => {
                    tx.execute_cached(
                        "INSERT INTO sims (iccid, imsi, own_number, carrier, port, first_seen_at,
                             last_seen_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        params![iccid, imsi, own, carrier.as_str(), port, ms(now)],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            tracing::info!(sim = id, port, carrier = %carrier, "SIM on port");
            Ok(SimId(id))
        })
    }

    /// The modem on `port` went away: its SIM is no longer on a port nor ready.
    pub fn detach_port(&mut self, port: &str) -> Result<(), StoreError> {
        self.conn.execute_cached(
            "UPDATE sims SET port = NULL, healthy = 0, registered = 0 WHERE port = ?1",
            [port],
        )?;
        Ok(())
    }

    /// Records a modem's health report on its SIM.
    pub fn set_sim_health(
        &mut self,
        sim: SimId,
        health: &SimHealth,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let n = self.conn.execute_cached(
            "UPDATE sims SET healthy = ?2, registered = ?3, signal_dbm = ?4,
                 last_error = COALESCE(?5, last_error), last_seen_at = ?6
             WHERE id = ?1",
            params![
                sim.0,
                health.healthy,
                health.registered,
                health.signal_dbm,
                health.error,
                ms(now)
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchSim(sim.0));
        }
        Ok(())
    }

    /// Sets (or clears, with `None` fields) a SIM's quota overrides.
    pub fn set_sim_quota(&mut self, sim: SimId, quota: &SimQuota) -> Result<(), StoreError> {
        let n = self.conn.execute_cached(
            "UPDATE sims SET quota_per_minute = ?2, quota_per_hour = ?3, quota_per_day = ?4,
                 min_interval_ms = ?5
             WHERE id = ?1",
            params![
                sim.0,
                quota.per_minute,
                quota.per_hour,
                quota.per_day,
                quota.min_interval.map(|d| d.as_millis() as i64)
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchSim(sim.0));
        }
        Ok(())
    }

    /// Ends a SIM's rest now (operator) and clears its error streak.
    pub fn unrest_sim(&mut self, sim: SimId) -> Result<(), StoreError> {
        self.conn.execute_cached(
            "UPDATE sims SET rested_until = NULL, consecutive_errors = 0 WHERE id = ?1",
            [sim.0],
        )?;
        Ok(())
    }

    /// One SIM.
    pub fn sim(&self, sim: SimId) -> Result<Option<SimRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {SIM_COLUMNS} FROM sims WHERE id = ?1"),
                [sim.0],
                sim_row,
            )
            .optional()?)
    }

    /// Every SIM ever seen, by id.
    pub fn sims(&self) -> Result<Vec<SimRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {SIM_COLUMNS} FROM sims ORDER BY id"))?;
        let rows = stmt.query_map([], sim_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Start times of a SIM's sends since `since`, ascending.
    pub fn sends_since(&self, sim: SimId, since: Timestamp) -> Result<Vec<Timestamp>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at FROM send_attempts WHERE sim_id = ?1 AND at > ?2 ORDER BY at",
        )?;
        let rows = stmt.query_map(params![sim.0, ms(since)], |r| r.get::<_, i64>(0))?;
        Ok(rows.map(|r| r.map(super::ts)).collect::<Result<_, _>>()?)
    }

    /// A SIM's sends in the last minute, hour and day.
    pub fn sent_counts(&self, sim: SimId, now: Timestamp) -> Result<SentCounts, StoreError> {
        let count = |window: SignedDuration| -> Result<u32, StoreError> {
            Ok(self.conn.query_row_cached(
                "SELECT COUNT(*) FROM send_attempts WHERE sim_id = ?1 AND at > ?2 AND at <= ?3",
                params![sim.0, ms(before(now, window)), ms(now)],
                |r| r.get(0),
            )?)
        };
        Ok(SentCounts {
            minute: count(SignedDuration::from_mins(1))?,
            hour: count(SignedDuration::from_hours(1))?,
            day: count(SignedDuration::from_hours(24))?,
        })
    }

    /// The scheduler's view of every SIM. `busy` is false: only the runner knows which modem
    /// has a send in flight. A SIM on no port is not ready.
    pub fn sim_slots(&self, now: Timestamp, defaults: Quota) -> Result<Vec<SimSlot>, StoreError> {
        let mut out = Vec::new();
        for s in self.sims()? {
            out.push(SimSlot {
                id: s.id,
                carrier: s.carrier,
                ready: s.healthy && s.registered && s.port.is_some(),
                busy: false,
                rested_until: s.rested_until,
                last_used: s.last_used_at,
                sends: self.sends_since(s.id, before(now, SignedDuration::from_hours(24)))?,
                quota: s.quota.over(defaults),
            });
        }
        Ok(out)
    }

    /// Forgets send attempts older than `before` (they no longer count for any quota).
    pub fn prune_send_attempts(&mut self, before: Timestamp) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM send_attempts WHERE at < ?1", [ms(before)])?)
    }
}
