//! SMS-DELIVER (TS 23.040 9.2.2.1): what the service centre delivers to the phone. Invariants:
//! the first octet is derived from the fields (MTI 00, UDHI from the header); parse then emit
//! round-trips.

use super::address::Address;
use super::dcs::Dcs;
use super::error::{ctx, octet, PResult};
use super::scts::Scts;
use super::userdata::UserData;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deliver {
    /// TP-MMS inverted: true when the SC has more messages waiting (the bit is 0 then).
    pub more_messages_to_send: bool,
    /// TP-LP.
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-RP.
    pub reply_path: bool,
    pub sender: Address,
    pub pid: u8,
    pub dcs: Dcs,
    /// TP-SCTS: when the service centre received the message.
    pub scts: Scts,
    pub user_data: UserData,
}

impl Deliver {
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, Deliver> {
        let (rest, fo) = ctx("first octet", input, octet)?;
        let (rest, sender) = ctx("TP-OA", rest, Address::parse_tp)?;
        let (rest, pid) = ctx("TP-PID", rest, octet)?;
        let (rest, dcs) = ctx("TP-DCS", rest, octet)?;
        let dcs = Dcs::from_octet(dcs);
        let (rest, scts) = ctx("TP-SCTS", rest, Scts::parse)?;
        let (rest, user_data) = UserData::parse(rest, dcs.encoding(), fo & 0x40 != 0)?;
        Ok((
            rest,
            Deliver {
                more_messages_to_send: fo & 0x04 == 0,
                loop_prevention: fo & 0x08 != 0,
                status_report_indication: fo & 0x20 != 0,
                reply_path: fo & 0x80 != 0,
                sender,
                pid,
                dcs,
                scts,
                user_data,
            },
        ))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let mut fo = 0x00;
        if !self.more_messages_to_send {
            fo |= 0x04;
        }
        if self.loop_prevention {
            fo |= 0x08;
        }
        if self.status_report_indication {
            fo |= 0x20;
        }
        if self.user_data.udh.is_some() {
            fo |= 0x40;
        }
        if self.reply_path {
            fo |= 0x80;
        }
        out.push(fo);
        self.sender.emit_tp(out);
        out.push(self.pid);
        out.push(self.dcs.octet());
        self.scts.emit(out);
        self.user_data.emit(self.dcs.encoding(), out);
    }
}
