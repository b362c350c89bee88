//! Content rules: categories of words with an action, loaded from a TOML rules file, compiled
//! into one Aho-Corasick automaton over normalised text.
//!
//! What must always hold: a message is checked with one pass of one automaton (never a loop over
//! words); matching sees through width, case, spaces, punctuation and zero-width characters (see
//! [`super::normalize`]); every match is reported with its category, the rule word and the span
//! in the original text; the decided action is the strongest one matched: block beats review
//! beats allow.
//!
//! A category may also list `patterns`: pieces joined by `*` ("加*微信"), matching when the
//! pieces occur in order with at most [`PATTERN_GAP`] letters or digits between neighbours.
//! The pieces go into the same automaton; the order and gap are checked after the one pass,
//! only for patterns whose pieces were seen.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use super::normalize::{normalize, normalize_str, Normalized};
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

/// Most letters or digits (after normalisation) allowed between two pieces of a pattern.
pub const PATTERN_GAP: usize = 8;

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
    /// Pieces joined by `*`, e.g. "加*微信".
    #[serde(default)]
    pub patterns: Vec<String>,
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
    /// The rule word (or pattern) as written in the rules file.
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

/// Who stands behind one automaton pattern.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// Word `word` of category `cat`.
    Word { cat: usize, word: usize },
    /// Piece `piece` of compiled pattern `pattern`.
    Piece { pattern: usize, piece: usize },
}

/// A compiled `*` pattern.
#[derive(Debug, Clone)]
struct PiecePattern {
    cat: usize,
    index: usize,
    pieces: usize,
}

/// Compiled rules: one automaton, and for each automaton pattern the words or pattern pieces
/// behind it (the same normalised text may sit in several categories).
#[derive(Debug, Clone)]
pub struct RuleSet {
    automaton: Option<AhoCorasick>,
    owners: Vec<Vec<Owner>>,
    patterns: Vec<PiecePattern>,
    categories: Vec<CategoryRules>,
}

/// Collects distinct normalised texts for the automaton.
#[derive(Default)]
struct Builder {
    texts: Vec<String>,
    owners: Vec<Vec<Owner>>,
    index: HashMap<String, usize>,
}

impl Builder {
    fn add(&mut self, norm: String, owner: Owner) {
        let i = match self.index.get(&norm) {
            Some(&i) => i,
            None => {
                self.texts.push(norm.clone());
                self.owners.push(Vec::new());
                self.index.insert(norm, self.owners.len() - 1);
                self.owners.len() - 1
            }
        };
        if let Some(o) = self.owners.get_mut(i) {
            o.push(owner);
        }
    }
}

