//! A real client against the virtual modem bank: Debian's gammu (connection = at) identifies
//! modem0 and sends an SMS through it; the PDU gammu sent must appear in events.jsonl and decode
//! to the recipient and text. Skips, saying why, only when the gammu binary is absent.

use std::path::Path;
use std::time::Duration;

use smsgate::sim::{Bank, Control, SimConfig};

fn gammu_present() -> bool {
    std::process::Command::new("gammu")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn gammu(rc: &Path, args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new("gammu")
        .arg("-c")
        .arg(rc)
        .args(args)
        .kill_on_drop(true)
        .output();
    // A guard against a hung client, not a speed assertion.
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("gammu hung")
        .unwrap()
}

/// Unpacks `count` GSM 7-bit septets (LSB first) and maps the basic-table letters this test uses.
fn unpack_gsm7(ud: &[u8], count: usize) -> String {
    (0..count)
        .map(|i| {
            let bit = i * 7;
            let lo = u16::from(ud[bit / 8]);
            let hi = u16::from(*ud.get(bit / 8 + 1).unwrap_or(&0));
            let s = (((hi << 8) | lo) >> (bit % 8)) as u8 & 0x7F;
            s as char // a-z, digits and space share their ASCII codes in the default alphabet
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gammu_identifies_and_sends() {
    if !gammu_present() {
        eprintln!(
            "SKIP gammu_identifies_and_sends: no gammu binary on PATH (apt-get install gammu)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(1, dir.path());
    cfg.latency = Duration::from_millis(100);
    cfg.seed = Some(3);
    cfg.control_socket = false;
    let bank = Bank::start(cfg).await.unwrap();
    let rc = dir.path().join("gammurc");
    let log = dir.path().join("gammu.log");
    std::fs::write(
        &rc,
        format!(
            "[gammu]\ndevice = {}\nconnection = at\nlogfile = {}\nlogformat = textall\n",
            bank.port_path(0).display(),
            log.display()
        ),
    )
    .unwrap();

    let imei = bank.control(Control::Status).await.unwrap().modems[0]
        .imei
        .clone();
    let out = gammu(&rc, &["--identify"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gammu --identify failed: {text}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(text.contains(&imei), "IMEI {imei} not in: {text}");

    let out = gammu(&rc, &["sendsms", "TEXT", "13912345678", "-text", "hello"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gammu sendsms failed: {text}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(text.contains("OK, message reference="), "{text}");

    let events = std::fs::read_to_string(bank.events_path()).unwrap();
    let cmgs: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "cmgs")
        .collect();
    assert_eq!(cmgs.len(), 1, "{events}");
    let pdu = hex::decode(cmgs[0]["pdu"].as_str().unwrap()).unwrap();
    // SMSC part, then SUBMIT: fo, MR, DA (len, type, BCD), PID, DCS, VP?, UDL, UD.
    let t = &pdu[usize::from(pdu[0]) + 1..];
    assert_eq!(t[0] & 0x03, 0x01, "SMS-SUBMIT");
    let digits = usize::from(t[2]);
    let da: String = t[4..4 + digits.div_ceil(2)]
        .iter()
        .flat_map(|o| [o & 0x0F, o >> 4])
        .take(digits)
        .map(|d| char::from(b'0' + d))
        .collect();
    assert!(
        da == "13912345678" || da == "8613912345678",
        "recipient {da}"
    );
    let mut at = 4 + digits.div_ceil(2);
    let dcs = t[at + 1];
    at += 2;
    at += match (t[0] >> 3) & 0x03 {
        0 => 0,
        2 => 1,
        _ => 7,
    };
    let udl = usize::from(t[at]);
    assert_eq!(
        dcs & 0x0C,
        0x00,
        "gammu sends plain ASCII as GSM7 (dcs {dcs:#04x})"
    );
    assert_eq!(unpack_gsm7(&t[at + 1..], udl), "hello");
    // The crate's codec reads gammu's PDU the same way (the sim logs what it decodes).
    let sms = smsgate::pdu::Sms::parse(&pdu).unwrap();
    let smsgate::pdu::Tpdu::Submit(submit) = &sms.tpdu else {
        panic!("not a SUBMIT")
    };
    assert!(submit.recipient.to_string().ends_with("13912345678"));
    assert_eq!(submit.user_data.body.text(), Some("hello"));
    assert_eq!(cmgs[0]["text"], "hello", "{}", cmgs[0]);

    // Inbound: gammu reads what the network delivered (stored on the SIM, listed with CMGL/CMGR),
    // a UCS2 text and a two-part concatenated one.
    let long = "长".repeat(100);
    for text in ["退订 hello", long.as_str()] {
        bank.control(Control::Inject {
            modem: 0,
            from: "+8613912345678".into(),
            text: text.into(),
        })
        .await
        .unwrap();
    }
    let out = gammu(&rc, &["getallsms"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gammu getallsms failed: {text}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(text.contains("退订 hello"), "{text}");
    assert!(text.contains("\"+8613912345678\""), "{text}");
    assert!(
        text.contains("part 1 of 2") && text.contains("part 2 of 2"),
        "{text}"
    );
    assert_eq!(text.matches('长').count(), 100, "{text}");
    bank.shutdown().await;
}
