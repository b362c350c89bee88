//! The daemon's side of the modem bank: which modem actors run on which ports, which SIM each
//! carries, whether it is free; what a running modem's events mean (the [`BankHost`] the bank's
//! supervisors hand each modem to; opening, restarting with back-off and hot-plug are
//! `bank::supervise`'s); inbound SMS and status reports taken from the modems into the store.
//!
//! What must always hold: an inbound PDU is acknowledged to its modem (which then deletes it from
//! the SIM) only after the store committed it; a SIM is `busy` from its claim until its send's
//! outcome is committed; a port that vanished has no slot, so the scheduler cannot pick it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch, Notify};

use super::Shared;
use crate::api::types::ModemState;
use crate::modem::{Health, Identity, InboundPdu, ModemConfig, ModemEvent, ModemHandle};
use crate::pdu::{Body, Sms, Tpdu};
use crate::store::{
    Concat, InboundPart, SimHealth, SimId, SimIdentity, StatusReportIn, StoreError,
};

/// One port's modem as the daemon sees it.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub handle: ModemHandle,
    pub state: ModemState,
    pub sim: Option<SimId>,
    pub identity: Option<Identity>,
    pub health: Health,
    pub busy: bool,
    pub last_error: Option<String>,
}

impl Slot {
    /// Can take a part now (registration unknown counts as yes: the send itself will tell).
    pub fn ready(&self) -> bool {
        matches!(self.state, ModemState::Ready | ModemState::Sending)
            && self.sim.is_some()
            && (self.health.registration.is_none() || self.health.registered())
    }
}

/// Counts for STATUS= and /v1/health.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Summary {
    pub total: usize,
    pub ready: usize,
    pub busy: usize,
}

