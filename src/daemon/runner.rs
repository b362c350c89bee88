//! The scheduler's thin runner: read the SIM slots and due parts, ask `scheduler::plan`, claim
//! the round's assigned parts (one committed transaction) and hand each to its modem; then sleep
//! until woken or until the time the plan asked for. Each send's outcome is committed (outcomes
//! that finish together share one transaction: group commit) before its SIM is released.
//!
//! At the modem's pace: while a SIM's send is in flight, a round also chooses that SIM's next
//! part (its *look-ahead*: the following part of the message in flight when there is one, as
//! a message's parts go in order on one SIM; otherwise the scheduler's own choice for that SIM,
//! held back from every other SIM for at most [`LOOK_AHEAD_HOLD`]), and when the modem answers
//! with a TP-MR the outcome and the next part's claim commit in one transaction and the send
//! task goes straight on with it: one commit between two sends, no planning round in between. Anything
//! but a clean `+CMGS` answer (a failure, an unknown, link trouble, a stop) ends the chain and
//! releases the SIM as before.
//!
//! What must always hold: no AT+CMGS without a committed claim; a part whose PDU may have left
//! the modem (the link's [`PayloadFate::MaybeSent`], or an ambiguous modem error) becomes
//! `unknown` and is never resent automatically (unless `modems.on_ambiguous = "retry"` and the
//! settle window passed with no report); a device error is classified (permanent for the
//! message, transient for the modem, SIM problem, ambiguous) by the AT layer; a known outcome
//! is retried until it is durable, its SIM gets nothing meanwhile, and no part is claimed
//! while the store cannot write; the runner beats a heartbeat at least every
//! [`HEARTBEAT_EVERY`] that the systemd watchdog follows;
//! the runner and its outcome writer are the only claimers, and both record every committed
//! claim in the one [`SendLog`] under the same store call, so it sees the same sends as
//! `send_attempts` and the quotas count exactly what they counted before; a look-ahead part is
//! claimed only through the store's ordinary claim (its checks decide, so a part cancelled or
//! claimed meanwhile is simply not chained).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

use super::Shared;
use crate::config::OnAmbiguous;
use crate::modem::{ModemHandle, PayloadFate};
use crate::scheduler::{self, FailureKind};
use crate::store::{ClaimedPart, NextPart, PartId, SendLog, SendOutcome, SimId};

/// How many due parts one planning round looks at (the rest wait for the next round). Only
/// parts due now are read, so parts waiting for later never fill it.
const DUE_WINDOW: u32 = 2048;
/// The short window: this many due parts per free SIM, at least [`SHORT_WINDOW_MIN`].
const SHORT_WINDOW_PER_SIM: u32 = 8;
const SHORT_WINDOW_MIN: u32 = 64;
/// How long a look-ahead part waits for its SIM's send to end: a modem that hangs until its
/// timeout must not keep the part from a SIM that is free (the round then plans it afresh).
const LOOK_AHEAD_HOLD: std::time::Duration = std::time::Duration::from_secs(10);
/// The runner's heartbeat period: it wakes at least this often, and the watchdog is pinged only
/// while its beats come.
pub(crate) const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The runner's memory shared with its send tasks and outcome writer: the SIMs' recent send
/// times and the look-ahead parts chosen for SIMs whose send is in flight.
#[derive(Clone, Default)]
struct Loop {
    log: Arc<Mutex<SendLog>>,
    /// SIM -> the part it sends next if its current send ends with a TP-MR: what, when it was
    /// chosen, and for which send (a choice made for an earlier send of the SIM is stale).
    ahead: Arc<Mutex<BTreeMap<SimId, Ahead>>>,
    /// The sends in flight: SIM -> (send number, whether its part has a following part).
    flights: Arc<Mutex<BTreeMap<SimId, (u64, bool)>>>,
    /// Numbers the sends, so a look-ahead names the send it was chosen during.
    sends: Arc<AtomicU64>,
    /// SIM -> the look-ahead part its ended send is claiming now: taken out of `ahead` when
    /// the send ends and removed on the store's thread right after the claim's transaction,
    /// so a round (which filters its due parts on the store's thread too) never sees the part
    /// unheld yet unclaimed and gives it to another SIM.
    chaining: Arc<Mutex<BTreeMap<SimId, PartId>>>,
}

