//! Framing a TCP byte stream into PDUs: bytes in -> (Option<Pdu>, consumed). Too few bytes
//! for the header or for the length it announces is normal flow (`(None, 0)`: read more).
//! A Total_Length outside [`MIN_TOTAL_LENGTH`]..=[`MAX_TOTAL_LENGTH`] is an error naming the
//! field: the stream has lost its frame boundaries and the link must be dropped. A body that
//! does not parse is [`CmppError::Body`], which carries how much to skip, so the link can
//! answer or ignore that one PDU and go on.

use super::header::{Header, HEADER_LEN};
use super::pdu::{Pdu, Version};
use super::CmppError;

/// A PDU is at least its header.
pub const MIN_TOTAL_LENGTH: u32 = HEADER_LEN as u32;

/// The largest PDU accepted. A 3.0 SUBMIT to the spec's 99 recipients with 255 content
/// octets is 3,586 bytes; anything near this bound is already a broken stream, and the
/// bound keeps one bad length from making us buffer megabytes.
pub const MAX_TOTAL_LENGTH: u32 = 4096;

/// Takes the first PDU off `buf`. Returns `(Some(pdu), consumed)` or `(None, 0)` when more
/// bytes are needed.
pub fn decode(buf: &[u8], v: Version) -> Result<(Option<Pdu>, usize), CmppError> {
    if buf.len() < HEADER_LEN {
        return Ok((None, 0));
    }
    let h = Header::parse(buf)?;
    if !(MIN_TOTAL_LENGTH..=MAX_TOTAL_LENGTH).contains(&h.total_length) {
        return Err(CmppError::TotalLength {
            value: h.total_length,
            min: MIN_TOTAL_LENGTH,
            max: MAX_TOTAL_LENGTH,
        });
    }
    let n = h.total_length as usize;
    if buf.len() < n {
        return Ok((None, 0));
    }
    match Pdu::parse_body(&h, &buf[HEADER_LEN..n], v) {
        Ok(pdu) => Ok((Some(pdu), n)),
        Err(e) => Err(CmppError::Body {
            command_id: h.command_id.to_u32(),
            sequence_id: h.sequence_id,
            consumed: n,
            source: Box::new(e),
        }),
    }
}
