//! Chinese numbering, the one place phone numbers are read: strict validation of recipients
//! ([`parse`]), the lenient comparison key every lookup uses ([`key`]: blacklists, opt-outs,
//! recent sends, inbound senders, status-report recipients, audit export filters), the carrier
//! hint of a mobile prefix or of an IMSI's MCC-MNC, and masking of numbers for logs ([`mask`]).
//! Pure functions; no second normaliser exists anywhere else in the crate.
//!
//! What must always hold: no input makes [`parse`], [`key`] or [`mask`] panic; a [`Number`] only
//! exists in canonical form (E.164 `+86...` for mobiles and other countries, national `0...` for
//! fixed/PHS lines so the codec uses type-of-address 0x81, bare digits for 106 service numbers);
//! [`key`] is the canonical form whenever the input parses (so two spellings of one number are
//! one key) and is idempotent; a carrier from a prefix is a hint, never proof (number
//! portability since 2019). This file uses only `std` and `thiserror`: the fuzz crate compiles
//! it on its own through `#[path]`.

use std::fmt;

/// What kind of number a recipient is; decides its canonical form and the type of address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// Chinese mobile, 11 digits `1xxxxxxxxxx`; canonical `+86` + 11 digits.
    Mobile,
    /// Chinese fixed line or PHS: `0` + area code + 7-8 digit local number; canonical national.
    FixedLine,
    /// Carrier service number (`106...`), digits only.
    Service106,
    /// Any other E.164 number, canonical `+` + 8-15 digits.
    International,
}

/// A validated recipient number in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    kind: NumberKind,
    canonical: String,
}

impl Number {
    pub fn kind(&self) -> NumberKind {
        self.kind
    }

    /// The canonical form: what the store keeps and the codec encodes.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// True when the codec should use type-of-address 0x91 (international).
    pub fn is_international(&self) -> bool {
        self.canonical.starts_with('+')
    }

    /// The carrier hinted by the prefix (only mobiles have one; others are `Unknown`).
    pub fn carrier(&self) -> Carrier {
        match self.kind {
            NumberKind::Mobile => self
                .canonical
                .strip_prefix("+86")
                .map(carrier_of_mobile)
                .unwrap_or(Carrier::Unknown),
            _ => Carrier::Unknown,
        }
    }

    /// The number masked for logs.
    pub fn masked(&self) -> String {
        mask(&self.canonical)
    }

    /// The form a Chinese national dialler takes (a PHS module's `^HCMGS`, a carrier gateway's
    /// Dest_terminal_Id): a mobile without `+86`, a fixed/PHS line or a 106 number as it is
    /// (already national), another country with the `00` international prefix.
    pub fn national_dialling(&self) -> String {
        match self.kind {
            NumberKind::Mobile => self
                .canonical
                .strip_prefix("+86")
                .unwrap_or(&self.canonical)
                .to_string(),
            NumberKind::International => format!("00{}", self.canonical.trim_start_matches('+')),
            NumberKind::FixedLine | NumberKind::Service106 => self.canonical.clone(),
        }
    }
}

impl fmt::Display for Number {
    /// Displays the masked form: a `Number` printed by accident into a log leaks nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Why a string is not a number we can send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("number is empty")]
    Empty,
    #[error("number has an invalid character {ch:?} at position {pos}")]
    InvalidCharacter { ch: char, pos: usize },
    #[error("number has '+' not at its start (position {pos})")]
    MisplacedPlus { pos: usize },
    #[error("Chinese mobile number must have 11 digits starting with 1, got {digits} digits")]
    BadMobile { digits: usize },
    #[error("fixed-line number must be 0 + area code + 7-8 digit local number")]
    BadFixedLine,
    #[error("106 service number must have 5-21 digits, got {digits}")]
    BadService { digits: usize },
    #[error("international number must have 8-15 digits after '+', got {digits}")]
    BadInternational { digits: usize },
    #[error("number is not a Chinese mobile, fixed-line, PHS, 106 or E.164 number")]
    Unrecognised,
}

