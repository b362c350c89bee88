//! Typed CMPP PDUs of both versions and their parse/emit. Owns the body layouts:
//!
//! | PDU | CMPP 2.0 | CMPP 3.0 |
//! |-----|----------|----------|
//! | CONNECT | Source_Addr 6, AuthenticatorSource 16, Version 1, Timestamp 4 | same |
//! | CONNECT_RESP | Status **1**, AuthenticatorISMG 16, Version 1 (18) | Status **4** ... (21) |
//! | SUBMIT | terminal ids 21, no types, Reserve 8 at the end | ids 32 + type 1, LinkID 20 |
//! | SUBMIT_RESP / DELIVER_RESP | Msg_Id 8, Result **1** | Msg_Id 8, Result **4** |
//! | DELIVER | Src_terminal_Id 21, Reserved 8 | Src_terminal_Id 32 + type 1, LinkID 20 |
//! | report in DELIVER | 60 bytes (Dest_terminal_Id 21) | 71 bytes (Dest_terminal_Id 32) |
//! | ACTIVE_TEST_RESP | Reserved 1 | same |
//!
//! Promises: [`Pdu::parse`] never panics and gives a typed value or a [`CmppError`] naming the
//! PDU and field; a body must be used up exactly. [`Pdu::emit`] writes exactly the length it
//! puts in Total_Length and refuses a field that does not fit rather than cutting it.
//! parse(emit(p)) == p for every `p` emit accepts (with the one normalisation below).
//! Unknown values are kept: [`MsgFmt::Other`], raw result/status codes (`u32`), unknown
//! command ids as [`Body::Other`] with their bytes. A status report is recognised by
//! Registered_Delivery = 1 and Msg_Length 60 or 71, whatever version the link speaks
//! (gateways send 60-byte reports on 3.0 links); any other content stays raw.
//! CONNECT_RESP is parsed by its length too (a 2.0-only gateway answers a 3.0 login with the
//! 2.0 layout), and emitted in the layout of the version given.

use super::header::{CommandId, Header, HEADER_LEN};
use super::wire::{Reader, Writer};
use super::CmppError;

/// The layout a link speaks. The Version byte itself travels as a `u8` (0x20, 0x30, and
/// also 0x21 and the like from old SPs); [`Version::from_byte`] picks the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V20,
    V30,
}

impl Version {
    /// 0x30 and above speak the 3.0 layouts, anything below the 2.0 ones.
    pub fn from_byte(b: u8) -> Version {
        if b >= 0x30 {
            Version::V30
        } else {
            Version::V20
        }
    }

    /// The Version byte a client sends for this layout.
    pub fn byte(self) -> u8 {
        match self {
            Version::V20 => 0x20,
            Version::V30 => 0x30,
        }
    }

    /// Size of a terminal id (Fee_terminal_Id, Dest_terminal_Id, Src_terminal_Id).
    pub fn terminal_id_len(self) -> usize {
        match self {
            Version::V20 => 21,
            Version::V30 => 32,
        }
    }
}

/// Msg_Fmt: how Msg_Content is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgFmt {
    Ascii,
    /// "Write card" (SIM data download).
    SimWrite,
    Binary,
    Ucs2,
    /// GB18030 / GBK Chinese (common in MO messages).
    Gbk,
    Other(u8),
}

impl MsgFmt {
    pub fn from_u8(v: u8) -> MsgFmt {
        match v {
            0 => MsgFmt::Ascii,
            3 => MsgFmt::SimWrite,
            4 => MsgFmt::Binary,
            8 => MsgFmt::Ucs2,
            15 => MsgFmt::Gbk,
            o => MsgFmt::Other(o),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            MsgFmt::Ascii => 0,
            MsgFmt::SimWrite => 3,
            MsgFmt::Binary => 4,
            MsgFmt::Ucs2 => 8,
            MsgFmt::Gbk => 15,
            MsgFmt::Other(o) => o,
        }
    }
}

/// CONNECT: the SP's login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The SP id (up to 6 octets).
    pub source_addr: Vec<u8>,
    pub authenticator_source: [u8; 16],
    /// 0x30 for 3.0, 0x20 for 2.0 (others kept).
    pub version: u8,
    /// MMDDHHMMSS as a decimal number.
    pub timestamp: u32,
}

