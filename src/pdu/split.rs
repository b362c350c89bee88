//! Text -> parts: the encoding choice (GSM 7-bit when every character is in the default or
//! extension table, else UCS2), concatenation with a UDH, and the PDUs for SUBMIT and DELIVER.
//! Invariants: one rule counts and splits (so the bill always matches what is sent); a part never
//! ends inside an escape pair or a surrogate pair; parts hold at most 160/153 (152 with a 16-bit
//! reference) septets or 70/67 (66) UTF-16 units; `cmgs_length` is the TPDU length without the
//! SMSC part.

use serde::Serialize;

use super::address::Address;
use super::dcs::{Dcs, Encoding, MessageClass};
use super::deliver::Deliver;
use super::error::PduError;
use super::gsm7;
use super::scts::Scts;
use super::submit::Submit;
use super::udh::Udh;
use super::userdata::{Body, UserData};
use super::validity::ValidityPeriod;
use super::{Sms, Tpdu};

/// Width of the concatenation reference in the UDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConcatKind {
    /// IEI 0x00, 6-octet header: 153 septets / 67 UCS2 units per part.
    #[default]
    Concat8,
    /// IEI 0x08, 7-octet header: 152 septets / 66 UCS2 units per part.
    Concat16,
}

impl ConcatKind {
    fn wide(self) -> bool {
        self == ConcatKind::Concat16
    }
    fn header_octets(self) -> usize {
        match self {
            ConcatKind::Concat8 => 6,
            ConcatKind::Concat16 => 7,
        }
    }
}

/// A text cut into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitText {
    /// Gsm7 or Ucs2 (never Data8).
    pub encoding: Encoding,
    /// The parts' texts in order; one part (possibly empty) for a single message.
    pub parts: Vec<String>,
    /// Septets (GSM 7-bit, escapes counted twice) or UTF-16 units (UCS2) of the whole text.
    pub units: usize,
}

/// What a text costs: the encoding, the number of SMS parts (条) billed, and its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Count {
    pub encoding: Encoding,
    pub parts: usize,
    pub units: usize,
}

/// Units per part: (single message, each part of a concatenated one).
fn limits(encoding: Encoding, kind: ConcatKind) -> (usize, usize) {
    let room = 140 - kind.header_octets();
    match encoding {
        Encoding::Gsm7 => (160, room * 8 / 7),
        Encoding::Ucs2 => (70, room / 2),
        Encoding::Data8 => (140, room),
    }
}

/// The encoding for `text` and its cost per character.
fn plan(text: &str) -> (Encoding, usize) {
    match gsm7::septet_count(text) {
        Some(n) => (Encoding::Gsm7, n),
        None => (Encoding::Ucs2, text.encode_utf16().count()),
    }
}

fn cost(encoding: Encoding, c: char) -> usize {
    match encoding {
        Encoding::Gsm7 => gsm7::lookup(c).map_or(1, |s| s.cost()),
        _ => c.len_utf16(),
    }
}

/// Calls `f` with the byte range of each part.
fn for_each_part(
    text: &str,
    kind: ConcatKind,
    mut f: impl FnMut(usize, usize),
) -> (Encoding, usize) {
    let (encoding, units) = plan(text);
    let (single, per_part) = limits(encoding, kind);
    if units <= single {
        f(0, text.len());
        return (encoding, units);
    }
    let mut start = 0;
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let n = cost(encoding, c);
        if used + n > per_part {
            f(start, i);
            start = i;
            used = 0;
        }
        used += n;
    }
    f(start, text.len());
    (encoding, units)
}

/// Cuts `text` into parts with the encoder's rule.
pub fn split_text(text: &str, kind: ConcatKind) -> SplitText {
    let mut parts = Vec::new();
    let (encoding, units) = for_each_part(text, kind, |a, b| {
        parts.push(text.get(a..b).unwrap_or_default().to_string())
    });
    SplitText {
        encoding,
        parts,
        units,
    }
}

/// What `text` costs with the default (8-bit reference) concatenation.
pub fn count(text: &str) -> Count {
    let mut parts = 0;
    let (encoding, units) = for_each_part(text, ConcatKind::Concat8, |_, _| parts += 1);
    Count {
        encoding,
        parts,
        units,
    }
}

/// How to build an SMS-SUBMIT. Start from [`SubmitOptions::new`] and set what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    pub recipient: Address,
    /// None writes "00": the modem uses its +CSCA.
    pub smsc: Option<Address>,
    pub status_report: bool,
    pub validity: Option<ValidityPeriod>,
    pub class: Option<MessageClass>,
    pub reject_duplicates: bool,
    /// TP-MR of the first part; later parts add 1 each (modems usually overwrite it).
    pub message_reference: u8,
    /// Concatenation reference shared by the parts (only the low 8 bits with Concat8).
    pub concat_reference: u16,
    pub concat: ConcatKind,
}

impl SubmitOptions {
    pub fn new(recipient: Address) -> SubmitOptions {
        SubmitOptions {
            recipient,
            smsc: None,
            status_report: false,
            validity: None,
            class: None,
            reject_duplicates: false,
            message_reference: 0,
            concat_reference: 0,
            concat: ConcatKind::Concat8,
        }
    }
}

/// How to build SMS-DELIVERs (the virtual modem bank's inbound messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverOptions {
    pub sender: Address,
    pub smsc: Option<Address>,
    pub scts: Scts,
    pub class: Option<MessageClass>,
    pub status_report_indication: bool,
    pub concat_reference: u16,
    pub concat: ConcatKind,
}

