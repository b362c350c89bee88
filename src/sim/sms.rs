//! The modem's view of SMS PDUs: checks the frame of a SUBMIT a client hands to AT+CMGS the
//! way a modem does (hex, SMSC part, declared length, field lengths, user-data length), and
//! builds the DELIVER and STATUS-REPORT PDUs the network would hand the modem. This is
//! deliberately the modem's own small reading of 3GPP TS 23.040 and not the crate's codec:
//! the codec is checked against it (and against gammu), not the other way round.
//! The crate's codec is used here in one place only, [`decode_for_log`], to add the decoded
//! recipient and text to the events log (the engine also reads stored PDUs with it to show them
//! in text mode, src/sim/modem.rs); a PDU the codec cannot read is still accepted when its
//! frame is sound (a real modem does not read the user data either).
//! Invariants: no input makes [`check_submit`] panic; built PDUs carry an SMSC part, and the
//! length a caller reports for them (`tpdu_len`) excludes it, as +CMT/+CMGR/+CDS require.

use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// Why a SUBMIT was refused (+CMS ERROR: 304 on the wire; the reason goes to the event log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduFault {
    #[error("PDU is not hex (byte {0})")]
    NotHex(usize),
    #[error("PDU has an odd number of hex digits")]
    OddLength,
    #[error("PDU ends inside {0}")]
    Truncated(&'static str),
    #[error("AT+CMGS={declared} but the TPDU has {actual} octets")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("TP-MTI {0} is not SMS-SUBMIT")]
    NotSubmit(u8),
    #[error("bad {0}")]
    Field(&'static str),
    #[error("user data is {actual} octets, TP-UDL {udl} needs {expected}")]
    UserDataLength {
        udl: u8,
        expected: usize,
        actual: usize,
    },
}

/// What the modem needs to know about an accepted SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitFrame {
    /// The whole PDU as sent (SMSC part + TPDU).
    pub bytes: Vec<u8>,
    /// TP-SRR: the sender wants a status report.
    pub status_report: bool,
    /// TP-DA as text ("+8613912345678", "075512345678"; alphanumeric as "@alnum").
    pub recipient: String,
    /// TP-DA type of address, needed to address the status report back.
    pub recipient_toa: u8,
}

fn unhex(s: &str) -> Result<Vec<u8>, PduFault> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return Err(PduFault::OddLength);
    }
    let nib = |i: usize| -> Result<u8, PduFault> {
        let c = b.get(i).copied().ok_or(PduFault::OddLength)?;
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or(PduFault::NotHex(i))
    };
    (0..b.len() / 2)
        .map(|i| Ok((nib(2 * i)? << 4) | nib(2 * i + 1)?))
        .collect()
}

fn take<'a>(
    b: &'a [u8],
    at: &mut usize,
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], PduFault> {
    let end = at.checked_add(n).ok_or(PduFault::Truncated(what))?;
    let s = b.get(*at..end).ok_or(PduFault::Truncated(what))?;
    *at = end;
    Ok(s)
}

/// Semi-octet digits of an address, F padding dropped.
fn bcd_digits(octets: &[u8], count: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789*#abcF";
    octets
        .iter()
        .flat_map(|o| [o & 0x0F, o >> 4])
        .take(count)
        .map(|n| DIGITS.get(usize::from(n)).map_or('?', |&c| c as char))
        .collect()
}