/// CONNECT_RESP. Status: 0 ok, 1 bad structure, 2 illegal source address, 3 authentication
/// failed, 4 version too high, >4 other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResp {
    pub status: u32,
    pub authenticator_ismg: [u8; 16],
    pub version: u8,
}

/// SUBMIT: one message part from the SP. Fields that exist in one version only are ignored
/// by the other's emit (and read as zero/empty by its parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// 0 from the SP; the gateway assigns it in SUBMIT_RESP.
    pub msg_id: u64,
    pub pk_total: u8,
    pub pk_number: u8,
    /// 1 = a status report is wanted.
    pub registered_delivery: u8,
    pub msg_level: u8,
    /// 10 octets.
    pub service_id: Vec<u8>,
    pub fee_user_type: u8,
    /// 21 octets (2.0) / 32 (3.0).
    pub fee_terminal_id: Vec<u8>,
    /// 3.0 only.
    pub fee_terminal_type: u8,
    pub tp_pid: u8,
    pub tp_udhi: u8,
    pub msg_fmt: MsgFmt,
    /// 6 octets: the SP id.
    pub msg_src: Vec<u8>,
    /// 2 octets.
    pub fee_type: Vec<u8>,
    /// 6 octets.
    pub fee_code: Vec<u8>,
    /// 17 octets each.
    pub valid_time: Vec<u8>,
    pub at_time: Vec<u8>,
    /// 21 octets: the 106 access number plus extension.
    pub src_id: Vec<u8>,
    /// DestUsr_tl of them, 21 (2.0) / 32 (3.0) octets each.
    pub dest_terminal_ids: Vec<Vec<u8>>,
    /// 3.0 only.
    pub dest_terminal_type: u8,
    /// Msg_Length of them (at most 255 fit the field).
    pub msg_content: Vec<u8>,
    /// 2.0 only: Reserve 8, kept raw.
    pub reserve: [u8; 8],
    /// 3.0 only: LinkID 20.
    pub link_id: Vec<u8>,
}

/// SUBMIT_RESP and DELIVER_RESP share one shape: Msg_Id and a result (1 byte in 2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgIdResult {
    pub msg_id: u64,
    pub result: u32,
}

/// DELIVER: an MO message or a status report from the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    pub msg_id: u64,
    /// 21 octets: our 106 number plus the extension the reply was sent to.
    pub dest_id: Vec<u8>,
    pub service_id: Vec<u8>,
    pub tp_pid: u8,
    pub tp_udhi: u8,
    pub msg_fmt: MsgFmt,
    /// 21 (2.0) / 32 (3.0) octets.
    pub src_terminal_id: Vec<u8>,
    /// 3.0 only.
    pub src_terminal_type: u8,
    /// 1 = this is a status report (the content is then usually a [`StatusReport`]).
    pub registered_delivery: u8,
    pub content: DeliverContent,
    /// 2.0 only: Reserved 8, kept raw.
    pub reserved: [u8; 8],
    /// 3.0 only: LinkID 20.
    pub link_id: Vec<u8>,
}

/// Msg_Content of a DELIVER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverContent {
    /// An MO message's octets (coded per Msg_Fmt), or a report body of an unknown size.
    Message(Vec<u8>),
    Report(StatusReport),
}

/// The status report carried in a DELIVER's Msg_Content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The Msg_Id the SUBMIT_RESP gave.
    pub msg_id: u64,
    /// 7 ASCII octets: DELIVRD, EXPIRED, UNDELIV, ... or a vendor code (MA:0001).
    pub stat: Vec<u8>,
    /// YYMMDDHHMM, 10 octets each.
    pub submit_time: Vec<u8>,
    pub done_time: Vec<u8>,
    /// 21 octets in the 60-byte body, 32 in the 71-byte one.
    pub dest_terminal_id: Vec<u8>,
    pub smsc_sequence: u32,
    /// Which body size it came in / goes out in: V20 = 60 bytes, V30 = 71.
    pub layout: Version,
}

