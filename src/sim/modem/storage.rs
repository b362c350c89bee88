//! Message storage of one virtual modem: the three memories (SIM "SM", phone "ME", and "SR"
//! for status reports), storing into them, the +CPMS line, and how a stored message is shown by
//! +CMGL/+CMGR in PDU and text mode and by `^HCMGR`.
//!
//! What must always hold: a memory never holds more than its capacity; a full memory (or the
//! `memory_full` fault) refuses to store; text mode never shows a PDU line.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::sim::modem) struct Stored {
    /// 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub(in crate::sim::modem) stat: u8,
    pub(in crate::sim::modem) pdu: Vec<u8>,
    pub(in crate::sim::modem) tpdu_len: usize,
}

/// SIM, phone memory, and the status-report memory ("SR": only as <mem1>, to read and delete).
pub(in crate::sim::modem) const MEMORIES: [&str; 3] = ["SM", "ME", "SR"];
pub(in crate::sim::modem) const CAPACITY: [usize; 3] = [30, 100, 20];
pub(in crate::sim::modem) const SR: usize = 2;

/// Header and PDU as one entry: the PDU line follows its header after a bare CR LF. In text
/// mode (`+CMGF=1`) the entry is the text-mode form of 27.005 (see [`text_entry`]): no real
/// modem shows a PDU line in text mode.
pub(in crate::sim::modem) fn list_line(
    text_mode: bool,
    idx: usize,
    s: &Stored,
    tag: &str,
) -> Vec<String> {
    if text_mode {
        return vec![text_entry(idx, s, tag)];
    }
    let head = if tag == "+CMGL" {
        format!("+CMGL: {idx},{},,{}", s.stat, s.tpdu_len)
    } else {
        format!("+CMGR: {},,{}", s.stat, s.tpdu_len)
    };
    vec![format!("{head}\r\n{}", hex::encode_upper(&s.pdu))]
}

/// `<stat>` of text mode (27.005 §3.1) for the PDU-mode code.
pub(in crate::sim::modem) fn text_stat(stat: u8) -> &'static str {
    match stat {
        0 => "REC UNREAD",
        1 => "REC READ",
        2 => "STO UNSENT",
        _ => "STO SENT",
    }
}

/// The PDU-mode code of a text-mode `<stat>` (`"ALL"` is 4).
pub(in crate::sim::modem) fn text_stat_code(s: &str) -> Option<u8> {
    let up = s.to_ascii_uppercase();
    ["REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL"]
        .iter()
        .position(|x| *x == up)
        .map(|i| i as u8)
}

/// A TP-SCTS as text mode shows it: `"yy/MM/dd,hh:mm:ss±zz"` (zz in quarter hours).
pub(in crate::sim::modem) fn text_scts(t: &crate::pdu::Scts) -> String {
    format!(
        "\"{:02}/{:02}/{:02},{:02}:{:02}:{:02}{}{:02}\"",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        if t.zone_negative { '-' } else { '+' },
        t.zone_quarters
    )
}

/// A number as text mode shows it, with its type of address.
pub(in crate::sim::modem) fn text_address(a: &crate::pdu::Address) -> (String, u8) {
    let toa = a.type_octet();
    let v = if toa & 0x70 == 0x10 {
        format!("+{}", a.value)
    } else {
        a.value.clone()
    };
    (v, toa)
}