/// Parses a recipient number as a user typed it: spaces and dashes are allowed, a leading `+`,
/// `00`, `0086`, `+86` or `86` prefix is understood.
pub fn parse(input: &str) -> Result<Number, NumberError> {
    let mut digits = String::with_capacity(input.len());
    let mut plus = false;
    for (pos, ch) in input.trim().chars().enumerate() {
        match ch {
            '0'..='9' => digits.push(ch),
            ' ' | '-' => {}
            '+' if pos == 0 => plus = true,
            '+' => return Err(NumberError::MisplacedPlus { pos }),
            _ => return Err(NumberError::InvalidCharacter { ch, pos }),
        }
    }
    if digits.is_empty() {
        return Err(NumberError::Empty);
    }
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    if let Some(e164) = international {
        return match e164.strip_prefix("86") {
            Some(national) => parse_after_86(national),
            None => parse_foreign(e164),
        };
    }
    // "86" + an 11-digit mobile, without '+': nothing national starts with 86.
    if let Some(national) = digits.strip_prefix("86") {
        if national.len() == 11 && national.starts_with('1') {
            return parse_mobile(national);
        }
    }
    parse_national(&digits)
}

fn parse_after_86(national: &str) -> Result<Number, NumberError> {
    if national.starts_with('1') && national.len() == 11 {
        return parse_mobile(national);
    }
    if national.starts_with('0') {
        // "+86 0755..." is a common mistake; the trunk 0 is simply dropped after +86.
        return parse_fixed(national);
    }
    if national.starts_with('1') && national.len() > 11 {
        return Err(NumberError::BadMobile {
            digits: national.len(),
        });
    }
    // After +86 a fixed line loses its trunk 0.
    parse_fixed(&format!("0{national}"))
}

fn parse_foreign(e164: &str) -> Result<Number, NumberError> {
    let digits = e164.len();
    if !(8..=15).contains(&digits) || e164.starts_with('0') {
        return Err(NumberError::BadInternational { digits });
    }
    Ok(Number {
        kind: NumberKind::International,
        canonical: format!("+{e164}"),
    })
}

fn parse_national(digits: &str) -> Result<Number, NumberError> {
    if digits.starts_with("106") {
        let n = digits.len();
        if !(5..=21).contains(&n) {
            return Err(NumberError::BadService { digits: n });
        }
        return Ok(Number {
            kind: NumberKind::Service106,
            canonical: digits.to_owned(),
        });
    }
    if digits.starts_with('1') {
        return parse_mobile(digits);
    }
    if digits.starts_with('0') {
        return parse_fixed(digits);
    }
    Err(NumberError::Unrecognised)
}

fn parse_mobile(national: &str) -> Result<Number, NumberError> {
    let b = national.as_bytes();
    // Second digit 3-9: no Chinese mobile block starts 10x, 11x or 12x.
    if b.len() != 11 || b.first() != Some(&b'1') || !matches!(b.get(1), Some(b'3'..=b'9')) {
        return Err(NumberError::BadMobile {
            digits: national.len(),
        });
    }
    Ok(Number {
        kind: NumberKind::Mobile,
        canonical: format!("+86{national}"),
    })
}

fn parse_fixed(national: &str) -> Result<Number, NumberError> {
    let b = national.as_bytes();
    let area_len = match (b.first(), b.get(1)) {
        (Some(b'0'), Some(b'1')) if b.get(2) == Some(&b'0') => 2, // 010 Beijing
        (Some(b'0'), Some(b'2')) => 2,                            // 02X big cities
        (Some(b'0'), Some(b'3'..=b'9')) => 3,
        _ => return Err(NumberError::BadFixedLine),
    };
    let local = national.get(1 + area_len..).unwrap_or("");
    let local_ok =
        matches!(local.len(), 7 | 8) && matches!(local.as_bytes().first(), Some(b'1'..=b'9'));
    if !local_ok {
        return Err(NumberError::BadFixedLine);
    }
    Ok(Number {
        kind: NumberKind::FixedLine,
        canonical: national.to_owned(),
    })
}

/// Characters people (and some SMSCs) put inside numbers; [`key`] drops them before parsing.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '(' | ')' | '.' | '\t' | '\u{3000}')
}

