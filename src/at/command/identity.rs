//! Identity commands (part of `at::command`): manufacturer, model, firmware, IMEI, IMSI, the
//! vendor ways of reading the ICCID and the SIM's own number (+CNUM). What must hold: an ICCID
//! is returned in reading order whatever the vendor form (nibble-swapped EF_ICCID included),
//! and a reply that is not one is `BadReply`, never a guess.

use super::super::error::DeviceError;
use super::{bad, find, num, single, split_fields, unquote, AtCommand};

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

#[cfg(test)]
mod tests {
    use super::super::tests::l;
    use super::*;

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
}
