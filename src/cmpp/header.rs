//! The 12-byte CMPP header (Total_Length, Command_Id, Sequence_Id, all big-endian u32) and the
//! command ids. Unknown command ids are kept as [`CommandId::Other`], so a gateway's vendor
//! command can be answered or logged instead of killing the link.

use super::CmppError;

/// Size of the header; Total_Length counts it.
pub const HEADER_LEN: usize = 12;

/// The bit that turns a request's Command_Id into its response's.
pub const RESPONSE_BIT: u32 = 0x8000_0000;

/// Command_Id values of CMPP 2.0/3.0 (a response is the request's id | 0x80000000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandId {
    Connect,
    ConnectResp,
    Terminate,
    TerminateResp,
    Submit,
    SubmitResp,
    Deliver,
    DeliverResp,
    Query,
    QueryResp,
    Cancel,
    CancelResp,
    ActiveTest,
    ActiveTestResp,
    /// Any other value, kept as it came.
    Other(u32),
}

impl CommandId {
    pub fn from_u32(v: u32) -> CommandId {
        use CommandId::*;
        match v {
            0x0000_0001 => Connect,
            0x8000_0001 => ConnectResp,
            0x0000_0002 => Terminate,
            0x8000_0002 => TerminateResp,
            0x0000_0004 => Submit,
            0x8000_0004 => SubmitResp,
            0x0000_0005 => Deliver,
            0x8000_0005 => DeliverResp,
            0x0000_0006 => Query,
            0x8000_0006 => QueryResp,
            0x0000_0007 => Cancel,
            0x8000_0007 => CancelResp,
            0x0000_0008 => ActiveTest,
            0x8000_0008 => ActiveTestResp,
            other => Other(other),
        }
    }

    pub fn to_u32(self) -> u32 {
        use CommandId::*;
        match self {
            Connect => 0x0000_0001,
            ConnectResp => 0x8000_0001,
            Terminate => 0x0000_0002,
            TerminateResp => 0x8000_0002,
            Submit => 0x0000_0004,
            SubmitResp => 0x8000_0004,
            Deliver => 0x0000_0005,
            DeliverResp => 0x8000_0005,
            Query => 0x0000_0006,
            QueryResp => 0x8000_0006,
            Cancel => 0x0000_0007,
            CancelResp => 0x8000_0007,
            ActiveTest => 0x0000_0008,
            ActiveTestResp => 0x8000_0008,
            Other(v) => v,
        }
    }

    /// A response (bit 31 set).
    pub fn is_response(self) -> bool {
        self.to_u32() & RESPONSE_BIT != 0
    }
}

/// One PDU's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whole PDU length, header included.
    pub total_length: u32,
    pub command_id: CommandId,
    pub sequence_id: u32,
}

impl Header {
    /// Reads the first 12 bytes; fewer is [`CmppError::Truncated`]. Does not judge the
    /// length (the framer does, with its bounds).
    pub fn parse(b: &[u8]) -> Result<Header, CmppError> {
        if b.len() < HEADER_LEN {
            return Err(CmppError::Truncated {
                pdu: "header",
                field: "header",
                offset: b.len(),
            });
        }
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(Header {
            total_length: u(0),
            command_id: CommandId::from_u32(u(4)),
            sequence_id: u(8),
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.total_length.to_be_bytes());
        out.extend_from_slice(&self.command_id.to_u32().to_be_bytes());
        out.extend_from_slice(&self.sequence_id.to_be_bytes());
    }
}