impl RuleSet {
    /// Compiles a rules file. A category name may appear once; a word or pattern piece that
    /// normalises to nothing (only punctuation) is an error, since it could never match.
    pub fn compile(file: RulesFile) -> Result<RuleSet, PolicyError> {
        let mut b = Builder::default();
        let mut patterns = Vec::new();
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
                b.add(norm, Owner::Word { cat: ci, word: wi });
            }
            for (pi, pattern) in cat.patterns.iter().enumerate() {
                let pieces: Vec<String> = pattern.split('*').map(normalize_str).collect();
                if pieces.len() < 2 || pieces.iter().any(String::is_empty) {
                    return Err(PolicyError::BadRule(format!(
                        "category {:?} pattern #{} ({pattern:?}) needs two or more pieces with \
                         letters or digits, joined by '*'",
                        cat.name,
                        pi + 1
                    )));
                }
                let id = patterns.len();
                patterns.push(PiecePattern {
                    cat: ci,
                    index: pi,
                    pieces: pieces.len(),
                });
                for (k, piece) in pieces.into_iter().enumerate() {
                    b.add(
                        piece,
                        Owner::Piece {
                            pattern: id,
                            piece: k,
                        },
                    );
                }
            }
        }
        let automaton = if b.texts.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&b.texts)
                    .map_err(|e| PolicyError::BadRule(format!("automaton: {e}")))?,
            )
        };
        Ok(RuleSet {
            automaton,
            owners: b.owners,
            patterns,
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
        // Piece occurrences (normalised byte spans) of the patterns touched by this text.
        let mut pieces: HashMap<usize, Vec<Vec<(usize, usize)>>> = HashMap::new();
        // Overlapping search: a review word must not hide a block word that overlaps it.
        for m in ac.find_overlapping_iter(norm.text.as_str()) {
            let Some(owners) = self.owners.get(m.pattern().as_usize()) else {
                continue;
            };
            for &owner in owners {
                match owner {
                    Owner::Word { cat, word } => self.report(
                        &mut verdict,
                        &norm,
                        text,
                        cat,
                        word,
                        None,
                        m.start(),
                        m.end(),
                    ),
                    Owner::Piece { pattern, piece } => {
                        let n = self.patterns.get(pattern).map_or(0, |p| p.pieces);
                        let slots = pieces.entry(pattern).or_insert_with(|| vec![Vec::new(); n]);
                        if let Some(slot) = slots.get_mut(piece) {
                            slot.push((m.start(), m.end()));
                        }
                    }
                }
            }
        }
        for (pattern, slots) in pieces {
            let Some(p) = self.patterns.get(pattern) else {
                continue;
            };
            if let Some((s, e)) = pattern_span(&norm.text, &slots) {
                self.report(&mut verdict, &norm, text, p.cat, 0, Some(p.index), s, e);
            }
        }
        verdict
            .matches
            .sort_by(|a, b| (a.start, a.end, &a.word).cmp(&(b.start, b.end, &b.word)));
        verdict
    }

    /// Adds one match (a word, or pattern `pattern` when set) to the verdict.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        verdict: &mut ContentVerdict,
        norm: &Normalized,
        text: &str,
        cat: usize,
        word: usize,
        pattern: Option<usize>,
        s: usize,
        e: usize,
    ) {
        let Some((start, end)) = norm.original_span(text, s, e) else {
            return;
        };
        let Some(c) = self.categories.get(cat) else {
            return;
        };
        let word = match pattern {
            Some(p) => c.patterns.get(p),
            None => c.words.get(word),
        }
        .cloned()
        .unwrap_or_default();
        verdict.action = verdict.action.max(c.action);
        verdict.matches.push(ContentMatch {
            category: c.name.clone(),
            action: c.action,
            word,
            start,
            end,
        });
    }
}

/// The first span where every piece occurs in order, each within [`PATTERN_GAP`] characters
/// of the previous piece's end. `slots[k]` holds piece `k`'s occurrences in text order.
fn pattern_span(norm: &str, slots: &[Vec<(usize, usize)>]) -> Option<(usize, usize)> {
    let (first, rest) = slots.split_first()?;
    first
        .iter()
        .find_map(|&(s, e)| extend_pattern(norm, rest, e).map(|end| (s, end)))
}

/// The end of the first way to place `rest` after `end`. Every candidate must lie within the
/// gap, so only a handful are tried at each step.
fn extend_pattern(norm: &str, rest: &[Vec<(usize, usize)>], end: usize) -> Option<usize> {
    let Some((slot, tail)) = rest.split_first() else {
        return Some(end);
    };
    slot.iter()
        .filter(|&&(s, _)| {
            s >= end
                && norm
                    .get(end..s)
                    .is_some_and(|gap| gap.chars().count() <= PATTERN_GAP)
        })
        .find_map(|&(_, e)| extend_pattern(norm, tail, e))
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
    fn patterns_need_order_and_proximity() {
        let rules = r#"
[[category]]
name = "hard_to_judge"
action = "review"
patterns = ["加*微信", "free*gift*now"]
"#;
        let rs = RuleSet::from_toml(rules, "test").unwrap();
        let v = rs.check("快来 加 我的 微 信 吧");
        assert_eq!(v.action, ContentAction::Review);
        assert_eq!(v.matches[0].word, "加*微信");
        assert_eq!(
            &"快来 加 我的 微 信 吧"[v.matches[0].start..v.matches[0].end],
            "加 我的 微 信"
        );
        assert_eq!(
            rs.check("FREE, a GIFT - now!").action,
            ContentAction::Review
        );
        // Wrong order, or too far apart.
        assert_eq!(rs.check("微信 加").action, ContentAction::Allow);
        assert_eq!(
            rs.check("free gift later now").action,
            ContentAction::Review
        );
        assert_eq!(
            rs.check("free abcdefghijkl gift now").action,
            ContentAction::Allow
        );
        assert_eq!(rs.check("gift free now").action, ContentAction::Allow);
        // The first "gift" is too far from "now"; the second one is not.
        assert_eq!(
            rs.check("free gift gift abcdefg now").action,
            ContentAction::Review
        );
        let bad = "[[category]]\nname = \"x\"\naction = \"block\"\npatterns = [\"a*\"]\n";
        assert!(RuleSet::from_toml(bad, "t").is_err());
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
