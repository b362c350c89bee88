//! The pure half of `smsgate diag`: what a port's findings mean for a technician. Signal in
//! dBm and bars from +CSQ, and the one [`Verdict`] per port with a hint someone standing at
//! the rack can act on. What must always hold: the most basic problem wins (a port nobody can
//! open is not reported as "no network"); only [`Status::Problem`] makes the exit status 1.

use serde::Serialize;

use super::{PortReport, SimState};
use crate::at::RegStatus;

/// How bad a port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Ok,
    /// Works, but something deserves a look (weak signal, line noise).
    Warning,
    /// Cannot send as it is.
    Problem,
}

/// The verdict on one port: a stable code for scripts and a hint for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Verdict {
    pub status: Status,
    /// Stable identifier: `ok`, `not_found`, `port_held`, `open_failed`, `no_answer`,
    /// `link_failed`, `sim_not_inserted`, `pin_required`, `puk_required`, `sim_failure`,
    /// `registration_denied`, `no_network`, `pdu_mode_refused`, `storage_full`,
    /// `send_failed`, `weak_signal`, `line_noise`.
    pub code: &'static str,
    pub hint: String,
}

impl Verdict {
    fn new(status: Status, code: &'static str, hint: impl Into<String>) -> Verdict {
        Verdict {
            status,
            code,
            hint: hint.into(),
        }
    }
}

/// Whether a dBm figure is exact or a bound (+CSQ 0 and 31 are open-ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    Exact,
    AtMost,
    AtLeast,
}

/// Signal strength as +CSQ reports it, in the units a technician reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Signal {
    pub rssi: u8,
    pub ber: u8,
    /// None when the modem does not know (99) or gave a value outside the table.
    pub dbm: Option<i16>,
    pub bound: Option<Bound>,
    /// 0-5; None when unknown.
    pub bars: Option<u8>,
}

impl Signal {
    /// Builds the figures from +CSQ's `<rssi>,<ber>` (TS 27.007 §8.5).
    pub fn from_csq(rssi: u8, ber: u8) -> Signal {
        let (dbm, bound) = match csq_dbm(rssi) {
            Some((d, b)) => (Some(d), Some(b)),
            None => (None, None),
        };
        Signal {
            rssi,
            ber,
            dbm,
            bound,
            bars: csq_bars(rssi),
        }
    }

    /// `-89 dBm`, `<= -113 dBm`, `>= -51 dBm`, `unknown`.
    pub fn dbm_text(&self) -> String {
        match (self.dbm, self.bound) {
            (Some(d), Some(Bound::AtMost)) => format!("<= {d} dBm"),
            (Some(d), Some(Bound::AtLeast)) => format!(">= {d} dBm"),
            (Some(d), _) => format!("{d} dBm"),
            _ => "unknown".to_string(),
        }
    }
}

/// +CSQ rssi to dBm: 0 -> <= -113, 1 -> -111, 2..30 -> -113 + 2*rssi, 31 -> >= -51,
/// 99 (and anything else) unknown.
pub fn csq_dbm(rssi: u8) -> Option<(i16, Bound)> {
    match rssi {
        0 => Some((-113, Bound::AtMost)),
        1..=30 => Some((-113 + 2 * i16::from(rssi), Bound::Exact)),
        31 => Some((-51, Bound::AtLeast)),
        _ => None,
    }
}

/// +CSQ rssi to 0-5 bars. The cut points follow common handset practice: below -109 dBm
/// (rssi < 2) nothing usable, then roughly 10 dB per bar up to -63 dBm (rssi 25) and above.
pub fn csq_bars(rssi: u8) -> Option<u8> {
    match rssi {
        0..=1 => Some(0),
        2..=9 => Some(1),
        10..=14 => Some(2),
        15..=19 => Some(3),
        20..=24 => Some(4),
        25..=31 => Some(5),
        _ => None,
    }
}

