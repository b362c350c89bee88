//! SIM and network commands (part of `at::command`): PIN state, signal quality, registration
//! (query and URC form), operator, service centre, message service (+CSMS) and storage
//! (+CPMS). What must hold: unknown status codes are kept as values (`Reserved`), not
//! errors, and no reply makes a parser panic.

use std::time::Duration;

use super::super::error::DeviceError;
use super::{bad, find, num, split_fields, unquote, AtCommand};

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

#[cfg(test)]
mod tests {
    use super::super::tests::l;
    use super::*;

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
}
