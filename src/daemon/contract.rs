//! The contract in the running daemon: its settings (rules, opt-out words, retention) from the
//! configuration, the accounts upserted from it at start, the inbound opt-out, the daily audit
//! purge, and the account a peer acts for. Submission is in `submit.rs` (its transaction body in
//! `store::acceptance`) and the admin operations in `admin.rs`. Each operation is one `Store`
//! method, one transaction (the bodies are in `store::contract`); this file turns configuration
//! into the store's terms.
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
use crate::store::contract::AccountUpsert;
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

    #[test]
    fn settings_refuse_short_retention() {
        let mut config = Config::default();
        config.audit.retention_days = 30;
        assert!(ContractSettings::from_config(&config).is_err());
        config.audit.retention_days = 90;
        assert!(ContractSettings::from_config(&config).is_ok());
    }
}
