//! The digester: modem output bytes in, [`Event`]s out, sans-I/O (FactbirdHQ/atat digest.rs
//! is the model). It owns line framing, the `"> "` prompt, echo, final results, URC
//! recognition (including `+CMT`/`+CDS`, whose PDU comes on the following line) and garbage
//! skipping. What must always hold: `digest` never panics, never reports more consumed bytes
//! than it was given, and an incomplete line is normal flow (`(None, n)` with the already
//! skipped terminators), never an error. A line that cannot be valid (control bytes in front,
//! or longer than [`MAX_LINE`] without a terminator) is skipped, counted and reported as
//! [`Event::Garbage`] so the caller resynchronises on the next line.

use super::command::{
    decode_text_body, parse_registration_urc, parse_text_header, split_fields, text_end_marker,
    unquote, RegKind, TextHeader, TextSms, Urc,
};
use super::error::{CmeError, CmsError, DeviceError};

/// Longest line accepted; a PDU line is at most 2 * (12 + 164) hex characters.
pub const MAX_LINE: usize = 2048;

/// One thing the modem said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Final result `OK`.
    Ok,
    /// A final result that reports failure.
    Error(DeviceError),
    /// An information line belonging to the command in progress.
    Info(String),
    /// The `"> "` prompt of +CMGS and friends.
    Prompt,
    /// An unsolicited result code.
    Urc(Urc),
    /// The modem echoed a command line back (before ATE0).
    Echo(String),
    /// Bytes that cannot belong to any line were skipped.
    Garbage { bytes: usize },
}

/// URC names recognised out of the box (TS 27.005/27.007 plus common vendor floods).
const BUILTIN_URCS: &[&str] = &[
    "+CMTI",
    "+CMT",
    "+CDS",
    "+CDSI",
    "+CREG",
    "+CGREG",
    "+CEREG",
    "RING",
    "+CRING",
    "+CLIP",
    "+CUSD",
    "+CIEV",
    "+CPIN",
    "^RSSI",
    "^HRSSILVL",
    "^RSSILVL",
    "^MODE",
    "^BOOT",
    "^DSFLOWRPT",
    "^SRVST",
    "^SIMST",
    "^SYSSTART",
    "^STIN",
    "^CEND",
    "^ORIG",
    "^CONF",
    "^CONN",
    "+QIND",
    "+CPBREADY",
    "+PBREADY",
    "RDY",
    "SMS READY",
    "CALL READY",
    "+ZUSIMR",
    "+ZPBIC",
    "^HCMT",
    "^HCDS",
    "^HCMGSS",
    "^HCMGSF",
    // Boot chatter that can land inside the first replies, before the dialect is known.
    "+CFUN",
    "SMS DONE",
    "PB DONE",
    "+QUSIM",
    "*PSUTTZ",
    "+WIND",
];

/// Longest URC name the digester looks up (vendor names included).
const MAX_URC_NAME: usize = 24;

/// Running counters, for logs and `smsgate diag`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DigestStats {
    pub lines: u64,
    pub garbage_bytes: u64,
}

#[derive(Debug, Clone)]
enum PendingPdu {
    Cmt { alpha: Option<String>, length: u16 },
    Cds { length: u16 },
}

/// A `^HCMT` / `^HCMGR` header was read: its body (raw octets, which may hold CR, LF or NUL
/// inside UCS2) is taken by length, not by line.
#[derive(Debug, Clone)]
struct PendingText {
    /// `^HCMT` (a URC) rather than the answer of `AT^HCMGR`.
    urc: bool,
    header_line: String,
    header: TextHeader,
    /// The header line ended in CR: its LF comes first and is not part of the body.
    skip_lf: bool,
}

/// The AT output state machine. Tell it what the current command's reply looks like
/// ([`Digester::expect`]) so that, e.g., `+CREG: 0,1` is an answer and not a URC.
#[derive(Debug, Default)]
pub struct Digester {
    expect: Option<&'static str>,
    expect_prompt: bool,
    pending: Option<PendingPdu>,
    pending_text: Option<PendingText>,
    extra_urcs: Vec<String>,
    stats: DigestStats,
}

