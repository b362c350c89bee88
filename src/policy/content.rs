//! Content rules: categories of words with an action, loaded from a TOML rules file, compiled
//! into one Aho-Corasick automaton over normalised text.
//!
//! What must always hold: a message is checked with one pass of one automaton (never a loop over
//! words); matching sees through width, case, spaces, punctuation and zero-width characters (see
//! [`super::normalize`]); every match is reported with its category, the rule word and the span
//! in the original text; the decided action is the strongest one matched: block beats review
//! beats allow.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use super::normalize::{normalize, normalize_str};
use super::PolicyError;

/// The nine prohibited categories of the contract, the names the shipped rules file uses.
pub const PROHIBITED_CATEGORIES: [&str; 9] = [
    "against_constitution",
    "national_security",
    "national_honour",
    "ethnic_hatred",
    "religion_cults",
    "rumours",
    "obscenity_gambling_violence_terror",
    "insult_defamation",
    "other_illegal",
];

/// What a matched category does to a message. Ordered: a later variant beats an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentAction {
    /// Nothing to do (also the verdict when nothing matched).
    Allow,
    /// Held until a reviewer decides.
    Review,
    /// Not sent, charged, and the account is blacklisted.
    Block,
}

/// One category as written in the rules file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRules {
    pub name: String,
    pub action: ContentAction,
    #[serde(default)]
    pub words: Vec<String>,
}

/// A rules file: `[[category]]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default, rename = "category")]
    pub categories: Vec<CategoryRules>,
}

impl RulesFile {
    /// Parses a TOML rules file; `source` names the file in errors.
    pub fn parse(toml_text: &str, source: &str) -> Result<RulesFile, PolicyError> {
        toml::from_str(toml_text).map_err(|e| PolicyError::Rules {
            source_name: source.to_string(),
            detail: e.to_string(),
        })
    }
}

/// One match of a rule word in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentMatch {
    pub category: String,
    pub action: ContentAction,
    /// The rule word as written in the rules file.
    pub word: String,
    /// Byte span of the match in the original text.
    pub start: usize,
    pub end: usize,
}

/// The result of checking a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentVerdict {
    /// The strongest action among the matches; `Allow` when nothing matched.
    pub action: ContentAction,
    /// Every match, in text order.
    pub matches: Vec<ContentMatch>,
}

impl ContentVerdict {
    /// The first match that carries the decided action (what a report names).
    pub fn decisive(&self) -> Option<&ContentMatch> {
        self.matches.iter().find(|m| m.action == self.action)
    }
}

/// Compiled rules: one automaton, and for each pattern the (category, word) pairs behind it
/// (the same normalised word may sit in several categories).
#[derive(Debug, Clone)]
pub struct RuleSet {
    automaton: Option<AhoCorasick>,
    owners: Vec<Vec<(usize, usize)>>,
    categories: Vec<CategoryRules>,
}

impl RuleSet {
    /// Compiles a rules file. A category name may appear once; a word that normalises to
    /// nothing (only punctuation) is an error, since it could never match.
    pub fn compile(file: RulesFile) -> Result<RuleSet, PolicyError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut seen = HashMap::new();
        for (ci, cat) in file.categories.iter().enumerate() {
            if cat.name.trim().is_empty() {
                return Err(PolicyError::BadRule(format!(
                    "category #{} has no name",
                    ci + 1
                )));
            }
            if seen.insert(cat.name.clone(), ci).is_some() {
                return Err(PolicyError::BadRule(format!(
                    "category {:?} appears twice",
                    cat.name
                )));
            }
            for (wi, word) in cat.words.iter().enumerate() {
                let norm = normalize_str(word);
                if norm.is_empty() {
                    return Err(PolicyError::BadRule(format!(
                        "category {:?} word #{} ({word:?}) has no letters or digits",
                        cat.name,
                        wi + 1
                    )));
                }
                let pi = *index.entry(norm.clone()).or_insert_with(|| {
                    patterns.push(norm);
                    owners.push(Vec::new());
                    owners.len() - 1
                });
                if let Some(o) = owners.get_mut(pi) {
                    o.push((ci, wi));
                }
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| PolicyError::BadRule(format!("automaton: {e}")))?,
            )
        };
        Ok(RuleSet {
            automaton,
            owners,
            categories: file.categories,
        })
    }

    /// Parses and compiles a TOML rules file.
    pub fn from_toml(toml_text: &str, source: &str) -> Result<RuleSet, PolicyError> {
        Self::compile(RulesFile::parse(toml_text, source)?)
    }

    /// Number of distinct normalised words.
    pub fn pattern_count(&self) -> usize {
        self.owners.len()
    }

    /// Checks a text against every rule in one pass.
    pub fn check(&self, text: &str) -> ContentVerdict {
        let mut verdict = ContentVerdict {
            action: ContentAction::Allow,
            matches: Vec::new(),
        };
        let Some(ac) = &self.automaton else {
            return verdict;
        };
        let norm = normalize(text);
        // Overlapping search: a review word must not hide a block word that overlaps it.
        for m in ac.find_overlapping_iter(norm.text.as_str()) {
            let Some((start, end)) = norm.original_span(text, m.start(), m.end()) else {
                continue;
            };
            let Some(owners) = self.owners.get(m.pattern().as_usize()) else {
                continue;
            };
            for &(ci, wi) in owners {
                let Some(cat) = self.categories.get(ci) else {
                    continue;
                };
                let word = cat.words.get(wi).cloned().unwrap_or_default();
                verdict.action = verdict.action.max(cat.action);
                verdict.matches.push(ContentMatch {
                    category: cat.name.clone(),
                    action: cat.action,
                    word,
                    start,
                    end,
                });
            }
        }
        verdict.matches.sort_by_key(|m| (m.start, m.end));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
[[category]]
name = "rumours"
action = "block"
words = ["badword", "禁词"]

[[category]]
name = "hard_to_judge"
action = "review"
words = ["maybe", "wordy"]

[[category]]
name = "known_good"
action = "allow"
words = ["fine"]
"#;

    #[test]
    fn block_beats_review_beats_allow() {
        let rs = RuleSet::from_toml(RULES, "test").unwrap();
        assert_eq!(rs.check("all fine").action, ContentAction::Allow);
        assert_eq!(rs.check("fine maybe").action, ContentAction::Review);
        let v = rs.check("maybe fine Ｂａｄ-Ｗｏｒｄ");
        assert_eq!(v.action, ContentAction::Block);
        let d = v.decisive().unwrap();
        assert_eq!(d.category, "rumours");
        assert_eq!(d.word, "badword");
    }

    #[test]
    fn overlapping_words_are_all_found() {
        // "wordy" (review) overlaps "badword" (block): both must be reported.
        let rs = RuleSet::from_toml(RULES, "test").unwrap();
        let v = rs.check("badwordy");
        assert_eq!(v.action, ContentAction::Block);
        assert_eq!(v.matches.len(), 2);
    }

    #[test]
    fn punctuation_only_word_is_refused() {
        let bad = "[[category]]\nname = \"x\"\naction = \"block\"\nwords = [\"!!\"]\n";
        assert!(matches!(
            RuleSet::from_toml(bad, "t"),
            Err(PolicyError::BadRule(_))
        ));
        assert!(matches!(
            RuleSet::from_toml("[[category]]\nname=1", "t"),
            Err(PolicyError::Rules { .. })
        ));
    }
}
