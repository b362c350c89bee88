//! Control of a running bank: the [`Control`] commands (inject, faults, status), their
//! [`ControlReply`], and the JSON-lines protocol over the Unix socket DIR/ctl.sock that
//! `smsgate sim ctl` speaks. One request line gets exactly one reply line:
//! `{"ok":true,...}` or `{"ok":false,"error":"..."}`. Durations travel as milliseconds.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::dialect::Dialect;
use super::identity::Identity;
use super::ismg::{IsmgControl, IsmgStatus};
use super::modem::{Counters, FailMode, FailRule};
use super::SimError;

/// A command to a running bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Control {
    /// The network delivers an SMS to the modem (long and UCS2 texts as concatenated parts).
    Inject {
        modem: usize,
        from: String,
        text: String,
    },
    /// Network time of AT+CMGS from now on.
    Latency {
        modem: usize,
        ms: u64,
    },
    /// Submits fail with +CMS ERROR: cms per mode.
    Fail {
        modem: usize,
        cms: u16,
        mode: FailMode,
    },
    /// Stop answering (input is swallowed), for `for_ms` or until `recover`.
    Hang {
        modem: usize,
        for_ms: Option<u64>,
    },
    /// Write line noise to the port.
    Garbage {
        modem: usize,
    },
    /// Close the port (link removed, pty hung up), then come back on a new pty after `for_ms`
    /// (default 5 s). With `after_submit`, armed instead: the next submit the network
    /// accepts (logged as `cmgs`, a status report may follow) is followed by the unplug
    /// before its "+CMGS:" is written (a brown-out after the part left).
    Unplug {
        modem: usize,
        for_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        after_submit: bool,
    },
    /// The next submit's final answer (`+CMGS: <mr>` / OK, or its error; the OK after a
    /// text-mode ^HCMGS) is held back `ms`; the part still reaches the network on time, and
    /// commands sent meanwhile are answered after it, in order, as on a serial line.
    Late {
        modem: usize,
        ms: u64,
    },
    /// The modem resets by itself: deaf for `for_ms` (default 300 ms; input is lost), then
    /// its dialect's boot burst ("RDY", "+CPIN: READY", ...) with power-on settings (echo
    /// on, +CMGF=1, +CNMI as shipped, +CMEE=0). The port stays open. A submit in flight is
    /// lost with the modem's memory (it never reaches the network); status reports the
    /// network owes still arrive.
    Reboot {
        modem: usize,
        for_ms: Option<u64>,
    },
    /// Pull the SIM: +CPIN: NOT READY, then +CME ERROR: 10 / +CMS ERROR: 310.
    SimRemove {
        modem: usize,
    },
    SimInsert {
        modem: usize,
    },
    /// Registration lost (+CREG stat 2) or back (stat 1).
    Network {
        modem: usize,
        up: bool,
    },
    /// SIM storage full: inbound not stored, +CMS ERROR: 322 on AT+CMGW.
    MemoryFull {
        modem: usize,
        full: bool,
    },
    /// Turn a dialect quirk on or off (e.g. `smsc-drop`).
    Quirk {
        modem: usize,
        quirk: Quirk,
        on: bool,
    },
    /// TP-Status carried by the modem's status reports from now on (0x00 delivered; 0x46
    /// validity expired, 0x20-0x3F temporary, ...). `recover` sets it back to 0x00.
    ReportStatus {
        modem: usize,
        status: u8,
    },
    /// Clear every fault of the modem.
    Recover {
        modem: usize,
    },
    /// Identities, state and counters of every modem.
    Status,
    /// A command to the virtual CMPP gateway: `{"cmd":"cmpp","cmpp":"drop"}`.
    Cmpp(IsmgControl),
}