impl Digester {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds vendor URC names (a dialect's list) to the built-in table.
    pub fn with_urcs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.add_urcs(names);
        self
    }

    /// Adds vendor URC names after construction (once the dialect is known).
    pub fn add_urcs<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, names: I) {
        for n in names {
            let n = n.into().to_ascii_uppercase();
            if n.len() <= MAX_URC_NAME && !self.extra_urcs.contains(&n) {
                self.extra_urcs.push(n);
            }
        }
    }

    /// Sets the response prefix of the command in progress (`None` when idle) and whether a
    /// bare `>` at the start of a line is the prompt.
    pub fn expect(&mut self, prefix: Option<&'static str>, prompt: bool) {
        self.expect = prefix;
        self.expect_prompt = prompt;
    }

    pub fn stats(&self) -> DigestStats {
        self.stats
    }

    /// Digests the front of `buf`. Returns the event found (if any) and how many bytes were
    /// used. `(None, 0)` means "need more bytes"; `(None, n>0)` means bytes were skipped:
    /// drop them and call again.
    pub fn digest(&mut self, buf: &[u8]) -> (Option<Event>, usize) {
        if self.pending_text.is_some() {
            return self.text_body(buf);
        }
        let mut i = 0;
        let mut junk = 0usize;
        while let Some(&b) = buf.get(i) {
            // Terminators and leading blanks (a line is trimmed anyway; skipping them here
            // means the space after a bare '>' prompt cannot start a line of its own).
            if matches!(b, b'\r' | b'\n' | b' ' | b'\t') {
                i += 1;
            } else if is_junk_start(b) {
                junk += 1;
                i += 1;
            } else {
                break;
            }
        }
        if junk > 0 {
            self.stats.garbage_bytes += junk as u64;
            tracing::debug!(bytes = junk, "at: skipped garbage before a line");
            return (Some(Event::Garbage { bytes: junk }), i);
        }
        let rest = buf.get(i..).unwrap_or_default();
        if rest.is_empty() {
            return (None, i);
        }
        if rest.first() == Some(&b'>') {
            // While a prompt is awaited, '>' at a line start is the prompt whatever follows
            // (some modems omit the space), so chunk boundaries cannot change the outcome.
            match rest.get(1) {
                Some(b' ') => return (Some(Event::Prompt), i + 2),
                _ if self.expect_prompt => return (Some(Event::Prompt), i + 1),
                None => return (None, i),
                Some(_) => {}
            }
        }
        let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            if rest.len() > MAX_LINE {
                self.stats.garbage_bytes += rest.len() as u64;
                tracing::debug!(bytes = rest.len(), "at: over-long line skipped");
                return (Some(Event::Garbage { bytes: rest.len() }), buf.len());
            }
            return (None, i);
        };
        let consumed = i + end + 1;
        let line = rest.get(..end).unwrap_or_default();
        if line.len() > MAX_LINE {
            self.stats.garbage_bytes += line.len() as u64;
            return (Some(Event::Garbage { bytes: line.len() }), consumed);
        }
        self.stats.lines += 1;
        let ev = self.classify(line);
        if let Some(p) = self.pending_text.as_mut() {
            p.skip_lf = rest.get(end) == Some(&b'\r');
        }
        (ev, consumed)
    }

    /// The body of a CDMA/PHS text message: `<length>` octets, then the end marker when the
    /// module writes one (1A, or 00 1A for UCS2, as on the send side). Waits until the body
    /// and the room for the marker have arrived (bounded by [`super::command::MAX_TEXT_OCTETS`]).
    fn text_body(&mut self, buf: &[u8]) -> (Option<Event>, usize) {
        let Some(p) = self.pending_text.as_mut() else {
            return (None, 0);
        };
        let mut i = 0;
        if p.skip_lf {
            match buf.first() {
                None => return (None, 0),
                Some(b'\n') => i = 1,
                Some(_) => {}
            }
            p.skip_lf = false;
        }
        let len = p.header.length;
        let marker = text_end_marker(p.header.format);
        let after = buf.get(i..).unwrap_or_default();
        if after.len() < len + marker.len() {
            return (None, i);
        }
        let Some(p) = self.pending_text.take() else {
            return (None, i);
        };
        let body = after.get(..len).unwrap_or_default();
        let mut used = i + len;
        if after.get(len..).is_some_and(|m| m.starts_with(marker)) {
            used += marker.len();
        }
        let text = decode_text_body(p.header.format, body);
        let ev = if p.urc {
            Event::Urc(Urc::Text(TextSms {
                header: p.header,
                text,
            }))
        } else {
            Event::Info(format!("{}\r\n{text}", p.header_line))
        };
        (Some(ev), used)
    }

    fn classify(&mut self, raw: &[u8]) -> Option<Event> {
        let owned;
        let bytes: &[u8] = if raw.iter().any(|&b| is_junk_inside(b)) {
            owned = raw
                .iter()
                .copied()
                .filter(|&b| !is_junk_inside(b))
                .collect::<Vec<u8>>();
            let dropped = raw.len() - owned.len();
            self.stats.garbage_bytes += dropped as u64;
            tracing::debug!(bytes = dropped, "at: control bytes dropped inside a line");
            &owned
        } else {
            raw
        };
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Some(pending) = self.pending.take() {
            if is_hex(text) {
                let pdu = text.to_string();
                return Some(Event::Urc(match pending {
                    PendingPdu::Cmt { alpha, length } => Urc::Message { alpha, length, pdu },
                    PendingPdu::Cds { length } => Urc::StatusReport { length, pdu },
                }));
            }
            tracing::warn!("at: +CMT/+CDS header without its PDU line; header dropped");
        }
        if let Some(ev) = final_result(text) {
            return Some(ev);
        }
        if is_echo(text) {
            return Some(Event::Echo(text.to_string()));
        }
        let (name, rest) = match text.split_once(':') {
            Some((n, r)) => (n.trim(), r.trim()),
            None => (text, ""),
        };
        let hcmt = name.eq_ignore_ascii_case("^HCMT");
        if hcmt || name.eq_ignore_ascii_case("^HCMGR") {
            if let Some(header) = parse_text_header(rest) {
                self.pending_text = Some(PendingText {
                    urc: hcmt,
                    header_line: text.to_string(),
                    header,
                    skip_lf: false,
                });
                return None;
            }
        }
        if self.expect.is_some_and(|e| e.eq_ignore_ascii_case(name)) {
            return Some(Event::Info(text.to_string()));
        }
        // Information lines are the common case: decide without allocating.
        // No URC name is longer than MAX_URC_NAME: PDU lines skip the table scan.
        let known = name.len() <= MAX_URC_NAME
            && (BUILTIN_URCS.iter().any(|u| u.eq_ignore_ascii_case(name))
                || self.extra_urcs.iter().any(|u| u.eq_ignore_ascii_case(name)));
        if !known {
            return Some(Event::Info(text.to_string()));
        }
        let upper = name.to_ascii_uppercase();
        self.urc(&upper, rest, text)
    }

    fn urc(&mut self, name: &str, rest: &str, line: &str) -> Option<Event> {
        let f = split_fields(rest);
        let urc = match name {
            "+CMTI" | "+CDSI" => match (f.first(), f.get(1).and_then(|s| s.parse::<u32>().ok())) {
                (Some(mem), Some(index)) => {
                    let mem = unquote(mem).to_string();
                    if name == "+CMTI" {
                        Urc::NewMessage { mem, index }
                    } else {
                        Urc::StatusReportStored { mem, index }
                    }
                }
                _ => Urc::Other(line.to_string()),
            },
            "+CMT" => {
                // +CMT: [<alpha>],<length>  (PDU mode)
                let length = f.last().and_then(|s| s.parse::<u16>().ok());
                match length {
                    Some(length) if f.len() >= 2 => {
                        let alpha = f
                            .first()
                            .map(|a| unquote(a).to_string())
                            .filter(|a| !a.is_empty());
                        self.pending = Some(PendingPdu::Cmt { alpha, length });
                        return None;
                    }
                    _ => Urc::Other(line.to_string()),
                }
            }
            "+CDS" => match f.first().and_then(|s| s.parse::<u16>().ok()) {
                Some(length) if f.len() == 1 => {
                    self.pending = Some(PendingPdu::Cds { length });
                    return None;
                }
                _ => Urc::Other(line.to_string()),
            },
            "+CREG" | "+CGREG" | "+CEREG" => {
                let kind = match name {
                    "+CREG" => RegKind::Cs,
                    "+CGREG" => RegKind::Gprs,
                    _ => RegKind::Eps,
                };
                match parse_registration_urc(kind, &f) {
                    Some(r) => Urc::Registration(r),
                    None => Urc::Other(line.to_string()),
                }
            }
            "RING" | "+CRING" => Urc::Ring,
            _ => Urc::Other(line.to_string()),
        };
        Some(Event::Urc(urc))
    }
}

