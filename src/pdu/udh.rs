//! User data header (TS 23.040 9.2.3.24): concatenation (8- and 16-bit reference), application
//! ports, and every other information element kept raw. Invariants: an element whose length does
//! not match its identifier is kept raw, so parse then emit gives back the same octets.

use super::error::{invalid, octet, take, PResult};

/// One information element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InformationElement {
    /// IEI 0x00: concatenated message, 8-bit reference.
    Concat8 { reference: u8, total: u8, seq: u8 },
    /// IEI 0x08: concatenated message, 16-bit reference.
    Concat16 { reference: u16, total: u8, seq: u8 },
    /// IEI 0x04: application ports, 8-bit addresses.
    Ports8 { destination: u8, source: u8 },
    /// IEI 0x05: application ports, 16-bit addresses.
    Ports16 { destination: u16, source: u16 },
    /// Anything else (language shift tables, EMS, ...), kept as it came.
    Other { iei: u8, data: Vec<u8> },
}

/// Concatenation facts, whichever reference width carried them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Concat {
    #[serde(rename = "ref")]
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
    #[serde(skip)]
    pub wide: bool,
}

/// Application ports, whichever width carried them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Ports {
    pub destination: u16,
    pub source: u16,
}

/// A user data header: its elements in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Udh {
    pub elements: Vec<InformationElement>,
}

impl Udh {
    /// A header carrying one concatenation element.
    pub fn concat(reference: u16, total: u8, seq: u8, wide: bool) -> Udh {
        let ie = if wide {
            InformationElement::Concat16 {
                reference,
                total,
                seq,
            }
        } else {
            InformationElement::Concat8 {
                reference: reference as u8,
                total,
                seq,
            }
        };
        Udh { elements: vec![ie] }
    }

    /// The first concatenation element, if any.
    pub fn concat_info(&self) -> Option<Concat> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::Concat8 {
                reference,
                total,
                seq,
            } => Some(Concat {
                reference: u16::from(reference),
                total,
                seq,
                wide: false,
            }),
            InformationElement::Concat16 {
                reference,
                total,
                seq,
            } => Some(Concat {
                reference,
                total,
                seq,
                wide: true,
            }),
            _ => None,
        })
    }

    /// The first application-port element, if any.
    pub fn ports(&self) -> Option<Ports> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::Ports8 {
                destination,
                source,
            } => Some(Ports {
                destination: u16::from(destination),
                source: u16::from(source),
            }),
            InformationElement::Ports16 {
                destination,
                source,
            } => Some(Ports {
                destination,
                source,
            }),
            _ => None,
        })
    }

    /// Octets the header takes including its UDHL octet.
    pub fn len_with_udhl(&self) -> usize {
        1 + self
            .elements
            .iter()
            .map(|e| 2 + e.data_len())
            .sum::<usize>()
    }

    /// Parses UDHL and the elements; `input` starts at UDHL.
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, Udh> {
        let (rest, udhl) = octet(input)?;
        let (rest, mut body) = match take(rest, usize::from(udhl)) {
            Ok(v) => v,
            Err(_) => return invalid(input, "UDH", "header length runs past the user data"),
        };
        let mut elements = Vec::new();
        while !body.is_empty() {
            let at = body;
            let (r, iei) = octet(body)?;
            let (r, len) = match octet(r) {
                Ok(v) => v,
                Err(_) => return invalid(at, "UDH", "information element without its length"),
            };
            let (r, data) = match take(r, usize::from(len)) {
                Ok(v) => v,
                Err(_) => return invalid(at, "UDH", "information element runs past the header"),
            };
            elements.push(InformationElement::from_raw(iei, data));
            body = r;
        }
        Ok((rest, Udh { elements }))
    }

    /// Writes UDHL and the elements.
    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push((self.len_with_udhl() - 1).min(255) as u8);
        for e in &self.elements {
            e.emit(out);
        }
    }
}

impl InformationElement {
    fn from_raw(iei: u8, d: &[u8]) -> InformationElement {
        match (iei, d) {
            (0x00, &[reference, total, seq]) => InformationElement::Concat8 {
                reference,
                total,
                seq,
            },
            (0x08, &[r1, r2, total, seq]) => InformationElement::Concat16 {
                reference: u16::from_be_bytes([r1, r2]),
                total,
                seq,
            },
            (0x04, &[destination, source]) => InformationElement::Ports8 {
                destination,
                source,
            },
            (0x05, &[d1, d2, s1, s2]) => InformationElement::Ports16 {
                destination: u16::from_be_bytes([d1, d2]),
                source: u16::from_be_bytes([s1, s2]),
            },
            _ => InformationElement::Other {
                iei,
                data: d.to_vec(),
            },
        }
    }

    fn data_len(&self) -> usize {
        match self {
            InformationElement::Concat8 { .. } => 3,
            InformationElement::Concat16 { .. } | InformationElement::Ports16 { .. } => 4,
            InformationElement::Ports8 { .. } => 2,
            InformationElement::Other { data, .. } => data.len().min(255),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            InformationElement::Concat8 {
                reference,
                total,
                seq,
            } => out.extend_from_slice(&[0x00, 3, *reference, *total, *seq]),
            InformationElement::Concat16 {
                reference,
                total,
                seq,
            } => {
                let r = reference.to_be_bytes();
                out.extend_from_slice(&[0x08, 4, r[0], r[1], *total, *seq]);
            }
            InformationElement::Ports8 {
                destination,
                source,
            } => out.extend_from_slice(&[0x04, 2, *destination, *source]),
            InformationElement::Ports16 {
                destination,
                source,
            } => {
                out.extend_from_slice(&[0x05, 4]);
                out.extend_from_slice(&destination.to_be_bytes());
                out.extend_from_slice(&source.to_be_bytes());
            }
            InformationElement::Other { iei, data } => {
                let d = data.get(..data.len().min(255)).unwrap_or_default();
                out.push(*iei);
                out.push(d.len() as u8);
                out.extend_from_slice(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_ports_and_unknown_round_trip() {
        // 8-bit concat (ModemManager test_pdu_multipart), 16-bit ports (WAP push 2948/9200),
        // a national language shift IE kept raw, and a concat IE with a wrong length kept raw.
        let raw = hex::decode("1500034C020105040B8423F0250101000201FF080102").unwrap();
        let (rest, udh) = Udh::parse(&raw).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            udh.concat_info(),
            Some(Concat {
                reference: 76,
                total: 2,
                seq: 1,
                wide: false
            })
        );
        assert_eq!(
            udh.ports(),
            Some(Ports {
                destination: 2948,
                source: 9200
            })
        );
        assert_eq!(udh.elements.len(), 5);
        let mut o = Vec::new();
        udh.emit(&mut o);
        assert_eq!(o, raw);
    }

    #[test]
    fn overrunning_elements_are_errors() {
        assert!(Udh::parse(&hex::decode("050003").unwrap()).is_err());
        assert!(Udh::parse(&hex::decode("0300050101").unwrap()).is_err());
    }
}
