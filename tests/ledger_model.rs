//! The ledger always balances: a model-based property test. Random sequences of every
//! operation that touches credit (buy lots with different expiries, accept, hold for review,
//! approve, reject, reject as violation, cancel by sender and by admin, claim, sent, failed
//! (permanent and transient), unknown, settle as sent / not sent, operator retry, status reports
//! delivered / failed, time moving so that lots and deadlines expire, inbound opt-outs and the
//! refusals they cause, account blacklisting and its lifting) drive the real store on a real
//! SQLite file in WAL mode, against a small in-memory model of the billing rule (the rule at the
//! head of `store/hooks.rs`). After every step:
//! - per account, purchased = available + reserved + used + expired, and no lot counter is
//!   negative or exceeds its quantity;
//! - every lot (quantity, reserved, used, expiry, refund origin) equals the model's: credit is
//!   taken earliest-expiry first, refunded to its lot or, if that expired, to a refund lot;
//! - a part is charged at most once per send (committed rounds <= sends + violation charges);
//! - refunds never exceed reservations (per part, at most one round open, the latest; per
//!   account, refunded + committed rounds never exceed the rounds reserved);
//! - no review row is left pending for a message that is not held, nor a held message without
//!   one;
//! - the audit log verifies and holds exactly one record per audited state change.
//!
//! At least 10,000 steps run (checked at the end) across many seeds; a failure prints the
//! shortest failing sequence proptest's shrinking finds. Environment: `LEDGER_MODEL_CASES`
//! overrides the number of sequences.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use rusqlite::Connection;
use smsgate::audit::{AuditEntry, AuditEvent, VerifyReport};
use smsgate::number::{self, key};
use smsgate::policy::{self, Decision, OptOutConfig, RuleSet};
use smsgate::scheduler::FailureKind;
use smsgate::store::contract::{self as sc, NewAccount, NewLot, ReviewDecision};
use smsgate::store::{
    self, InitialState, MessageId, MessageState, NewMessage, NewPart, PartId, PartState,
    Settlement, SimHealth, SimId, SimIdentity, StatusReportIn, Store, StoreError,
};

// Vector "ucs2-submit-china" of /work/shared/vectors/pdu.json (AT+CMGS=21).
const PDU: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";

/// Recipients as a customer types them, and the same numbers as an SMSC writes them back in
/// replies and status reports (one key each).
const RECIPIENTS: [&str; 3] = ["13910199192", "0755-12345678", "+86 139 1234 5678"];
const REPLIERS: [&str; 3] = ["+8613910199192", "+8675512345678", "13912345678"];
const ACCOUNTS: usize = 2;
const MIN_STEPS: usize = 10_000;
const DEFAULT_CASES: u32 = 200;

