//! The modem driver: one actor task per serial port, owning the stream, writing one AT command
//! at a time (each with its timeout), routing URCs, running the init sequence, polling health
//! off the send path, receiving SMS without loss and recovering a hung modem. Vendor quirks
//! live as data in [`dialect`]. What must always hold: only the actor touches the port; a
//! stored inbound message is deleted from the SIM (+CMGD) only after its consumer acknowledged
//! it; a modem's own error ([`DeviceError`]) never mixes with a broken link ([`LinkError`]).
//!
//! # API (what the daemon calls)
//! - [`Modem::open`]`(path, &ModemConfig) -> io::Result<(ModemHandle, mpsc::Receiver<ModemEvent>)>`
//!   opens the port with tokio-serial, exclusively (TIOCEXCL), and spawns the actor.
//! - [`Modem::spawn`]`(io, &ModemConfig)`: the same over any `AsyncRead + AsyncWrite` (tests).
//! - [`ModemHandle`] (cloneable): [`identity`](ModemHandle::identity) (waits for init),
//!   [`health`](ModemHandle::health) (last polled), [`send_part`](ModemHandle::send_part)
//!   `(pdu_hex, cmgs_length, more_follow) -> Result<Result<u8 /*TP-MR*/, DeviceError>, LinkError>`
//!   (the part as accepted; the actor encodes it for its dialect with
//!   [`encode::encode_part_for`] each time it sends it), [`shutdown`](ModemHandle::shutdown).
//! - [`ModemEvent`]: `Ready`, `Inbound`/`StatusReport` (raw PDU hex + [`AckHandle`]: call
//!   [`AckHandle::ack`] once the store has it; only then is the SIM copy deleted),
//!   `HealthChanged`, `RegistrationLost`/`RegistrationRegained`, `Restarted`, `Gone`, `Failed`.
//! - [`AtSession`]: one typed command at a time over any stream, with a byte trace callback
//!   (for `smsgate diag`, together with [`open_port`]).
//!
//! Contract notes for the consumer: a failed `send_part` says what became of its payload in
//! [`LinkError::payload_fate`]: [`PayloadFate::MaybeSent`] ([`LinkError::Unconfirmed`], whatever
//! broke after the PDU was written, an actor that took the part and did not answer in time)
//! means the part is `unknown` and is never resent automatically; [`PayloadFate::NotSent`]
//! means it provably never left and may be tried elsewhere. A late `+CMGS` answer arrives as
//! [`ModemEvent::LateReference`]. Every request is bounded in time.
//! A part is encoded for the dialect when it is sent, never frozen at acceptance: destination
//! type of address and national form, SMSC part, PDU or text flow ([`encode`]);
//! [`Identity::destination_toa`] shows the type of address the modem's destinations get (0x81
//! on PHS). On `^HCMGS` modules a part's UDH cannot travel: each part arrives alone; their
//! received texts (`^HCMT`, `^HCMGR`) arrive as `Inbound` with the SMS-DELIVER each stands for
//! ([`hcmgs::text_to_deliver`]), so the consumer has one inbound path.
//! Drain the event receiver (the actor waits when it is full). An inbound PDU may be
//! delivered twice (after a restart the SIM is listed again until its ack deleted it), so the
//! store de-duplicates; the part's TP-MR is only unique per modem and per 256 sends. Must be
//! called inside a tokio runtime.

mod actor;
pub mod dialect;
pub mod encode;
pub mod hcmgs;
pub mod session;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

pub use crate::at::DeviceError;
pub use dialect::Dialect;
pub use session::{AtSession, Direction, LinkError, PayloadFate};

use crate::at::{RegStatus, SignalQuality};

/// Anything the actor can talk AT over.
pub trait Port: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Port for T {}

/// Reopens the port after a hang (only [`Modem::open`] can; a spawned stream cannot).
pub(crate) type Opener = Arc<dyn Fn() -> std::io::Result<Box<dyn Port>> + Send + Sync>;

