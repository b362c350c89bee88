//! The codec's one error type, [`PduError`], and the nom plumbing that produces it.
//! Invariant: every parse failure names the field and the octet offset (0-based, counted from
//! the first octet of the string handed to the parser) where the problem starts.

use nom::error::{ErrorKind, ParseError};
use nom::IResult;

/// What went wrong while parsing, encoding or reading hex. Offsets count octets from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// The input ended inside a field.
    #[error("octet {offset}: {field} is cut short (the PDU ends too early)")]
    Truncated { offset: usize, field: &'static str },
    /// A field holds a value the specification does not allow.
    #[error("octet {offset}: invalid {field}: {reason}")]
    Invalid {
        offset: usize,
        field: &'static str,
        reason: &'static str,
    },
    /// Octets left over after a complete TPDU.
    #[error("octet {offset}: {count} unexpected octet(s) after the end of the TPDU")]
    Trailing { offset: usize, count: usize },
    /// The hex text has a character that is not a hex digit (position counts characters).
    #[error("character {position}: not a hexadecimal digit")]
    Hex { position: usize },
    /// The hex text has an odd number of digits.
    #[error("odd number of hexadecimal digits ({digits}), a PDU is whole octets")]
    OddHex { digits: usize },
    /// A phone number given to the encoder is malformed.
    #[error("invalid phone number: {reason}")]
    Number { reason: &'static str },
    /// The text needs more parts than a concatenated message can have.
    #[error("the text needs {parts} parts; a concatenated message has at most 255")]
    TooLong { parts: usize },
}

impl PduError {
    /// The octet offset the error points at, when it is about a position in a PDU.
    pub fn offset(&self) -> Option<usize> {
        match self {
            PduError::Truncated { offset, .. }
            | PduError::Invalid { offset, .. }
            | PduError::Trailing { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// Internal nom error: positions are kept as "octets remaining to the end of the input", which
/// turns into an absolute offset once the caller knows the input's total length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PErr {
    pub remaining: usize,
    pub field: &'static str,
    pub reason: Option<&'static str>,
}

impl<'a> ParseError<&'a [u8]> for PErr {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        PErr {
            remaining: input.len(),
            field: "",
            reason: None,
        }
    }
    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, PErr>;

/// Runs `f`, naming `field` in its error unless an inner parser already named one.
pub(crate) fn ctx<'a, T>(
    field: &'static str,
    input: &'a [u8],
    f: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, T> {
    f(input).map_err(|e| {
        e.map(|mut p| {
            if p.field.is_empty() {
                p.field = field;
            }
            p
        })
    })
}

/// A failure for an invalid value found at the start of `at`.
pub(crate) fn invalid<'a, T>(
    at: &'a [u8],
    field: &'static str,
    reason: &'static str,
) -> PResult<'a, T> {
    Err(nom::Err::Failure(PErr {
        remaining: at.len(),
        field,
        reason: Some(reason),
    }))
}

/// Takes exactly `n` octets.
pub(crate) fn take(input: &[u8], n: usize) -> PResult<'_, &[u8]> {
    nom::bytes::complete::take(n)(input)
}

/// Takes one octet.
pub(crate) fn octet(input: &[u8]) -> PResult<'_, u8> {
    nom::number::complete::be_u8(input)
}

/// Shifts an error from a parser that ran on a sub-slice, `after` octets before the input's end.
pub(crate) fn shift(e: nom::Err<PErr>, after: usize) -> nom::Err<PErr> {
    e.map(|mut p| {
        p.remaining += after;
        p
    })
}

/// Turns an internal error into a [`PduError`] for an input of `total` octets.
pub(crate) fn finish(e: nom::Err<PErr>, total: usize) -> PduError {
    let p = match e {
        nom::Err::Error(p) | nom::Err::Failure(p) => p,
        nom::Err::Incomplete(_) => PErr {
            remaining: 0,
            field: "",
            reason: None,
        },
    };
    let offset = total.saturating_sub(p.remaining);
    let field = if p.field.is_empty() { "PDU" } else { p.field };
    match p.reason {
        Some(reason) => PduError::Invalid {
            offset,
            field,
            reason,
        },
        None => PduError::Truncated { offset, field },
    }
}

/// Runs a whole-input parser: converts errors and rejects trailing octets.
pub(crate) fn run_complete<'a, T>(
    input: &'a [u8],
    f: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, PduError> {
    match f(input) {
        Ok(([], v)) => Ok(v),
        Ok((rest, _)) => Err(PduError::Trailing {
            offset: input.len() - rest.len(),
            count: rest.len(),
        }),
        Err(e) => Err(finish(e, input.len())),
    }
}

/// Decodes hex text (whitespace around it ignored) into octets.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, PduError> {
    let t = text.trim();
    let b = t.as_bytes();
    let start = text.len() - text.trim_start().len();
    let mut out = Vec::with_capacity(b.len() / 2);
    let nib = |i: usize| -> Result<u8, PduError> {
        let c = b.get(i).copied().unwrap_or(0);
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(PduError::Hex {
                position: start + i,
            }),
        }
    };
    let mut i = 0;
    while i + 1 < b.len() {
        out.push((nib(i)? << 4) | nib(i + 1)?);
        i += 2;
    }
    if i < b.len() {
        nib(i)?;
        return Err(PduError::OddHex { digits: b.len() });
    }
    Ok(out)
}

/// Upper-case hex, as modems expect after AT+CMGS.
pub fn encode_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}