/// Every port's slot, keyed by port path.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Mutex<BTreeMap<String, Slot>>,
    idle: Notify,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> Vec<(String, Slot)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn summary(&self) -> Summary {
        let slots = self.lock();
        Summary {
            total: slots.len(),
            ready: slots.values().filter(|s| s.ready()).count(),
            busy: slots.values().filter(|s| s.busy).count(),
        }
    }

    /// The port and handle of the modem carrying `sim`, if it is ready and free: marks it busy.
    pub fn take_for_send(&self, sim: SimId) -> Option<(String, ModemHandle)> {
        let mut slots = self.lock();
        let (port, slot) = slots
            .iter_mut()
            .find(|(_, s)| s.sim == Some(sim) && s.ready() && !s.busy)?;
        slot.busy = true;
        slot.state = ModemState::Sending;
        Some((port.clone(), slot.handle.clone()))
    }

    /// The send on `port` is over (its outcome is committed).
    pub fn release(&self, port: &str, error: Option<String>) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get_mut(port) {
            slot.busy = false;
            if slot.state == ModemState::Sending {
                slot.state = ModemState::Ready;
            }
            if error.is_some() {
                slot.last_error = error;
            }
        }
        if !slots.values().any(|s| s.busy) {
            self.idle.notify_waiters();
        }
    }

    /// The send on `port` broke on the link: the actor now probes (maybe reopens) its modem,
    /// and a part handed to it meanwhile would sit claimed (`sending`) for the whole recovery,
    /// tens of seconds (found by the e2e hang test). Not ready until [`Registry::link_back`].
    pub fn link_trouble(&self, port: &str) {
        self.update(port, |s| {
            if matches!(s.state, ModemState::Ready | ModemState::Sending) {
                s.state = ModemState::Starting;
            }
        });
    }

    /// The actor answers again after [`Registry::link_trouble`].
    pub fn link_back(&self, port: &str) {
        self.update(port, |s| {
            if s.state == ModemState::Starting && s.sim.is_some() {
                s.state = ModemState::Ready;
            }
        });
    }

    /// SIM id -> (ready, busy) for every port with a known SIM (the port that drives it; a
    /// duplicate port of the same SIM is not asked).
    pub fn sim_states(&self) -> BTreeMap<SimId, (bool, bool)> {
        self.lock()
            .values()
            .filter(|s| s.state != ModemState::Duplicate)
            .filter_map(|s| s.sim.map(|id| (id, (s.ready(), s.busy))))
            .collect()
    }

    /// A modem on `port` identified itself: if another live port already carries the same SIM
    /// (same ICCID, else IMSI), returns that port and marks this one a duplicate; otherwise
    /// records the identity, so a later port of the same SIM finds it. One check under one
    /// lock, so two ports of one module coming up together cannot both win.
    fn claim_identity(&self, port: &str, identity: &Identity) -> Option<String> {
        let key = identity.iccid.as_ref().or(identity.imsi.as_ref())?;
        let mut slots = self.lock();
        let holder = slots
            .iter()
            .find(|(p, s)| {
                p.as_str() != port
                    && !matches!(
                        s.state,
                        ModemState::Duplicate | ModemState::Gone | ModemState::Failed
                    )
                    && s.identity
                        .as_ref()
                        .and_then(|i| i.iccid.as_ref().or(i.imsi.as_ref()))
                        == Some(key)
            })
            .map(|(p, _)| p.clone());
        if let Some(slot) = slots.get_mut(port) {
            slot.identity = Some(identity.clone());
            if let Some(other) = &holder {
                slot.state = ModemState::Duplicate;
                slot.last_error = Some(format!("same SIM as {other}: not used"));
            }
        }
        holder
    }

    /// The port that drove a SIM went away: a duplicate port of the same SIM (if any) takes
    /// over. Returns it with the identity to register.
    fn promote_duplicate(&self, gone: &Slot) -> Option<(String, Identity)> {
        let key = gone.identity.as_ref()?;
        let key = key.iccid.as_ref().or(key.imsi.as_ref())?;
        let mut slots = self.lock();
        let (port, slot) = slots.iter_mut().find(|(_, s)| {
            s.state == ModemState::Duplicate
                && s.identity
                    .as_ref()
                    .and_then(|i| i.iccid.as_ref().or(i.imsi.as_ref()))
                    == Some(key)
        })?;
        slot.state = ModemState::Starting;
        slot.last_error = None;
        Some((port.clone(), slot.identity.clone()?))
    }

    /// The SIM whose inbound messages, reports and late answers arrive on `port`: its own, or
    /// for a duplicate port the SIM of the port that drives it (looked up now: the driving
    /// port may have registered its SIM after this one was found a duplicate). URCs of a
    /// two-port module often come on the port that does not send.
    pub fn event_sim(&self, port: &str) -> Option<SimId> {
        let slots = self.lock();
        let slot = slots.get(port)?;
        if slot.state != ModemState::Duplicate {
            return slot.sim;
        }
        let key = slot.identity.as_ref()?;
        let key = key.iccid.as_ref().or(key.imsi.as_ref())?;
        slots
            .values()
            .filter(|s| s.state != ModemState::Duplicate)
            .find(|s| {
                s.identity
                    .as_ref()
                    .and_then(|i| i.iccid.as_ref().or(i.imsi.as_ref()))
                    == Some(key)
            })
            .and_then(|s| s.sim)
    }

    /// The SIM id of the port that drives the same SIM as the duplicate `port`.
    fn sim_of_port(&self, port: &str) -> Option<SimId> {
        self.lock().get(port).and_then(|s| s.sim)
    }

    fn update(&self, port: &str, f: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self.lock().get_mut(port) {
            f(slot);
        }
    }

    fn insert(&self, port: &str, handle: ModemHandle) {
        self.lock().insert(
            port.to_string(),
            Slot {
                handle,
                state: ModemState::Starting,
                sim: None,
                identity: None,
                health: Health::default(),
                busy: false,
                last_error: None,
            },
        );
    }

    fn remove(&self, port: &str) -> Option<Slot> {
        let slot = self.lock().remove(port);
        self.idle.notify_waiters();
        slot
    }

    /// Resolves once no send is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if !self.lock().values().any(|s| s.busy) {
                return;
            }
            notified.await;
        }
    }

    /// Asks every modem actor to stop, all at once, waiting at most `bound` for them.
    pub async fn shutdown_all(&self, bound: Duration) {
        let handles: Vec<ModemHandle> = self.lock().values().map(|s| s.handle.clone()).collect();
        let mut set = tokio::task::JoinSet::new();
        for h in handles {
            set.spawn(async move { h.shutdown(bound).await });
        }
        let _ =
            tokio::time::timeout(bound, async { while set.join_next().await.is_some() {} }).await;
    }
}

