//! Identities of virtual modems: IMEI (14 digits + Luhn check digit), IMSI of a Chinese
//! carrier (MCC 460 with the carrier's MNC), ICCID (8986 + issuer + Luhn), own number and
//! SMSC. Generated from a seed so `--seed` makes a bank reproducible. Invariants: every IMEI
//! and ICCID passes the Luhn check; modems of one bank get distinct IMEIs, IMSIs and ICCIDs
//! and cycle through the carriers' MNCs so a bank spans carriers.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A Chinese mobile carrier, as its SIM identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    ChinaMobile,
    ChinaUnicom,
    ChinaTelecom,
}

impl Carrier {
    /// `+COPS` long alphanumeric operator name.
    pub fn operator_name(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "CHINA MOBILE",
            Carrier::ChinaUnicom => "CHN-UNICOM",
            Carrier::ChinaTelecom => "CHN-CT",
        }
    }
    /// ICCID issuer code after 8986.
    fn iccid_issuer(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "00",
            Carrier::ChinaUnicom => "01",
            Carrier::ChinaTelecom => "03",
        }
    }
    fn number_prefix(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "139",
            Carrier::ChinaUnicom => "186",
            Carrier::ChinaTelecom => "189",
        }
    }
    fn smsc(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "+8613800100500",
            Carrier::ChinaUnicom => "+8613010112500",
            Carrier::ChinaTelecom => "+8613800100569",
        }
    }
}

/// MNCs cycled through by modem index (46000/46002/46007 China Mobile, 46001/46006 Unicom,
/// 46003/46011 Telecom).
const MNCS: [(&str, Carrier); 7] = [
    ("00", Carrier::ChinaMobile),
    ("01", Carrier::ChinaUnicom),
    ("03", Carrier::ChinaTelecom),
    ("02", Carrier::ChinaMobile),
    ("06", Carrier::ChinaUnicom),
    ("11", Carrier::ChinaTelecom),
    ("07", Carrier::ChinaMobile),
];

/// Who one virtual modem and its SIM are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub imei: String,
    pub imsi: String,
    pub iccid: String,
    pub carrier: Carrier,
    /// Own number as `+CNUM` reports it (international form, or national for PHS).
    pub number: String,
    pub smsc: String,
}

/// The Luhn check digit for a string of decimal digits (non-digits are ignored).
pub fn luhn_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// True when the last digit is the Luhn check digit of the others.
pub fn luhn_valid(digits: &str) -> bool {
    match digits.as_bytes().split_last() {
        Some((last, rest)) if last.is_ascii_digit() && rest.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(rest).is_ok_and(|r| luhn_digit(r) == last - b'0')
        }
        _ => false,
    }
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

impl Identity {
    /// The identity of modem `index` in a bank seeded with `seed`; `national` gives a PHS-style
    /// fixed-line own number (0755...) instead of +86 mobile.
    pub fn generate(seed: u64, index: usize, national: bool) -> Identity {
        let mut rng =
            StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (mnc, carrier) = MNCS[index % MNCS.len()];
        // The modem index is part of every serial so identities never collide within a bank.
        let idx = format!("{:04}", index % 10_000);
        let imei_body = format!(
            "8635{:02}{}{}",
            rng.random_range(10..100u8),
            idx,
            digits(&mut rng, 4)
        );
        let imei = format!("{imei_body}{}", luhn_digit(&imei_body));
        let imsi = format!("460{mnc}{}{}", idx, digits(&mut rng, 6));
        let iccid_body = format!(
            "8986{}{}{}{}",
            carrier.iccid_issuer(),
            digits(&mut rng, 3),
            idx,
            digits(&mut rng, 6)
        );
        let iccid = format!("{iccid_body}{}", luhn_digit(&iccid_body));
        let number = if national {
            format!("0755{}{}", idx, digits(&mut rng, 4))
        } else {
            format!(
                "+86{}{}{}",
                carrier.number_prefix(),
                idx,
                digits(&mut rng, 4)
            )
        };
        Identity {
            imei,
            imsi,
            iccid,
            carrier,
            number,
            smsc: carrier.smsc().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_vectors() {
        // The IMEI example of 3GPP TS 23.003 annex B: 35-209900-176148-1.
        assert_eq!(luhn_digit("35209900176148"), 1);
        assert!(luhn_valid("352099001761481"));
        assert!(!luhn_valid("352099001761482"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn identities_are_valid_distinct_and_reproducible() {
        let ids: Vec<_> = (0..20).map(|i| Identity::generate(7, i, false)).collect();
        for id in &ids {
            assert_eq!(id.imei.len(), 15);
            assert!(luhn_valid(&id.imei));
            assert_eq!(id.iccid.len(), 20);
            assert!(id.iccid.starts_with("8986"));
            assert!(luhn_valid(&id.iccid));
            assert_eq!(id.imsi.len(), 15);
            assert!(id.imsi.starts_with("460"));
        }
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a.imei, b.imei);
                assert_ne!(a.imsi, b.imsi);
                assert_ne!(a.iccid, b.iccid);
            }
        }
        assert_eq!(Identity::generate(7, 3, false), ids[3]);
        assert_ne!(Identity::generate(8, 3, false), ids[3]);
        assert_eq!(ids[0].carrier, Carrier::ChinaMobile);
        assert_eq!(ids[1].carrier, Carrier::ChinaUnicom);
        assert_eq!(ids[2].carrier, Carrier::ChinaTelecom);
        assert!(Identity::generate(1, 0, true).number.starts_with("0755"));
    }
}
