//! Property tests for the normaliser and the content checker: no input panics, normalisation
//! is idempotent and maps back to the original, and a rule word survives every evasion the
//! normaliser is meant to defeat (width, case, separators, zero-width characters).

use proptest::prelude::*;
use smsgate::number::{key, mask};
use smsgate::policy::content::ContentAction;
use smsgate::policy::normalize::{normalize, normalize_str};
use smsgate::policy::{OptOutConfig, RuleSet};

/// Full-width form of an ASCII graphic character.
fn full_width(c: char) -> char {
    if ('!'..='~').contains(&c) {
        char::from_u32(c as u32 + 0xFEE0).unwrap()
    } else {
        c
    }
}

const SEPARATORS: &[&str] = &[
    "", "", " ", "　", ".", "-", "_", "*", "\u{200b}", "\u{200d}", "\u{feff}", "，", "、", "·",
    "\t", "/",
];

fn disguise() -> impl Strategy<Value = (String, Vec<(bool, bool, usize)>)> {
    (
        prop_oneof![
            "[a-z]{2,8}".prop_map(|s| s),
            "[\u{4e00}-\u{4e80}]{2,4}".prop_map(|s| s),
            "[a-z0-9\u{4e00}-\u{4e20}]{2,6}".prop_map(|s| s),
        ],
        proptest::collection::vec((any::<bool>(), any::<bool>(), 0..SEPARATORS.len()), 8),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalise_never_panics_and_is_idempotent(s in any::<String>()) {
        let n = normalize(&s);
        prop_assert_eq!(n.origin.len(), n.text.len());
        let mut last = 0;
        for &o in &n.origin {
            prop_assert!(s.is_char_boundary(o));
            prop_assert!(o >= last);
            last = o;
        }
        prop_assert_eq!(normalize_str(&n.text), n.text.clone());
    }

    #[test]
    fn disguised_word_is_caught((word, how) in disguise(), before in "[ a-z]{0,10}", after in "[ a-z]{0,10}") {
        let rules = format!(
            "[[category]]\nname = \"rumours\"\naction = \"block\"\nwords = [\"{word}\"]\n"
        );
        let rs = RuleSet::from_toml(&rules, "prop").unwrap();
        let mut disguised = String::new();
        for (i, c) in word.chars().enumerate() {
            let (upper, wide, sep) = how[i % how.len()];
            let c = if upper { c.to_ascii_uppercase() } else { c };
            disguised.push(if wide { full_width(c) } else { c });
            disguised.push_str(SEPARATORS[sep]);
        }
        let text = format!("{before}{disguised}{after}");
        let v = rs.check(&text);
        prop_assert_eq!(v.action, ContentAction::Block, "{:?}", text);
        let m = v.decisive().unwrap();
        prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        prop_assert_eq!(normalize_str(&text[m.start..m.end]), normalize_str(&word));
    }

    #[test]
    fn checker_never_panics(words in proptest::collection::vec("[a-z\u{4e00}-\u{4e10}]{1,5}", 1..20), text in any::<String>()) {
        let rules = format!(
            "[[category]]\nname = \"x\"\naction = \"review\"\nwords = {:?}\n", words
        );
        let rs = RuleSet::from_toml(&rules, "prop").unwrap();
        let v = rs.check(&text);
        for m in &v.matches {
            prop_assert!(m.start < m.end && text.get(m.start..m.end).is_some());
        }
    }

    #[test]
    fn numbers_and_optout_never_panic(s in any::<String>()) {
        let k = key(&s);
        prop_assert_eq!(key(&k), k.clone());
        let _ = mask(&s);
        let _ = OptOutConfig::default().is_unsubscribe(&s);
    }
}