impl DeliverOptions {
    pub fn new(sender: Address, scts: Scts) -> DeliverOptions {
        DeliverOptions {
            sender,
            smsc: None,
            scts,
            class: None,
            status_report_indication: false,
            concat_reference: 0,
            concat: ConcatKind::Concat8,
        }
    }
}

/// One PDU ready for the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPart {
    /// 1-based position; 1 of 1 for a single message.
    pub seq: u8,
    pub total: u8,
    /// SMSC part + TPDU, as written after AT+CMGS (in hex).
    pub pdu: Vec<u8>,
    /// The AT+CMGS length: TPDU octets, excluding the SMSC part.
    pub cmgs_length: usize,
    pub encoding: Encoding,
}

impl EncodedPart {
    /// The PDU in upper-case hex.
    pub fn hex(&self) -> String {
        super::encode_hex(&self.pdu)
    }
}

/// (seq, total, user data) of one part.
type PartData = (u8, u8, UserData);

/// Splits `text` and returns the encoding and each part's user data.
fn parts_of(
    text: &str,
    kind: ConcatKind,
    reference: u16,
) -> Result<(Encoding, Vec<PartData>), PduError> {
    let split = split_text(text, kind);
    let total = split.parts.len();
    if total > 255 {
        return Err(PduError::TooLong { parts: total });
    }
    let total = total as u8;
    let parts = split
        .parts
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let seq = i as u8 + 1;
            let udh = (total > 1).then(|| Udh::concat(reference, total, seq, kind.wide()));
            (
                seq,
                total,
                UserData {
                    udh,
                    body: Body::Text(t),
                },
            )
        })
        .collect();
    Ok((split.encoding, parts))
}

fn finish(
    smsc: Option<&Address>,
    tpdu: Tpdu,
    seq: u8,
    total: u8,
    encoding: Encoding,
) -> EncodedPart {
    let sms = Sms {
        smsc: smsc.cloned(),
        tpdu,
    };
    let mut pdu = Vec::with_capacity(176);
    let smsc_len = sms.emit_into(&mut pdu);
    EncodedPart {
        seq,
        total,
        cmgs_length: pdu.len() - smsc_len,
        pdu,
        encoding,
    }
}

/// Encodes `text` as one or more SMS-SUBMIT PDUs.
pub fn encode_submit(opts: &SubmitOptions, text: &str) -> Result<Vec<EncodedPart>, PduError> {
    let (encoding, parts) = parts_of(text, opts.concat, opts.concat_reference)?;
    let dcs = Dcs::for_text(encoding, opts.class);
    Ok(parts
        .into_iter()
        .map(|(seq, total, user_data)| {
            let submit = Submit {
                reject_duplicates: opts.reject_duplicates,
                reply_path: false,
                status_report_request: opts.status_report,
                message_reference: opts.message_reference.wrapping_add(seq - 1),
                recipient: opts.recipient.clone(),
                pid: 0,
                dcs,
                validity: opts.validity,
                user_data,
            };
            finish(
                opts.smsc.as_ref(),
                Tpdu::Submit(submit),
                seq,
                total,
                encoding,
            )
        })
        .collect())
}

/// Encodes `text` as one or more SMS-DELIVER PDUs (as a modem would show them after +CMT).
pub fn encode_deliver(opts: &DeliverOptions, text: &str) -> Result<Vec<EncodedPart>, PduError> {
    let (encoding, parts) = parts_of(text, opts.concat, opts.concat_reference)?;
    let dcs = Dcs::for_text(encoding, opts.class);
    Ok(parts
        .into_iter()
        .map(|(seq, total, user_data)| {
            let deliver = Deliver {
                more_messages_to_send: false,
                loop_prevention: false,
                status_report_indication: opts.status_report_indication,
                reply_path: false,
                sender: opts.sender.clone(),
                pid: 0,
                dcs,
                scts: opts.scts,
                user_data,
            };
            finish(
                opts.smsc.as_ref(),
                Tpdu::Deliver(deliver),
                seq,
                total,
                encoding,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_spec() {
        assert_eq!(count("").parts, 1);
        assert_eq!(count(&"a".repeat(160)).parts, 1);
        assert_eq!(count(&"a".repeat(161)).parts, 2);
        assert_eq!(count(&"a".repeat(306)).parts, 2);
        assert_eq!(count(&"a".repeat(307)).parts, 3);
        assert_eq!(count(&"中".repeat(70)).parts, 1);
        assert_eq!(count(&"中".repeat(71)).parts, 2);
        assert_eq!(count(&"中".repeat(134)).parts, 2);
        assert_eq!(count(&"中".repeat(135)).parts, 3);
        assert_eq!(
            count("{}"),
            Count {
                encoding: Encoding::Gsm7,
                parts: 1,
                units: 4
            }
        );
        assert_eq!(count("😀").units, 2);
    }

    #[test]
    fn pairs_are_never_split() {
        // 152 'a' then '€' (2 septets): the escape pair must move to part 2 whole.
        let t = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let s = split_text(&t, ConcatKind::Concat8);
        assert_eq!(s.parts[0], "a".repeat(152));
        assert!(s.parts[1].starts_with('€'));
        // 66 '中' then an emoji (surrogate pair): the pair moves to part 2 whole.
        let t = format!("{}😀{}", "中".repeat(66), "中".repeat(10));
        let s = split_text(&t, ConcatKind::Concat8);
        assert_eq!(s.parts[0], "中".repeat(66));
        assert!(s.parts[1].starts_with('😀'));
        let s = split_text(&"中".repeat(133), ConcatKind::Concat16);
        assert_eq!(s.parts.len(), 3);
        assert_eq!(s.parts[0].chars().count(), 66);
    }
}