/// The daemon's side of the bank's supervision (`bank::supervise`): each running modem gets a
/// slot, its events are pumped into the store, and when it ends its SIM is detached (or handed
/// to a duplicate port of the same SIM).
pub(crate) struct BankHost(pub Arc<Shared>);

impl crate::bank::Host for BankHost {
    fn modem_config(&self, _port: &str) -> ModemConfig {
        self.0.modem_config.clone()
    }

    async fn run_modem(
        &self,
        port: &str,
        handle: ModemHandle,
        events: mpsc::Receiver<ModemEvent>,
        stop: &mut watch::Receiver<bool>,
    ) -> String {
        let shared = &self.0;
        shared.modems.insert(port, handle);
        let reason = pump(shared, port, events, stop).await;
        if let Some(slot) = shared.modems.remove(port) {
            if slot.sim.is_some() && slot.state != ModemState::Duplicate {
                let p = port.to_string();
                let _ = shared.db.call(move |s| s.detach_port(&p)).await;
                if let Some((other, identity)) = shared.modems.promote_duplicate(&slot) {
                    tracing::info!(port = %other, "second port of the SIM takes over");
                    let sim = register_sim(shared, &other, &identity).await;
                    shared.modems.update(&other, |s| {
                        s.sim = sim;
                        s.state = if sim.is_some() {
                            ModemState::Ready
                        } else {
                            ModemState::Failed
                        };
                    });
                }
            }
        }
        shared.wake.notify_one();
        reason
    }
}

/// Handles one modem's events until it stops; returns why.
async fn pump(
    shared: &Arc<Shared>,
    port: &str,
    mut events: mpsc::Receiver<ModemEvent>,
    stop: &mut watch::Receiver<bool>,
) -> String {
    loop {
        let event = tokio::select! {
            ev = events.recv() => ev,
            _ = stop.changed() => return "daemon stopping".into(),
        };
        let Some(event) = event else {
            return "modem actor ended".into();
        };
        match event {
            ModemEvent::Ready(identity) => {
                if let Some(holder) = shared.modems.claim_identity(port, &identity) {
                    // Many modules expose two AT ports (Quectel ttyUSB2/3): one SIM driven
                    // from both would break pacing and quotas. This port is only listed; its
                    // inbound messages and reports still count for the SIM.
                    tracing::warn!(port, %holder, "second port of a SIM already driven: not used for sending");
                    let sim = shared.modems.sim_of_port(&holder);
                    shared.modems.update(port, |s| s.sim = sim);
                    continue;
                }
                let sim = register_sim(shared, port, &identity).await;
                shared.modems.update(port, |s| {
                    s.sim = sim;
                    s.identity = Some(identity);
                    s.state = if s.state == ModemState::Duplicate {
                        ModemState::Duplicate
                    } else if sim.is_some() {
                        ModemState::Ready
                    } else {
                        ModemState::Failed
                    };
                });
                shared.wake.notify_one();
            }
            ModemEvent::HealthChanged(health) => {
                let sim = shared.modems.lock().get(port).and_then(|s| s.sim);
                if let Some(sim) = sim {
                    let h = SimHealth {
                        healthy: true,
                        registered: health.registration.is_none() || health.registered(),
                        signal_dbm: health.dbm.map(i32::from),
                        error: None,
                    };
                    let _ = shared
                        .db
                        .call(move |s| s.set_sim_health(sim, &h, Timestamp::now()))
                        .await;
                }
                shared.modems.update(port, |s| s.health = health);
                shared.wake.notify_one();
            }
            ModemEvent::RegistrationLost => {
                shared.modems.update(port, |s| {
                    s.health.registration = Some(crate::at::RegStatus::Searching);
                    s.last_error = Some("registration lost".into());
                });
            }
            ModemEvent::RegistrationRegained => {
                shared.modems.update(port, |s| {
                    s.health.registration = Some(crate::at::RegStatus::Home);
                });
                shared.wake.notify_one();
            }
            ModemEvent::LateReference { tp_mr } => {
                let sim = shared.modems.event_sim(port);
                if let Some(sim) = sim {
                    match shared
                        .db
                        .call(move |s| s.settle_late_reference(sim, tp_mr, Timestamp::now()))
                        .await
                    {
                        Ok(Some(part)) => {
                            tracing::info!(
                                port,
                                part = part.0,
                                "late +CMGS answer settled an unknown part"
                            )
                        }
                        Ok(None) => tracing::info!(
                            port,
                            mr = tp_mr,
                            "late +CMGS answer matched no unknown part"
                        ),
                        Err(e) => tracing::error!(port, "late +CMGS answer not recorded: {e}"),
                    }
                }
            }
            ModemEvent::Restarted => {
                shared.modems.update(port, |s| {
                    if s.sim.is_some() && !s.busy && s.state != ModemState::Duplicate {
                        s.state = ModemState::Ready;
                    }
                });
                shared.wake.notify_one();
            }
            ModemEvent::Inbound(pdu) => take_inbound(shared, port, pdu).await,
            ModemEvent::StatusReport(pdu) => take_report(shared, port, pdu).await,
            ModemEvent::Gone(reason) => return format!("port gone: {reason}"),
            ModemEvent::Failed(reason) => {
                shared
                    .modems
                    .update(port, |s| s.last_error = Some(reason.clone()));
                return format!("failed: {reason}");
            }
        }
    }
}

