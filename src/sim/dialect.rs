//! Vendor dialects of the virtual modem bank, as data: one [`DialectProfile`] table per
//! dialect with its identity strings, the ICCID command it answers, the command it sends SMS
//! with, the unsolicited chatter it emits, and its quirks. The modem engine never tests a
//! dialect by name; it reads these fields. Invariant: every dialect answers the 27.007/27.005
//! core set; a quirk only removes or reshapes, so a driver that copes with the quirks of all
//! tables copes with every dialect.

use std::fmt;
use std::str::FromStr;

/// A modem family the sim can impersonate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Generic,
    Huawei,
    Zte,
    Quectel,
    Simcom,
    Wavecom,
    Phs,
}

/// How a dialect reports the SIM's ICCID (each family has its own command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IccidCommand {
    /// `AT+CCID` -> `+CCID: 8986...` (SIMCom, many generic modules).
    Ccid,
    /// `AT^ICCID?` -> `^ICCID: 8986...` (Huawei).
    HuaweiIccid,
    /// `AT+QCCID` -> `+QCCID: 8986...` (Quectel).
    Qccid,
    /// `AT+ZGETICCID` -> `+ZGETICCID: 8986...` (ZTE).
    ZteIccid,
    /// Only the generic SIM file read `AT+CRSM=176,12258,0,0,10` (EF_ICCID).
    CrsmOnly,
}

/// The command a dialect sends a PDU with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendCommand {
    /// `AT+CMGS=<len>` answered by `+CMGS: <mr>` (27.005).
    Cmgs,
    /// Text mode of PHS / CDMA-era modules (Huawei MC323/MC703 style): `AT^HSMSSS=0,0,6,0`,
    /// `AT+CMGF=1`, `AT^HCMGS="<number>"`, prompt, the text as UCS2 big-endian bytes ended by
    /// 00 1A, `OK`, and the outcome later as `^HCMGSS:<mr>` / `^HCMGSF:<cause>`. `+CMGS` is
    /// refused with `+CMS ERROR: 303`.
    Hcmgs,
}

/// Everything that makes one dialect differ from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectProfile {
    pub dialect: Dialect,
    /// `+CGMI` / `+GMI` answer.
    pub manufacturer: &'static str,
    /// `+CGMM` / `+GMM` answer.
    pub model: &'static str,
    /// `+CGMR` / `+GMR` answer.
    pub revision: &'static str,
    /// Vendor ICCID command; `+CRSM=176,12258,...` is always answered as well.
    pub iccid: IccidCommand,
    pub send: SendCommand,
    /// Unsolicited lines emitted now and then while idle (Huawei's ^RSSI / ^MODE flood);
    /// `{rssi}` is replaced by the current signal value. Empty = a quiet modem.
    pub chatter: &'static [&'static str],
    /// A bare `AT` gets `ERROR` (seen on some PHS modules).
    pub rejects_bare_at: bool,
    /// Ignores ATE1: never echoes what it receives.
    pub never_echoes: bool,
    /// Rejects `AT+CMEE=1;+CREG=2` style chains with `ERROR`.
    pub no_chaining: bool,
    /// Type of address of the own number (`+CNUM`) and of the numbers in inbound SMS:
    /// 0x91 international, 0x81 national/unknown (PHS numbers).
    pub number_toa: u8,
    /// Vendor commands (as `AT<name>=...`) the modem accepts, with the information line it
    /// answers before OK ("" = OK alone); e.g. ZTE's +ZCDRUN, which gammu sends to ZTE modems.
    pub vendor_commands: &'static [(&'static str, &'static str)],
    /// Drops its reply after `>` when the PDU carries an SMSC address (DOMAIN.md); the
    /// starting value of the engine's `smsc_drop` flag, which `sim ctl quirk` toggles.
    pub drops_reply_with_smsc: bool,
    /// What the module writes on its primary port after it (re)boots (`sim ctl reboot`).
    pub boot_urcs: &'static [&'static str],
    /// `+CNMI` after a reboot, as the vendor ships it.
    pub boot_cnmi: [u8; 5],
    /// `+CMGF` after a reboot. 1 (text) everywhere: the bank's modems carry a saved profile
    /// with text mode (SIMCom's and Quectel's `AT&W` / `AT+CSAS` keep +CMGF, and a module
    /// once set up by a text-mode tool comes back that way), the harder case for a driver
    /// that set PDU mode once and assumed it stays. The bank's first start is PDU mode.
    pub boot_cmgf: u8,
}

