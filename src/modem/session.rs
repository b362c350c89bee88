//! [`AtSession`]: one AT conversation over any `AsyncRead + AsyncWrite` (a serial port, a pty,
//! `tokio::io::duplex` in tests). It writes one typed command, feeds what comes back through the
//! sans-I/O [`Digester`], answers the `"> "` prompt with the command's payload and Ctrl-Z, and
//! queues URCs that arrive meanwhile. What must always hold: a command ends with its final
//! result, a [`LinkError`] (timeout, I/O, garbage flood, port gone) or never starts; every wait,
//! writes included, is bounded by the command's deadline; a timed-out prompt is cancelled with
//! ESC; once a payload's first byte may have left, every failure is
//! [`LinkError::Unconfirmed`] ([`PayloadFate::MaybeSent`]), so no caller can retry it by
//! mistake; a late `+CMGS: <mr>` (an earlier send that timed out) is never taken for the
//! answer of the command in progress, and its reference is kept for the caller
//! ([`AtSession::take_late_references`]); echo after ATE0 marks a modem that rebooted by itself
//! ([`AtSession::take_reset_seen`]), and a send seeing it before its prompt stops unsent;
//! [`AtSession::next_urc`] is cancel-safe (only `read` awaits), so the actor can `select!` on it.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::hcmgs::TextPart;
use crate::at::{parse_hcmgs_outcome, AtCommand, DeviceError, Digester, Event, Hcmgs, Urc};

/// The link failed: the modem said nothing useful, or the port is broken. Different from a
/// [`DeviceError`], which is the modem's own answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Nothing conclusive came back in time; the command's payload (if any) was not sent.
    #[error("no final result to {command} within {after:?}")]
    Timeout { command: String, after: Duration },
    /// The payload (a PDU after the prompt, a text after `^HCMGS`) was written, in whole or in
    /// part, and then `cause` happened before a final result came back: the part may be on the
    /// air. Never resend such a part automatically ([`PayloadFate::MaybeSent`]).
    #[error("{command}: payload sent, then {cause}; outcome unknown")]
    Unconfirmed {
        command: String,
        cause: Box<LinkError>,
    },
    #[error("I/O error: {0}")]
    Io(String),
    #[error("{bytes} bytes of garbage while waiting for {command}")]
    Garbage { command: String, bytes: usize },
    /// The port vanished (read of 0 bytes, EIO): unplugged or the pty closed.
    #[error("port gone: {0}")]
    Gone(String),
    /// The modem rebooted by itself (it echoes again, or announced its power-up): whatever it
    /// was set to is lost and it must be initialised again.
    #[error("modem reset by itself: {0}")]
    Reset(String),
    /// The modem gave a final result that cannot be read as the command's answer.
    #[error("unreadable answer: {0}")]
    Unreadable(String),
    /// The modem actor has stopped; no more commands are possible on this handle.
    #[error("modem actor stopped")]
    Closed,
}

/// What a failed send says about its payload, which decides whether the part may be tried
/// again elsewhere (RELIABILITY.md: only a failure before the payload left is retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFate {
    /// Provably never written to the modem: safe to send again, here or on another SIM.
    NotSent,
    /// Written, in whole or in part: the network may have it. The part is `unknown` until a
    /// status report or an operator settles it.
    MaybeSent,
}

impl LinkError {
    fn from_io(e: io::Error) -> Self {
        if e.raw_os_error() == Some(libc::EIO)
            || matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
            )
        {
            LinkError::Gone(e.to_string())
        } else {
            LinkError::Io(e.to_string())
        }
    }

    /// Whether the payload of the failed command may have left (see [`PayloadFate`]).
    pub fn payload_fate(&self) -> PayloadFate {
        match self {
            LinkError::Unconfirmed { .. } => PayloadFate::MaybeSent,
            _ => PayloadFate::NotSent,
        }
    }

    /// What happened to the link itself: the cause under [`LinkError::Unconfirmed`], else
    /// the error. The actor decides recovery on this (a port gone after the payload is still
    /// a port gone).
    pub fn link(&self) -> &LinkError {
        match self {
            LinkError::Unconfirmed { cause, .. } => cause.link(),
            other => other,
        }
    }

    /// The same failure, known to have happened after the payload of `command` was written.
    pub fn after_payload(self, command: &str) -> LinkError {
        match self {
            already @ LinkError::Unconfirmed { .. } => already,
            cause => LinkError::Unconfirmed {
                command: command.to_string(),
                cause: Box::new(cause),
            },
        }
    }
}

/// Which way bytes went, for the trace callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToModem,
    FromModem,
}

type Trace = Box<dyn FnMut(Direction, &[u8]) + Send>;

