//! Sans-I/O SMS codec (3GPP TS 23.040 / 23.038): pure functions over bytes. Promises: no input
//! makes a parser panic (any byte string gives a typed value or a [`PduError`] naming the field
//! and the octet); `emit` derives flags from the fields, so parse then emit gives the same
//! octets for well-formed PDUs; unknown spec values are kept (`Dcs::Reserved`,
//! `InformationElement::Other`, `NumberingPlan::Reserved`); counting and splitting share one rule.
//!
//! # Public API (re-exported here; other modules use only these)
//!
//! Wire values, each with public fields:
//! - [`Sms`] `{ smsc: Option<Address>, tpdu: Tpdu }`: what AT+CMGS takes and +CMT/+CMGR/+CDS
//!   show. [`Sms::parse`], [`Sms::parse_hex`], [`Sms::emit`], [`Sms::to_hex`],
//!   [`Sms::tpdu_len`] (the AT+CMGS length).
//! - [`Tpdu`] = `Deliver(`[`Deliver`]`) | Submit(`[`Submit`]`) | StatusReport(`[`StatusReport`]`)`,
//!   with [`Tpdu::parse`] / [`Tpdu::emit`] for a TPDU without SMSC part (the +CDS line on many
//!   modems has one; use `Sms` when it does).
//! - [`Address`]: TON/NPI + digits or alphanumeric text. [`Address::parse_number`] ("+86..."
//!   -> 0x91, "075512345678" -> 0x81), [`Address::alphanumeric`], `Display` with "+" for
//!   international, [`Address::masked`] for logs.
//! - [`Scts`]: time stamp with zone; [`Scts::to_timestamp`], [`Scts::to_rfc3339`],
//!   [`Scts::from_timestamp`], [`Scts::from_zoned`], [`Scts::to_datetime`].
//! - [`Dcs`] (every coding group; `Dcs::Reserved(u8)`), [`Encoding`] (`gsm7`/`8bit`/`ucs2`),
//!   [`MessageClass`].
//! - [`Udh`] / [`InformationElement`] (concat 8/16, ports 8/16, `Other` raw), [`Concat`].
//! - [`UserData`] `{ udh, body: Body::Text | Body::Data }`.
//! - [`ValidityPeriod`] `Relative(u8) | Absolute(Scts) | Enhanced([u8; 7])`,
//!   [`ValidityPeriod::from_duration`].
//! - [`TpStatus`] with [`TpStatus::class`] -> [`StatusClass`] (Delivered / Temporary / Permanent /
//!   TemporaryFinal) and [`TpStatus::description`].
//!
//! Building messages:
//! - [`encode_submit`]`(&SubmitOptions, text) -> Result<Vec<EncodedPart>, PduError>`;
//!   [`EncodedPart`] `{ seq, total, pdu, cmgs_length, encoding }` with `hex()`.
//! - [`encode_deliver`]`(&DeliverOptions, text)`: concatenated DELIVERs for the virtual modem.
//! - [`StatusReport::new`] then `Sms { smsc, tpdu: Tpdu::StatusReport(r) }.emit()`.
//! - [`split_text`]`(text, ConcatKind::Concat8 | Concat16) -> SplitText { encoding, parts, units }`.
//! - [`count`]`(text) -> Count { encoding, parts, units }`: the billing rule (same as the encoder).
//!
//! Receiving: [`Reassembler`] (`push(Sms) -> Option<Assembled>`, `incomplete()`,
//! `take_incomplete()`).
//!
//! Errors: [`PduError`] (thiserror), with [`PduError::offset`]. Helpers: [`decode_hex`],
//! [`encode_hex`], [`is_gsm7`], [`septet_count`]. [`fuzz_decode`] is the fuzz target's body.
//!
//! Choices where the specifications leave room: emitted fill bits are zero (a received PDU
//! with non-zero fill bits parses, and emits with them cleared); an unpaired UTF-16 surrogate
//! reads as U+FFFD; TP-Status values 0x80-0xFF are treated as permanent errors; TP-MR of part n
//! is the options' reference + n - 1 (modems usually replace it).
//!
//! ```
//! use smsgate::pdu::{encode_submit, Address, Sms, SubmitOptions, Tpdu};
//! let opts = SubmitOptions::new(Address::parse_number("+8613910199192").unwrap());
//! let parts = encode_submit(&opts, "您好！").unwrap();
//! assert_eq!(parts[0].cmgs_length, 20);
//! let sms = Sms::parse(&parts[0].pdu).unwrap();
//! let Tpdu::Submit(s) = &sms.tpdu else { panic!() };
//! assert_eq!(s.user_data.body.text(), Some("您好！"));
//! ```

mod address;
mod dcs;
mod deliver;
mod error;
mod gsm7;
mod reassembly;
mod scts;
mod split;
mod status_report;
mod submit;
mod udh;
mod userdata;
mod validity;

