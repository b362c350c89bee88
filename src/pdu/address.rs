//! Addresses (TS 23.040 9.1.2.5): the TP-OA / TP-DA / TP-RA form (length in semi-octets) and the
//! SMSC form (length in octets, TS 24.011 8.2.5.1). Invariants: TON and NPI are kept as found;
//! digits are the BCD semi-octets in order (F filler dropped); alphanumeric senders are GSM 7-bit
//! text; parse never panics and emit writes exactly the length it declares.

use std::fmt;

use super::error::{ctx, octet, take, PResult, PduError};
use super::gsm7;

/// Type of number (TON), bits 6-4 of the type-of-address octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TypeOfNumber {
    Unknown,
    International,
    National,
    NetworkSpecific,
    Subscriber,
    Alphanumeric,
    Abbreviated,
    Reserved,
}

impl TypeOfNumber {
    fn from_bits(b: u8) -> Self {
        match b & 7 {
            0 => Self::Unknown,
            1 => Self::International,
            2 => Self::National,
            3 => Self::NetworkSpecific,
            4 => Self::Subscriber,
            5 => Self::Alphanumeric,
            6 => Self::Abbreviated,
            _ => Self::Reserved,
        }
    }
    fn bits(self) -> u8 {
        self as u8
    }
}

/// Numbering plan identification (NPI), bits 3-0; unknown plans are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberingPlan {
    Unknown,
    /// E.164 telephone numbering, the usual one (1).
    Isdn,
    Data,
    Telex,
    National,
    Private,
    Ermes,
    Reserved(u8),
}

impl NumberingPlan {
    fn from_bits(b: u8) -> Self {
        match b & 0x0F {
            0 => Self::Unknown,
            1 => Self::Isdn,
            3 => Self::Data,
            4 => Self::Telex,
            8 => Self::National,
            9 => Self::Private,
            10 => Self::Ermes,
            v => Self::Reserved(v),
        }
    }
    fn bits(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Isdn => 1,
            Self::Data => 3,
            Self::Telex => 4,
            Self::National => 8,
            Self::Private => 9,
            Self::Ermes => 10,
            Self::Reserved(v) => v & 0x0F,
        }
    }
}

/// A phone number or alphanumeric sender with its type of address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub ton: TypeOfNumber,
    pub npi: NumberingPlan,
    /// Digits (0-9, `*`, `#`, `a`, `b`, `c` for BCD values A-E) without "+", or the text of
    /// an alphanumeric address.
    pub value: String,
}

const BCD: &[u8; 16] = b"0123456789*#abc\0";

