//! A part encoded for the modem that sends it, at the moment it sends it.
//!
//! Acceptance splits and counts a text with the codec's one rule and stores each part as the
//! codec built it, in a form that belongs to no modem: the SMSC part and SMS-SUBMIT with SMSC
//! "00" (the SIM's own +CSCA), the destination as the canonical number (`+86...` international,
//! `0755...` national), TP-MR 0, and the part's own user data (its text segment with the
//! concatenation header: reference, part number and count), DCS, status-report request and
//! validity. That stored SUBMIT is the part's description, read back here by the codec;
//! [`encode_part_for`] then builds what the sending modem's dialect takes:
//! - the destination in the dialect's type of address ([`Dialect::destination_toa`]): modules
//!   with `Faults::national_address` (PHS) get the national dialling form with type 0x81;
//! - the SMSC part: "00" for modules that drop their reply when the PDU carries an SMSC
//!   (`Faults::drops_reply_with_smsc`), as stored otherwise;
//! - the command: a PDU and its AT+CMGS length, or for `^HCMGS` modules the destination and UCS2
//!   text of the text flow ([`super::hcmgs`]).
//!
//! What must always hold: everything but those dialect fields is carried over unchanged (user
//! data and its concat reference, part number, DCS, TP-MR, report request, validity), so a part
//! retried on another SIM or another dialect is the same part; when the dialect changes none of
//! its fields a part is sent byte for byte as stored, with its stored AT+CMGS length, otherwise
//! with the encoded TPDU's length; a stored PDU the codec cannot read as a SUBMIT is sent as
//! stored in PDU mode (only the SMSC rule applies) and refused in the text flow, never guessed
//! at; no input panics.

use super::dialect::Dialect;
use super::hcmgs::{national_destination, submit_text, TextPart};
use super::strip_smsc;
use crate::at::SendCommand;
use crate::pdu::{Address, NumberingPlan, Sms, Submit, Tpdu, TypeOfNumber};

/// What goes on the wire for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// `AT+CMGS=<length>`, then this PDU (SMSC part + TPDU, in hex).
    Pdu { pdu_hex: String, length: u16 },
    /// `AT^HCMGS="<destination>"`, then the UCS2 text.
    Text(TextPart),
}

/// Encodes the stored part (`stored_pdu`, SMSC part + SMS-SUBMIT in hex, with its AT+CMGS
/// length `stored_length`) for `dialect`. An `Err` is a part this dialect cannot carry (the text
/// flow and an alphanumeric destination, 8-bit data, an unreadable PDU): a permanent refusal
/// of the part, nothing is sent.
pub fn encode_part_for(
    dialect: &Dialect,
    stored_pdu: &str,
    stored_length: u16,
) -> Result<Wire, String> {
    let (smsc, submit) = match Sms::parse_hex(stored_pdu) {
        Ok(Sms {
            smsc,
            tpdu: Tpdu::Submit(s),
        }) => (smsc, s),
        other => {
            return match dialect.send {
                // Not a SUBMIT the codec reads (a caller's own PDU): sent as given, as the
                // modem will judge it; only the SMSC rule, which needs no reading, applies.
                SendCommand::Cmgs => {
                    let pdu_hex = if dialect.faults.drops_reply_with_smsc {
                        strip_smsc(stored_pdu).unwrap_or_else(|| stored_pdu.to_string())
                    } else {
                        stored_pdu.to_string()
                    };
                    Ok(Wire::Pdu {
                        pdu_hex,
                        length: stored_length,
                    })
                }
                SendCommand::Hcmgs => Err(match other {
                    Ok(sms) => format!("not an SMS-SUBMIT but {}", sms.tpdu.kind()),
                    Err(e) => format!("unreadable PDU: {e}"),
                }),
            };
        }
    };
    let recipient = destination_for(dialect, &submit.recipient);
    let drop_smsc = dialect.faults.drops_reply_with_smsc && smsc.is_some();
    if dialect.send == SendCommand::Cmgs && recipient == submit.recipient && !drop_smsc {
        // Nothing of this dialect's differs from the stored part: it goes out as stored, its
        // length as stored (what earlier releases sent, octet for octet).
        return Ok(Wire::Pdu {
            pdu_hex: stored_pdu.to_string(),
            length: stored_length,
        });
    }
    let submit = Submit {
        recipient,
        ..submit
    };
    match dialect.send {
        SendCommand::Cmgs => {
            let sms = Sms {
                smsc: if drop_smsc { None } else { smsc },
                tpdu: Tpdu::Submit(submit),
            };
            let length = u16::try_from(sms.tpdu_len()).unwrap_or(u16::MAX);
            Ok(Wire::Pdu {
                pdu_hex: sms.to_hex(),
                length,
            })
        }
        SendCommand::Hcmgs => submit_text(&submit).map(Wire::Text),
    }
}