/// How one modem is driven. `Debug` never shows the PIN.
#[derive(Clone)]
pub struct ModemConfig {
    /// Name for logs (usually the port path).
    pub name: String,
    pub baud_rate: u32,
    /// SIM PIN, sent only when +CPIN? asks for it.
    pub pin: Option<String>,
    /// `AT+CMEE=2` (verbose texts) instead of `=1` (numeric codes). Both map to the same
    /// error codes; numeric is the default because vendors word texts differently.
    pub verbose_errors: bool,
    /// Forces a dialect instead of detecting it from +CGMI/+CGMM.
    pub dialect: Option<&'static Dialect>,
    /// How often signal/registration/operator are polled between sends.
    pub health_interval: Duration,
    /// Bound on one +CMGS exchange (prompt, PDU, network answer).
    pub send_timeout: Duration,
    /// Probes (dialect probe command) before a silent modem counts as hung.
    pub probe_attempts: u32,
    /// Timeout of one probe.
    pub probe_timeout: Duration,
    /// Back-off between reopen attempts; its length is the number of attempts.
    pub reopen_backoff: Vec<Duration>,
    /// Read (and, once acknowledged, delete) messages already stored at start-up.
    pub read_stored_at_start: bool,
}

impl std::fmt::Debug for ModemConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModemConfig")
            .field("name", &self.name)
            .field("baud_rate", &self.baud_rate)
            .field("pin", &self.pin.as_ref().map(|_| "****"))
            .field("verbose_errors", &self.verbose_errors)
            .field("dialect", &self.dialect.map(|d| d.name))
            .field("health_interval", &self.health_interval)
            .field("send_timeout", &self.send_timeout)
            .field("probe_attempts", &self.probe_attempts)
            .field("probe_timeout", &self.probe_timeout)
            .field("reopen_backoff", &self.reopen_backoff)
            .field("read_stored_at_start", &self.read_stored_at_start)
            .finish()
    }
}

impl ModemConfig {
    /// How long a caller waits for one send request: the actor's exchange (bounded by
    /// `send_timeout`) plus an `AT+CMMS` and a request queued behind a probe or a health poll.
    pub fn send_request_bound(&self) -> Duration {
        self.send_timeout
            + self.probe_timeout * self.probe_attempts.max(1)
            + Duration::from_secs(30)
    }

    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            baud_rate: 115_200,
            pin: None,
            verbose_errors: false,
            dialect: None,
            health_interval: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            probe_attempts: 3,
            probe_timeout: Duration::from_secs(2),
            reopen_backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            read_stored_at_start: true,
        }
    }
}

/// Who the modem and its SIM are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub dialect: &'static str,
    pub manufacturer: String,
    pub model: String,
    pub revision: Option<String>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    pub own_number: Option<String>,
    /// Type of address destinations must use on this modem (0x81 on PHS).
    pub destination_toa: u8,
}

/// Last polled radio state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    pub signal: Option<SignalQuality>,
    pub dbm: Option<i16>,
    pub registration: Option<RegStatus>,
    pub operator: Option<String>,
}

impl Health {
    pub fn registered(&self) -> bool {
        self.registration.is_some_and(RegStatus::is_registered)
    }
}

/// Where an inbound PDU came from, which decides what acknowledging it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOrigin {
    /// Stored at `index` in `mem`: acknowledging deletes it (+CMGD).
    Stored { mem: String, index: u32 },
    /// Routed directly (+CMT/+CDS): acknowledging sends +CNMA if the modem needs it.
    Direct { cnma: bool },
}

/// Acknowledges that an inbound PDU is safely stored; dropping it without `ack` leaves the
/// message on the SIM, to be read again at the next start-up.
#[derive(Debug)]
pub struct AckHandle {
    tx: mpsc::Sender<actor::Request>,
    origin: InboundOrigin,
}

impl AckHandle {
    pub fn origin(&self) -> &InboundOrigin {
        &self.origin
    }

