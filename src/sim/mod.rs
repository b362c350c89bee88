//! The virtual modem bank (`smsgate sim`): N pseudo-terminals, each answering AT commands like
//! a real GSM/PHS modem of a chosen dialect, with faults and inbound traffic driven from a
//! control channel and every accepted PDU written to DIR/events.jsonl.
//!
//! It plays the MODEM's side and shares nothing with `at/` or `modem/` (a virtual modem built on
//! the driver's own assumptions proves nothing); its reading of PDUs is its own ([`sms`]).
//!
//! Layout: [`dialect`] (vendor quirks as data), [`identity`] (IMEI/IMSI/ICCID), [`sms`] (the
//! modem's PDU checks and builders), [`modem`] (sans-I/O engine: bytes in, actions out),
//! [`pty`] (the pseudo-terminal), [`events`] (the JSON-lines log), [`control`] (commands and
//! the ctl.sock protocol), [`bank`] (the tokio tasks that tie them together).
//!
//! Public API: [`Bank::start`]`(`[`SimConfig`]`)`, [`Bank::port_path`],
//! [`Bank::second_port_path`] (with [`SimConfig::second_port`]), [`Bank::events_path`],
//! [`Bank::control`]`(`[`Control`]`) -> `[`ControlReply`] (with [`ModemStatus`] for `Status`),
//! [`Bank::shutdown`]; [`control::request`] speaks the same commands over DIR/ctl.sock.
//! Fault controls include [`Control::Quirk`]`(`[`Quirk::SmscDrop`]`)`,
//! [`Control::ReportStatus`] (TP-Status of the next status reports), [`Control::Unplug`] (also
//! `after_submit`), [`Control::Late`] and [`Control::Reboot`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), smsgate::sim::SimError> {
//! use smsgate::sim::{Bank, Control, SimConfig};
//! let mut cfg = SimConfig::new(4, "/tmp/bank");
//! cfg.latency = std::time::Duration::from_millis(200);
//! let bank = Bank::start(cfg).await?;
//! let port = bank.port_path(0); // open this with tokio-serial
//! bank.control(Control::Inject { modem: 0, from: "+8613912345678".into(), text: "TD".into() }).await?;
//! bank.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! With [`SimConfig::cmpp`] the bank also runs a virtual carrier gateway ([`ismg`], CMPP
//! 2.0/3.0 on TCP) beside the modems (or instead of them, with 0 modems); its `sim ctl`
//! commands are [`Control::Cmpp`]`(`[`IsmgControl`]`)` and [`Bank::cmpp_addr`] says where it
//! listens. It shares only the codec `crate::cmpp` with the client side.
//!
//! Invariants: after [`Bank::start`] returns, every DIR/modemN (and DIR/modemN-at2) link exists
//! and answers; a modem's task is the only owner of its engine, so commands to one modem (from
//! either of its ports) are serialised.

pub mod bank;
pub mod control;
pub mod dialect;
pub mod events;
pub mod identity;
pub mod ismg;
pub mod modem;
pub mod pty;
pub mod sms;

use std::path::PathBuf;
use std::time::Duration;

pub use bank::Bank;
pub use control::{Control, ControlReply, ModemStatus, Quirk};
pub use dialect::{Dialect, DialectChoice};
pub use ismg::{Ismg, IsmgConfig, IsmgControl, IsmgStatus};
pub use modem::FailMode;

/// How to build a bank.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub modems: usize,
    /// Holds modemN links, events.jsonl and ctl.sock; created if missing.
    pub dir: PathBuf,
    pub dialect: DialectChoice,
    /// Network time of AT+CMGS.
    pub latency: Duration,
    /// Time from +CMGS to the status report (when the SUBMIT asked for one).
    pub report_delay: Duration,
    /// Makes identities and random faults reproducible; None picks one at random.
    pub seed: Option<u64>,
    /// Serve DIR/ctl.sock (the binary does; in-process tests may use [`Bank::control`] only).
    pub control_socket: bool,
    /// Mean interval of vendor URC chatter (dialects that have any); None = silent.
    pub chatter: Option<Duration>,
    /// Modems (by index) that expose a second AT port, DIR/modemN-at2, as two-port modules
    /// do (Quectel's ttyUSB2 and ttyUSB3): same SIM, storage and network, its own echo and
    /// command state; unsolicited lines go to the primary DIR/modemN only.
    pub second_port: Vec<usize>,
    /// Also run the virtual CMPP gateway (ISMG).
    pub cmpp: Option<IsmgConfig>,
}

impl SimConfig {
    /// Defaults of `smsgate sim`: generic dialect, 800 ms latency, reports after 1 s.
    pub fn new(modems: usize, dir: impl Into<PathBuf>) -> SimConfig {
        SimConfig {
            modems,
            dir: dir.into(),
            dialect: DialectChoice::One(Dialect::Generic),
            latency: Duration::from_millis(800),
            report_delay: Duration::from_secs(1),
            seed: None,
            control_socket: true,
            chatter: Some(Duration::from_secs(5)),
            second_port: Vec::new(),
            cmpp: None,
        }
    }
}

/// Errors of the sim layer.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("no modem {0} (the bank has {1})")]
    NoSuchModem(usize, usize),
    #[error("the bank has shut down")]
    Gone,
    #[error("control protocol: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}
