//! `[modems]`: the modem bank's settings — which serial ports join it, their baud rate and AT
//! dialect, the SIM PIN, the bound on one send and what an ambiguous modem error does to its part.
//!
//! What must hold: every key has the default documented in README "Configuration"; unknown keys
//! are errors (`deny_unknown_fields`); the checks on these values live in [`super::Config::validate`].

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::durations::duration;

/// `[modems]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModemsConfig {
    /// Globs of serial ports; hot-plugged ports matching them join the bank.
    pub ports: Vec<String>,
    pub baud: u32,
    /// "auto" (the udev rules' `SMSGATE_DIALECT` hint for the port, else probe), or a dialect
    /// name: generic, huawei, zte, quectel, simcom, wavecom, phs.
    pub dialect: String,
    /// SIM PIN, entered when a SIM asks for one.
    pub pin: Option<String>,
    /// Bound on one AT+CMGS exchange (prompt, PDU, network answer); a modem silent that long
    /// is treated as a broken link (the part becomes `unknown` if its PDU was written).
    #[serde(with = "duration")]
    pub send_timeout: SignedDuration,
    /// What an ambiguous modem error (`+CMS ERROR: 332` network timeout, `500` unknown: the
    /// part may have reached the SMSC) does to its part: `hold` it as `unknown` until a status
    /// report or the operator settles it (never twice), or `retry` it elsewhere once
    /// `settle_window` passed with no report (for senders who prefer a possible duplicate to
    /// a lost OTP).
    pub on_ambiguous: OnAmbiguous,
    /// How long after its send an `unknown` part can be settled by a status report (or a late
    /// `+CMGS` answer) for its SIM and recipient, and how long `on_ambiguous = "retry"` waits.
    #[serde(with = "duration")]
    pub settle_window: SignedDuration,
}

/// `modems.on_ambiguous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAmbiguous {
    #[default]
    Hold,
    Retry,
}

impl Default for ModemsConfig {
    fn default() -> Self {
        ModemsConfig {
            ports: vec!["/dev/gsm/*".into()],
            baud: 115_200,
            dialect: "auto".into(),
            pin: None,
            send_timeout: SignedDuration::from_secs(60),
            on_ambiguous: OnAmbiguous::Hold,
            settle_window: SignedDuration::from_mins(10),
        }
    }
}
