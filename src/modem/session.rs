//! [`AtSession`]: one AT conversation over any `AsyncRead + AsyncWrite` (a serial port, a pty,
//! `tokio::io::duplex` in tests). It writes one typed command, feeds what comes back through the
//! sans-I/O [`Digester`], answers the `"> "` prompt with the command's payload and Ctrl-Z, and
//! queues URCs that arrive meanwhile. What must always hold: a command ends with its final
//! result, a [`LinkError`] (timeout, I/O, garbage flood, port gone) or never starts; a timed-out
//! prompt is cancelled with ESC; [`AtSession::next_urc`] is cancel-safe (only `read` awaits),
//! so the actor can `select!` on it.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::at::{AtCommand, DeviceError, Digester, Event, Urc};

/// The link failed: the modem said nothing useful, or the port is broken. Different from a
/// [`DeviceError`], which is the modem's own answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Nothing conclusive came back in time; the command's payload (if any) was not sent.
    #[error("no final result to {command} within {after:?}")]
    Timeout { command: String, after: Duration },
    /// The payload (a PDU after the prompt) went out but no final result came back: the part
    /// may or may not have been sent. Never resend such a part automatically.
    #[error("{command}: payload sent but no final result within {after:?}; outcome unknown")]
    Unconfirmed { command: String, after: Duration },
    #[error("I/O error: {0}")]
    Io(String),
    #[error("{bytes} bytes of garbage while waiting for {command}")]
    Garbage { command: String, bytes: usize },
    /// The port vanished (read of 0 bytes, EIO): unplugged or the pty closed.
    #[error("port gone: {0}")]
    Gone(String),
    /// The modem actor has stopped; no more commands are possible on this handle.
    #[error("modem actor stopped")]
    Closed,
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

/// One AT conversation. See the module documentation.
pub struct AtSession<P> {
    io: P,
    digester: Digester,
    buf: Vec<u8>,
    urcs: VecDeque<Urc>,
    trace: Option<Trace>,
}

impl<P: AsyncRead + AsyncWrite + Unpin> AtSession<P> {
    pub fn new(io: P, digester: Digester) -> Self {
        Self {
            io,
            digester,
            buf: Vec::with_capacity(1024),
            urcs: VecDeque::new(),
            trace: None,
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
        self.write(&out).await?;
        let mut lines = Vec::new();
        let mut garbage = 0usize;
        let mut prompted = false;
        loop {
            let ev = match self.next_event(Some(deadline)).await {
                Ok(ev) => ev,
                Err(LinkError::Timeout { .. }) => {
                    if payload.is_some() {
                        // The modem may sit in prompt mode; ESC cancels it (TS 27.005 §3.5.1).
                        let _ = self.write(&[0x1b]).await;
                    }
                    return Err(if prompted {
                        LinkError::Unconfirmed {
                            command: shown.clone(),
                            after: timeout,
                        }
                    } else {
                        LinkError::Timeout {
                            command: shown.clone(),
                            after: timeout,
                        }
                    });
                }
                Err(e) => return Err(e),
            };
            match ev {
                Event::Ok => return Ok(cmd.parse(&lines)),
                Event::Error(e) => return Ok(Err(e)),
                Event::Info(l) => lines.push(l),
                Event::Urc(u) => self.urcs.push_back(u),
                Event::Echo(_) => {}
                Event::Prompt => {
                    if let (Some(p), false) = (payload.as_deref(), prompted) {
                        prompted = true;
                        self.write(p).await?;
                    }
                }
                Event::Garbage { bytes } => {
                    garbage += bytes;
                    if garbage > GARBAGE_LIMIT && prompted {
                        return Err(LinkError::Unconfirmed {
                            command: shown.clone(),
                            after: timeout,
                        });
                    }
                    if garbage > GARBAGE_LIMIT {
                        return Err(LinkError::Garbage {
                            command: shown.clone(),
                            bytes: garbage,
                        });
                    }
                }
            }
        }
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
