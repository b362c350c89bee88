//! The scheduler's thin runner: read the SIM slots and due parts, ask `scheduler::plan`, claim
//! the round's assigned parts (one committed transaction) and hand each to its modem; then sleep
//! until woken or until the time the plan asked for. Each send's outcome is committed (outcomes
//! that finish together share one transaction: group commit) before its SIM is released.
//!
//! What must always hold: no AT+CMGS without a committed claim; a part whose PDU left the modem
//! without a confirmation becomes `unknown` and is never resent automatically; a device error is
//! classified (permanent for the message, transient for the modem, SIM problem) by the AT layer;
//! the runner is the only claimer, so its [`SendLog`] (every committed claim recorded) sees the
//! same sends as `send_attempts` and the quotas count exactly what they counted before.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

use super::Shared;
use crate::modem::{LinkError, ModemHandle};
use crate::scheduler::{self, FailureKind};
use crate::store::{ClaimedPart, SendLog, SendOutcome};

/// How many due parts one planning round looks at (the rest wait for the next round). Only
/// parts due now are read, so parts waiting for later never fill it.
const DUE_WINDOW: u32 = 2048;
/// The short window: this many due parts per free SIM, at least [`SHORT_WINDOW_MIN`].
const SHORT_WINDOW_PER_SIM: u32 = 8;
const SHORT_WINDOW_MIN: u32 = 64;

pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let outcomes = start_outcome_writer(shared.db.clone());
    let mut log = SendLog::default();
    loop {
        if *stop.borrow() || shared.is_stopping() {
            return;
        }
        let wake_at = match plan_round(&shared, &mut log, &outcomes).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("scheduler round failed: {e}");
                // Reload the send log from the store: a failed round may have lost it.
                log.clear();
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

/// One planning round; returns when to plan again if nothing wakes the runner sooner. `log`
/// holds the SIMs' recent send times between rounds (see [`SendLog`]).
async fn plan_round(
    shared: &Arc<Shared>,
    log: &mut SendLog,
    outcomes: &OutcomeWriter,
) -> Result<Option<Timestamp>, crate::store::StoreError> {
    let now = Timestamp::now();
    let defaults = shared.tunables().default_quota();
    // The store knows quotas and rest; only the registry knows which modems are up and free.
    let live = shared.modems.sim_states();
    let free = live
        .values()
        .filter(|(ready, busy)| *ready && !*busy)
        .count();
    // A round can assign at most one part per free SIM: read a short window of due parts
    // first, and the full window only when the short one was full yet left a free SIM idle.
    let window = (free as u32 * SHORT_WINDOW_PER_SIM).clamp(SHORT_WINDOW_MIN, DUE_WINDOW);
    let mut moved = std::mem::take(log);
    let (mut slots, mut due, next_due, moved) = shared
        .db
        .call(move |s| {
            let slots = s.sim_slots_from(&mut moved, now, defaults)?;
            let due = s.due_parts_indexed(window, now)?;
            Ok((slots, due, s.next_wake_at(now)?, moved))
        })
        .await?;
    *log = moved;
    for slot in &mut slots {
        let (ready, busy) = live.get(&slot.id).copied().unwrap_or((false, false));
        slot.ready = ready;
        slot.busy = busy;
    }
    let mut plan = scheduler::plan(&slots, &due, now);
    if window < DUE_WINDOW && due.len() as u32 >= window && plan.assignments.len() < free {
        due = shared
            .db
            .call(move |s| s.due_parts_indexed(DUE_WINDOW, now))
            .await?;
        plan = scheduler::plan(&slots, &due, now);
    }
    // The due parts leave out those waiting for later: the store says when the first of them
    // becomes due.
    let wake_at = match (plan.wake_at, next_due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if !plan.expired.is_empty() {
        let expired = shared.db.call(move |s| s.expire(now)).await?;
        tracing::info!(messages = expired.len(), "messages expired unsent");
    }
    // Take each assigned modem, then claim all their parts in one transaction (committed
    // before any AT+CMGS is written).
    let mut taken = Vec::with_capacity(plan.assignments.len());
    for a in plan.assignments {
        if shared.is_stopping() {
            break;
        }
        if let Some((port, handle)) = shared.modems.take_for_send(a.sim) {
            taken.push((a, port, handle));
        }
    }
    if taken.is_empty() {
        return Ok(wake_at);
    }
    let claims: Vec<_> = taken.iter().map(|(a, _, _)| (a.part, a.sim)).collect();
    let results = match shared.db.call(move |s| s.claim_many(&claims, now)).await {
        Ok(r) => r,
        Err(e) => {
            for (_, port, _) in &taken {
                shared.modems.release(port, None);
            }
            return Err(e);
        }
    };
    for ((a, port, handle), result) in taken.into_iter().zip(results) {
        match result {
            Ok(claimed) => {
                log.record(a.sim, now);
                let shared = Arc::clone(shared);
                let outcomes = outcomes.clone();
                tokio::spawn(async move { send(shared, outcomes, port, handle, claimed).await });
            }
            Err(e) => {
                tracing::warn!(part = a.part.0, "claim refused: {e}");
                shared.modems.release(&port, None);
            }
        }
    }
    Ok(wake_at)
}

/// One outcome waiting for the group commit, and who waits for it.
type PendingOutcome = (SendOutcome, Timestamp, oneshot::Sender<Result<(), String>>);

/// Where send tasks hand their outcomes; [`OutcomeWriter::commit`] returns once committed.
#[derive(Clone)]
struct OutcomeWriter(mpsc::UnboundedSender<PendingOutcome>);

impl OutcomeWriter {
    async fn commit(&self, outcome: SendOutcome, now: Timestamp) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send((outcome, now, tx))
            .map_err(|_| "outcome writer stopped".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("outcome writer stopped".to_string()))
    }
}

/// Group commit: outcomes that arrive while a commit is in progress go together into the
/// next transaction (one fsync for all of them). Each sender hears back only after the
/// transaction holding its outcome committed. The task ends when every sender is gone.
fn start_outcome_writer(db: super::Db) -> OutcomeWriter {
    const MAX_BATCH: usize = 256;
    let (tx, mut rx) = mpsc::unbounded_channel::<PendingOutcome>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let mut items = Vec::with_capacity(batch.len());
            let mut replies = Vec::with_capacity(batch.len());
            for (o, t, reply) in batch {
                items.push((o, t));
                replies.push(reply);
            }
            match db.call(move |s| s.record_outcomes(&items)).await {
                Ok(results) => {
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(r.map(|_| ()).map_err(|e| e.to_string()));
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    });
    OutcomeWriter(tx)
}

async fn send(
    shared: Arc<Shared>,
    outcomes: OutcomeWriter,
    port: String,
    handle: ModemHandle,
    part: ClaimedPart,
) {
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
            SendOutcome::Sent {
                part: id,
                tp_mr: mr,
            },
            None,
        ),
        Ok(Err(device)) => {
            let text = device.to_string();
            (
                SendOutcome::Failed {
                    part: id,
                    error: text.clone(),
                    kind: FailureKind::from(device.class()),
                },
                Some(text),
            )
        }
        Err(link @ LinkError::Unconfirmed { .. }) => {
            // The PDU may have gone out: never resend on our own.
            let text = link.to_string();
            (
                SendOutcome::Unknown {
                    part: id,
                    error: text.clone(),
                },
                Some(text),
            )
        }
        Err(link) => {
            // Nothing was sent (timeout before the payload, port gone, garbage): retry elsewhere.
            let text = link.to_string();
            (
                SendOutcome::Failed {
                    part: id,
                    error: text.clone(),
                    kind: FailureKind::TransientForModem,
                },
                Some(text),
            )
        }
    };
    // Committed before the SIM is offered another part.
    if let Err(e) = outcomes.commit(outcome, now).await {
        tracing::error!(part = id.0, "send outcome not recorded: {e}");
    }
    match &error {
        None => tracing::debug!(part = id.0, port = %port, "part sent"),
        Some(e) => tracing::info!(part = id.0, port = %port, "part not sent: {e}"),
    }
    shared.modems.release(&port, error);
    shared.wake.notify_one();
}
