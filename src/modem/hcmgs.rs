//! The text flow of CDMA/PHS modules (`^HCMGS` to send, `^HCMT`/`^HCMGR` to receive), built on
//! the crate's codec (`crate::pdu`): [`submit_text`] turns the SMS-SUBMIT of a part (encoded for
//! the dialect by [`super::encode`], destination in national form) into the destination and
//! UCS2 text `^HCMGS` takes, and
//! [`text_to_deliver`] turns a received text message into the SMS-DELIVER PDU every other
//! modem gives, so the daemon's inbound path (inbox, de-duplication, opt-out) stays one.
//! What must always hold: no input panics; anything the text flow cannot carry (alphanumeric
//! destination, 8-bit or compressed data) is an error naming what, never a silently altered
//! message. A user-data header (concat reference) cannot travel through ^HCMGS: it is
//! dropped and each part arrives as its own SMS, which is logged.

use crate::at::TextSms;
use crate::pdu::{
    Address, Body, Dcs, Deliver, Encoding, Scts, Sms, Submit, Tpdu, TypeOfNumber, UserData,
};

/// What `^HCMGS` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    pub destination: String,
    pub ucs2: Vec<u8>,
    /// A user-data header was present and dropped.
    pub dropped_udh: bool,
}

/// Reads destination and text out of `SMSC part + SMS-SUBMIT` in hex, as stored (the
/// destination as given: the dialect's form is [`super::encode::encode_part_for`]'s job).
pub fn submit_to_text(pdu_hex: &str) -> Result<TextPart, String> {
    let sms = Sms::parse_hex(pdu_hex).map_err(|e| format!("unreadable PDU: {e}"))?;
    let Tpdu::Submit(s) = sms.tpdu else {
        return Err(format!("not an SMS-SUBMIT but {}", sms.tpdu.kind()));
    };
    submit_text(&s)
}

/// The destination and UCS2 text `^HCMGS` takes for an SMS-SUBMIT (its destination already in
/// the form the module dials).
pub fn submit_text(s: &Submit) -> Result<TextPart, String> {
    let to = &s.recipient;
    if to.ton == TypeOfNumber::Alphanumeric {
        return Err("alphanumeric destination".into());
    }
    if to.value.is_empty() || !to.value.bytes().all(|b| b.is_ascii_digit()) {
        return Err("destination has digits other than 0-9".into());
    }
    let destination = to.to_string();
    let text = match &s.user_data.body {
        Body::Text(t) => t,
        Body::Data(_) => return Err("8-bit or compressed data cannot be sent as text".into()),
    };
    Ok(TextPart {
        destination,
        ucs2: text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        dropped_udh: s.user_data.udh.is_some(),
    })
}

/// The destination as a module that takes national numbers only (`Faults::national_address`,
/// PHS) dials it: a Chinese mobile without `+86`, a fixed/PHS line in its national `0...` form
/// (already canonical), another country with the `00` international prefix. The number is
/// read by `crate::number` (the one reader of numbers); one it cannot read is kept as given,
/// for the module to refuse rather than for the driver to guess.
pub fn national_destination(destination: &str) -> String {
    match crate::number::parse(destination) {
        Ok(n) => n.national_dialling(),
        Err(_) => destination.to_string(),
    }
}