/// Most garbage tolerated inside one command before the link is declared broken.
const GARBAGE_LIMIT: usize = 4096;
/// Bound on writing the ESC that leaves a prompt after a failure.
const ESC_WRITE_BOUND: Duration = Duration::from_secs(1);

/// Whether an information line is a late `+CMGS: <mr>`: one that cannot be the answer of the
/// command in progress (`ours` is true only for a send whose payload has gone out).
fn is_late_reference(line: &str, ours: bool) -> bool {
    !ours
        && line
            .get(..6)
            .is_some_and(|h| h.eq_ignore_ascii_case("+CMGS:"))
}

fn parse_reference(line: &str) -> Option<u8> {
    let v = line.get(6..)?.trim();
    let digits = v.split(',').next()?.trim();
    digits.parse::<u32>().ok().map(|mr| (mr & 0xff) as u8)
}

/// One AT conversation. See the module documentation.
pub struct AtSession<P> {
    io: P,
    digester: Digester,
    buf: Vec<u8>,
    urcs: VecDeque<Urc>,
    trace: Option<Trace>,
    late_references: Vec<u8>,
    /// A late "+CMGS: <mr>" of an earlier, timed-out send was seen: the next final result is
    /// that send's, not the command in progress's.
    late_final: bool,
    echo_expected: bool,
    reset_seen: bool,
}

impl<P: AsyncRead + AsyncWrite + Unpin> AtSession<P> {
    pub fn new(io: P, digester: Digester) -> Self {
        Self {
            io,
            digester,
            buf: Vec::with_capacity(1024),
            urcs: VecDeque::new(),
            trace: None,
            late_references: Vec::new(),
            late_final: false,
            echo_expected: true,
            reset_seen: false,
        }
    }

    /// Installs a callback that sees every byte written and read (for `smsgate diag`).
    pub fn set_trace(&mut self, trace: impl FnMut(Direction, &[u8]) + Send + 'static) {
        self.trace = Some(Box::new(trace));
    }

    pub fn digester(&self) -> &Digester {
        &self.digester
    }

    pub fn digester_mut(&mut self) -> &mut Digester {
        &mut self.digester
    }

    /// Drops queued URCs that `unwanted` matches.
    pub fn discard_urcs(&mut self, unwanted: impl Fn(&Urc) -> bool) {
        self.urcs.retain(|u| !unwanted(u));
    }

    /// URCs that arrived during commands and were not yet taken.
    pub fn take_urcs(&mut self) -> Vec<Urc> {
        self.urcs.drain(..).collect()
    }

    /// Sends one command with its own timeout.
    pub async fn send<C: AtCommand>(
        &mut self,
        cmd: &C,
    ) -> Result<Result<C::Response, DeviceError>, LinkError> {
        self.send_with_timeout(cmd, cmd.timeout()).await
    }

    /// Sends one command; `timeout` bounds the whole exchange, prompt included.
    pub async fn send_with_timeout<C: AtCommand>(
        &mut self,
        cmd: &C,
        timeout: Duration,
    ) -> Result<Result<C::Response, DeviceError>, LinkError> {
        // Anything already buffered (URCs, a stray OK from before) is not this command's.
        self.drain_buffered();
        let payload = cmd.payload();
        self.digester.expect(cmd.prefix(), payload.is_some());
        let result = self.exchange(cmd, payload, timeout).await;
        self.digester.expect(None, false);
        result
    }

