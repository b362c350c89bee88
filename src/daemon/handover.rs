//! Hand-over: a part accepted while a SIM that may send it is idle is claimed for that SIM in
//! acceptance's own transaction, and its send starts as soon as that transaction committed,
//! without waiting for the 202 to reach the client or for a planning round. On an idle bank
//! this takes one commit (one fsync) and one wake-up out of the path from a submit to its
//! AT+CMGS (issue 14).
//!
//! What must always hold: it is the runner's round, made in the acceptance's transaction
//! instead of a transaction of its own: the same due parts (read inside the transaction, so
//! they include the ones just written), the same look-aheads held back, the same
//! `scheduler::plan`, the same claim (`store::claim_each_in`, each in its own SAVEPOINT), the
//! same send log recorded under the same store call, and no claim while a known outcome is not
//! durable or once a stop began. A claim is sent only after the transaction holding it
//! committed; when the commit fails, every modem it took is released and the send log is
//! reloaded. A hand-over that fails leaves the acceptance as it is (its own SAVEPOINT).

use std::sync::{Arc, Mutex, Weak};

use jiff::Timestamp;
use rusqlite::Transaction;

use super::runner::{self, Loop, OutcomeWriter};
use super::Shared;
use crate::modem::ModemHandle;
use crate::scheduler::{self, SimSlot};
use crate::store::{ClaimedPart, Store, StoreError};

/// A modem taken for a claim of this hand-over: the assignment, its port and handle, and the
/// claim's result once made.
type Taken = (
    crate::store::SimId,
    String,
    ModemHandle,
    Option<Result<ClaimedPart, StoreError>>,
);

/// What acceptance's writer calls around its transaction (see the module header).
pub(crate) struct HandOver {
    /// Weak: the acceptance writer lives inside `Shared`.
    shared: Weak<Shared>,
    state: Loop,
    outcomes: OutcomeWriter,
    /// The modems taken by the transaction in progress, until [`HandOver::finish`].
    taken: Mutex<Vec<Taken>>,
}

impl HandOver {
    pub(super) fn new(shared: &Arc<Shared>, state: Loop, outcomes: OutcomeWriter) -> HandOver {
        HandOver {
            shared: Arc::downgrade(shared),
            state,
            outcomes,
            taken: Mutex::new(Vec::new()),
        }
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, Vec<Taken>> {
        self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a SIM is free to take a part now (read before the transaction; the claim
    /// takes the modem for real).
    pub(crate) fn worth_trying(&self) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        !shared.is_stopping()
            && !shared.outcomes_pending()
            && shared
                .modems
                .sim_states()
                .values()
                .any(|(ready, busy)| *ready && !*busy)
    }

    /// The SIM slots, on the store's thread before the transaction begins (the runner reads
    /// them the same way).
    pub(crate) fn slots(&self, store: &Store, now: Timestamp) -> Result<Vec<SimSlot>, StoreError> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(Vec::new());
        };
        let defaults = shared.tunables().default_quota();
        store.sim_slots_from(&mut self.state.log(), now, defaults)
    }

    /// Inside acceptance's transaction, after its requests: plans the free SIMs over the due
    /// parts and claims what the plan assigns. Returns how many parts were claimed.
    pub(crate) fn claim(
        &self,
        tx: &Transaction<'_>,
        mut slots: Vec<SimSlot>,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(0);
        };
        if shared.is_stopping() || shared.outcomes_pending() {
            return Ok(0);
        }
        let live = shared.modems.sim_states();
        for slot in &mut slots {
            let (ready, busy) = live.get(&slot.id).copied().unwrap_or((false, false));
            slot.ready = ready;
            slot.busy = busy;
        }
        let free = slots.iter().filter(|s| s.ready && !s.busy).count();
        if free == 0 {
            return Ok(0);
        }
        let window = (free as u32 * runner::SHORT_WINDOW_PER_SIM).max(runner::SHORT_WINDOW_MIN);
        let due = self
            .state
            .unheld(crate::store::due_parts_in(tx, window, now)?);
        let plan = scheduler::plan(&slots, &due, now);
        let mut taken = self.taken();
        let mut claims = Vec::new();
        for a in plan.assignments {
            if let Some((port, handle)) = shared.modems.take_for_send(a.sim) {
                taken.push((a.sim, port, handle, None));
                claims.push((a.part, a.sim));
            }
        }
        if claims.is_empty() {
            return Ok(0);
        }
        let first = taken.len() - claims.len();
        let results = crate::store::claim_each_in(tx, &claims, now)?;
        let mut log = self.state.log();
        let mut claimed = 0;
        for (slot, result) in taken[first..].iter_mut().zip(results) {
            if result.is_ok() {
                log.record(slot.0, now);
                claimed += 1;
            }
            slot.3 = Some(result);
        }
        Ok(claimed)
    }

    /// After the transaction: starts the sends of its claims when it committed; otherwise (or
    /// for a refused claim) gives the modems back.
    pub(crate) fn finish(&self, committed: bool) {
        let taken = std::mem::take(&mut *self.taken());
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if !committed && !taken.is_empty() {
            // Claims recorded in the send log were not written: read it again from the store.
            self.state.log().clear();
        }
        for (sim, port, handle, result) in taken {
            match result {
                Some(Ok(claimed)) if committed => {
                    tracing::debug!(
                        part = claimed.part.0,
                        port = %port,
                        "hand-over: claimed in acceptance's commit"
                    );
                    let (shared, state, outcomes) = (
                        Arc::clone(&shared),
                        self.state.clone(),
                        self.outcomes.clone(),
                    );
                    tokio::spawn(async move {
                        runner::send_loop(shared, state, outcomes, port, handle, sim, claimed).await
                    });
                }
                Some(Err(e)) => {
                    tracing::debug!("hand-over claim refused: {e}");
                    shared.modems.release(&port, None);
                }
                _ => shared.modems.release(&port, None),
            }
        }
    }
}
