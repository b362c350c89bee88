//! From what the daemon stores for a part (SMSC part + SMS-SUBMIT TPDU in hex, the same PDU a
//! modem gets) to a CMPP SUBMIT, and from an MO DELIVER's Msg_Content back to text. Pure
//! functions over the codecs `crate::pdu` and `crate::cmpp`. What must always hold: no input
//! panics; the SUBMIT carries the part exactly as it was charged (its UDH, Pk_total/Pk_number
//! from the UDH, one part per SUBMIT), and anything CMPP cannot carry is a [`PartError`]
//! naming what, never a silently altered message.
//!
//! Choices where the spec leaves room:
//! - Msg_Fmt by the part's DCS: UCS2 -> 8 and 8-bit data -> 4, octets as they are; GSM 7-bit
//!   text -> 0 (ASCII) when it is ASCII, else 8 (UCS2) when that still fits 140 octets with
//!   the UDH, else 15 (GBK) when GBK maps every character, else an error.
//! - Dest_terminal_Id in the national form carriers expect: a Chinese mobile as its 11 digits,
//!   a fixed/PHS line as `0...`, another country with the `00` prefix.
//! - Fees: Fee_UserType 2 (the SP pays), FeeType "01" (free to the user), FeeCode "000000":
//!   a 106 business message must never bill its recipient.
//! - Src_Id = the gateway's `src_id` + the account's extension (21 octets at most).

use crate::cmpp::{MsgFmt, Submit};
use crate::pdu::{Body, Encoding, Sms, Tpdu, TypeOfNumber, Udh};

use super::GatewayConfig;

/// One part to submit: the stored PDU and the account's extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPart {
    /// SMSC part + SMS-SUBMIT TPDU, hex (what `encode_submit` gives and the store keeps).
    pub pdu_hex: String,
    /// Appended to the gateway's 106 access number in Src_Id ("" for none).
    pub extension: String,
}

impl GatewayPart {
    pub fn new(pdu_hex: impl Into<String>, extension: impl Into<String>) -> GatewayPart {
        GatewayPart {
            pdu_hex: pdu_hex.into(),
            extension: extension.into(),
        }
    }
}

/// Why a part cannot become a CMPP SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    #[error("unreadable PDU: {0}")]
    Pdu(String),
    #[error("not an SMS-SUBMIT but {0}")]
    NotSubmit(&'static str),
    #[error("destination: {0}")]
    Destination(String),
    #[error("Src_Id {len} octets (access number + extension) does not fit 21")]
    SrcId { len: usize },
    #[error("extension must be digits")]
    Extension,
    #[error("text has characters neither UCS2 (too long) nor GBK can carry")]
    Unencodable,
    #[error("SUBMIT does not encode: {0}")]
    Codec(String),
}

/// The Dest_terminal_Id for a TP-DA (see the module doc). Numbers are read by
/// `crate::number`; one it cannot read is kept as its digits for the gateway to refuse.
pub fn dest_terminal_id(destination: &str) -> String {
    match crate::number::parse(destination) {
        Ok(n) => n.national_dialling(),
        Err(_) => destination.trim_start_matches('+').to_string(),
    }
}

