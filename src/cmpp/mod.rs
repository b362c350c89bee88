//! Sans-I/O codec of CMPP 2.0 / 3.0, China Mobile's SP-to-gateway (ISMG) protocol used for
//! 106 numbers: pure functions over bytes, no sockets, no clock. Promises: no input makes a
//! parser panic (any bytes give a typed value or a [`CmppError`] naming the PDU and field);
//! emit writes exactly the Total_Length it announces and refuses (never cuts) a field that
//! does not fit; parse(emit(p)) == p; unknown values are kept ([`MsgFmt::Other`], raw
//! result/status codes, [`Body::Other`] for commands we do not type, [`CommandId::Other`]).
//! Facts and sources: ../shared/CMPP.md (the CMPP 3.0 spec QB-GF-028-2003 and Wireshark's
//! dissector); the layouts of both versions are tabled in [`pdu`].
//!
//! Uses only std, its own submodules, `thiserror` and `md-5`, and only `super::` paths, so
//! the fuzz crate can compile it by `#[path]` (fuzz/src/lib.rs); keep it so. The client link
//! (later) and the virtual gateway (`sim::ismg`) both build on it and on nothing else shared.
//!
//! # Public API
//! - [`Pdu`] `{ sequence_id, body: `[`Body`]` }`: [`Pdu::parse`]`(frame, `[`Version`]`)`,
//!   [`Pdu::emit`]`(version)`. Bodies: [`Connect`] (with [`Connect::new`] /
//!   [`Connect::verify`]), [`ConnectResp`], [`Submit`] ([`Submit::new`]), [`MsgIdResult`]
//!   (SUBMIT_RESP, DELIVER_RESP), [`Deliver`] ([`Deliver::new`]) with [`DeliverContent`] =
//!   `Message | Report(`[`StatusReport`]`)`, ACTIVE_TEST, TERMINATE and responses.
//! - [`decode`]`(buf, version) -> (Option<Pdu>, consumed)`: the framer, with
//!   [`MAX_TOTAL_LENGTH`].
//! - [`authenticator_source`], [`authenticator_ismg`], [`timestamp`]: the MD5 login.
//! - [`MsgId`] `build` / `split`: the standard 64-bit Msg_Id packing.
//! - [`classify_submit_result`] -> [`SubmitClass`] and the table [`SUBMIT_RESULTS`];
//!   [`connect_status`] constants.
//! - [`fuzz_parse`]: the fuzz target's body (also run by the unit tests).

pub mod auth;
pub mod frame;
pub mod header;
pub mod msg_id;
pub mod pdu;
pub mod result;
mod wire;

pub use auth::{authenticator_ismg, authenticator_source, timestamp};
pub use frame::{decode, MAX_TOTAL_LENGTH, MIN_TOTAL_LENGTH};
pub use header::{CommandId, Header, HEADER_LEN, RESPONSE_BIT};
pub use msg_id::MsgId;
pub use pdu::{
    Body, Connect, ConnectResp, Deliver, DeliverContent, MsgFmt, MsgIdResult, Pdu, StatusReport,
    Submit, Version,
};
pub use result::{
    classify_submit_result, connect_status, describe_submit_result, SubmitClass, SUBMIT_RESULTS,
};

/// Errors of the CMPP codec. Each names the PDU and field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmppError {
    #[error("{pdu}: truncated at {field} (offset {offset})")]
    Truncated {
        pdu: &'static str,
        field: &'static str,
        offset: usize,
    },
    #[error("{pdu}: {extra} bytes after the last field")]
    TrailingBytes { pdu: &'static str, extra: usize },
    #[error("{pdu}: body of {len} bytes, expected {expected}")]
    BodyLength {
        pdu: &'static str,
        len: usize,
        expected: &'static str,
    },
    #[error("status report: Msg_Content of {len} bytes, expected 60 (2.0) or 71 (3.0)")]
    ReportLength { len: usize },
    #[error("{pdu}: {field} of {len} octets does not fit its {max}")]
    FieldTooLong {
        pdu: &'static str,
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{pdu}: {field} = {value} does not fit (max {max})")]
    ValueTooLarge {
        pdu: &'static str,
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("Total_Length {value} out of bounds {min}..={max}")]
    TotalLength { value: u32, min: u32, max: u32 },
    #[error("Total_Length {total_length} but the frame has {got} bytes")]
    LengthMismatch { total_length: u32, got: usize },
    #[error("command id {command_id:#010x} is typed; Body::Other cannot carry it")]
    TypedAsOther { command_id: u32 },
    #[error("PDU {command_id:#010x} seq {sequence_id} ({consumed} bytes): {source}")]
    Body {
        command_id: u32,
        sequence_id: u32,
        /// The whole frame's length: skip this much to go on with the next PDU.
        consumed: usize,
        source: Box<CmppError>,
    },
}

/// The fuzz target's body: any bytes through the framer and the parsers of both versions.
/// Panics only on a real bug: a parse that panics, or a parsed PDU whose emit does not parse
/// back to the same value.
pub fn fuzz_parse(data: &[u8]) {
    for v in [Version::V20, Version::V30] {
        if let Ok((Some(pdu), n)) = decode(data, v) {
            assert!(n >= HEADER_LEN && n <= data.len());
            // CONNECT_RESP is parsed by its length, so it goes back out in the layout it came in.
            let out_v = match &pdu.body {
                Body::ConnectResp(_) if n - HEADER_LEN == 21 => Version::V30,
                Body::ConnectResp(_) => Version::V20,
                _ => v,
            };
            let out = pdu.emit(out_v).expect("a parsed PDU emits");
            assert_eq!(out, data[..n], "emit(parse(b)) != b");
            let again = Pdu::parse(&out, v).expect("an emitted PDU parses");
            assert_eq!(again, pdu, "parse(emit(parse(b))) != parse(b)");
        }
        let _ = Pdu::parse(data, v);
        let _ = StatusReport::parse(data);
    }
    let _ = Header::parse(data);
}

#[cfg(test)]
mod tests;
