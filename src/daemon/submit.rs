//! Submission in the running daemon: the group commit of acceptance ([`AcceptWriter`]) and the
//! mapping of the store's answer to the API's. A send request is decided and, when accepted,
//! inserted with its credit reservation and audit entries by one transaction body,
//! [`crate::store::acceptance::submit`]; requests that arrive together share one transaction and
//! one fsync, each in its own SAVEPOINT.
//!
//! What must always hold: no request is answered before the transaction holding it committed
//! (a refusal that must leave a trace, the violation's charge and blacklisting or the audit of a
//! rejected request, is committed before the error is returned); if the commit fails, every
//! request of the batch gets the error and none was written; the store's refusals map one to one
//! to the API's errors and per-recipient refusals, with the store's texts unchanged.

use std::sync::{Arc, OnceLock};

use jiff::Timestamp;

use super::handover::HandOver;
use crate::api::types::Refusal;
use crate::api::ApiError;
use crate::store::acceptance::{self, RecipientRefusal, SubmitOutcome};
use crate::store::StoreError;
use rusqlite::Transaction;
use tokio::sync::{mpsc, oneshot};

/// One request's acceptance, run inside the group commit's transaction.
pub(crate) type AcceptJob = Box<
    dyn FnOnce(&Transaction<'_>) -> Result<Result<SubmitOutcome, acceptance::Refusal>, StoreError>
        + Send,
>;

/// Group commit of acceptance: requests that arrive while a commit is in progress are decided
/// and written together in the next transaction, each in its own SAVEPOINT
/// ([`crate::store::Store::each_in_one_commit`]), so many requests share one fsync. Each caller hears back
/// only after the transaction holding its request committed; if that commit fails, every
/// request of the batch gets the error and none of them was written.
///
/// Once the runner started, each batch's transaction also hands what it accepted to idle SIMs
/// ([`HandOver`], in its own SAVEPOINT after the requests), and those sends start as soon as
/// the transaction committed.
#[derive(Clone)]
pub(crate) struct AcceptWriter {
    jobs: mpsc::UnboundedSender<(AcceptJob, oneshot::Sender<Accepted>)>,
    hand_over: Arc<OnceLock<HandOver>>,
}

type Accepted = Result<SubmitOutcome, ApiError>;

impl AcceptWriter {
    /// How many requests one transaction takes at most (a 10,000-recipient request is one).
    const MAX_BATCH: usize = 64;

    /// Starts the writer task; it ends when every handle is gone.
    pub(crate) fn start(db: super::Db) -> AcceptWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<(AcceptJob, oneshot::Sender<Accepted>)>();
        let hand_over = Arc::new(OnceLock::<HandOver>::new());
        let installed = Arc::clone(&hand_over);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first.0];
                let mut replies = vec![first.1];
                while jobs.len() < Self::MAX_BATCH {
                    match rx.try_recv() {
                        Ok((job, reply)) => {
                            jobs.push(job);
                            replies.push(reply);
                        }
                        Err(_) => break,
                    }
                }
                let committed = match installed.get().filter(|h| h.worth_trying()) {
                    None => db.call(move |s| s.each_in_one_commit(jobs)).await,
                    Some(_) => {
                        let h = Arc::clone(&installed);
                        let now = Timestamp::now();
                        let written = db
                            .call(move |s| {
                                let Some(h) = h.get() else {
                                    return s.each_in_one_commit(jobs);
                                };
                                // Slots from the store before the transaction, as a round does.
                                // A failed read only skips the hand-over, never the requests.
                                let slots = h.slots(s, now).unwrap_or_else(|e| {
                                    tracing::debug!("hand-over skipped: {e}");
                                    Vec::new()
                                });
                                let (results, handed) =
                                    s.each_in_one_commit_then(jobs, |tx| h.claim(tx, slots, now))?;
                                if let Err(e) = handed {
                                    tracing::debug!("hand-over skipped: {e}");
                                }
                                Ok(results)
                            })
                            .await;
                        if let Some(h) = installed.get() {
                            h.finish(written.is_ok());
                        }
                        written
                    }
                };
                match committed {
                    Ok(results) => {
                        for (reply, r) in replies.into_iter().zip(results) {
                            let _ = reply.send(
                                r.map_err(super::backend::internal)
                                    .and_then(|r| r.map_err(api_error)),
                            );
                        }
                    }
                    Err(e) => {
                        // The whole transaction is lost: nothing of the batch was written.
                        let full = e.is_storage_full();
                        let text = e.to_string();
                        for reply in replies {
                            let e = if full {
                                ApiError::InsufficientStorage(format!(
                                    "the gateway's disk is full; nothing was accepted, try \
                                     again later ({text})"
                                ))
                            } else {
                                ApiError::Internal(format!("store: {text}"))
                            };
                            let _ = reply.send(Err(e));
                        }
                    }
                }
            }
        });
        AcceptWriter {
            jobs: tx,
            hand_over,
        }
    }

    /// From now on, each batch hands what it accepted to idle SIMs (called once, by the
    /// runner when it starts; a second call changes nothing).
    pub(crate) fn hand_over_to(&self, hand_over: HandOver) {
        let _ = self.hand_over.set(hand_over);
    }

    /// A writer with no task behind it (unit tests without a runtime): every submit is
    /// refused as if the daemon were stopping.
    #[cfg(test)]
    pub(crate) fn unstarted() -> AcceptWriter {
        AcceptWriter {
            jobs: mpsc::unbounded_channel().0,
            hand_over: Arc::new(OnceLock::new()),
        }
    }

    /// Decides and writes one request in the next group commit; returns once it is durable.
    pub(crate) async fn submit(&self, job: AcceptJob) -> Accepted {
        let stopped = || ApiError::ShuttingDown;
        let (tx, rx) = oneshot::channel();
        self.jobs.send((job, tx)).map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The API's error for a refusal of the whole request (same status, code and text).
fn api_error(r: acceptance::Refusal) -> ApiError {
    match r {
        acceptance::Refusal::InvalidField(m) => ApiError::InvalidField(m),
        acceptance::Refusal::Forbidden(m) => ApiError::Forbidden(m),
        acceptance::Refusal::Policy { code, message } => ApiError::Policy { code, message },
        acceptance::Refusal::InsufficientCredit(m) => ApiError::InsufficientCredit(m),
    }
}

/// The API's refusal of one recipient.
pub(crate) fn api_refusal(r: RecipientRefusal) -> Refusal {
    Refusal {
        to: r.to,
        code: r.code,
        message: r.message,
    }
}
