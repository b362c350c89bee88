//! Opt-out words: an inbound SMS whose whole text is an unsubscribe word (TD, 退订, T, R, 拒收,
//! STOP by default) puts its sender on the opt-out list. This file owns recognising the word;
//! the store applies it (see `store::contract::apply_inbound_opt_out`).
//!
//! What must always hold: the text is compared after trimming and normalising width and case
//! (and dropping punctuation, so "退订！" counts), and must be the word alone: "TD" inside a
//! longer sentence is not a refusal we can be sure of.

use serde::{Deserialize, Serialize};

use super::normalize::normalize_str;

/// Opt-out settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutConfig {
    /// The words, as written; compared normalised.
    pub words: Vec<String>,
    /// An opt-out applies to the accounts that messaged the sender within this many days
    /// (to all accounts if none did).
    pub lookback_days: u32,
}

impl Default for OptOutConfig {
    fn default() -> Self {
        OptOutConfig {
            words: ["TD", "退订", "T", "R", "拒收", "STOP"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            lookback_days: 30,
        }
    }
}

impl OptOutConfig {
    /// Whether `text` is an unsubscribe word.
    pub fn is_unsubscribe(&self, text: &str) -> bool {
        let t = normalize_str(text);
        !t.is_empty() && self.words.iter().any(|w| normalize_str(w) == t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_variants() {
        let c = OptOutConfig::default();
        for s in [
            "TD",
            "td",
            "ＴＤ",
            " 退订 ",
            "退订！",
            "stop",
            "Ｔ",
            "r",
            "拒收\n",
        ] {
            assert!(c.is_unsubscribe(s), "{s:?}");
        }
        for s in ["", "hello", "TD please call me", "好的"] {
            assert!(!c.is_unsubscribe(s), "{s:?}");
        }
    }
}
