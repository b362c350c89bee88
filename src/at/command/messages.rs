//! Message commands (part of `at::command`): sending (+CMGS PDU mode and the Huawei ^HCMGS
//! text flow with its ^HCMGSS/^HCMGSF outcomes), listing and reading stored messages (+CMGL,
//! +CMGR, ^HCMGR with the text-mode header and body decoding) and USSD (+CUSD). What must
//! hold: phone numbers are masked in `display()`, a text header announcing more than
//! `MAX_TEXT_OCTETS` is not read as one, and text decoding never panics (bad UCS2 becomes U+FFFD).

use std::time::Duration;

use super::super::error::DeviceError;
use super::{after_prefix, bad, find, num, split_fields, unquote, AtCommand};

/// How a dialect sends a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendCommand {
    /// 27.005 PDU mode: `AT+CMGS=<length>`, prompt, PDU hex, Ctrl-Z.
    Cmgs,
    /// CDMA/PHS-era Huawei text flow: `AT^HCMGS="<number>"`, prompt, UCS2 bytes, 00 1A; OK,
    /// then the outcome arrives later as `^HCMGSS: <mr>` or `^HCMGSF: <cause>`.
    Hcmgs,
}

/// `AT+CNMI?` -> `+CNMI: <mode>,<mt>,<bm>,<ds>,<bfr>` (27.005 §3.4.1); missing trailing
/// fields read as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnmiQuery;

impl AtCommand for CnmiQuery {
    type Response = [u8; 5];
    fn line(&self) -> String {
        "AT+CNMI?".to_string()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CNMI")
    }
    fn parse(&self, lines: &[String]) -> Result<[u8; 5], DeviceError> {
        let f = split_fields(find(lines, "+CNMI").ok_or_else(|| bad("+CNMI", lines))?);
        if f.len() < 2 {
            return Err(bad("+CNMI", lines));
        }
        let mut out = [0u8; 5];
        for (slot, v) in out.iter_mut().zip(f.iter()) {
            *slot = unquote(v).parse().map_err(|_| bad("+CNMI", lines))?;
        }
        Ok(out)
    }
}

/// How a dialect reads what the modem stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCommand {
    /// 27.005 PDU mode: `AT+CMGL=4` at start-up, `AT+CMGR=<index>` on `+CMTI`.
    Cmgr,
    /// CDMA/PHS text mode: `AT^HCMGR=<index>` ([`Hcmgr`]) for each stored message.
    Hcmgr,
}

/// `AT+CMGS=<length>`, `"> "`, the PDU in hex, Ctrl-Z; answers `+CMGS: <mr>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmgs {
    /// TPDU octets, excluding the SMSC part.
    pub length: u16,
    /// SMSC part + TPDU in hex.
    pub pdu_hex: String,
}

impl AtCommand for Cmgs {
    type Response = u8;
    fn line(&self) -> String {
        format!("AT+CMGS={}", self.length)
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CMGS")
    }
    fn payload(&self) -> Option<Vec<u8>> {
        let mut p = Vec::with_capacity(self.pdu_hex.len() + 1);
        p.extend_from_slice(self.pdu_hex.as_bytes());
        p.push(0x1a);
        Some(p)
    }
    fn timeout(&self) -> Duration {
        // The network may take tens of seconds; TS 27.005 gives no bound. 60 s like gammu.
        Duration::from_secs(60)
    }
    fn parse(&self, lines: &[String]) -> Result<u8, DeviceError> {
        let f = split_fields(find(lines, "+CMGS").ok_or_else(|| bad("+CMGS", lines))?);
        // TP-MR is one octet; some firmwares count past 255, keep the low octet.
        num::<u32>(f.first())
            .map(|mr| (mr & 0xff) as u8)
            .ok_or_else(|| bad("+CMGS", lines))
    }
}

