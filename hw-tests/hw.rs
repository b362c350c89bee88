//! Tests on real hardware, for a technician with a modem on the bench. Skipped (saying so on
//! stderr) unless `SMSGATE_HW_PORT` names a port; the send test also needs `SMSGATE_HW_TO`
//! (a number that may receive one test SMS). Run them with
//! `SMSGATE_HW_PORT=/dev/ttyUSB0 cargo test --test hw -- --nocapture` (README, "hw-tests").
//! What must always hold: without those variables every test passes without touching a port;
//! with them, the tests take turns on the one port (a lock), and at most one SMS is sent.

use std::path::PathBuf;
use std::time::Duration;

use smsgate::diag::{self, DiagOptions, SimState, Status};
use smsgate::modem::{Modem, ModemConfig, ModemEvent};

/// One test at a time on the port: two opens would fight over it (TIOCEXCL).
static PORT_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn hw_port(test: &str) -> Option<PathBuf> {
    match std::env::var_os("SMSGATE_HW_PORT") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("hw test {test}: skipped (set SMSGATE_HW_PORT=/dev/ttyUSB0 to run it)");
            None
        }
    }
}

fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

#[tokio::test]
async fn diag_probes_the_real_port() {
    let Some(port) = hw_port("diag_probes_the_real_port") else {
        return;
    };
    let _g = PORT_LOCK.lock().await;
    let r = diag::probe_port(&port, &DiagOptions::default()).await;
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(r.answered, "no answer: {}", r.verdict.hint);
    let imei = r.imei.as_deref().unwrap_or("");
    assert!(
        imei.len() == 15 && luhn_ok(imei),
        "IMEI {imei:?} is not 15 digits with a valid check digit"
    );
    assert_eq!(r.sim, Some(SimState::Ready), "{}", r.verdict.hint);
    assert_ne!(r.verdict.status, Status::Problem, "{}", r.verdict.hint);
}

#[tokio::test]
async fn the_driver_initialises_the_real_modem() {
    let Some(port) = hw_port("the_driver_initialises_the_real_modem") else {
        return;
    };
    let _g = PORT_LOCK.lock().await;
    let probe = diag::probe_port(&port, &DiagOptions::default()).await;
    let mut cfg = ModemConfig::new(port.display().to_string());
    cfg.baud_rate = probe.baud.unwrap_or(115_200);
    cfg.read_stored_at_start = false;
    let (handle, mut events) = Modem::open(&port, &cfg).unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(ev) = events.recv().await {
            match ev {
                ModemEvent::Ready(id) => return Ok(id),
                ModemEvent::Failed(e) | ModemEvent::Gone(e) => return Err(e),
                _ => {}
            }
        }
        Err("event channel closed".to_string())
    })
    .await
    .expect("init within 60 s")
    .expect("init succeeded");
    assert_eq!(Some(ready.imei.clone().unwrap_or_default()), probe.imei);
    assert_eq!(ready.dialect, probe.dialect.unwrap_or(""));
    handle.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn one_test_sms_gets_a_message_reference() {
    let Some(port) = hw_port("one_test_sms_gets_a_message_reference") else {
        return;
    };
    let Some(to) = std::env::var("SMSGATE_HW_TO")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!(
            "hw test one_test_sms_gets_a_message_reference: skipped (set SMSGATE_HW_TO=+86... to send one SMS)"
        );
        return;
    };
    let _g = PORT_LOCK.lock().await;
    let opts = DiagOptions {
        send_test: Some(to),
        ..DiagOptions::default()
    };
    let r = diag::probe_port(&port, &opts).await;
    let t = r.send_test.expect("the send test ran");
    assert!(
        t.mr.is_some(),
        "test SMS failed: {:?} ({:?})",
        t.error,
        t.class
    );
}

#[tokio::test]
async fn the_binary_reports_json_and_exit_status() {
    let Some(port) = hw_port("the_binary_reports_json_and_exit_status") else {
        return;
    };
    let _g = PORT_LOCK.lock().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .arg("diag")
        .arg(&port)
        .arg("--json")
        .output()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = v[0]["verdict"]["status"].as_str().unwrap_or("");
    assert_eq!(
        out.status.code(),
        Some(if status == "problem" { 1 } else { 0 }),
        "{v}"
    );
    assert_eq!(v[0]["answered"], true, "{v}");
}

#[test]
fn luhn_check_matches_a_known_imei() {
    // IMEI example from 3GPP TS 23.003 Annex B: 49015420323751 has check digit 8.
    assert!(luhn_ok("490154203237518"));
    assert!(!luhn_ok("490154203237519"));
}