/// Records the SIM (by ICCID/IMSI) as being on `port`, with its configured quota overrides.
async fn register_sim(shared: &Arc<Shared>, port: &str, identity: &Identity) -> Option<SimId> {
    let sim_identity = SimIdentity {
        iccid: identity.iccid.clone(),
        imsi: identity.imsi.clone(),
        own_number: identity.own_number.clone(),
    };
    if sim_identity.iccid.is_none() && sim_identity.imsi.is_none() {
        tracing::warn!(
            port,
            "modem reports neither ICCID nor IMSI: not used for sending"
        );
        return None;
    }
    let quota = identity
        .iccid
        .as_deref()
        .filter(|i| shared.tunables().quota.sims.contains_key(*i))
        .map(|i| shared.tunables().quota.for_sim(i));
    let port = port.to_string();
    let result = shared
        .db
        .call(move |s| {
            let id = s.upsert_sim(&sim_identity, &port, Timestamp::now())?;
            if let Some(q) = quota {
                s.set_sim_quota(
                    id,
                    &crate::store::SimQuota {
                        per_minute: Some(q.per_minute),
                        per_hour: Some(q.per_hour),
                        per_day: Some(q.per_day),
                        min_interval: Some(q.min_interval),
                    },
                )?;
            }
            Ok(id)
        })
        .await;
    match result {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::error!("cannot record SIM: {e}");
            None
        }
    }
}

/// Parses a PDU from a modem: with an SMSC part (the usual), or a bare TPDU (some +CDS lines).
fn parse_any(hex: &str) -> Result<Sms, crate::pdu::PduError> {
    Sms::parse_hex(hex).or_else(|first| {
        crate::pdu::decode_hex(hex)
            .and_then(|bytes| Tpdu::parse(&bytes))
            .map(|tpdu| Sms { smsc: None, tpdu })
            .map_err(|_| first)
    })
}

/// Stores a received SMS, then lets the modem delete it. An undecodable PDU is stored raw (with
/// the error as its text) rather than lost.
async fn take_inbound(shared: &Arc<Shared>, port: &str, pdu: InboundPdu) {
    let sim = shared.modems.event_sim(port);
    let part = match parse_any(&pdu.pdu_hex) {
        Ok(Sms {
            tpdu: Tpdu::Deliver(d),
            ..
        }) => {
            let concat = d
                .user_data
                .udh
                .as_ref()
                .and_then(|u| u.concat_info())
                .map(|c| Concat {
                    reference: c.reference,
                    total: c.total,
                    seq: c.seq,
                });
            let text = match &d.user_data.body {
                Body::Text(t) => t.clone(),
                Body::Data(bytes) => format!("[8-bit data {}]", crate::pdu::encode_hex(bytes)),
            };
            InboundPart {
                sim,
                sender: d.sender.to_string(),
                text,
                concat: concat.filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total),
                scts: d.scts.to_timestamp(),
                raw_pdu: pdu.pdu_hex.clone(),
            }
        }
        Ok(other) => InboundPart {
            sim,
            sender: String::new(),
            text: format!("[unexpected {} PDU]", other.tpdu.kind()),
            concat: None,
            scts: None,
            raw_pdu: pdu.pdu_hex.clone(),
        },
        Err(e) => InboundPart {
            sim,
            sender: String::new(),
            text: format!("[undecodable PDU: {e}]"),
            concat: None,
            scts: None,
            raw_pdu: pdu.pdu_hex.clone(),
        },
    };
    let masked = crate::number::mask(&part.sender);
    // An unsubscribe word (a single-part reply) opts its sender out in the same transaction
    // chain as the inbox row: stored first, then the opt-out, both before the SIM's copy goes.
    let optout = shared.contract().optout;
    let reply = (part.concat.is_none() && !part.sender.is_empty())
        .then(|| (part.sender.clone(), part.text.clone()));
    match write_durably(shared, "inbound SMS", move |s| {
        let stored = s.store_inbound(&part, Timestamp::now())?;
        if let Some((sender, text)) = &reply {
            super::contract::inbound_opt_out(s, sender, text, &optout, Timestamp::now())?;
        }
        Ok(stored)
    })
    .await
    {
        Ok(outcome) => {
            tracing::info!(port, from = %masked, ?outcome, "inbound SMS stored");
            if let Err(e) = pdu.ack.ack().await {
                tracing::warn!(
                    port,
                    "inbound SMS stored but not yet deleted from the SIM: {e}"
                );
            }
        }
        Err(e) => tracing::error!(
            port,
            "inbound SMS not stored, left on the SIM for the next start: {e}"
        ),
    }
}