    async fn exchange<C: AtCommand>(
        &mut self,
        cmd: &C,
        payload: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Result<C::Response, DeviceError>, LinkError> {
        let line = cmd.line();
        // What errors and logs may show: PINs and numbers masked.
        let shown = cmd.display();
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(line.len() + 1);
        out.extend_from_slice(line.as_bytes());
        out.push(b'\r');
        self.write_by(&out, deadline, &shown, timeout).await?;
        let mut lines = Vec::new();
        let mut garbage = 0usize;
        // Set once the payload's first byte may have gone out: from then on every failure
        // leaves the part's fate unknown.
        let mut prompted = false;
        let wants_cmgs = cmd
            .prefix()
            .is_some_and(|p| p.eq_ignore_ascii_case("+CMGS"));
        let result = loop {
            let ev = match self.next_event(Some(deadline)).await {
                Ok(ev) => ev,
                Err(LinkError::Timeout { .. }) => {
                    if payload.is_some() {
                        // The modem may sit in prompt mode; ESC cancels it (TS 27.005 §3.5.1).
                        // Best effort and bounded: the link may be what is broken.
                        let _ = tokio::time::timeout(ESC_WRITE_BOUND, self.write(&[0x1b])).await;
                    }
                    break Err(LinkError::Timeout {
                        command: shown.clone(),
                        after: timeout,
                    });
                }
                Err(e) => break Err(e),
            };
            match ev {
                Event::Info(l) if is_late_reference(&l, wants_cmgs && prompted) => {
                    // RELIABILITY.md: a late answer is logged and used to settle, never taken
                    // for this command's result.
                    if let Some(mr) = parse_reference(&l) {
                        tracing::info!(mr, "modem: late +CMGS answer of an earlier send");
                        self.late_references.push(mr);
                    }
                    self.late_final = true;
                }
                Event::Ok | Event::Error(_) if self.late_final => self.late_final = false,
                // A payload command answered before its prompt with OK: the leftover of an
                // earlier exchange, not this command's result.
                Event::Ok if payload.is_some() && !prompted => {
                    tracing::debug!(command = %shown, "modem: stray OK before the prompt ignored");
                    lines.clear();
                }
                Event::Ok => break Ok(cmd.parse(&lines)),
                Event::Error(e) => break Ok(Err(e)),
                Event::Info(l) => lines.push(l),
                Event::Urc(u) => self.urcs.push_back(u),
                Event::Echo(e) => {
                    if !self.echo_expected {
                        // Echo after ATE0 means the modem rebooted behind our back: its modes
                        // (PDU, +CNMI) are gone. Before the prompt nothing was sent; stop here.
                        self.reset_seen = true;
                        if payload.is_some() && !prompted {
                            let _ =
                                tokio::time::timeout(ESC_WRITE_BOUND, self.write(&[0x1b])).await;
                            break Err(LinkError::Reset(format!("it echoed {e:?}")));
                        }
                    }
                }
                Event::Prompt => {
                    if let (Some(p), false) = (payload.as_deref(), prompted) {
                        prompted = true;
                        if let Err(e) = self.write_by(p, deadline, &shown, timeout).await {
                            break Err(e);
                        }
                    }
                }
                Event::Garbage { bytes } => {
                    garbage += bytes;
                    if garbage > GARBAGE_LIMIT {
                        break Err(LinkError::Garbage {
                            command: shown.clone(),
                            bytes: garbage,
                        });
                    }
                }
            }
        };
        match result {
            Err(e) if prompted => Err(e.after_payload(&shown)),
            other => other,
        }
    }

    /// Writes under the command's deadline: a port that takes no bytes (flow control held,
    /// a wedged USB endpoint) is a timeout like a modem that says nothing.
    async fn write_by(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
        shown: &str,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        match tokio::time::timeout_at(deadline, self.write(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(LinkError::Timeout {
                command: shown.to_string(),
                after: timeout,
            }),
        }
    }

    /// TP-MRs of late `+CMGS` answers seen since the last call (each an earlier send that
    /// timed out, which the network did take).
    pub fn take_late_references(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.late_references)
    }

    /// Whether echo is normal now (before ATE0 during init) or a sign of a reboot.
    pub fn set_echo_expected(&mut self, expected: bool) {
        self.echo_expected = expected;
        if expected {
            self.reset_seen = false;
        }
    }

    /// Whether the modem showed it rebooted (echo while none was expected) since the last
    /// call; the caller initialises it again.
    pub fn take_reset_seen(&mut self) -> bool {
        std::mem::take(&mut self.reset_seen)
    }

    /// The text flow of CDMA/PHS modules (`^HCMGS`): `part` is a part encoded for the dialect
    /// ([`super::encode::encode_part_for`]: destination in the form the module dials, UCS2
    /// text), `^HCMGS` takes it, and the outcome URC (`^HCMGSS`/`^HCMGSF`) settles the part.
    /// `timeout` bounds the whole flow. Once the text went out every link failure is
    /// [`LinkError::Unconfirmed`], the URC wait included (the module took the text).
    pub async fn send_hcmgs(
        &mut self,
        part: TextPart,
        timeout: Duration,
    ) -> Result<Result<u8, DeviceError>, LinkError> {
        if part.dropped_udh {
            tracing::warn!("^HCMGS cannot carry a UDH: this part arrives as its own SMS");
        }
        let started = Instant::now();
        let cmd = Hcmgs {
            destination: part.destination,
            ucs2: part.ucs2,
        };
        let early_mr = match self.send_with_timeout(&cmd, timeout).await? {
            Ok(mr) => mr,
            Err(e) => return Ok(Err(e)),
        };
        let left = timeout.saturating_sub(started.elapsed());
        let is_outcome = |u: &Urc| matches!(u, Urc::Other(l) if parse_hcmgs_outcome(l).is_some());
        let urc = match self.wait_urc(is_outcome, left).await {
            Ok(u) => u,
            Err(e) => return Err(e.after_payload("AT^HCMGS")),
        };
        let Urc::Other(line) = urc else {
            return Err(LinkError::Unreadable("^HCMGS outcome".into()).after_payload("AT^HCMGS"));
        };
        Ok(match parse_hcmgs_outcome(&line) {
            Some(Ok(mr)) => Ok(early_mr.unwrap_or(mr)),
            Some(Err(e)) => Err(e),
            None => return Err(LinkError::Unreadable(line).after_payload("AT^HCMGS")),
        })
    }

    /// Waits up to `timeout` for a URC that `wanted` accepts (queued ones first); other URCs
    /// stay queued for [`AtSession::next_urc`].
    pub async fn wait_urc(
        &mut self,
        wanted: impl Fn(&Urc) -> bool,
        timeout: Duration,
    ) -> Result<Urc, LinkError> {
        if let Some(pos) = self.urcs.iter().position(&wanted) {
            if let Some(u) = self.urcs.remove(pos) {
                return Ok(u);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(Some(deadline)).await {
                Ok(Event::Urc(u)) if wanted(&u) => return Ok(u),
                Ok(Event::Urc(u)) => self.urcs.push_back(u),
                Ok(other) => tracing::debug!(?other, "modem: stray output while waiting for a URC"),
                Err(LinkError::Timeout { .. }) => {
                    return Err(LinkError::Timeout {
                        command: "(URC)".into(),
                        after: timeout,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the next URC (queued ones first). Cancel-safe.
    pub async fn next_urc(&mut self) -> Result<Urc, LinkError> {
        loop {
            if let Some(u) = self.urcs.pop_front() {
                return Ok(u);
            }
            match self.next_event(None).await? {
                Event::Urc(u) => return Ok(u),
                Event::Info(l) if is_late_reference(&l, false) => {
                    if let Some(mr) = parse_reference(&l) {
                        tracing::info!(mr, "modem: late +CMGS answer while idle");
                        self.late_references.push(mr);
                    }
                    self.late_final = true;
                    // Handed over as a URC so the actor looks at the references now.
                    return Ok(Urc::Other(l));
                }
                Event::Echo(e) if !self.echo_expected => {
                    tracing::info!(echo = %e, "modem: echo while idle; it has rebooted");
                    self.reset_seen = true;
                    return Ok(Urc::Other(e));
                }
                Event::Ok | Event::Error(_) if self.late_final => self.late_final = false,
                Event::Garbage { bytes } => tracing::debug!(bytes, "modem: garbage while idle"),
                other => tracing::debug!(?other, "modem: stray output while idle"),
            }
        }
    }

    /// Writes raw bytes (diag, ESC).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        if let Some(t) = self.trace.as_mut() {
            t(Direction::ToModem, bytes);
        }
        self.io.write_all(bytes).await.map_err(LinkError::from_io)?;
        self.io.flush().await.map_err(LinkError::from_io)
    }

    fn drain_buffered(&mut self) {
        loop {
            let (ev, n) = self.digester.digest(&self.buf);
            self.buf.drain(..n);
            match ev {
                Some(Event::Urc(u)) => self.urcs.push_back(u),
                Some(Event::Info(l)) if is_late_reference(&l, false) => {
                    if let Some(mr) = parse_reference(&l) {
                        tracing::info!(mr, "modem: late +CMGS answer before a command");
                        self.late_references.push(mr);
                    }
                    self.late_final = true;
                }
                Some(Event::Ok | Event::Error(_)) if self.late_final => self.late_final = false,
                Some(other) => tracing::debug!(?other, "modem: stale output dropped"),
                None if n == 0 => break,
                None => {}
            }
        }
    }

    async fn next_event(&mut self, deadline: Option<Instant>) -> Result<Event, LinkError> {
        loop {
            let (ev, n) = self.digester.digest(&self.buf);
            self.buf.drain(..n);
            if let Some(ev) = ev {
                return Ok(ev);
            }
            if n > 0 {
                continue;
            }
            let mut chunk = [0u8; 512];
            let read = self.io.read(&mut chunk);
            let got = match deadline {
                Some(d) => match tokio::time::timeout_at(d, read).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(LinkError::Timeout {
                            command: String::new(),
                            after: Duration::ZERO,
                        })
                    }
                },
                None => read.await,
            };
            let n = got.map_err(LinkError::from_io)?;
            if n == 0 {
                return Err(LinkError::Gone("end of stream".into()));
            }
            let data = chunk.get(..n).unwrap_or_default();
            if let Some(t) = self.trace.as_mut() {
                t(Direction::FromModem, data);
            }
            self.buf.extend_from_slice(data);
        }
    }
}
