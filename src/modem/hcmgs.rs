//! Turns an SMS-SUBMIT PDU (what the daemon hands every modem) into what a text-only
//! `^HCMGS` module takes: the destination digits and the text as UCS2 big-endian bytes.
//! Only the fields that flow needs are read (3GPP TS 23.040 §9.2.2.2; GSM 7-bit default
//! alphabet of TS 23.038 §6.2.1); the full codec is `crate::pdu`. What must always hold: no
//! input panics; anything the text flow cannot carry (alphanumeric destination, 8-bit data)
//! is an error naming what, never a silently altered message. A user-data header (concat
//! reference) cannot travel through ^HCMGS: it is dropped and each part arrives as its own
//! SMS, which is logged.

/// GSM 7-bit default alphabet, septet -> char (0x1B is the escape to the extension table).
const GSM7: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

fn gsm7_extension(septet: u8) -> Option<char> {
    Some(match septet {
        0x0a => '\u{0c}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2f => '\\',
        0x3c => '[',
        0x3d => '~',
        0x3e => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

/// What `^HCMGS` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    pub destination: String,
    pub ucs2: Vec<u8>,
    /// A user-data header was present and dropped.
    pub dropped_udh: bool,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| format!("PDU ends before {what}"))?;
        self.pos += 1;
        Ok(v)
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or_else(|| format!("PDU ends inside {what}"))?;
        self.pos += n;
        Ok(s)
    }
}

/// Reads destination and text out of `SMSC part + SMS-SUBMIT` in hex.
pub fn submit_to_text(pdu_hex: &str) -> Result<TextPart, String> {
    let bytes = hex::decode(pdu_hex.trim()).map_err(|e| format!("PDU is not hex: {e}"))?;
    let mut r = Reader { b: &bytes, pos: 0 };
    let smsc = r.u8("SMSC length")?;
    r.take(usize::from(smsc), "SMSC address")?;
    let fo = r.u8("first octet")?;
    if fo & 0x03 != 0x01 {
        return Err(format!("not an SMS-SUBMIT (first octet {fo:#04x})"));
    }
    let udhi = fo & 0x40 != 0;
    let vpf = (fo >> 3) & 0x03;
    r.u8("TP-MR")?;
    let digits = r.u8("destination length")?;
    let toa = r.u8("destination type")?;
    if toa & 0x70 == 0x50 {
        return Err("alphanumeric destination".into());
    }
    let bcd = r.take(usize::from(digits).div_ceil(2), "destination")?;
    let mut destination = String::new();
    for d in bcd
        .iter()
        .flat_map(|b| [b & 0x0f, b >> 4])
        .take(usize::from(digits))
    {
        match d {
            0..=9 => destination.push(char::from(b'0' + d)),
            _ => return Err(format!("destination digit {d:#x} is not 0-9")),
        }
    }
    if toa & 0x70 == 0x10 {
        destination.insert(0, '+');
    }
    r.u8("TP-PID")?;
    let dcs = r.u8("TP-DCS")?;
    match vpf {
        0 => {}
        2 => {
            r.u8("TP-VP")?;
        }
        _ => {
            r.take(7, "TP-VP")?;
        }
    }
    let udl = usize::from(r.u8("TP-UDL")?);
    let ud = &bytes.get(r.pos..).unwrap_or_default();
    // General data coding group (00xx): bits 3-2 give the alphabet; 1111 xxxx: bit 2.
    let alphabet = match dcs >> 4 {
        0x0..=0x3 => (dcs >> 2) & 0x03,
        0xf => (dcs >> 2) & 0x01,
        0xe => 2,
        _ => 0,
    };
    if dcs >> 4 <= 0x3 && dcs & 0x20 != 0 {
        return Err("compressed user data".into());
    }
    let udhl = if udhi {
        usize::from(*ud.first().ok_or("user data header missing")?) + 1
    } else {
        0
    };
    let ucs2 = match alphabet {
        0 => {
            let fill = if udhi { (7 - (udhl * 8) % 7) % 7 } else { 0 };
            let skip_septets = if udhi { (udhl * 8 + fill) / 7 } else { 0 };
            let septets = unpack_septets(ud, udl);
            let mut out = Vec::new();
            let mut esc = false;
            for s in septets.into_iter().skip(skip_septets) {
                let c = if esc {
                    esc = false;
                    gsm7_extension(s).unwrap_or(' ')
                } else if s == 0x1b {
                    esc = true;
                    continue;
                } else {
                    GSM7.get(usize::from(s)).copied().unwrap_or(' ')
                };
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.extend_from_slice(&u.to_be_bytes());
                }
            }
            out
        }
        2 => {
            let body = ud
                .get(udhl..udl.min(ud.len()))
                .ok_or("user data shorter than its header")?;
            if udl > ud.len() || body.len() % 2 != 0 {
                return Err("UCS2 user data has a bad length".into());
            }
            body.to_vec()
        }
        _ => return Err("8-bit data cannot be sent as text".into()),
    };
    Ok(TextPart {
        destination,
        ucs2,
        dropped_udh: udhi,
    })
}

/// Septets packed LSB first; `count` septets (never more than the bytes hold).
fn unpack_septets(bytes: &[u8], count: usize) -> Vec<u8> {
    let count = count.min(bytes.len() * 8 / 7);
    (0..count)
        .map(|i| {
            let bit = i * 7;
            let lo = u16::from(bytes.get(bit / 8).copied().unwrap_or(0));
            let hi = u16::from(bytes.get(bit / 8 + 1).copied().unwrap_or(0));
            (((lo | (hi << 8)) >> (bit % 8)) & 0x7f) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_submit_from_the_dreamfabric_example() {
        // "SMS and the PDU format" (dreamfabric.com): SUBMIT to 46708251358, text "hellohello".
        let t = submit_to_text("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap();
        assert_eq!(t.destination, "+46708251358");
        let text: String =
            char::decode_utf16(t.ucs2.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])))
                .map(|c| c.unwrap())
                .collect();
        assert_eq!(text, "hellohello");
        assert!(!t.dropped_udh);
    }

    #[test]
    fn ucs2_submit_to_a_national_number() {
        // SMSC "00", SUBMIT, MR 0, DA 12 digits national (0x81) 075512345678, PID 0, DCS 08,
        // no VP, UDL 4, "你好" (4F60 597D).
        let t = submit_to_text("0001000C817055214365870008044F60597D").unwrap();
        assert_eq!(t.destination, "075512345678");
        assert_eq!(t.ucs2, vec![0x4f, 0x60, 0x59, 0x7d]);
    }

    #[test]
    fn udh_is_dropped_and_reported() {
        // UCS2 with an 8-bit concat header 05 00 03 2A 02 01, then "你".
        let t = submit_to_text("0041000B918131523254F60008080500032A02014F60").unwrap();
        assert!(t.dropped_udh);
        assert_eq!(t.ucs2, vec![0x4f, 0x60]);
    }

    #[test]
    fn what_text_cannot_carry_is_an_error() {
        assert!(submit_to_text("0011000ED0C8329BFD06000400A70100").is_err()); // alphanumeric
        assert!(submit_to_text("0011000B916407281553F80004AA0100").is_err()); // 8-bit
        assert!(submit_to_text("0004").is_err()); // DELIVER
        assert!(submit_to_text("zz").is_err());
        assert!(submit_to_text("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = submit_to_text(&hex::encode(bytes));
        }
    }
}