pub use address::{Address, NumberingPlan, TypeOfNumber};
pub use dcs::{Alphabet, Dcs, Encoding, Indication, MessageClass, WaitingGroup};
pub use deliver::Deliver;
pub use error::{decode_hex, encode_hex, PduError};
pub use gsm7::{is_gsm7, septet_count};
pub use reassembly::{Assembled, Incomplete, Reassembler};
pub use scts::Scts;
pub use split::{
    count, encode_deliver, encode_submit, split_text, ConcatKind, Count, DeliverOptions,
    EncodedPart, SplitText, SubmitOptions,
};
pub use status_report::{StatusClass, StatusReport, TpStatus};
pub use submit::Submit;
pub use udh::{Concat, InformationElement, Ports, Udh};
pub use userdata::{Body, UserData, MAX_UD_OCTETS};
pub use validity::ValidityPeriod;

use error::{ctx, invalid, run_complete, PResult};

/// One TPDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tpdu {
    Deliver(Deliver),
    Submit(Submit),
    StatusReport(StatusReport),
}

impl Tpdu {
    /// Parses a TPDU (no SMSC part). MTI 00 is read as DELIVER, 01 as SUBMIT, 10 as
    /// STATUS-REPORT; 11 is reserved and an error.
    pub fn parse(bytes: &[u8]) -> Result<Tpdu, PduError> {
        run_complete(bytes, Tpdu::parse_nom)
    }

    pub(crate) fn parse_nom(input: &[u8]) -> PResult<'_, Tpdu> {
        // Peek: each TPDU parser reads the first octet again for its own flags.
        let (_, fo) = ctx("first octet", input, error::octet)?;
        match fo & 0x03 {
            0 => Deliver::parse(input).map(|(r, d)| (r, Tpdu::Deliver(d))),
            1 => Submit::parse(input).map(|(r, s)| (r, Tpdu::Submit(s))),
            2 => StatusReport::parse(input).map(|(r, s)| (r, Tpdu::StatusReport(s))),
            _ => invalid(
                input,
                "first octet",
                "message type indicator 11 is reserved",
            ),
        }
    }

    /// Appends the TPDU's octets.
    pub fn emit_into(&self, out: &mut Vec<u8>) {
        match self {
            Tpdu::Deliver(d) => d.emit(out),
            Tpdu::Submit(s) => s.emit(out),
            Tpdu::StatusReport(r) => r.emit(out),
        }
    }

    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(176);
        self.emit_into(&mut out);
        out
    }

    /// "deliver", "submit" or "status-report".
    pub fn kind(&self) -> &'static str {
        match self {
            Tpdu::Deliver(_) => "deliver",
            Tpdu::Submit(_) => "submit",
            Tpdu::StatusReport(_) => "status-report",
        }
    }

    /// The user data, when the TPDU carries any.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Tpdu::Deliver(d) => Some(&d.user_data),
            Tpdu::Submit(s) => Some(&s.user_data),
            Tpdu::StatusReport(r) => r.user_data.as_ref(),
        }
    }

    /// The DCS, when the TPDU carries one.
    pub fn dcs(&self) -> Option<Dcs> {
        match self {
            Tpdu::Deliver(d) => Some(d.dcs),
            Tpdu::Submit(s) => Some(s.dcs),
            Tpdu::StatusReport(r) => r.dcs,
        }
    }
}

/// An SMS as a modem takes and shows it: the SMSC part then the TPDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sms {
    /// None is written as "00" (use the modem's +CSCA).
    pub smsc: Option<Address>,
    pub tpdu: Tpdu,
}

impl Sms {
    /// Parses SMSC part + TPDU; trailing octets are an error.
    pub fn parse(bytes: &[u8]) -> Result<Sms, PduError> {
        run_complete(bytes, |input| {
            let (rest, smsc) = Address::parse_smsc(input)?;
            let (rest, tpdu) = Tpdu::parse_nom(rest)?;
            Ok((rest, Sms { smsc, tpdu }))
        })
    }

    /// Parses hex text (surrounding whitespace ignored).
    pub fn parse_hex(text: &str) -> Result<Sms, PduError> {
        Sms::parse(&decode_hex(text)?)
    }

    /// Appends the octets; returns the length of the SMSC part.
    pub fn emit_into(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        Address::emit_smsc(self.smsc.as_ref(), out);
        let smsc_len = out.len() - start;
        self.tpdu.emit_into(out);
        smsc_len
    }

    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(176);
        self.emit_into(&mut out);
        out
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.emit())
    }

    /// The AT+CMGS length: octets of the TPDU, excluding the SMSC part.
    pub fn tpdu_len(&self) -> usize {
        let mut out = Vec::with_capacity(176);
        let smsc_len = self.emit_into(&mut out);
        out.len() - smsc_len
    }
}

/// The body of the fuzz target (fuzz/fuzz_targets/pdu_decode.rs), also run by unit tests on
/// stable. Checks, for any input: parsing never panics; whatever parses emits octets that parse
/// again, and emitting is stable from then on (emit -> parse -> emit gives the same octets).
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(sms) = Sms::parse(data) {
        let out = sms.emit();
        let again = Sms::parse(&out);
        assert!(again.is_ok(), "emitted PDU does not parse: {again:?}");
        if let Ok(again) = again {
            assert_eq!(again.emit(), out, "emit is not stable");
        }
    }
    if let Ok(t) = Tpdu::parse(data) {
        let out = t.emit();
        assert!(Tpdu::parse(&out).is_ok(), "emitted TPDU does not parse");
    }
    let _ = Sms::parse_hex(&String::from_utf8_lossy(data));
}

#[cfg(test)]
mod tests;
