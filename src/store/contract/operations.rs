//! The contract as [`Store`] methods: the reads the daemon makes (accounts, credit, reviews,
//! blacklists) and each of its contract operations (accounts from the configuration, admin
//! changes with their audit records, review decisions, the inbound opt-out, the daily purge)
//! as one transaction here, so no transaction body lives outside store/ and `Store`'s
//! connection stays private to it. Contract errors come back as [`StoreError::Contract`] with
//! their text, as the daemon has always reported them.
//!
//! What must always hold: each write method is exactly one transaction, committed whole or not
//! at all, with the audit record of what it changed.

use super::*;
use crate::audit::Retention;
use crate::store::{MessageId, Store, StoreError};
use std::result::Result;

fn contract_err(e: ContractError) -> StoreError {
    StoreError::Contract(e.to_string())
}

fn audit_err(e: AuditError) -> StoreError {
    StoreError::Contract(e.to_string())
}

/// One account as the configuration states it, for [`Store::upsert_accounts`].
#[derive(Debug, Clone, Default)]
pub struct AccountUpsert {
    pub name: String,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    /// `(unmetered, settings)` for an account of the configuration's own `[[accounts]]`;
    /// `None` leaves what the database has.
    pub configured: Option<(bool, AccountSettings)>,
}

impl Store {
    /// The account called `name`.
    pub fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        account_by_name(&self.conn, name).map_err(contract_err)
    }

    /// Every account.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        accounts(&self.conn).map_err(contract_err)
    }

    /// The account a peer (uid, gids) acts for.
    pub fn account_for_peer(&self, uid: u32, gids: &[u32]) -> Result<Option<Account>, StoreError> {
        account_for_peer(&self.conn, uid, gids).map_err(contract_err)
    }

    /// Whether an account is unmetered (never charged).
    pub fn is_unmetered(&self, account_id: i64) -> Result<bool, StoreError> {
        is_unmetered(&self.conn, account_id).map_err(contract_err)
    }

    /// An account's credit at `now`.
    pub fn credit_summary(
        &self,
        account_id: i64,
        now: Timestamp,
    ) -> Result<CreditSummary, StoreError> {
        credit_summary(&self.conn, account_id, now).map_err(contract_err)
    }

    /// What the acceptance decision needs to know about an account and its recipients.
    pub fn acceptance_facts(
        &self,
        account_id: i64,
        numbers: &[String],
        now: Timestamp,
    ) -> Result<AcceptanceFacts, StoreError> {
        acceptance_facts(&self.conn, account_id, numbers, now).map_err(contract_err)
    }

    /// The messages waiting for review.
    pub fn pending_reviews(&self) -> Result<Vec<ReviewItem>, StoreError> {
        pending_reviews(&self.conn).map_err(contract_err)
    }

    /// The blacklisted numbers of one scope.
    pub fn number_blacklist(
        &self,
        scope: NumberScope,
    ) -> Result<Vec<BlacklistedNumber>, StoreError> {
        number_blacklist(&self.conn, scope).map_err(contract_err)
    }

    /// The configuration's accounts, in one transaction: a new name is created, an existing
    /// one gets the given uids and gids; a configured account also gets its settings.
    pub fn upsert_accounts(
        &mut self,
        list: &[AccountUpsert],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| {
            for a in list {
                let id = match account_by_name(tx, &a.name).map_err(contract_err)? {
                    Some(existing) => {
                        set_peers(tx, existing.id, &a.uids, &a.gids).map_err(contract_err)?;
                        existing.id
                    }
                    None => {
                        let new = NewAccount {
                            name: a.name.clone(),
                            uids: a.uids.clone(),
                            gids: a.gids.clone(),
                            ..NewAccount::default()
                        };
                        create_account(tx, &new, now).map_err(contract_err)?
                    }
                };
                let Some((unmetered, settings)) = &a.configured else {
                    continue;
                };
                set_unmetered(tx, id, *unmetered).map_err(contract_err)?;
                update_settings(tx, id, settings).map_err(contract_err)?;
            }
            Ok(())
        })
    }

    /// Adds an account, audited (`account_added`). Returns its id.
    pub fn add_account(
        &mut self,
        new: &NewAccount,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.transaction(|tx| {
            let id = create_account(tx, new, now).map_err(contract_err)?;
            let mut e = AuditEntry::new(AuditEvent::Other("account_added".into()), now, actor);
            e.account_id = Some(id);
            e.outcome = format!("account {} added", new.name);
            append(tx, e).map_err(audit_err)?;
            Ok(id)
        })
    }

    /// Adds a credit lot to an account, audited (`credit_added`). Returns the lot's id.
    pub fn add_credit(
        &mut self,
        account_id: i64,
        lot: &NewLot,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.transaction(|tx| {
            let lot_id = add_lot(tx, account_id, lot).map_err(contract_err)?;
            let messages = lot.quantity;
            let mut e = AuditEntry::new(AuditEvent::Other("credit_added".into()), now, actor);
            e.account_id = Some(account_id);
            e.parts = i64::try_from(messages).ok();
            e.outcome = format!(
                "lot {lot_id}: {messages} messages, price {} fen",
                lot.price_fen
            );
            append(tx, e).map_err(audit_err)?;
            Ok::<_, StoreError>(lot_id)
        })
    }

    /// A reviewer's decision on a held message, with the message released or rejected in the
    /// same transaction. `None` if the message is not waiting for review (nothing changed).
    pub fn decide_review(
        &mut self,
        id: i64,
        decision: ReviewDecision,
        reviewer: &str,
        now: Timestamp,
    ) -> Result<Option<ReviewResolution>, StoreError> {
        self.transaction(|tx| {
            let r = match decide_review(tx, id, decision, reviewer, now) {
                Ok(r) => r,
                Err(ContractError::ReviewNotPending(_)) => return Ok(None),
                Err(e) => return Err(contract_err(e)),
            };
            match decision {
                ReviewDecision::Approve => {
                    crate::store::release_from_review(tx, MessageId(id), now)?
                }
                ReviewDecision::Reject => {
                    crate::store::reject(tx, MessageId(id), "rejected by a reviewer", now)?
                }
                ReviewDecision::RejectAsViolation => crate::store::reject(
                    tx,
                    MessageId(id),
                    "rejected by a reviewer as prohibited content",
                    now,
                )?,
            }
            Ok::<_, StoreError>(Some(r))
        })
    }

    /// Blacklists `number` (for `account`, else globally), or else the account itself.
    /// Returns whether anything changed.
    pub fn blacklist(
        &mut self,
        number: Option<&str>,
        account: Option<i64>,
        reason: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transaction(|tx| {
            match (number, account) {
                (Some(n), id) => {
                    let scope = id.map_or(NumberScope::Global, NumberScope::Account);
                    add_number_blacklist(tx, scope, n, reason, actor, now)
                }
                (None, Some(id)) => blacklist_account(tx, id, reason, actor, now),
                (None, None) => Ok(false),
            }
            .map_err(contract_err)
        })
    }

    /// Lifts the blacklisting of `number` (for `account`, else global), or else of the account.
    /// Returns whether anything changed.
    pub fn lift_blacklist(
        &mut self,
        number: Option<&str>,
        account: Option<i64>,
        reason: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transaction(|tx| {
            match (number, account) {
                (Some(n), id) => {
                    let scope = id.map_or(NumberScope::Global, NumberScope::Account);
                    remove_number_blacklist(tx, scope, n, reason, actor, now)
                }
                (None, Some(id)) => lift_account_blacklist(tx, id, reason, actor, now),
                (None, None) => Ok(false),
            }
            .map_err(contract_err)
        })
    }

    /// An inbound SMS: an unsubscribe word opts its sender out (audited in the same
    /// transaction); see [`apply_inbound_opt_out`].
    pub fn apply_inbound_opt_out(
        &mut self,
        sender: &str,
        text: &str,
        cfg: &OptOutConfig,
        now: Timestamp,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        self.transaction(|tx| {
            apply_inbound_opt_out(tx, sender, text, cfg, now).map_err(contract_err)
        })
    }

    /// The daily purge, one transaction: audit records past `retention`, and sends older than
    /// the opt-out look-back. Returns the audit records removed.
    pub fn purge_contract(
        &mut self,
        retention: &Retention,
        lookback_days: u32,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.transaction(|tx| {
            let out =
                crate::store::audit::purge(tx, retention, now, "daemon").map_err(audit_err)?;
            let keep = SignedDuration::from_hours(24 * i64::from(lookback_days.max(1)));
            let before = now.checked_sub(keep).unwrap_or(Timestamp::MIN);
            prune_recent_sends(tx, before).map_err(contract_err)?;
            Ok(out.removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_770_000_000 + s).unwrap()
    }

    fn outcomes(s: &Store) -> Vec<String> {
        crate::store::audit::all_records(&s.conn)
            .unwrap()
            .into_iter()
            .map(|r| r.entry.outcome)
            .collect()
    }

    #[test]
    fn configured_accounts_are_created_then_updated_in_place() {
        let mut s = Store::open_in_memory().unwrap();
        let acme = |uids: Vec<u32>, configured| AccountUpsert {
            name: "acme".into(),
            uids,
            gids: vec![],
            configured,
        };
        s.upsert_accounts(&[acme(vec![1000], None)], t(0)).unwrap();
        let a = s.account_by_name("acme").unwrap().unwrap();
        assert_eq!(a.uids, vec![1000]);
        assert!(!s.is_unmetered(a.id).unwrap());
        let settings = AccountSettings {
            signature_required: true,
            ..AccountSettings::default()
        };
        s.upsert_accounts(&[acme(vec![1001], Some((true, settings)))], t(1))
            .unwrap();
        let b = s.account_by_name("acme").unwrap().unwrap();
        assert_eq!(b.id, a.id, "updated, not created again");
        assert_eq!(b.uids, vec![1001]);
        assert!(b.settings.signature_required);
        assert!(s.is_unmetered(a.id).unwrap());
        assert_eq!(
            s.account_for_peer(1001, &[]).unwrap().map(|a| a.id),
            Some(a.id)
        );
        assert_eq!(s.accounts().unwrap().len(), 1);
    }

    #[test]
    fn admin_changes_commit_with_their_audit_records() {
        let mut s = Store::open_in_memory().unwrap();
        let new = NewAccount {
            name: "beta".into(),
            ..NewAccount::default()
        };
        let id = s.add_account(&new, "admin:uid 0", t(0)).unwrap();
        let lot = NewLot {
            quantity: 5,
            price_fen: 100,
            purchased_at: t(0),
            expires_at: None,
        };
        let lot_id = s.add_credit(id, &lot, "admin:uid 0", t(0)).unwrap();
        assert_eq!(s.credit_summary(id, t(1)).unwrap().available, 5);
        assert!(s
            .blacklist(Some("13910199192"), None, "spam", "admin", t(2))
            .unwrap());
        assert!(!s
            .blacklist(Some("13910199192"), None, "spam", "admin", t(2))
            .unwrap());
        assert_eq!(s.number_blacklist(NumberScope::Global).unwrap().len(), 1);
        assert!(s
            .lift_blacklist(Some("13910199192"), None, "ok", "admin", t(3))
            .unwrap());
        assert!(s.number_blacklist(NumberScope::Global).unwrap().is_empty());
        assert!(s.blacklist(None, Some(id), "abuse", "admin", t(4)).unwrap());
        assert!(s
            .account_by_name("beta")
            .unwrap()
            .unwrap()
            .blacklisted
            .is_some());
        assert!(!s
            .blacklist(None, None, "nothing named", "admin", t(4))
            .unwrap());
        // Not held for review: nothing to decide, nothing changed.
        assert!(s
            .decide_review(42, ReviewDecision::Approve, "rev", t(5))
            .unwrap()
            .is_none());
        assert!(s.pending_reviews().unwrap().is_empty());
        let log = outcomes(&s);
        assert_eq!(log[0], "account beta added");
        assert_eq!(log[1], format!("lot {lot_id}: 5 messages, price 100 fen"));
        assert_eq!(log.len(), 5, "{log:?}");
        assert_eq!(
            crate::store::audit::verify(&s.conn).unwrap(),
            crate::audit::VerifyReport::Intact { records: 5 }
        );
    }
}
