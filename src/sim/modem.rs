//! The sans-I/O engine of one virtual modem: bytes in, [`Action`]s out (bytes to write, timers
//! to arm, events to log). It plays the modem's side of 3GPP TS 27.007 / 27.005 in PDU mode,
//! shaped by a [`DialectProfile`]; `^HCMGS` dialects send in the vendor text mode instead
//! (`^HSMSSS`, `AT+CMGF=1`, `AT^HCMGS="<number>"`, UCS2 bytes + 00 1A, `OK`, then the
//! `^HCMGSS`/`^HCMGSF` outcome URC, as Huawei MC323-class modules do). In text mode
//! (`+CMGF=1`) reads and listings answer in the 27.005 text-mode form on every dialect, and the
//! `^HCMGS` dialects read with `^HCMGR` (stored PDUs are shown by reading them with the crate's
//! codec, src/pdu; nothing from src/at or src/modem is used). Time never passes
//! inside the engine: the driver arms the timers it asks for and calls [`Engine::fire`] when
//! they expire, so tests control time. A modem may have a second AT port ([`Engine::add_port`],
//! [`Engine::feed_port`]): each port has its own line state (echo, input, prompt, busy), the
//! SIM, storage, settings and network are the modem's; unsolicited lines go to [`PRIMARY`].
//! Faults that live at this level: a late final answer (`late_next`), a vanishing port after
//! the network took a submit (`unplug_after_submit`), a reboot ([`Engine::power_on`] +
//! [`Engine::boot_burst`]), and status reports kept in "SR" when nobody listens.
//! Invariants: every command line gets exactly one final result (OK / ERROR / +CME ERROR /
//! +CMS ERROR) or a prompt, save the one thing the `smsc_drop` quirk exists to show (a PDU
//! with an SMSC after the prompt gets no answer); unsolicited lines never split a response
//! (they wait while a command or a prompt is in progress); a held-back (`late`) answer is
//! written before anything typed after it is answered; no input makes the engine panic.

use std::time::Duration;

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::dialect::{DialectProfile, IccidCommand, SendCommand};
use super::identity::Identity;
use super::sms;

/// Index of one of a modem's AT ports: [`PRIMARY`] (DIR/modemN, where unsolicited lines go)
/// or 1 (the second AT port DIR/modemN-at2 of a two-port module).
pub type Port = usize;

/// The port that carries unsolicited result codes (Quectel's default `AT+QURCCFG="urcport"`).
pub const PRIMARY: Port = 0;

/// Something the driver must do for the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these bytes to this port.
    Write(Port, Vec<u8>),
    /// The modem drops off the bus now, before its answer is written (the armed
    /// `unplug --after-submit`: the network already has the part).
    Unplug,
    /// Call [`Engine::fire`] with this timer after the delay.
    Arm(Duration, Timer),
    /// Append this event to the events log (the driver adds time and modem index).
    Event(Value),
}

/// Work the engine deferred to a later moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Timer {
    /// The network answered a submit: report +CMGS (or the injected failure).
    SubmitDone {
        port: Port,
        frame: sms::SubmitFrame,
        mr: u8,
        fail: Option<u16>,
        send: SendCommand,
    },
    /// The recipient's handset got it: the status report arrives.
    StatusReport {
        mr: u8,
        recipient: String,
        recipient_toa: u8,
        submitted: Timestamp,
    },
    /// The network's answer to a +CUSD request.
    Ussd,
    /// A final answer held back by `sim ctl late`: written now, then the input that queued
    /// behind it is answered in order.
    Answer { port: Port, bytes: Vec<u8> },
    /// The network answered a text-mode `^HCMGS`: `^HCMGSS:<mr>` or `^HCMGSF:<cause>`.
    TextDone {
        port: Port,
        to: String,
        text: String,
        mr: u8,
        fail: Option<u16>,
    },
}

/// How an injected `fail` rule fires.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    Once,
    Times(u32),
    Rate(f64),
    Always,
}

/// An injected network failure of submits: `+CMS ERROR: cms` per `mode`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FailRule {
    pub cms: u16,
    pub mode: FailMode,
}

/// Counters shown by `sim ctl status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub commands: u64,
    pub submitted: u64,
    pub failed: u64,
    pub rejected_pdus: u64,
    pub inbound: u64,
    pub status_reports: u64,
}

/// Final result of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Error,
    Cme(u16),
    Cms(u16),
}

enum Outcome {
    Ok(Vec<String>),
    /// Information text that is not all lines of UTF-8 (the raw UCS2 body of `^HCMGR`),
    /// written as given before OK.
    Raw(Vec<u8>),
    Fail(Fail),
    /// Send the prompt and wait for a PDU of this TPDU length.
    Prompt(PromptFor, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PromptFor {
    Send(SendCommand),
    Write,
    /// `^HCMGS="<to>"` in text mode; `ucs2` per `^HSMSSS` <fmt> 6 (else ASCII, <fmt> 1).
    Text {
        to: String,
        ucs2: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Command,
    Prompt(PromptFor, usize),
    /// A submit is with the network; input waits.
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    /// 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    stat: u8,
    pdu: Vec<u8>,
    tpdu_len: usize,
}

/// SIM, phone memory, and the status-report memory ("SR": only as <mem1>, to read and delete).
const MEMORIES: [&str; 3] = ["SM", "ME", "SR"];
const CAPACITY: [usize; 3] = [30, 100, 20];
const SR: usize = 2;

/// What belongs to one AT port rather than to the modem: each port of a two-port module has
/// its own echo setting, input buffer and command state (one port can sit at the prompt while
/// the other answers), and its own queue of lines held back while a command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    echo: bool,
    input: Vec<u8>,
    mode: Mode,
    pending_urcs: Vec<u8>,
}

impl Line {
    fn new() -> Line {
        Line {
            echo: true,
            input: Vec::new(),
            mode: Mode::Command,
            pending_urcs: Vec::new(),
        }
    }
}

/// One virtual modem.
#[derive(Debug)]
pub struct Engine {
    pub profile: DialectProfile,
    pub identity: Identity,
    pub counters: Counters,
    pub latency: Duration,
    pub report_delay: Duration,
    pub fail: Option<FailRule>,
    pub sim_present: bool,
    pub registered: bool,
    pub memory_full: bool,
    /// Quirk: a PDU that carries an SMSC address gets no reply after `>` and is not sent.
    pub smsc_drop: bool,
    /// TP-Status of the status reports from now on (0x00 delivered; `sim ctl report-status`).
    pub report_status: u8,
    /// Somebody has the primary port open, so an unsolicited +CDS reaches a client. When
    /// nobody does, a status report is kept in "SR" storage instead (as modules do with what
    /// they cannot route), for the driver to read at start-up. Kept up to date by the bank.
    pub te_listening: bool,
    /// `sim ctl late`: the next submit's final answer is held back this long.
    pub late_next: Option<Duration>,
    /// `sim ctl unplug --after-submit`: the next submit the network accepts is followed by
    /// [`Action::Unplug`] instead of its answer.
    pub unplug_after_submit: bool,
    /// The ports' line state; `cur` is the one being served.
    lines: Vec<Line>,
    cur: Port,
    cmee: u8,
    cmgf: u8,
    cnmi: [u8; 5],
    csms: u8,
    cmms: u8,
    /// `^HSMSSS=<ack>,<prt>,<fmt>,<prv>` of the text-mode dialects.
    hsmsss: [u8; 4],
    reg_n: [u8; 3],
    cscs: String,
    smsc: String,
    rssi: u8,
    mr: u8,
    concat_ref: u8,
    /// mem1 (read/list/delete), mem2 (write), mem3 (receive) as indexes into MEMORIES.
    mems: [usize; 3],
    storage: [Vec<Option<Stored>>; 3],
    pending_ussd: bool,
    /// +CMT/+CDS deliveries still waiting for +CNMA (only with +CSMS=1).
    cnma_pending: u32,
    rng: StdRng,
}

fn cme_text(n: u16) -> &'static str {
    match n {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        15 => "SIM wrong",
        16 => "incorrect password",
        20 => "memory full",
        21 => "invalid index",
        30 => "no network service",
        31 => "network timeout",
        50 => "Incorrect parameters",
        _ => "unknown",
    }
}

fn cms_text(n: u16) -> &'static str {
    match n {
        8 => "Operator determined barring",
        10 => "Call barred",
        21 => "Short message transfer rejected",
        27 => "Destination out of service",
        38 => "Network out of order",
        41 => "Temporary failure",
        42 => "Congestion",
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        313 => "SIM failure",
        320 => "memory failure",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        _ => "unknown error",
    }
}

/// One parsed command of a (possibly chained) command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cmd {
    /// Upper case: "E", "&F", "S0", "+CMGS", "^ICCID".
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exec(String),
    Set(String),
    Read,
    Test,
}

/// Splits the part of a command line after "AT" into commands (V.250 §5.3: basic commands run
/// together, extended commands separated by ';'). None for a line that cannot be parsed.
fn parse_commands(body: &str) -> Option<Vec<Cmd>> {
    let b: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c == ' ' || c == ';' {
            i += 1;
            continue;
        }
        if "+^$%*#!".contains(c) {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == '.') {
                i += 1;
            }
            let name: String = b[start..i].iter().collect::<String>().to_ascii_uppercase();
            if name.len() < 2 {
                return None;
            }
            let kind = if b.get(i) == Some(&'=') && b.get(i + 1) == Some(&'?') {
                i += 2;
                Kind::Test
            } else if b.get(i) == Some(&'?') {
                i += 1;
                Kind::Read
            } else if b.get(i) == Some(&'=') {
                i += 1;
                let start = i;
                let mut quoted = false;
                while i < b.len() && (quoted || b[i] != ';') {
                    if b[i] == '"' {
                        quoted = !quoted;
                    }
                    i += 1;
                }
                Kind::Set(b[start..i].iter().collect())
            } else {
                let start = i;
                while i < b.len() && b[i] != ';' {
                    i += 1;
                }
                Kind::Exec(b[start..i].iter().collect::<String>().trim().to_string())
            };
            out.push(Cmd { name, kind });
        } else if c.is_ascii_alphabetic() || c == '&' {
            let mut name = String::new();
            if c == '&' {
                name.push('&');
                i += 1;
            }
            let letter = b.get(i)?.to_ascii_uppercase();
            if !letter.is_ascii_alphabetic() {
                return None;
            }
            name.push(letter);
            i += 1;
            if letter == 'S' && name == "S" {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                name.extend(&b[start..i]);
                if b.get(i) == Some(&'?') {
                    i += 1;
                    out.push(Cmd {
                        name,
                        kind: Kind::Read,
                    });
                    continue;
                }
                if b.get(i) == Some(&'=') {
                    i += 1;
                    let start = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    out.push(Cmd {
                        name,
                        kind: Kind::Set(b[start..i].iter().collect()),
                    });
                    continue;
                }
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Cmd {
                name,
                kind: Kind::Exec(b[start..i].iter().collect()),
            });
        } else {
            return None;
        }
    }
    Some(out)
}

/// Comma-separated arguments with quotes removed.
fn args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn num(a: &[String], i: usize) -> Option<u32> {
    a.get(i).and_then(|s| s.parse().ok())
}

fn crlf(line: &str) -> Vec<u8> {
    format!("\r\n{line}\r\n").into_bytes()
}

/// Where the text after a `^HCMGS` prompt ends: (offset, 0x1A send or 0x1B cancel). UCS2 text
/// ends with the code unit 00 1A (00 1B cancels) on a code-unit boundary, so a character such
/// as U+4E1A (业) whose low byte is 0x1A never ends it; ASCII text ends at the first 1A/1B.
fn text_end(input: &[u8], ucs2: bool) -> Option<(usize, u8)> {
    if ucs2 {
        input
            .chunks_exact(2)
            .position(|u| u[0] == 0 && (u[1] == 0x1A || u[1] == 0x1B))
            .map(|i| (i * 2, input[i * 2 + 1]))
    } else {
        input
            .iter()
            .position(|&b| b == 0x1A || b == 0x1B)
            .map(|i| (i, input[i]))
    }
}

/// Header and PDU as one entry: the PDU line follows its header after a bare CR LF. In text
/// mode (`+CMGF=1`) the entry is the text-mode form of 27.005 (see [`text_entry`]): no real
/// modem shows a PDU line in text mode.
fn list_line(text_mode: bool, idx: usize, s: &Stored, tag: &str) -> Vec<String> {
    if text_mode {
        return vec![text_entry(idx, s, tag)];
    }
    let head = if tag == "+CMGL" {
        format!("+CMGL: {idx},{},,{}", s.stat, s.tpdu_len)
    } else {
        format!("+CMGR: {},,{}", s.stat, s.tpdu_len)
    };
    vec![format!("{head}\r\n{}", hex::encode_upper(&s.pdu))]
}

