//! TP-Validity-Period (TS 23.040 9.2.3.12) in its three formats. Invariants: the relative octet is
//! kept as found; a duration is turned into the smallest relative value that is at least as long
//! (capped at 63 weeks), so a message never expires earlier than the user asked.

use std::time::Duration;

use super::scts::Scts;

/// A validity period as carried by SMS-SUBMIT. "No validity period" is `Option::None` around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidityPeriod {
    /// TP-VPF 10: one octet (see [`ValidityPeriod::relative_duration`]).
    Relative(u8),
    /// TP-VPF 11: an absolute time stamp.
    Absolute(Scts),
    /// TP-VPF 01: the enhanced format, kept as its seven raw octets.
    Enhanced([u8; 7]),
}

impl ValidityPeriod {
    /// The smallest relative period at least as long as `d` (5 minutes up to 63 weeks).
    pub fn from_duration(d: Duration) -> ValidityPeriod {
        let m = d.as_secs().div_ceil(60);
        let v = if m <= 720 {
            m.div_ceil(5).max(1) - 1
        } else if m <= 1440 {
            143 + (m - 720).div_ceil(30)
        } else if m <= 30 * 1440 {
            166 + m.div_ceil(1440)
        } else {
            (192 + m.div_ceil(10080)).min(255)
        };
        ValidityPeriod::Relative(v as u8)
    }

    /// The length a relative octet stands for: 0-143 (v+1)*5 min; 144-167 12 h + (v-143)*30 min;
    /// 168-196 (v-166) days; 197-255 (v-192) weeks.
    pub fn relative_duration(v: u8) -> Duration {
        let v = u64::from(v);
        let minutes = match v {
            0..=143 => (v + 1) * 5,
            144..=167 => 720 + (v - 143) * 30,
            168..=196 => (v - 166) * 1440,
            _ => (v - 192) * 10080,
        };
        Duration::from_secs(minutes * 60)
    }

    /// The TP-VPF bits (4-3 of the first octet) for this format.
    pub(crate) fn vpf_bits(this: Option<&ValidityPeriod>) -> u8 {
        match this {
            None => 0,
            Some(ValidityPeriod::Enhanced(_)) => 0x08,
            Some(ValidityPeriod::Relative(_)) => 0x10,
            Some(ValidityPeriod::Absolute(_)) => 0x18,
        }
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        match self {
            ValidityPeriod::Relative(v) => out.push(*v),
            ValidityPeriod::Absolute(s) => s.emit(out),
            ValidityPeriod::Enhanced(b) => out.extend_from_slice(b),
        }
    }

    /// A short description: "relative 0xAA = 4 days", "absolute 2026-...", "enhanced 01...".
    pub fn describe(&self) -> String {
        match self {
            ValidityPeriod::Relative(v) => {
                let m = Self::relative_duration(*v).as_secs() / 60;
                let human = if m % 10080 == 0 && *v > 196 {
                    format!("{} weeks", m / 10080)
                } else if m % 1440 == 0 {
                    format!("{} days", m / 1440)
                } else if m % 60 == 0 {
                    format!("{} hours", m / 60)
                } else {
                    format!("{m} minutes")
                };
                format!("relative 0x{v:02X} = {human}")
            }
            ValidityPeriod::Absolute(s) => format!(
                "absolute {}",
                s.to_rfc3339().unwrap_or_else(|| "(invalid time)".into())
            ),
            ValidityPeriod::Enhanced(b) => format!("enhanced {}", hex::encode_upper(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_map_to_the_spec_octets() {
        let r = |s: u64| ValidityPeriod::from_duration(Duration::from_secs(s));
        assert_eq!(r(30 * 60), ValidityPeriod::Relative(5));
        assert_eq!(r(86400), ValidityPeriod::Relative(0xA7));
        assert_eq!(r(4 * 86400), ValidityPeriod::Relative(0xAA));
        assert_eq!(r(28 * 86400), ValidityPeriod::Relative(0xC2));
        assert_eq!(r(1000 * 86400), ValidityPeriod::Relative(0xFF));
        assert_eq!(r(0), ValidityPeriod::Relative(0));
        for v in 0..=255u8 {
            let d = ValidityPeriod::relative_duration(v);
            assert_eq!(
                ValidityPeriod::from_duration(d),
                ValidityPeriod::Relative(v)
            );
        }
        assert_eq!(
            ValidityPeriod::Relative(0xAA).describe(),
            "relative 0xAA = 4 days"
        );
        assert_eq!(
            ValidityPeriod::Relative(0xC2).describe(),
            "relative 0xC2 = 28 days"
        );
    }
}
