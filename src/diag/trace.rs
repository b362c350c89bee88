//! The AT exchange made readable for `--trace`: both directions, a UTC timestamp, and control
//! characters spelled out (`<CR>`, `<LF>`, `<SUB>` for Ctrl-Z, `<ESC>`, `<xx>` otherwise) so a
//! missing line feed or a stray byte is visible. What must always hold: every input byte
//! appears in the text (nothing is silently dropped), and any bytes are accepted.

use serde::Serialize;

use crate::modem::Direction;

/// One chunk of bytes as it crossed the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceEntry {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `tx` (to the modem) or `rx` (from it).
    pub dir: &'static str,
    pub text: String,
}

impl TraceEntry {
    pub fn new(dir: Direction, bytes: &[u8]) -> TraceEntry {
        TraceEntry {
            time: format!("{:.3}", jiff::Timestamp::now()),
            dir: match dir {
                Direction::ToModem => "tx",
                Direction::FromModem => "rx",
            },
            text: visible(bytes),
        }
    }

    /// `2026-11-24T20:01:02.345Z -> AT+CSQ<CR>`.
    pub fn line(&self) -> String {
        let arrow = if self.dir == "tx" { "->" } else { "<-" };
        format!("{} {arrow} {}", self.time, self.text)
    }
}

/// Printable ASCII as is, control and non-ASCII bytes named.
pub fn visible(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 8);
    for &b in bytes {
        match b {
            b'\r' => s.push_str("<CR>"),
            b'\n' => s.push_str("<LF>"),
            0x1a => s.push_str("<SUB>"),
            0x1b => s.push_str("<ESC>"),
            b'<' => s.push_str("<3C>"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("<{b:02X}>")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_spelled_out() {
        assert_eq!(visible(b"AT+CSQ\r"), "AT+CSQ<CR>");
        assert_eq!(
            visible(b"\r\n+CSQ: 20,99\r\n"),
            "<CR><LF>+CSQ: 20,99<CR><LF>"
        );
        assert_eq!(visible(b"0011\x1a"), "0011<SUB>");
        assert_eq!(visible(&[0x1b, 0x00, 0xff]), "<ESC><00><FF>");
        // A literal '<' cannot be mistaken for an escape.
        assert_eq!(visible(b"<CR>"), "<3C>CR>");
    }

    #[test]
    fn entries_read_both_ways() {
        let e = TraceEntry::new(Direction::ToModem, b"AT\r");
        assert!(e.line().ends_with(" -> AT<CR>"), "{}", e.line());
        let e = TraceEntry::new(Direction::FromModem, b"OK");
        assert!(e.line().ends_with(" <- OK"));
    }

    proptest::proptest! {
        #[test]
        fn every_byte_is_shown(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let v = visible(&bytes);
            proptest::prop_assert!(v.len() >= bytes.len());
            proptest::prop_assert!(v.is_ascii());
        }
    }
}
