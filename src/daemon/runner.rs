//! The scheduler's thin runner: read the SIM slots and due parts, ask `scheduler::plan`, claim
//! the round's assigned parts (one committed transaction) and hand each to its modem; then sleep
//! until woken or until the time the plan asked for. Each send's outcome is committed (outcomes
//! that finish together share one transaction: group commit) before its SIM is released.
//!
//! What must always hold: no AT+CMGS without a committed claim; a part whose PDU may have left
//! the modem (the link's [`PayloadFate::MaybeSent`], or an ambiguous modem error) becomes
//! `unknown` and is never resent automatically (unless `modems.on_ambiguous = "retry"` and the
//! settle window passed with no report); a device error is classified (permanent for the
//! message, transient for the modem, SIM problem, ambiguous) by the AT layer; a known outcome
//! is retried until it is durable, its SIM gets nothing meanwhile, and no part is claimed
//! while the store cannot write; the runner beats a heartbeat at least every
//! [`HEARTBEAT_EVERY`] that the systemd watchdog follows;
//! the runner is the only claimer, so its [`SendLog`] (every committed claim recorded) sees the
//! same sends as `send_attempts` and the quotas count exactly what they counted before.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

use super::Shared;
use crate::config::OnAmbiguous;
use crate::modem::{ModemHandle, PayloadFate};
use crate::scheduler::{self, FailureKind};
use crate::store::{ClaimedPart, SendLog, SendOutcome};