/// `AT^HCMGS="<number>"`, `"> "`, the text as UCS2 big-endian bytes, then 00 1A (Huawei
/// CDMA modules such as the MC323 after `AT^HSMSSS=0,0,6,0`). OK only means "accepted"; the
/// outcome is the later `^HCMGSS`/`^HCMGSF` URC ([`parse_hcmgs_outcome`]). Some firmware
/// also prints `^HCMGS: <mr>` before OK, returned here when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hcmgs {
    pub destination: String,
    pub ucs2: Vec<u8>,
}

impl AtCommand for Hcmgs {
    type Response = Option<u8>;
    fn line(&self) -> String {
        format!("AT^HCMGS=\"{}\"", self.destination)
    }
    fn display(&self) -> String {
        format!("AT^HCMGS=\"{}\"", crate::number::mask(&self.destination))
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("^HCMGS")
    }
    fn payload(&self) -> Option<Vec<u8>> {
        let mut p = self.ucs2.clone();
        p.extend_from_slice(&[0x00, 0x1a]);
        Some(p)
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn parse(&self, lines: &[String]) -> Result<Option<u8>, DeviceError> {
        Ok(find(lines, "^HCMGS")
            .and_then(|v| num::<u32>(split_fields(v).first()))
            .map(|mr| (mr & 0xff) as u8))
    }
}

/// The outcome URC of `^HCMGS`: `^HCMGSS: <mr>` (sent) or `^HCMGSF: <cause>` (failed);
/// `None` for any other line.
pub fn parse_hcmgs_outcome(line: &str) -> Option<Result<u8, DeviceError>> {
    if let Some(v) = after_prefix(line, "^HCMGSS") {
        let mr = num::<u32>(split_fields(v).first()).unwrap_or(0);
        return Some(Ok((mr & 0xff) as u8));
    }
    let v = after_prefix(line, "^HCMGSF")?;
    let cause = num::<u16>(split_fields(v).first()).unwrap_or(0);
    Some(Err(DeviceError::SendFailed(cause)))
}

/// A message read from storage by +CMGL or +CMGR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPdu {
    pub index: u32,
    /// 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub stat: u8,
    pub length: u16,
    pub pdu: String,
}

/// `AT+CMGL=<stat>` (4 = all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmgl(pub u8);

impl AtCommand for Cmgl {
    type Response = Vec<StoredPdu>;
    fn line(&self) -> String {
        format!("AT+CMGL={}", self.0)
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CMGL")
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn parse(&self, lines: &[String]) -> Result<Vec<StoredPdu>, DeviceError> {
        let mut out = Vec::new();
        let mut it = lines.iter();
        while let Some(l) = it.next() {
            let Some(h) = after_prefix(l, "+CMGL") else {
                continue;
            };
            let f = split_fields(h);
            let (Some(index), Some(stat), Some(length)) =
                (num(f.first()), num(f.get(1)), num(f.last()))
            else {
                return Err(bad("+CMGL", lines));
            };
            let pdu = it
                .next()
                .ok_or_else(|| bad("+CMGL", lines))?
                .trim()
                .to_string();
            out.push(StoredPdu {
                index,
                stat,
                length,
                pdu,
            });
        }
        Ok(out)
    }
}

/// `AT+CMGR=<index>`: `+CMGR: <stat>,[<alpha>],<length>` + PDU line; an empty slot answers
/// only OK (or +CMS ERROR 321), which is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmgr(pub u32);

impl AtCommand for Cmgr {
    type Response = Option<StoredPdu>;
    fn line(&self) -> String {
        format!("AT+CMGR={}", self.0)
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CMGR")
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn parse(&self, lines: &[String]) -> Result<Option<StoredPdu>, DeviceError> {
        let Some(pos) = lines
            .iter()
            .position(|l| after_prefix(l, "+CMGR").is_some())
        else {
            return Ok(None);
        };
        let f = split_fields(after_prefix(&lines[pos], "+CMGR").unwrap_or(""));
        let (Some(stat), Some(length)) = (num(f.first()), num(f.last())) else {
            return Err(bad("+CMGR", lines));
        };
        let pdu = lines
            .get(pos + 1)
            .ok_or_else(|| bad("+CMGR", lines))?
            .trim()
            .to_string();
        if pdu.is_empty() || !pdu.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("+CMGR", lines));
        }
        Ok(Some(StoredPdu {
            index: self.0,
            stat,
            length,
            pdu,
        }))
    }
}