fn udh_bytes(udh: Option<&Udh>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(h) = udh {
        h.emit(&mut out);
    }
    out
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Builds the SUBMIT for `part` on gateway `cfg` (Msg_Id 0, one recipient).
pub fn build_submit(cfg: &GatewayConfig, part: &GatewayPart) -> Result<Submit, PartError> {
    let sms = Sms::parse_hex(&part.pdu_hex).map_err(|e| PartError::Pdu(e.to_string()))?;
    let Tpdu::Submit(s) = sms.tpdu else {
        return Err(PartError::NotSubmit(sms.tpdu.kind()));
    };
    if s.recipient.ton == TypeOfNumber::Alphanumeric {
        return Err(PartError::Destination("alphanumeric".into()));
    }
    if s.recipient.value.is_empty() || !s.recipient.value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PartError::Destination("digits other than 0-9".into()));
    }
    let dest = dest_terminal_id(&s.recipient.to_string());
    if !part.extension.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PartError::Extension);
    }
    let src_id = format!("{}{}", cfg.src_id, part.extension);
    if src_id.len() > 21 {
        return Err(PartError::SrcId { len: src_id.len() });
    }
    let udh = s.user_data.udh.as_ref();
    let head = udh_bytes(udh);
    let (fmt, body) = match (&s.user_data.body, s.dcs.encoding()) {
        (Body::Data(d), _) => (MsgFmt::Binary, d.clone()),
        (Body::Text(t), Encoding::Ucs2) => (MsgFmt::Ucs2, ucs2(t)),
        (Body::Text(t), Encoding::Data8) => (MsgFmt::Binary, t.as_bytes().to_vec()),
        (Body::Text(t), Encoding::Gsm7) if t.is_ascii() => (MsgFmt::Ascii, t.as_bytes().to_vec()),
        (Body::Text(t), Encoding::Gsm7) => {
            let u = ucs2(t);
            if head.len() + u.len() <= 140 {
                (MsgFmt::Ucs2, u)
            } else {
                let (gbk, _, unmappable) = encoding_rs::GBK.encode(t);
                if unmappable {
                    return Err(PartError::Unencodable);
                }
                (MsgFmt::Gbk, gbk.into_owned())
            }
        }
    };
    let mut content = head;
    content.extend_from_slice(&body);
    let mut sub = Submit::new(src_id.as_bytes(), dest.as_bytes(), fmt, content);
    if let Some(c) = udh.and_then(Udh::concat_info) {
        sub.pk_total = c.total.max(1);
        sub.pk_number = c.seq.max(1);
    }
    sub.tp_udhi = u8::from(udh.is_some());
    sub.tp_pid = s.pid;
    sub.registered_delivery = u8::from(s.status_report_request);
    sub.service_id = cfg.service_id.as_bytes().to_vec();
    sub.msg_src = cfg.sp_id.as_bytes().to_vec();
    sub.fee_user_type = 2;
    sub.fee_type = b"01".to_vec();
    sub.fee_code = b"000000".to_vec();
    // Checked here so a field that does not fit is this part's error, not a write failure
    // that would look like a broken link.
    crate::cmpp::Pdu::new(0, crate::cmpp::Body::Submit(sub.clone()))
        .emit(crate::cmpp::Version::V20)
        .map_err(|e| PartError::Codec(e.to_string()))?;
    Ok(sub)
}

/// The text of an MO DELIVER's Msg_Content (after any UDH): ASCII (0), UCS2 (8), GBK (15);
/// None for binary and other formats. Never fails: bad octets read as U+FFFD.
pub fn decode_mo(fmt: MsgFmt, content: &[u8]) -> Option<String> {
    match fmt {
        MsgFmt::Ascii => Some(String::from_utf8_lossy(content).into_owned()),
        MsgFmt::Ucs2 => {
            let units = content
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]));
            Some(
                char::decode_utf16(units)
                    .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            )
        }
        MsgFmt::Gbk => {
            let (t, _) = encoding_rs::GBK.decode_without_bom_handling(content);
            Some(t.into_owned())
        }
        _ => None,
    }
}