/// Checks a SUBMIT as AT+CMGS=`declared` receives it (hex text, SMSC part first).
pub fn check_submit(hex_text: &str, declared: usize) -> Result<SubmitFrame, PduFault> {
    let bytes = unhex(hex_text.trim())?;
    let mut at = 0;
    let smsc_len = usize::from(take(&bytes, &mut at, 1, "SMSC length")?[0]);
    if smsc_len > 12 {
        return Err(PduFault::Field("SMSC length"));
    }
    take(&bytes, &mut at, smsc_len, "SMSC address")?;
    let tpdu_len = bytes.len() - at;
    if tpdu_len != declared {
        return Err(PduFault::LengthMismatch {
            declared,
            actual: tpdu_len,
        });
    }
    let fo = take(&bytes, &mut at, 1, "first octet")?[0];
    if fo & 0x03 != 0x01 {
        return Err(PduFault::NotSubmit(fo & 0x03));
    }
    take(&bytes, &mut at, 1, "TP-MR")?;
    let da_digits = usize::from(take(&bytes, &mut at, 1, "TP-DA length")?[0]);
    if da_digits == 0 || da_digits > 20 {
        return Err(PduFault::Field("TP-DA length"));
    }
    let toa = take(&bytes, &mut at, 1, "TP-DA type")?[0];
    if toa & 0x80 == 0 {
        return Err(PduFault::Field("TP-DA type of address"));
    }
    let da = take(&bytes, &mut at, da_digits.div_ceil(2), "TP-DA")?;
    let recipient = if toa & 0x70 == 0x50 {
        "@alnum".to_string()
    } else {
        let d = bcd_digits(da, da_digits);
        if toa & 0x70 == 0x10 {
            format!("+{d}")
        } else {
            d
        }
    };
    take(&bytes, &mut at, 1, "TP-PID")?;
    let dcs = take(&bytes, &mut at, 1, "TP-DCS")?[0];
    let vp_len = match (fo >> 3) & 0x03 {
        0 => 0,
        2 => 1,
        _ => 7,
    };
    take(&bytes, &mut at, vp_len, "TP-VP")?;
    let udl = take(&bytes, &mut at, 1, "TP-UDL")?[0];
    let septets = dcs_is_gsm7(dcs);
    let (max, expected) = if septets {
        (160, (usize::from(udl) * 7).div_ceil(8))
    } else {
        (140, usize::from(udl))
    };
    if usize::from(udl) > max {
        return Err(PduFault::Field("TP-UDL"));
    }
    let actual = bytes.len() - at;
    if actual != expected {
        return Err(PduFault::UserDataLength {
            udl,
            expected,
            actual,
        });
    }
    Ok(SubmitFrame {
        status_report: fo & 0x20 != 0,
        recipient,
        recipient_toa: toa,
        bytes,
    })
}

/// Decoded fields of an accepted SUBMIT for the events log: `to`, `text` (or `data` hex),
/// `srr`, `concat` {ref,total,seq}; or `decode_error` when the codec cannot read it.
pub fn decode_for_log(bytes: &[u8]) -> serde_json::Value {
    use crate::pdu::{Body, Sms, Tpdu};
    match Sms::parse(bytes) {
        Ok(Sms {
            tpdu: Tpdu::Submit(s),
            ..
        }) => {
            let mut v =
                serde_json::json!({"to": s.recipient.to_string(), "srr": s.status_report_request});
            match &s.user_data.body {
                Body::Text(t) => v["text"] = serde_json::json!(t),
                Body::Data(d) => v["data"] = serde_json::json!(hex::encode_upper(d)),
            }
            if let Some(c) = s.user_data.udh.as_ref().and_then(|u| u.concat_info()) {
                v["concat"] =
                    serde_json::json!({"ref": c.reference, "total": c.total, "seq": c.seq});
            }
            v
        }
        Ok(_) => serde_json::json!({"decode_error": "not a SUBMIT"}),
        Err(e) => serde_json::json!({"decode_error": e.to_string()}),
    }
}

/// True when the DCS says the user data is counted in septets (TS 23.038 §4; reserved
/// groups are read as the default alphabet, as the spec asks).
fn dcs_is_gsm7(dcs: u8) -> bool {
    match dcs >> 4 {
        0x0..=0x7 => dcs & 0x20 == 0 && (dcs >> 2) & 0x03 == 0 || (dcs >> 2) & 0x03 == 3,
        0xE => false,
        0xF => dcs & 0x04 == 0,
        _ => true,
    }
}

