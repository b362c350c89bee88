//! Phone numbers as the policy layer compares them: one canonical form per Chinese mobile
//! number, so "+8613912345678", "0086 139-1234-5678" and "13912345678" are one recipient on a
//! blacklist or an opt-out list; and the masked form logs may show.
//!
//! What must always hold: canonicalisation never panics and is idempotent; a masked number never
//! shows more than its first few and last four digits.

/// Canonical form: separators (space, '-', '(', ')', '.') removed; a China mobile number
/// (11 digits starting with 1) behind +86 / 0086 / 86 loses the prefix. Anything else is kept
/// as cleaned (fixed lines, 106 numbers, foreign numbers).
pub fn canonical(number: &str) -> String {
    let cleaned: String = number
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '\u{3000}'))
        .collect();
    for prefix in ["+86", "0086", "86"] {
        if let Some(rest) = cleaned.strip_prefix(prefix) {
            if rest.len() == 11 && rest.starts_with('1') && rest.bytes().all(|b| b.is_ascii_digit())
            {
                return rest.to_string();
            }
        }
    }
    cleaned
}

/// The form of a number that logs may show: `139****5678`, `+86139****5678`.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    if n <= 4 {
        return "****".to_string();
    }
    let (keep_head, keep_tail) = if n >= 11 {
        (n - 8, 4)
    } else {
        (2.min(n - 4), 2)
    };
    let head: String = chars.iter().take(keep_head).collect();
    let tail: String = chars.iter().skip(n - keep_tail).collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for s in [
            "+8613912345678",
            "0086 139-1234-5678",
            "13912345678",
            "8613912345678",
        ] {
            assert_eq!(canonical(s), "13912345678", "{s}");
        }
        assert_eq!(canonical("0755-12345678"), "075512345678");
        assert_eq!(canonical("+14155550100"), "+14155550100");
    }

    #[test]
    fn masks() {
        assert_eq!(mask("+8613912345678"), "+86139****5678");
        assert_eq!(mask("13912345678"), "139****5678");
        assert_eq!(mask("123"), "****");
    }
}
