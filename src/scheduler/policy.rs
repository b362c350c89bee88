//! Retry, back-off, SIM rest and quota policy: the numbers behind the scheduler's rules, and the
//! classification of a failed send that the driver hands to the store. Pure values.
//!
//! What must always hold: back-off grows exponentially and is capped; a part is given up after a
//! bounded number of attempts, so one bad message never blocks others forever; a SIM with
//! `rest_after_errors` consecutive failures rests for `rest_for` before it is probed again.

use jiff::{SignedDuration, Timestamp};

use crate::ids::after;

/// How a send failed, as classified by the driver (DOMAIN.md "+CMS ERROR" classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The message itself is refused (e.g. +CMS 21, 304, 305): never retried.
    PermanentForMessage,
    /// The modem or network hiccupped (e.g. +CMS 38, 42, 331, 332, 500, timeouts): retry later,
    /// preferably on another SIM.
    TransientForModem,
    /// The SIM is unusable (not registered, barred, SIM failure): rest it now, retry elsewhere.
    SimProblem,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::PermanentForMessage => "permanent",
            FailureKind::TransientForModem => "transient",
            FailureKind::SimProblem => "sim",
        }
    }
}

/// The AT layer classifies +CMS/+CME errors (one table, in `at::error`); the scheduler acts on
/// that class.
impl From<crate::at::ErrorClass> for FailureKind {
    fn from(class: crate::at::ErrorClass) -> FailureKind {
        match class {
            crate::at::ErrorClass::PermanentForMessage => FailureKind::PermanentForMessage,
            crate::at::ErrorClass::TransientForModem => FailureKind::TransientForModem,
            crate::at::ErrorClass::SimOrRegistration => FailureKind::SimProblem,
            // An ambiguous part is `unknown`, not failed; when the operator chose to retry
            // such parts, the SIM's record counts it as a transient hiccup.
            crate::at::ErrorClass::Ambiguous => FailureKind::TransientForModem,
        }
    }
}

/// Per-SIM sending limits. Defaults follow DOMAIN.md: carriers throttle ordinary SIMs above
/// about 200/hour or 1000/day; pacing of 10/minute and 3 s between sends keeps bursts gentle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
    pub min_interval: SignedDuration,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            per_minute: 10,
            per_hour: 200,
            per_day: 1000,
            min_interval: SignedDuration::from_secs(3),
        }
    }
}

impl Quota {
    /// The three rolling windows with their limits, shortest first.
    pub fn windows(&self) -> [(SignedDuration, u32); 3] {
        [
            (SignedDuration::from_mins(1), self.per_minute),
            (SignedDuration::from_hours(1), self.per_hour),
            (SignedDuration::from_hours(24), self.per_day),
        ]
    }
}

/// Retry and rest policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Back-off after the first failed attempt; doubles per attempt.
    pub base_backoff: SignedDuration,
    pub max_backoff: SignedDuration,
    /// Attempts (claims) after which a transient failure becomes permanent.
    pub max_attempts: u32,
    /// Consecutive failures of one SIM after which it rests.
    pub rest_after_errors: u32,
    pub rest_for: SignedDuration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_backoff: SignedDuration::from_secs(30),
            max_backoff: SignedDuration::from_mins(30),
            max_attempts: 5,
            rest_after_errors: 3,
            rest_for: SignedDuration::from_mins(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before the next attempt after `attempts` failed attempts (1-based).
    pub fn backoff(&self, attempts: u32) -> SignedDuration {
        let shift = attempts.saturating_sub(1).min(20);
        let factor = 1i32 << shift;
        self.base_backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    /// Whether a part that failed transiently after `attempts` attempts is given up.
    pub fn gives_up(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }

    /// Whether a SIM with `consecutive_errors` failures in a row (after this one) should rest.
    pub fn rests(&self, kind: FailureKind, consecutive_errors: u32) -> bool {
        kind == FailureKind::SimProblem || consecutive_errors >= self.rest_after_errors
    }
}

/// What is known of a failed send when its meaning is decided: read by the store inside the
/// transaction that applies the decision, so facts and decision cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureFacts {
    pub kind: FailureKind,
    /// Attempts (claims) the part has had, this one included.
    pub attempts: u32,
    /// The SIM's consecutive failures counting this one, when the failure counted against a
    /// SIM (see [`RetryPolicy::counts_against_sim`]); `None` otherwise.
    pub sim_errors: Option<u32>,
    /// The message was cancelled or expired while this part was in flight.
    pub message_closed: bool,
}

/// What a failed send means: the scheduler's decision, which the store only applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureDecision {
    /// Rest the SIM that failed until then (it is probed again afterwards).
    pub rest_sim_until: Option<Timestamp>,
    pub part: PartFate,
}

/// The fate of the part that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartFate {
    /// Back in the queue, due at `at`, avoiding the SIM that failed it.
    Requeue { at: Timestamp },
    /// Failed for good with `why` as its error. With `fail_message`, its message and the
    /// message's unsent parts fail too; without (the message was already closed), the
    /// message's state is only recomputed.
    Fail { why: String, fail_message: bool },
}

impl RetryPolicy {
    /// Whether a failure of this kind counts against the SIM's health: a message's own fault
    /// is not the SIM's.
    pub fn counts_against_sim(&self, kind: FailureKind) -> bool {
        kind != FailureKind::PermanentForMessage
    }