/// Semi-octet address field: `[digit count, type, BCD...]`. A leading '+' gives type 0x91,
/// otherwise `national_toa` (0x81 for PHS and unknown numbering).
pub fn encode_address(number: &str, national_toa: u8) -> Vec<u8> {
    let (toa, digits) = match number.strip_prefix('+') {
        Some(rest) => (0x91, rest),
        None => (national_toa, number),
    };
    let d: Vec<u8> = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    let mut out = vec![d.len() as u8, toa];
    out.extend(
        d.chunks(2)
            .map(|c| c[0] | (c.get(1).copied().unwrap_or(0x0F) << 4)),
    );
    out
}

/// SMSC part: length in octets (type octet included), type, BCD.
pub fn encode_smsc(number: &str) -> Vec<u8> {
    let mut a = encode_address(number, 0x81);
    a[0] = (a.len() - 1) as u8;
    a
}

/// TP-SCTS for `now`, in China time (+08:00, zone octet 0x23).
pub fn encode_scts(now: Timestamp) -> [u8; 7] {
    let tz = TimeZone::fixed(Offset::constant(8));
    let z = now.to_zoned_datetime(tz);
    let sw = |v: i64| -> u8 {
        let v = v.rem_euclid(100) as u8;
        ((v % 10) << 4) | (v / 10)
    };
    [
        sw(i64::from(z.year())),
        sw(i64::from(z.month())),
        sw(i64::from(z.day())),
        sw(i64::from(z.hour())),
        sw(i64::from(z.minute())),
        sw(i64::from(z.second())),
        0x23,
    ]
}

/// Characters whose GSM 7-bit default-alphabet code equals their ASCII code; texts made only
/// of these go out as GSM7, anything else as UCS2 (the modem's network side has no need for
/// the full alphabet).
fn gsm7_same_as_ascii(c: char) -> bool {
    c.is_ascii_alphanumeric() || " !\"#%&'()*+,-./:;<=>?\n\r".contains(c)
}

/// One DELIVER PDU (with SMSC part) and its TPDU length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPdu {
    pub bytes: Vec<u8>,
    pub tpdu_len: usize,
}

impl BuiltPdu {
    pub fn hex(&self) -> String {
        hex::encode_upper(&self.bytes)
    }
}

fn pack_septets(header: &[u8], septets: &[u8]) -> (u8, Vec<u8>) {
    let mut bits: Vec<bool> = Vec::new();
    for b in header {
        bits.extend((0..8).map(|i| (b >> i) & 1 == 1));
    }
    while bits.len() % 7 != 0 {
        bits.push(false);
    }
    let udl = bits.len() / 7 + septets.len();
    for s in septets {
        bits.extend((0..7).map(|i| (s >> i) & 1 == 1));
    }
    let bytes = bits
        .chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << i))
        })
        .collect();
    (udl as u8, bytes)
}

/// The DELIVER parts a network hands the modem for `text` from `sender`: GSM7 when the text
/// allows, else UCS2; concatenated with an 8-bit-reference UDH (`concat_ref`) when it does
/// not fit one part. UTF-16 surrogate pairs are never split across parts.
pub fn build_deliver(
    smsc: &str,
    sender: &str,
    sender_toa: u8,
    text: &str,
    now: Timestamp,
    concat_ref: u8,
) -> Vec<BuiltPdu> {
    let gsm7 = text.chars().all(gsm7_same_as_ascii);
    let units: Vec<u16> = if gsm7 {
        text.bytes().map(u16::from).collect()
    } else {
        text.encode_utf16().collect()
    };
    let (single, per_part) = if gsm7 { (160, 153) } else { (70, 67) };
    let mut chunks: Vec<&[u16]> = Vec::new();
    if units.len() <= single {
        chunks.push(&units);
    } else {
        let mut rest: &[u16] = &units;
        while !rest.is_empty() {
            let mut n = per_part.min(rest.len());
            if n < rest.len() && (0xD800..0xDC00).contains(&rest[n - 1]) {
                n -= 1;
            }
            let (a, b) = rest.split_at(n);
            chunks.push(a);
            rest = b;
        }
    }
    let total = chunks.len() as u8;
    let scts = encode_scts(now);
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let udh: Vec<u8> = if total > 1 {
                vec![0x05, 0x00, 0x03, concat_ref, total, i as u8 + 1]
            } else {
                vec![]
            };
            let mut tpdu = vec![0x04 | if udh.is_empty() { 0 } else { 0x40 }];
            tpdu.extend(encode_address(sender, sender_toa));
            tpdu.push(0x00);
            tpdu.push(if gsm7 { 0x00 } else { 0x08 });
            tpdu.extend(scts);
            if gsm7 {
                let septets: Vec<u8> = chunk.iter().map(|&u| u as u8).collect();
                let (udl, ud) = pack_septets(&udh, &septets);
                tpdu.push(udl);
                tpdu.extend(ud);
            } else {
                let mut ud = udh.clone();
                ud.extend(chunk.iter().flat_map(|u| u.to_be_bytes()));
                tpdu.push(ud.len() as u8);
                tpdu.extend(ud);
            }
            let mut bytes = encode_smsc(smsc);
            let tpdu_len = tpdu.len();
            bytes.extend(tpdu);
            BuiltPdu { bytes, tpdu_len }
        })
        .collect()
}