/// The destination in the form `dialect` dials: unchanged for the international type (0x91),
/// which takes the canonical number as stored; the national dialling form with type 0x81 for
/// modules that refuse a "+" (`Faults::national_address`). An alphanumeric address, or one
/// whose national form is not all digits (a number `crate::number` cannot read), is kept as
/// stored, for the module (or the text flow's check) to refuse rather than for us to guess.
fn destination_for(dialect: &Dialect, to: &Address) -> Address {
    if dialect.destination_toa() != 0x81 || to.ton == TypeOfNumber::Alphanumeric {
        return to.clone();
    }
    let digits = national_destination(&to.to_string());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return to.clone();
    }
    Address {
        ton: TypeOfNumber::Unknown,
        npi: NumberingPlan::Isdn,
        value: digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::dialect::{generic::GENERIC, huawei::HUAWEI, phs::PHS, ALL};
    use crate::pdu::{encode_submit, SubmitOptions, ValidityPeriod};

    /// Parts as acceptance stores them: the codec's neutral SUBMITs.
    fn accepted(to: &str, text: &str, reference: u16) -> Vec<(String, u16)> {
        let mut opts = SubmitOptions::new(Address::parse_number(to).unwrap());
        opts.status_report = true;
        opts.validity = Some(ValidityPeriod::Relative(0xA7));
        opts.concat_reference = reference;
        encode_submit(&opts, text)
            .unwrap()
            .into_iter()
            .map(|p| (p.hex(), p.cmgs_length as u16))
            .collect()
    }

    fn submit_of(hex: &str) -> (Option<Address>, Submit) {
        let sms = Sms::parse_hex(hex).unwrap();
        let Tpdu::Submit(s) = sms.tpdu else {
            panic!("not a SUBMIT: {hex}")
        };
        (sms.smsc, s)
    }

    /// A PDU-mode dialect with the PHS faults: the national form is a property of the
    /// dialect's data, not of the text flow.
    fn national_pdu_mode() -> Dialect {
        let mut d = GENERIC;
        d.faults.national_address = true;
        d
    }

    #[test]
    fn a_dialect_without_faults_sends_the_stored_part_byte_for_byte() {
        for (to, text) in [
            ("+8613912345678", "hello"),
            ("075512345678", "您好"),
            ("+8613912345678", &"长".repeat(150)),
        ] {
            for (hex, len) in accepted(to, text, 0x2A) {
                for d in [&GENERIC, &HUAWEI] {
                    assert_eq!(
                        encode_part_for(d, &hex, len),
                        Ok(Wire::Pdu {
                            pdu_hex: hex.clone(),
                            length: len
                        }),
                        "{}",
                        d.name
                    );
                }
            }
        }
    }

    #[test]
    fn national_dialects_get_the_national_form_and_everything_else_is_kept() {
        let d = national_pdu_mode();
        assert_eq!(d.destination_toa(), 0x81);
        let parts = accepted("+8613912345678", &"长".repeat(150), 0x2A);
        assert_eq!(parts.len(), 3);
        for (hex, len) in &parts {
            let Ok(Wire::Pdu { pdu_hex, length }) = encode_part_for(&d, hex, *len) else {
                panic!("PDU mode")
            };
            let (smsc, sent) = submit_of(&pdu_hex);
            let (stored_smsc, stored) = submit_of(hex);
            assert_eq!(sent.recipient.type_octet(), 0x81);
            assert_eq!(sent.recipient.value, "13912345678");
            // One octet less of address (11 digits instead of 13): the length follows.
            assert_eq!(usize::from(length), usize::from(*len) - 1);
            assert_eq!(smsc, stored_smsc);
            assert_eq!(
                Submit {
                    recipient: stored.recipient.clone(),
                    ..sent
                },
                stored,
                "only the destination changed"
            );
        }
        // A fixed line is national already; another country is dialled with 00.
        let (hex, len) = accepted("+8675512345678", "hi", 0).remove(0);
        let Ok(Wire::Pdu { pdu_hex, .. }) = encode_part_for(&d, &hex, len) else {
            panic!()
        };
        assert_eq!(submit_of(&pdu_hex).1.recipient.value, "075512345678");
        let (hex, len) = accepted("+14155552671", "hi", 0).remove(0);
        let Ok(Wire::Pdu { pdu_hex, .. }) = encode_part_for(&d, &hex, len) else {
            panic!()
        };
        assert_eq!(submit_of(&pdu_hex).1.recipient.value, "0014155552671");
    }

    #[test]
    fn the_text_flow_gets_destination_and_text_and_keeps_the_concat_reference_out() {
        let parts = accepted("+8613912345678", &"长".repeat(150), 0x2A);
        for (hex, len) in &parts {
            let Ok(Wire::Text(t)) = encode_part_for(&PHS, hex, *len) else {
                panic!("text flow")
            };
            assert_eq!(t.destination, "13912345678");
            assert!(t.dropped_udh, "a concatenated part has its header");
            let (_, stored) = submit_of(hex);
            let text = stored.user_data.body.text().unwrap();
            let ucs2: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            assert_eq!(t.ucs2, ucs2);
        }
        // What the text flow cannot carry is refused with the reason, never altered.
        assert!(
            encode_part_for(&PHS, "0011000B916407281553F80004AA0100", 15)
                .unwrap_err()
                .contains("8-bit")
        );
        assert!(encode_part_for(&PHS, "0011000ED0C8329BFD06000400A70100", 15).is_err());
        assert!(encode_part_for(&PHS, "0011", 1)
            .unwrap_err()
            .contains("unreadable"));
    }

    #[test]
    fn the_smsc_is_dropped_only_where_the_dialect_says() {
        let mut chokes = GENERIC;
        chokes.faults.drops_reply_with_smsc = true;
        let mut opts = SubmitOptions::new(Address::parse_number("+8613912345678").unwrap());
        opts.smsc = Some(Address::parse_number("+8613800755500").unwrap());
        let p = encode_submit(&opts, "hi").unwrap().remove(0);
        let len = p.cmgs_length as u16;
        let Ok(Wire::Pdu { pdu_hex, length }) = encode_part_for(&chokes, &p.hex(), len) else {
            panic!()
        };
        assert!(pdu_hex.starts_with("00"), "{pdu_hex}");
        assert_eq!(length, len, "the AT+CMGS length never counts the SMSC part");
        assert_eq!(submit_of(&pdu_hex).0, None);
        assert_eq!(
            encode_part_for(&GENERIC, &p.hex(), len),
            Ok(Wire::Pdu {
                pdu_hex: p.hex(),
                length: len
            })
        );
    }

    #[test]
    fn a_pdu_the_codec_cannot_read_is_sent_as_stored_in_pdu_mode() {
        // Parts stored by callers with their own PDUs (and the oldest databases) still send.
        for d in ALL.iter().filter(|d| d.send == SendCommand::Cmgs) {
            assert_eq!(
                encode_part_for(d, "0011", 1),
                Ok(Wire::Pdu {
                    pdu_hex: "0011".into(),
                    length: 1
                }),
                "{}",
                d.name
            );
        }
        let mut chokes = GENERIC;
        chokes.faults.drops_reply_with_smsc = true;
        assert_eq!(
            encode_part_for(&chokes, "07911326040000F00011", 2),
            Ok(Wire::Pdu {
                pdu_hex: "000011".into(),
                length: 2
            })
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                        len in proptest::prelude::any::<u16>()) {
            let hex = hex::encode(bytes);
            for d in ALL {
                let _ = encode_part_for(d, &hex, len);
            }
            let _ = encode_part_for(&national_pdu_mode(), &hex, len);
        }
    }
}
