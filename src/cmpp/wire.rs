//! Byte-level reading and writing of CMPP fields: big-endian integers and fixed-length octet
//! strings padded on the right with 0x00. Owns the one rule for text fields: parsing strips
//! the trailing NULs only, emitting pads back with NULs, so emit(parse(field)) gives the same
//! octets. A [`Reader`] never reads past its slice (it returns [`CmppError::Truncated`]).

use super::CmppError;

/// Cursor over one PDU body.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Which PDU is being read, for error messages.
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CmppError> {
        if self.remaining() < n {
            return Err(CmppError::Truncated {
                pdu: self.what,
                field,
                offset: self.pos,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, CmppError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, CmppError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, CmppError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A fixed-length text field, trailing NULs removed.
    pub(crate) fn text(&mut self, n: usize, field: &'static str) -> Result<Vec<u8>, CmppError> {
        let b = self.take(n, field)?;
        let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
        Ok(b[..end].to_vec())
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], CmppError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    /// The body must be used up exactly: a PDU of the wrong size is a structure error, not
    /// something to guess around (the length decides, e.g., 2.0 vs 3.0 report bodies).
    pub(crate) fn finish(&self) -> Result<(), CmppError> {
        if self.remaining() != 0 {
            return Err(CmppError::TrailingBytes {
                pdu: self.what,
                extra: self.remaining(),
            });
        }
        Ok(())
    }
}

/// Appends fields to a PDU under construction.
pub(crate) struct Writer<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) what: &'static str,
}

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.out.extend_from_slice(v);
    }
    /// A fixed-length text field: the value, then NULs up to `n`; too long is an error, never
    /// a silent cut (a cut Dest_terminal_Id would send to somebody else).
    pub(crate) fn text(
        &mut self,
        v: &[u8],
        n: usize,
        field: &'static str,
    ) -> Result<(), CmppError> {
        if v.len() > n {
            return Err(CmppError::FieldTooLong {
                pdu: self.what,
                field,
                len: v.len(),
                max: n,
            });
        }
        self.out.extend_from_slice(v);
        self.out.resize(self.out.len() + (n - v.len()), 0);
        Ok(())
    }
}