/// The power-up burst most modules share (27.007 +CPIN URC; "RDY" once the UART is up).
const GENERIC_BOOT: &[&str] = &["RDY", "+CPIN: READY"];

impl Dialect {
    /// All dialects in the order `--dialect mixed` cycles through them.
    pub const ALL: [Dialect; 7] = [
        Dialect::Generic,
        Dialect::Huawei,
        Dialect::Zte,
        Dialect::Quectel,
        Dialect::Simcom,
        Dialect::Wavecom,
        Dialect::Phs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Generic => "generic",
            Dialect::Huawei => "huawei",
            Dialect::Zte => "zte",
            Dialect::Quectel => "quectel",
            Dialect::Simcom => "simcom",
            Dialect::Wavecom => "wavecom",
            Dialect::Phs => "phs",
        }
    }

    /// The data table of this dialect.
    pub fn profile(self) -> DialectProfile {
        match self {
            Dialect::Generic => DialectProfile {
                dialect: self,
                manufacturer: "smsgate",
                model: "Virtual GSM Modem",
                revision: "SIM 1.0",
                iccid: IccidCommand::Ccid,
                send: SendCommand::Cmgs,
                chatter: &[],
                rejects_bare_at: false,
                never_echoes: false,
                no_chaining: false,
                number_toa: 0x91,
                vendor_commands: &[],
                drops_reply_with_smsc: false,
                boot_urcs: GENERIC_BOOT,
                boot_cnmi: [0, 0, 0, 0, 0],
                boot_cmgf: 1,
            },
            // Huawei E1xx/E3xx sticks: ^RSSI/^MODE/^DSFLOWRPT chatter, ^ICCID, and (on some
            // firmware) only one command per line.
            Dialect::Huawei => DialectProfile {
                dialect: self,
                manufacturer: "huawei",
                model: "E1750",
                revision: "11.126.16.04.00",
                iccid: IccidCommand::HuaweiIccid,
                send: SendCommand::Cmgs,
                chatter: &["^RSSI: {rssi}", "^MODE: 5,4", "^BOOT:12345678,0,0,0,75"],
                rejects_bare_at: false,
                never_echoes: false,
                no_chaining: true,
                number_toa: 0x91,
                vendor_commands: &[("^CURC", ""), ("^PORTSEL", "")],
                drops_reply_with_smsc: false,
                // ^SYSSTART: Huawei ME909/MU609 AT Command Interface Specification (start-up URC).
                boot_urcs: &["^SYSSTART", "+CPIN: READY"],
                boot_cnmi: [0, 0, 0, 0, 0],
                boot_cmgf: 1,
            },
            Dialect::Zte => DialectProfile {
                dialect: self,
                manufacturer: "ZTE CORPORATION",
                model: "MF626",
                revision: "BD_TMOP673A2V1.0.1B03",
                iccid: IccidCommand::ZteIccid,
                send: SendCommand::Cmgs,
                chatter: &["+ZUSIMR:2"],
                rejects_bare_at: false,
                never_echoes: false,
                no_chaining: false,
                number_toa: 0x91,
                vendor_commands: &[
                    ("+ZCDRUN", "Close autorun state result(0:FAIL 1:SUCCESS):1"),
                    ("+ZOPRT", ""),
                ],
                drops_reply_with_smsc: false,
                boot_urcs: &["+CPIN: READY", "+ZUSIMR:2"],
                boot_cnmi: [0, 0, 0, 0, 0],
                boot_cmgf: 1,
            },
            Dialect::Quectel => DialectProfile {
                dialect: self,
                manufacturer: "Quectel",
                model: "EC20F",
                revision: "EC20CEFAGR06A05M4G",
                iccid: IccidCommand::Qccid,
                send: SendCommand::Cmgs,
                chatter: &[],
                rejects_bare_at: false,
                never_echoes: false,
                no_chaining: false,
                number_toa: 0x91,
                vendor_commands: &[],
                drops_reply_with_smsc: false,
                // Quectel EC2x AT Commands Manual (power-on URCs; +CNMI default 2,1,0,0,0).
                boot_urcs: &[
                    "RDY",
                    "+CFUN: 1",
                    "+CPIN: READY",
                    "+QUSIM: 1",
                    "+QIND: SMS DONE",
                    "+QIND: PB DONE",
                ],
                boot_cnmi: [2, 1, 0, 0, 0],
                boot_cmgf: 1,
            },
            Dialect::Simcom => DialectProfile {
                dialect: self,
                manufacturer: "SIMCOM_Ltd",
                model: "SIMCOM_SIM800C",
                revision: "Revision:1418B05SIM800C24",
                iccid: IccidCommand::Ccid,
                send: SendCommand::Cmgs,
                chatter: &[],
                rejects_bare_at: false,
                never_echoes: false,
                no_chaining: false,
                number_toa: 0x91,
                vendor_commands: &[],
                drops_reply_with_smsc: false,
                // SIM800 Series AT Command Manual (URCs after power-on at a fixed baud rate).
                boot_urcs: &["RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"],
                boot_cnmi: [0, 0, 0, 0, 0],
                boot_cmgf: 1,
            },
            // Wavecom Fastrack: an old, quiet modem; here it carries the "never echoes" quirk
            // (gammu, which matches replies by their echo, cannot drive it; our driver must).
            Dialect::Wavecom => DialectProfile {
                dialect: self,
                manufacturer: "WAVECOM MODEM",
                model: "MULTIBAND  900E  1800",
                revision: "R7.46.0.201207040849.FXT002",
                iccid: IccidCommand::Ccid,
                send: SendCommand::Cmgs,
                chatter: &[],
                rejects_bare_at: false,
                never_echoes: true,
                no_chaining: false,
                number_toa: 0x91,
                vendor_commands: &[],
                drops_reply_with_smsc: false,
                boot_urcs: GENERIC_BOOT,
                boot_cnmi: [0, 0, 0, 0, 0],
                boot_cmgf: 1,
            },
            // PHS / CDMA-era modules: national numbers (type 0x81), text mode with ^HSMSSS +
            // ^HCMGS for sending, no bare AT, one command per line.
            Dialect::Phs => DialectProfile {
                dialect: self,
                manufacturer: "PHS",
                model: "PHS Module",
                revision: "V1.0",
                iccid: IccidCommand::CrsmOnly,
                send: SendCommand::Hcmgs,
                chatter: &[],
                rejects_bare_at: true,
                never_echoes: false,
                no_chaining: true,
                number_toa: 0x81,
                vendor_commands: &[],
                drops_reply_with_smsc: false,
                boot_urcs: GENERIC_BOOT,
                boot_cnmi: [0, 0, 0, 0, 0],
                boot_cmgf: 1,
            },
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What `--dialect` accepts: one dialect for every modem, or `mixed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectChoice {
    One(Dialect),
    /// Modem i gets `Dialect::ALL[i % 7]`.
    Mixed,
}

impl DialectChoice {
    pub fn for_modem(self, index: usize) -> Dialect {
        match self {
            DialectChoice::One(d) => d,
            DialectChoice::Mixed => Dialect::ALL[index % Dialect::ALL.len()],
        }
    }
}

/// An unknown dialect name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown dialect {0:?} (expected generic, huawei, zte, quectel, simcom, wavecom, phs or mixed)"
)]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownDialect(s.to_string()))
    }
}

impl FromStr for DialectChoice {
    type Err = UnknownDialect;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("mixed") {
            Ok(DialectChoice::Mixed)
        } else {
            s.parse().map(DialectChoice::One)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_mixed_cycles() {
        for d in Dialect::ALL {
            assert_eq!(d.name().parse::<Dialect>().unwrap(), d);
            assert_eq!(d.profile().dialect, d);
        }
        assert!("nokia".parse::<Dialect>().is_err());
        let mixed: DialectChoice = "mixed".parse().unwrap();
        assert_eq!(mixed.for_modem(0), Dialect::Generic);
        assert_eq!(mixed.for_modem(1), Dialect::Huawei);
        assert_eq!(mixed.for_modem(7), Dialect::Generic);
    }

    #[test]
    fn phs_quirks_are_data() {
        let p = Dialect::Phs.profile();
        assert_eq!(p.send, SendCommand::Hcmgs);
        assert_eq!(p.number_toa, 0x81);
        assert!(p.rejects_bare_at);
    }
}
