//! The scheduler's thin runner: read the SIM slots and due parts, ask `scheduler::plan`, claim
//! each assigned part (committed) and hand it to its modem; then sleep until woken or until the
//! time the plan asked for. Each send's outcome is committed before its SIM is released.
//!
//! What must always hold: no AT+CMGS without a committed claim; a part whose PDU left the modem
//! without a confirmation becomes `unknown` and is never resent automatically; a device error is
//! classified (permanent for the message, transient for the modem, SIM problem) by the AT layer.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::watch;

use super::Shared;
use crate::modem::{LinkError, ModemHandle};
use crate::scheduler::{self, FailureKind};
use crate::store::ClaimedPart;

/// How many due parts one planning round looks at (the rest wait for the next round).
const DUE_WINDOW: u32 = 2048;

pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() || shared.is_stopping() {
            return;
        }
        let wake_at = match plan_round(&shared).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("scheduler round failed: {e}");
                Some(Timestamp::now() + jiff::SignedDuration::from_secs(1))
            }
        };
        let sleep = match wake_at {
            Some(at) => {
                let ms = (at - Timestamp::now()).as_millis().max(0) as u64;
                tokio::time::Duration::from_millis(ms)
            }
            None => tokio::time::Duration::from_secs(3600),
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One planning round; returns when to plan again if nothing wakes the runner sooner.
async fn plan_round(shared: &Arc<Shared>) -> Result<Option<Timestamp>, crate::store::StoreError> {
    let now = Timestamp::now();
    let defaults = shared.tunables().default_quota();
    let (mut slots, due) = shared
        .db
        .call(move |s| Ok((s.sim_slots(now, defaults)?, s.due_parts(DUE_WINDOW)?)))
        .await?;
    // The store knows quotas and rest; only the registry knows which modems are up and free.
    let live = shared.modems.sim_states();
    for slot in &mut slots {
        let (ready, busy) = live.get(&slot.id).copied().unwrap_or((false, false));
        slot.ready = ready;
        slot.busy = busy;
    }
    let plan = scheduler::plan(&slots, &due, now);
    if !plan.expired.is_empty() {
        let expired = shared.db.call(move |s| s.expire(now)).await?;
        tracing::info!(messages = expired.len(), "messages expired unsent");
    }
    for a in plan.assignments {
        if shared.is_stopping() {
            break;
        }
        let Some((port, handle)) = shared.modems.take_for_send(a.sim) else {
            continue;
        };
        match shared.db.call(move |s| s.claim(a.part, a.sim, now)).await {
            Ok(claimed) => {
                let shared = Arc::clone(shared);
                tokio::spawn(async move { send(shared, port, handle, claimed).await });
            }
            Err(e) => {
                tracing::warn!(part = a.part.0, "claim refused: {e}");
                shared.modems.release(&port, None);
            }
        }
    }
    Ok(plan.wake_at)
}

async fn send(shared: Arc<Shared>, port: String, handle: ModemHandle, part: ClaimedPart) {
    let more_follow = part.seq < part.total;
    let length = u16::try_from(part.cmgs_length).unwrap_or(u16::MAX);
    let result = handle.send_part(&part.pdu_hex, length, more_follow).await;
    if result.is_err() {
        // The actor recovers the modem before it reads its next request: no part for it until
        // it answers again (a Health request queues behind the recovery).
        shared.modems.link_trouble(&port);
        let (shared, port, handle) = (Arc::clone(&shared), port.clone(), handle.clone());
        tokio::spawn(async move {
            if handle.health().await.is_ok() {
                shared.modems.link_back(&port);
                shared.wake.notify_one();
            }
        });
    }
    let now = Timestamp::now();
    let id = part.part;
    let (outcome, error) = match result {
        Ok(Ok(mr)) => (
            shared.db.call(move |s| s.mark_sent(id, mr, now)).await,
            None,
        ),
        Ok(Err(device)) => {
            let kind = FailureKind::from(device.class());
            let text = device.to_string();
            let t = text.clone();
            (
                shared
                    .db
                    .call(move |s| s.mark_failed(id, &t, kind, now).map(|_| ()))
                    .await,
                Some(text),
            )
        }
        Err(link @ LinkError::Unconfirmed { .. }) => {
            // The PDU may have gone out: never resend on our own.
            let text = link.to_string();
            let t = text.clone();
            (
                shared.db.call(move |s| s.mark_unknown(id, &t, now)).await,
                Some(text),
            )
        }
        Err(link) => {
            // Nothing was sent (timeout before the payload, port gone, garbage): retry elsewhere.
            let text = link.to_string();
            let t = text.clone();
            (
                shared
                    .db
                    .call(move |s| {
                        s.mark_failed(id, &t, FailureKind::TransientForModem, now)
                            .map(|_| ())
                    })
                    .await,
                Some(text),
            )
        }
    };
    if let Err(e) = outcome {
        tracing::error!(part = id.0, "send outcome not recorded: {e}");
    }
    match &error {
        None => tracing::debug!(part = id.0, port = %port, "part sent"),
        Some(e) => tracing::info!(part = id.0, port = %port, "part not sent: {e}"),
    }
    shared.modems.release(&port, error);
    shared.wake.notify_one();
}