/// The header of a CDMA/PHS text-mode message, as `^HCMT` and `^HCMGR` give it (Huawei CDMA AT
/// command manuals for the MC323/EC1261/EM660 class; ModemManager's Huawei CDMA plugin reads
/// `^HCMGR` with the same field list): `<callerID>,<year>,<month>,<day>,<hour>,<minute>,
/// <second>,<lang>,<format>,<length>,<prt>,<prv>,<type>,<stat>`. `<format>` 1 is ASCII, 6 UCS2
/// big-endian (`^HSMSSS` `<fmt>`), anything else 8-bit octets; `<length>` counts the octets of
/// text that follow the header line, before the end marker (1A, or 00 1A for UCS2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextHeader {
    pub sender: String,
    /// year, month, day, hour, minute, second: the service centre's local time, no zone.
    pub time: [u16; 6],
    pub format: u8,
    pub length: usize,
    /// 0 unread, 1 read (`^HCMGR` only; 0 in `^HCMT`).
    pub stat: u8,
}

/// Most octets of text one CDMA/PHS text message carries (160 ASCII, 70 UCS2, 140 8-bit);
/// a header announcing more is not read as one (its body is skipped as garbage).
pub const MAX_TEXT_OCTETS: usize = 320;

/// Reads a `^HCMT` / `^HCMGR` header (the part after the colon); None if it is not one.
pub fn parse_text_header(params: &str) -> Option<TextHeader> {
    let f = split_fields(params);
    if f.len() < 14 {
        return None;
    }
    let sender = unquote(f.first()?).to_string();
    if sender.is_empty()
        || !sender
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#'))
    {
        return None;
    }
    let mut time = [0u16; 6];
    for (i, t) in time.iter_mut().enumerate() {
        *t = f.get(i + 1)?.parse().ok()?;
    }
    let format = f.get(8)?.parse().ok()?;
    let length: usize = f.get(9)?.parse().ok()?;
    if length > MAX_TEXT_OCTETS {
        return None;
    }
    let stat = f.get(13)?.parse().ok()?;
    Some(TextHeader {
        sender,
        time,
        format,
        length,
        stat,
    })
}

/// The octets that end a text body of this format (after `<length>` octets).
pub fn text_end_marker(format: u8) -> &'static [u8] {
    if format == 6 {
        &[0x00, 0x1a]
    } else {
        &[0x1a]
    }
}

/// The text of a body of `format` (6 UCS2 big-endian, 1 ASCII, else octets as Latin-1);
/// unpaired surrogates become U+FFFD, never a panic.
pub fn decode_text_body(format: u8, body: &[u8]) -> String {
    if format == 6 {
        char::decode_utf16(
            body.chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)])),
        )
        .map(|c| c.unwrap_or('\u{fffd}'))
        .collect()
    } else {
        body.iter().map(|&b| char::from(b)).collect()
    }
}

/// A whole CDMA/PHS text-mode message: its header and the decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSms {
    pub header: TextHeader,
    pub text: String,
}

/// `AT^HCMGR=<index>` (CDMA/PHS text mode): `^HCMGR: <header>` then the raw text and its end
/// marker (the digester reads the body by its length and hands the header and the decoded
/// text over as one information line, `<header>` CR LF `<text>`). An empty slot answers OK
/// alone (`None`); modules that answer an error for it give a [`DeviceError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hcmgr(pub u32);