impl StatusReport {
    pub const LEN_V20: usize = 60;
    pub const LEN_V30: usize = 71;

    pub fn len(&self) -> usize {
        match self.layout {
            Version::V20 => Self::LEN_V20,
            Version::V30 => Self::LEN_V30,
        }
    }

    /// Never empty (a fixed-size body); here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True for "DELIVRD", the one stat that means delivered.
    pub fn delivered(&self) -> bool {
        self.stat == b"DELIVRD"
    }

    pub fn parse(b: &[u8]) -> Result<StatusReport, CmppError> {
        let layout = match b.len() {
            Self::LEN_V20 => Version::V20,
            Self::LEN_V30 => Version::V30,
            _ => {
                return Err(CmppError::ReportLength { len: b.len() });
            }
        };
        let mut r = Reader::new(b, "status report");
        let rep = StatusReport {
            msg_id: r.u64("Msg_Id")?,
            stat: r.text(7, "Stat")?,
            submit_time: r.text(10, "Submit_time")?,
            done_time: r.text(10, "Done_time")?,
            dest_terminal_id: r.text(layout.terminal_id_len(), "Dest_terminal_Id")?,
            smsc_sequence: r.u32("SMSC_sequence")?,
            layout,
        };
        r.finish()?;
        Ok(rep)
    }

    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), CmppError> {
        let mut w = Writer {
            out,
            what: "status report",
        };
        w.u64(self.msg_id);
        w.text(&self.stat, 7, "Stat")?;
        w.text(&self.submit_time, 10, "Submit_time")?;
        w.text(&self.done_time, 10, "Done_time")?;
        w.text(
            &self.dest_terminal_id,
            self.layout.terminal_id_len(),
            "Dest_terminal_Id",
        )?;
        w.u32(self.smsc_sequence);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, CmppError> {
        let mut v = Vec::with_capacity(self.len());
        self.emit(&mut v)?;
        Ok(v)
    }
}

/// A PDU body, by command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Connect(Connect),
    ConnectResp(ConnectResp),
    Terminate,
    TerminateResp,
    Submit(Submit),
    SubmitResp(MsgIdResult),
    Deliver(Deliver),
    DeliverResp(MsgIdResult),
    ActiveTest,
    /// One reserved byte per the spec; `None` when a gateway sends none.
    ActiveTestResp(Option<u8>),
    /// Any other command (QUERY, CANCEL, vendor ones), body kept raw. Its id must not be one
    /// of the typed commands above (emit refuses that, as parse would not give it back).
    Other {
        command_id: u32,
        body: Vec<u8>,
    },
}

impl Body {
    pub fn command_id(&self) -> CommandId {
        match self {
            Body::Connect(_) => CommandId::Connect,
            Body::ConnectResp(_) => CommandId::ConnectResp,
            Body::Terminate => CommandId::Terminate,
            Body::TerminateResp => CommandId::TerminateResp,
            Body::Submit(_) => CommandId::Submit,
            Body::SubmitResp(_) => CommandId::SubmitResp,
            Body::Deliver(_) => CommandId::Deliver,
            Body::DeliverResp(_) => CommandId::DeliverResp,
            Body::ActiveTest => CommandId::ActiveTest,
            Body::ActiveTestResp(_) => CommandId::ActiveTestResp,
            Body::Other { command_id, .. } => CommandId::from_u32(*command_id),
        }
    }
}

/// A whole PDU: the header's sequence id and a typed body (Total_Length and Command_Id follow
/// from the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub sequence_id: u32,
    pub body: Body,
}

/// Command ids that parse to a typed [`Body`] (so `Body::Other` must not carry them).
fn is_typed(id: CommandId) -> bool {
    !matches!(
        id,
        CommandId::Other(_)
            | CommandId::Query
            | CommandId::QueryResp
            | CommandId::Cancel
            | CommandId::CancelResp
    )
}

impl Pdu {
    pub fn new(sequence_id: u32, body: Body) -> Pdu {
        Pdu { sequence_id, body }
    }

