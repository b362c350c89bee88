//! TP-UDL + TP-UD (TS 23.040 9.2.3.16, 9.2.3.24): the optional header and the body in GSM 7-bit
//! (septets, with fill bits after a header), UCS2 (UTF-16 big-endian, surrogate pairs) or 8-bit
//! data. Invariants: UDL counts septets for GSM 7-bit (header included) and octets otherwise;
//! emit never writes more than 140 octets of user data (a longer body is cut at a character
//! boundary), and parse never panics on any length.

use super::dcs::Encoding;
use super::error::{ctx, invalid, octet, shift, take, PResult};
use super::gsm7;
use super::udh::Udh;

/// The body of the user data: text (GSM 7-bit or UCS2) or 8-bit data kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    Text(String),
    Data(Vec<u8>),
}

impl Body {
    /// The text, or None for 8-bit data.
    pub fn text(&self) -> Option<&str> {
        match self {
            Body::Text(t) => Some(t),
            Body::Data(_) => None,
        }
    }
}

/// Header plus body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserData {
    pub udh: Option<Udh>,
    pub body: Body,
}

/// Most octets of user data a TPDU carries.
pub const MAX_UD_OCTETS: usize = 140;

impl UserData {
    /// Text without a header.
    pub fn text(text: impl Into<String>) -> UserData {
        UserData {
            udh: None,
            body: Body::Text(text.into()),
        }
    }

    /// Parses UDL and UD; `udhi` comes from the first octet.
    pub(crate) fn parse(input: &[u8], encoding: Encoding, udhi: bool) -> PResult<'_, UserData> {
        let (rest, udl) = ctx("TP-UDL", input, octet)?;
        let udl = usize::from(udl);
        let octets = match encoding {
            Encoding::Gsm7 => gsm7::packed_len(udl, 0),
            _ => udl,
        };
        let (rest, data) = ctx("TP-UD", rest, |i| take(i, octets))?;
        let after = rest.len();
        let (udh, hlen) = if udhi {
            let (_, udh) = ctx("UDH", data, Udh::parse).map_err(|e| shift(e, after))?;
            let hlen = udh.len_with_udhl();
            (Some(udh), hlen)
        } else {
            (None, 0)
        };
        let body = match encoding {
            Encoding::Gsm7 => {
                let header_septets = (hlen * 8).div_ceil(7);
                if header_septets > udl {
                    return invalid(input, "TP-UDL", "shorter than the user data header");
                }
                Body::Text(gsm7::decode(gsm7::unpack(
                    data,
                    header_septets * 7,
                    udl - header_septets,
                )))
            }
            Encoding::Ucs2 | Encoding::Data8 => {
                let Some(b) = data.get(hlen..) else {
                    return invalid(input, "TP-UDL", "shorter than the user data header");
                };
                if encoding == Encoding::Ucs2 {
                    Body::Text(decode_ucs2(b))
                } else {
                    Body::Data(b.to_vec())
                }
            }
        };
        Ok((rest, UserData { udh, body }))
    }

    /// Writes UDL and UD in `encoding`.
    pub(crate) fn emit(&self, encoding: Encoding, out: &mut Vec<u8>) {
        // A header longer than the user data can hold keeps only the elements that fit, so
        // UDHL always matches what is written.
        let fitted;
        let udh = match &self.udh {
            Some(h) if h.len_with_udhl() > MAX_UD_OCTETS => {
                let mut kept = Udh::default();
                for e in &h.elements {
                    kept.elements.push(e.clone());
                    if kept.len_with_udhl() > MAX_UD_OCTETS {
                        kept.elements.pop();
                        break;
                    }
                }
                fitted = kept;
                Some(&fitted)
            }
            other => other.as_ref(),
        };
        let hlen = udh.map_or(0, Udh::len_with_udhl);
        let udl_at = out.len();
        out.push(0);
        let start = out.len();
        if let Some(h) = udh {
            h.emit(out);
        }
        let udl = match encoding {
            Encoding::Gsm7 => {
                let header_septets = (hlen * 8).div_ceil(7);
                let fill = header_septets * 7 - hlen * 8;
                let room = (MAX_UD_OCTETS * 8 / 7).saturating_sub(header_septets);
                let mut septets = Vec::with_capacity(160);
                match &self.body {
                    Body::Text(t) => {
                        gsm7::encode_limited(t, room, &mut septets);
                    }
                    Body::Data(d) => {
                        septets.extend(d.iter().take(room).map(|b| b & 0x7F));
                    }
                }
                gsm7::pack_into(&septets, fill, out);
                header_septets + septets.len()
            }
            Encoding::Ucs2 | Encoding::Data8 => {
                let room = MAX_UD_OCTETS - hlen;
                match (&self.body, encoding) {
                    (Body::Text(t), Encoding::Ucs2) => {
                        let mut used = 0;
                        for c in t.chars() {
                            let mut units = [0u16; 2];
                            let units = c.encode_utf16(&mut units);
                            if used + units.len() * 2 > room {
                                break;
                            }
                            for u in units.iter() {
                                out.extend_from_slice(&u.to_be_bytes());
                            }
                            used += units.len() * 2;
                        }
                    }
                    (Body::Text(t), _) => {
                        let b = t.as_bytes();
                        out.extend_from_slice(b.get(..b.len().min(room)).unwrap_or_default());
                    }
                    (Body::Data(d), _) => {
                        out.extend_from_slice(d.get(..d.len().min(room)).unwrap_or_default());
                    }
                }
                out.len() - start
            }
        };
        if let Some(slot) = out.get_mut(udl_at) {
            *slot = udl.min(255) as u8;
        }
    }
}

/// UTF-16 big-endian to text; an unpaired surrogate becomes U+FFFD and an odd last octet is
/// dropped (some phones pad), so reading never fails.
pub(crate) fn decode_ucs2(b: &[u8]) -> String {
    let units = b.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}
