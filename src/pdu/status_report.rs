//! SMS-STATUS-REPORT (TS 23.040 9.2.2.3) and TP-Status (9.2.3.15). Invariants: the optional
//! TP-PI and the parameters it announces are kept (TP-PI itself is re-derived on emit, so its
//! reserved bits and extension octets are not); the meaning of every status value is derived
//! from its range, so unknown values still get a class; parse then emit round-trips.

use super::address::Address;
use super::dcs::Dcs;
use super::error::{ctx, octet, PResult};
use super::scts::Scts;
use super::userdata::UserData;

/// TP-Status, kept as its octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TpStatus(pub u8);

/// What a TP-Status means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusClass {
    /// 0x00-0x1F: transaction completed (delivered, forwarded, replaced).
    Delivered,
    /// 0x20-0x3F: temporary error, the SC is still trying.
    Temporary,
    /// 0x40-0x5F (and reserved values 0x80-0xFF, which TS 23.040 says to treat as a
    /// permanent error): the SC will not deliver.
    Permanent,
    /// 0x60-0x7F: temporary error but the SC has stopped trying: final.
    TemporaryFinal,
}

impl StatusClass {
    /// True when no further report will change the outcome.
    pub fn is_final(self) -> bool {
        self != StatusClass::Temporary
    }
}

impl TpStatus {
    pub fn class(self) -> StatusClass {
        match self.0 {
            0x00..=0x1F => StatusClass::Delivered,
            0x20..=0x3F => StatusClass::Temporary,
            0x60..=0x7F => StatusClass::TemporaryFinal,
            _ => StatusClass::Permanent,
        }
    }