/// Applies a status report to the part it is about, then acknowledges it.
async fn take_report(shared: &Arc<Shared>, port: &str, pdu: InboundPdu) {
    let sim = shared.modems.event_sim(port);
    let report = match parse_any(&pdu.pdu_hex) {
        Ok(Sms {
            tpdu: Tpdu::StatusReport(r),
            ..
        }) => r,
        Ok(other) => {
            tracing::warn!(
                port,
                kind = other.tpdu.kind(),
                "status report slot carried another PDU"
            );
            let _ = pdu.ack.ack().await;
            return;
        }
        Err(e) => {
            tracing::warn!(port, "undecodable status report ignored: {e}");
            let _ = pdu.ack.ack().await;
            return;
        }
    };
    let Some(sim) = sim else {
        let _ = pdu.ack.ack().await;
        return;
    };
    let input = StatusReportIn {
        sim,
        tp_mr: report.message_reference,
        recipient: report.recipient.to_string(),
        status: report.status.0,
        raw_pdu: pdu.pdu_hex.clone(),
    };
    match write_durably(shared, "status report", move |s| {
        s.apply_status_report(&input, Timestamp::now())
    })
    .await
    {
        Ok(outcome) => {
            tracing::debug!(port, ?outcome, "status report applied");
            let _ = pdu.ack.ack().await;
        }
        Err(e) => tracing::error!(port, "status report not stored: {e}"),
    }
}

/// Stores what a modem handed over (an inbound SMS, a status report), retrying with back-off
/// while the store cannot write (disk full, I/O error): a PDU routed directly (+CMT, +CDS)
/// exists nowhere else, so giving up would lose it. The modem's events wait meanwhile (its
/// sends are paused anyway). Gives up only when the daemon stops, or on an error that is not
/// about writing.
pub(super) async fn write_durably<T, F>(
    shared: &Arc<Shared>,
    what: &str,
    f: F,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: Fn(&mut crate::store::Store) -> Result<T, StoreError> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let mut attempt = 0usize;
    loop {
        let g = Arc::clone(&f);
        match shared.db.call(move |s| g(s)).await {
            Ok(v) => {
                if attempt > 0 {
                    shared.store_fault(None);
                    tracing::info!(what, attempt, "stored after retrying");
                }
                return Ok(v);
            }
            Err(e) if !is_write_failure(&e) => return Err(e),
            Err(e) => {
                shared.store_fault(Some(format!("{what} not written: {e}")));
                if shared.is_stopping() && attempt >= super::WRITE_RETRY.len() {
                    return Err(e);
                }
                let delay = super::write_retry_delay(attempt);
                tracing::error!(what, ?delay, "not written, retrying: {e}");
                attempt += 1;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Whether a store error is a failure to write (worth retrying) rather than a refusal.
fn is_write_failure(e: &StoreError) -> bool {
    use rusqlite::ErrorCode as C;
    e.is_storage_full()
        || matches!(
            e,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.code,
                    C::SystemIoFailure | C::DatabaseBusy | C::DatabaseLocked | C::ReadOnly
                        | C::CannotOpen | C::DiskFull
                )
        )
}
