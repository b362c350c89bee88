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
//!
//! The files: this one holds the modem's state and the line plumbing (input, echo, prompts,
//! final results, URCs held back while a command runs); `engine.rs` the outside world (timers,
//! inbound, network, SIM, power); `parse.rs` command lines; `storage.rs` the memories and how a
//! stored message is shown; `submit.rs` what follows a prompt; `commands/` the AT commands in
//! groups, tried in order.

use std::time::Duration;

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::dialect::{DialectProfile, IccidCommand, SendCommand};
use super::identity::Identity;
use super::sms;

mod commands;
mod engine;
mod parse;
mod storage;
mod submit;
#[cfg(test)]
mod tests;

use parse::*;
use storage::*;

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
                    // The moment a send command reaches the modem (benchmarks measure a
                    // daemon's latency to it; "cmgs" comes when the network answers).
                    if matches!(what, PromptFor::Send(_) | PromptFor::Text { .. }) {
                        out.push(Action::Event(
                            json!({"event": "send_command", "length": len}),
                        ));
                    }
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

    fn sim_needed(&self, sms: bool) -> Option<Outcome> {
        (!self.sim_present).then_some(Outcome::Fail(if sms {
            Fail::Cms(310)
        } else {
            Fail::Cme(10)
        }))
    }
}
