//! The REAL driver (`smsgate::modem::Modem::open`) against the virtual bank over its real
//! pseudo-terminals: the PHS text flow (^HSMSSS, +CMGF=1, ^HCMGS, UCS2 + 00 1A, ^HCMGSS),
//! the "drops the reply after '>' when the PDU carries an SMSC" quirk, and injected
//! status-report failures. The sim never shares code with the driver, so a pass here means
//! the driver and an independently written modem agree on the wire.

use std::time::Duration;

use smsgate::modem::dialect::{self, Dialect, Faults};
use smsgate::modem::{LinkError, Modem, ModemConfig, ModemEvent};
use smsgate::pdu::{Sms, TpStatus, Tpdu};
use smsgate::sim::{Bank, Control, DialectChoice, Quirk, SimConfig};

async fn bank(modems: usize, d: smsgate::sim::Dialect) -> (tempfile::TempDir, Bank) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(modems, dir.path());
    cfg.dialect = DialectChoice::One(d);
    cfg.latency = Duration::from_millis(30);
    cfg.report_delay = Duration::from_millis(30);
    cfg.seed = Some(7);
    cfg.control_socket = false;
    cfg.chatter = None;
    let bank = Bank::start(cfg).await.unwrap();
    (dir, bank)
}

fn config(port: &std::path::Path, d: &'static Dialect) -> ModemConfig {
    let mut cfg = ModemConfig::new(port.to_string_lossy());
    cfg.dialect = Some(d);
    cfg.health_interval = Duration::from_secs(3600);
    cfg.probe_timeout = Duration::from_millis(500);
    cfg.probe_attempts = 2;
    cfg.send_timeout = Duration::from_secs(5);
    cfg.reopen_backoff = vec![Duration::from_millis(10)];
    cfg
}