/// Splits a UDH off an MO's content when TP_udhi says there is one: (header, rest). A header
/// that runs past the content leaves everything as content.
pub fn split_udh(udhi: bool, content: &[u8]) -> (Option<Udh>, &[u8]) {
    if !udhi {
        return (None, content);
    }
    match Udh::parse(content) {
        Ok((rest, h)) => (Some(h), rest),
        Err(_) => (None, content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{encode_submit, Address, SubmitOptions};

    fn cfg() -> GatewayConfig {
        let mut c = GatewayConfig::new("t", "127.0.0.1:1", "901234", "x", "1069012345");
        c.service_id = "MXX0000001".into();
        c
    }

    fn parts(to: &str, text: &str, report: bool) -> Vec<GatewayPart> {
        let mut o = SubmitOptions::new(Address::parse_number(to).unwrap());
        o.status_report = report;
        encode_submit(&o, text)
            .unwrap()
            .iter()
            .map(|p| GatewayPart::new(p.hex(), "42"))
            .collect()
    }

    #[test]
    fn a_ucs2_part_keeps_its_text_and_asks_for_a_report() {
        let p = &parts("+8613800138000", "您好", true)[0];
        let s = build_submit(&cfg(), p).unwrap();
        assert_eq!(s.msg_fmt, MsgFmt::Ucs2);
        assert_eq!(s.msg_content, vec![0x60, 0xa8, 0x59, 0x7d]);
        assert_eq!(s.dest_terminal_ids, vec![b"13800138000".to_vec()]);
        assert_eq!(s.src_id, b"106901234542");
        assert_eq!((s.pk_total, s.pk_number, s.tp_udhi), (1, 1, 0));
        assert_eq!(s.registered_delivery, 1);
        assert_eq!(s.service_id, b"MXX0000001");
        assert_eq!(s.msg_src, b"901234");
    }

    #[test]
    fn long_messages_keep_their_udh_and_part_numbers() {
        let text = "长".repeat(100);
        let ps = parts("13800138000", &text, false);
        assert_eq!(ps.len(), 2);
        for (i, p) in ps.iter().enumerate() {
            let s = build_submit(&cfg(), p).unwrap();
            assert_eq!(s.tp_udhi, 1);
            assert_eq!((s.pk_total, s.pk_number), (2, i as u8 + 1));
            // UDH 05 00 03 ref 02 seq, then UCS2.
            assert_eq!(&s.msg_content[..3], &[0x05, 0x00, 0x03]);
            assert_eq!(s.msg_content[4..6], [2, i as u8 + 1]);
            assert_eq!(s.registered_delivery, 0);
        }
        let ascii = parts("13800138000", &"a".repeat(200), false);
        let s = build_submit(&cfg(), &ascii[0]).unwrap();
        assert_eq!(s.msg_fmt, MsgFmt::Ascii);
        assert_eq!(s.msg_content.len(), 6 + 153);
    }

    #[test]
    fn gsm7_text_goes_ascii_or_ucs2() {
        let s = build_submit(&cfg(), &parts("13800138000", "Code 1234", false)[0]).unwrap();
        assert_eq!(
            (s.msg_fmt, s.msg_content.as_slice()),
            (MsgFmt::Ascii, &b"Code 1234"[..])
        );
        let s = build_submit(&cfg(), &parts("13800138000", "Café", false)[0]).unwrap();
        assert_eq!(s.msg_fmt, MsgFmt::Ucs2);
        assert_eq!(
            decode_mo(s.msg_fmt, &s.msg_content).as_deref(),
            Some("Café")
        );
        // 160 GSM characters with an é do not fit UCS2: GBK carries é.
        let t = format!("é{}", "x".repeat(159));
        let s = build_submit(&cfg(), &parts("13800138000", &t, false)[0]).unwrap();
        assert_eq!(s.msg_fmt, MsgFmt::Gbk);
        assert_eq!(
            decode_mo(s.msg_fmt, &s.msg_content).as_deref(),
            Some(t.as_str())
        );
    }

    #[test]
    fn bad_parts_are_refused_by_name() {
        let c = cfg();
        assert!(matches!(
            build_submit(&c, &GatewayPart::new("zz", "")),
            Err(PartError::Pdu(_))
        ));
        let mut p = parts("13800138000", "x", false).remove(0);
        p.extension = "12345678901234".into();
        assert!(matches!(build_submit(&c, &p), Err(PartError::SrcId { .. })));
        p.extension = "4a".into();
        assert_eq!(build_submit(&c, &p), Err(PartError::Extension));
    }

    #[test]
    fn destinations_in_national_form() {
        assert_eq!(dest_terminal_id("+8613800138000"), "13800138000");
        assert_eq!(dest_terminal_id("13800138000"), "13800138000");
        assert_eq!(dest_terminal_id("075512345678"), "075512345678");
        assert_eq!(dest_terminal_id("+14155550100"), "0014155550100");
    }

    #[test]
    fn mo_content_in_every_format() {
        assert_eq!(decode_mo(MsgFmt::Ascii, b"TD").as_deref(), Some("TD"));
        assert_eq!(
            decode_mo(MsgFmt::Ucs2, &[0x90, 0x00, 0x8b, 0xa2]).as_deref(),
            Some("退订")
        );
        assert_eq!(
            decode_mo(MsgFmt::Gbk, &[0xcd, 0xcb, 0xb6, 0xa9]).as_deref(),
            Some("退订")
        );
        assert_eq!(decode_mo(MsgFmt::Binary, &[1, 2]), None);
        // Odd and broken input never panics.
        assert!(decode_mo(MsgFmt::Ucs2, &[0xd8, 0x00, 0x41]).is_some());
        assert!(decode_mo(MsgFmt::Gbk, &[0xff, 0xfe, 0x81]).is_some());
        let (h, rest) = split_udh(true, &[5, 0, 3, 7, 2, 1, b'h', b'i']);
        assert_eq!(h.unwrap().concat_info().unwrap().total, 2);
        assert_eq!(rest, b"hi");
        assert_eq!(split_udh(true, &[9, 0]).1, &[9, 0]);
    }
}
