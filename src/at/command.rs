//! Typed AT commands (3GPP TS 27.005 / 27.007 and vendor variants): one struct per command,
//! each with the line it writes, the prefix of its information lines, its timeout and a parser
//! for its reply (the atat `AtatCmd` pattern). Also the URC values the digester produces.
//! What must always hold: parsers never panic on any reply; a reply they cannot understand is
//! `DeviceError::BadReply` naming the command and the line, never a guess.
//!
//! Why one file of ~1,000 lines: it is a catalogue, one short struct per command in sections
//! (field helpers, simple commands, identity, SIM and network, messages) read one section at a
//! time, and every parser leans on the field helpers at the top. When it grows again, split it
//! into `at/command/` along those section lines (helpers in `mod.rs`), a pure move.

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

// ---------------------------------------------------------------- simple commands

macro_rules! simple_command {
    ($(#[$m:meta])* $name:ident, |$s:ident| $line:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name;
        simple_command!(@impl $name, |$s| $line);
    };
    ($(#[$m:meta])* $name:ident ( $($field:ident : $ty:ty),* ), |$s:ident| $line:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $(pub $field: $ty),* }
        simple_command!(@impl $name, |$s| $line);
    };
    (@impl $name:ident, |$s:ident| $line:expr) => {
        impl AtCommand for $name {
            type Response = ();
            fn line(&self) -> String {
                let $s = self;
                $line
            }
            fn parse(&self, _lines: &[String]) -> Result<(), DeviceError> {
                Ok(())
            }
        }
    };
}

simple_command!(/// `AT`: is anyone there?
    At, |_s| "AT".to_string());
simple_command!(/// `ATE0`: echo off.
    EchoOff, |_s| "ATE0".to_string());
simple_command!(/// `AT+CMEE=<n>`: 1 numeric, 2 verbose errors.
    Cmee(mode: u8), |s| format!("AT+CMEE={}", s.mode));
simple_command!(/// `AT+CMGF=<n>`: 0 PDU mode.
    Cmgf(mode: u8), |s| format!("AT+CMGF={}", s.mode));
simple_command!(/// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>`: new-message routing.
    Cnmi(mode: u8, mt: u8, bm: u8, ds: u8, bfr: u8),
    |s| format!("AT+CNMI={},{},{},{},{}", s.mode, s.mt, s.bm, s.ds, s.bfr));
simple_command!(/// `AT+CNMA`: acknowledge a +CMT/+CDS (with +CSMS=1).
    Cnma, |_s| "AT+CNMA".to_string());
/// `AT+CPIN="<pin>"`: unlock the SIM.
#[derive(Clone, PartialEq, Eq)]
pub struct CpinEnter {
    pub pin: String,
}

impl std::fmt::Debug for CpinEnter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CpinEnter { pin: \"****\" }")
    }
}

impl AtCommand for CpinEnter {
    type Response = ();
    fn line(&self) -> String {
        format!("AT+CPIN=\"{}\"", self.pin)
    }
    fn display(&self) -> String {
        "AT+CPIN=\"****\"".into()
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn parse(&self, _lines: &[String]) -> Result<(), DeviceError> {
        Ok(())
    }
}
simple_command!(/// `AT+CMMS=<n>`: 2 keeps the relay link open while more parts follow.
    Cmms(mode: u8), |s| format!("AT+CMMS={}", s.mode));
simple_command!(/// `AT+CMGD=<index>[,<flag>]`: delete a stored message.
    Cmgd(index: u32, flag: Option<u8>),
    |s| match s.flag { Some(f) => format!("AT+CMGD={},{}", s.index, f), None => format!("AT+CMGD={}", s.index) });
simple_command!(/// `AT+CREG=<n>` (or +CGREG/+CEREG): registration URC mode.
    RegSet(kind: RegKind, mode: u8), |s| format!("AT{}={}", s.kind.prefix(), s.mode));

/// Any command line, for init strings from a dialect and for `smsgate diag`; the response is
/// every information line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub line: String,
    pub timeout: Duration,
}