    /// Tells the actor the PDU is stored; returns once the SIM copy is deleted (or +CNMA sent).
    pub async fn ack(self) -> Result<Result<(), DeviceError>, LinkError> {
        let (tx, rx) = oneshot::channel();
        let bounded = tokio::time::timeout(REQUEST_BOUND, async {
            self.tx
                .send(actor::Request::Ack {
                    origin: self.origin,
                    reply: tx,
                })
                .await
                .map_err(|_| LinkError::Closed)?;
            rx.await.map_err(|_| LinkError::Closed)?
        });
        bounded.await.unwrap_or_else(|_| {
            Err(LinkError::Timeout {
                command: "(acknowledge to the modem)".into(),
                after: REQUEST_BOUND,
            })
        })
    }
}

/// An SMS-DELIVER or SMS-STATUS-REPORT as the modem gave it (SMSC part + TPDU in hex).
#[derive(Debug)]
pub struct InboundPdu {
    pub pdu_hex: String,
    /// TPDU length the modem announced.
    pub length: u16,
    pub ack: AckHandle,
}

/// What a modem actor reports.
#[derive(Debug)]
pub enum ModemEvent {
    /// Init finished (also after a restart).
    Ready(Identity),
    Inbound(InboundPdu),
    StatusReport(InboundPdu),
    HealthChanged(Health),
    RegistrationLost,
    RegistrationRegained,
    /// The modem hung, or rebooted by itself, and was brought back (port reopened, reset,
    /// re-initialised).
    Restarted,
    /// A late `+CMGS: <mr>`: an earlier send of this modem that timed out (its part is
    /// `unknown`) was taken by the network after all.
    LateReference {
        tp_mr: u8,
    },
    /// The port vanished; the actor has stopped.
    Gone(String),
    /// Init or recovery failed (SIM locked, no answer); the actor has stopped.
    Failed(String),
}

/// Cloneable handle to one modem actor. Every request is bounded: an actor that does not
/// answer in time is reported as a timeout, never waited for without end.
#[derive(Debug, Clone)]
pub struct ModemHandle {
    tx: mpsc::Sender<actor::Request>,
    /// Bound on one send request, queueing and the actor's own bounded exchange included.
    send_bound: Duration,
}

/// Bound on a request other than a send (identity waits for init, health for a recovery).
const REQUEST_BOUND: Duration = Duration::from_secs(120);

/// Where a request got to when it failed.
enum Asked {
    /// The actor never took it (gone, or its queue stayed full).
    NotTaken(LinkError),
    /// The actor took it but no answer came back in time (or it stopped meanwhile).
    NoAnswer(LinkError),
}

impl ModemHandle {
    async fn ask<T>(
        &self,
        bound: Duration,
        make: impl FnOnce(oneshot::Sender<T>) -> actor::Request,
    ) -> Result<T, Asked> {
        let deadline = tokio::time::Instant::now() + bound;
        let (tx, rx) = oneshot::channel();
        match tokio::time::timeout_at(deadline, self.tx.send(make(tx))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Asked::NotTaken(LinkError::Closed)),
            Err(_) => {
                return Err(Asked::NotTaken(LinkError::Timeout {
                    command: "(modem request queue)".into(),
                    after: bound,
                }))
            }
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(Asked::NoAnswer(LinkError::Closed)),
            Err(_) => Err(Asked::NoAnswer(LinkError::Timeout {
                command: "(modem request)".into(),
                after: bound,
            })),
        }
    }

    async fn ask_plain<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> actor::Request,
    ) -> Result<T, LinkError> {
        self.ask(REQUEST_BOUND, make).await.map_err(|a| match a {
            Asked::NotTaken(e) | Asked::NoAnswer(e) => e,
        })
    }

    /// The modem's identity; waits until init has finished.
    pub async fn identity(&self) -> Result<Identity, LinkError> {
        self.ask_plain(actor::Request::Identity).await
    }

    /// The last polled health.
    pub async fn health(&self) -> Result<Health, LinkError> {
        self.ask_plain(actor::Request::Health).await
    }

    /// Sends one part: `pdu_hex` is the part as accepted (SMSC part + SMS-SUBMIT, in the
    /// codec's neutral form), `cmgs_length` its TPDU octets; the actor encodes it for the
    /// modem's dialect ([`encode::encode_part_for`]) before it writes it. `more_follow` keeps
    /// the relay link open (+CMMS=2) for the next part.
    pub async fn send_part(
        &self,
        pdu_hex: &str,
        cmgs_length: u16,
        more_follow: bool,
    ) -> Result<Result<u8, DeviceError>, LinkError> {
        let pdu_hex = pdu_hex.to_string();
        let asked = self
            .ask(self.send_bound, |reply| actor::Request::SendPart {
                pdu_hex,
                cmgs_length,
                more_follow,
                reply,
            })
            .await;
        match asked {
            Ok(r) => r,
            Err(Asked::NotTaken(e)) => Err(e),
            // The actor had the part: it may have written it before it went quiet or stopped.
            Err(Asked::NoAnswer(e)) => Err(e.after_payload("AT+CMGS (no answer from the actor)")),
        }
    }

    /// Stops the actor after the command in progress; gives up waiting after `bound`.
    pub async fn shutdown(&self, bound: Duration) {
        let _ = self.ask(bound, actor::Request::Shutdown).await;
    }
}