/// The comparison key of a number in any form: the canonical form when the input parses as a
/// number ("+86 139-1234-5678", "0086 13912345678" and "13912345678" are one key; so are
/// "0755-12345678", "(0755) 1234 5678" and "+86 755 1234 5678"), otherwise the input trimmed,
/// with separators dropped and full-width digits and '+' narrowed (an alphanumeric sender such
/// as "ChinaMobile" stays itself). Lenient where [`parse`] is strict: it never fails, so it can
/// key inbound senders and status-report recipients that are not valid recipients. An empty
/// input keys to "", which equals no stored recipient (stored recipients are parsed).
pub fn key(input: &str) -> String {
    let cleaned: String = input
        .chars()
        .filter(|c| !is_separator(*c))
        .map(|c| match c {
            // Full-width digits and plus (U+FF10-U+FF19, U+FF0B) as an IME types them.
            '\u{FF10}'..='\u{FF19}' => {
                char::from_u32(c as u32 - 0xFF10 + u32::from(b'0')).unwrap_or(c)
            }
            '\u{FF0B}' => '+',
            c => c,
        })
        .collect();
    // Trimmed after the separators go, so that the key of a key is itself.
    let cleaned = cleaned.trim();
    match parse(cleaned) {
        Ok(n) => n.canonical,
        Err(_) => cleaned.to_owned(),
    }
}

/// A mobile carrier, as hinted by a number prefix or read from an IMSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Carrier {
    ChinaMobile,
    ChinaUnicom,
    ChinaTelecom,
    ChinaBroadnet,
    Mvno,
    Unknown,
}