/// One stored message in text mode (27.005 §3.4.2 +CMGL, §3.4.3 +CMGR, +CSDH=0 form):
/// SMS-DELIVER `+CMGR: <stat>,<oa>,[<alpha>],<scts>` (+CMGL: `<index>,<stat>,<oa>,[<alpha>],
/// <scts>`) then the text on its own line; SMS-STATUS-REPORT `+CMGR: <stat>,<fo>,<mr>,[<ra>],
/// [<tora>],<scts>,<dt>,<st>` with no text line. The text is the characters when the message
/// is in the GSM alphabet, else its UCS2 octets in hex (27.005 §3.1, <data> for a 16-bit
/// DCS). The stored PDU is read with the crate's codec (src/pdu); a PDU it cannot read shows
/// an empty entry rather than a PDU line.
pub(in crate::sim::modem) fn text_entry(idx: usize, s: &Stored, tag: &str) -> String {
    use crate::pdu::{Sms, Tpdu};
    let lead = if tag == "+CMGL" {
        format!("+CMGL: {idx},")
    } else {
        "+CMGR: ".to_string()
    };
    let stat = text_stat(s.stat);
    match Sms::parse(&s.pdu).map(|m| m.tpdu) {
        Ok(Tpdu::Deliver(d)) => {
            let (oa, _) = text_address(&d.sender);
            let text = d.user_data.body.text().unwrap_or_default().to_string();
            let data = if crate::pdu::is_gsm7(&text) {
                text
            } else {
                hex::encode_upper(
                    text.encode_utf16()
                        .flat_map(u16::to_be_bytes)
                        .collect::<Vec<u8>>(),
                )
            };
            format!(
                "{lead}\"{stat}\",\"{oa}\",,{}\r\n{data}",
                text_scts(&d.scts)
            )
        }
        Ok(Tpdu::StatusReport(r)) => {
            let (ra, tora) = text_address(&r.recipient);
            let fo = s
                .pdu
                .get(usize::from(s.pdu.first().copied().unwrap_or(0)) + 1);
            format!(
                "{lead}\"{stat}\",{},{},\"{ra}\",{tora},{},{},{}",
                fo.copied().unwrap_or(0x06),
                r.message_reference,
                text_scts(&r.scts),
                text_scts(&r.discharge_time),
                r.status.0
            )
        }
        _ => format!("{lead}\"{stat}\",,,"),
    }
}

/// One stored SMS-DELIVER as a CDMA/PHS module's `AT^HCMGR=<index>` answers it (Huawei CDMA AT
/// manuals; the same form ModemManager's Huawei CDMA plugin reads with
/// `"^HCMGR:%[0-9*#],%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d"`):
/// `^HCMGR:<callerID>,<year>,<month>,<day>,<hour>,<minute>,<second>,<lang>,<format>,<length>,
/// <prt>,<prv>,<type>,<stat>` CR LF, then <length> octets of text (format 1 ASCII, 6 UCS2
/// big-endian), the end marker (1A, or 00 1A for UCS2) and CR LF. The time is the service
/// centre's local time without a zone, as CDMA gives it. None for a status report.
pub(in crate::sim::modem) fn hcmgr_entry(s: &Stored) -> Option<Vec<u8>> {
    use crate::pdu::{Sms, Tpdu};
    let Ok(Tpdu::Deliver(d)) = Sms::parse(&s.pdu).map(|m| m.tpdu) else {
        return None;
    };
    let text = d.user_data.body.text().unwrap_or_default();
    let (fmt, data, end): (u8, Vec<u8>, &[u8]) = if text.is_ascii() {
        (1, text.as_bytes().to_vec(), &[0x1A])
    } else {
        let u = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        (6, u, &[0x00, 0x1A])
    };
    let t = d.scts;
    let mut w = crlf(&format!(
        "^HCMGR:{},{},{:02},{:02},{:02},{:02},{:02},0,{fmt},{},0,0,0,{}",
        d.sender.value,
        2000 + u32::from(t.year),
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        data.len(),
        u8::from(s.stat != 0)
    ));
    w.extend(data);
    w.extend(end);
    w.extend(b"\r\n");
    Some(w)
}

impl Engine {
    pub(in crate::sim::modem) fn store(&mut self, which: usize, s: Stored) -> Option<usize> {
        if self.memory_full {
            return None;
        }
        self.store_in(self.mems[which], s)
    }

    /// Stores into memory `m` (an index of [`MEMORIES`]) at its first free slot.
    pub(in crate::sim::modem) fn store_in(&mut self, m: usize, s: Stored) -> Option<usize> {
        let slot = self.storage[m].iter().position(Option::is_none)?;
        self.storage[m][slot] = Some(s);
        // 27.005 indexes start at 1 on most modems (Huawei, Quectel, SIMCom).
        Some(slot + 1)
    }

    pub(in crate::sim::modem) fn cpms_line(&self, query: bool) -> String {
        let part = |m: usize| {
            let used = self.storage[m].iter().flatten().count();
            if query {
                format!("\"{}\",{used},{}", MEMORIES[m], CAPACITY[m])
            } else {
                format!("{used},{}", CAPACITY[m])
            }
        };
        format!(
            "+CPMS: {},{},{}",
            part(self.mems[0]),
            part(self.mems[1]),
            part(self.mems[2])
        )
    }
}