/// `<stat>` of text mode (27.005 §3.1) for the PDU-mode code.
fn text_stat(stat: u8) -> &'static str {
    match stat {
        0 => "REC UNREAD",
        1 => "REC READ",
        2 => "STO UNSENT",
        _ => "STO SENT",
    }
}

/// The PDU-mode code of a text-mode `<stat>` (`"ALL"` is 4).
fn text_stat_code(s: &str) -> Option<u8> {
    let up = s.to_ascii_uppercase();
    ["REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL"]
        .iter()
        .position(|x| *x == up)
        .map(|i| i as u8)
}

/// A TP-SCTS as text mode shows it: `"yy/MM/dd,hh:mm:ss±zz"` (zz in quarter hours).
fn text_scts(t: &crate::pdu::Scts) -> String {
    format!(
        "\"{:02}/{:02}/{:02},{:02}:{:02}:{:02}{}{:02}\"",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        if t.zone_negative { '-' } else { '+' },
        t.zone_quarters
    )
}

/// A number as text mode shows it, with its type of address.
fn text_address(a: &crate::pdu::Address) -> (String, u8) {
    let toa = a.type_octet();
    let v = if toa & 0x70 == 0x10 {
        format!("+{}", a.value)
    } else {
        a.value.clone()
    };
    (v, toa)
}

/// One stored message in text mode (27.005 §3.4.2 +CMGL, §3.4.3 +CMGR, +CSDH=0 form):
/// SMS-DELIVER `+CMGR: <stat>,<oa>,[<alpha>],<scts>` (+CMGL: `<index>,<stat>,<oa>,[<alpha>],
/// <scts>`) then the text on its own line; SMS-STATUS-REPORT `+CMGR: <stat>,<fo>,<mr>,[<ra>],
/// [<tora>],<scts>,<dt>,<st>` with no text line. The text is the characters when the message
/// is in the GSM alphabet, else its UCS2 octets in hex (27.005 §3.1, <data> for a 16-bit
/// DCS). The stored PDU is read with the crate's codec (src/pdu); a PDU it cannot read shows
/// an empty entry rather than a PDU line.
fn text_entry(idx: usize, s: &Stored, tag: &str) -> String {
    use crate::pdu::{Sms, Tpdu};
    let lead = if tag == "+CMGL" {
        format!("+CMGL: {idx},")
    } else {
        "+CMGR: ".to_string()
    };
    let stat = text_stat(s.stat);
    match Sms::parse(&s.pdu).map(|m| m.tpdu) {
        Ok(Tpdu::Deliver(d)) => {
            let (oa, _) = text_address(&d.sender);
            let text = d.user_data.body.text().unwrap_or_default().to_string();
            let data = if crate::pdu::is_gsm7(&text) {
                text
            } else {
                hex::encode_upper(
                    text.encode_utf16()
                        .flat_map(u16::to_be_bytes)
                        .collect::<Vec<u8>>(),
                )
            };
            format!(
                "{lead}\"{stat}\",\"{oa}\",,{}\r\n{data}",
                text_scts(&d.scts)
            )
        }
        Ok(Tpdu::StatusReport(r)) => {
            let (ra, tora) = text_address(&r.recipient);
            let fo = s
                .pdu
                .get(usize::from(s.pdu.first().copied().unwrap_or(0)) + 1);
            format!(
                "{lead}\"{stat}\",{},{},\"{ra}\",{tora},{},{},{}",
                fo.copied().unwrap_or(0x06),
                r.message_reference,
                text_scts(&r.scts),
                text_scts(&r.discharge_time),
                r.status.0
            )
        }
        _ => format!("{lead}\"{stat}\",,,"),
    }
}

/// One stored SMS-DELIVER as a CDMA/PHS module's `AT^HCMGR=<index>` answers it (Huawei CDMA AT
/// manuals; the same form ModemManager's Huawei CDMA plugin reads with
/// `"^HCMGR:%[0-9*#],%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d"`):
/// `^HCMGR:<callerID>,<year>,<month>,<day>,<hour>,<minute>,<second>,<lang>,<format>,<length>,
/// <prt>,<prv>,<type>,<stat>` CR LF, then <length> octets of text (format 1 ASCII, 6 UCS2
/// big-endian), the end marker (1A, or 00 1A for UCS2) and CR LF. The time is the service
/// centre's local time without a zone, as CDMA gives it. None for a status report.
fn hcmgr_entry(s: &Stored) -> Option<Vec<u8>> {
    use crate::pdu::{Sms, Tpdu};
    let Ok(Tpdu::Deliver(d)) = Sms::parse(&s.pdu).map(|m| m.tpdu) else {
        return None;
    };
    let text = d.user_data.body.text().unwrap_or_default();
    let (fmt, data, end): (u8, Vec<u8>, &[u8]) = if text.is_ascii() {
        (1, text.as_bytes().to_vec(), &[0x1A])
    } else {
        let u = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        (6, u, &[0x00, 0x1A])
    };
    let t = d.scts;
    let mut w = crlf(&format!(
        "^HCMGR:{},{},{:02},{:02},{:02},{:02},{:02},0,{fmt},{},0,0,0,{}",
        d.sender.value,
        2000 + u32::from(t.year),
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        data.len(),
        u8::from(s.stat != 0)
    ));
    w.extend(data);
    w.extend(end);
    w.extend(b"\r\n");
    Some(w)
}

fn swap_nibbles(iccid: &str) -> String {
    let mut d: Vec<char> = iccid.chars().collect();
    if d.len() % 2 == 1 {
        d.push('F');
    }
    d.chunks(2).flat_map(|c| [c[1], c[0]]).collect()
}

impl Engine {
    pub fn new(
        profile: DialectProfile,
        identity: Identity,
        seed: u64,
        latency: Duration,
        report_delay: Duration,
    ) -> Engine {
        let smsc = identity.smsc.clone();
        let smsc_drop = profile.drops_reply_with_smsc;
        Engine {
            profile,
            identity,
            counters: Counters::default(),
            latency,
            report_delay,
            fail: None,
            sim_present: true,
            registered: true,
            memory_full: false,
            smsc_drop,
            report_status: 0,
            te_listening: true,
            late_next: None,
            unplug_after_submit: false,
            lines: vec![Line::new()],
            cur: PRIMARY,
            cmee: 0,
            cmgf: 0,
            cnmi: [0, 0, 0, 0, 0],
            csms: 0,
            cmms: 0,
            // Power-on default of the MC323 family: ASCII (<fmt> 1) until the client asks.
            hsmsss: [0, 0, 1, 0],
            reg_n: [0; 3],
            cscs: "IRA".into(),
            smsc,
            rssi: 20 + (seed % 8) as u8,
            mr: (seed % 256) as u8,
            concat_ref: (seed.wrapping_mul(31) % 256) as u8,
            mems: [0, 0, 0],
            storage: [
                vec![None; CAPACITY[0]],
                vec![None; CAPACITY[1]],
                vec![None; CAPACITY[2]],
            ],
            pending_ussd: false,
            cnma_pending: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Gives the modem a second AT port (a two-port module); a no-op when it has one.
    pub fn add_port(&mut self) -> Port {
        if self.lines.len() < 2 {
            self.lines.push(Line::new());
        }
        1
    }

    /// How many AT ports the modem has.
    pub fn ports(&self) -> usize {
        self.lines.len()
    }

    /// A short state word for `status`.
    pub fn state(&self) -> &'static str {
        let busy = |m: &Mode| self.lines.iter().any(|l| &l.mode == m);
        let prompt = self
            .lines
            .iter()
            .any(|l| matches!(l.mode, Mode::Prompt(..)));
        match (self.sim_present, self.registered) {
            (false, _) => "sim-removed",
            (_, false) => "no-network",
            _ if busy(&Mode::Busy) => "sending",
            _ if prompt => "prompt",
            _ => "idle",
        }
    }

    /// Used and capacity of the status-report memory ("SR").
    pub fn reports_stored(&self) -> (usize, usize) {
        (self.storage[SR].iter().flatten().count(), CAPACITY[SR])
    }

    /// Used/capacity of the receive memory.
    pub fn storage_use(&self) -> (usize, usize) {
        let m = self.mems[2];
        (self.storage[m].iter().flatten().count(), CAPACITY[m])
    }

    /// Bytes arrived from the client of the primary port.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        self.feed_port(PRIMARY, bytes)
    }

    /// Bytes arrived from the client of `port` (an unknown port is taken as the primary).
    pub fn feed_port(&mut self, port: Port, bytes: &[u8]) -> Vec<Action> {
        self.cur = if port < self.lines.len() {
            port
        } else {
            PRIMARY
        };
        self.lines[self.cur].input.extend_from_slice(bytes);
        let mut out = Vec::new();
        self.process(&mut out);
        out
    }

    /// A timer armed earlier expired.
    pub fn fire(&mut self, timer: Timer) -> Vec<Action> {
        let mut out = Vec::new();
        match timer {
            Timer::SubmitDone {
                port,
                frame,
                mr,
                fail,
                send,
            } => {
                self.cur = port.min(self.lines.len() - 1);
                let answer = if let Some(cms) = fail {
                    self.counters.failed += 1;
                    out.push(Action::Event(json!({"event": "fault", "kind": "cms", "cms": cms, "pdu": hex::encode_upper(&frame.bytes)})));
                    self.fail_line(Fail::Cms(cms))
                } else {
                    self.counters.submitted += 1;
                    let tag = match send {
                        SendCommand::Cmgs => "+CMGS",
                        SendCommand::Hcmgs => "^HCMGS",
                    };
                    let mut ev =
                        json!({"event": "cmgs", "pdu": hex::encode_upper(&frame.bytes), "mr": mr});
                    if let (Some(obj), Value::Object(decoded)) =
                        (ev.as_object_mut(), sms::decode_for_log(&frame.bytes))
                    {
                        obj.extend(decoded);
                    }
                    out.push(Action::Event(ev));
                    if frame.status_report {
                        out.push(Action::Arm(
                            self.report_delay,
                            Timer::StatusReport {
                                mr,
                                recipient: frame.recipient.clone(),
                                recipient_toa: frame.recipient_toa,
                                submitted: Timestamp::now(),
                            },
                        ));
                    }
                    if std::mem::take(&mut self.unplug_after_submit) {
                        // The network has the part; the port dies before "+CMGS:" is written.
                        out.push(Action::Event(
                            json!({"event": "fault", "kind": "unplug_after_submit", "mr": mr}),
                        ));
                        out.push(Action::Unplug);
                        self.lines[self.cur].mode = Mode::Command;
                        return out;
                    }
                    let mut w = crlf(&format!("{tag}: {mr}"));
                    w.extend(crlf("OK"));
                    w
                };
                self.answer(&mut out, answer);
                self.process(&mut out);
            }
            Timer::Answer { port, bytes } => {
                self.cur = port.min(self.lines.len() - 1);
                self.lines[self.cur].mode = Mode::Command;
                out.push(Action::Write(self.cur, bytes));
                self.process(&mut out);
            }
            Timer::StatusReport {
                mr,
                recipient,
                recipient_toa,
                submitted,
            } => {
                self.counters.status_reports += 1;
                let sr = sms::build_status_report(
                    &self.smsc,
                    mr,
                    &recipient,
                    recipient_toa,
                    submitted,
                    Timestamp::now(),
                    self.report_status,
                );
                let mut ev = json!({"event": "status_report", "mr": mr, "pdu": sr.hex(), "status": self.report_status});
                let ds = self.cnmi[3];
                if ds == 1 && self.te_listening {
                    let mut w = crlf(&format!("+CDS: {}", sr.tpdu_len));
                    w.extend(sr.hex().as_bytes());
                    w.extend(b"\r\n");
                    self.urc(&mut out, w);
                    ev["delivery"] = json!("cds");
                    if self.csms == 1 {
                        self.cnma_pending += 1;
                    }
                } else if ds == 2 || !self.te_listening {
                    // ds=2 stores and announces; a report nobody can receive (no client has
                    // the port open, or it is unplugged) is stored as well, whatever ds says,
                    // so a driver finds it with AT+CPMS="SR" and +CMGL at start-up.
                    let stored = Stored {
                        stat: 0,
                        tpdu_len: sr.tpdu_len,
                        pdu: sr.bytes,
                    };
                    match self.store_in(SR, stored) {
                        Some(idx) => {
                            if ds == 2 {
                                self.urc(&mut out, crlf(&format!("+CDSI: \"SR\",{idx}")));
                            }
                            ev["delivery"] = json!(if ds == 2 { "cdsi" } else { "stored" });
                            ev["memory"] = json!("SR");
                            ev["index"] = json!(idx);
                        }
                        None => ev["delivery"] = json!("dropped-memory-full"),
                    }
                } else {
                    ev["delivery"] = json!("dropped-cnmi");
                }
                out.push(Action::Event(ev));
            }
            Timer::Ussd => {
                let text = format!("Balance: {}.00 CNY", 50 + self.rng.random_range(0..50));
                self.urc(&mut out, crlf(&format!("+CUSD: 0,\"{text}\",15")));
            }
            Timer::TextDone {
                port,
                to,
                text,
                mr,
                fail,
            } => {
                let port = port.min(self.lines.len() - 1);
                // Real modules print these without a space after the colon ("^HCMGSS:9").
                if let Some(cause) = fail {
                    self.counters.failed += 1;
                    out.push(Action::Event(
                        json!({"event": "fault", "kind": "hcmgsf", "cause": cause, "to": to}),
                    ));
                    self.urc_to(port, &mut out, crlf(&format!("^HCMGSF:{cause}")));
                } else {
                    self.counters.submitted += 1;
                    out.push(Action::Event(
                        json!({"event": "hcmgs", "to": to, "text": text, "mr": mr}),
                    ));
                    if std::mem::take(&mut self.unplug_after_submit) {
                        // The network has the text; the port dies before ^HCMGSS is written.
                        out.push(Action::Event(
                            json!({"event": "fault", "kind": "unplug_after_submit", "mr": mr}),
                        ));
                        out.push(Action::Unplug);
                        return out;
                    }
                    self.urc_to(port, &mut out, crlf(&format!("^HCMGSS:{mr}")));
                }
            }
        }
        out
    }

