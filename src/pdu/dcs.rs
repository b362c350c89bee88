//! TP-Data-Coding-Scheme (TS 23.038 section 4) for every coding group. Invariants: every octet
//! parses to a value that emits the same octet again (reserved groups and reserved bit patterns
//! are kept in [`Dcs::Reserved`]); the alphabet used to read user data follows TS 23.038 (reserved
//! alphabets are read as GSM 7-bit, compressed text is kept as bytes).

use serde::Serialize;

/// Message class (TS 23.038): 0 flash, 1 ME-specific, 2 SIM-specific, 3 TE-specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MessageClass {
    Class0,
    Class1,
    Class2,
    Class3,
}

impl MessageClass {
    pub fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::Class0,
            1 => Self::Class1,
            2 => Self::Class2,
            _ => Self::Class3,
        }
    }
    /// 0-3.
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// The alphabet bits (3-2) of the general coding groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alphabet {
    Gsm7,
    Data8,
    Ucs2,
    /// Bits 3-2 = 11: reserved, read as GSM 7-bit.
    Reserved,
}

/// How the user data is laid out and read (the JSON `encoding`: "gsm7", "8bit", "ucs2").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Encoding {
    #[serde(rename = "gsm7")]
    Gsm7,
    #[serde(rename = "8bit")]
    Data8,
    #[serde(rename = "ucs2")]
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Data8 => "8bit",
            Encoding::Ucs2 => "ucs2",
        }
    }
}

/// What a message-waiting indication stands for (bits 1-0 of groups 1100-1110).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Indication {
    Voicemail,
    Fax,
    Email,
    Other,
}

/// Message-waiting groups 1100 (discard), 1101 (store, GSM 7-bit), 1110 (store, UCS2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitingGroup {
    Discard,
    StoreGsm7,
    StoreUcs2,
}

/// A TP-DCS octet, interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dcs {
    /// Groups 00xx and 01xx (01xx = marked for automatic deletion).
    General {
        auto_delete: bool,
        compressed: bool,
        class: Option<MessageClass>,
        alphabet: Alphabet,
    },
    /// Groups 1100-1110.
    MessageWaiting {
        group: WaitingGroup,
        active: bool,
        indication: Indication,
    },
    /// Group 1111: GSM 7-bit or 8-bit data with a class.
    DataClass { data8: bool, class: MessageClass },
    /// Groups 1000-1011, and octets with reserved bits set; kept as they came.
    Reserved(u8),
}

impl Dcs {
    /// GSM 7-bit, no class (0x00).
    pub const GSM7: Dcs = Dcs::General {
        auto_delete: false,
        compressed: false,
        class: None,
        alphabet: Alphabet::Gsm7,
    };
    /// UCS2, no class (0x08).
    pub const UCS2: Dcs = Dcs::General {
        auto_delete: false,
        compressed: false,
        class: None,
        alphabet: Alphabet::Ucs2,
    };

    /// The DCS for text in `encoding` with an optional class.
    pub fn for_text(encoding: Encoding, class: Option<MessageClass>) -> Dcs {
        Dcs::General {
            auto_delete: false,
            compressed: false,
            class,
            alphabet: match encoding {
                Encoding::Gsm7 => Alphabet::Gsm7,
                Encoding::Data8 => Alphabet::Data8,
                Encoding::Ucs2 => Alphabet::Ucs2,
            },
        }
    }

    pub fn from_octet(b: u8) -> Dcs {
        match b >> 4 {
            0x0..=0x7 => {
                let class = (b & 0x10 != 0).then(|| MessageClass::from_bits(b));
                if class.is_none() && b & 0x03 != 0 {
                    return Dcs::Reserved(b);
                }
                Dcs::General {
                    auto_delete: b & 0x40 != 0,
                    compressed: b & 0x20 != 0,
                    class,
                    alphabet: match (b >> 2) & 3 {
                        0 => Alphabet::Gsm7,
                        1 => Alphabet::Data8,
                        2 => Alphabet::Ucs2,
                        _ => Alphabet::Reserved,
                    },
                }
            }
            0xC..=0xE if b & 0x04 == 0 => Dcs::MessageWaiting {
                group: match b >> 4 {
                    0xC => WaitingGroup::Discard,
                    0xD => WaitingGroup::StoreGsm7,
                    _ => WaitingGroup::StoreUcs2,
                },
                active: b & 0x08 != 0,
                indication: match b & 3 {
                    0 => Indication::Voicemail,
                    1 => Indication::Fax,
                    2 => Indication::Email,
                    _ => Indication::Other,
                },
            },
            0xF if b & 0x08 == 0 => Dcs::DataClass {
                data8: b & 0x04 != 0,
                class: MessageClass::from_bits(b),
            },
            _ => Dcs::Reserved(b),
        }
    }