impl Address {
    /// Parses a number as users write it. "+8613912345678" or "008613912345678" -> TON
    /// international (0x91, digits without the prefix); anything else ("075512345678",
    /// "13912345678", PHS and area-code numbers) -> TON unknown (0x81), digits as given.
    /// Spaces, '-', '(' and ')' are ignored; 1 to 20 digits are allowed (TS 23.040 9.1.2.5).
    pub fn parse_number(text: &str) -> Result<Address, PduError> {
        let t = text.trim();
        let (ton, rest) = if let Some(r) = t.strip_prefix('+') {
            (TypeOfNumber::International, r)
        } else if let Some(r) = t.strip_prefix("00") {
            (TypeOfNumber::International, r)
        } else {
            (TypeOfNumber::Unknown, t)
        };
        let mut value = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' | '*' | '#' => value.push(c),
                ' ' | '-' | '(' | ')' => {}
                _ => {
                    return Err(PduError::Number {
                        reason: "only digits, '*', '#' and a leading '+' are allowed",
                    })
                }
            }
        }
        if value.is_empty() {
            return Err(PduError::Number {
                reason: "no digits",
            });
        }
        if value.len() > 20 {
            return Err(PduError::Number {
                reason: "more than 20 digits",
            });
        }
        Ok(Address {
            ton,
            npi: NumberingPlan::Isdn,
            value,
        })
    }

    /// An alphanumeric address (TON 5, NPI 0), e.g. a bank's sender name. Up to 11 characters
    /// fit; characters outside the GSM alphabet are sent as '?'.
    pub fn alphanumeric(text: &str) -> Address {
        Address {
            ton: TypeOfNumber::Alphanumeric,
            npi: NumberingPlan::Unknown,
            value: text.to_string(),
        }
    }

    /// The type-of-address octet (bit 7 always set).
    pub fn type_octet(&self) -> u8 {
        0x80 | (self.ton.bits() << 4) | self.npi.bits()
    }

    /// Number with "+" for international, for logs only: middle digits masked
    /// ("+86139****5678").
    pub fn masked(&self) -> String {
        let s = self.to_string();
        let n = s.chars().count();
        if n <= 7 {
            return "*".repeat(n);
        }
        let head: String = s.chars().take(n - 8).collect();
        let tail: String = s.chars().skip(n - 4).collect();
        format!("{head}****{tail}")
    }

    fn is_alphanumeric(&self) -> bool {
        self.ton == TypeOfNumber::Alphanumeric
    }

    fn nibbles(&self) -> impl Iterator<Item = u8> + '_ {
        self.value
            .bytes()
            .filter_map(|c| BCD[..15].iter().position(|&d| d == c).map(|p| p as u8))
    }

    /// Parses TP-OA/TP-DA/TP-RA: length in semi-octets, type, value.
    pub(crate) fn parse_tp(input: &[u8]) -> PResult<'_, Address> {
        let (rest, len) = octet(input)?;
        let (rest, toa) = octet(rest)?;
        let (rest, body) = take(rest, (usize::from(len)).div_ceil(2))?;
        let ton = TypeOfNumber::from_bits(toa >> 4);
        let npi = NumberingPlan::from_bits(toa);
        let value = if ton == TypeOfNumber::Alphanumeric {
            gsm7::decode(gsm7::unpack(body, 0, usize::from(len) * 4 / 7))
        } else {
            bcd_digits(body, usize::from(len))
        };
        Ok((rest, Address { ton, npi, value }))
    }

    /// Parses the SMSC address that opens a PDU read from a modem: None when its length is 0.
    pub(crate) fn parse_smsc(input: &[u8]) -> PResult<'_, Option<Address>> {
        ctx("SMSC address", input, |input| {
            let (rest, len) = octet(input)?;
            if len == 0 {
                return Ok((rest, None));
            }
            let (rest, toa) = octet(rest)?;
            let (rest, body) = take(rest, usize::from(len) - 1)?;
            let ton = TypeOfNumber::from_bits(toa >> 4);
            let npi = NumberingPlan::from_bits(toa);
            let value = if ton == TypeOfNumber::Alphanumeric {
                gsm7::decode(gsm7::unpack(body, 0, body.len() * 8 / 7))
            } else {
                bcd_digits(body, body.len() * 2)
            };
            Ok((rest, Some(Address { ton, npi, value })))
        })
    }

    /// Emits the TP form.
    pub(crate) fn emit_tp(&self, out: &mut Vec<u8>) {
        if self.is_alphanumeric() {
            let mut septets = Vec::new();
            gsm7::encode_limited(&self.value, 11, &mut septets);
            out.push((septets.len() * 7).div_ceil(4) as u8);
            out.push(self.type_octet());
            gsm7::pack_into(&septets, 0, out);
        } else {
            let n = self.nibbles().take(20).count();
            out.push(n as u8);
            out.push(self.type_octet());
            self.pack_bcd(out);
        }
    }

    /// Emits the SMSC form (length in octets, including the type octet).
    pub(crate) fn emit_smsc(smsc: Option<&Address>, out: &mut Vec<u8>) {
        let Some(a) = smsc else {
            out.push(0);
            return;
        };
        let len_at = out.len();
        out.push(0);
        out.push(a.type_octet());
        if a.is_alphanumeric() {
            let mut septets = Vec::new();
            gsm7::encode_limited(&a.value, 11, &mut septets);
            gsm7::pack_into(&septets, 0, out);
        } else {
            a.pack_bcd(out);
        }
        let len = out.len() - len_at - 1;
        if let Some(slot) = out.get_mut(len_at) {
            *slot = len as u8;
        }
    }

    fn pack_bcd(&self, out: &mut Vec<u8>) {
        let mut it = self.nibbles().take(20);
        while let Some(lo) = it.next() {
            let hi = it.next().unwrap_or(0x0F);
            out.push(lo | (hi << 4));
        }
    }
}

/// Reads up to `count` BCD semi-octets, low nibble first; an F filler ends the number.
fn bcd_digits(body: &[u8], count: usize) -> String {
    let mut s = String::with_capacity(count);
    for i in 0..count {
        let b = body.get(i / 2).copied().unwrap_or(0xFF);
        let n = if i % 2 == 0 { b & 0x0F } else { b >> 4 };
        if n == 0x0F {
            break;
        }
        s.push(char::from(BCD[usize::from(n)]));
    }
    s
}

impl fmt::Display for Address {
    /// International numbers carry a leading "+"; others are shown as they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ton == TypeOfNumber::International {
            f.write_str("+")?;
        }
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_and_national_numbers() {
        let a = Address::parse_number("+8613912345678").unwrap();
        assert_eq!(a.type_octet(), 0x91);
        assert_eq!(a.to_string(), "+8613912345678");
        let mut o = Vec::new();
        a.emit_tp(&mut o);
        assert_eq!(hex::encode_upper(&o), "0D91683119325476F8");
        let p = Address::parse_number("075512345678").unwrap();
        assert_eq!(p.type_octet(), 0x81);
        assert_eq!(p.to_string(), "075512345678");
        assert_eq!(
            Address::parse_number("0086 139-1234-5678")
                .unwrap()
                .to_string(),
            "+8613912345678"
        );
        assert!(Address::parse_number("+86abc").is_err());
        assert!(Address::parse_number("+").is_err());
        assert_eq!(a.masked(), "+86139****5678");
    }

    #[test]
    fn alphanumeric_sender_round_trips() {
        let a = Address::alphanumeric("BANK");
        let mut o = Vec::new();
        a.emit_tp(&mut o);
        assert_eq!(o[1], 0xD0);
        let (_, b) = Address::parse_tp(&o).unwrap();
        assert_eq!(b, a);
    }
}