impl Control {
    /// The modem a command addresses (None for bank-wide ones).
    pub fn modem(&self) -> Option<usize> {
        use Control::*;
        match self {
            Inject { modem, .. }
            | Latency { modem, .. }
            | Fail { modem, .. }
            | Hang { modem, .. }
            | Garbage { modem }
            | Unplug { modem, .. }
            | Late { modem, .. }
            | Reboot { modem, .. }
            | SimRemove { modem }
            | SimInsert { modem }
            | Network { modem, .. }
            | MemoryFull { modem, .. }
            | Quirk { modem, .. }
            | ReportStatus { modem, .. }
            | Recover { modem } => Some(*modem),
            Status | Cmpp(_) => None,
        }
    }
}

/// A misbehaviour of real modems that can be switched on at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quirk {
    /// Drops its reply after `>` when the PDU carries an SMSC address (the part is not
    /// sent); a PDU starting `00` (use +CSCA) goes through. Drivers strip the SMSC for it.
    SmscDrop,
}

impl std::str::FromStr for Quirk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "smsc-drop" => Ok(Quirk::SmscDrop),
            other => Err(format!("unknown quirk {other:?} (expected smsc-drop)")),
        }
    }
}

/// What one modem looks like from outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModemStatus {
    pub index: usize,
    pub dialect: Dialect,
    /// DIR/modemN.
    pub port: String,
    /// The current /dev/pts/N (None while unplugged).
    pub tty: Option<String>,
    pub imei: String,
    pub imsi: String,
    pub iccid: String,
    pub number: String,
    pub operator: String,
    pub state: String,
    pub latency_ms: u64,
    pub hung: bool,
    /// Input bytes dropped while hung.
    pub swallowed_bytes: u64,
    /// Clients that have the port open now (inotify; 0 when unknown).
    pub clients: u32,
    pub sim_present: bool,
    pub registered: bool,
    pub memory_full: bool,
    pub fail: Option<String>,
    /// The `smsc-drop` quirk is on.
    #[serde(default)]
    pub smsc_drop: bool,
    /// TP-Status of the next status reports.
    #[serde(default)]
    pub report_status: u8,
    pub storage_used: usize,
    pub storage_capacity: usize,
    /// Status reports kept in the "SR" memory.
    #[serde(default)]
    pub reports_stored: usize,
    /// DIR/modemN-at2 when the modem has a second AT port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_tty: Option<String>,
    #[serde(default)]
    pub second_clients: u32,
    /// `unplug --after-submit` is armed and has not fired yet.
    #[serde(default)]
    pub unplug_after_submit: bool,
    /// `late` is armed: the next submit's answer is held back this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<u64>,
    pub counters: CountersView,
}

/// Serializable copy of [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersView {
    pub commands: u64,
    pub submitted: u64,
    pub failed: u64,
    pub rejected_pdus: u64,
    pub inbound: u64,
    pub status_reports: u64,
}

impl From<&Counters> for CountersView {
    fn from(c: &Counters) -> Self {
        CountersView {
            commands: c.commands,
            submitted: c.submitted,
            failed: c.failed,
            rejected_pdus: c.rejected_pdus,
            inbound: c.inbound,
            status_reports: c.status_reports,
        }
    }
}

pub(crate) fn describe_fail(rule: &Option<FailRule>) -> Option<String> {
    rule.map(|r| match r.mode {
        FailMode::Once => format!("cms {} once", r.cms),
        FailMode::Times(n) => format!("cms {} x{n}", r.cms),
        FailMode::Rate(p) => format!("cms {} rate {p}", r.cms),
        FailMode::Always => format!("cms {} always", r.cms),
    })
}

pub(crate) fn identity_fields(id: &Identity) -> (String, String, String, String, String) {
    (
        id.imei.clone(),
        id.imsi.clone(),
        id.iccid.clone(),
        id.number.clone(),
        id.carrier.operator_name().to_string(),
    )
}

/// The answer to a [`Control`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modems: Vec<ModemStatus>,
    /// The virtual CMPP gateway (for `cmpp` commands and `status` when it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IsmgStatus>,
}

impl ControlReply {
    pub fn done() -> Self {
        ControlReply {
            ok: true,
            error: None,
            modems: vec![],
            gateway: None,
        }
    }
    pub fn error(e: impl Into<String>) -> Self {
        ControlReply {
            ok: false,
            error: Some(e.into()),
            modems: vec![],
            gateway: None,
        }
    }
}