    /// Parses one whole PDU (header included); Total_Length must equal `frame.len()`.
    pub fn parse(frame: &[u8], v: Version) -> Result<Pdu, CmppError> {
        let h = Header::parse(frame)?;
        if h.total_length as usize != frame.len() {
            return Err(CmppError::LengthMismatch {
                total_length: h.total_length,
                got: frame.len(),
            });
        }
        Self::parse_body(&h, &frame[HEADER_LEN..], v)
    }

    /// Parses a body whose header is already read.
    pub fn parse_body(h: &Header, body: &[u8], v: Version) -> Result<Pdu, CmppError> {
        let body = match h.command_id {
            CommandId::Connect => Body::Connect(parse_connect(body)?),
            CommandId::ConnectResp => Body::ConnectResp(parse_connect_resp(body)?),
            CommandId::Terminate => empty(body, "TERMINATE", Body::Terminate)?,
            CommandId::TerminateResp => empty(body, "TERMINATE_RESP", Body::TerminateResp)?,
            CommandId::Submit => Body::Submit(parse_submit(body, v)?),
            CommandId::SubmitResp => Body::SubmitResp(parse_msg_id_result(body, v, "SUBMIT_RESP")?),
            CommandId::Deliver => Body::Deliver(parse_deliver(body, v)?),
            CommandId::DeliverResp => {
                Body::DeliverResp(parse_msg_id_result(body, v, "DELIVER_RESP")?)
            }
            CommandId::ActiveTest => empty(body, "ACTIVE_TEST", Body::ActiveTest)?,
            CommandId::ActiveTestResp => match body {
                [] => Body::ActiveTestResp(None),
                [b] => Body::ActiveTestResp(Some(*b)),
                _ => {
                    return Err(CmppError::TrailingBytes {
                        pdu: "ACTIVE_TEST_RESP",
                        extra: body.len() - 1,
                    })
                }
            },
            other => Body::Other {
                command_id: other.to_u32(),
                body: body.to_vec(),
            },
        };
        Ok(Pdu {
            sequence_id: h.sequence_id,
            body,
        })
    }

    /// The PDU's bytes in layout `v`, header included.
    pub fn emit(&self, v: Version) -> Result<Vec<u8>, CmppError> {
        let mut out = vec![0u8; HEADER_LEN];
        match &self.body {
            Body::Connect(c) => emit_connect(c, &mut out)?,
            Body::ConnectResp(c) => emit_connect_resp(c, v, &mut out)?,
            Body::Terminate | Body::TerminateResp | Body::ActiveTest => {}
            Body::Submit(s) => emit_submit(s, v, &mut out)?,
            Body::SubmitResp(r) => emit_msg_id_result(r, v, &mut out, "SUBMIT_RESP")?,
            Body::Deliver(d) => emit_deliver(d, v, &mut out)?,
            Body::DeliverResp(r) => emit_msg_id_result(r, v, &mut out, "DELIVER_RESP")?,
            Body::ActiveTestResp(r) => out.extend(r.iter()),
            Body::Other { command_id, body } => {
                if is_typed(CommandId::from_u32(*command_id)) {
                    return Err(CmppError::TypedAsOther {
                        command_id: *command_id,
                    });
                }
                out.extend_from_slice(body);
            }
        }
        let total = u32::try_from(out.len()).map_err(|_| CmppError::ValueTooLarge {
            pdu: "header",
            field: "Total_Length",
            value: u64::MAX,
            max: u64::from(u32::MAX),
        })?;
        let mut head = Vec::with_capacity(HEADER_LEN);
        Header {
            total_length: total,
            command_id: self.body.command_id(),
            sequence_id: self.sequence_id,
        }
        .emit(&mut head);
        out[..HEADER_LEN].copy_from_slice(&head);
        Ok(out)
    }
}

fn empty(body: &[u8], pdu: &'static str, b: Body) -> Result<Body, CmppError> {
    if !body.is_empty() {
        return Err(CmppError::TrailingBytes {
            pdu,
            extra: body.len(),
        });
    }
    Ok(b)
}

fn parse_connect(b: &[u8]) -> Result<Connect, CmppError> {
    let mut r = Reader::new(b, "CONNECT");
    let c = Connect {
        source_addr: r.text(6, "Source_Addr")?,
        authenticator_source: r.array::<16>("AuthenticatorSource")?,
        version: r.u8("Version")?,
        timestamp: r.u32("Timestamp")?,
    };
    r.finish()?;
    Ok(c)
}