    /// The meaning in words (TS 23.040 9.2.3.15).
    pub fn text(self) -> &'static str {
        match self.0 {
            0x00 => "delivered: short message received by the SME",
            0x01 => "forwarded to the SME, delivery not confirmed",
            0x02 => "replaced by the SC",
            0x03..=0x1F => "completed (reserved or SC-specific value)",
            0x20 | 0x60 => "congestion",
            0x21 | 0x61 => "SME busy",
            0x22 | 0x62 => "no response from SME",
            0x23 | 0x63 => "service rejected",
            0x24 | 0x64 | 0x44 => "quality of service not available",
            0x25 | 0x65 => "error in SME",
            0x26..=0x3F => "temporary error, SC still trying (reserved or SC-specific value)",
            0x40 => "remote procedure error",
            0x41 => "incompatible destination",
            0x42 => "connection rejected by SME",
            0x43 => "not obtainable",
            0x45 => "no interworking available",
            0x46 => "validity period expired",
            0x47 => "deleted by originating SME",
            0x48 => "deleted by SC administration",
            0x49 => "message does not exist",
            0x4A..=0x5F => "permanent error (reserved or SC-specific value)",
            0x66..=0x7F => "temporary error, SC stopped trying (reserved or SC-specific value)",
            _ => "reserved value, treated as a permanent error",
        }
    }

    /// `text()` with the "SC stopped trying" / "SC still trying" qualifier for 0x20-0x25 and
    /// 0x60-0x65.
    pub fn description(self) -> String {
        match self.0 {
            0x20..=0x25 => format!("temporary error, SC still trying: {}", self.text()),
            0x60..=0x65 => format!("temporary error, SC stopped trying: {}", self.text()),
            0x40..=0x49 => format!("permanent error: {}", self.text()),
            _ => self.text().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusReport {
    /// TP-MMS inverted: true when the SC has more messages waiting.
    pub more_messages_to_send: bool,
    /// TP-LP.
    pub loop_prevention: bool,
    /// TP-SRQ: the report answers an SMS-COMMAND (true) or an SMS-SUBMIT (false).
    pub status_report_qualifier: bool,
    /// TP-MR of the SUBMIT this report is about (the modem's +CMGS answer).
    pub message_reference: u8,
    pub recipient: Address,
    /// TP-SCTS of the submitted message.
    pub scts: Scts,
    /// TP-DT: when the status was reached (delivered, or the last attempt).
    pub discharge_time: Scts,
    pub status: TpStatus,
    /// TP-PID when TP-PI announces it.
    pub pid: Option<u8>,
    /// TP-DCS when TP-PI announces it.
    pub dcs: Option<Dcs>,
    /// TP-UDL/UD when TP-PI announces them.
    pub user_data: Option<UserData>,
}

impl StatusReport {
    /// A report about message `message_reference` to `recipient`, without optional parameters.
    pub fn new(
        message_reference: u8,
        recipient: Address,
        scts: Scts,
        discharge_time: Scts,
        status: TpStatus,
    ) -> StatusReport {
        StatusReport {
            more_messages_to_send: false,
            loop_prevention: false,
            status_report_qualifier: false,
            message_reference,
            recipient,
            scts,
            discharge_time,
            status,
            pid: None,
            dcs: None,
            user_data: None,
        }
    }

    pub(crate) fn parse(input: &[u8]) -> PResult<'_, StatusReport> {
        let (rest, fo) = ctx("first octet", input, octet)?;
        let (rest, message_reference) = ctx("TP-MR", rest, octet)?;
        let (rest, recipient) = ctx("TP-RA", rest, Address::parse_tp)?;
        let (rest, scts) = ctx("TP-SCTS", rest, Scts::parse)?;
        let (rest, discharge_time) = ctx("TP-DT", rest, Scts::parse)?;
        let (mut rest, status) = ctx("TP-ST", rest, octet)?;
        let mut report = StatusReport {
            more_messages_to_send: fo & 0x04 == 0,
            loop_prevention: fo & 0x08 != 0,
            status_report_qualifier: fo & 0x20 != 0,
            message_reference,
            recipient,
            scts,
            discharge_time,
            status: TpStatus(status),
            pid: None,
            dcs: None,
            user_data: None,
        };
        if rest.is_empty() {
            return Ok((rest, report));
        }
        let (r, mut pi) = ctx("TP-PI", rest, octet)?;
        let first_pi = pi;
        rest = r;
        // Extension octets (bit 7) announce nothing this version knows; skip them.
        while pi & 0x80 != 0 {
            let (r, next) = ctx("TP-PI", rest, octet)?;
            rest = r;
            pi = next;
        }
        if first_pi & 0x01 != 0 {
            let (r, v) = ctx("TP-PID", rest, octet)?;
            rest = r;
            report.pid = Some(v);
        }
        if first_pi & 0x02 != 0 {
            let (r, v) = ctx("TP-DCS", rest, octet)?;
            rest = r;
            report.dcs = Some(Dcs::from_octet(v));
        }
        if first_pi & 0x04 != 0 {
            let enc = report.dcs.unwrap_or(Dcs::GSM7).encoding();
            let (r, ud) = UserData::parse(rest, enc, fo & 0x40 != 0)?;
            rest = r;
            report.user_data = Some(ud);
        }
        // TS 23.040 9.2.3.27: a reserved TP-PI bit means more information follows the user
        // data, which a receiver discards.
        if first_pi & 0x78 != 0 {
            rest = &[];
        }
        Ok((rest, report))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let mut fo = 0x02;
        if !self.more_messages_to_send {
            fo |= 0x04;
        }
        if self.loop_prevention {
            fo |= 0x08;
        }
        if self.status_report_qualifier {
            fo |= 0x20;
        }
        if self.user_data.as_ref().is_some_and(|u| u.udh.is_some()) {
            fo |= 0x40;
        }
        out.push(fo);
        out.push(self.message_reference);
        self.recipient.emit_tp(out);
        self.scts.emit(out);
        self.discharge_time.emit(out);
        out.push(self.status.0);
        let pi = u8::from(self.pid.is_some())
            | u8::from(self.dcs.is_some()) << 1
            | u8::from(self.user_data.is_some()) << 2;
        if pi != 0 {
            out.push(pi);
            if let Some(p) = self.pid {
                out.push(p);
            }
            if let Some(d) = self.dcs {
                out.push(d.octet());
            }
            if let Some(u) = &self.user_data {
                u.emit(self.dcs.unwrap_or(Dcs::GSM7).encoding(), out);
            }
        }
    }
}
