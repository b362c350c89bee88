//! The contract in the running daemon: its settings (rules, opt-out words, retention) from the
//! configuration, the accounts upserted from it at start, the inbound opt-out, the daily audit
//! purge, and the account a peer acts for. Submission is in `submit.rs` and the admin operations
//! in `admin.rs`. Each operation is one `Store` method, one transaction (the bodies are in
//! `store::contract`); this file turns configuration into the store's terms.
//!
//! What must always hold: the database is the one source of truth for accounts: the
//! configuration's `[[accounts]]` are upserted into it at start and `smsgate account add` adds
//! more at run time; an opt-out and its audit record commit together.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use crate::api::AccessMap;
use crate::audit::Retention;
use crate::config::Config;
use crate::policy::content::RulesFile;
use crate::policy::{self, OptOutConfig, RuleSet};
use crate::store::contract::{AccountUpsert, ContractError};
use crate::store::{Store, StoreError};

/// The contract's settings that SIGHUP reloads.
#[derive(Debug, Clone)]
pub(crate) struct ContractSettings {
    pub rules: Arc<RuleSet>,
    pub optout: OptOutConfig,
    pub retention: Retention,
}

impl ContractSettings {
    /// Reads the rules file named in `[policy] rules` (none: no content rules).
    pub fn from_config(config: &Config) -> Result<ContractSettings, String> {
        Ok(ContractSettings {
            rules: Arc::new(load_rules(config.policy.rules.as_deref())?),
            optout: OptOutConfig {
                words: config.policy.unsubscribe_words.clone(),
                lookback_days: config.policy.optout_lookback_days,
            },
            retention: Retention::days(config.audit.retention_days)
                .map_err(|e| format!("audit.retention_days: {e}"))?,
        })
    }
}

fn load_rules(path: Option<&Path>) -> Result<RuleSet, String> {
    let file = match path {
        None => RulesFile::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("policy.rules {}: {e}", p.display()))?;
            RulesFile::parse(&text, &p.display().to_string()).map_err(|e| e.to_string())?
        }
    };
    RuleSet::compile(file).map_err(|e| e.to_string())
}

pub(super) fn contract_err(e: ContractError) -> StoreError {
    StoreError::Contract(e.to_string())
}

/// Upserts the configuration's accounts (with group names resolved in `access`) into the
/// database: a new name is created, an existing one gets the configured uids and gids.
pub(crate) fn upsert_accounts(
    store: &mut Store,
    config: &Config,
    access: &AccessMap,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut list = Vec::with_capacity(access.accounts.len());
    for a in &access.accounts {
        let configured = match config.accounts.iter().find(|c| c.name == a.name) {
            None => None,
            Some(c) => Some((
                c.unmetered,
                policy::AccountSettings {
                    signature_required: c.signature_required,
                    unsubscribe_suffix: c.unsubscribe_suffix.clone().filter(|s| !s.is_empty()),
                    send_window: c
                        .send_window
                        .as_deref()
                        .map(policy::SendWindow::parse)
                        .transpose()
                        .map_err(|e| StoreError::Invalid(format!("accounts {:?}: {e}", c.name)))?,
                },
            )),
        };
        list.push(AccountUpsert {
            name: a.name.clone(),
            uids: a.uids.clone(),
            gids: a.gids.clone(),
            configured,
        });
    }
    store.upsert_accounts(&list, now)
}

/// An inbound SMS: an unsubscribe word opts its sender out (audited in the same transaction).
pub(crate) fn inbound_opt_out(
    s: &mut Store,
    sender: &str,
    text: &str,
    cfg: &OptOutConfig,
    now: Timestamp,
) -> Result<Option<Vec<i64>>, StoreError> {
    if sender.is_empty() || !cfg.is_unsubscribe(text) {
        return Ok(None);
    }
    s.apply_inbound_opt_out(sender, text, cfg, now)
}

/// The daily purge: audit records past retention, and sends older than the opt-out look-back.
pub(crate) fn purge(
    s: &mut Store,
    retention: &Retention,
    lookback_days: u32,
    now: Timestamp,
) -> Result<u64, StoreError> {
    s.purge_contract(retention, lookback_days, now)
}

