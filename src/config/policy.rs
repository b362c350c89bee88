//! `[policy]`: the content rules file and the opt-out settings (the reply words that unsubscribe
//! and how far back a reply counts).
//!
//! What must hold: the default unsubscribe words are the documented ones; unknown keys are errors;
//! empty words are refused by [`super::Config::validate`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[policy]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Content rules file (keyword categories, review words), reloaded on SIGHUP; none: no
    /// content rules.
    pub rules: Option<PathBuf>,
    /// Replies that opt the sender out (compared case-insensitively, whole message trimmed).
    pub unsubscribe_words: Vec<String>,
    /// A reply counts as an opt-out from an account the replier got a message from within
    /// this many days.
    pub optout_lookback_days: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            rules: None,
            unsubscribe_words: ["TD", "T", "R", "N", "退订", "取消", "STOP"]
                .into_iter()
                .map(String::from)
                .collect(),
            optout_lookback_days: 30,
        }
    }
}