    /// One line of vendor chatter (Huawei ^RSSI ...), if the dialect has any.
    pub fn chatter(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.profile.chatter.is_empty() {
            return out;
        }
        let i = self.rng.random_range(0..self.profile.chatter.len());
        let line = self.profile.chatter[i].replace("{rssi}", &self.rssi.to_string());
        self.urc(&mut out, crlf(&line));
        out
    }

    /// The network delivers `text` from `from`: +CMT, or +CMTI after storing, per +CNMI mt.
    /// A text-mode (`^HCMGS`) module in `AT+CMGF=1` with mt=2 routes it as `^HCMT` instead.
    pub fn inject(&mut self, from: &str, text: &str) -> Vec<Action> {
        if self.profile.send == SendCommand::Hcmgs && self.cmgf == 1 && self.cnmi[1] >= 2 {
            return self.inject_hcmt(from, text);
        }
        let mut out = Vec::new();
        self.concat_ref = self.concat_ref.wrapping_add(1);
        let parts = sms::build_deliver(
            &self.smsc,
            from,
            self.profile.number_toa,
            text,
            Timestamp::now(),
            self.concat_ref,
        );
        let total = parts.len();
        for (i, p) in parts.into_iter().enumerate() {
            self.counters.inbound += 1;
            let mut ev = json!({"event": "inbound", "from": from, "part": i + 1, "parts": total, "pdu": p.hex()});
            if self.cnmi[1] >= 2 {
                let mut w = crlf(&format!("+CMT: ,{}", p.tpdu_len));
                w.extend(p.hex().as_bytes());
                w.extend(b"\r\n");
                self.urc(&mut out, w);
                ev["delivery"] = json!("cmt");
                if self.csms == 1 {
                    self.cnma_pending += 1;
                }
            } else {
                match self.store(
                    2,
                    Stored {
                        stat: 0,
                        tpdu_len: p.tpdu_len,
                        pdu: p.bytes,
                    },
                ) {
                    Some(idx) => {
                        let mem = MEMORIES[self.mems[2]];
                        if self.cnmi[1] == 1 {
                            self.urc(&mut out, crlf(&format!("+CMTI: \"{mem}\",{idx}")));
                        }
                        ev["delivery"] = json!("cmti");
                        ev["memory"] = json!(mem);
                        ev["index"] = json!(idx);
                    }
                    None => {
                        ev["delivery"] = json!("rejected-memory-full");
                    }
                }
            }
            out.push(Action::Event(ev));
        }
        out
    }