fn events(bank: &Bank) -> Vec<serde_json::Value> {
    std::fs::read_to_string(bank.events_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// SMSC part `smsc` (hex) + SMS-SUBMIT with SRR to `digits` (type `toa`), UCS2 `text`.
/// Returns (hex, TPDU length for +CMGS).
fn submit(smsc: &str, digits: &str, toa: u8, text: &str) -> (String, u16) {
    let mut bcd: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    if bcd.len() % 2 == 1 {
        bcd.push(0x0F);
    }
    let addr: Vec<u8> = bcd.chunks(2).map(|p| p[0] | (p[1] << 4)).collect();
    let ud: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    // First octet 0x21: SUBMIT with TP-SRR; MR 0; PID 0; DCS 0x08 (UCS2); no VP.
    let mut tpdu = vec![0x21, 0x00, digits.len() as u8, toa];
    tpdu.extend(addr);
    tpdu.extend([0x00, 0x08, ud.len() as u8]);
    tpdu.extend(ud);
    (
        format!("{smsc}{}", hex::encode_upper(&tpdu)),
        tpdu.len() as u16,
    )
}

#[tokio::test]
async fn real_driver_sends_chinese_through_the_phs_text_flow() {
    let (_dir, bank) = bank(1, smsgate::sim::Dialect::Phs).await;
    let phs = dialect::by_name("phs").unwrap();
    let (h, _ev) = Modem::open(bank.port_path(0), &config(&bank.port_path(0), phs)).unwrap();
    let id = h.identity().await.unwrap();
    assert_eq!(id.dialect, "phs");
    assert_eq!(id.destination_toa, 0x81);

    // A fixed-line (PHS) destination in national form, as the daemon builds it for PHS.
    let text = "您的验证码是1234，业务办理请回复TD退订【测试】";
    let (pdu, len) = submit("00", "075512345678", 0x81, text);
    let mr = h.send_part(&pdu, len, false).await.unwrap().unwrap();

    let ev = events(&bank);
    let sent: Vec<_> = ev.iter().filter(|e| e["event"] == "hcmgs").collect();
    assert_eq!(sent.len(), 1, "{ev:#?}");
    assert_eq!(sent[0]["to"], "075512345678");
    assert_eq!(sent[0]["text"], text);
    assert_eq!(sent[0]["mr"], mr);
    // Nothing went the PDU way.
    assert!(!ev.iter().any(|e| e["event"] == "cmgs"));

    // A failure the network reports arrives as ^HCMGSF and is a device error, not a link one.
    bank.control(Control::Fail {
        modem: 0,
        cms: 107,
        mode: smsgate::sim::FailMode::Once,
    })
    .await
    .unwrap();
    let r = h.send_part(&pdu, len, false).await.unwrap();
    assert!(r.is_err(), "{r:?}");
    assert_eq!(
        events(&bank)
            .iter()
            .filter(|e| e["event"] == "hcmgs")
            .count(),
        1
    );
    h.shutdown(std::time::Duration::from_secs(5)).await;
    bank.shutdown().await;
}

/// Generic GSM dialect plus the "drops replies with an SMSC" fault, as a vendor file would
/// declare it.
static SMSC_DROPPER: Dialect = Dialect {
    name: "smsc-dropper",
    faults: Faults {
        drops_reply_with_smsc: true,
        ..dialect::generic::GENERIC.faults
    },
    ..dialect::generic::GENERIC
};

#[tokio::test]
async fn smsc_drop_quirk_is_survived_by_stripping_the_smsc() {
    let (_dir, bank) = bank(2, smsgate::sim::Dialect::Generic).await;
    for modem in 0..2 {
        let r = bank
            .control(Control::Quirk {
                modem,
                quirk: Quirk::SmscDrop,
                on: true,
            })
            .await
            .unwrap();
        assert!(r.ok);
    }
    // +31624000000 as SMSC in front of the SUBMIT (the way gammu writes it).
    let (pdu, len) = submit("07911326040000F0", "8613912345678", 0x91, "你好");

    // A driver that knows the fault strips the SMSC ("00" = use +CSCA): the part goes out.
    let (h, _ev) = Modem::open(
        bank.port_path(0),
        &config(&bank.port_path(0), &SMSC_DROPPER),
    )
    .unwrap();
    h.identity().await.unwrap();
    assert!(h.send_part(&pdu, len, false).await.unwrap().is_ok());
    let sent: Vec<_> = events(&bank)
        .into_iter()
        .filter(|e| e["event"] == "cmgs")
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0]["pdu"].as_str().unwrap().starts_with("0021"));

    // One that does not gets no answer at all: the outcome is unknown, nothing was sent.
    let mut cfg = config(&bank.port_path(1), &dialect::generic::GENERIC);
    cfg.send_timeout = Duration::from_millis(800);
    let (h1, _ev1) = Modem::open(bank.port_path(1), &cfg).unwrap();
    h1.identity().await.unwrap();
    let r = h1.send_part(&pdu, len, false).await;
    assert!(
        matches!(
            r,
            Err(LinkError::Unconfirmed { .. }) | Err(LinkError::Timeout { .. })
        ),
        "{r:?}"
    );
    let ev = events(&bank);
    assert!(ev
        .iter()
        .any(|e| e["modem"] == 1 && e["kind"] == "smsc_drop"));
    assert!(!ev.iter().any(|e| e["modem"] == 1 && e["event"] == "cmgs"));
    h.shutdown(std::time::Duration::from_secs(5)).await;
    h1.shutdown(std::time::Duration::from_secs(5)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn injected_report_status_reaches_the_driver() {
    let (_dir, bank) = bank(1, smsgate::sim::Dialect::Generic).await;
    let generic = &dialect::generic::GENERIC;
    let (h, mut ev) = Modem::open(bank.port_path(0), &config(&bank.port_path(0), generic)).unwrap();
    h.identity().await.unwrap();
    let (pdu, len) = submit("00", "8613912345678", 0x91, "你好");

    let mut statuses = Vec::new();
    for status in [0x46u8, 0x00] {
        bank.control(Control::ReportStatus { modem: 0, status })
            .await
            .unwrap();
        let mr = h.send_part(&pdu, len, false).await.unwrap().unwrap();
        let report = loop {
            match tokio::time::timeout(Duration::from_secs(10), ev.recv()).await {
                Ok(Some(ModemEvent::StatusReport(p))) => break p,
                Ok(Some(_)) => continue,
                other => panic!("no status report: {other:?}"),
            }
        };
        let Tpdu::StatusReport(sr) = Sms::parse_hex(&report.pdu_hex).unwrap().tpdu else {
            panic!("not a status report: {}", report.pdu_hex)
        };
        assert_eq!(sr.message_reference, mr);
        statuses.push(sr.status);
        let _ = report.ack.ack().await;
    }
    assert_eq!(statuses, [TpStatus(0x46), TpStatus(0x00)]);
    assert!(events(&bank)
        .iter()
        .any(|e| e["event"] == "status_report" && e["status"] == 0x46));
    h.shutdown(std::time::Duration::from_secs(5)).await;
    bank.shutdown().await;
}