/// Judges one port from its findings, most basic problem first.
pub fn judge(r: &PortReport) -> Verdict {
    use Status::*;
    if r.not_found {
        return Verdict::new(
            Problem,
            "not_found",
            "no such port: check the cable and the device name",
        );
    }
    if !r.holders.is_empty() || r.busy {
        let names = if r.holders.is_empty() {
            "unknown process".to_string()
        } else {
            r.holders
                .iter()
                .map(|h| format!("{} (pid {})", h.name, h.pid))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let extra = if r.holders.iter().any(|h| h.name.contains("ModemManager")) {
            "; stop ModemManager or tag the port ID_MM_DEVICE_IGNORE=1 (udev)"
        } else if r.holders.iter().any(|h| h.name == "smsgate") {
            "; the smsgate daemon drives this port: stop it first (systemctl stop smsgate)"
        } else {
            ""
        };
        return Verdict::new(
            Problem,
            "port_held",
            format!("port held by another process: {names}{extra}"),
        );
    }
    if let Some(e) = &r.open_error {
        return Verdict::new(Problem, "open_failed", format!("cannot open the port: {e}"));
    }
    if !r.answered {
        return Verdict::new(Problem, "no_answer", "no answer: wrong port or baud");
    }
    if let Some(e) = &r.link_error {
        return Verdict::new(
            Problem,
            "link_failed",
            format!("the modem stopped answering during the probe ({e}): check power and cable"),
        );
    }
    match &r.sim {
        Some(SimState::NotInserted) => {
            return Verdict::new(Problem, "sim_not_inserted", "SIM not inserted")
        }
        Some(SimState::PinRequired) => {
            return Verdict::new(
                Problem,
                "pin_required",
                "PIN required: set the SIM's PIN in the configuration or remove the PIN lock",
            )
        }
        Some(SimState::PukRequired) => {
            return Verdict::new(
                Problem,
                "puk_required",
                "PUK required: the SIM is blocked, unblock it in a phone",
            )
        }
        Some(SimState::Other(s)) => {
            return Verdict::new(
                Problem,
                "sim_failure",
                format!("SIM not ready ({s}): reseat or replace the SIM"),
            )
        }
        Some(SimState::Ready) | None => {}
    }
    match r.registration {
        Some(RegStatus::Home | RegStatus::Roaming) => {}
        Some(RegStatus::Denied) => return Verdict::new(
            Problem,
            "registration_denied",
            "registration denied by the network: SIM suspended or not activated, call the carrier",
        ),
        _ => return Verdict::new(Problem, "no_network", "no network: check antenna"),
    }
    if r.pdu_required && r.pdu_mode == Some(false) {
        return Verdict::new(
            Problem,
            "pdu_mode_refused",
            "PDU mode refused (AT+CMGF=0): this modem cannot send for smsgate",
        );
    }
    if r.storage.iter().any(|s| s.total > 0 && s.used >= s.total) {
        return Verdict::new(
            Problem,
            "storage_full",
            "SIM message storage full: inbound SMS (opt-outs!) are lost; delete stored messages",
        );
    }
    if let Some(t) = &r.send_test {
        if t.mr.is_none() {
            return Verdict::new(
                Problem,
                "send_failed",
                format!(
                    "test SMS failed: {}",
                    t.error.as_deref().unwrap_or("no answer")
                ),
            );
        }
    }
    if r.signal.and_then(|s| s.bars).is_some_and(|b| b <= 1) {
        return Verdict::new(
            Warning,
            "weak_signal",
            "weak signal: move the antenna or use an external one",
        );
    }
    if r.garbage_bytes > 0 {
        return Verdict::new(
            Warning,
            "line_noise",
            format!(
                "{} bytes of line noise: check the cable, baud and grounding",
                r.garbage_bytes
            ),
        );
    }
    Verdict::new(Ok, "ok", "ready to send")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Holder, SendTestOutcome, Storage};

    fn healthy() -> PortReport {
        PortReport {
            answered: true,
            sim: Some(SimState::Ready),
            registration: Some(RegStatus::Home),
            signal: Some(Signal::from_csq(20, 99)),
            pdu_required: true,
            pdu_mode: Some(true),
            ..PortReport::default()
        }
    }

    #[test]
    fn csq_to_dbm_follows_ts_27_007() {
        assert_eq!(csq_dbm(0), Some((-113, Bound::AtMost)));
        assert_eq!(csq_dbm(1), Some((-111, Bound::Exact)));
        assert_eq!(csq_dbm(2), Some((-109, Bound::Exact)));
        assert_eq!(csq_dbm(15), Some((-83, Bound::Exact)));
        assert_eq!(csq_dbm(30), Some((-53, Bound::Exact)));
        assert_eq!(csq_dbm(31), Some((-51, Bound::AtLeast)));
        assert_eq!(csq_dbm(99), None);
        assert_eq!(csq_dbm(32), None);
        assert_eq!(Signal::from_csq(0, 99).dbm_text(), "<= -113 dBm");
        assert_eq!(Signal::from_csq(31, 0).dbm_text(), ">= -51 dBm");
        assert_eq!(Signal::from_csq(12, 0).dbm_text(), "-89 dBm");
        assert_eq!(Signal::from_csq(99, 99).dbm_text(), "unknown");
    }

    #[test]
    fn bars_are_monotonic_and_bounded() {
        assert_eq!(csq_bars(0), Some(0));
        assert_eq!(csq_bars(2), Some(1));
        assert_eq!(csq_bars(31), Some(5));
        assert_eq!(csq_bars(99), None);
        let mut last = 0;
        for rssi in 0..=31 {
            let b = csq_bars(rssi).unwrap();
            assert!(b >= last && b <= 5, "rssi {rssi}");
            last = b;
        }
    }

    #[test]
    fn healthy_port_is_ok() {
        let v = judge(&healthy());
        assert_eq!((v.status, v.code), (Status::Ok, "ok"));
    }

    #[test]
    fn the_most_basic_problem_wins() {
        let mut r = healthy();
        r.registration = Some(RegStatus::Searching);
        assert_eq!(judge(&r).code, "no_network");
        assert_eq!(judge(&r).hint, "no network: check antenna");
        r.sim = Some(SimState::NotInserted);
        assert_eq!(judge(&r).hint, "SIM not inserted");
        r.answered = false;
        assert_eq!(judge(&r).hint, "no answer: wrong port or baud");
        r.holders = vec![Holder {
            pid: 812,
            name: "ModemManager".into(),
        }];
        let v = judge(&r);
        assert_eq!(v.code, "port_held");
        assert!(v
            .hint
            .starts_with("port held by another process: ModemManager (pid 812)"));
        r.not_found = true;
        assert_eq!(judge(&r).code, "not_found");
    }

    #[test]
    fn the_daemon_as_holder_gets_its_own_hint() {
        let r = PortReport {
            busy: true,
            holders: vec![Holder {
                pid: 4242,
                name: "smsgate".into(),
            }],
            ..PortReport::default()
        };
        let v = judge(&r);
        assert!(v.hint.contains("smsgate (pid 4242)"), "{}", v.hint);
        assert!(v.hint.contains("systemctl stop smsgate"), "{}", v.hint);
    }

    #[test]
    fn busy_without_known_holder_still_says_held() {
        let r = PortReport {
            busy: true,
            ..PortReport::default()
        };
        let v = judge(&r);
        assert_eq!(v.status, Status::Problem);
        assert!(v.hint.contains("unknown process"));
    }

    #[test]
    fn sim_and_network_states() {
        let mut r = healthy();
        r.sim = Some(SimState::PinRequired);
        assert!(judge(&r).hint.starts_with("PIN required"));
        r.sim = Some(SimState::PukRequired);
        assert_eq!(judge(&r).code, "puk_required");
        r.sim = Some(SimState::Ready);
        r.registration = Some(RegStatus::Denied);
        assert_eq!(judge(&r).code, "registration_denied");
        r.registration = Some(RegStatus::Roaming);
        assert_eq!(judge(&r).code, "ok");
        r.registration = None;
        assert_eq!(judge(&r).code, "no_network");
    }

    #[test]
    fn pdu_mode_only_matters_where_the_dialect_needs_it() {
        let mut r = healthy();
        r.pdu_mode = Some(false);
        assert_eq!(judge(&r).code, "pdu_mode_refused");
        r.pdu_required = false; // ^HCMGS modules send in text mode
        assert_eq!(judge(&r).code, "ok");
    }

    #[test]
    fn storage_send_test_and_warnings() {
        let mut r = healthy();
        r.storage = vec![Storage {
            mem: "SM".into(),
            used: 50,
            total: 50,
        }];
        assert_eq!(judge(&r).code, "storage_full");
        r.storage.clear();
        r.send_test = Some(SendTestOutcome {
            to: "139****5678".into(),
            mr: None,
            error: Some("+CMS ERROR: 38".into()),
            class: Some("transient_for_modem".into()),
        });
        assert!(judge(&r).hint.contains("+CMS ERROR: 38"));
        r.send_test = None;
        r.signal = Some(Signal::from_csq(3, 99));
        assert_eq!(judge(&r).status, Status::Warning);
        r.signal = Some(Signal::from_csq(99, 99));
        r.garbage_bytes = 12;
        assert_eq!(judge(&r).code, "line_noise");
    }
}
