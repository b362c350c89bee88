//! Typed AT commands (3GPP TS 27.005 / 27.007 and vendor variants): one struct per command,
//! each with the line it writes, the prefix of its information lines, its timeout and a parser
//! for its reply (the atat `AtatCmd` pattern). Also the URC values the digester produces.
//! What must always hold: parsers never panic on any reply; a reply they cannot understand is
//! `DeviceError::BadReply` naming the command and the line, never a guess.
//!
//! Layout: this file holds the [`AtCommand`] trait, the [`Urc`] values and the field helpers
//! every parser leans on (quote-aware splitting, prefixes, the `BadReply` builder); the commands
//! live one section per file: [`basic`] (simple set-and-forget commands, PIN entry, raw lines),
//! [`identity`] (manufacturer, model, IMEI, IMSI, ICCID, own number), [`sim_network`] (PIN
//! state, signal, registration, operator, service centre, message service and storage) and
//! [`messages`] (sending, listing and reading messages, the text-mode flows, USSD). Everything
//! is re-exported here, so `crate::at::command::X` and `crate::at::X` name every item.
//! Tests of one section live with it; tests spanning sections stay here.

mod basic;
mod identity;
mod messages;
mod sim_network;

pub use basic::*;
pub use identity::*;
pub use messages::*;
pub use sim_network::*;

use std::time::Duration;

use super::error::DeviceError;

/// A command with a typed response.
pub trait AtCommand {
    type Response;
    /// The command line without its terminating CR, e.g. `AT+CSQ`.
    fn line(&self) -> String;
    /// The command line as it may appear in logs and errors: secrets and phone numbers
    /// masked (STYLE: no full number at info level or above).
    fn display(&self) -> String {
        self.line()
    }
    /// The prefix of this command's information lines (`+CSQ`), so the digester does not
    /// mistake them for URCs.
    fn prefix(&self) -> Option<&'static str> {
        None
    }
    /// Bytes sent after the `"> "` prompt, terminator included (Ctrl-Z for 27.005), for
    /// commands that take one.
    fn payload(&self) -> Option<Vec<u8>> {
        None
    }
    /// How long the modem may take to give its final result.
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    /// Parses the information lines that came before `OK`.
    fn parse(&self, lines: &[String]) -> Result<Self::Response, DeviceError>;
}

/// Unsolicited result codes the driver acts on; the rest stay as text in `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    /// `+CMTI: <mem>,<index>`: a message was stored.
    NewMessage {
        mem: String,
        index: u32,
    },
    /// `+CMT: [<alpha>],<length>` + PDU line: a message routed directly.
    Message {
        alpha: Option<String>,
        length: u16,
        pdu: String,
    },
    /// `+CDS: <length>` + PDU line: a status report routed directly.
    StatusReport {
        length: u16,
        pdu: String,
    },
    /// `+CDSI: <mem>,<index>`: a status report was stored.
    StatusReportStored {
        mem: String,
        index: u32,
    },
    /// `+CREG` / `+CGREG` / `+CEREG` unsolicited form.
    Registration(Registration),
    Ring,
    /// `^HCMT: <callerID>,<year>,...` + the raw text: a text-mode message of a CDMA/PHS
    /// module routed directly ([`TextSms`]).
    Text(TextSms),
    /// Any other URC (vendor floods such as ^RSSI, ^MODE), kept verbatim.
    Other(String),
}

// ---------------------------------------------------------------- field helpers

/// Splits a parameter list on commas outside double quotes; fields are trimmed, quotes kept.
pub fn split_fields(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s.trim().is_empty() || !out.is_empty() {
        out.push(s.get(start..).unwrap_or("").trim());
    }
    out
}

/// Removes one pair of surrounding double quotes.
pub fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
}

/// The parameters after `PREFIX:` if `line` starts with that prefix (case-insensitive).
pub fn after_prefix<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    line.get(prefix.len()..)?
        .trim_start()
        .strip_prefix(':')
        .map(str::trim)
}