fn emit_connect(c: &Connect, out: &mut Vec<u8>) -> Result<(), CmppError> {
    let mut w = Writer {
        out,
        what: "CONNECT",
    };
    w.text(&c.source_addr, 6, "Source_Addr")?;
    w.bytes(&c.authenticator_source);
    w.u8(c.version);
    w.u32(c.timestamp);
    Ok(())
}

/// 18 bytes: 2.0 (1-byte Status); 21 bytes: 3.0 (4-byte Status).
fn parse_connect_resp(b: &[u8]) -> Result<ConnectResp, CmppError> {
    let mut r = Reader::new(b, "CONNECT_RESP");
    let status = match b.len() {
        18 => u32::from(r.u8("Status")?),
        21 => r.u32("Status")?,
        n => {
            return Err(CmppError::BodyLength {
                pdu: "CONNECT_RESP",
                len: n,
                expected: "18 (2.0) or 21 (3.0)",
            })
        }
    };
    let c = ConnectResp {
        status,
        authenticator_ismg: r.array::<16>("AuthenticatorISMG")?,
        version: r.u8("Version")?,
    };
    r.finish()?;
    Ok(c)
}

fn narrow(v: u32, pdu: &'static str, field: &'static str) -> Result<u8, CmppError> {
    u8::try_from(v).map_err(|_| CmppError::ValueTooLarge {
        pdu,
        field,
        value: u64::from(v),
        max: 255,
    })
}

fn emit_connect_resp(c: &ConnectResp, v: Version, out: &mut Vec<u8>) -> Result<(), CmppError> {
    let mut w = Writer {
        out,
        what: "CONNECT_RESP",
    };
    match v {
        Version::V20 => w.u8(narrow(c.status, "CONNECT_RESP", "Status")?),
        Version::V30 => w.u32(c.status),
    }
    w.bytes(&c.authenticator_ismg);
    w.u8(c.version);
    Ok(())
}

fn parse_msg_id_result(b: &[u8], v: Version, pdu: &'static str) -> Result<MsgIdResult, CmppError> {
    let mut r = Reader::new(b, pdu);
    let msg_id = r.u64("Msg_Id")?;
    let result = match v {
        Version::V20 => u32::from(r.u8("Result")?),
        Version::V30 => r.u32("Result")?,
    };
    r.finish()?;
    Ok(MsgIdResult { msg_id, result })
}

fn emit_msg_id_result(
    m: &MsgIdResult,
    v: Version,
    out: &mut Vec<u8>,
    pdu: &'static str,
) -> Result<(), CmppError> {
    let mut w = Writer { out, what: pdu };
    w.u64(m.msg_id);
    match v {
        Version::V20 => w.u8(narrow(m.result, pdu, "Result")?),
        Version::V30 => w.u32(m.result),
    }
    Ok(())
}