    /// Decides what a failed send means: retry later elsewhere, fail for good, rest the SIM.
    /// Pure: a function of the facts, the error text and `now`.
    pub fn on_failure(&self, facts: &FailureFacts, error: &str, now: Timestamp) -> FailureDecision {
        let rest_sim_until = facts
            .sim_errors
            .filter(|&errors| self.rests(facts.kind, errors))
            .map(|_| after(now, self.rest_for));
        let own_fault = facts.kind == FailureKind::PermanentForMessage;
        let part = if facts.message_closed || own_fault || self.gives_up(facts.attempts) {
            let why = if own_fault || facts.message_closed {
                error.to_owned()
            } else {
                format!("gave up after {} attempts: {error}", facts.attempts)
            };
            PartFate::Fail {
                why,
                fail_message: !facts.message_closed,
            }
        } else {
            PartFate::Requeue {
                at: after(now, self.backoff(facts.attempts)),
            }
        };
        FailureDecision {
            rest_sim_until,
            part,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), SignedDuration::from_secs(30));
        assert_eq!(p.backoff(2), SignedDuration::from_secs(60));
        assert_eq!(p.backoff(3), SignedDuration::from_secs(120));
        assert_eq!(p.backoff(10), SignedDuration::from_mins(30));
        assert_eq!(p.backoff(u32::MAX), SignedDuration::from_mins(30));
        assert_eq!(p.backoff(0), SignedDuration::from_secs(30));
    }

    fn cms(code: u16) -> FailureKind {
        crate::at::CmsError::from_code(code).class().into()
    }

    fn cme(code: u16) -> FailureKind {
        crate::at::CmeError::from_code(code).class().into()
    }

    #[test]
    fn a_failure_means_requeue_give_up_or_rest() {
        let p = RetryPolicy::default();
        let now = Timestamp::from_second(1_000_000).unwrap();
        let facts = |kind, attempts, sim_errors, message_closed| FailureFacts {
            kind,
            attempts,
            sim_errors,
            message_closed,
        };
        // A hiccup early on: back in the queue after the back-off, the SIM not rested yet.
        let d = p.on_failure(
            &facts(FailureKind::TransientForModem, 2, Some(1), false),
            "e",
            now,
        );
        assert_eq!(
            d.part,
            PartFate::Requeue {
                at: after(now, p.backoff(2))
            }
        );
        assert_eq!(d.rest_sim_until, None);
        // Too many attempts: failed for good, with the message, saying why.
        let d = p.on_failure(
            &facts(FailureKind::TransientForModem, 5, Some(1), false),
            "e",
            now,
        );
        assert_eq!(
            d.part,
            PartFate::Fail {
                why: "gave up after 5 attempts: e".into(),
                fail_message: true
            }
        );
        // The message's own fault: failed as reported, the SIM untouched.
        assert!(!p.counts_against_sim(FailureKind::PermanentForMessage));
        let d = p.on_failure(
            &facts(FailureKind::PermanentForMessage, 1, None, false),
            "e",
            now,
        );
        assert_eq!(
            d.part,
            PartFate::Fail {
                why: "e".into(),
                fail_message: true
            }
        );
        assert_eq!(d.rest_sim_until, None);
        // A SIM problem rests the SIM at once; too many errors in a row rest it too.
        let d = p.on_failure(&facts(FailureKind::SimProblem, 1, Some(1), false), "e", now);
        assert_eq!(d.rest_sim_until, Some(after(now, p.rest_for)));
        let d = p.on_failure(
            &facts(FailureKind::TransientForModem, 1, Some(3), false),
            "e",
            now,
        );
        assert_eq!(d.rest_sim_until, Some(after(now, p.rest_for)));
        // A message closed while its part was in flight takes no retry and is only recomputed.
        let d = p.on_failure(
            &facts(FailureKind::TransientForModem, 1, Some(1), true),
            "e",
            now,
        );
        assert_eq!(
            d.part,
            PartFate::Fail {
                why: "e".into(),
                fail_message: false
            }
        );
    }

    #[test]
    fn cms_and_cme_classes() {
        assert_eq!(cms(21), FailureKind::PermanentForMessage);
        assert_eq!(cms(304), FailureKind::PermanentForMessage);
        assert_eq!(cms(305), FailureKind::PermanentForMessage);
        assert_eq!(cms(38), FailureKind::TransientForModem);
        assert_eq!(cms(42), FailureKind::TransientForModem);
        assert_eq!(cms(332), FailureKind::TransientForModem);
        assert_eq!(cms(500), FailureKind::TransientForModem);
        assert_eq!(cms(600), FailureKind::TransientForModem);
        assert_eq!(cms(310), FailureKind::SimProblem);
        assert_eq!(cms(331), FailureKind::TransientForModem);
        assert_eq!(cms(330), FailureKind::SimProblem);
        assert_eq!(cme(11), FailureKind::SimProblem);
        assert_eq!(cme(30), FailureKind::SimProblem);
        assert_eq!(cme(100), FailureKind::TransientForModem);
    }

    #[test]
    fn gives_up_and_rests() {
        let p = RetryPolicy::default();
        assert!(!p.gives_up(4));
        assert!(p.gives_up(5));
        assert!(!p.rests(FailureKind::TransientForModem, 2));
        assert!(p.rests(FailureKind::TransientForModem, 3));
        assert!(p.rests(FailureKind::SimProblem, 1));
    }
}