/// The error for a reply a parser cannot read. It names the command and shows only the start
/// of the reply: replies carry numbers and message PDUs, which logs must not show in full.
fn bad(cmd: &str, lines: &[String]) -> DeviceError {
    let first: String = lines
        .first()
        .map_or("", |l| l.as_str())
        .chars()
        .take(16)
        .collect();
    DeviceError::BadReply(format!(
        "{cmd}: {} line(s), first {first:?}...",
        lines.len()
    ))
}

fn find<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| after_prefix(l, prefix))
}

fn num<T: std::str::FromStr>(s: Option<&&str>) -> Option<T> {
    s.and_then(|s| unquote(s).parse().ok())
}

/// A single-value reply such as +CGMI's: the first line, without an optional `+CGMI:` prefix.
fn single(lines: &[String], prefix: &str, cmd: &str) -> Result<String, DeviceError> {
    let l = lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| bad(cmd, lines))?;
    Ok(unquote(after_prefix(l, prefix).unwrap_or(l)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The information lines of a reply, as the driver hands them to a parser.
    pub(super) fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn secrets_and_numbers_are_masked_for_logs() {
        let pin = CpinEnter { pin: "1234".into() };
        assert_eq!(pin.line(), "AT+CPIN=\"1234\"");
        assert!(!pin.display().contains("1234"));
        assert!(!format!("{pin:?}").contains("1234"));
        let h = Hcmgs {
            destination: "075512345678".into(),
            ucs2: vec![],
        };
        assert_eq!(h.display(), "AT^HCMGS=\"075****5678\"");
    }

    #[test]
    fn field_splitting_respects_quotes() {
        assert_eq!(split_fields("\"SM\",3"), vec!["\"SM\"", "3"]);
        assert_eq!(split_fields("\"a,b\",,7"), vec!["\"a,b\"", "", "7"]);
        assert!(split_fields("").is_empty());
    }

    #[test]
    fn cops_csca_cnum_cpin() {
        let o = CopsQuery
            .parse(&l(&["+COPS: 0,0,\"CHINA MOBILE\",7"]))
            .unwrap();
        assert_eq!(o.name.as_deref(), Some("CHINA MOBILE"));
        assert_eq!(o.act, Some(7));
        assert_eq!(
            CscaQuery
                .parse(&l(&["+CSCA: \"+8613800755500\",145"]))
                .unwrap()
                .as_deref(),
            Some("+8613800755500")
        );
        assert_eq!(Cnum.parse(&l(&[])).unwrap(), None);
        assert_eq!(
            Cnum.parse(&l(&["+CNUM: \"\",\"+8613912345678\",145"]))
                .unwrap()
                .as_deref(),
            Some("+8613912345678")
        );
        assert_eq!(
            CpinQuery.parse(&l(&["+CPIN: SIM PIN"])).unwrap(),
            PinStatus::SimPin
        );
    }

    #[test]
    fn cpms_csms_cusd() {
        assert_eq!(
            Cpms("SM".into(), "SM".into(), "SM".into())
                .parse(&l(&["+CPMS: 3,50,3,50,3,50"]))
                .unwrap(),
            vec![(3, 50); 3]
        );
        assert_eq!(Csms(1).parse(&l(&["+CSMS: 1,1,1"])).unwrap(), [1, 1, 1]);
        let u = Cusd("*100#".into())
            .parse(&l(&["+CUSD: 0,\"Balance 5\",15"]))
            .unwrap()
            .unwrap();
        assert_eq!(u.text.as_deref(), Some("Balance 5"));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(v in proptest::collection::vec(".{0,40}", 0..4)) {
            let _ = Cmgl(4).parse(&v);
            let _ = Cmgr(1).parse(&v);
            let _ = RegQuery(RegKind::Eps).parse(&v);
            let _ = CopsQuery.parse(&v);
            let _ = ReadIccid(IccidCommand::Crsm).parse(&v);
            let _ = ReadIccid(IccidCommand::HuaweiIccid).parse(&v);
            let _ = Cpms("SM".into(), "SM".into(), "SM".into()).parse(&v);
            let _ = Csq.parse(&v);
            let _ = Cnum.parse(&v);
        }
    }
}