impl Carrier {
    /// Stable name used in the database and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "china_mobile",
            Carrier::ChinaUnicom => "china_unicom",
            Carrier::ChinaTelecom => "china_telecom",
            Carrier::ChinaBroadnet => "china_broadnet",
            Carrier::Mvno => "mvno",
            Carrier::Unknown => "unknown",
        }
    }

    /// Inverse of [`Carrier::as_str`]; anything else is `Unknown`.
    pub fn from_name(s: &str) -> Carrier {
        match s {
            "china_mobile" => Carrier::ChinaMobile,
            "china_unicom" => Carrier::ChinaUnicom,
            "china_telecom" => Carrier::ChinaTelecom,
            "china_broadnet" => Carrier::ChinaBroadnet,
            "mvno" => Carrier::Mvno,
            _ => Carrier::Unknown,
        }
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Carrier hinted by an 11-digit national mobile number (DOMAIN.md "Chinese numbering").
/// Longer exceptions (1349, 174 00-05) are checked before their 3-digit blocks.
pub fn carrier_of_mobile(national: &str) -> Carrier {
    let p3 = national.get(..3).unwrap_or("");
    let p4 = national.get(..4).unwrap_or("");
    let p5 = national.get(..5).unwrap_or("");
    if p4 == "1349" {
        return Carrier::ChinaTelecom;
    }
    if p3 == "174" {
        return if matches!(
            p5,
            "17400" | "17401" | "17402" | "17403" | "17404" | "17405"
        ) {
            Carrier::ChinaTelecom
        } else {
            Carrier::Unknown // 1740 6-12 satellite and maritime blocks
        };
    }
    match p3 {
        "134" | "135" | "136" | "137" | "138" | "139" | "147" | "150" | "151" | "152" | "157"
        | "158" | "159" | "172" | "178" | "182" | "183" | "184" | "187" | "188" | "195" | "197"
        | "198" => Carrier::ChinaMobile,
        "130" | "131" | "132" | "145" | "155" | "156" | "166" | "175" | "176" | "185" | "186"
        | "196" => Carrier::ChinaUnicom,
        "133" | "149" | "153" | "173" | "177" | "180" | "181" | "189" | "190" | "191" | "193"
        | "199" => Carrier::ChinaTelecom,
        "192" => Carrier::ChinaBroadnet,
        "162" | "165" | "167" | "170" | "171" => Carrier::Mvno,
        _ => Carrier::Unknown,
    }
}

/// Carrier from an IMSI's MCC-MNC (MCC 460, two-digit MNC).
pub fn carrier_of_imsi(imsi: &str) -> Carrier {
    let imsi = imsi.trim();
    if !imsi.bytes().all(|b| b.is_ascii_digit()) || imsi.get(..3) != Some("460") {
        return Carrier::Unknown;
    }
    match imsi.get(3..5) {
        Some("00" | "02" | "04" | "07" | "08") => Carrier::ChinaMobile,
        Some("01" | "06" | "09") => Carrier::ChinaUnicom,
        Some("03" | "05" | "11") => Carrier::ChinaTelecom,
        Some("15") => Carrier::ChinaBroadnet,
        _ => Carrier::Unknown,
    }
}

/// Masks a number for logs: `+8613912345678` -> `+86139****5678`, `075512345678` ->
/// `075****5678`. Short strings keep at most their last two characters.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    let head = if number.starts_with("+86") { 6 } else { 3 };
    if n > head + 4 {
        let front: String = chars.iter().take(head).collect();
        let back: String = chars.iter().skip(n - 4).collect();
        format!("{front}****{back}")
    } else {
        let back: String = chars.iter().skip(n.saturating_sub(2)).collect();
        format!("****{back}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> (NumberKind, String) {
        let n = parse(s).unwrap();
        (n.kind(), n.canonical().to_owned())
    }

    #[test]
    fn mobiles_in_every_prefix_form() {
        for s in [
            "13912345678",
            "+8613912345678",
            "008613912345678",
            "8613912345678",
            "139 1234 5678",
            "+86 139-1234-5678",
        ] {
            assert_eq!(ok(s), (NumberKind::Mobile, "+8613912345678".into()), "{s}");
        }
    }

    #[test]
    fn fixed_lines_and_phs() {
        assert_eq!(
            ok("075512345678"),
            (NumberKind::FixedLine, "075512345678".into())
        );
        assert_eq!(
            ok("010-12345678"),
            (NumberKind::FixedLine, "01012345678".into())
        );
        assert_eq!(
            ok("+86 10 12345678"),
            (NumberKind::FixedLine, "01012345678".into())
        );
        assert_eq!(
            ok("+8675512345678"),
            (NumberKind::FixedLine, "075512345678".into())
        );
        assert_eq!(
            ok("0755-1234567"),
            (NumberKind::FixedLine, "07551234567".into())
        );
        assert_eq!(
            ok("021 87654321"),
            (NumberKind::FixedLine, "02187654321".into())
        );
        assert!(parse("075512").is_err());
        assert!(parse("0110 1234567").is_err()); // 011 is no area code
        assert!(parse("0755 0234567").is_err()); // local numbers do not start with 0
    }

    #[test]
    fn service_and_foreign_numbers() {
        assert_eq!(ok("10658888"), (NumberKind::Service106, "10658888".into()));
        assert_eq!(
            ok("+14155550123"),
            (NumberKind::International, "+14155550123".into())
        );
        assert_eq!(
            ok("004915123456789"),
            (NumberKind::International, "+4915123456789".into())
        );
        assert!(parse("+1234").is_err());
    }

    #[test]
    fn rejects_garbage_with_a_clear_error() {
        assert_eq!(parse(""), Err(NumberError::Empty));
        assert_eq!(parse("  - "), Err(NumberError::Empty));
        assert_eq!(
            parse("139a"),
            Err(NumberError::InvalidCharacter { ch: 'a', pos: 3 })
        );
        assert_eq!(parse("139+1"), Err(NumberError::MisplacedPlus { pos: 3 }));
        assert_eq!(
            parse("1391234567"),
            Err(NumberError::BadMobile { digits: 10 })
        );
        assert_eq!(
            parse("12012345678"),
            Err(NumberError::BadMobile { digits: 11 })
        );
        assert_eq!(parse("55512345"), Err(NumberError::Unrecognised));
    }

    #[test]
    fn carriers_from_prefix_including_exceptions() {
        let c = |s: &str| parse(s).unwrap().carrier();
        assert_eq!(c("13912345678"), Carrier::ChinaMobile);
        assert_eq!(c("13481234567"), Carrier::ChinaMobile);
        assert_eq!(c("13491234567"), Carrier::ChinaTelecom);
        assert_eq!(c("17405123456"), Carrier::ChinaTelecom);
        assert_eq!(c("17406123456"), Carrier::Unknown);
        assert_eq!(c("18612345678"), Carrier::ChinaUnicom);
        assert_eq!(c("19912345678"), Carrier::ChinaTelecom);
        assert_eq!(c("19212345678"), Carrier::ChinaBroadnet);
        assert_eq!(c("17012345678"), Carrier::Mvno);
        assert_eq!(c("075512345678"), Carrier::Unknown);
    }

    #[test]
    fn carriers_from_imsi() {
        assert_eq!(carrier_of_imsi("460001234567890"), Carrier::ChinaMobile);
        assert_eq!(carrier_of_imsi("460071234567890"), Carrier::ChinaMobile);
        assert_eq!(carrier_of_imsi("460011234567890"), Carrier::ChinaUnicom);
        assert_eq!(carrier_of_imsi("460111234567890"), Carrier::ChinaTelecom);
        assert_eq!(carrier_of_imsi("460151234567890"), Carrier::ChinaBroadnet);
        assert_eq!(carrier_of_imsi("310260123456789"), Carrier::Unknown);
        assert_eq!(carrier_of_imsi("46"), Carrier::Unknown);
        assert_eq!(carrier_of_imsi("460x0"), Carrier::Unknown);
    }

    #[test]
    fn masking() {
        assert_eq!(mask("+8613912345678"), "+86139****5678");
        assert_eq!(mask("075512345678"), "075****5678");
        assert_eq!(mask("13912345678"), "139****5678");
        assert_eq!(mask("123"), "****23");
        assert_eq!(
            format!("{}", parse("13912345678").unwrap()),
            "+86139****5678"
        );
    }

    #[test]
    fn carrier_names_round_trip() {
        for c in [
            Carrier::ChinaMobile,
            Carrier::ChinaUnicom,
            Carrier::ChinaTelecom,
            Carrier::ChinaBroadnet,
            Carrier::Mvno,
            Carrier::Unknown,
        ] {
            assert_eq!(Carrier::from_name(c.as_str()), c);
        }
    }

    #[test]
    fn one_key_for_every_spelling_of_a_number() {
        for s in [
            "13912345678",
            "+8613912345678",
            "0086 139-1234-5678",
            "8613912345678",
            " +86 (139) 1234.5678 ",
            "\u{FF11}\u{FF13}\u{FF19}12345678",
        ] {
            assert_eq!(key(s), "+8613912345678", "{s:?}");
        }
        // The fixed-line case the old policy normaliser missed: one key, whatever the spelling.
        for s in [
            "075512345678",
            "0755-12345678",
            "(0755) 1234 5678",
            "+86 755 1234 5678",
            "+8675512345678",
        ] {
            assert_eq!(key(s), "075512345678", "{s:?}");
        }
        assert_eq!(key("10658888"), "10658888");
        assert_eq!(key("+14155550100"), "+14155550100");
        // Not numbers: kept as cleaned, never equal to a parsed recipient.
        assert_eq!(key(""), "");
        assert_eq!(key("  "), "");
        assert_eq!(key("ChinaMobile"), "ChinaMobile");
        assert_eq!(key("10086"), "10086");
    }

    proptest! {
        #[test]
        fn key_is_idempotent_and_agrees_with_parse(s in "\\PC{0,30}") {
            let k = key(&s);
            prop_assert_eq!(key(&k), k.clone());
            if let Ok(n) = parse(&s) {
                prop_assert_eq!(k, n.canonical());
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
            let _ = key(&s);
            let _ = mask(&s);
            let _ = carrier_of_imsi(&s);
            let _ = carrier_of_mobile(&s);
        }

        #[test]
        fn canonical_form_is_a_fixed_point(s in "[+0-9 -]{0,24}") {
            if let Ok(n) = parse(&s) {
                let again = parse(n.canonical()).unwrap();
                prop_assert_eq!(again, n);
            }
        }

        #[test]
        fn every_mobile_normalises(rest in "[3-9][0-9]{9}", form in 0usize..4) {
            let national = format!("1{rest}");
            let input = match form {
                0 => national.clone(),
                1 => format!("+86{national}"),
                2 => format!("0086{national}"),
                _ => format!("86 {national}"),
            };
            let n = parse(&input).unwrap();
            prop_assert_eq!(n.kind(), NumberKind::Mobile);
            prop_assert_eq!(n.canonical(), format!("+86{national}"));
        }
    }
}