impl AtCommand for Hcmgr {
    type Response = Option<TextSms>;
    fn line(&self) -> String {
        format!("AT^HCMGR={}", self.0)
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("^HCMGR")
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn parse(&self, lines: &[String]) -> Result<Option<TextSms>, DeviceError> {
        let Some(line) = lines.iter().find(|l| after_prefix(l, "^HCMGR").is_some()) else {
            return Ok(None);
        };
        // The text is kept as sent (blanks included): only the header is trimmed.
        let (head, text) = line
            .split_once("\r\n")
            .ok_or_else(|| bad("^HCMGR", lines))?;
        let header = after_prefix(head, "^HCMGR")
            .and_then(parse_text_header)
            .ok_or_else(|| bad("^HCMGR", lines))?;
        Ok(Some(TextSms {
            header,
            text: text.to_string(),
        }))
    }
}

/// `AT+CUSD=1,"<code>",15`; the reply usually comes later as a `+CUSD` URC, but some
/// modems put it before OK, in which case it is returned here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cusd(pub String);

/// `+CUSD: <m>[,<str>,<dcs>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdReply {
    pub status: u8,
    pub text: Option<String>,
    pub dcs: Option<u8>,
}

/// Parses the parameters of a `+CUSD` line (URC or reply).
pub fn parse_cusd(params: &str) -> Option<UssdReply> {
    let f = split_fields(params);
    Some(UssdReply {
        status: num(f.first())?,
        text: f.get(1).map(|s| unquote(s).to_string()),
        dcs: num(f.get(2)),
    })
}

impl AtCommand for Cusd {
    type Response = Option<UssdReply>;
    fn line(&self) -> String {
        format!("AT+CUSD=1,\"{}\",15", self.0)
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CUSD")
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn parse(&self, lines: &[String]) -> Result<Option<UssdReply>, DeviceError> {
        Ok(find(lines, "+CUSD").and_then(parse_cusd))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::l;
    use super::*;

    #[test]
    fn cmgs_cmgl_cmgr() {
        let c = Cmgs {
            length: 20,
            pdu_hex: "00".into(),
        };
        assert_eq!(c.line(), "AT+CMGS=20");
        assert_eq!(c.payload().unwrap(), b"00\x1a");
        assert_eq!(c.parse(&l(&["+CMGS: 300"])).unwrap(), 44);
        let h = Hcmgs {
            destination: "075512345678".into(),
            ucs2: vec![0x4f, 0x60],
        };
        assert_eq!(h.line(), "AT^HCMGS=\"075512345678\"");
        assert_eq!(h.payload().unwrap(), vec![0x4f, 0x60, 0x00, 0x1a]);
        assert_eq!(h.parse(&l(&["^HCMGS: 5"])).unwrap(), Some(5));
        assert_eq!(h.parse(&[]).unwrap(), None);
        assert_eq!(parse_hcmgs_outcome("^HCMGSS: 31"), Some(Ok(31)));
        assert_eq!(
            parse_hcmgs_outcome("^HCMGSF:106"),
            Some(Err(DeviceError::SendFailed(106)))
        );
        assert_eq!(parse_hcmgs_outcome("^RSSILVL:3"), None);
        let list = Cmgl(4)
            .parse(&l(&[
                "+CMGL: 1,0,,24",
                "07911326040000F0",
                "+CMGL: 3,1,\"x\",5",
                "0011",
            ]))
            .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].index, 3);
        assert_eq!(list[1].pdu, "0011");
        assert!(Cmgl(4).parse(&l(&["+CMGL: 1,0,,24"])).is_err());
        assert_eq!(Cmgr(2).parse(&[]).unwrap(), None);
        let m = Cmgr(2)
            .parse(&l(&["+CMGR: 0,,24", "0791AB"]))
            .unwrap()
            .unwrap();
        assert_eq!((m.index, m.length), (2, 24));
    }
}