/// One look-ahead: the part, when it was chosen, and the send (number) it follows.
type Ahead = (NextPart, std::time::Instant, u64);

impl Loop {
    fn log(&self) -> MutexGuard<'_, SendLog> {
        // Poisoned only by a panic elsewhere; a send log is rebuilt from the store if wrong.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ahead(&self) -> MutexGuard<'_, BTreeMap<SimId, Ahead>> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn chaining(&self) -> MutexGuard<'_, BTreeMap<SimId, PartId>> {
        self.chaining.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `due` without the parts held for a SIM: its look-ahead, or being claimed by its chain.
    /// Called on the store's thread right after `due` was read, so it sees the same moment
    /// (lock order: `ahead`, then `chaining`, as in [`send_loop`]).
    fn unheld(&self, mut due: Vec<scheduler::DuePart>) -> Vec<scheduler::DuePart> {
        let ahead = self.ahead();
        let chaining = self.chaining();
        due.retain(|d| {
            !ahead.values().any(|(p, _, _)| *p == NextPart::Part(d.part))
                && !chaining.values().any(|p| *p == d.part)
        });
        due
    }

    fn flights(&self) -> MutexGuard<'_, BTreeMap<SimId, (u64, bool)>> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let state = Loop::default();
    let outcomes = start_outcome_writer(shared.db.clone(), state.clone());
    loop {
        shared.beat();
        if *stop.borrow() || shared.is_stopping() {
            return;
        }
        let wake_at = match plan_round(&shared, &state, &outcomes).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("scheduler round failed: {e}");
                // Reload the send log from the store: a failed round may have lost it.
                state.log().clear();
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

/// One planning round; returns when to plan again if nothing wakes the runner sooner. `state`
/// holds the SIMs' recent send times between rounds (see [`SendLog`]) and the look-aheads.
async fn plan_round(
    shared: &Arc<Shared>,
    state: &Loop,
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
    // The sends in flight now: their claims are in the send log read below.
    let flights = state.flights().clone();
    // A part set aside as some SIM's look-ahead is that SIM's alone, for a while.
    state.ahead().retain(|sim, (_, chosen, during)| {
        chosen.elapsed() < LOOK_AHEAD_HOLD && flights.get(sim).is_some_and(|f| f.0 == *during)
    });
    // The held parts are left out on the store's thread, where chains claim theirs: a part a
    // chain claimed after this read is still held when the filter runs.
    let st = state.clone();
    let (mut slots, due, full, next_due, next_retry) = shared
        .db
        .call(move |s| {
            let slots = s.sim_slots_from(&mut st.log(), now, defaults)?;
            let read = s.due_parts_indexed(window, now)?;
            let full = read.len() as u32 >= window;
            let due = st.unheld(read);
            let next_due = s.next_wake_at(now)?;
            Ok((slots, due, full, next_due, s.next_unknown_retry()?))
        })
        .await?;
    let mut due = due;
    for slot in &mut slots {
        let (ready, busy) = live.get(&slot.id).copied().unwrap_or((false, false));
        slot.ready = ready;
        slot.busy = busy;
    }
    let mut plan = scheduler::plan(&slots, &due, now);
    if window < DUE_WINDOW && full && plan.assignments.len() < free {
        let st = state.clone();
        due = shared
            .db
            .call(move |s| Ok(st.unheld(s.due_parts_indexed(DUE_WINDOW, now)?)))
            .await?;
        plan = scheduler::plan(&slots, &due, now);
    }
    look_ahead(shared, state, &flights, &slots, &due, &plan, now);
    // The due parts leave out those waiting for later: the store says when the first of them
    // becomes due, and when the first ambiguous `unknown` part may be retried.
    // A look-ahead whose SIM is still busy when its hold ends goes back to every SIM then.
    let ahead_ends = state
        .ahead()
        .values()
        .map(|(_, chosen, _)| *chosen + LOOK_AHEAD_HOLD)
        .min()
        .map(|at| now + (at.saturating_duration_since(std::time::Instant::now())));
    let wake_at = [plan.wake_at, next_due, next_retry, ahead_ends]
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
    {
        let mut log = state.log();
        for ((a, _, _), result) in taken.iter().zip(&results) {
            if result.is_ok() {
                log.record(a.sim, now);
            }
        }
    }
    for ((a, port, handle), result) in taken.into_iter().zip(results) {
        match result {
            Ok(claimed) => {
                let shared = Arc::clone(shared);
                let outcomes = outcomes.clone();
                let state = state.clone();
                let sim = a.sim;
                tokio::spawn(async move {
                    send_loop(shared, state, outcomes, port, handle, sim, claimed).await
                });
            }
            Err(e) => {
                tracing::warn!(part = a.part.0, "claim refused: {e}");
                shared.modems.release(&port, None);
            }
        }
    }
    Ok(wake_at)
}

/// Chooses the next part of each SIM whose send is in flight and that has none yet: the
/// scheduler's own choice for that SIM (quota, rest, carrier, priority, the SIMs a part failed
/// on), as if the SIM were free now, among the due parts this round did not assign. Only a
/// ready SIM of ours in flight gets one; the choice is dropped if the send does not end with a
/// TP-MR (see [`send_loop`]).
fn look_ahead(
    shared: &Shared,
    state: &Loop,
    flights: &BTreeMap<SimId, (u64, bool)>,
    slots: &[scheduler::SimSlot],
    due: &[scheduler::DuePart],
    plan: &scheduler::Plan,
    now: Timestamp,
) {
    if shared.is_stopping() || shared.outcomes_pending() {
        return;
    }
    let mut ahead = state.ahead();
    // Only sends seen in flight before the round read the send log are offered: their claims
    // are in the quota counts the choice is made with.
    let following = |id: &SimId| flights.get(id).is_some_and(|(_, f)| *f);
    let in_flight = |s: &scheduler::SimSlot| {
        s.ready && s.busy && flights.contains_key(&s.id) && !ahead.contains_key(&s.id)
    };
    let offered: Vec<SimId> = slots
        .iter()
        .filter(|s| in_flight(s))
        .map(|s| s.id)
        .collect();
    if offered.is_empty() {
        return;
    }
    let as_free: Vec<_> = slots
        .iter()
        .map(|s| {
            let mut s = s.clone();
            // Only the SIMs in flight are offered; the free ones were just planned.
            let offer = offered.contains(&s.id);
            s.ready = offer;
            s.busy = !offer;
            s
        })
        .collect();
    let chosen = std::time::Instant::now();
    // A message's parts go in order on one SIM: a SIM sending a part that has a following one
    // sends that one next, if its quota and rest allow one more send now.
    // Kept only for a send still in flight now (checked under the look-ahead lock, which the
    // send takes to collect its look-ahead when it ends): a choice for a send that ended
    // meanwhile would otherwise sit there, holding its part from the other SIMs.
    let live = state.flights().clone();
    let current = |id: &SimId| live.get(id).map(|f| f.0) == flights.get(id).map(|f| f.0);
    for s in as_free
        .iter()
        .filter(|s| following(&s.id) && current(&s.id))
    {
        if s.available(now) {
            ahead.insert(s.id, (NextPart::Following, chosen, flights[&s.id].0));
        }
    }
    let assigned: Vec<PartId> = plan.assignments.iter().map(|a| a.part).collect();
    let rest: Vec<_> = due
        .iter()
        .filter(|d| !assigned.contains(&d.part))
        .cloned()
        .collect();
    if rest.is_empty() {
        return;
    }
    let others: Vec<_> = as_free
        .into_iter()
        .map(|mut s| {
            if following(&s.id) {
                s.ready = false;
            }
            s
        })
        .collect();
    for a in scheduler::plan(&others, &rest, now).assignments {
        if current(&a.sim) {
            ahead.insert(a.sim, (NextPart::Part(a.part), chosen, flights[&a.sim].0));
        }
    }
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

/// What the group commit tells a send task: its outcome is durable, and the next part for its
/// SIM is claimed (`Some`) or not (`None`: no look-ahead, or its claim was refused).
type Committed = Result<Option<ClaimedPart>, CommitError>;

/// One outcome waiting for the group commit, the part to claim after it, and who waits.
type PendingOutcome = (
    SendOutcome,
    Timestamp,
    Option<(NextPart, SimId)>,
    oneshot::Sender<Committed>,
);

/// Where send tasks hand their outcomes; [`OutcomeWriter::commit`] returns once committed.
#[derive(Clone)]
struct OutcomeWriter(mpsc::UnboundedSender<PendingOutcome>);

impl OutcomeWriter {
    async fn commit(
        &self,
        outcome: SendOutcome,
        now: Timestamp,
        next: Option<(NextPart, SimId)>,
    ) -> Committed {
        let stopped = || CommitError::NotWritten("outcome writer stopped".into());
        let (tx, rx) = oneshot::channel();
        self.0
            .send((outcome, now, next, tx))
            .map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// Group commit: outcomes that arrive while a commit is in progress go together into the
/// next transaction (one fsync for all of them), each with its SIM's next claim when it has
/// one. Each sender hears back only after the transaction holding its outcome committed. The
/// task ends when every sender is gone.
fn start_outcome_writer(db: super::Db, state: Loop) -> OutcomeWriter {
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
            for (o, t, next, reply) in batch {
                items.push((o, t, next));
                replies.push(reply);
            }
            let st = state.clone();
            let written = db
                .call(move |s| {
                    let written = s.record_outcomes_then_claim(&items, &mut st.log());
                    // Claimed or not, these parts are no longer being claimed: the next read of
                    // the due parts sees their state (see `Loop::chaining`).
                    let mut chaining = st.chaining();
                    for (_, _, next) in &items {
                        if let Some((NextPart::Part(part), sim)) = next {
                            if chaining.get(sim) == Some(part) {
                                chaining.remove(sim);
                            }
                        }
                    }
                    written
                })
                .await;
            match written {
                Ok(results) => {
                    for (reply, (recorded, claim)) in replies.into_iter().zip(results) {
                        let claimed = claim.and_then(|c| match c {
                            Ok(part) => Some(part),
                            Err(e) => {
                                tracing::debug!("look-ahead part not claimed: {e}");
                                None
                            }
                        });
                        let _ = reply.send(recorded.map(|_| claimed).map_err(CommitError::from));
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

/// Sends `part` on the SIM's modem and, while each send ends with a TP-MR and the SIM has a
/// look-ahead part that the outcome's commit could claim, the next one, without releasing the
/// SIM in between. The SIM is released after the last outcome is committed.
async fn send_loop(
    shared: Arc<Shared>,
    state: Loop,
    outcomes: OutcomeWriter,
    port: String,
    handle: ModemHandle,
    sim: SimId,
    mut part: ClaimedPart,
) {
    loop {
        // A round may now choose this SIM's next part while this one is in flight.
        let has_following = part.seq < part.total;
        let number = state.sends.fetch_add(1, Ordering::Relaxed);
        state.flights().insert(sim, (number, has_following));
        shared.wake.notify_one();
        let (outcome, error) = send(&shared, &port, &handle, &part).await;
        let id = part.part;
        state.flights().remove(&sim);
        let next = {
            let mut ahead = state.ahead();
            // Only a choice made during this very send counts.
            let chosen = ahead
                .remove(&sim)
                .filter(|(_, _, during)| *during == number);
            let next = match (&outcome, chosen) {
                (SendOutcome::Sent { .. }, Some((kind, _, _))) if !shared.is_stopping() => {
                    // Any choice made for this SIM means its quota had room; the message's own
                    // next part comes before any other.
                    match (has_following, kind) {
                        (true, _) => Some((NextPart::Following, sim)),
                        (false, NextPart::Part(p)) => Some((NextPart::Part(p), sim)),
                        (false, NextPart::Following) => None,
                    }
                }
                _ => None,
            };
            // Still held while its claim is written (under the `ahead` lock: no round reads
            // between the two maps).
            if let Some((NextPart::Part(p), _)) = next {
                state.chaining().insert(sim, p);
            }
            next
        };
        // Durable before the SIM is offered another part: a known outcome (a TP-MR in hand) is
        // kept in memory and retried with back-off while the store cannot write (disk full, I/O
        // error); the SIM stays busy and the runner claims nothing meanwhile.
        let chained = commit_durably(&shared, &outcomes, outcome, Timestamp::now(), id, next).await;
        if let Some((NextPart::Part(p), _)) = next {
            // Normally gone already (the writer removes it with the claim's transaction); not
            // when the writer never ran the transaction (it stopped).
            let mut chaining = state.chaining();
            if chaining.get(&sim) == Some(&p) {
                chaining.remove(&sim);
            }
        }
        match &error {
            None => tracing::debug!(part = id.0, port = %port, "part sent"),
            Some(e) => tracing::info!(part = id.0, port = %port, "part not sent: {e}"),
        }
        match chained {
            // A committed claim is a promise to send: even when the stop began meanwhile, this
            // part goes out (the drain waits for it) and the chain ends after it.
            Some(claimed) => part = claimed,
            None => {
                shared.modems.release(&port, error);
                shared.wake.notify_one();
                return;
            }
        }
    }
}

/// One send on the modem: the outcome to commit, and the error to show on the modem if any.
async fn send(
    shared: &Arc<Shared>,
    port: &str,
    handle: &ModemHandle,
    part: &ClaimedPart,
) -> (SendOutcome, Option<String>) {
    let more_follow = part.seq < part.total;
    let length = u16::try_from(part.cmgs_length).unwrap_or(u16::MAX);
    let result = handle.send_part(&part.pdu_hex, length, more_follow).await;
    if result.is_err() {
        // The actor recovers the modem before it reads its next request: no part for it until
        // it answers again (a Health request queues behind the recovery).
        shared.modems.link_trouble(port);
        let (shared, port, handle) = (Arc::clone(shared), port.to_string(), handle.clone());
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
    (outcome, error)
}

/// Commits one send's outcome, retrying with back-off until it is durable, and with it the
/// claim of `next` (only on the first try: after a failed write the SIM is released instead).
/// Returns the claimed next part. Gives up only when the daemon stops with the store still
/// unwritable: the part then stays `sending` and becomes `unknown` at the next start (never
/// resent by itself).
async fn commit_durably(
    shared: &Arc<Shared>,
    outcomes: &OutcomeWriter,
    outcome: SendOutcome,
    now: Timestamp,
    id: PartId,
    mut next: Option<(NextPart, SimId)>,
) -> Option<ClaimedPart> {
    let mut attempt = 0usize;
    // Counted as "not durable" (which stops every new claim) only once a write failed: an
    // outcome in its ordinary group commit holds back only its own SIM, which stays busy.
    let mut pending = None;
    loop {
        match outcomes.commit(outcome.clone(), now, next.take()).await {
            Ok(claimed) => {
                if attempt > 0 {
                    tracing::info!(part = id.0, attempt, "send outcome recorded after retrying");
                    shared.store_fault(None);
                }
                return claimed;
            }
            Err(CommitError::Refused(e)) => {
                // The store refused this outcome itself (a state change no longer allowed):
                // retrying cannot help; the store stays as it is.
                tracing::error!(part = id.0, "send outcome refused by the store: {e}");
                return None;
            }
            Err(CommitError::NotWritten(e)) => {
                pending.get_or_insert_with(|| shared.outcome_pending());
                shared.store_fault(Some(format!("send outcome not written: {e}")));
                if shared.is_stopping() && attempt >= super::WRITE_RETRY.len() {
                    tracing::error!(
                        part = id.0,
                        "send outcome still not written at shutdown: the part will show as unknown: {e}"
                    );
                    return None;
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
