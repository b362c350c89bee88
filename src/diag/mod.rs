//! `smsgate diag`: a technician's probe of serial ports, with no daemon. For each port it
//! finds out whether anything answers (and at which baud), who the modem and its SIM are,
//! signal, registration, SMSC, PDU-mode support and SIM storage, optionally sends one test
//! SMS, and gives one [`Verdict`] with a hint someone at the rack can act on.
//!
//! Layout: [`verdict`] (pure: dBm/bars, judging findings), [`holder`] (TIOCEXCL check and the
//! /proc scan that names who holds a port), [`probe`] (the I/O: one port over the driver's
//! [`AtSession`](crate::modem::AtSession)), [`trace`] (the AT exchange made readable).
//!
//! What must always hold: diag uses the driver's session, typed commands and dialects (it does
//! not carry an AT stack of its own); every exchange has a short timeout and ports are probed
//! concurrently, so a bank of dozens takes seconds; a port held by another process is never
//! written to; a full phone number is never printed (the test SMS recipient is masked).

pub mod holder;
pub mod probe;
pub mod trace;
pub mod verdict;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::at::RegStatus;
pub use holder::Holder;
pub use probe::{diagnose, discover, probe_port, CpmsQuery, Storage};
pub use trace::TraceEntry;
pub use verdict::{judge, Signal, Status, Verdict};

/// The baud rates tried, in order, until one answers (115200 first: nearly every USB modem).
pub const BAUD_RATES: [u32; 7] = [115_200, 9_600, 19_200, 38_400, 57_600, 230_400, 460_800];

/// Port globs probed when none is named.
pub const DEFAULT_PATTERNS: [&str; 3] = ["/dev/ttyUSB*", "/dev/ttyACM*", "/dev/gsm/*"];

/// How diag probes.
#[derive(Debug, Clone)]
pub struct DiagOptions {
    pub bauds: Vec<u32>,
    /// Wait for an answer to the liveness probe at one baud.
    pub probe_timeout: Duration,
    /// Probes per baud before trying the next.
    pub probe_attempts: u32,
    /// Bound on every other command.
    pub command_timeout: Duration,
    /// Bound on the test SMS (prompt, PDU, network answer).
    pub send_timeout: Duration,
    /// Keep the AT exchange in [`PortReport::trace`].
    pub trace: bool,
    /// Send one test SMS to this number from every port that is ready.
    pub send_test: Option<String>,
}

impl Default for DiagOptions {
    fn default() -> Self {
        DiagOptions {
            bauds: BAUD_RATES.to_vec(),
            probe_timeout: Duration::from_millis(600),
            probe_attempts: 2,
            command_timeout: Duration::from_secs(3),
            send_timeout: Duration::from_secs(60),
            trace: false,
            send_test: None,
        }
    }
}

/// SIM state from +CPIN? (or the +CME error it gave instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimState {
    Ready,
    PinRequired,
    PukRequired,
    NotInserted,
    /// Anything else: the modem's words, kept.
    Other(String),
}

impl SimState {
    pub fn as_str(&self) -> &str {
        match self {
            SimState::Ready => "ready",
            SimState::PinRequired => "pin_required",
            SimState::PukRequired => "puk_required",
            SimState::NotInserted => "not_inserted",
            SimState::Other(s) => s,
        }
    }
}

impl Serialize for SimState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `home`, `roaming`, `searching`, `denied`, `not_searching`, `unknown`, `reserved(N)`.
pub fn registration_name(r: RegStatus) -> String {
    match r {
        RegStatus::NotSearching => "not_searching".into(),
        RegStatus::Home => "home".into(),
        RegStatus::Searching => "searching".into(),
        RegStatus::Denied => "denied".into(),
        RegStatus::Unknown => "unknown".into(),
        RegStatus::Roaming => "roaming".into(),
        RegStatus::Reserved(n) => format!("reserved({n})"),
    }
}

fn ser_registration<S: Serializer>(r: &Option<RegStatus>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_str(&registration_name(*r)),
        None => s.serialize_none(),
    }
}

/// What the test SMS did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendTestOutcome {
    /// The recipient, masked.
    pub to: String,
    /// TP-MR from +CMGS (or ^HCMGSS) when the network took it.
    pub mr: Option<u8>,
    pub error: Option<String>,
    /// The scheduler's class of a device error (`permanent_for_message`, ...), or `link`.
    pub class: Option<String>,
}

/// Everything diag learnt about one port. Keys are documented in README ("smsgate diag").
#[derive(Debug, Clone, Default, Serialize)]
pub struct PortReport {
    /// The port as named (command line or glob match).
    pub port: String,
    /// Its canonical device node.
    pub device: Option<String>,
    #[serde(skip)]
    pub not_found: bool,
    /// Opening failed with EBUSY or the port is in exclusive mode.
    pub busy: bool,
    /// Processes holding the port, when it is held.
    pub holders: Vec<Holder>,
    pub open_error: Option<String>,
    pub answered: bool,
    pub baud: Option<u32>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub revision: Option<String>,
    pub dialect: Option<&'static str>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    /// Carrier implied by the IMSI's MCC-MNC (`china_mobile`, ...).
    pub carrier: Option<&'static str>,
    pub iccid: Option<String>,
    pub sim: Option<SimState>,
    pub signal: Option<Signal>,
    #[serde(serialize_with = "ser_registration")]
    pub registration: Option<RegStatus>,
    pub operator: Option<String>,
    pub smsc: Option<String>,
    /// AT+CMGF=0 accepted.
    pub pdu_mode: Option<bool>,
    /// The dialect sends in PDU mode (false for ^HCMGS text-mode modules).
    #[serde(skip)]
    pub pdu_required: bool,
    /// +CPMS? memories in order mem1 (read), mem2 (write), mem3 (receive).
    pub storage: Vec<Storage>,
    /// Bytes of line noise the digester skipped.
    pub garbage_bytes: u64,
    /// The link broke after the modem had answered.
    pub link_error: Option<String>,
    pub send_test: Option<SendTestOutcome>,
    pub verdict: Verdict,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<TraceEntry>,
}

/// True when no port has a [`Status::Problem`].
pub fn all_healthy(reports: &[PortReport]) -> bool {
    reports.iter().all(|r| r.verdict.status != Status::Problem)
}

/// The ports to probe when none is named: [`DEFAULT_PATTERNS`] through the bank's discovery.
pub fn default_ports() -> Vec<PathBuf> {
    discover(&DEFAULT_PATTERNS.map(String::from))
}