/// Sends one command to the bank serving `dir` (over DIR/ctl.sock) and returns its reply.
pub async fn request(dir: &Path, cmd: &Control) -> Result<ControlReply, SimError> {
    let path = dir.join("ctl.sock");
    let stream = UnixStream::connect(&path)
        .await
        .map_err(|e| SimError::Io(format!("connect {}", path.display()), e))?;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_string(cmd).map_err(|e| SimError::Protocol(e.to_string()))?;
    line.push('\n');
    w.write_all(line.as_bytes())
        .await
        .map_err(|e| SimError::Io("write ctl.sock".into(), e))?;
    let mut answer = String::new();
    BufReader::new(r)
        .read_line(&mut answer)
        .await
        .map_err(|e| SimError::Io("read ctl.sock".into(), e))?;
    serde_json::from_str(&answer)
        .map_err(|e| SimError::Protocol(format!("bad reply {answer:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ctl.sock wire format is an interface (README): keep it stable.
    #[test]
    fn wire_format() {
        let cases = [
            (
                Control::Fail {
                    modem: 0,
                    cms: 38,
                    mode: FailMode::Times(2),
                },
                r#"{"cmd":"fail","modem":0,"cms":38,"mode":{"times":2}}"#,
            ),
            (
                Control::Fail {
                    modem: 1,
                    cms: 42,
                    mode: FailMode::Once,
                },
                r#"{"cmd":"fail","modem":1,"cms":42,"mode":"once"}"#,
            ),
            (
                Control::Inject {
                    modem: 0,
                    from: "+8613912345678".into(),
                    text: "TD".into(),
                },
                r#"{"cmd":"inject","modem":0,"from":"+8613912345678","text":"TD"}"#,
            ),
            (
                Control::Unplug {
                    modem: 2,
                    for_ms: Some(5000),
                    after_submit: false,
                },
                r#"{"cmd":"unplug","modem":2,"for_ms":5000}"#,
            ),
            (
                Control::Unplug {
                    modem: 0,
                    for_ms: Some(200),
                    after_submit: true,
                },
                r#"{"cmd":"unplug","modem":0,"for_ms":200,"after_submit":true}"#,
            ),
            (
                Control::Late { modem: 1, ms: 3000 },
                r#"{"cmd":"late","modem":1,"ms":3000}"#,
            ),
            (
                Control::Reboot {
                    modem: 0,
                    for_ms: None,
                },
                r#"{"cmd":"reboot","modem":0,"for_ms":null}"#,
            ),
            (
                Control::SimRemove { modem: 0 },
                r#"{"cmd":"sim-remove","modem":0}"#,
            ),
            (Control::Status, r#"{"cmd":"status"}"#),
            (
                Control::Cmpp(IsmgControl::Drop),
                r#"{"cmd":"cmpp","cmpp":"drop"}"#,
            ),
            (
                Control::Cmpp(IsmgControl::FlowControl { rate: 0.5 }),
                r#"{"cmd":"cmpp","cmpp":"flow-control","rate":0.5}"#,
            ),
            (
                Control::Quirk {
                    modem: 1,
                    quirk: Quirk::SmscDrop,
                    on: true,
                },
                r#"{"cmd":"quirk","modem":1,"quirk":"smsc-drop","on":true}"#,
            ),
            (
                Control::ReportStatus {
                    modem: 0,
                    status: 0x46,
                },
                r#"{"cmd":"report-status","modem":0,"status":70}"#,
            ),
        ];
        for (cmd, json) in cases {
            assert_eq!(serde_json::to_string(&cmd).unwrap(), json);
            assert_eq!(serde_json::from_str::<Control>(json).unwrap(), cmd);
        }
        assert_eq!(
            serde_json::to_string(&ControlReply::done()).unwrap(),
            r#"{"ok":true}"#
        );
        assert!(serde_json::from_str::<Control>(r#"{"cmd":"explode"}"#).is_err());
    }
}