    pub fn octet(&self) -> u8 {
        match *self {
            Dcs::General {
                auto_delete,
                compressed,
                class,
                alphabet,
            } => {
                let mut b = match alphabet {
                    Alphabet::Gsm7 => 0,
                    Alphabet::Data8 => 0x04,
                    Alphabet::Ucs2 => 0x08,
                    Alphabet::Reserved => 0x0C,
                };
                if auto_delete {
                    b |= 0x40;
                }
                if compressed {
                    b |= 0x20;
                }
                if let Some(c) = class {
                    b |= 0x10 | c.number();
                }
                b
            }
            Dcs::MessageWaiting {
                group,
                active,
                indication,
            } => {
                let g = match group {
                    WaitingGroup::Discard => 0xC0,
                    WaitingGroup::StoreGsm7 => 0xD0,
                    WaitingGroup::StoreUcs2 => 0xE0,
                };
                g | if active { 0x08 } else { 0 } | indication as u8
            }
            Dcs::DataClass { data8, class } => 0xF0 | if data8 { 0x04 } else { 0 } | class.number(),
            Dcs::Reserved(b) => b,
        }
    }

    /// How the user data is read: reserved alphabets and groups as GSM 7-bit (TS 23.038 4),
    /// compressed text as bytes.
    pub fn encoding(&self) -> Encoding {
        match *self {
            Dcs::General {
                compressed: true, ..
            } => Encoding::Data8,
            Dcs::General { alphabet, .. } => match alphabet {
                Alphabet::Data8 => Encoding::Data8,
                Alphabet::Ucs2 => Encoding::Ucs2,
                Alphabet::Gsm7 | Alphabet::Reserved => Encoding::Gsm7,
            },
            Dcs::MessageWaiting {
                group: WaitingGroup::StoreUcs2,
                ..
            } => Encoding::Ucs2,
            Dcs::MessageWaiting { .. } => Encoding::Gsm7,
            Dcs::DataClass { data8: true, .. } => Encoding::Data8,
            Dcs::DataClass { data8: false, .. } => Encoding::Gsm7,
            Dcs::Reserved(_) => Encoding::Gsm7,
        }
    }

    /// The message class, when the DCS carries one.
    pub fn class(&self) -> Option<MessageClass> {
        match *self {
            Dcs::General { class, .. } => class,
            Dcs::DataClass { class, .. } => Some(class),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_octet_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(Dcs::from_octet(b).octet(), b, "0x{b:02X}");
        }
    }

    #[test]
    fn groups_are_read_per_ts_23_038() {
        assert_eq!(Dcs::from_octet(0x08).encoding(), Encoding::Ucs2);
        assert_eq!(Dcs::from_octet(0x18).class(), Some(MessageClass::Class0));
        assert_eq!(Dcs::from_octet(0xF4).encoding(), Encoding::Data8);
        assert_eq!(Dcs::from_octet(0xF1).class(), Some(MessageClass::Class1));
        assert_eq!(Dcs::from_octet(0xE8).encoding(), Encoding::Ucs2);
        assert!(matches!(
            Dcs::from_octet(0xD8),
            Dcs::MessageWaiting {
                active: true,
                group: WaitingGroup::StoreGsm7,
                ..
            }
        ));
        assert_eq!(Dcs::from_octet(0x84), Dcs::Reserved(0x84));
        assert_eq!(Dcs::from_octet(0x84).encoding(), Encoding::Gsm7);
        assert_eq!(Dcs::from_octet(0x24).encoding(), Encoding::Data8);
    }
}
