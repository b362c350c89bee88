//! Text normalisation for content matching and unsubscribe words. It owns the one definition of
//! "the same word" the policy layer uses, so rules and messages are folded identically.
//!
//! What must always hold: full-width ASCII folds to half-width, case folds to lower case, and
//! whitespace, punctuation, symbols and zero-width characters vanish, so "Ｆｏ-o", "f o o" and
//! "F\u{200b}OO" all normalise to "foo". Every byte of the normalised text maps back to the byte
//! offset of the original character it came from, so a match can be reported in the customer's
//! own text. Normalisation never panics and is idempotent.

/// Normalised text with a map back to the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The folded text.
    pub text: String,
    /// `origin[i]` is the byte offset, in the original text, of the character that produced
    /// byte `i` of `text`.
    pub origin: Vec<usize>,
}

impl Normalized {
    /// The original byte span `[start, end)` behind the normalised span `[s, e)`; `None` for an
    /// empty or out-of-range span.
    pub fn original_span(&self, original: &str, s: usize, e: usize) -> Option<(usize, usize)> {
        if s >= e {
            return None;
        }
        let start = *self.origin.get(s)?;
        let last = *self.origin.get(e - 1)?;
        let last_len = original.get(last..)?.chars().next()?.len_utf8();
        Some((start, last + last_len))
    }
}

/// Characters with no visible width that evaders put between the letters of a word.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FE00}'..='\u{FE0F}'
    )
}

/// CJK Unified Ideographs and Extension A: letters with no case and no width variants.
fn is_cjk_ideograph(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// Folds one character's width: full-width ASCII (U+FF01-U+FF5E) to ASCII, circled Latin
/// letters to plain ones, the ideographic space to a space; half-width ideographic punctuation
/// is left for the punctuation filter.
fn fold_width(c: char) -> char {
    let u = c as u32;
    if (0xFF01..=0xFF5E).contains(&u) {
        char::from_u32(u - 0xFEE0).unwrap_or(c)
    } else if (0x24B6..=0x24CF).contains(&u) {
        // Circled capital letters Ⓐ-Ⓩ.
        char::from_u32(u - 0x24B6 + 'a' as u32).unwrap_or(c)
    } else if (0x24D0..=0x24E9).contains(&u) {
        // Circled small letters ⓐ-ⓩ.
        char::from_u32(u - 0x24D0 + 'a' as u32).unwrap_or(c)
    } else if u == 0x3000 {
        ' '
    } else {
        c
    }
}

/// Normalises `input`, keeping the map back to original offsets.
pub fn normalize(input: &str) -> Normalized {
    let mut text = String::with_capacity(input.len());
    let mut origin = Vec::with_capacity(input.len());
    for (offset, c) in input.char_indices() {
        // Fast paths for what SMS text is mostly made of: ASCII and CJK ideographs (which
        // have no case and no width variants). Content checking cost is dominated by this loop.
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                text.push(c.to_ascii_lowercase());
                origin.push(offset);
            }
            continue;
        }
        if is_cjk_ideograph(c) {
            let before = text.len();
            text.push(c);
            origin.extend(std::iter::repeat_n(offset, text.len() - before));
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        let c = fold_width(c);
        // Letters (including CJK ideographs) and digits are kept; everything else -
        // whitespace, punctuation, symbols, emoji - is what evaders insert between letters.
        if !c.is_alphanumeric() {
            continue;
        }
        if c.is_ascii() {
            text.push(c.to_ascii_lowercase());
            origin.push(offset);
        } else {
            // Lower-casing may yield combining marks (U+0130 -> "i\u{307}"): drop them too,
            // or normalising twice would not give the same text.
            for l in c.to_lowercase().filter(|l| l.is_alphanumeric()) {
                let before = text.len();
                text.push(l);
                origin.extend(std::iter::repeat_n(offset, text.len() - before));
            }
        }
    }
    Normalized { text, origin }
}

/// The normalised text alone (for rule words and unsubscribe words).
pub fn normalize_str(input: &str) -> String {
    normalize(input).text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_evasions() {
        for s in [
            "foo",
            "FOO",
            "ｆｏｏ",
            "Ｆ Ｏ Ｏ",
            "f.o.o",
            "f\u{200b}o\u{feff}o",
            "f-o_o",
            "f　o　o",
            "ⓕⓞⓞ",
            "Ⓕ o Ⓞ",
        ] {
            assert_eq!(normalize_str(s), "foo", "{s:?}");
        }
        assert_eq!(normalize_str("退 订！"), "退订");
        // Regression: lower-casing U+0130 yields a combining mark that must not survive.
        assert_eq!(normalize_str("\u{130}"), "i");
        assert_eq!(normalize_str(&normalize_str("\u{130}")), "i");
    }

    #[test]
    fn maps_back_to_original() {
        let orig = "xx Ｆ-o o yy";
        let n = normalize(orig);
        let s = n.text.find("foo").unwrap();
        let (a, b) = n.original_span(orig, s, s + 3).unwrap();
        assert_eq!(&orig[a..b], "Ｆ-o o");
    }
}
