//! Msg_Id: the 64-bit id a gateway gives each submitted part, in the standard packing (high
//! to low): month 4 bits, day 5, hour 5, minute 6, second 6, gateway code 22, sequence 16.
//! It travels as 8 octets big-endian. [`MsgId::split`] never fails (any u64 has fields, a
//! foreign gateway's odd id included); [`MsgId::build`] masks each field to its width so it
//! cannot spill into its neighbour.

/// The fields of a Msg_Id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgId {
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// The ISMG code (22 bits).
    pub gateway: u32,
    pub sequence: u16,
}

impl MsgId {
    pub fn build(&self) -> u64 {
        (u64::from(self.month) & 0xF) << 60
            | (u64::from(self.day) & 0x1F) << 55
            | (u64::from(self.hour) & 0x1F) << 50
            | (u64::from(self.minute) & 0x3F) << 44
            | (u64::from(self.second) & 0x3F) << 38
            | (u64::from(self.gateway) & 0x3F_FFFF) << 16
            | u64::from(self.sequence)
    }

    pub fn split(id: u64) -> MsgId {
        MsgId {
            month: ((id >> 60) & 0xF) as u8,
            day: ((id >> 55) & 0x1F) as u8,
            hour: ((id >> 50) & 0x1F) as u8,
            minute: ((id >> 44) & 0x3F) as u8,
            second: ((id >> 38) & 0x3F) as u8,
            gateway: ((id >> 16) & 0x3F_FFFF) as u32,
            sequence: (id & 0xFFFF) as u16,
        }
    }
}