fn parse_submit(b: &[u8], v: Version) -> Result<Submit, CmppError> {
    let mut r = Reader::new(b, "SUBMIT");
    let tid = v.terminal_id_len();
    let v3 = v == Version::V30;
    let msg_id = r.u64("Msg_Id")?;
    let pk_total = r.u8("Pk_total")?;
    let pk_number = r.u8("Pk_number")?;
    let registered_delivery = r.u8("Registered_Delivery")?;
    let msg_level = r.u8("Msg_level")?;
    let service_id = r.text(10, "Service_Id")?;
    let fee_user_type = r.u8("Fee_UserType")?;
    let fee_terminal_id = r.text(tid, "Fee_terminal_Id")?;
    let fee_terminal_type = if v3 { r.u8("Fee_terminal_type")? } else { 0 };
    let tp_pid = r.u8("TP_pId")?;
    let tp_udhi = r.u8("TP_udhi")?;
    let msg_fmt = MsgFmt::from_u8(r.u8("Msg_Fmt")?);
    let msg_src = r.text(6, "Msg_src")?;
    let fee_type = r.text(2, "FeeType")?;
    let fee_code = r.text(6, "FeeCode")?;
    let valid_time = r.text(17, "ValId_Time")?;
    let at_time = r.text(17, "At_Time")?;
    let src_id = r.text(21, "Src_Id")?;
    let n = r.u8("DestUsr_tl")?;
    // Each id is read (and so bounds-checked) before the next: a huge count on a short body
    // ends in Truncated, not in a big allocation.
    let mut dest_terminal_ids = Vec::new();
    for _ in 0..n {
        dest_terminal_ids.push(r.text(tid, "Dest_terminal_Id")?);
    }
    let dest_terminal_type = if v3 { r.u8("Dest_terminal_type")? } else { 0 };
    let len = r.u8("Msg_Length")?;
    let msg_content = r.take(usize::from(len), "Msg_Content")?.to_vec();
    let (reserve, link_id) = if v3 {
        ([0; 8], r.text(20, "LinkID")?)
    } else {
        (r.array::<8>("Reserve")?, Vec::new())
    };
    r.finish()?;
    Ok(Submit {
        msg_id,
        pk_total,
        pk_number,
        registered_delivery,
        msg_level,
        service_id,
        fee_user_type,
        fee_terminal_id,
        fee_terminal_type,
        tp_pid,
        tp_udhi,
        msg_fmt,
        msg_src,
        fee_type,
        fee_code,
        valid_time,
        at_time,
        src_id,
        dest_terminal_ids,
        dest_terminal_type,
        msg_content,
        reserve,
        link_id,
    })
}

fn count_u8(n: usize, pdu: &'static str, field: &'static str) -> Result<u8, CmppError> {
    u8::try_from(n).map_err(|_| CmppError::ValueTooLarge {
        pdu,
        field,
        value: n as u64,
        max: 255,
    })
}

fn emit_submit(s: &Submit, v: Version, out: &mut Vec<u8>) -> Result<(), CmppError> {
    let tid = v.terminal_id_len();
    let v3 = v == Version::V30;
    let n = count_u8(s.dest_terminal_ids.len(), "SUBMIT", "DestUsr_tl")?;
    let len = count_u8(s.msg_content.len(), "SUBMIT", "Msg_Length")?;
    let mut w = Writer {
        out,
        what: "SUBMIT",
    };
    w.u64(s.msg_id);
    w.u8(s.pk_total);
    w.u8(s.pk_number);
    w.u8(s.registered_delivery);
    w.u8(s.msg_level);
    w.text(&s.service_id, 10, "Service_Id")?;
    w.u8(s.fee_user_type);
    w.text(&s.fee_terminal_id, tid, "Fee_terminal_Id")?;
    if v3 {
        w.u8(s.fee_terminal_type);
    }
    w.u8(s.tp_pid);
    w.u8(s.tp_udhi);
    w.u8(s.msg_fmt.to_u8());
    w.text(&s.msg_src, 6, "Msg_src")?;
    w.text(&s.fee_type, 2, "FeeType")?;
    w.text(&s.fee_code, 6, "FeeCode")?;
    w.text(&s.valid_time, 17, "ValId_Time")?;
    w.text(&s.at_time, 17, "At_Time")?;
    w.text(&s.src_id, 21, "Src_Id")?;
    w.u8(n);
    for d in &s.dest_terminal_ids {
        w.text(d, tid, "Dest_terminal_Id")?;
    }
    if v3 {
        w.u8(s.dest_terminal_type);
    }
    w.u8(len);
    w.bytes(&s.msg_content);
    if v3 {
        w.text(&s.link_id, 20, "LinkID")?;
    } else {
        w.bytes(&s.reserve);
    }
    Ok(())
}