#[derive(Debug, Clone)]
enum Op {
    Buy {
        account: usize,
        qty: u64,
        days: i64,
    },
    Accept {
        account: usize,
        to: usize,
        parts: usize,
        review: bool,
        validity_h: i64,
    },
    Approve {
        msg: usize,
    },
    Reject {
        msg: usize,
    },
    Violation {
        msg: usize,
    },
    Cancel {
        msg: usize,
        admin: bool,
    },
    Claim {
        msg: usize,
    },
    Sent {
        msg: usize,
    },
    Fail {
        msg: usize,
        permanent: bool,
    },
    Unknown {
        msg: usize,
    },
    Settle {
        msg: usize,
        sent: bool,
    },
    Retry {
        msg: usize,
    },
    Report {
        msg: usize,
        delivered: bool,
    },
    Advance {
        hours: i64,
    },
    OptOut {
        from: usize,
    },
    /// The recipient consents again in writing (an admin removes the opt-out).
    OptIn {
        account: usize,
        to: usize,
    },
    Lift {
        account: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0usize..64;
    prop_oneof![
        3 => (0..ACCOUNTS, 1u64..10, 1i64..400)
            .prop_map(|(account, qty, days)| Op::Buy { account, qty, days }),
        5 => (0..ACCOUNTS, 0..RECIPIENTS.len(), 1usize..=3, prop::bool::weighted(0.25), 12i64..240)
            .prop_map(|(account, to, parts, review, validity_h)| Op::Accept {
                account, to, parts, review, validity_h
            }),
        1 => m.clone().prop_map(|msg| Op::Approve { msg }),
        1 => m.clone().prop_map(|msg| Op::Reject { msg }),
        1 => m.clone().prop_map(|msg| Op::Violation { msg }),
        2 => (m.clone(), any::<bool>()).prop_map(|(msg, admin)| Op::Cancel { msg, admin }),
        6 => m.clone().prop_map(|msg| Op::Claim { msg }),
        4 => m.clone().prop_map(|msg| Op::Sent { msg }),
        2 => (m.clone(), any::<bool>()).prop_map(|(msg, permanent)| Op::Fail { msg, permanent }),
        1 => m.clone().prop_map(|msg| Op::Unknown { msg }),
        1 => (m.clone(), any::<bool>()).prop_map(|(msg, sent)| Op::Settle { msg, sent }),
        3 => m.clone().prop_map(|msg| Op::Retry { msg }),
        3 => (m.clone(), any::<bool>()).prop_map(|(msg, delivered)| Op::Report { msg, delivered }),
        3 => (1i64..8).prop_map(|hours| Op::Advance { hours }),
        1 => (24i64..24 * 45).prop_map(|hours| Op::Advance { hours }),
        1 => (0..REPLIERS.len()).prop_map(|from| Op::OptOut { from }),
        2 => (0..ACCOUNTS, 0..RECIPIENTS.len()).prop_map(|(account, to)| Op::OptIn { account, to }),
        1 => (0..ACCOUNTS).prop_map(|account| Op::Lift { account }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    Reserved,
    Committed,
    Refunded,
}

#[derive(Debug, Clone)]
struct MLot {
    account: usize,
    /// Bound after the step that created it (refund lots are created by the store).
    store_id: Option<i64>,
    quantity: i64,
    reserved: i64,
    used: i64,
    expires: i64,
    /// Model index of the lot whose refunds this lot holds.
    refund_of: Option<usize>,
}

#[derive(Debug, Clone)]
struct MPart {
    id: PartId,
    seq: u32,
    state: PartState,
    /// (model lot, state) per send round, oldest first.
    rounds: Vec<(usize, Round)>,
    /// Times the part left for the network.
    sends: u32,
    /// Rounds committed by a violation charge.
    violations: u32,
    mr: Option<u8>,
}

#[derive(Debug, Clone)]
struct MMsg {
    id: MessageId,
    account: usize,
    replier: usize,
    parts: Vec<MPart>,
    review_pending: bool,
}

/// What the runs exercised, so that a passing run cannot be a vacuous one.
#[derive(Debug, Default, Clone)]
struct Coverage {
    accepted: usize,
    held: usize,
    refused_opted_out: usize,
    refused_credit: usize,
    refused_blacklisted: usize,
    committed: usize,
    refunded: usize,
    refund_lots: usize,
    retried_settled: usize,
    recharged_after_undelivered: usize,
    violations: usize,
    held_cancel_refused: usize,
    held_cancel_admin: usize,
    expired_parts: usize,
    delivered: usize,
    undelivered: usize,
}

struct Model {
    cov: Coverage,
    now: i64,
    lots: Vec<MLot>,
    msgs: Vec<MMsg>,
    blacklisted: [bool; ACCOUNTS],
    opted_out: BTreeSet<(usize, String)>,
    /// (account, recipient key, second) of first parts sent, for opt-out attribution.
    sends: Vec<(usize, String, i64)>,
    audit: usize,
    next_mr: u8,
}

impl Model {
    fn ts(&self) -> Timestamp {
        Timestamp::from_second(self.now).unwrap()
    }

    fn available(&self, lot: &MLot) -> i64 {
        if lot.expires <= self.now {
            0
        } else {
            lot.quantity - lot.reserved - lot.used
        }
    }

    fn account_available(&self, account: usize) -> i64 {
        self.lots
            .iter()
            .filter(|l| l.account == account)
            .map(|l| self.available(l))
            .sum()
    }

    /// The lot the store takes a part from: earliest expiry first, then oldest.
    fn pick(&self, account: usize) -> Option<usize> {
        (0..self.lots.len())
            .filter(|&i| self.lots[i].account == account && self.available(&self.lots[i]) > 0)
            .min_by_key(|&i| (self.lots[i].expires, i))
    }

    fn reserve(&mut self, account: usize) -> usize {
        let lot = self.pick(account).expect("the model checked the credit");
        self.lots[lot].reserved += 1;
        lot
    }

    fn commit(&mut self, lot: usize) {
        self.lots[lot].reserved -= 1;
        self.lots[lot].used += 1;
    }

    fn refund(&mut self, lot: usize) {
        if self.lots[lot].expires > self.now {
            self.lots[lot].reserved -= 1;
            return;
        }
        self.lots[lot].reserved -= 1;
        self.lots[lot].quantity -= 1;
        let existing = (0..self.lots.len())
            .filter(|&i| self.lots[i].refund_of == Some(lot) && self.lots[i].expires > self.now)
            .max_by_key(|&i| (self.lots[i].expires, std::cmp::Reverse(i)));
        match existing {
            Some(i) => self.lots[i].quantity += 1,
            None => {
                self.cov.refund_lots += 1;
                let account = self.lots[lot].account;
                self.lots.push(MLot {
                    account,
                    store_id: None,
                    quantity: 1,
                    reserved: 0,
                    used: 0,
                    expires: self.now + 24 * 3600 * sc::REFUND_VALIDITY_DAYS,
                    refund_of: Some(lot),
                });
            }
        }
    }

    /// Applies the billing rule to one observed transition of part `p` of message `m`.
    fn transition(&mut self, m: usize, p: usize, from: PartState, to: PartState) {
        use PartState as P;
        let account = self.msgs[m].account;
        let open = self.msgs[m].parts[p]
            .rounds
            .last()
            .filter(|r| r.1 == Round::Reserved)
            .map(|r| r.0);
        match to {
            P::Sent | P::Delivered => {
                if !from.is_sent() {
                    self.msgs[m].parts[p].sends += 1;
                }
                if let Some(lot) = open {
                    self.commit(lot);
                    self.cov.committed += 1;
                    self.msgs[m].parts[p].rounds.last_mut().unwrap().1 = Round::Committed;
                }
                if to == P::Delivered {
                    self.cov.delivered += 1;
                }
                if to == P::Sent && self.msgs[m].parts[p].seq == 1 {
                    let k = key(RECIPIENTS[self.msgs[m].replier]);
                    self.sends.push((account, k, self.now));
                }
            }
            P::Failed | P::Expired | P::Cancelled => {
                if to == P::Expired {
                    self.cov.expired_parts += 1;
                }
                if from == P::Sent {
                    self.cov.undelivered += 1;
                }
                if let Some(lot) = open {
                    self.cov.refunded += 1;
                    self.refund(lot);
                    self.msgs[m].parts[p].rounds.last_mut().unwrap().1 = Round::Refunded;
                }
            }
            P::Queued if from == P::Failed => {
                let settled = self.msgs[m].parts[p]
                    .rounds
                    .last()
                    .is_some_and(|r| r.1 != Round::Reserved);
                if settled {
                    self.cov.retried_settled += 1;
                    if self.msgs[m].parts[p].rounds.last().unwrap().1 == Round::Committed {
                        self.cov.recharged_after_undelivered += 1;
                    }
                    let lot = self.reserve(account);
                    self.msgs[m].parts[p].rounds.push((lot, Round::Reserved));
                }
            }
            _ => {}
        }
        if matches!(
            to,
            P::Sent | P::Delivered | P::Failed | P::Expired | P::Cancelled
        ) {
            self.audit += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real thing.

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    /// A second connection on the same file, for the checks (WAL lets it read).
    check: Connection,
    accounts: [i64; ACCOUNTS],
    sim: SimId,
    rules: RuleSet,
    optout: OptOutConfig,
}

fn ce<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Contract(e.to_string())
}

fn tmp() -> tempfile::TempDir {
    // tmpfs when there is one: the test is about the ledger, not the disk's fsync latency.
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

fn rig(now: Timestamp) -> Rig {
    let dir = tmp();
    let path = dir.path().join("smsgate.db");
    let mut store = Store::open(&path).unwrap();
    let mut accounts = [0; ACCOUNTS];
    for (i, a) in accounts.iter_mut().enumerate() {
        *a = store
            .transaction(|tx| {
                let new = NewAccount {
                    name: format!("acct{i}"),
                    ..NewAccount::default()
                };
                sc::create_account(tx, &new, now).map_err(ce)
            })
            .unwrap();
    }
    let sim = store
        .upsert_sim(
            &SimIdentity {
                iccid: Some("89860012345678901234".into()),
                imsi: Some("460001234567890".into()),
                own_number: Some("13800000001".into()),
            },
            "/dev/ttyUSB0",
            now,
        )
        .unwrap();
    store
        .set_sim_health(
            sim,
            &SimHealth {
                healthy: true,
                registered: true,
                signal_dbm: Some(-70),
                error: None,
            },
            now,
        )
        .unwrap();
    let rules = RuleSet::from_toml(
        "[[category]]\nname = \"loans\"\naction = \"review\"\nwords = [\"贷款\"]\n",
        "ledger-model",
    )
    .unwrap();
    let check = Connection::open(&path).unwrap();
    Rig {
        _dir: dir,
        store,
        check,
        accounts,
        sim,
        rules,
        optout: OptOutConfig::default(),
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Index of a message in the model, or None when there are none yet: mostly one of the last
/// three (operations follow a message through its life), sometimes any.
fn pick(model: &Model, msg: usize) -> Option<usize> {
    let n = model.msgs.len();
    if n == 0 {
        return None;
    }
    Some(if msg < 48 {
        n - 1 - msg % n.min(3)
    } else {
        msg % n
    })
}

/// Like [`pick`], but mostly among the messages `wanted` holds for (a modem reports on the part
/// it has in flight, a reviewer decides a held message), sometimes any message (the store must
/// refuse what does not apply).
fn pick_where(model: &Model, msg: usize, wanted: impl Fn(&MMsg) -> bool) -> Option<usize> {
    let candidates: Vec<usize> = (0..model.msgs.len())
        .filter(|&i| wanted(&model.msgs[i]))
        .collect();
    if msg < 56 && !candidates.is_empty() {
        Some(candidates[msg % candidates.len()])
    } else {
        pick(model, msg)
    }
}

fn has(m: &MMsg, state: PartState) -> bool {
    m.parts.iter().any(|p| p.state == state)
}

fn first_in(model: &Model, m: usize, state: PartState) -> Option<PartId> {
    model.msgs[m]
        .parts
        .iter()
        .find(|p| p.state == state)
        .map(|p| p.id)
}

fn message_state(rig: &Rig, id: MessageId) -> MessageState {
    rig.store.message(id).unwrap().unwrap().summary.state
}

/// Runs one operation on the store and the op-level effects on the model (acceptance, review
/// decisions, opt-outs); part transitions are applied afterwards by [`sync`].
fn apply(rig: &mut Rig, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let now = model.ts();
    match *op {
        Op::Buy { account, qty, days } => {
            let expires = model.now + days * 24 * 3600;
            let id = rig
                .store
                .transaction(|tx| {
                    let lot = NewLot {
                        quantity: qty,
                        price_fen: 10 * qty as i64,
                        purchased_at: now,
                        expires_at: Some(Timestamp::from_second(expires).unwrap()),
                    };
                    sc::add_lot(tx, rig.accounts[account], &lot).map_err(ce)
                })
                .unwrap();
            model.lots.push(MLot {
                account,
                store_id: Some(id),
                quantity: qty as i64,
                reserved: 0,
                used: 0,
                expires,
                refund_of: None,
            });
        }
        Op::Accept {
            account,
            to,
            parts,
            review,
            validity_h,
        } => {
            let acct_id = rig.accounts[account];
            let recipient = number::parse(RECIPIENTS[to]).unwrap();
            let k = key(recipient.canonical());
            let text = if review {
                "【ACME】低息贷款"
            } else {
                "【ACME】您好"
            };
            let acct = sc::account(&rig.check, acct_id).unwrap();
            let facts =
                sc::acceptance_facts(&rig.check, acct_id, std::slice::from_ref(&k), now).unwrap();
            let n = parts as u32;
            let decision = policy::decide(
                &acct,
                &facts,
                &rig.rules,
                std::slice::from_ref(&k),
                text,
                now,
                &|_| n,
            );
            // The model's own prediction of the decision.
            let expect = if model.blacklisted[account] {
                "account_blacklisted"
            } else if model.opted_out.contains(&(account, k.clone())) {
                "opted_out"
            } else if model.account_available(account) < parts as i64 {
                "insufficient_credit"
            } else {
                "accepted"
            };
            let got = match &decision {
                Decision::Accepted(_) => "accepted",
                Decision::Refused(policy::Refusal::AccountBlacklisted { .. }) => {
                    "account_blacklisted"
                }
                Decision::Refused(policy::Refusal::AllRecipientsRefused { .. }) => "opted_out",
                Decision::Refused(policy::Refusal::InsufficientCredit { .. }) => {
                    "insufficient_credit"
                }
                Decision::Refused(r) => return Err(fail(format!("unexpected refusal {r:?}"))),
            };
            if got != expect {
                return Err(fail(format!("accept: model says {expect}, store {got}")));
            }
            match got {
                "accepted" => model.cov.accepted += 1,
                "opted_out" => model.cov.refused_opted_out += 1,
                "insufficient_credit" => model.cov.refused_credit += 1,
                _ => model.cov.refused_blacklisted += 1,
            }
            model.cov.held += usize::from(got == "accepted" && review);
            let Decision::Accepted(acc) = decision else {
                return Ok(());
            };
            let held = acc.hold.is_some();
            if held != review {
                return Err(fail(format!("review content held: {held}")));
            }
            let m = NewMessage {
                account: Some(acct.name.clone()),
                recipient: recipient.canonical().to_string(),
                recipient_carrier: recipient.carrier(),
                text: acc.final_text.clone(),
                encoding: "ucs2".into(),
                priority: 0,
                not_before: None,
                deadline: now.checked_add(SignedDuration::from_hours(validity_h)).ok(),
                report_requested: true,
                initial: if held {
                    InitialState::HeldForReview
                } else {
                    InitialState::Ready
                },
                parts: (0..parts)
                    .map(|_| NewPart {
                        pdu_hex: PDU.into(),
                        cmgs_length: 21,
                    })
                    .collect(),
            };
            let hold = acc.hold.clone();
            // As daemon::contract::submit does: message, reservation, audit, hold; one tx.
            let id = rig
                .store
                .transaction(|tx| {
                    let ids = store::insert_messages(tx, std::slice::from_ref(&m), now)?;
                    sc::reserve(tx, acct_id, n, now, &[ids[0].0]).map_err(ce)?;
                    let e = AuditEntry::message(
                        AuditEvent::Accepted,
                        now,
                        &format!("account:{}", acct.name),
                        acct_id,
                        ids[0].0,
                        &key(&m.recipient),
                        &m.text,
                        n,
                        &format!("accepted; {n} parts reserved"),
                    );
                    store::audit::append(tx, e).map_err(ce)?;
                    if let Some(h) = &hold {
                        sc::hold_for_review(tx, ids[0].0, acct_id, &h.category, &h.word, now)
                            .map_err(ce)?;
                    }
                    Ok::<_, StoreError>(ids[0])
                })
                .unwrap();
            model.audit += 1 + usize::from(held);
            let view = rig.store.message(id).unwrap().unwrap();
            let mut mparts = Vec::new();
            for p in &view.parts {
                let lot = model.reserve(account);
                mparts.push(MPart {
                    id: p.id,
                    seq: p.seq,
                    state: p.state,
                    rounds: vec![(lot, Round::Reserved)],
                    sends: 0,
                    violations: 0,
                    mr: None,
                });
            }
            model.msgs.push(MMsg {
                id,
                account,
                replier: to,
                parts: mparts,
                review_pending: held,
            });
        }
        Op::Approve { msg } | Op::Reject { msg } | Op::Violation { msg } => {
            let Some(m) = pick_where(model, msg, |m| m.review_pending) else {
                return Ok(());
            };
            let decision = match op {
                Op::Approve { .. } => ReviewDecision::Approve,
                Op::Reject { .. } => ReviewDecision::Reject,
                _ => ReviewDecision::RejectAsViolation,
            };
            let id = model.msgs[m].id;
            // As the admin operation does: the decision and the message's fate, one tx.
            let r = rig.store.transaction(|tx| {
                let r = sc::decide_review(tx, id.0, decision, "admin:root", now).map_err(ce)?;
                match decision {
                    ReviewDecision::Approve => store::release_from_review(tx, id, now)?,
                    _ => store::reject(tx, id, "rejected by a reviewer", now)?,
                }
                Ok::<_, StoreError>(r)
            });
            let pending = model.msgs[m].review_pending;
            if r.is_ok() != pending {
                return Err(fail(format!(
                    "review of message {}: pending in the model {pending}, store {r:?}",
                    id.0
                )));
            }
            if !pending {
                return Ok(());
            }
            model.msgs[m].review_pending = false;
            model.audit += 1;
            let account = model.msgs[m].account;
            for p in 0..model.msgs[m].parts.len() {
                let open = model.msgs[m].parts[p]
                    .rounds
                    .last()
                    .filter(|r| r.1 == Round::Reserved)
                    .map(|r| r.0);
                let Some(lot) = open else { continue };
                match decision {
                    ReviewDecision::Approve => {}
                    ReviewDecision::Reject => {
                        model.refund(lot);
                        model.msgs[m].parts[p].rounds.last_mut().unwrap().1 = Round::Refunded;
                    }
                    ReviewDecision::RejectAsViolation => {
                        model.commit(lot);
                        model.msgs[m].parts[p].rounds.last_mut().unwrap().1 = Round::Committed;
                        model.msgs[m].parts[p].violations += 1;
                        model.cov.violations += 1;
                    }
                }
            }
            if decision == ReviewDecision::RejectAsViolation && !model.blacklisted[account] {
                model.blacklisted[account] = true;
                model.audit += 1;
            }
        }
        Op::Cancel { msg, admin } => {
            let Some(m) = pick(model, msg) else {
                return Ok(());
            };
            let id = model.msgs[m].id;
            let before = message_state(rig, id);
            let r = if admin {
                rig.store.cancel_by_admin(id, "admin:root", now)
            } else {
                rig.store.cancel(id, now)
            };
            if before == MessageState::HeldForReview {
                if r.is_ok() != admin {
                    return Err(fail(format!(
                        "cancel of held message (admin {admin}): {r:?}"
                    )));
                }
                if admin {
                    model.msgs[m].review_pending = false;
                    model.audit += 1;
                    model.cov.held_cancel_admin += 1;
                } else {
                    model.cov.held_cancel_refused += 1;
                }
            }
        }
        Op::Claim { msg } => {
            let Some(m) = pick_where(model, msg, |m| has(m, PartState::Queued)) else {
                return Ok(());
            };
            if let Some(p) = first_in(model, m, PartState::Queued) {
                let _ = rig.store.claim(p, rig.sim, now);
            }
        }
        Op::Sent { msg } => {
            let Some(m) = pick_where(model, msg, |m| has(m, PartState::Sending)) else {
                return Ok(());
            };
            if let Some(p) = first_in(model, m, PartState::Sending) {
                let mr = model.next_mr;
                model.next_mr = model.next_mr.wrapping_add(1);
                rig.store.mark_sent(p, mr, now).unwrap();
                let part = model.msgs[m].parts.iter_mut().find(|x| x.id == p).unwrap();
                part.mr = Some(mr);
            }
        }
        Op::Fail { msg, permanent } => {
            let Some(m) = pick_where(model, msg, |m| has(m, PartState::Sending)) else {
                return Ok(());
            };
            if let Some(p) = first_in(model, m, PartState::Sending) {
                let (error, kind) = if permanent {
                    ("+CMS ERROR: 21", FailureKind::PermanentForMessage)
                } else {
                    ("+CMS ERROR: 42", FailureKind::TransientForModem)
                };
                rig.store.mark_failed(p, error, kind, now).unwrap();
            }
        }
        Op::Unknown { msg } => {
            let Some(m) = pick_where(model, msg, |m| has(m, PartState::Sending)) else {
                return Ok(());
            };
            if let Some(p) = first_in(model, m, PartState::Sending) {
                rig.store
                    .mark_unknown(p, "timeout after the PDU", now)
                    .unwrap();
            }
        }
        Op::Settle { msg, sent } => {
            let Some(m) = pick_where(model, msg, |m| has(m, PartState::Unknown)) else {
                return Ok(());
            };
            if let Some(p) = first_in(model, m, PartState::Unknown) {
                let v = if sent {
                    Settlement::Sent
                } else {
                    Settlement::NotSent
                };
                rig.store.settle_unknown(p, v, now).unwrap();
            }
        }
        Op::Retry { msg } => {
            let Some(m) = pick_where(model, msg, |m| {
                has(m, PartState::Failed) || has(m, PartState::Unknown)
            }) else {
                return Ok(());
            };
            let id = model.msgs[m].id;
            let needed = model.msgs[m]
                .parts
                .iter()
                .filter(|p| {
                    p.state == PartState::Failed
                        && p.rounds.last().is_some_and(|r| r.1 != Round::Reserved)
                })
                .count() as i64;
            let available = model.account_available(model.msgs[m].account);
            match rig.store.retry(id, now) {
                Ok(_) if available < needed => {
                    return Err(fail(format!(
                        "retry of message {} took {needed} parts with {available} available",
                        id.0
                    )))
                }
                Err(e) if e.to_string().contains("insufficient credit") && available >= needed => {
                    return Err(fail(format!(
                        "retry of message {} refused with {available} available for {needed}: {e}",
                        id.0
                    )))
                }
                _ => {}
            }
        }
        Op::Report { msg, delivered } => {
            let Some(m) = pick_where(model, msg, |m| has(m, PartState::Sent)) else {
                return Ok(());
            };
            let part = model.msgs[m]
                .parts
                .iter()
                .rev()
                .find(|p| p.state == PartState::Sent && p.mr.is_some());
            if let Some(p) = part {
                let report = StatusReportIn {
                    sim: rig.sim,
                    tp_mr: p.mr.unwrap_or_default(),
                    recipient: REPLIERS[model.msgs[m].replier].into(),
                    status: if delivered { 0x00 } else { 0x46 },
                    raw_pdu: String::new(),
                };
                rig.store.apply_status_report(&report, now).unwrap();
            }
        }
        Op::Advance { hours } => {
            model.now += hours * 3600;
            rig.store.expire(model.ts()).unwrap();
        }
        Op::OptOut { from } => {
            let sender = REPLIERS[from];
            let k = key(sender);
            let cfg = rig.optout.clone();
            let targets = rig
                .store
                .transaction(|tx| {
                    sc::apply_inbound_opt_out(tx, sender, "TD", &cfg, now).map_err(ce)
                })
                .unwrap()
                .unwrap_or_default();
            let since = model.now - 24 * 3600 * i64::from(cfg.lookback_days);
            let mut expect: BTreeSet<usize> = model
                .sends
                .iter()
                .filter(|(_, r, at)| *r == k && *at >= since)
                .map(|s| s.0)
                .collect();
            if expect.is_empty() {
                expect = (0..ACCOUNTS).collect();
            }
            let got: BTreeSet<usize> = targets
                .iter()
                .map(|t| rig.accounts.iter().position(|a| a == t).unwrap())
                .collect();
            if got != expect {
                return Err(fail(format!(
                    "opt-out from {sender}: {got:?}, model {expect:?}"
                )));
            }
            for a in expect {
                if model.opted_out.insert((a, k.clone())) {
                    model.audit += 1;
                }
            }
        }
        Op::OptIn { account, to } => {
            let k = key(RECIPIENTS[to]);
            let changed = rig
                .store
                .transaction(|tx| {
                    sc::remove_opt_out(tx, rig.accounts[account], &k, "consent", "admin", now)
                        .map_err(ce)
                })
                .unwrap();
            if changed != model.opted_out.remove(&(account, k)) {
                return Err(fail(format!("opt-in of {}: {changed}", RECIPIENTS[to])));
            }
            model.audit += usize::from(changed);
        }
        Op::Lift { account } => {
            let changed = rig
                .store
                .transaction(|tx| {
                    sc::lift_account_blacklist(tx, rig.accounts[account], "appeal", "admin", now)
                        .map_err(ce)
                })
                .unwrap();
            if changed != model.blacklisted[account] {
                return Err(fail(format!("lift of account {account}: {changed}")));
            }
            if changed {
                model.blacklisted[account] = false;
                model.audit += 1;
            }
        }
    }
    Ok(())
}

/// Reads every part's state from the store and applies the observed transitions to the model.
fn sync(rig: &Rig, model: &mut Model) -> Result<(), TestCaseError> {
    let states: BTreeMap<i64, PartState> = rig
        .check
        .prepare("SELECT id, state FROM parts")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (id, s) = r.unwrap();
            (id, PartState::parse(&s).unwrap())
        })
        .collect();
    for m in 0..model.msgs.len() {
        for p in 0..model.msgs[m].parts.len() {
            let id = model.msgs[m].parts[p].id;
            let from = model.msgs[m].parts[p].state;
            let to = states[&id.0];
            if from != to {
                if !from.can_become(to) {
                    return Err(fail(format!("part {}: {from} -> {to}", id.0)));
                }
                model.transition(m, p, from, to);
                model.msgs[m].parts[p].state = to;
            }
        }
    }
    Ok(())
}

/// The invariants, after every step.
fn check(rig: &Rig, model: &mut Model) -> Result<(), TestCaseError> {
    let now = model.ts();
    // Lots: bind the refund lots the store created, then compare every lot with the model.
    type Row = (i64, i64, i64, i64, i64, i64, Option<i64>);
    let rows: Vec<Row> = rig
        .check
        .prepare(
            "SELECT id, account_id, quantity, reserved, used, expires_at, refund_of
             FROM credit_lots ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let unbound: Vec<usize> = (0..model.lots.len())
        .filter(|&i| model.lots[i].store_id.is_none())
        .collect();
    let mut unbound = unbound.into_iter();
    for row in &rows {
        if !model.lots.iter().any(|l| l.store_id == Some(row.0)) {
            let Some(i) = unbound.next() else {
                return Err(fail(format!(
                    "the store created a lot the model did not: {row:?}"
                )));
            };
            model.lots[i].store_id = Some(row.0);
        }
    }
    if let Some(i) = unbound.next() {
        return Err(fail(format!(
            "the model created a lot the store did not: {:?}",
            model.lots[i]
        )));
    }
    for (id, account_id, quantity, reserved, used, expires, refund_of) in &rows {
        if *reserved < 0 || *used < 0 || reserved + used > *quantity {
            return Err(fail(format!(
                "lot {id}: quantity {quantity}, reserved {reserved}, used {used}"
            )));
        }
        let l = model.lots.iter().find(|l| l.store_id == Some(*id)).unwrap();
        let want = (
            rig.accounts[l.account],
            l.quantity,
            l.reserved,
            l.used,
            // The model counts seconds; the store keeps milliseconds (migration 0008).
            l.expires * 1000,
            l.refund_of.and_then(|o| model.lots[o].store_id),
        );
        let got = (
            *account_id,
            *quantity,
            *reserved,
            *used,
            *expires,
            *refund_of,
        );
        if want != got {
            return Err(fail(format!("lot {id}: store {got:?}, model {want:?}")));
        }
    }
    // Per account: purchased = available + reserved + used + expired.
    for (a, &acct) in rig.accounts.iter().enumerate() {
        let s = sc::credit_summary(&rig.check, acct, now).unwrap();
        let purchased: i64 = model
            .lots
            .iter()
            .filter(|l| l.account == a)
            .map(|l| l.quantity)
            .sum();
        let total = (s.available + s.reserved + s.used + s.expired) as i64;
        if purchased != total {
            return Err(fail(format!(
                "account {a}: purchased {purchased}, summary {s:?}"
            )));
        }
        if s.available as i64 != model.account_available(a) {
            return Err(fail(format!(
                "account {a}: available {}, model {}",
                s.available,
                model.account_available(a)
            )));
        }
    }
    // Reservations: per part, rounds as the model has them; charged at most once per send;
    // at most one open round, the latest; refunds never exceed reservations.
    let mut rounds: BTreeMap<(i64, u32), Vec<(i64, String)>> = BTreeMap::new();
    let mut st = rig
        .check
        .prepare(
            "SELECT message_id, part_seq, round, lot_id, state FROM credit_reservations
             ORDER BY message_id, part_seq, round",
        )
        .unwrap();
    let rs = st
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .unwrap();
    for r in rs {
        let (m, seq, round, lot, state) = r.unwrap();
        let v = rounds.entry((m, seq)).or_default();
        if round != v.len() as i64 + 1 {
            return Err(fail(format!(
                "message {m} part {seq}: round {round} after {}",
                v.len()
            )));
        }
        v.push((lot, state));
    }
    let (mut reserved_total, mut settled_total) = (0usize, 0usize);
    for msg in &model.msgs {
        for p in &msg.parts {
            let got = rounds.get(&(msg.id.0, p.seq)).cloned().unwrap_or_default();
            let want: Vec<(i64, String)> = p
                .rounds
                .iter()
                .map(|(lot, s)| {
                    let state = match s {
                        Round::Reserved => "reserved",
                        Round::Committed => "committed",
                        Round::Refunded => "refunded",
                    };
                    (model.lots[*lot].store_id.unwrap_or(-1), state.to_string())
                })
                .collect();
            if got != want {
                return Err(fail(format!(
                    "message {} part {} ({}): rounds {got:?}, model {want:?}",
                    msg.id.0, p.seq, p.state
                )));
            }
            let committed = got.iter().filter(|r| r.1 == "committed").count() as u32;
            if committed > p.sends + p.violations {
                return Err(fail(format!(
                    "message {} part {}: charged {committed} times for {} sends",
                    msg.id.0, p.seq, p.sends
                )));
            }
            let open: Vec<usize> = (0..got.len()).filter(|&i| got[i].1 == "reserved").collect();
            if open.len() > 1 || open.first().is_some_and(|&i| i + 1 != got.len()) {
                return Err(fail(format!(
                    "message {} part {}: open rounds {open:?}",
                    msg.id.0, p.seq
                )));
            }
            reserved_total += got.len();
            settled_total += got.iter().filter(|r| r.1 != "reserved").count();
        }
    }
    if settled_total > reserved_total {
        return Err(fail(format!(
            "{settled_total} settled of {reserved_total} reserved"
        )));
    }
    // Reviews: pending exactly for the messages held for review.
    let pending: BTreeSet<i64> = sc::pending_reviews(&rig.check)
        .unwrap()
        .into_iter()
        .map(|r| r.message_id)
        .collect();
    let held: BTreeSet<i64> = rig
        .check
        .prepare("SELECT id FROM messages WHERE state = 'held_for_review'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let model_pending: BTreeSet<i64> = model
        .msgs
        .iter()
        .filter(|m| m.review_pending)
        .map(|m| m.id.0)
        .collect();
    if pending != held || pending != model_pending {
        return Err(fail(format!(
            "pending reviews {pending:?}, held messages {held:?}, model {model_pending:?}"
        )));
    }
    // The audit log: intact, one record per audited state change.
    let records: i64 = rig
        .check
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    if records as usize != model.audit {
        return Err(fail(format!(
            "{records} audit records, model expects {}",
            model.audit
        )));
    }
    match store::audit::verify(&rig.check).unwrap() {
        VerifyReport::Intact { .. } => {}
        other => return Err(fail(format!("audit log: {other:?}"))),
    }
    Ok(())
}

fn run(ops: &[Op], steps: &Cell<usize>, cov: &mut Coverage) -> Result<(), TestCaseError> {
    let start = Timestamp::from_second(1_764_000_000).unwrap();
    let mut rig = rig(start);
    let mut model = Model {
        cov: Coverage::default(),
        now: start.as_second(),
        lots: Vec::new(),
        msgs: Vec::new(),
        blacklisted: [false; ACCOUNTS],
        opted_out: BTreeSet::new(),
        sends: Vec::new(),
        audit: 0,
        next_mr: 0,
    };
    for (i, op) in ops.iter().enumerate() {
        apply(&mut rig, &mut model, op)
            .and_then(|()| sync(&rig, &mut model))
            .and_then(|()| check(&rig, &mut model))
            .map_err(|e| fail(format!("step {i} ({op:?}): {e}")))?;
        steps.set(steps.get() + 1);
    }
    add(cov, &model.cov);
    Ok(())
}

fn add(total: &mut Coverage, c: &Coverage) {
    total.accepted += c.accepted;
    total.held += c.held;
    total.refused_opted_out += c.refused_opted_out;
    total.refused_credit += c.refused_credit;
    total.refused_blacklisted += c.refused_blacklisted;
    total.committed += c.committed;
    total.refunded += c.refunded;
    total.refund_lots += c.refund_lots;
    total.retried_settled += c.retried_settled;
    total.recharged_after_undelivered += c.recharged_after_undelivered;
    total.violations += c.violations;
    total.held_cancel_refused += c.held_cancel_refused;
    total.held_cancel_admin += c.held_cancel_admin;
    total.expired_parts += c.expired_parts;
    total.delivered += c.delivered;
    total.undelivered += c.undelivered;
}

#[test]
fn the_ledger_always_balances() {
    let cases = std::env::var("LEDGER_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let steps = Cell::new(0usize);
    let cov = std::cell::RefCell::new(Coverage::default());
    let result = runner.run(&prop::collection::vec(op(), 1..=200), |ops| {
        run(&ops, &steps, &mut cov.borrow_mut())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, ops)) => panic!(
            "the ledger broke; shortest failing sequence ({} steps):\n{ops:#?}\n{why}",
            ops.len()
        ),
        Err(e) => panic!("{e}"),
    }
    let steps = steps.get();
    let cov = cov.into_inner();
    eprintln!("ledger model: {cases} sequences, {steps} steps; {cov:?}");
    if cases >= DEFAULT_CASES {
        assert!(steps >= MIN_STEPS, "only {steps} steps ran");
        // Every path the rule covers was taken at least once.
        let c = &cov;
        for (what, n) in [
            ("accepted", c.accepted),
            ("held", c.held),
            ("refused opted out", c.refused_opted_out),
            ("refused for credit", c.refused_credit),
            ("refused blacklisted", c.refused_blacklisted),
            ("committed", c.committed),
            ("refunded", c.refunded),
            ("refund lots", c.refund_lots),
            ("retried after settling", c.retried_settled),
            ("recharged after undelivered", c.recharged_after_undelivered),
            ("violations", c.violations),
            ("held cancel refused", c.held_cancel_refused),
            ("held cancel by admin", c.held_cancel_admin),
            ("expired parts", c.expired_parts),
            ("delivered", c.delivered),
            ("undelivered", c.undelivered),
        ] {
            assert!(
                n > 0,
                "no {what} in {steps} steps: the generator needs tuning"
            );
        }
    }
}