/// How many due parts one planning round looks at (the rest wait for the next round). Only
/// parts due now are read, so parts waiting for later never fill it.
const DUE_WINDOW: u32 = 2048;
/// The short window: this many due parts per free SIM, at least [`SHORT_WINDOW_MIN`].
const SHORT_WINDOW_PER_SIM: u32 = 8;
const SHORT_WINDOW_MIN: u32 = 64;
/// The runner's heartbeat period: it wakes at least this often, and the watchdog is pinged only
/// while its beats come.
pub(crate) const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let outcomes = start_outcome_writer(shared.db.clone());
    let mut log = SendLog::default();
    loop {
        shared.beat();
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
        let until = tokio::time::Instant::now() + sleep;
        // Sleep until woken or the plan's time, beating the heartbeat meanwhile (a beat only
        // proves the loop is not stuck; it plans nothing).
        loop {
            let beat_at = tokio::time::Instant::now() + HEARTBEAT_EVERY;
            tokio::select! {
                _ = shared.wake.notified() => break,
                _ = tokio::time::sleep_until(until.min(beat_at)) => {
                    if tokio::time::Instant::now() >= until {
                        break;
                    }
                    shared.beat();
                }
                _ = stop.changed() => return,
            }
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
    let (mut slots, mut due, next_due, next_retry, moved) = shared
        .db
        .call(move |s| {
            let slots = s.sim_slots_from(&mut moved, now, defaults)?;
            let due = s.due_parts_indexed(window, now)?;
            let next_due = s.next_wake_at(now)?;
            Ok((slots, due, next_due, s.next_unknown_retry()?, moved))
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
    // becomes due, and when the first ambiguous `unknown` part may be retried.
    let wake_at = [plan.wake_at, next_due, next_retry]
        .into_iter()
        .flatten()
        .min();
    if !plan.expired.is_empty() {
        let expired = shared.db.call(move |s| s.expire(now)).await?;
        tracing::info!(messages = expired.len(), "messages expired unsent");
    }
    // Ambiguous parts whose settle window passed with no report (on_ambiguous = "retry").
    if next_retry.is_some_and(|t| t <= now) {
        let requeued = shared.db.call(move |s| s.requeue_unknown_due(now)).await?;
        if !requeued.is_empty() {
            // They are queued now: the next round plans them.
            shared.wake.notify_one();
        }
    }
    if shared.outcomes_pending() {
        // A known outcome could not be written yet: no new claim until it is (RELIABILITY.md).
        return Ok(wake_at);
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
        Ok(r) => {
            shared.store_fault(None);
            r
        }
        Err(e) => {
            for (_, port, _) in &taken {
                shared.modems.release(port, None);
            }
            shared.store_fault(Some(format!("claims not written: {e}")));
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

/// Why an outcome was not committed.
#[derive(Debug, Clone)]
enum CommitError {
    /// The store refused the change itself (no longer an allowed transition): final.
    Refused(String),
    /// The store could not write it (disk full, I/O error, writer gone): worth retrying.
    NotWritten(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::Refused(e) | CommitError::NotWritten(e) => f.write_str(e),
        }
    }
}

impl From<crate::store::StoreError> for CommitError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        match e {
            E::BadPartTransition { .. }
            | E::BadMessageTransition { .. }
            | E::NoSuchPart(_)
            | E::NoSuchMessage(_)
            | E::NotClaimable { .. }
            | E::Invalid(_) => CommitError::Refused(e.to_string()),
            other => CommitError::NotWritten(other.to_string()),
        }
    }
}

/// One outcome waiting for the group commit, and who waits for it.
type PendingOutcome = (
    SendOutcome,
    Timestamp,
    oneshot::Sender<Result<(), CommitError>>,
);

/// Where send tasks hand their outcomes; [`OutcomeWriter::commit`] returns once committed.
#[derive(Clone)]
struct OutcomeWriter(mpsc::UnboundedSender<PendingOutcome>);

impl OutcomeWriter {
    async fn commit(&self, outcome: SendOutcome, now: Timestamp) -> Result<(), CommitError> {
        let stopped = || CommitError::NotWritten("outcome writer stopped".into());
        let (tx, rx) = oneshot::channel();
        self.0.send((outcome, now, tx)).map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
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
                        let _ = reply.send(r.map(|_| ()).map_err(CommitError::from));
                    }
                }
                Err(e) => {
                    // The whole transaction is lost: nothing of the batch was written.
                    let e = CommitError::NotWritten(e.to_string());
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
    let hold_ambiguous = shared.tunables().on_ambiguous == OnAmbiguous::Hold;
    let settle_window = shared.tunables().settle_window;
    let (outcome, error) = match result {
        Ok(Ok(mr)) => (
            SendOutcome::Sent {
                part: id,
                tp_mr: mr,
            },
            None,
        ),
        Ok(Err(device)) if device.class() == crate::at::ErrorClass::Ambiguous => {
            // The part may have reached the SMSC: unknown, like an unconfirmed send; retried
            // after the settle window only if the operator said so.
            let text = format!("ambiguous answer: {device}");
            let retry_at = (!hold_ambiguous).then(|| now + settle_window);
            (
                SendOutcome::Unknown {
                    part: id,
                    error: text.clone(),
                    retry_at,
                },
                Some(text),
            )
        }
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
        Err(link) => {
            let text = link.to_string();
            match link.payload_fate() {
                // The PDU may have gone out: never resend on our own.
                PayloadFate::MaybeSent => (
                    SendOutcome::Unknown {
                        part: id,
                        error: text.clone(),
                        retry_at: None,
                    },
                    Some(text),
                ),
                // Provably never left (timeout before the prompt, port gone before the
                // payload, garbage): retry elsewhere.
                PayloadFate::NotSent => (
                    SendOutcome::Failed {
                        part: id,
                        error: text.clone(),
                        kind: FailureKind::TransientForModem,
                    },
                    Some(text),
                ),
            }
        }
    };
    // Durable before the SIM is offered another part: a known outcome (a TP-MR in hand) is
    // kept in memory and retried with back-off while the store cannot write (disk full, I/O
    // error); the SIM stays busy and the runner claims nothing meanwhile.
    commit_durably(&shared, &outcomes, outcome, now, id).await;
    match &error {
        None => tracing::debug!(part = id.0, port = %port, "part sent"),
        Some(e) => tracing::info!(part = id.0, port = %port, "part not sent: {e}"),
    }
    shared.modems.release(&port, error);
    shared.wake.notify_one();
}

/// Commits one send's outcome, retrying with back-off until it is durable. Gives up only when
/// the daemon stops with the store still unwritable: the part then stays `sending` and becomes
/// `unknown` at the next start (never resent by itself).
async fn commit_durably(
    shared: &Arc<Shared>,
    outcomes: &OutcomeWriter,
    outcome: SendOutcome,
    now: Timestamp,
    id: crate::store::PartId,
) {
    let mut attempt = 0usize;
    // Counted as "not durable" (which stops every new claim) only once a write failed: an
    // outcome in its ordinary group commit holds back only its own SIM, which stays busy.
    let mut pending = None;
    loop {
        match outcomes.commit(outcome.clone(), now).await {
            Ok(()) => {
                if attempt > 0 {
                    tracing::info!(part = id.0, attempt, "send outcome recorded after retrying");
                    shared.store_fault(None);
                }
                return;
            }
            Err(CommitError::Refused(e)) => {
                // The store refused this outcome itself (a state change no longer allowed):
                // retrying cannot help; the store stays as it is.
                tracing::error!(part = id.0, "send outcome refused by the store: {e}");
                return;
            }
            Err(CommitError::NotWritten(e)) => {
                pending.get_or_insert_with(|| shared.outcome_pending());
                shared.store_fault(Some(format!("send outcome not written: {e}")));
                if shared.is_stopping() && attempt >= super::WRITE_RETRY.len() {
                    tracing::error!(
                        part = id.0,
                        "send outcome still not written at shutdown: the part will show as unknown: {e}"
                    );
                    return;
                }
                let delay = super::write_retry_delay(attempt);
                tracing::error!(
                    part = id.0,
                    ?delay,
                    "send outcome not written, retrying: {e}"
                );
                attempt += 1;
                tokio::time::sleep(delay).await;
            }
        }
    }
}