    /// `^HCMT:<oa>,<yyyy>,<mm>,<dd>,<hh>,<mi>,<ss>,<lang>,<fmt>,<length>,<prt>,<prv>,<type>,<stat>`
    /// CR LF, then <length> octets of text (fmt 1 ASCII, 6 UCS2 big-endian) and the same end
    /// marker the send side uses (1A, or 00 1A for UCS2), as Huawei's CDMA AT manuals show it.
    /// CDMA text mode has no concatenation header: a long text comes as 70-character pieces.
    fn inject_hcmt(&mut self, from: &str, text: &str) -> Vec<Action> {
        let mut out = Vec::new();
        let oa = from.trim_start_matches('+');
        let ascii = text.is_ascii();
        let z = Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8)));
        let when = z.strftime("%Y,%m,%d,%H,%M,%S").to_string();
        let mut pieces: Vec<String> = Vec::new();
        let mut cur = String::new();
        let limit = if ascii { 160 } else { 70 };
        for c in text.chars() {
            if cur.encode_utf16().count() + c.len_utf16() > limit {
                pieces.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
        pieces.push(cur);
        let total = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            self.counters.inbound += 1;
            let (fmt, data, end): (u8, Vec<u8>, &[u8]) = if ascii {
                (1, piece.clone().into_bytes(), &[0x1A])
            } else {
                let d = piece.encode_utf16().flat_map(u16::to_be_bytes).collect();
                (6, d, &[0x00, 0x1A])
            };
            let mut w = crlf(&format!("^HCMT:{oa},{when},0,{fmt},{},0,0,0,0", data.len()));
            w.extend(&data);
            w.extend(end);
            w.extend(b"\r\n");
            self.urc(&mut out, w);
            out.push(Action::Event(json!({"event": "inbound", "from": from, "part": i + 1, "parts": total, "text": piece, "delivery": "hcmt"})));
        }
        out
    }

    /// Network registration lost or regained: +CREG/+CGREG/+CEREG URCs as enabled.
    pub fn set_network(&mut self, registered: bool) -> Vec<Action> {
        let mut out = Vec::new();
        self.registered = registered;
        let stat = if registered {
            1
        } else if self.sim_present {
            2
        } else {
            0
        };
        for (k, name) in ["+CREG", "+CGREG", "+CEREG"].iter().enumerate() {
            if self.reg_n[k] >= 1 {
                self.urc(&mut out, crlf(&format!("{name}: {stat}")));
            }
        }
        out
    }

    /// The SIM was pulled out (or put back).
    pub fn set_sim(&mut self, present: bool) -> Vec<Action> {
        let mut out = Vec::new();
        self.sim_present = present;
        self.urc(
            &mut out,
            crlf(if present {
                "+CPIN: READY"
            } else {
                "+CPIN: NOT READY"
            }),
        );
        out.extend(self.set_network(present));
        out
    }

    /// The port vanished and came back: the modem rebooted, client settings are gone.
    pub fn reset_session(&mut self) {
        for l in &mut self.lines {
            *l = Line::new();
        }
        self.cur = PRIMARY;
        self.late_next = None;
        self.cmee = 0;
        self.cmgf = 0;
        self.cnmi = [0; 5];
        self.reg_n = [0; 3];
    }

    /// The modem reset by itself (`sim ctl reboot`): every port's line state and the volatile
    /// settings go back to the power-on profile of the dialect (echo on, the saved +CMGF,
    /// +CNMI as the vendor ships it, +CMEE 0, +CSMS 0, +CPMS "SM", +CREG n=0); what sits on
    /// the SIM (stored messages, +CSCA) and the "SR" memory survive. The bank writes
    /// [`Engine::boot_burst`] once the modem has booted.
    pub fn power_on(&mut self) {
        self.reset_session();
        self.cmgf = self.profile.boot_cmgf;
        self.cnmi = self.profile.boot_cnmi;
        self.csms = 0;
        self.cmms = 0;
        self.hsmsss = [0, 0, 1, 0];
        self.cscs = "IRA".into();
        self.mems = [0, 0, 0];
        self.pending_ussd = false;
        self.cnma_pending = 0;
    }

    /// The unsolicited lines a freshly booted module writes on its primary port (the
    /// dialect's `boot_urcs`; `+CPIN: NOT READY` in place of READY without a SIM).
    pub fn boot_burst(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        for line in self.profile.boot_urcs {
            let line = if *line == "+CPIN: READY" && !self.sim_present {
                "+CPIN: NOT READY"
            } else {
                line
            };
            self.urc(&mut out, crlf(line));
        }
        out
    }

    fn store(&mut self, which: usize, s: Stored) -> Option<usize> {
        if self.memory_full {
            return None;
        }
        self.store_in(self.mems[which], s)
    }

    /// Stores into memory `m` (an index of [`MEMORIES`]) at its first free slot.
    fn store_in(&mut self, m: usize, s: Stored) -> Option<usize> {
        let slot = self.storage[m].iter().position(Option::is_none)?;
        self.storage[m][slot] = Some(s);
        // 27.005 indexes start at 1 on most modems (Huawei, Quectel, SIMCom).
        Some(slot + 1)
    }

    /// An unsolicited line: it goes to the primary port, as modules route URCs to one port.
    fn urc(&mut self, out: &mut Vec<Action>, bytes: Vec<u8>) {
        self.urc_to(PRIMARY, out, bytes);
    }

    /// A line for `port` that waits while a command or prompt is in progress there.
    fn urc_to(&mut self, port: Port, out: &mut Vec<Action>, bytes: Vec<u8>) {
        let l = &mut self.lines[port];
        if l.mode == Mode::Command && l.input.is_empty() {
            out.push(Action::Write(port, bytes));
        } else {
            l.pending_urcs.extend(bytes);
        }
    }

    /// Writes a command's final answer now, or holds it back when `sim ctl late` is armed
    /// (the line stays busy, so what arrives meanwhile is answered after it, in order).
    fn answer(&mut self, out: &mut Vec<Action>, bytes: Vec<u8>) {
        if let Some(d) = self.late_next.take() {
            self.lines[self.cur].mode = Mode::Busy;
            out.push(Action::Event(
                json!({"event": "fault", "kind": "late_answer", "ms": d.as_millis() as u64}),
            ));
            out.push(Action::Arm(
                d,
                Timer::Answer {
                    port: self.cur,
                    bytes,
                },
            ));
            return;
        }
        self.lines[self.cur].mode = Mode::Command;
        out.push(Action::Write(self.cur, bytes));
    }

    fn write_fail(&self, out: &mut Vec<Action>, f: Fail) {
        out.push(Action::Write(self.cur, self.fail_line(f)));
    }

    fn fail_line(&self, f: Fail) -> Vec<u8> {
        let line = match (f, self.cmee) {
            (Fail::Error, _) | (Fail::Cme(_), 0) => "ERROR".to_string(),
            (Fail::Cme(n), 1) => format!("+CME ERROR: {n}"),
            (Fail::Cme(n), _) => format!("+CME ERROR: {}", cme_text(n)),
            // 27.005 reports +CMS ERROR whatever +CMEE says; =2 makes it verbose.
            (Fail::Cms(n), 2) => format!("+CMS ERROR: {}", cms_text(n)),
            (Fail::Cms(n), _) => format!("+CMS ERROR: {n}"),
        };
        crlf(&line)
    }

    fn process(&mut self, out: &mut Vec<Action>) {
        loop {
            match self.lines[self.cur].mode.clone() {
                Mode::Busy => return,
                Mode::Prompt(PromptFor::Text { to, ucs2 }, _) => {
                    let Some((end, term)) = text_end(&self.lines[self.cur].input, ucs2) else {
                        if self.lines[self.cur].input.len() > 4096 {
                            self.lines[self.cur].input.clear();
                        }
                        return;
                    };
                    let body: Vec<u8> = self.lines[self.cur].input.drain(..end).collect();
                    let input = &mut self.lines[self.cur].input;
                    input.drain(..(if ucs2 { 2 } else { 1 }).min(input.len()));
                    self.lines[self.cur].mode = Mode::Command;
                    if term == 0x1B {
                        out.push(Action::Write(self.cur, crlf("OK")));
                    } else {
                        self.text_entered(out, to, ucs2, &body);
                    }
                }
                Mode::Prompt(what, len) => {
                    let Some(pos) = self.lines[self.cur]
                        .input
                        .iter()
                        .position(|&b| b == 0x1A || b == 0x1B)
                    else {
                        if self.lines[self.cur].input.len() > 4096 {
                            self.lines[self.cur].input.clear();
                        }
                        return;
                    };
                    let chunk: Vec<u8> = self.lines[self.cur].input.drain(..=pos).collect();
                    let term = chunk[pos];
                    let text: String = chunk[..pos]
                        .iter()
                        .filter(|b| b.is_ascii_graphic())
                        .map(|&b| b as char)
                        .collect();
                    if self.lines[self.cur].echo && !self.profile.never_echoes {
                        out.push(Action::Write(self.cur, text.clone().into_bytes()));
                    }
                    self.lines[self.cur].mode = Mode::Command;
                    if term == 0x1B {
                        out.push(Action::Write(self.cur, crlf("OK")));
                    } else {
                        self.pdu_entered(out, what, len, &text);
                    }
                }
                Mode::Command => {
                    let Some(pos) = self.lines[self.cur].input.iter().position(|&b| b == b'\r')
                    else {
                        if self.lines[self.cur].input.len() > 4096 {
                            self.lines[self.cur].input.clear();
                        }
                        self.flush_urcs(out);
                        return;
                    };
                    let raw: Vec<u8> = self.lines[self.cur].input.drain(..=pos).collect();
                    let line: String = raw[..pos]
                        .iter()
                        .filter(|&&b| b != b'\n')
                        .map(|&b| b as char)
                        .collect();
                    self.line(out, &line);
                }
            }
        }
    }

    fn flush_urcs(&mut self, out: &mut Vec<Action>) {
        if self.lines[self.cur].mode == Mode::Command
            && !self.lines[self.cur].pending_urcs.is_empty()
        {
            out.push(Action::Write(
                self.cur,
                std::mem::take(&mut self.lines[self.cur].pending_urcs),
            ));
        }
    }

    fn line(&mut self, out: &mut Vec<Action>, raw: &str) {
        if self.lines[self.cur].echo && !self.profile.never_echoes && !raw.is_empty() {
            out.push(Action::Write(self.cur, format!("{raw}\r").into_bytes()));
        }
        // Line noise before the command is skipped, as a modem's autobaud does.
        let upper = raw.to_ascii_uppercase();
        let Some(start) = upper.find("AT") else {
            return;
        };
        let body = raw[start + 2..].trim();
        self.counters.commands += 1;
        if body.is_empty() {
            if self.profile.rejects_bare_at {
                self.write_fail(out, Fail::Error);
            } else {
                out.push(Action::Write(self.cur, crlf("OK")));
            }
            return;
        }
        let Some(cmds) = parse_commands(body) else {
            self.write_fail(out, Fail::Error);
            return;
        };
        if self.profile.no_chaining && cmds.len() > 1 {
            self.write_fail(out, Fail::Error);
            return;
        }
        let mut w = Vec::new();
        for cmd in &cmds {
            match self.command(cmd) {
                Outcome::Ok(lines) => {
                    for l in lines {
                        w.extend(crlf(&l));
                    }
                }
                Outcome::Raw(bytes) => w.extend(bytes),
                Outcome::Fail(f) => {
                    if !w.is_empty() {
                        out.push(Action::Write(self.cur, std::mem::take(&mut w)));
                    }
                    self.write_fail(out, f);
                    return;
                }
                Outcome::Prompt(what, len) => {
                    w.extend(b"\r\n> ");
                    out.push(Action::Write(self.cur, w));
                    self.lines[self.cur].mode = Mode::Prompt(what, len);
                    return;
                }
            }
        }
        w.extend(crlf("OK"));
        out.push(Action::Write(self.cur, w));
        if std::mem::take(&mut self.pending_ussd) {
            out.push(Action::Arm(Duration::from_millis(300), Timer::Ussd));
        }
    }

    /// The text of a `^HCMGS` arrived: accepted with OK at once; the outcome URC follows
    /// after the network latency (the driver arms the timer).
    fn text_entered(&mut self, out: &mut Vec<Action>, to: String, ucs2: bool, body: &[u8]) {
        let text = if ucs2 {
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|u| u16::from_be_bytes([u[0], u[1]]))
                .collect();
            // 70 UCS2 characters (140 octets) is the single-message limit.
            if body.len() % 2 != 0 || body.len() > 140 {
                None
            } else {
                String::from_utf16(&units).ok()
            }
        } else if body.len() <= 160 && body.is_ascii() {
            Some(body.iter().map(|&b| char::from(b)).collect())
        } else {
            None
        };
        let Some(text) = text else {
            self.counters.rejected_pdus += 1;
            out.push(Action::Event(json!({"event": "fault", "kind": "bad_text", "ucs2": ucs2, "bytes": hex::encode_upper(body)})));
            self.write_fail(out, Fail::Cms(305));
            return;
        };
        let refused = if !self.sim_present {
            Some(310)
        } else if !self.registered {
            Some(331)
        } else {
            None
        };
        if let Some(cms) = refused {
            self.counters.failed += 1;
            out.push(Action::Event(
                json!({"event": "fault", "kind": "cms", "cms": cms, "to": to}),
            ));
            self.write_fail(out, Fail::Cms(cms));
            return;
        }
        let fail = self.draw_fail();
        let mr = self.mr;
        self.mr = self.mr.wrapping_add(1);
        out.push(Action::Arm(
            self.latency,
            Timer::TextDone {
                port: self.cur,
                to,
                text,
                mr,
                fail,
            },
        ));
        self.answer(out, crlf("OK"));
    }

    fn pdu_entered(&mut self, out: &mut Vec<Action>, what: PromptFor, len: usize, text: &str) {
        let frame = match sms::check_submit(text, len) {
            Ok(f) => f,
            Err(e) => {
                self.counters.rejected_pdus += 1;
                out.push(Action::Event(json!({"event": "fault", "kind": "bad_pdu", "reason": e.to_string(), "pdu": text})));
                self.write_fail(out, Fail::Cms(304));
                return;
            }
        };
        match what {
            // Caught by `process` before a PDU is read; kept total without a panic.
            PromptFor::Text { .. } => self.write_fail(out, Fail::Error),
            PromptFor::Write => {
                if self.memory_full {
                    self.write_fail(out, Fail::Cms(322));
                    return;
                }
                match self.store(
                    1,
                    Stored {
                        stat: 2,
                        tpdu_len: len,
                        pdu: frame.bytes,
                    },
                ) {
                    Some(idx) => {
                        let mut w = crlf(&format!("+CMGW: {idx}"));
                        w.extend(crlf("OK"));
                        out.push(Action::Write(self.cur, w));
                    }
                    None => self.write_fail(out, Fail::Cms(322)),
                }
            }
            PromptFor::Send(_)
                if self.smsc_drop && frame.bytes.first().is_some_and(|&n| n != 0) =>
            {
                // The quirk: the reply after '>' never comes and nothing is sent (no counter
                // moves: the modem itself does not know it failed).
                out.push(Action::Event(json!({"event": "fault", "kind": "smsc_drop", "pdu": hex::encode_upper(&frame.bytes)})));
            }
            PromptFor::Send(send) => {
                let refused = if !self.sim_present {
                    Some(310)
                } else if !self.registered {
                    Some(331)
                } else {
                    None
                };
                if let Some(cms) = refused {
                    self.counters.failed += 1;
                    out.push(Action::Event(json!({"event": "fault", "kind": "cms", "cms": cms, "pdu": hex::encode_upper(&frame.bytes)})));
                    self.write_fail(out, Fail::Cms(cms));
                    return;
                }
                let fail = self.draw_fail();
                let mr = self.mr;
                self.mr = self.mr.wrapping_add(1);
                self.lines[self.cur].mode = Mode::Busy;
                out.push(Action::Arm(
                    self.latency,
                    Timer::SubmitDone {
                        port: self.cur,
                        frame,
                        mr,
                        fail,
                        send,
                    },
                ));
            }
        }
    }

    fn draw_fail(&mut self) -> Option<u16> {
        let rule = self.fail?;
        match rule.mode {
            FailMode::Always => Some(rule.cms),
            FailMode::Once => {
                self.fail = None;
                Some(rule.cms)
            }
            FailMode::Times(n) => {
                self.fail = if n > 1 {
                    Some(FailRule {
                        cms: rule.cms,
                        mode: FailMode::Times(n - 1),
                    })
                } else {
                    None
                };
                Some(rule.cms)
            }
            FailMode::Rate(p) => {
                // NaN or out-of-range rates (from a library caller) count as "never" / "always".
                let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
                self.rng.random_bool(p).then_some(rule.cms)
            }
        }
    }

    fn sim_needed(&self, sms: bool) -> Option<Outcome> {
        (!self.sim_present).then_some(Outcome::Fail(if sms {
            Fail::Cms(310)
        } else {
            Fail::Cme(10)
        }))
    }

    fn cpms_line(&self, query: bool) -> String {
        let part = |m: usize| {
            let used = self.storage[m].iter().flatten().count();
            if query {
                format!("\"{}\",{used},{}", MEMORIES[m], CAPACITY[m])
            } else {
                format!("{used},{}", CAPACITY[m])
            }
        };
        format!(
            "+CPMS: {},{},{}",
            part(self.mems[0]),
            part(self.mems[1]),
            part(self.mems[2])
        )
    }

    fn command(&mut self, cmd: &Cmd) -> Outcome {
        use Kind::*;
        let ok = || Outcome::Ok(vec![]);
        let one = |s: String| Outcome::Ok(vec![s]);
        let p = self.profile.clone();
        match (cmd.name.as_str(), &cmd.kind) {
            ("E", Exec(v)) => {
                self.lines[self.cur].echo = v != "0";
                ok()
            }
            ("V" | "Q" | "X" | "L" | "M" | "&C" | "&D" | "&W" | "&K", Exec(_)) => ok(),
            ("Z" | "&F", Exec(_)) => {
                self.lines[self.cur].echo = true;
                self.cmee = 0;
                self.cnmi = [0; 5];
                ok()
            }
            (s, Read) if s.starts_with('S') && !s.starts_with("S_") && s.len() > 1 => {
                one("000".into())
            }
            (s, Set(_)) if s.starts_with('S') && s[1..].chars().all(|c| c.is_ascii_digit()) => ok(),
            ("I", Exec(_)) => Outcome::Ok(vec![
                p.manufacturer.into(),
                p.model.into(),
                format!("Revision: {}", p.revision),
            ]),
            ("+CGMI" | "+GMI", Exec(_)) => one(p.manufacturer.into()),
            ("+CGMM" | "+GMM", Exec(_)) => one(p.model.into()),
            ("+CGMR" | "+GMR", Exec(_)) => one(p.revision.into()),
            ("+CGSN" | "+GSN", Exec(_)) => one(self.identity.imei.clone()),
            ("+GCAP", Exec(_)) => one("+GCAP: +CGSM,+DS,+ES".into()),
            (
                "+CGMI" | "+GMI" | "+CGMM" | "+GMM" | "+CGMR" | "+GMR" | "+CGSN" | "+GSN" | "+CIMI"
                | "+CNUM" | "+CCID" | "+QCCID",
                Test,
            ) => ok(),
            ("+CIMI", Exec(_)) => self
                .sim_needed(false)
                .unwrap_or_else(|| one(self.identity.imsi.clone())),
            ("+CCID", Exec(_) | Read) if p.iccid == IccidCommand::Ccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("+CCID: {}", self.identity.iccid))),
            ("+QCCID", Exec(_)) if p.iccid == IccidCommand::Qccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("+QCCID: {}", self.identity.iccid))),
            ("^ICCID", Read | Exec(_)) if p.iccid == IccidCommand::HuaweiIccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("^ICCID: {}", self.identity.iccid))),
            ("+ZGETICCID", Exec(_)) if p.iccid == IccidCommand::ZteIccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("+ZGETICCID: {}", self.identity.iccid))),
            ("+CRSM", Set(a)) => {
                if let Some(o) = self.sim_needed(false) {
                    return o;
                }
                let a = args(a);
                if num(&a, 0) == Some(176) && num(&a, 1) == Some(12258) {
                    // EF_ICCID is stored nibble-swapped on the card (TS 11.11 10.1.1).
                    one(format!(
                        "+CRSM: 144,0,\"{}\"",
                        swap_nibbles(&self.identity.iccid)
                    ))
                } else {
                    one("+CRSM: 106,130,\"\"".into())
                }
            }
            ("+CNUM", Exec(_)) => {
                let toa = if self.identity.number.starts_with('+') {
                    145
                } else {
                    129
                };
                self.sim_needed(false).unwrap_or_else(|| {
                    one(format!("+CNUM: \"\",\"{}\",{toa}", self.identity.number))
                })
            }
            ("+CMEE", Set(v)) => match v.trim().parse::<u8>() {
                Ok(n @ 0..=2) => {
                    self.cmee = n;
                    ok()
                }
                _ => Outcome::Fail(Fail::Cme(50)),
            },
            ("+CMEE", Read) => one(format!("+CMEE: {}", self.cmee)),
            ("+CMEE", Test) => one("+CMEE: (0-2)".into()),
            ("+CPIN", Read) => {
                if self.sim_present {
                    one("+CPIN: READY".into())
                } else {
                    Outcome::Fail(Fail::Cme(10))
                }
            }
            ("+CPIN", Test) => ok(),
            ("+CSQ", Exec(_)) => {
                let (r, b) = if self.sim_present && self.registered {
                    (self.rssi, 99)
                } else {
                    (99, 99)
                };
                one(format!("+CSQ: {r},{b}"))
            }
            ("+CSQ", Test) => one("+CSQ: (0-31,99),(0-7,99)".into()),
            (reg @ ("+CREG" | "+CGREG" | "+CEREG"), kind) => {
                let k = match reg {
                    "+CREG" => 0,
                    "+CGREG" => 1,
                    _ => 2,
                };
                match kind {
                    Set(v) => match v.trim().parse::<u8>() {
                        Ok(n @ 0..=2) => {
                            self.reg_n[k] = n;
                            ok()
                        }
                        _ => Outcome::Fail(Fail::Cme(50)),
                    },
                    Read => {
                        let stat = if self.registered {
                            1
                        } else if self.sim_present {
                            2
                        } else {
                            0
                        };
                        if self.reg_n[k] == 2 && self.registered {
                            one(format!("{reg}: 2,{stat},\"24A3\",\"0C91E204\""))
                        } else {
                            one(format!("{reg}: {},{stat}", self.reg_n[k]))
                        }
                    }
                    Test => one(format!("{reg}: (0-2)")),
                    Exec(_) => Outcome::Fail(Fail::Error),
                }
            }
            ("+COPS", Read) => {
                if self.registered {
                    one(format!(
                        "+COPS: 0,0,\"{}\",0",
                        self.identity.carrier.operator_name()
                    ))
                } else {
                    one("+COPS: 0".into())
                }
            }
            ("+COPS", Set(_)) => ok(),
            ("+COPS", Test) => one(format!(
                "+COPS: (2,\"{}\",\"\",\"{}\",0),,(0-4),(0-2)",
                self.identity.carrier.operator_name(),
                &self.identity.imsi[..5]
            )),
            ("+CSCA", Read) => self
                .sim_needed(true)
                .unwrap_or_else(|| one(format!("+CSCA: \"{}\",145", self.smsc))),
            ("+CSCA", Set(v)) => {
                let a = args(v);
                match a.first() {
                    Some(n) if !n.is_empty() => {
                        self.smsc = n.clone();
                        ok()
                    }
                    _ => Outcome::Fail(Fail::Cms(304)),
                }
            }
            ("+CSCA", Test) => ok(),
            ("+CMGF", Set(v)) => match v.trim() {
                "0" | "" => {
                    self.cmgf = 0;
                    ok()
                }
                "1" => {
                    self.cmgf = 1;
                    ok()
                }
                _ => Outcome::Fail(Fail::Cms(302)),
            },
            ("+CMGF", Read) => one(format!("+CMGF: {}", self.cmgf)),
            ("+CMGF", Test) => one("+CMGF: (0,1)".into()),
            ("+CSCS", Set(v)) => {
                let a = args(v);
                match a.first().map(|s| s.to_ascii_uppercase()) {
                    Some(cs)
                        if ["IRA", "GSM", "UCS2", "HEX", "8859-1", "PCCP437"]
                            .contains(&cs.as_str()) =>
                    {
                        self.cscs = cs;
                        ok()
                    }
                    _ => Outcome::Fail(Fail::Cme(4)),
                }
            }
            ("+CSCS", Read) => one(format!("+CSCS: \"{}\"", self.cscs)),
            ("+CSCS", Test) => one("+CSCS: (\"IRA\",\"GSM\",\"UCS2\")".into()),
            ("+CNMI", Set(v)) => {
                let a = args(v);
                let limits = [2, 3, 3, 2, 1];
                let mut new = self.cnmi;
                for (i, lim) in limits.iter().enumerate() {
                    match a.get(i).map(String::as_str) {
                        None | Some("") => {}
                        Some(s) => match s.parse::<u8>() {
                            Ok(n) if n <= *lim => new[i] = n,
                            _ => return Outcome::Fail(Fail::Cms(303)),
                        },
                    }
                }
                self.cnmi = new;
                ok()
            }
            ("+CNMI", Read) => {
                let c = self.cnmi;
                one(format!(
                    "+CNMI: {},{},{},{},{}",
                    c[0], c[1], c[2], c[3], c[4]
                ))
            }
            ("+CNMI", Test) => one("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)".into()),
            ("+CSMS", Set(v)) => match v.trim() {
                "0" | "1" => {
                    self.csms = u8::from(v.trim() == "1");
                    one("+CSMS: 1,1,1".into())
                }
                _ => Outcome::Fail(Fail::Cms(303)),
            },
            ("+CSMS", Read) => one(format!("+CSMS: {},1,1,1", self.csms)),
            ("+CSMS", Test) => one("+CSMS: (0,1)".into()),
            ("+CNMA", Exec(_) | Set(_)) => {
                // Phase 2+ (+CSMS=1): each +CMT / +CDS routed to the TE awaits one +CNMA.
                if self.csms == 1 && self.cnma_pending > 0 {
                    self.cnma_pending -= 1;
                    ok()
                } else {
                    Outcome::Fail(Fail::Cms(340))
                }
            }
            ("+CSMP", Read) => one("+CSMP: 17,167,0,0".into()),
            ("+CSMP", Set(_)) => ok(),
            ("+CPMS", Test) => {
                one("+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")".into())
            }
            ("+CPMS", Read) => self
                .sim_needed(true)
                .unwrap_or_else(|| one(self.cpms_line(true))),
            ("+CPMS", Set(v)) => {
                if let Some(o) = self.sim_needed(true) {
                    return o;
                }
                let a = args(v);
                let mut mems = self.mems;
                for (i, name) in a.iter().take(3).enumerate() {
                    match MEMORIES.iter().position(|m| m.eq_ignore_ascii_case(name)) {
                        // "SR" holds status reports: read and delete (<mem1>) only.
                        Some(SR) if i > 0 => return Outcome::Fail(Fail::Cms(302)),
                        Some(m) => mems[i] = m,
                        None => return Outcome::Fail(Fail::Cms(302)),
                    }
                }
                self.mems = mems;
                one(self.cpms_line(false))
            }
            ("+CMMS", Set(v)) => match v.trim().parse::<u8>() {
                Ok(n @ 0..=2) => {
                    self.cmms = n;
                    ok()
                }
                _ => Outcome::Fail(Fail::Cms(303)),
            },
            ("+CMMS", Read) => one(format!("+CMMS: {}", self.cmms)),
            ("+CMMS", Test) => one("+CMMS: (0-2)".into()),
            ("^HSMSSS", Set(v)) if p.send == SendCommand::Hcmgs => {
                let a = args(v);
                let mut new = self.hsmsss;
                for (i, slot) in new.iter_mut().enumerate() {
                    match a.get(i).map(String::as_str) {
                        None | Some("") => {}
                        Some(s) => match s.parse::<u8>() {
                            Ok(n) if i != 2 || n == 1 || n == 6 => *slot = n,
                            _ => return Outcome::Fail(Fail::Cms(303)),
                        },
                    }
                }
                self.hsmsss = new;
                ok()
            }
            ("^HSMSSS", Read) if p.send == SendCommand::Hcmgs => {
                let h = self.hsmsss;
                one(format!("^HSMSSS: {},{},{},{}", h[0], h[1], h[2], h[3]))
            }
            ("^HSMSSS", Test) if p.send == SendCommand::Hcmgs => {
                one("^HSMSSS: (0,1),(0-3),(1,6),(0-3)".into())
            }
            ("^HCMGS", Test) if p.send == SendCommand::Hcmgs => ok(),
            ("^HCMGS", Set(v)) if p.send == SendCommand::Hcmgs => {
                if let Some(o) = self.sim_needed(true) {
                    return o;
                }
                if self.cmgf != 1 {
                    // ^HCMGS is the text-mode command: in PDU mode it is not allowed.
                    return Outcome::Fail(Fail::Cms(302));
                }
                let to = args(v).into_iter().next().unwrap_or_default();
                // Digits only: PHS numbers are national (type 0x81); a "+" is not taken.
                if to.is_empty() || to.len() > 20 || !to.bytes().all(|b| b.is_ascii_digit()) {
                    return Outcome::Fail(Fail::Cms(305));
                }
                Outcome::Prompt(
                    PromptFor::Text {
                        to,
                        ucs2: self.hsmsss[2] == 6,
                    },
                    0,
                )
            }
            // Text-mode modules have no PDU-mode +CMGS (27.005 "operation not supported").
            ("+CMGS", Set(_)) if p.send == SendCommand::Hcmgs => Outcome::Fail(Fail::Cms(303)),
            ("+CMGS" | "+CMGW", Test) => ok(),
            (name @ ("+CMGS" | "+CMGW"), Set(v)) => {
                let send = (name == "+CMGS").then_some(SendCommand::Cmgs);
                if let Some(o) = self.sim_needed(true) {
                    return o;
                }
                if self.cmgf != 0 {
                    // Text mode is outside what this sim does: it speaks PDU mode only.
                    return Outcome::Fail(Fail::Cms(302));
                }
                match num(&args(v), 0) {
                    Some(n @ 7..=176) => {
                        Outcome::Prompt(send.map_or(PromptFor::Write, PromptFor::Send), n as usize)
                    }
                    _ => Outcome::Fail(Fail::Cms(304)),
                }
            }
            ("^HCMGR", Set(v)) if p.send == SendCommand::Hcmgs => {
                if let Some(o) = self.sim_needed(true) {
                    return o;
                }
                if self.cmgf != 1 {
                    // Like ^HCMGS, the CDMA read belongs to text mode.
                    return Outcome::Fail(Fail::Cms(302));
                }
                let m = self.mems[0];
                let slot = num(&args(v), 0)
                    .and_then(|i| (i as usize).checked_sub(1))
                    .and_then(|i| self.storage[m].get_mut(i));
                match slot {
                    None => Outcome::Fail(Fail::Cms(321)),
                    Some(None) => Outcome::Ok(vec![]),
                    Some(Some(s)) => match hcmgr_entry(s) {
                        Some(bytes) => {
                            if s.stat == 0 {
                                s.stat = 1;
                            }
                            Outcome::Raw(bytes)
                        }
                        // A status report has no CDMA text form.
                        None => Outcome::Fail(Fail::Cms(321)),
                    },
                }
            }
            ("+CMGL", Test) => one("+CMGL: (0-4)".into()),
            ("+CMGL", Set(_) | Exec(_)) => {
                if let Some(o) = self.sim_needed(true) {
                    return o;
                }
                let want = match &cmd.kind {
                    Set(v) => match v.trim().trim_matches('"') {
                        "" => 0,
                        s => match text_stat_code(s).or_else(|| s.parse::<u8>().ok()) {
                            Some(n @ 0..=4) => n,
                            _ => return Outcome::Fail(Fail::Cms(302)),
                        },
                    },
                    _ => 0,
                };
                let text_mode = self.cmgf == 1;
                let m = self.mems[0];
                let mut lines = Vec::new();
                for (i, slot) in self.storage[m].iter_mut().enumerate() {
                    if let Some(s) = slot {
                        if want == 4 || s.stat == want {
                            lines.extend(list_line(text_mode, i + 1, s, "+CMGL"));
                            if s.stat == 0 {
                                s.stat = 1;
                            }
                        }
                    }
                }
                Outcome::Ok(lines)
            }
            ("+CMGR", Set(v)) => {
                if let Some(o) = self.sim_needed(true) {
                    return o;
                }
                let text_mode = self.cmgf == 1;
                let m = self.mems[0];
                let slot = num(&args(v), 0)
                    .and_then(|i| (i as usize).checked_sub(1))
                    .and_then(|i| self.storage[m].get_mut(i));
                match slot {
                    None => Outcome::Fail(Fail::Cms(321)),
                    Some(None) => Outcome::Ok(vec![]),
                    Some(Some(s)) => {
                        let lines = list_line(text_mode, 0, s, "+CMGR");
                        if s.stat == 0 {
                            s.stat = 1;
                        }
                        Outcome::Ok(lines)
                    }
                }
            }
            ("+CMGD", Test) => one("+CMGD: (1-30),(0-4)".into()),
            ("+CMGD", Set(v)) => {
                if let Some(o) = self.sim_needed(true) {
                    return o;
                }
                let a = args(v);
                let m = self.mems[0];
                let flag = num(&a, 1).unwrap_or(0);
                if flag > 0 {
                    // 1 read, 2 read+sent, 3 read+sent+unsent, 4 all.
                    for slot in self.storage[m].iter_mut() {
                        if slot.as_ref().is_some_and(|s| {
                            flag == 4
                                || s.stat == 1
                                || (flag >= 2 && s.stat == 3)
                                || (flag >= 3 && s.stat == 2)
                        }) {
                            *slot = None;
                        }
                    }
                    return ok();
                }
                match num(&a, 0)
                    .and_then(|i| (i as usize).checked_sub(1))
                    .and_then(|i| self.storage[m].get_mut(i))
                {
                    Some(slot) => {
                        *slot = None;
                        ok()
                    }
                    None => Outcome::Fail(Fail::Cms(321)),
                }
            }
            ("+CUSD", Set(v)) => {
                let a = args(v);
                if a.get(1).is_some_and(|s| !s.is_empty()) {
                    if !self.registered {
                        return Outcome::Fail(Fail::Cme(30));
                    }
                    // The answer comes later as +CUSD URC (the driver arms the timer).
                    self.pending_ussd = true;
                }
                ok()
            }
            ("+CUSD", Read) => one("+CUSD: 1".into()),
            ("+CUSD", Test) => one("+CUSD: (0-2)".into()),
            ("+CFUN", Read) => one("+CFUN: 1".into()),
            ("+CFUN", Set(_)) => ok(),
            ("+CFUN", Test) => one("+CFUN: (0,1,4),(0-1)".into()),
            (
                "+CLIP" | "+CRC" | "+CVHU" | "+CLIR" | "+CMER" | "+CGEREP" | "+CTZR" | "+IFC"
                | "+IPR" | "+ICF",
                Set(_),
            ) => ok(),
            ("+CHUP" | "H", Exec(_)) | ("+CHUP", Test) => ok(),
            ("+CBC", Exec(_)) => one("+CBC: 0,100,4200".into()),
            ("+CPAS", Exec(_)) => one("+CPAS: 0".into()),
            ("+CCLK", Read) => {
                let z = Timestamp::now()
                    .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8)));
                one(format!("+CCLK: \"{}\"", z.strftime("%y/%m/%d,%H:%M:%S+32")))
            }
            ("+CPBS", Test) => one("+CPBS: (\"SM\")".into()),
            ("+CPBS", Read) => one("+CPBS: \"SM\",0,250".into()),
            ("+CPBS", Set(_)) => ok(),
            ("+CPBR", Test) => one("+CPBR: (1-250),40,14".into()),
            (name, Set(_) | Exec(_)) => match p.vendor_commands.iter().find(|(n, _)| *n == name) {
                Some((_, "")) => ok(),
                Some((_, line)) => one((*line).to_string()),
                None => Outcome::Fail(Fail::Error),
            },
            _ => Outcome::Fail(Fail::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::dialect::Dialect;
    use proptest::prelude::*;

    // vectors/pdu.json "gsm7-submit-relative-vp" (subnets.ru sms_pdu_format, AT+CMGS=23).
    const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
    // The same SUBMIT with TP-SRR (first octet 0x31): a status report is wanted.
    const SUBMIT_SRR: &str = "0031000B916407281553F80000AA0AE8329BFD4697D9EC37";

    fn engine(d: Dialect) -> Engine {
        Engine::new(
            d.profile(),
            Identity::generate(1, 0, d.profile().number_toa == 0x81),
            1,
            Duration::from_millis(800),
            Duration::from_secs(1),
        )
    }

    /// Everything the engine wrote, as text; timers and events returned separately (an
    /// `Unplug` shows as the event `{"action":"unplug"}`).
    fn split(actions: Vec<Action>) -> (String, Vec<Timer>, Vec<Value>) {
        let (mut w, mut t, mut e) = (String::new(), vec![], vec![]);
        for a in actions {
            match a {
                Action::Write(_, b) => w.push_str(&String::from_utf8_lossy(&b)),
                Action::Arm(_, x) => t.push(x),
                Action::Event(x) => e.push(x),
                Action::Unplug => e.push(json!({"action": "unplug"})),
            }
        }
        (w, t, e)
    }

    /// What went to each port, as text.
    fn per_port(actions: &[Action]) -> [String; 2] {
        let mut w = [String::new(), String::new()];
        for a in actions {
            if let Action::Write(p, b) = a {
                w[*p].push_str(&String::from_utf8_lossy(b));
            }
        }
        w
    }

    fn say(e: &mut Engine, s: &str) -> String {
        split(e.feed(s.as_bytes())).0
    }

    #[test]
    fn echo_until_ate0_and_cme_forms() {
        let mut e = engine(Dialect::Generic);
        assert_eq!(say(&mut e, "AT\r"), "AT\r\r\nOK\r\n");
        assert_eq!(say(&mut e, "ATE0\r"), "ATE0\r\r\nOK\r\n");
        assert_eq!(say(&mut e, "AT\r\n"), "\r\nOK\r\n");
        e.sim_present = false;
        assert_eq!(say(&mut e, "AT+CIMI\r"), "\r\nERROR\r\n");
        assert_eq!(say(&mut e, "AT+CMEE=1;+CIMI\r"), "\r\n+CME ERROR: 10\r\n");
        assert_eq!(
            say(&mut e, "AT+CMEE=2;+CIMI\r"),
            "\r\n+CME ERROR: SIM not inserted\r\n"
        );
    }

    #[test]
    fn identity_commands() {
        let mut e = engine(Dialect::Quectel);
        say(&mut e, "ATE0\r");
        let imei = e.identity.imei.clone();
        assert_eq!(
            say(&mut e, "AT+CGSN\r"),
            format!("\r\n{imei}\r\n\r\nOK\r\n")
        );
        assert!(say(&mut e, "AT+QCCID\r").starts_with("\r\n+QCCID: 8986"));
        assert_eq!(say(&mut e, "AT+CCID\r"), "\r\nERROR\r\n");
        assert!(say(&mut e, "AT+CRSM=176,12258,0,0,10\r").starts_with("\r\n+CRSM: 144,0,\"9868"));
        assert!(say(&mut e, "AT+COPS?\r").contains("CHINA MOBILE"));
    }

    #[test]
    fn garbage_before_at_is_skipped() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0\r");
        assert_eq!(
            say(&mut e, "\x00\u{7f}~~AT+CSQ\r"),
            "\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
        );
        // Input one byte at a time gives the same answer.
        let mut out = String::new();
        for b in "AT+CSQ\r".bytes() {
            out.push_str(&split(e.feed(&[b])).0);
        }
        assert_eq!(out, "\r\n+CSQ: 21,99\r\n\r\nOK\r\n");
    }

    #[test]
    fn cmgs_good_bad_and_cancel() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0\r");
        assert_eq!(say(&mut e, "AT+CMGS=23\r"), "\r\n> ");
        let (w, timers, _) = split(e.feed(format!("{SUBMIT}\x1a").as_bytes()));
        assert_eq!(w, "");
        assert_eq!(e.state(), "sending");
        // Input while the network works waits for the result.
        assert_eq!(say(&mut e, "AT\r"), "");
        let [t] = <[Timer; 1]>::try_from(timers).unwrap();
        let (w, timers, ev) = split(e.fire(t));
        assert_eq!(w, "\r\n+CMGS: 1\r\n\r\nOK\r\n\r\nOK\r\n");
        assert!(timers.is_empty());
        assert_eq!(ev[0]["event"], "cmgs");
        assert_eq!(ev[0]["mr"], 1);
        assert_eq!(ev[0]["pdu"], SUBMIT);
        assert_eq!(ev[0]["to"], "+46708251358");
        assert_eq!(ev[0]["text"], "hellohello");
        // Wrong length: +CMS ERROR: 304 numeric, then verbose with CMEE=2.
        say(&mut e, "AT+CMGS=22\r");
        assert_eq!(
            say(&mut e, &format!("{SUBMIT}\x1a")),
            "\r\n+CMS ERROR: 304\r\n"
        );
        say(&mut e, "AT+CMEE=2\r");
        say(&mut e, "AT+CMGS=7\r");
        assert_eq!(
            say(&mut e, "00110\x1a"),
            "\r\n+CMS ERROR: invalid PDU mode parameter\r\n"
        );
        // ESC cancels.
        say(&mut e, "AT+CMGS=23\r");
        assert_eq!(say(&mut e, "0011\x1b"), "\r\nOK\r\n");
        assert_eq!(e.counters.rejected_pdus, 2);
    }

    #[test]
    fn message_references_increment_and_fail_rules_apply() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0\r");
        e.fail = Some(FailRule {
            cms: 38,
            mode: FailMode::Times(2),
        });
        let mut results = Vec::new();
        for _ in 0..4 {
            say(&mut e, "AT+CMGS=23\r");
            let (_, t, _) = split(e.feed(format!("{SUBMIT}\x1a").as_bytes()));
            results.push(split(e.fire(t.into_iter().next().unwrap())).0);
        }
        assert_eq!(results[0], "\r\n+CMS ERROR: 38\r\n");
        assert_eq!(results[1], "\r\n+CMS ERROR: 38\r\n");
        assert_eq!(results[2], "\r\n+CMGS: 3\r\n\r\nOK\r\n");
        assert_eq!(results[3], "\r\n+CMGS: 4\r\n\r\nOK\r\n");
    }

    #[test]
    fn status_report_as_cds_and_cdsi() {
        for (ds, want) in [(1, "+CDS: 25\r\n"), (2, "+CDSI: \"SR\",1")] {
            let mut e = engine(Dialect::Generic);
            say(&mut e, &format!("ATE0;+CNMI=2,1,0,{ds},0\r"));
            say(&mut e, "AT+CMGS=23\r");
            let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
            let (_, t, _) = split(e.fire(t.into_iter().next().unwrap()));
            let Some(sr @ Timer::StatusReport { .. }) = t.into_iter().next() else {
                panic!("no report armed")
            };
            let (w, _, ev) = split(e.fire(sr));
            assert!(w.contains(want), "{w:?}");
            assert_eq!(ev[0]["event"], "status_report");
            assert_eq!(ev[0]["mr"], 1);
        }
    }

    /// Reports nobody can receive are kept in "SR" (whatever ds says) and read back in PDU
    /// mode with +CPMS="SR", +CMGL=4, +CMGR and +CMGD; ds=1 with a listener stays +CDS.
    #[test]
    fn status_reports_nobody_hears_are_stored_in_sr() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0;+CNMI=2,1,0,1,0\r");
        let mut reports = Vec::new();
        for _ in 0..2 {
            say(&mut e, "AT+CMGS=23\r");
            let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
            let (_, t, _) = split(e.fire(t.into_iter().next().unwrap()));
            reports.push(t.into_iter().next().unwrap());
        }
        e.te_listening = false;
        let (w, _, ev) = split(e.fire(reports.remove(0)));
        assert_eq!(w, "");
        assert_eq!(ev[0]["delivery"], "stored");
        assert_eq!(ev[0]["memory"], "SR");
        assert_eq!(e.reports_stored(), (1, 20));
        let pdu = ev[0]["pdu"].as_str().unwrap().to_string();
        e.te_listening = true;
        let (w, _, ev) = split(e.fire(reports.remove(0)));
        assert!(w.starts_with("\r\n+CDS: 25\r\n"), "{w:?}");
        assert_eq!(ev[0]["delivery"], "cds");
        assert_eq!(e.reports_stored().0, 1);
        // Only <mem1> may be "SR".
        assert_eq!(
            say(&mut e, "AT+CPMS=\"SM\",\"SR\"\r"),
            "\r\n+CMS ERROR: 302\r\n"
        );
        assert_eq!(
            say(&mut e, "AT+CPMS=\"SR\"\r"),
            "\r\n+CPMS: 1,20,0,30,0,30\r\n\r\nOK\r\n"
        );
        let tpdu_len = (pdu.len() / 2) - 1 - usize::from_str_radix(&pdu[..2], 16).unwrap();
        assert_eq!(
            say(&mut e, "AT+CMGL=4\r"),
            format!("\r\n+CMGL: 1,0,,{tpdu_len}\r\n{pdu}\r\n\r\nOK\r\n")
        );
        assert_eq!(
            say(&mut e, "AT+CMGR=1\r"),
            format!("\r\n+CMGR: 1,,{tpdu_len}\r\n{pdu}\r\n\r\nOK\r\n")
        );
        assert_eq!(say(&mut e, "AT+CMGD=1\r"), "\r\nOK\r\n");
        assert_eq!(say(&mut e, "AT+CMGL=4\r"), "\r\nOK\r\n");
        assert_eq!(e.reports_stored().0, 0);
    }

    /// `late`: the part reaches the network at the usual time, the answer comes later, and a
    /// command typed meanwhile is answered after it, in order.
    #[test]
    fn late_answer_then_queued_command() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0\r");
        e.late_next = Some(Duration::from_secs(3));
        say(&mut e, "AT+CMGS=23\r");
        let (_, t, _) = split(e.feed(format!("{SUBMIT}\x1a").as_bytes()));
        let (w, t, ev) = split(e.fire(t.into_iter().next().unwrap()));
        assert_eq!(w, "");
        assert_eq!(ev[0]["event"], "cmgs");
        assert_eq!(ev[1]["kind"], "late_answer");
        assert_eq!(e.counters.submitted, 1);
        assert_eq!(say(&mut e, "\x1bAT+CSQ\r"), "");
        let [late @ Timer::Answer { .. }] = <[Timer; 1]>::try_from(t).unwrap() else {
            panic!("no answer armed")
        };
        assert_eq!(
            split(e.fire(late)).0,
            "\r\n+CMGS: 1\r\n\r\nOK\r\n\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
        );
        assert!(e.late_next.is_none());
        assert_eq!(e.state(), "idle");
    }

    /// `unplug --after-submit`: the part is logged as sent, its report still comes, and the
    /// engine asks to vanish instead of writing +CMGS.
    #[test]
    fn unplug_after_submit_reaches_the_network_first() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0\r");
        e.unplug_after_submit = true;
        say(&mut e, "AT+CMGS=23\r");
        let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
        let acts = e.fire(t.into_iter().next().unwrap());
        assert_eq!(acts.last(), Some(&Action::Unplug));
        let (w, t, ev) = split(acts);
        assert_eq!(w, "");
        assert_eq!(ev[0]["event"], "cmgs");
        assert!(matches!(t[..], [Timer::StatusReport { .. }]));
        assert!(!e.unplug_after_submit);
        assert_eq!(e.counters.submitted, 1);
    }

    /// The text-mode flow has the same two faults: `late` holds back the OK after the text,
    /// `unplug_after_submit` fires once the network took it, before ^HCMGSS is written.
    #[test]
    fn phs_text_mode_late_and_unplug_after_submit() {
        let mut e = engine(Dialect::Phs);
        say(&mut e, "ATE0\r");
        say(&mut e, "AT^HSMSSS=0,0,6,0\r");
        say(&mut e, "AT+CMGF=1\r");
        e.late_next = Some(Duration::from_secs(2));
        e.unplug_after_submit = true;
        say(&mut e, "AT^HCMGS=\"075512345678\"\r");
        let (w, t, _) = split(e.feed(&[0x4F, 0x60, 0x00, 0x1A]));
        assert_eq!(w, "");
        assert_eq!(say(&mut e, "AT+CSQ\r"), "");
        let (mut answer, mut done) = (None, None);
        for t in t {
            match t {
                Timer::Answer { .. } => answer = Some(t),
                Timer::TextDone { .. } => done = Some(t),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            split(e.fire(answer.unwrap())).0,
            "\r\nOK\r\n\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
        );
        let acts = e.fire(done.unwrap());
        assert_eq!(acts.last(), Some(&Action::Unplug));
        let (w, _, ev) = split(acts);
        assert_eq!(w, "");
        assert_eq!(ev[0]["event"], "hcmgs");
        assert_eq!(e.counters.submitted, 1);
    }

    #[test]
    fn power_on_restores_defaults_and_boot_burst() {
        let mut e = engine(Dialect::Quectel);
        say(
            &mut e,
            "ATE0;+CMEE=2;+CMGF=0;+CNMI=2,2,0,1,0;+CPMS=\"ME\",\"ME\",\"ME\"\r",
        );
        e.power_on();
        let (w, _, _) = split(e.boot_burst());
        assert_eq!(
            w,
            "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n"
        );
        assert_eq!(
            say(&mut e, "AT+CMGF?\r"),
            "AT+CMGF?\r\r\n+CMGF: 1\r\n\r\nOK\r\n"
        );
        say(&mut e, "ATE0\r");
        assert_eq!(
            say(&mut e, "AT+CNMI?\r"),
            "\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
        );
        assert_eq!(say(&mut e, "AT+CMEE?\r"), "\r\n+CMEE: 0\r\n\r\nOK\r\n");
        assert!(say(&mut e, "AT+CPMS?\r").starts_with("\r\n+CPMS: \"SM\""));
        // PDU-mode send is refused until the driver sets +CMGF=0 again.
        assert_eq!(say(&mut e, "AT+CMGS=23\r"), "\r\n+CMS ERROR: 302\r\n");
        let mut g = engine(Dialect::Generic);
        g.sim_present = false;
        g.power_on();
        assert_eq!(
            split(g.boot_burst()).0,
            "\r\nRDY\r\n\r\n+CPIN: NOT READY\r\n"
        );
    }

    /// Two AT ports of one module: own echo and prompt per port, shared SIM and storage,
    /// unsolicited lines on the primary only, each answer on the port that asked.
    #[test]
    fn two_ports_share_the_modem_not_the_line() {
        let mut e = engine(Dialect::Quectel);
        assert_eq!(e.add_port(), 1);
        assert_eq!(e.ports(), 2);
        let w = per_port(&e.feed_port(0, b"ATE0;+CNMI=2,1,0,0,0\r"));
        assert_eq!(w[0], "ATE0;+CNMI=2,1,0,0,0\r\r\nOK\r\n");
        // Port 1 still echoes; its +QCCID is the same SIM.
        let w = per_port(&e.feed_port(1, b"AT+QCCID\r"));
        assert_eq!(w[0], "");
        assert!(w[1].starts_with("AT+QCCID\r\r\n+QCCID: 8986"), "{w:?}");
        // Port 0 at the prompt does not stop port 1 answering.
        assert_eq!(per_port(&e.feed_port(0, b"AT+CMGS=23\r"))[0], "\r\n> ");
        assert_eq!(per_port(&e.feed_port(1, b"ATE0\r"))[1], "ATE0\r\r\nOK\r\n");
        // An inbound SMS arrives while port 0 is at the prompt: its +CMTI waits there.
        let acts = e.inject("+8613912345678", "hi");
        assert_eq!(per_port(&acts), ["".to_string(), "".to_string()]);
        let w = per_port(&e.feed_port(0, b"\x1b"));
        assert_eq!(w[0], "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
        // Port 1 reads the message port 0 was told about: one storage.
        assert!(per_port(&e.feed_port(1, b"AT+CMGR=1\r"))[1].starts_with("\r\n+CMGR: 0,,"));
        // A submit from port 1 is answered on port 1.
        assert_eq!(per_port(&e.feed_port(1, b"AT+CMGS=23\r"))[1], "\r\n> ");
        let acts = e.feed_port(1, format!("{SUBMIT}\x1a").as_bytes());
        let (_, t, _) = split(acts);
        let w = per_port(&e.fire(t.into_iter().next().unwrap()));
        assert_eq!(w[0], "");
        assert!(w[1].starts_with("\r\n+CMGS: "), "{w:?}");
        // An unknown port index is taken as the primary, never a panic.
        assert!(per_port(&e.feed_port(7, b"AT\r"))[0].ends_with("OK\r\n"));
    }

    #[test]
    fn inbound_cmti_then_cmgr_cmgd_and_cmt() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0;+CNMI=2,1,0,0,0\r");
        let (w, _, ev) = split(e.inject("+8613912345678", "TD"));
        assert_eq!(w, "\r\n+CMTI: \"SM\",1\r\n");
        assert_eq!(ev[0]["index"], 1);
        assert!(say(&mut e, "AT+CPMS?\r").contains("\"SM\",1,30"));
        let r = say(&mut e, "AT+CMGR=1\r");
        assert!(r.starts_with("\r\n+CMGR: 0,,"), "{r:?}");
        assert!(say(&mut e, "AT+CMGL=4\r").starts_with("\r\n+CMGL: 1,1,,"));
        assert_eq!(say(&mut e, "AT+CMGD=1\r"), "\r\nOK\r\n");
        assert_eq!(say(&mut e, "AT+CMGL=4\r"), "\r\nOK\r\n");
        e.memory_full = true;
        let (w, _, ev) = split(e.inject("+8613912345678", "TD"));
        assert_eq!(w, "");
        assert_eq!(ev[0]["delivery"], "rejected-memory-full");
        say(&mut e, "AT+CMGW=23\r");
        assert_eq!(
            say(&mut e, &format!("{SUBMIT}\x1a")),
            "\r\n+CMS ERROR: 322\r\n"
        );
        say(&mut e, "AT+CNMI=2,2,0,0,0\r");
        assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
        say(&mut e, "AT+CSMS=1\r");
        let long: String = std::iter::repeat_n("退订", 40).collect();
        let (w, _, ev) = split(e.inject("+8613912345678", &long));
        assert_eq!(ev.len(), 2);
        assert_eq!(w.matches("+CMT: ,").count(), 2);
        // Phase 2+: one +CNMA per routed part, a third is not expected.
        assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\nOK\r\n");
        assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\nOK\r\n");
        assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
    }

    #[test]
    fn urcs_wait_for_the_prompt() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0;+CNMI=2,1,0,0,0\r");
        say(&mut e, "AT+CMGS=23\r");
        let (w, _, _) = split(e.inject("+8613912345678", "hi"));
        assert_eq!(w, "");
        let w = say(&mut e, "\x1b");
        assert_eq!(w, "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
    }

    #[test]
    fn dialect_quirks() {
        let mut e = engine(Dialect::Phs);
        assert_eq!(say(&mut e, "AT\r"), "AT\r\r\nERROR\r\n");
        assert_eq!(say(&mut e, "ATE0;+CMEE=1\r"), "ATE0;+CMEE=1\r\r\nERROR\r\n");
        say(&mut e, "ATE0\r");
        // No PDU-mode send at all on a text-mode module.
        assert_eq!(say(&mut e, "AT+CMGS=23\r"), "\r\n+CMS ERROR: 303\r\n");
        assert!(say(&mut e, "AT+CNUM\r").contains(",129"));
        let mut g = engine(Dialect::Generic);
        assert!(say(&mut g, "AT^HCMGS=\"075512345678\"\r").ends_with("ERROR\r\n"));
        assert!(say(&mut g, "AT^HSMSSS=0,0,6,0\r").ends_with("ERROR\r\n"));

        let mut w = engine(Dialect::Wavecom);
        assert_eq!(say(&mut w, "ATE1\r"), "\r\nOK\r\n");
        let mut z = engine(Dialect::Zte);
        assert!(say(&mut z, "AT+ZCDRUN=8\r").ends_with(":1\r\n\r\nOK\r\n"));
        assert!(say(&mut engine(Dialect::Generic), "AT+ZCDRUN=8\r").ends_with("ERROR\r\n"));
        let mut h = engine(Dialect::Huawei);
        assert!(say(&mut h, "AT^ICCID?\r").contains("^ICCID: 8986"));
        assert!(split(h.chatter()).0.starts_with("\r\n^"));
    }

    /// The MC323-style text flow as public drivers drive it (ModemManager's Huawei CDMA
    /// plugin, the Quick.Sms MC323 driver): ^HSMSSS=0,0,6,0, +CMGF=1, ^HCMGS="<number>",
    /// "> ", UCS2 big-endian + 00 1A, OK, then ^HCMGSS:<mr> (or ^HCMGSF:<cause>).
    #[test]
    fn phs_text_mode_send() {
        let mut e = engine(Dialect::Phs);
        say(&mut e, "ATE0\r");
        // ^HCMGS belongs to text mode.
        assert_eq!(
            say(&mut e, "AT^HCMGS=\"075512345678\"\r"),
            "\r\n+CMS ERROR: 302\r\n"
        );
        assert_eq!(say(&mut e, "AT^HSMSSS=0,0,6,0\r"), "\r\nOK\r\n");
        assert_eq!(
            say(&mut e, "AT^HSMSSS?\r"),
            "\r\n^HSMSSS: 0,0,6,0\r\n\r\nOK\r\n"
        );
        assert_eq!(
            say(&mut e, "AT^HSMSSS=0,0,9,0\r"),
            "\r\n+CMS ERROR: 303\r\n"
        );
        assert_eq!(say(&mut e, "AT+CMGF=1\r"), "\r\nOK\r\n");
        // International form is not taken by a PHS module.
        assert_eq!(
            say(&mut e, "AT^HCMGS=\"+8675512345678\"\r"),
            "\r\n+CMS ERROR: 305\r\n"
        );
        assert_eq!(say(&mut e, "AT^HCMGS=\"075512345678\"\r"), "\r\n> ");
        // "业务" = U+4E1A U+52A1: the 0x1A inside 业 must not end the text.
        let mut body = vec![0x4E, 0x1A, 0x52, 0xA1];
        let (w, t, _) = split(e.feed(&body));
        assert_eq!((w.as_str(), t.len()), ("", 0));
        body = vec![0x00, 0x1A];
        let (w, t, _) = split(e.feed(&body));
        assert_eq!(w, "\r\nOK\r\n");
        let [t] = <[Timer; 1]>::try_from(t).unwrap();
        let (w, _, ev) = split(e.fire(t));
        assert_eq!(w, "\r\n^HCMGSS:1\r\n");
        assert_eq!(ev[0]["event"], "hcmgs");
        assert_eq!(ev[0]["to"], "075512345678");
        assert_eq!(ev[0]["text"], "业务");
        assert_eq!(ev[0]["mr"], 1);
        // Injected failure arrives as ^HCMGSF with the cause.
        e.fail = Some(FailRule {
            cms: 107,
            mode: FailMode::Once,
        });
        say(&mut e, "AT^HCMGS=\"075512345678\"\r");
        let (w, t, _) = split(e.feed(&[0x4F, 0x60, 0x00, 0x1A]));
        assert_eq!(w, "\r\nOK\r\n");
        assert_eq!(
            split(e.fire(t.into_iter().next().unwrap())).0,
            "\r\n^HCMGSF:107\r\n"
        );
        // More than 70 UCS2 characters is refused; 00 1B cancels.
        say(&mut e, "AT^HCMGS=\"075512345678\"\r");
        let mut long: Vec<u8> = [0x4F, 0x60].repeat(71);
        long.extend([0x00, 0x1A]);
        assert_eq!(split(e.feed(&long)).0, "\r\n+CMS ERROR: 305\r\n");
        say(&mut e, "AT^HCMGS=\"075512345678\"\r");
        assert_eq!(split(e.feed(&[0x4F, 0x60, 0x00, 0x1B])).0, "\r\nOK\r\n");
        assert_eq!(e.counters.submitted, 1);
        assert_eq!(e.counters.failed, 1);
    }

    #[test]
    fn phs_text_mode_inbound_is_hcmt() {
        let mut e = engine(Dialect::Phs);
        say(&mut e, "ATE0\r");
        say(&mut e, "AT+CMGF=1\r");
        say(&mut e, "AT+CNMI=2,2,0,0,0\r");
        let acts = e.inject("075587654321", "退订");
        let bytes: Vec<u8> = acts
            .iter()
            .filter_map(|a| match a {
                Action::Write(_, b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let head = String::from_utf8_lossy(&bytes[..bytes.len() - 8]).to_string();
        assert!(head.starts_with("\r\n^HCMT:075587654321,20"), "{head:?}");
        assert!(head.ends_with(",0,6,4,0,0,0,0\r\n"), "{head:?}");
        // 退 U+9000, 订 U+8BA2, then 00 1A and CR LF.
        assert_eq!(
            &bytes[bytes.len() - 8..],
            &[0x90, 0x00, 0x8B, 0xA2, 0x00, 0x1A, b'\r', b'\n']
        );
        // In PDU mode the same module uses the 27.005 +CMT.
        say(&mut e, "AT+CMGF=0\r");
        assert!(split(e.inject("075587654321", "TD"))
            .0
            .starts_with("\r\n+CMT: ,"));
        // 75 characters arrive as two pieces (70 + 5): no concatenation header in CDMA text.
        say(&mut e, "AT+CMGF=1\r");
        let (w, _, ev) = split(e.inject("075587654321", &"退".repeat(75)));
        assert_eq!(w.matches("^HCMT:").count(), 2);
        assert_eq!(ev[1]["text"], "退".repeat(5));
    }

    /// 27.005 §3.4.2/§3.4.3: in text mode a read or a listing answers with the text-mode header
    /// and the text, on every dialect (it answered with a PDU line before, which no modem does);
    /// PDU mode keeps the PDU form.
    #[test]
    fn text_mode_reads_and_listings_are_text() {
        for d in Dialect::ALL {
            let mut e = engine(d);
            say(&mut e, "ATE0\r");
            say(&mut e, "AT+CNMI=2,1,0,0,0\r");
            say(&mut e, "AT+CMGF=1\r");
            e.inject("+8613912345678", "TD");
            let r = say(&mut e, "AT+CMGR=1\r");
            assert!(
                r.starts_with("\r\n+CMGR: \"REC UNREAD\",\"+8613912345678\",,\""),
                "{d}: {r:?}"
            );
            assert!(r.ends_with("\"\r\nTD\r\n\r\nOK\r\n"), "{d}: {r:?}");
            e.inject("+8613912345678", "退订");
            let l = say(&mut e, "AT+CMGL=\"ALL\"\r");
            assert!(
                l.starts_with("\r\n+CMGL: 1,\"REC READ\",\"+8613912345678\",,\""),
                "{d}: {l:?}"
            );
            // UCS2 text shows as its octets in hex (退 U+9000, 订 U+8BA2).
            assert!(
                l.contains("\r\nTD\r\n\r\n+CMGL: 2,\"REC UNREAD\","),
                "{d}: {l:?}"
            );
            assert!(l.ends_with("\r\n90008BA2\r\n\r\nOK\r\n"), "{d}: {l:?}");
            assert!(!l.contains(",,2"), "{d}: no PDU-mode header: {l:?}");
            let u = say(&mut e, "AT+CMGL=\"REC UNREAD\"\r");
            assert!(u.starts_with("\r\nOK"), "{d}: listed once as unread: {u:?}");
            say(&mut e, "AT+CMGF=0\r");
            assert!(say(&mut e, "AT+CMGR=1\r").starts_with("\r\n+CMGR: 1,,"));
        }
    }

    /// The phs dialect reads a stored message with ^HCMGR (Huawei CDMA manuals): header with
    /// the caller, the local time, format and length, then the raw text and its end marker.
    #[test]
    fn phs_hcmgr_reads_stored_text() {
        let mut e = engine(Dialect::Phs);
        say(&mut e, "ATE0\r");
        say(&mut e, "AT+CNMI=2,1,0,0,0\r");
        assert!(
            say(&mut e, "AT^HCMGR=1\r").contains("+CMS ERROR"),
            "PDU mode"
        );
        say(&mut e, "AT+CMGF=1\r");
        let (w, _, _) = split(e.inject("075587654321", "退订"));
        assert!(w.contains("+CMTI: "), "{w:?}");
        let acts = e.feed(b"AT^HCMGR=1\r");
        let bytes: Vec<u8> = acts
            .iter()
            .filter_map(|a| match a {
                Action::Write(_, b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let head = String::from_utf8_lossy(&bytes).to_string();
        assert!(head.starts_with("\r\n^HCMGR:075587654321,20"), "{head:?}");
        assert!(head.contains(",0,6,4,0,0,0,0\r\n"), "{head:?}");
        let tail = [0x90, 0x00, 0x8B, 0xA2, 0x00, 0x1A, b'\r', b'\n'];
        assert!(
            bytes.ends_with(&[&tail[..], b"\r\nOK\r\n"].concat()),
            "{bytes:?}"
        );
        // Read once: the stat field says so the second time; ASCII is format 1 ending in 1A.
        assert!(say(&mut e, "AT^HCMGR=1\r").contains(",0,6,4,0,0,0,1\r\n"));
        e.inject("075587654321", "TD");
        assert!(say(&mut e, "AT^HCMGR=2\r").contains(",0,1,2,0,0,0,0\r\nTD\u{1a}\r\n"));
        assert!(
            say(&mut e, "AT^HCMGR=3\r").ends_with("\r\nOK\r\n"),
            "empty slot"
        );
        assert!(say(&mut e, "AT^HCMGR=999\r").contains("+CMS ERROR"));
        // Other dialects do not know it.
        let mut g = engine(Dialect::Huawei);
        say(&mut g, "AT+CMGF=1\r");
        assert!(say(&mut g, "AT^HCMGR=1\r").contains("ERROR"));
    }

    #[test]
    fn smsc_drop_quirk_and_report_status() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0;+CNMI=2,1,0,1,0\r");
        e.smsc_drop = true;
        // SMSC 07 91 1326040000F0 (+31624000000) in front of the SUBMIT: no reply at all.
        say(&mut e, "AT+CMGS=23\r");
        let (w, t, ev) = split(e.feed(format!("07911326040000F0{}\x1a", &SUBMIT[2..]).as_bytes()));
        assert_eq!((w.as_str(), t.len()), ("", 0));
        assert_eq!(ev[0]["kind"], "smsc_drop");
        assert_eq!(e.state(), "idle");
        // Without the SMSC ("00" = use +CSCA) it goes through.
        say(&mut e, "AT+CMGS=23\r");
        let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
        e.report_status = 0x46;
        let (w, t, _) = split(e.fire(t.into_iter().next().unwrap()));
        assert!(w.starts_with("\r\n+CMGS: "), "{w:?}");
        let (w, _, ev) = split(e.fire(t.into_iter().next().unwrap()));
        assert_eq!(ev[0]["status"], 0x46);
        // The TP-Status is the octet after the two 7-octet timestamps at the PDU's end.
        let pdu = w.lines().nth(2).unwrap().to_string();
        assert!(pdu.ends_with("46"), "{pdu}");
    }

    #[test]
    fn network_and_sim_loss() {
        let mut e = engine(Dialect::Generic);
        say(&mut e, "ATE0;+CREG=1;+CMEE=1\r");
        assert_eq!(split(e.set_network(false)).0, "\r\n+CREG: 2\r\n");
        assert_eq!(say(&mut e, "AT+CREG?\r"), "\r\n+CREG: 1,2\r\n\r\nOK\r\n");
        say(&mut e, "AT+CMGS=23\r");
        assert_eq!(
            say(&mut e, &format!("{SUBMIT}\x1a")),
            "\r\n+CMS ERROR: 331\r\n"
        );
        assert_eq!(split(e.set_network(true)).0, "\r\n+CREG: 1\r\n");
        assert_eq!(
            split(e.set_sim(false)).0,
            "\r\n+CPIN: NOT READY\r\n\r\n+CREG: 0\r\n"
        );
        assert_eq!(say(&mut e, "AT+CPIN?\r"), "\r\n+CME ERROR: 10\r\n");
    }

    #[test]
    fn command_line_parser() {
        let c = parse_commands("E0V1+CMEE=1;+CNMI=2,1,0,2,0;+CPMS?;+CSCA=\"+86;1\",145;^ICCID?")
            .unwrap();
        let names: Vec<_> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["E", "V", "+CMEE", "+CNMI", "+CPMS", "+CSCA", "^ICCID"]
        );
        assert_eq!(c[5].kind, Kind::Set("\"+86;1\",145".into()));
        assert_eq!(
            parse_commands("S0=0").unwrap()[0].kind,
            Kind::Set("0".into())
        );
        assert!(parse_commands("@@").is_none());
    }

    proptest! {
        #[test]
        fn engine_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10)) {
            let mut e = engine(Dialect::Generic);
            for c in chunks {
                for a in e.feed(&c) {
                    if let Action::Arm(_, t) = a {
                        let _ = e.fire(t);
                    }
                }
            }
        }

        #[test]
        fn text_prompt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut e = engine(Dialect::Phs);
            let _ = e.feed(b"AT+CMGF=1\r");
            let _ = e.feed(b"AT^HSMSSS=0,0,6,0\r");
            let _ = e.feed(b"AT^HCMGS=\"075512345678\"\r");
            for a in e.feed(&bytes) {
                if let Action::Arm(_, t) = a {
                    let _ = e.fire(t);
                }
            }
        }

        #[test]
        fn engine_never_panics_on_at_like_lines(line in "(AT|at)[+^A-Z0-9=?,;\"&]{0,30}\r") {
            let mut e = engine(Dialect::Huawei);
            let _ = e.feed(line.as_bytes());
        }
    }
}