fn final_result(text: &str) -> Option<Event> {
    match text {
        "OK" => return Some(Event::Ok),
        "ERROR" => return Some(Event::Error(DeviceError::Error)),
        "NO CARRIER"
        | "BUSY"
        | "NO ANSWER"
        | "NO DIALTONE"
        | "COMMAND NOT SUPPORT"
        | "TOO MANY PARAMETERS"
        | "ABORTED" => return Some(Event::Error(DeviceError::Final(text.to_string()))),
        _ => {}
    }
    if let Some(v) = strip_prefix_ci(text, "+CMS ERROR:") {
        let v = v.trim();
        let e = match v.parse::<u16>() {
            Ok(n) => DeviceError::Cms(CmsError::from_code(n)),
            Err(_) => CmsError::from_text(v)
                .map(DeviceError::Cms)
                .unwrap_or_else(|| DeviceError::UnknownText(text.to_string())),
        };
        return Some(Event::Error(e));
    }
    if let Some(v) = strip_prefix_ci(text, "+CME ERROR:") {
        let v = v.trim();
        let e = match v.parse::<u16>() {
            Ok(n) => DeviceError::Cme(CmeError::from_code(n)),
            Err(_) => CmeError::from_text(v)
                .map(DeviceError::Cme)
                .unwrap_or_else(|| DeviceError::UnknownText(text.to_string())),
        };
        return Some(Event::Error(e));
    }
    None
}

