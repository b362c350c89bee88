//! SMS-SUBMIT (TS 23.040 9.2.2.2): what the phone sends to the service centre. Invariants: the
//! first octet is derived from the fields (MTI 01, VPF from `validity`, UDHI from the header), so
//! a value can never emit flags that contradict its contents; parse then emit round-trips.

use super::address::Address;
use super::dcs::Dcs;
use super::error::{ctx, octet, take, PResult};
use super::scts::Scts;
use super::userdata::UserData;
use super::validity::ValidityPeriod;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Submit {
    /// TP-RD: the SC rejects a duplicate (same MR and recipient) still held.
    pub reject_duplicates: bool,
    /// TP-RP.
    pub reply_path: bool,
    /// TP-SRR: a status report is requested.
    pub status_report_request: bool,
    /// TP-MR (modems usually replace it with their own counter).
    pub message_reference: u8,
    pub recipient: Address,
    /// TP-PID (0 = plain SME-to-SME).
    pub pid: u8,
    pub dcs: Dcs,
    pub validity: Option<ValidityPeriod>,
    pub user_data: UserData,
}

impl Submit {
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, Submit> {
        let (rest, fo) = ctx("first octet", input, octet)?;
        let (rest, message_reference) = ctx("TP-MR", rest, octet)?;
        let (rest, recipient) = ctx("TP-DA", rest, Address::parse_tp)?;
        let (rest, pid) = ctx("TP-PID", rest, octet)?;
        let (rest, dcs) = ctx("TP-DCS", rest, octet)?;
        let dcs = Dcs::from_octet(dcs);
        let (rest, validity) = ctx("TP-VP", rest, |i| match (fo >> 3) & 3 {
            0 => Ok((i, None)),
            2 => octet(i).map(|(r, v)| (r, Some(ValidityPeriod::Relative(v)))),
            3 => Scts::parse(i).map(|(r, s)| (r, Some(ValidityPeriod::Absolute(s)))),
            _ => take(i, 7).map(|(r, b)| {
                let mut e = [0u8; 7];
                e.copy_from_slice(b);
                (r, Some(ValidityPeriod::Enhanced(e)))
            }),
        })?;
        let (rest, user_data) = UserData::parse(rest, dcs.encoding(), fo & 0x40 != 0)?;
        Ok((
            rest,
            Submit {
                reject_duplicates: fo & 0x04 != 0,
                reply_path: fo & 0x80 != 0,
                status_report_request: fo & 0x20 != 0,
                message_reference,
                recipient,
                pid,
                dcs,
                validity,
                user_data,
            },
        ))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let mut fo = 0x01 | ValidityPeriod::vpf_bits(self.validity.as_ref());
        if self.reject_duplicates {
            fo |= 0x04;
        }
        if self.status_report_request {
            fo |= 0x20;
        }
        if self.user_data.udh.is_some() {
            fo |= 0x40;
        }
        if self.reply_path {
            fo |= 0x80;
        }
        out.push(fo);
        out.push(self.message_reference);
        self.recipient.emit_tp(out);
        out.push(self.pid);
        out.push(self.dcs.octet());
        if let Some(v) = &self.validity {
            v.emit(out);
        }
        self.user_data.emit(self.dcs.encoding(), out);
    }
}