/// A STATUS-REPORT for message reference `mr` to `recipient` with TP-Status `status`
/// (0x00 = delivered).
pub fn build_status_report(
    smsc: &str,
    mr: u8,
    recipient: &str,
    recipient_toa: u8,
    submitted: Timestamp,
    now: Timestamp,
    status: u8,
) -> BuiltPdu {
    let mut tpdu = vec![0x06, mr];
    tpdu.extend(encode_address(recipient, recipient_toa));
    tpdu.extend(encode_scts(submitted));
    tpdu.extend(encode_scts(now));
    tpdu.push(status);
    let mut bytes = encode_smsc(smsc);
    let tpdu_len = tpdu.len();
    bytes.extend(tpdu);
    BuiltPdu { bytes, tpdu_len }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // vectors/pdu.json "gsm7-submit-relative-vp" (subnets.ru sms_pdu_format, AT+CMGS=23).
    const SUBMIT_GSM7: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
    // vectors/pdu.json "ucs2-submit-china" (cnblogs daniu233 2013/04/22, AT+CMGS=21).
    const SUBMIT_UCS2: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";

    #[test]
    fn accepts_real_submits() {
        let f = check_submit(SUBMIT_GSM7, 23).unwrap();
        assert_eq!(f.recipient, "+46708251358");
        assert!(!f.status_report);
        let f = check_submit(SUBMIT_UCS2, 21).unwrap();
        assert_eq!(f.recipient, "+8613910199192");
    }

    #[test]
    fn refuses_bad_submits() {
        assert!(matches!(
            check_submit(SUBMIT_GSM7, 22),
            Err(PduFault::LengthMismatch { .. })
        ));
        assert_eq!(check_submit("0011", 1), Err(PduFault::Truncated("TP-MR")));
        assert_eq!(check_submit("001", 1), Err(PduFault::OddLength));
        assert!(matches!(check_submit("00ZZ", 1), Err(PduFault::NotHex(_))));
        // Cut one octet of user data: UDL no longer matches.
        let short = &SUBMIT_GSM7[..SUBMIT_GSM7.len() - 2];
        assert!(matches!(
            check_submit(short, 22),
            Err(PduFault::UserDataLength { .. })
        ));
        // A DELIVER is not a SUBMIT (vectors/pdu.json gsm7-deliver-classic).
        let deliver =
            "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
        assert_eq!(check_submit(deliver, 30), Err(PduFault::NotSubmit(0)));
    }

    #[test]
    fn gsm7_deliver_matches_reference_packing() {
        // "hellohello" packs to E8329BFD4697D9EC37 (vectors/pdu.json gsm7-submit-relative-vp).
        let p = build_deliver(
            "+8613800100500",
            "+8613912345678",
            0x91,
            "hellohello",
            Timestamp::UNIX_EPOCH,
            1,
        );
        assert_eq!(p.len(), 1);
        assert!(p[0].hex().ends_with("0AE8329BFD4697D9EC37"));
        // SMSC part: length octet, 0x91, 7 BCD octets for 13 digits.
        assert_eq!(p[0].bytes.len() - p[0].tpdu_len, 9);
    }

    #[test]
    fn long_ucs2_is_concatenated_without_splitting_surrogates() {
        let text: String = std::iter::repeat_n("退订😀", 40).collect();
        let parts = build_deliver(
            "+8613800100500",
            "+8613912345678",
            0x91,
            &text,
            Timestamp::UNIX_EPOCH,
            9,
        );
        assert!(parts.len() > 1);
        let mut joined = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let tpdu = &p.bytes[p.bytes.len() - p.tpdu_len..];
            // fo(1) + OA(2+7) + PID + DCS + SCTS(7) = 19, then UDL; UDH follows.
            assert_eq!(&tpdu[20..25], &[0x05, 0x00, 0x03, 9, parts.len() as u8]);
            assert_eq!(tpdu[25], i as u8 + 1);
            let units: Vec<u16> = tpdu[26..]
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            assert!(!(0xD800..0xDC00).contains(units.last().unwrap()));
            joined.extend(units);
        }
        assert_eq!(String::from_utf16(&joined).unwrap(), text);
    }

    #[test]
    fn scts_is_china_time() {
        // 2002-08-26T11:37:41Z is 19:37:41 in +08:00.
        let t: Timestamp = "2002-08-26T11:37:41Z".parse().unwrap();
        assert_eq!(encode_scts(t), [0x20, 0x80, 0x62, 0x91, 0x73, 0x14, 0x23]);
    }

    #[test]
    fn codec_reads_what_the_sim_builds() {
        use crate::pdu::{Body, Reassembler, Sms, Tpdu};
        // Long UCS2 with emoji, long GSM7, and a short one: each reassembles to the input.
        let texts = [
            std::iter::repeat_n("退订😀", 40).collect::<String>(),
            "hello world ".repeat(20),
            "TD".to_string(),
        ];
        for text in texts {
            let parts = build_deliver(
                "+8613800100500",
                "+8613912345678",
                0x91,
                &text,
                Timestamp::UNIX_EPOCH,
                7,
            );
            let mut r = Reassembler::default();
            let mut done = None;
            for p in &parts {
                let sms = Sms::parse(&p.bytes).unwrap();
                assert_eq!(sms.tpdu_len(), p.tpdu_len);
                let Tpdu::Deliver(d) = &sms.tpdu else {
                    panic!("not a DELIVER")
                };
                assert_eq!(d.sender.to_string(), "+8613912345678");
                if parts.len() == 1 {
                    assert_eq!(d.user_data.body, Body::Text(text.clone()));
                }
                done = r.push(sms).or(done);
            }
            if parts.len() > 1 {
                assert_eq!(done.expect("reassembled").body, Body::Text(text.clone()));
            }
        }
        let sr = build_status_report(
            "+8613800100500",
            9,
            "+46708251358",
            0x91,
            Timestamp::UNIX_EPOCH,
            Timestamp::UNIX_EPOCH,
            0,
        );
        let sms = Sms::parse(&sr.bytes).unwrap();
        let Tpdu::StatusReport(r) = &sms.tpdu else {
            panic!("not a STATUS-REPORT")
        };
        assert_eq!(r.message_reference, 9);
        assert_eq!(r.recipient.to_string(), "+46708251358");
    }

    #[test]
    fn decoded_fields_for_the_log() {
        let v = decode_for_log(&hex::decode(SUBMIT_UCS2).unwrap());
        assert_eq!(v["to"], "+8613910199192");
        assert_eq!(v["text"], "您好！");
        assert!(decode_for_log(&[0x00, 0x01]).get("decode_error").is_some());
    }

    proptest! {
        #[test]
        fn check_submit_never_panics(s in "[0-9A-Fa-f]{0,80}", n in 0usize..200) {
            let _ = check_submit(&s, n);
        }
        #[test]
        fn check_submit_never_panics_on_any_text(s in ".{0,40}", n in 0usize..50) {
            let _ = check_submit(&s, n);
        }
    }
}
