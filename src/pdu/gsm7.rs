//! GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 6.2.1), and septet packing
//! (LSB first, TS 23.038 6.1.2.1). Invariants: an extension character always costs two septets
//! (0x1B + code); unpacking reads only the septets asked for and never panics on short input.

/// The default alphabet, indexed by septet value. 0x1B is the escape to the extension table.
pub(crate) const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Escape septet announcing an extension-table character.
pub(crate) const ESC: u8 = 0x1B;

/// The extension table (after 0x1B): (code, character).
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// ASCII -> septets: 0xFF = not encodable, 0x80|code = extension table.
const ASCII: [u8; 128] = build_ascii();

const fn build_ascii() -> [u8; 128] {
    let mut t = [0xFFu8; 128];
    let mut i = 0;
    while i < 128 {
        let c = DEFAULT[i] as u32;
        if c < 128 && i != ESC as usize {
            t[c as usize] = i as u8;
        }
        i += 1;
    }
    let mut j = 0;
    while j < EXTENSION.len() {
        let c = EXTENSION[j].1 as u32;
        if c < 128 {
            t[c as usize] = 0x80 | EXTENSION[j].0;
        }
        j += 1;
    }
    t
}

/// A character's GSM 7-bit encoding: one septet, or escape + one septet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Septets {
    One(u8),
    Escaped(u8),
}

impl Septets {
    pub(crate) fn cost(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Escaped(_) => 2,
        }
    }
}

/// Looks a character up in the default and extension tables.
pub(crate) fn lookup(c: char) -> Option<Septets> {
    let u = c as u32;
    if u < 128 {
        let v = ASCII[u as usize];
        return match v {
            0xFF => None,
            v if v & 0x80 != 0 => Some(Septets::Escaped(v & 0x7F)),
            v => Some(Septets::One(v)),
        };
    }
    if c == '€' {
        return Some(Septets::Escaped(0x65));
    }
    DEFAULT
        .iter()
        .position(|&d| d == c)
        .map(|i| Septets::One(i as u8))
}

/// True when every character of `text` is in the default or extension table.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| lookup(c).is_some())
}

/// Septets `text` costs in GSM 7-bit, or None when a character is not encodable.
pub fn septet_count(text: &str) -> Option<usize> {
    text.chars()
        .try_fold(0usize, |n, c| lookup(c).map(|s| n + s.cost()))
}

/// Appends the septets of `text`; characters outside the alphabet become '?'.
pub(crate) fn encode_into(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match lookup(c) {
            Some(Septets::One(v)) => out.push(v),
            Some(Septets::Escaped(v)) => {
                out.push(ESC);
                out.push(v);
            }
            None => out.push(0x3F),
        }
    }
}

/// Appends the septets of as many leading characters of `text` as fit in `max` septets (an
/// escape pair is never cut in two); returns how many septets were written.
pub(crate) fn encode_limited(text: &str, max: usize, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    for c in text.chars() {
        let cost = lookup(c).map_or(1, Septets::cost);
        if out.len() - start + cost > max {
            break;
        }
        encode_into(c.encode_utf8(&mut [0; 4]), out);
    }
    out.len() - start
}

/// Turns septets into text. An escape before a code the extension table lacks shows the
/// default-table character (TS 23.038 6.2.1.1); a lone escape at the end shows a space.
pub(crate) fn decode(septets: impl IntoIterator<Item = u8>) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for s in septets {
        let s = s & 0x7F;
        if escaped {
            escaped = false;
            match EXTENSION.iter().find(|(code, _)| *code == s) {
                Some((_, c)) => out.push(*c),
                None if s == ESC => out.push(' '),
                None => out.push(DEFAULT[s as usize]),
            }
        } else if s == ESC {
            escaped = true;
        } else {
            out.push(DEFAULT[s as usize]);
        }
    }
    if escaped {
        out.push(' ');
    }
    out
}

/// Packs septets LSB first after `fill_bits` zero bits (0..=6), appending the octets.
pub(crate) fn pack_into(septets: &[u8], fill_bits: usize, out: &mut Vec<u8>) {
    let mut acc: u32 = 0;
    let mut bits = fill_bits;
    for &s in septets {
        acc |= u32::from(s & 0x7F) << bits;
        bits += 7;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// Octets needed for `septets` septets after `fill_bits` bits.
pub(crate) fn packed_len(septets: usize, fill_bits: usize) -> usize {
    (septets * 7 + fill_bits).div_ceil(8)
}

/// Reads `count` septets starting `bit_offset` bits into `data`; missing bits read as zero.
pub(crate) fn unpack(
    data: &[u8],
    bit_offset: usize,
    count: usize,
) -> impl Iterator<Item = u8> + '_ {
    (0..count).map(move |i| {
        let pos = bit_offset + i * 7;
        let byte = pos / 8;
        let shift = pos % 8;
        let lo = u16::from(data.get(byte).copied().unwrap_or(0));
        let hi = u16::from(data.get(byte + 1).copied().unwrap_or(0));
        (((lo | (hi << 8)) >> shift) & 0x7F) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellohello_packs_like_the_textbook() {
        // subnets.ru sms_pdu_format: "hellohello" -> E8329BFD4697D9EC37
        let mut s = Vec::new();
        encode_into("hellohello", &mut s);
        let mut o = Vec::new();
        pack_into(&s, 0, &mut o);
        assert_eq!(hex::encode_upper(&o), "E8329BFD4697D9EC37");
        assert_eq!(decode(unpack(&o, 0, 10)), "hellohello");
    }

    #[test]
    fn extension_characters_cost_two() {
        assert_eq!(septet_count("{}[]~|^\\€\u{c}"), Some(20));
        assert_eq!(septet_count("abc"), Some(3));
        assert_eq!(septet_count("中"), None);
        assert_eq!(lookup('@'), Some(Septets::One(0)));
        assert_eq!(lookup('Δ'), Some(Septets::One(0x10)));
    }

    #[test]
    fn every_table_character_round_trips() {
        for (i, c) in DEFAULT.iter().enumerate() {
            if i == ESC as usize {
                continue;
            }
            let mut s = Vec::new();
            encode_into(&c.to_string(), &mut s);
            assert_eq!(s, vec![i as u8], "{c:?}");
            assert_eq!(decode(s), c.to_string());
        }
        for (code, c) in EXTENSION {
            let mut s = Vec::new();
            encode_into(&c.to_string(), &mut s);
            assert_eq!(s, vec![ESC, code]);
            assert_eq!(decode(s), c.to_string());
        }
    }
}