/// The account a peer acts for, from the database (accounts added at run time).
pub(crate) fn account_for_peer(
    s: &Store,
    uid: u32,
    gids: &[u32],
) -> Result<Option<String>, StoreError> {
    Ok(s.account_for_peer(uid, gids)?.map(|a| a.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiError;
    use crate::daemon::submit::{submit, SubmitInput};
    use crate::number::Number;
    use crate::store::contract::{NewAccount, NewLot};
    use crate::store::{self, MessageId, NewPart};

    #[test]
    fn rules_load_from_the_example_or_are_empty() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.toml");
        let rules = load_rules(Some(&example)).unwrap();
        assert!(rules.pattern_count() > 0);
        let none = load_rules(None).unwrap();
        assert_eq!(none.check("任何内容").action, policy::ContentAction::Allow);
        let err = load_rules(Some(Path::new("/nonexistent/rules.toml"))).unwrap_err();
        assert!(err.contains("/nonexistent/rules.toml"), "{err}");
    }

    // Vector "ucs2-submit-china" of /work/shared/vectors/pdu.json (AT+CMGS=21).
    const PDU: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";

    fn store_with_account(window: Option<&str>, now: Timestamp) -> Store {
        let mut s = Store::open_in_memory().unwrap();
        let new = NewAccount {
            name: "acme".into(),
            settings: policy::AccountSettings {
                send_window: window.map(|w| policy::SendWindow::parse(w).unwrap()),
                ..Default::default()
            },
            ..NewAccount::default()
        };
        let id = s.add_account(&new, "test", now).unwrap();
        let lot = NewLot {
            quantity: 10,
            price_fen: 0,
            purchased_at: now,
            expires_at: None,
        };
        s.add_credit(id, &lot, "test", now).unwrap();
        s
    }

    fn input(not_before: Option<Timestamp>, hours: i64, explicit: bool) -> SubmitInput {
        SubmitInput {
            account: "acme".into(),
            actor: "account:acme".into(),
            recipients: vec![crate::number::parse("13910199192").unwrap()],
            text: "hello".into(),
            priority: 0,
            not_before,
            validity_span: jiff::SignedDuration::from_hours(hours),
            validity_explicit: explicit,
            report: false,
            validity: None,
            channel: store::MessageChannel {
                sender_kind: "mobile".into(),
                gateway: None,
                src_id: None,
                fallback: false,
            },
        }
    }

    fn submit_one(
        s: &mut Store,
        input: &SubmitInput,
        now: Timestamp,
    ) -> Result<MessageId, ApiError> {
        let rules = load_rules(None).unwrap();
        let encode = |_: &Number, _: &str| {
            Ok((
                "ucs2".to_string(),
                vec![NewPart {
                    pdu_hex: PDU.into(),
                    cmgs_length: 21,
                }],
            ))
        };
        s.transaction(|tx| submit(tx, &rules, input, &encode, now))
            .unwrap()
            .map(|o| o.ids[0])
    }

    fn available(s: &Store, now: Timestamp) -> u64 {
        let a = s.account_by_name("acme").unwrap().unwrap();
        s.credit_summary(a.id, now).unwrap().available
    }

    #[test]
    fn the_deadline_counts_from_the_earliest_send_time() {
        let now: Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let day = jiff::SignedDuration::from_hours(24);
        // not_before three days ahead, the default 24 h validity: it gets its 24 h from then.
        let mut s = store_with_account(None, now);
        let nb = now.checked_add(day * 3).unwrap();
        let id = submit_one(&mut s, &input(Some(nb), 24, false), now).unwrap();
        let v = s.message(id).unwrap().unwrap();
        assert_eq!(v.deadline, Some(nb.checked_add(day).unwrap()));
        assert_eq!(v.summary.state, store::MessageState::Scheduled);
        // Three days on, the message is still due, not expired.
        let then = nb.checked_add(jiff::SignedDuration::from_secs(1)).unwrap();
        assert!(s.expire(then).unwrap().is_empty());

        // A closed send window: the validity starts when the window opens (08:00 UTC).
        let mut s = store_with_account(Some("08:00-22:00 UTC"), now);
        let id = submit_one(&mut s, &input(None, 2, false), now).unwrap();
        let v = s.message(id).unwrap().unwrap();
        let opens: Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
        assert_eq!(v.not_before, Some(opens));
        assert_eq!(
            v.deadline,
            Some(
                opens
                    .checked_add(jiff::SignedDuration::from_hours(2))
                    .unwrap()
            )
        );
    }

    #[test]
    fn an_explicit_validity_ending_before_not_before_is_refused_and_reserves_nothing() {
        let now: Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let mut s = store_with_account(None, now);
        let nb = now
            .checked_add(jiff::SignedDuration::from_hours(72))
            .unwrap();
        let err = submit_one(&mut s, &input(Some(nb), 24, true), now).unwrap_err();
        assert!(
            matches!(&err, ApiError::InvalidField(m) if m.starts_with("validity:")),
            "{err:?}"
        );
        assert_eq!(available(&s, now), 10, "nothing reserved");
        assert!(s
            .list_messages(&store::MessageQuery::default())
            .unwrap()
            .is_empty());
        // A validity that outlasts the wait is accepted, counted from not_before.
        let id = submit_one(&mut s, &input(Some(nb), 96, true), now).unwrap();
        let v = s.message(id).unwrap().unwrap();
        assert_eq!(
            v.deadline,
            Some(
                nb.checked_add(jiff::SignedDuration::from_hours(96))
                    .unwrap()
            )
        );
        assert_eq!(available(&s, now), 9);
    }

    #[test]
    fn settings_refuse_short_retention() {
        let mut config = Config::default();
        config.audit.retention_days = 30;
        assert!(ContractSettings::from_config(&config).is_err());
        config.audit.retention_days = 90;
        assert!(ContractSettings::from_config(&config).is_ok());
    }
}