/// A command line coming back: `AT` alone, `AT+...`/`AT^...`, or a basic command such as
/// `ATE0`/`ATI`. Strict on purpose: a reply line that merely begins with "AT" (a model name,
/// a diag answer) must not be dropped as echo.
fn is_echo(text: &str) -> bool {
    let b = text.as_bytes();
    if !b.get(..2).is_some_and(|p| p.eq_ignore_ascii_case(b"AT")) {
        return false;
    }
    match b.get(2) {
        None => true,
        Some(b'+' | b'^' | b'$' | b'%' | b'*' | b'#') => !text.contains(' ') || text.contains('='),
        Some(c) => {
            c.is_ascii_alphabetic()
                && b.len() <= 5
                && b.get(3..)
                    .unwrap_or_default()
                    .iter()
                    .all(u8::is_ascii_alphanumeric)
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Bytes that cannot start a line: C0 controls (other than CR/LF/TAB), DEL, UTF-8
/// continuation bytes and bytes never valid in UTF-8.
fn is_junk_start(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f || (0x80..0xc0).contains(&b) || b >= 0xf8
}

/// Bytes dropped inside a line: C0 controls other than TAB, and DEL.
fn is_junk_inside(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_events(d: &mut Digester, input: &[u8], chunk: usize) -> Vec<Event> {
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let (ev, n) = d.digest(&buf);
                assert!(n <= buf.len());
                buf.drain(..n);
                if let Some(ev) = ev {
                    out.push(ev);
                } else if n == 0 {
                    break;
                }
            }
        }
        out
    }

    /// Garbage may be reported in several pieces when it arrives in pieces.
    fn merge_garbage(v: Vec<Event>) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for e in v {
            if let (Some(Event::Garbage { bytes: a }), Event::Garbage { bytes: b }) =
                (out.last_mut(), &e)
            {
                *a += b;
                continue;
            }
            out.push(e);
        }
        out
    }

    fn events(input: &[u8]) -> Vec<Event> {
        let whole = all_events(&mut Digester::new(), input, input.len());
        let bytewise = all_events(&mut Digester::new(), input, 1);
        assert_eq!(
            merge_garbage(whole.clone()),
            merge_garbage(bytewise),
            "byte-at-a-time feeding must give the same events"
        );
        whole
    }

    #[test]
    fn ok_error_and_info_lines() {
        let ev = events(b"\r\nQuectel\r\n\r\nOK\r\n\r\nERROR\r\n");
        assert_eq!(
            ev,
            vec![
                Event::Info("Quectel".into()),
                Event::Ok,
                Event::Error(DeviceError::Error)
            ]
        );
    }

    #[test]
    fn cms_and_cme_numeric_and_verbose_forms_agree() {
        let ev = events(
            b"\r\n+CMS ERROR: 304\r\n\r\n+CMS ERROR: invalid PDU mode parameter\r\n\
              \r\n+CME ERROR: 11\r\n\r\n+CME ERROR: SIM PIN required\r\n\r\n+CME ERROR: gremlins\r\n",
        );
        let pdu = Event::Error(DeviceError::Cms(CmsError::InvalidPduParameter));
        let pin = Event::Error(DeviceError::Cme(CmeError::SimPinRequired));
        assert_eq!(ev[0], pdu);
        assert_eq!(ev[1], pdu);
        assert_eq!(ev[2], pin);
        assert_eq!(ev[3], pin);
        assert!(matches!(ev[4], Event::Error(DeviceError::UnknownText(_))));
    }

    #[test]
    fn echo_is_recognised() {
        let ev = events(b"AT+CGMI\r\r\nHUAWEI\r\n\r\nOK\r\n");
        assert_eq!(
            ev,
            vec![
                Event::Echo("AT+CGMI".into()),
                Event::Info("HUAWEI".into()),
                Event::Ok
            ]
        );
    }

    #[test]
    fn only_command_lines_count_as_echo() {
        for echo in [
            "AT",
            "ATE0",
            "ati",
            "AT+CMGS=20",
            "AT^ICCID?",
            "AT+CPIN=\"1234\"",
        ] {
            assert!(is_echo(echo), "{echo}");
        }
        for reply in ["AT&T", "ATMEL Corp", "ATLANTIC 900", "Quectel"] {
            assert!(!is_echo(reply), "{reply}");
        }
    }

    #[test]
    fn prompt_then_cmgs_reference() {
        let mut d = Digester::new();
        d.expect(Some("+CMGS"), true);
        let ev = all_events(&mut d, b"\r\n> ", 1);
        assert_eq!(ev, vec![Event::Prompt]);
        let ev = all_events(&mut d, b"\r\n+CMGS: 17\r\n\r\nOK\r\n", 1);
        assert_eq!(ev, vec![Event::Info("+CMGS: 17".into()), Event::Ok]);
    }

    #[test]
    fn bare_prompt_without_space_when_expected() {
        let mut d = Digester::new();
        d.expect(Some("+CMGS"), true);
        assert_eq!(d.digest(b"\r\n>"), (Some(Event::Prompt), 3));
    }

    #[test]
    fn urcs_interleaved_in_a_response() {
        // +CMTI and a Huawei ^RSSI arrive in the middle of an AT+CSQ reply.
        let mut d = Digester::new();
        d.expect(Some("+CSQ"), false);
        let ev = all_events(
            &mut d,
            b"\r\n+CMTI: \"SM\",3\r\n\r\n^RSSI:17\r\n\r\n+CSQ: 17,99\r\n\r\nOK\r\n",
            1,
        );
        assert_eq!(
            ev,
            vec![
                Event::Urc(Urc::NewMessage {
                    mem: "SM".into(),
                    index: 3
                }),
                Event::Urc(Urc::Other("^RSSI:17".into())),
                Event::Info("+CSQ: 17,99".into()),
                Event::Ok,
            ]
        );
    }

    /// ^HCMT's body follows its header as raw octets (Huawei CDMA manuals): UCS2 may hold CR,
    /// LF and NUL bytes (退 is 90 00; 不 is 4E 0D), so it is read by <length>, not as a line.
    /// Before, the body was a garbage line and the header an `Other` URC.
    #[test]
    fn hcmt_and_hcmgr_bodies_are_read_by_length() {
        use crate::at::AtCommand;
        let mut input = b"\r\n^HCMT:075587654321,2026,11,29,20,30,01,0,6,6,0,0,0,0\r\n".to_vec();
        input.extend([0x90, 0x00, 0x4E, 0x0D, 0x8B, 0xA2, 0x00, 0x1A]);
        input.extend(b"\r\n^HCMT: 13581837652,2009,10,27,10,58,14,0,1,4,0,0,0,0\r\ntd\r\n\x1a\r\n");
        input.extend(b"\r\n+CMTI: \"ME\",3\r\n");
        let ev = events(&input);
        let texts: Vec<(String, String)> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Urc(Urc::Text(t)) => Some((t.header.sender.clone(), t.text.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                ("075587654321".to_string(), "退不订".to_string()),
                ("13581837652".to_string(), "td\r\n".to_string())
            ]
        );
        assert_eq!(
            ev.last(),
            Some(&Event::Urc(Urc::NewMessage {
                mem: "ME".into(),
                index: 3
            }))
        );
        assert!(
            !ev.iter().any(|e| matches!(e, Event::Garbage { .. })),
            "{ev:?}"
        );

        // The answer of AT^HCMGR: header and text as one information line, then OK. A module
        // without an end marker (MC2716 style) is read too.
        let mut d = Digester::new();
        d.expect(Some("^HCMGR"), false);
        let ev = all_events(
            &mut d,
            b"\r\n^HCMGR:13581837652,2009,10,27,10,58,14,0,1,4,0,0,0,1\r\ntest\r\nOK\r\n",
            3,
        );
        assert_eq!(
            ev,
            vec![
                Event::Info("^HCMGR:13581837652,2009,10,27,10,58,14,0,1,4,0,0,0,1\r\ntest".into()),
                Event::Ok
            ]
        );
        let r = crate::at::Hcmgr(1)
            .parse(&["^HCMGR:13581837652,2009,10,27,10,58,14,0,1,4,0,0,0,1\r\n te ".into()])
            .unwrap()
            .unwrap();
        assert_eq!(r.text, " te ");
        assert_eq!(r.header.time, [2009, 10, 27, 10, 58, 14]);
        assert_eq!(r.header.stat, 1);
        assert_eq!(crate::at::Hcmgr(1).parse(&[]), Ok(None));
        assert!(crate::at::Hcmgr(1).parse(&["^HCMGR:x,1".into()]).is_err());
    }

    #[test]
    fn cmt_and_cds_carry_their_pdu_line() {
        // PDU from 3GPP TS 23.040 style DELIVER; only the framing matters here.
        let ev = events(
            b"\r\n+CMT: ,24\r\n07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07\r\n\
              \r\n+CDS: 25\r\n0791683108200505F006C00D91683109325476F8\r\n\r\n+CDSI: \"SR\",4\r\n",
        );
        assert_eq!(ev.len(), 3);
        assert!(
            matches!(&ev[0], Event::Urc(Urc::Message { alpha: None, length: 24, pdu }) if pdu.starts_with("0791"))
        );
        assert!(matches!(
            &ev[1],
            Event::Urc(Urc::StatusReport { length: 25, .. })
        ));
        assert_eq!(
            ev[2],
            Event::Urc(Urc::StatusReportStored {
                mem: "SR".into(),
                index: 4
            })
        );
    }

    #[test]
    fn cmt_inside_a_cmgl_listing_keeps_both_intact() {
        let mut d = Digester::new();
        d.expect(Some("+CMGL"), false);
        let ev = all_events(
            &mut d,
            b"\r\n+CMGL: 1,0,,3\r\n0011AA\r\n+CMT: ,2\r\n00BB\r\n+CMGL: 2,1,,3\r\n0011CC\r\n\r\nOK\r\n",
            1,
        );
        let infos: Vec<&Event> = ev.iter().filter(|e| matches!(e, Event::Info(_))).collect();
        assert_eq!(infos.len(), 4);
        assert!(ev.contains(&Event::Urc(Urc::Message {
            alpha: None,
            length: 2,
            pdu: "00BB".into()
        })));
        assert_eq!(ev.last(), Some(&Event::Ok));
    }

    #[test]
    fn creg_is_an_answer_when_expected_and_a_urc_otherwise() {
        let mut d = Digester::new();
        d.expect(Some("+CREG"), false);
        assert_eq!(
            all_events(&mut d, b"+CREG: 0,1\r\n", 1),
            vec![Event::Info("+CREG: 0,1".into())]
        );
        d.expect(None, false);
        let ev = all_events(&mut d, b"+CREG: 5\r\n", 1);
        assert!(
            matches!(&ev[0], Event::Urc(Urc::Registration(r)) if r.stat == crate::at::RegStatus::Roaming)
        );
    }

    #[test]
    fn garbage_in_front_is_skipped_and_counted() {
        let mut input = vec![0x00u8, 0xff, 0x13, 0x91, 0x7f];
        input.extend_from_slice(b"\r\nOK\r\n");
        let ev = events(&input);
        assert_eq!(ev.last(), Some(&Event::Ok));
        let skipped: usize = ev
            .iter()
            .map(|e| {
                if let Event::Garbage { bytes } = e {
                    *bytes
                } else {
                    0
                }
            })
            .sum();
        assert_eq!(skipped, 5);
    }

    #[test]
    fn boot_chatter_does_not_pollute_an_identity_reply() {
        // Quectel boot URCs arriving while AT+CGMI is answered.
        let mut d = Digester::new();
        d.expect(Some("+CGMI"), false);
        let ev = all_events(
            &mut d,
            b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\nSMS DONE\r\n\r\nQuectel\r\n\r\nOK\r\n",
            1,
        );
        let infos: Vec<_> = ev.iter().filter(|e| matches!(e, Event::Info(_))).collect();
        assert_eq!(infos, vec![&Event::Info("Quectel".into())]);
    }

    #[test]
    fn control_bytes_inside_a_line_are_dropped_and_counted() {
        let mut d = Digester::new();
        let ev = all_events(&mut d, b"\r\nO\x00K\r\n\r\n+CSQ: 1\x0179,99\r\n", 1);
        assert_eq!(ev, vec![Event::Ok, Event::Info("+CSQ: 179,99".into())]);
        assert_eq!(d.stats().garbage_bytes, 2);
    }

    #[test]
    fn over_long_line_resynchronises() {
        let mut input = vec![b'Z'; MAX_LINE + 10];
        input.extend_from_slice(b"\r\nOK\r\n");
        let ev = all_events(&mut Digester::new(), &input, 64);
        assert_eq!(ev.last(), Some(&Event::Ok));
        assert!(ev.iter().any(|e| matches!(e, Event::Garbage { .. })));
    }

    #[test]
    fn real_transcript_huawei_e303_init() {
        // Shape of a Huawei E303 session as logged by ModemManager users: echo still on,
        // ^RSSI/^MODE floods between replies.
        let t = b"ATE0\r\r\nOK\r\n\r\n^RSSI:14\r\n\r\n^MODE:5,4\r\n\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n";
        let ev = events(t);
        assert_eq!(ev[0], Event::Echo("ATE0".into()));
        assert_eq!(ev.iter().filter(|e| **e == Event::Ok).count(), 3);
        assert_eq!(ev.iter().filter(|e| matches!(e, Event::Urc(_))).count(), 3);
    }

    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let len = rng.random_range(0..300);
            let mut v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            // Sprinkle real tokens so deeper states are reached.
            if rng.random_bool(0.5) {
                v.extend_from_slice(b"\r\n+CMT: ,3\r\n> +CME ERROR: 3\r\n");
            }
            crate::at::fuzz_digest(&v);
        }
    }
}