/// Entry points.
pub struct Modem;

impl Modem {
    /// Opens `path` exclusively with tokio-serial and spawns the actor. Must run in a tokio
    /// runtime.
    pub fn open(
        path: impl AsRef<Path>,
        config: &ModemConfig,
    ) -> std::io::Result<(ModemHandle, mpsc::Receiver<ModemEvent>)> {
        let path = path.as_ref().to_string_lossy().into_owned();
        let baud = config.baud_rate;
        let opener: Opener =
            Arc::new(move || Ok(Box::new(open_port(&path, baud)?) as Box<dyn Port>));
        let io = opener()?;
        Ok(actor::spawn(io, config.clone(), Some(opener)))
    }

    /// Spawns the actor over any stream (no reopen on hang: a hung stream is reported Failed).
    pub fn spawn(
        io: impl AsyncRead + AsyncWrite + Send + Unpin + 'static,
        config: &ModemConfig,
    ) -> (ModemHandle, mpsc::Receiver<ModemEvent>) {
        actor::spawn(Box::new(io), config.clone(), None)
    }
}

/// Opens a serial port the way the driver does: tokio-serial, 8N1 at `baud`, exclusive
/// (TIOCEXCL) so ModemManager or a second smsgate cannot interleave commands. `smsgate diag`
/// wraps the result in an [`AtSession`].
pub fn open_port(path: &str, baud: u32) -> std::io::Result<tokio_serial::SerialStream> {
    let builder = tokio_serial::new(path, baud).exclusive(true);
    let mut stream = tokio_serial::SerialStream::open(&builder)?;
    stream.set_exclusive(true)?;
    Ok(stream)
}

/// Replaces the SMSC part of a PDU with `00` (use +CSCA), for modems that choke on it.
pub fn strip_smsc(pdu_hex: &str) -> Option<String> {
    let len = usize::from_str_radix(pdu_hex.get(..2)?, 16).ok()?;
    let rest = pdu_hex.get(2 + 2 * len..)?;
    Some(format!("00{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smsc_is_stripped() {
        assert_eq!(
            strip_smsc("07911326040000F0010203").as_deref(),
            Some("00010203")
        );
        assert_eq!(strip_smsc("000102").as_deref(), Some("000102"));
        assert_eq!(strip_smsc("0F00"), None);
        assert_eq!(strip_smsc("zz"), None);
    }

    #[test]
    fn config_debug_hides_the_pin() {
        let mut c = ModemConfig::new("/dev/ttyUSB0");
        c.pin = Some("4321".into());
        assert!(!format!("{c:?}").contains("4321"));
    }
}
