//! Vendor dialects as data (the ModemManager plugins/ idea, without code per vendor): each
//! vendor file holds one [`Dialect`] constant listing its init strings, ICCID command, URCs to
//! ignore, send and read commands, reset command and known faults; every field is read by the
//! driver (src/modem/actor.rs, session.rs). [`detect`] picks one from the
//! +CGMI/+CGMM answers. What must always hold: the driver never branches on a vendor name,
//! only on these fields; an unknown modem gets [`generic::GENERIC`] (plain 27.005).

use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub mod generic;
pub mod huawei;
pub mod phs;
pub mod quectel;
pub mod simcom;
pub mod wavecom;
pub mod zte;

/// Known misbehaviours of a family of modems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Answers a bare `AT` with ERROR (or not at all): the liveness probe is `ATE0` instead
    /// ([`Dialect::probe`]).
    pub rejects_bare_at: bool,
    /// Never echoes, even before ATE0: a reboot cannot show itself by echo coming back, so
    /// the health poll also reads `+CNMI?` and takes routing that is no longer what init set
    /// as the reboot sign. (Modules that cannot take chained commands need no field: the
    /// driver never chains, one command per line always.)
    pub never_echoes: bool,
    /// Needs `+CNMA` after each `+CMT`/`+CDS` even in the default service mode.
    pub needs_cnma: bool,
    /// Drops its reply after `>` when the PDU carries an SMSC address: send with `00` instead.
    pub drops_reply_with_smsc: bool,
    /// Does not know +CMMS.
    pub no_cmms: bool,
    /// Destination numbers must use the national type of address (0x81, not 0x91): PHS.
    pub national_address: bool,
}

/// A vendor's AT dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub name: &'static str,
    /// Lower-case substrings of +CGMI that select this dialect.
    pub manufacturers: &'static [&'static str],
    /// If not empty, one of these lower-case substrings must also appear in +CGMM.
    pub models: &'static [&'static str],
    /// Vendor init strings sent one by one after the common sequence.
    pub init: &'static [&'static str],
    /// `AT+CMGF`: 0 PDU mode (27.005), 1 text mode (the ^HCMGS modules).
    pub message_format: u8,
    /// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>`.
    pub cnmi: [u8; 5],
    /// Message storage for +CPMS.
    pub storage: &'static str,
    pub iccid: IccidCommand,
    /// Vendor URCs: recognised as URCs (so they never pollute a reply) and then ignored.
    pub ignore_urcs: &'static [&'static str],
    pub send: SendCommand,
    /// How stored messages are read: PDU mode (+CMGL/+CMGR) or the CDMA text mode (^HCMGR).
    pub read: ReadCommand,
    /// Command that restarts the module when it stops answering.
    pub reset: &'static str,
    pub faults: Faults,
}

impl Dialect {
    /// The liveness probe: a bare `AT`, or `ATE0` for modules that reject a bare `AT`.
    pub fn probe(&self) -> &'static str {
        if self.faults.rejects_bare_at {
            "ATE0"
        } else {
            "AT"
        }
    }

    /// The type-of-address the codec should use for destination numbers.
    pub fn destination_toa(&self) -> u8 {
        if self.faults.national_address {
            0x81
        } else {
            0x91
        }
    }
}

/// Every dialect, most specific first (PHS/CDMA Huawei modules before Huawei GSM).
pub const ALL: &[&Dialect] = &[
    &phs::PHS,
    &huawei::HUAWEI,
    &zte::ZTE,
    &quectel::QUECTEL,
    &simcom::SIMCOM,
    &wavecom::WAVECOM,
    &generic::GENERIC,
];

/// Picks the dialect for a modem from its +CGMI (manufacturer) and +CGMM (model) answers.
pub fn detect(manufacturer: &str, model: &str) -> &'static Dialect {
    let m = manufacturer.to_ascii_lowercase();
    let md = model.to_ascii_lowercase();
    ALL.iter()
        .copied()
        .find(|d| {
            d.manufacturers
                .iter()
                .any(|x| m.contains(x) || md.contains(x))
                && (d.models.is_empty() || d.models.iter().any(|x| md.contains(x)))
        })
        .unwrap_or(&generic::GENERIC)
}

/// A dialect by name (configuration files name them: "huawei", "phs", ...).
pub fn by_name(name: &str) -> Option<&'static Dialect> {
    ALL.iter()
        .copied()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_from_real_cgmi_cgmm_answers() {
        // Answers as printed by the modules (vendor AT manuals / ModemManager logs).
        assert_eq!(detect("huawei", "E303").name, "huawei");
        assert_eq!(detect("HUAWEI", "EC1261").name, "phs");
        assert_eq!(detect("ZTE CORPORATION", "MF626").name, "zte");
        assert_eq!(detect("Quectel", "EC25").name, "quectel");
        assert_eq!(detect("SIMCOM_Ltd", "SIMCOM_SIM800L").name, "simcom");
        assert_eq!(
            detect("WAVECOM MODEM", "MULTIBAND  900E  1800").name,
            "wavecom"
        );
        assert_eq!(detect("Acme", "X1").name, "generic");
    }

    #[test]
    fn quirks_are_where_they_belong() {
        assert_eq!(phs::PHS.send, SendCommand::Hcmgs);
        assert_eq!(phs::PHS.destination_toa(), 0x81);
        assert_eq!(generic::GENERIC.destination_toa(), 0x91);
        assert_eq!(by_name("phs").map(|d| d.faults.rejects_bare_at), Some(true));
        assert_eq!(huawei::HUAWEI.iccid, IccidCommand::HuaweiIccid);
        assert_eq!(quectel::QUECTEL.iccid, IccidCommand::Qccid);
        assert!(huawei::HUAWEI.ignore_urcs.contains(&"^RSSI"));
        for d in ALL {
            assert!(d.probe().starts_with("AT"), "{}", d.name);
            assert_eq!(d.probe() == "AT", !d.faults.rejects_bare_at, "{}", d.name);
            assert_eq!(by_name(d.name), Some(*d));
        }
    }
}