impl Raw {
    pub fn new(line: impl Into<String>) -> Self {
        Self {
            line: line.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl AtCommand for Raw {
    type Response = Vec<String>;
    fn line(&self) -> String {
        self.line.clone()
    }
    fn prefix(&self) -> Option<&'static str> {
        None
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn parse(&self, lines: &[String]) -> Result<Vec<String>, DeviceError> {
        Ok(lines.to_vec())
    }
}

// ---------------------------------------------------------------- identity

macro_rules! identity_command {
    ($(#[$m:meta])* $name:ident, $line:literal, $prefix:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;
        impl AtCommand for $name {
            type Response = String;
            fn line(&self) -> String {
                $line.to_string()
            }
            fn prefix(&self) -> Option<&'static str> {
                Some($prefix)
            }
            fn parse(&self, lines: &[String]) -> Result<String, DeviceError> {
                single(lines, $prefix, $line)
            }
        }
    };
}

identity_command!(/// Manufacturer.
    Cgmi, "AT+CGMI", "+CGMI");
identity_command!(/// Model.
    Cgmm, "AT+CGMM", "+CGMM");
identity_command!(/// Firmware revision.
    Cgmr, "AT+CGMR", "+CGMR");
identity_command!(/// IMEI.
    Cgsn, "AT+CGSN", "+CGSN");
identity_command!(/// IMSI.
    Cimi, "AT+CIMI", "+CIMI");

/// How a vendor reads the SIM's ICCID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IccidCommand {
    /// `AT+CCID` (SIMCom, Wavecom, ZTE...)
    Ccid,
    /// `AT^ICCID?` (Huawei)
    HuaweiIccid,
    /// `AT+QCCID` (Quectel)
    Qccid,
    /// `AT+CRSM=176,12258,0,0,10`: read EF_ICCID (2FE2) through restricted SIM access.
    Crsm,
}

/// Reads the ICCID with the dialect's command; the answer is normalised to digits in reading
/// order (the raw EF is nibble-swapped: every ICCID begins with 89, so "98..." gets swapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadIccid(pub IccidCommand);

impl AtCommand for ReadIccid {
    type Response = String;
    fn line(&self) -> String {
        match self.0 {
            IccidCommand::Ccid => "AT+CCID",
            IccidCommand::HuaweiIccid => "AT^ICCID?",
            IccidCommand::Qccid => "AT+QCCID",
            IccidCommand::Crsm => "AT+CRSM=176,12258,0,0,10",
        }
        .to_string()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some(match self.0 {
            IccidCommand::Ccid => "+CCID",
            IccidCommand::HuaweiIccid => "^ICCID",
            IccidCommand::Qccid => "+QCCID",
            IccidCommand::Crsm => "+CRSM",
        })
    }
    fn parse(&self, lines: &[String]) -> Result<String, DeviceError> {
        let prefix = self.prefix().unwrap_or("");
        let raw = if self.0 == IccidCommand::Crsm {
            let l = find(lines, "+CRSM").ok_or_else(|| bad("+CRSM", lines))?;
            let f = split_fields(l);
            if num::<u16>(f.first()) != Some(144) {
                return Err(bad("+CRSM", lines));
            }
            unquote(f.get(2).copied().unwrap_or("")).to_string()
        } else {
            single(lines, prefix, prefix)?
        };
        normalise_iccid(&raw).ok_or_else(|| bad(prefix, lines))
    }
}

/// Digits of an ICCID in reading order; `None` if it does not look like one.
pub fn normalise_iccid(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() < 10 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits: String = if raw.starts_with("98") {
        raw.as_bytes()
            .chunks(2)
            .flat_map(|p| p.iter().rev())
            .map(|&b| b as char)
            .collect()
    } else {
        raw.to_string()
    };
    Some(digits.trim_end_matches(['F', 'f']).to_string())
}

/// `AT+CNUM`: the SIM's own number, when the SIM has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cnum;

impl AtCommand for Cnum {
    type Response = Option<String>;
    fn line(&self) -> String {
        "AT+CNUM".into()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CNUM")
    }
    fn parse(&self, lines: &[String]) -> Result<Option<String>, DeviceError> {
        Ok(find(lines, "+CNUM").and_then(|l| {
            let f = split_fields(l);
            f.get(1)
                .map(|n| unquote(n).to_string())
                .filter(|n| !n.is_empty())
        }))
    }
}

// ---------------------------------------------------------------- SIM and network

/// State reported by `AT+CPIN?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinStatus {
    Ready,
    SimPin,
    SimPuk,
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpinQuery;

impl AtCommand for CpinQuery {
    type Response = PinStatus;
    fn line(&self) -> String {
        "AT+CPIN?".into()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CPIN")
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn parse(&self, lines: &[String]) -> Result<PinStatus, DeviceError> {
        let v = find(lines, "+CPIN").ok_or_else(|| bad("+CPIN", lines))?;
        Ok(match unquote(v).to_ascii_uppercase().as_str() {
            "READY" => PinStatus::Ready,
            "SIM PIN" => PinStatus::SimPin,
            "SIM PUK" => PinStatus::SimPuk,
            other => PinStatus::Other(other.to_string()),
        })
    }
}

/// `+CSQ: <rssi>,<ber>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SignalQuality {
    pub rssi: u8,
    pub ber: u8,
}

impl SignalQuality {
    /// Signal in dBm (TS 27.007 §8.5); `None` for 99 (unknown) and other out-of-range values.
    pub fn dbm(self) -> Option<i16> {
        match self.rssi {
            0..=31 => Some(-113 + 2 * i16::from(self.rssi)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csq;

impl AtCommand for Csq {
    type Response = SignalQuality;
    fn line(&self) -> String {
        "AT+CSQ".into()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CSQ")
    }
    fn parse(&self, lines: &[String]) -> Result<SignalQuality, DeviceError> {
        let f = split_fields(find(lines, "+CSQ").ok_or_else(|| bad("+CSQ", lines))?);
        match (num(f.first()), num(f.get(1))) {
            (Some(rssi), Some(ber)) => Ok(SignalQuality { rssi, ber }),
            _ => Err(bad("+CSQ", lines)),
        }
    }
}

/// Which registration: circuit-switched (+CREG), GPRS (+CGREG), EPS (+CEREG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RegKind {
    Cs,
    Gprs,
    Eps,
}

impl RegKind {
    pub fn prefix(self) -> &'static str {
        match self {
            RegKind::Cs => "+CREG",
            RegKind::Gprs => "+CGREG",
            RegKind::Eps => "+CEREG",
        }
    }
}

/// `<stat>` of +CREG and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RegStatus {
    NotSearching,
    Home,
    Searching,
    Denied,
    Unknown,
    Roaming,
    Reserved(u8),
}

impl RegStatus {
    pub fn from_code(c: u8) -> Self {
        match c {
            0 => Self::NotSearching,
            1 => Self::Home,
            2 => Self::Searching,
            3 => Self::Denied,
            4 => Self::Unknown,
            5 => Self::Roaming,
            c => Self::Reserved(c),
        }
    }
    pub fn is_registered(self) -> bool {
        matches!(self, Self::Home | Self::Roaming)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registration {
    pub kind: RegKind,
    pub stat: RegStatus,
    pub lac: Option<String>,
    pub ci: Option<String>,
}

/// The unsolicited form: `<stat>[,<lac>,<ci>[,<AcT>]]`.
pub fn parse_registration_urc(kind: RegKind, f: &[&str]) -> Option<Registration> {
    let stat = RegStatus::from_code(num(f.first())?);
    Some(Registration {
        kind,
        stat,
        lac: f.get(1).map(|s| unquote(s).to_string()),
        ci: f.get(2).map(|s| unquote(s).to_string()),
    })
}

/// `AT+CREG?` (or +CGREG?/+CEREG?): `<n>,<stat>[,<lac>,<ci>...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegQuery(pub RegKind);

impl AtCommand for RegQuery {
    type Response = Registration;
    fn line(&self) -> String {
        format!("AT{}?", self.0.prefix())
    }
    fn prefix(&self) -> Option<&'static str> {
        Some(self.0.prefix())
    }
    fn parse(&self, lines: &[String]) -> Result<Registration, DeviceError> {
        let p = self.0.prefix();
        let f = split_fields(find(lines, p).ok_or_else(|| bad(p, lines))?);
        // Some modems omit <n>; a lone field is the status.
        let rest = if f.len() == 1 {
            &f[..]
        } else {
            f.get(1..).unwrap_or_default()
        };
        parse_registration_urc(self.0, rest).ok_or_else(|| bad(p, lines))
    }
}

/// `+COPS?`: the current operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Operator {
    pub mode: u8,
    pub name: Option<String>,
    pub act: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopsQuery;

impl AtCommand for CopsQuery {
    type Response = Operator;
    fn line(&self) -> String {
        "AT+COPS?".into()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+COPS")
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(15)
    }
    fn parse(&self, lines: &[String]) -> Result<Operator, DeviceError> {
        let f = split_fields(find(lines, "+COPS").ok_or_else(|| bad("+COPS", lines))?);
        let mode = num(f.first()).ok_or_else(|| bad("+COPS", lines))?;
        Ok(Operator {
            mode,
            name: f
                .get(2)
                .map(|s| unquote(s).to_string())
                .filter(|s| !s.is_empty()),
            act: num(f.get(3)),
        })
    }
}

/// `AT+CSCA?`: the service centre number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CscaQuery;

impl AtCommand for CscaQuery {
    type Response = Option<String>;
    fn line(&self) -> String {
        "AT+CSCA?".into()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CSCA")
    }
    fn parse(&self, lines: &[String]) -> Result<Option<String>, DeviceError> {
        let f = split_fields(find(lines, "+CSCA").ok_or_else(|| bad("+CSCA", lines))?);
        Ok(f.first()
            .map(|s| unquote(s).to_string())
            .filter(|s| !s.is_empty()))
    }
}

/// `AT+CSMS=<service>`: answers `<mt>,<mo>,<bm>` support flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csms(pub u8);

impl AtCommand for Csms {
    type Response = [u8; 3];
    fn line(&self) -> String {
        format!("AT+CSMS={}", self.0)
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CSMS")
    }
    fn parse(&self, lines: &[String]) -> Result<[u8; 3], DeviceError> {
        let f = split_fields(find(lines, "+CSMS").ok_or_else(|| bad("+CSMS", lines))?);
        match (num(f.first()), num(f.get(1)), num(f.get(2))) {
            (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
            _ => Err(bad("+CSMS", lines)),
        }
    }
}

/// `AT+CPMS="<mem1>","<mem2>","<mem3>"`: answers (used, total) per memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpms(pub String, pub String, pub String);

impl AtCommand for Cpms {
    type Response = Vec<(u32, u32)>;
    fn line(&self) -> String {
        format!("AT+CPMS=\"{}\",\"{}\",\"{}\"", self.0, self.1, self.2)
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CPMS")
    }
    fn parse(&self, lines: &[String]) -> Result<Vec<(u32, u32)>, DeviceError> {
        let f = split_fields(find(lines, "+CPMS").ok_or_else(|| bad("+CPMS", lines))?);
        let nums: Vec<u32> = f.iter().filter_map(|s| unquote(s).parse().ok()).collect();
        Ok(nums.chunks_exact(2).map(|p| (p[0], p[1])).collect())
    }
}

// ---------------------------------------------------------------- messages

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
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
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
    fn identity_replies_with_and_without_prefix() {
        assert_eq!(Cgmi.parse(&l(&["huawei"])).unwrap(), "huawei");
        assert_eq!(Cgmm.parse(&l(&["+CGMM: EC25"])).unwrap(), "EC25");
        assert!(Cimi.parse(&[]).is_err());
    }

    #[test]
    fn iccid_forms() {
        // Quectel answers in reading order, +CRSM gives the raw nibble-swapped EF_ICCID.
        assert_eq!(
            ReadIccid(IccidCommand::Qccid)
                .parse(&l(&["+QCCID: 89860117838009934120"]))
                .unwrap(),
            "89860117838009934120"
        );
        assert_eq!(
            ReadIccid(IccidCommand::Crsm)
                .parse(&l(&["+CRSM: 144,0,\"98681071388090394321\""]))
                .unwrap(),
            "89860117830809933412"
        );
        assert_eq!(
            ReadIccid(IccidCommand::HuaweiIccid)
                .parse(&l(&["^ICCID: 98681071388090394321"]))
                .unwrap(),
            "89860117830809933412"
        );
        assert!(ReadIccid(IccidCommand::Crsm)
            .parse(&l(&["+CRSM: 106,130,\"\""]))
            .is_err());
    }

    #[test]
    fn csq_and_dbm() {
        let q = Csq.parse(&l(&["+CSQ: 17,99"])).unwrap();
        assert_eq!(q, SignalQuality { rssi: 17, ber: 99 });
        assert_eq!(q.dbm(), Some(-79));
        assert_eq!(SignalQuality { rssi: 99, ber: 99 }.dbm(), None);
        assert_eq!(SignalQuality { rssi: 31, ber: 0 }.dbm(), Some(-51));
    }

    #[test]
    fn registration_query_and_urc() {
        let r = RegQuery(RegKind::Cs)
            .parse(&l(&["+CREG: 2,5,\"2A1B\",\"00C3\""]))
            .unwrap();
        assert_eq!(r.stat, RegStatus::Roaming);
        assert_eq!(r.lac.as_deref(), Some("2A1B"));
        let r = RegQuery(RegKind::Cs).parse(&l(&["+CREG: 0,1"])).unwrap();
        assert_eq!(r.stat, RegStatus::Home);
        assert_eq!(RegStatus::from_code(9), RegStatus::Reserved(9));
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