/// The SMS-DELIVER (SMSC part "00" + TPDU, in hex) and its TPDU length for a text message a
/// CDMA/PHS module gave with `^HCMT` or `^HCMGR`. The sender keeps its form (national numbers
/// as type 0x81, a leading "+" as international); the time is the module's local time, which
/// CDMA gives without a zone: it is read in the gateway host's zone (the module sits next to
/// it). The same message always gives the same PDU, so a message read twice (a restart
/// before its ack) is de-duplicated by the store like any other. GSM-alphabet text goes as
/// GSM 7-bit, the rest as UCS2; a text that does not fit one PDU (CDMA allows 160 ASCII, 70
/// UCS2 characters, so only an 8-bit body can) is an error, never cut.
pub fn text_to_deliver(sms: &TextSms) -> Result<(String, u16), String> {
    let h = &sms.header;
    let sender = Address::parse_number(&h.sender).map_err(|e| format!("sender: {e}"))?;
    let [y, mo, d, hh, mi, ss] = h.time;
    let small = |v: u16| i8::try_from(v).unwrap_or(-1);
    let civil = jiff::civil::DateTime::new(
        i16::try_from(y).unwrap_or(-1),
        small(mo),
        small(d),
        small(hh),
        small(mi),
        small(ss),
        0,
    );
    let scts = match civil
        .ok()
        .and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::system()).ok())
    {
        Some(z) => Scts::from_zoned(&z),
        // A module with a broken clock: the message still goes in, stamped now.
        None => Scts::from_timestamp(jiff::Timestamp::now(), 0),
    };
    let (dcs, units) = match crate::pdu::septet_count(&sms.text) {
        Some(n) => (Dcs::GSM7, n),
        None => (
            Dcs::for_text(Encoding::Ucs2, None),
            sms.text.encode_utf16().count(),
        ),
    };
    let limit = if dcs == Dcs::GSM7 { 160 } else { 70 };
    if units > limit {
        return Err(format!(
            "text of {units} characters does not fit one SMS-DELIVER"
        ));
    }
    let pdu = Sms {
        smsc: None,
        tpdu: Tpdu::Deliver(Deliver {
            more_messages_to_send: false,
            loop_prevention: false,
            status_report_indication: false,
            reply_path: false,
            sender,
            pid: 0,
            dcs,
            scts,
            user_data: UserData::text(sms.text.clone()),
        }),
    };
    let len = u16::try_from(pdu.tpdu_len()).unwrap_or(u16::MAX);
    Ok((pdu.to_hex(), len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::TextHeader;

    #[test]
    fn gsm7_submit_from_the_dreamfabric_example() {
        // "SMS and the PDU format" (dreamfabric.com): SUBMIT to 46708251358, text "hellohello".
        let t = submit_to_text("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap();
        assert_eq!(t.destination, "+46708251358");
        let text: String =
            char::decode_utf16(t.ucs2.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])))
                .map(|c| c.unwrap())
                .collect();
        assert_eq!(text, "hellohello");
        assert!(!t.dropped_udh);
    }

    #[test]
    fn ucs2_submit_to_a_national_number() {
        // SMSC "00", SUBMIT, MR 0, DA 12 digits national (0x81) 075512345678, PID 0, DCS 08,
        // no VP, UDL 4, "你好" (4F60 597D).
        let t = submit_to_text("0001000C817055214365870008044F60597D").unwrap();
        assert_eq!(t.destination, "075512345678");
        assert_eq!(t.ucs2, vec![0x4f, 0x60, 0x59, 0x7d]);
    }

    #[test]
    fn udh_is_dropped_and_reported() {
        // UCS2 with an 8-bit concat header 05 00 03 2A 02 01, then "你".
        let t = submit_to_text("0041000B918131523254F60008080500032A02014F60").unwrap();
        assert!(t.dropped_udh);
        assert_eq!(t.ucs2, vec![0x4f, 0x60]);
    }

    #[test]
    fn what_text_cannot_carry_is_an_error() {
        assert!(submit_to_text("0011000ED0C8329BFD06000400A70100").is_err()); // alphanumeric
        assert!(submit_to_text("0011000B916407281553F80004AA0100").is_err()); // 8-bit
        assert!(submit_to_text("0004").is_err()); // DELIVER
        assert!(submit_to_text("zz").is_err());
        assert!(submit_to_text("").is_err());
    }

    #[test]
    fn national_form_for_modules_that_take_no_plus() {
        assert_eq!(national_destination("+8613912345678"), "13912345678");
        assert_eq!(national_destination("075512345678"), "075512345678");
        assert_eq!(national_destination("+8675512345678"), "075512345678");
        assert_eq!(national_destination("+14155552671"), "0014155552671");
        assert_eq!(national_destination("10690000"), "10690000");
        assert_eq!(national_destination("+"), "+");
    }

    fn text(sender: &str, format: u8, text: &str) -> TextSms {
        TextSms {
            header: TextHeader {
                sender: sender.into(),
                time: [2026, 11, 29, 20, 30, 1],
                format,
                length: 0,
                stat: 0,
            },
            text: text.into(),
        }
    }

    #[test]
    fn received_text_becomes_a_deliver_the_codec_reads_back() {
        for (from, body) in [("075587654321", "退订"), ("+8613912345678", "TD")] {
            let (hex, len) = text_to_deliver(&text(from, 6, body)).unwrap();
            let sms = Sms::parse_hex(&hex).unwrap();
            assert_eq!(usize::from(len), sms.tpdu_len());
            let Tpdu::Deliver(d) = sms.tpdu else {
                panic!("not a DELIVER: {hex}")
            };
            assert_eq!(d.sender.to_string(), from);
            assert_eq!(d.user_data.body.text(), Some(body));
            assert_eq!((d.scts.year, d.scts.month, d.scts.second), (26, 11, 1));
            // The same message gives the same PDU (the store de-duplicates on it).
            assert_eq!(text_to_deliver(&text(from, 6, body)).unwrap().0, hex);
        }
        assert_eq!(
            Sms::parse_hex(&text_to_deliver(&text("0755", 1, "TD")).unwrap().0)
                .unwrap()
                .tpdu
                .dcs(),
            Some(Dcs::GSM7)
        );
        assert!(text_to_deliver(&text("0755", 6, &"你".repeat(71))).is_err());
        assert!(text_to_deliver(&text("", 1, "x")).is_err());
        let mut bad = text("0755", 1, "x");
        bad.header.time = [2026, 13, 40, 99, 99, 99];
        let _ = text_to_deliver(&bad);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = submit_to_text(&hex::encode(bytes));
        }

        #[test]
        fn text_to_deliver_never_panics(
            t in "\\PC{0,90}",
            y in 0u16..10000, mo in 0u16..20, d in 0u16..40, h in 0u16..30,
        ) {
            let mut m = text("075512345678", 6, &t);
            m.header.time = [y, mo, d, h, 61, 61];
            let _ = text_to_deliver(&m);
        }
    }
}