fn parse_deliver(b: &[u8], v: Version) -> Result<Deliver, CmppError> {
    let mut r = Reader::new(b, "DELIVER");
    let v3 = v == Version::V30;
    let msg_id = r.u64("Msg_Id")?;
    let dest_id = r.text(21, "Dest_Id")?;
    let service_id = r.text(10, "Service_Id")?;
    let tp_pid = r.u8("TP_pid")?;
    let tp_udhi = r.u8("TP_udhi")?;
    let msg_fmt = MsgFmt::from_u8(r.u8("Msg_Fmt")?);
    let src_terminal_id = r.text(v.terminal_id_len(), "Src_terminal_Id")?;
    let src_terminal_type = if v3 { r.u8("Src_terminal_type")? } else { 0 };
    let registered_delivery = r.u8("Registered_Delivery")?;
    let len = r.u8("Msg_Length")?;
    let raw = r.take(usize::from(len), "Msg_Content")?;
    let content = match (registered_delivery, raw.len()) {
        (1, StatusReport::LEN_V20 | StatusReport::LEN_V30) => {
            DeliverContent::Report(StatusReport::parse(raw)?)
        }
        _ => DeliverContent::Message(raw.to_vec()),
    };
    let (reserved, link_id) = if v3 {
        ([0; 8], r.text(20, "LinkID")?)
    } else {
        (r.array::<8>("Reserved")?, Vec::new())
    };
    r.finish()?;
    Ok(Deliver {
        msg_id,
        dest_id,
        service_id,
        tp_pid,
        tp_udhi,
        msg_fmt,
        src_terminal_id,
        src_terminal_type,
        registered_delivery,
        content,
        reserved,
        link_id,
    })
}

fn emit_deliver(d: &Deliver, v: Version, out: &mut Vec<u8>) -> Result<(), CmppError> {
    let v3 = v == Version::V30;
    let content = match &d.content {
        DeliverContent::Message(m) => m.clone(),
        DeliverContent::Report(rep) => rep.to_bytes()?,
    };
    let len = count_u8(content.len(), "DELIVER", "Msg_Length")?;
    let mut w = Writer {
        out,
        what: "DELIVER",
    };
    w.u64(d.msg_id);
    w.text(&d.dest_id, 21, "Dest_Id")?;
    w.text(&d.service_id, 10, "Service_Id")?;
    w.u8(d.tp_pid);
    w.u8(d.tp_udhi);
    w.u8(d.msg_fmt.to_u8());
    w.text(&d.src_terminal_id, v.terminal_id_len(), "Src_terminal_Id")?;
    if v3 {
        w.u8(d.src_terminal_type);
    }
    w.u8(d.registered_delivery);
    w.u8(len);
    w.bytes(&content);
    if v3 {
        w.text(&d.link_id, 20, "LinkID")?;
    } else {
        w.bytes(&d.reserved);
    }
    Ok(())
}

impl Submit {
    /// A SUBMIT with every optional field empty/zero: fill in what the message needs.
    pub fn new(src_id: &[u8], dest: &[u8], msg_fmt: MsgFmt, msg_content: Vec<u8>) -> Submit {
        Submit {
            msg_id: 0,
            pk_total: 1,
            pk_number: 1,
            registered_delivery: 0,
            msg_level: 0,
            service_id: Vec::new(),
            fee_user_type: 0,
            fee_terminal_id: Vec::new(),
            fee_terminal_type: 0,
            tp_pid: 0,
            tp_udhi: 0,
            msg_fmt,
            msg_src: Vec::new(),
            fee_type: Vec::new(),
            fee_code: Vec::new(),
            valid_time: Vec::new(),
            at_time: Vec::new(),
            src_id: src_id.to_vec(),
            dest_terminal_ids: vec![dest.to_vec()],
            dest_terminal_type: 0,
            msg_content,
            reserve: [0; 8],
            link_id: Vec::new(),
        }
    }
}

impl Deliver {
    /// A DELIVER with the optional fields empty/zero.
    pub fn new(dest_id: &[u8], src_terminal_id: &[u8], content: DeliverContent) -> Deliver {
        Deliver {
            msg_id: 0,
            dest_id: dest_id.to_vec(),
            service_id: Vec::new(),
            tp_pid: 0,
            tp_udhi: 0,
            msg_fmt: MsgFmt::Ascii,
            src_terminal_id: src_terminal_id.to_vec(),
            src_terminal_type: 0,
            registered_delivery: u8::from(matches!(content, DeliverContent::Report(_))),
            content,
            reserved: [0; 8],
            link_id: Vec::new(),
        }
    }
}
