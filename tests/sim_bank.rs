//! The virtual modem bank in-process, over real pseudo-terminals opened with tokio-serial the
//! way the daemon opens a modem: echo, CMGS with good and bad PDUs, +CMEE forms, inbound SMS,
//! status reports and every fault of the control channel (unplug, also after a submit; a late
//! answer; a reboot; reports kept in "SR" while nobody listens; a second AT port).

use std::path::Path;
use std::time::Duration;

use smsgate::sim::{Bank, Control, FailMode, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialPortBuilderExt;

// vectors/pdu.json "gsm7-submit-relative-vp" (subnets.ru sms_pdu_format, AT+CMGS=23).
const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
// The same SUBMIT with TP-SRR set (first octet 0x31).
const SUBMIT_SRR: &str = "0031000B916407281553F80000AA0AE8329BFD4697D9EC37";

/// Upper bound for one answer; a guard against hanging the suite, never an assertion on speed.
const GUARD: Duration = Duration::from_secs(10);

struct Port {
    s: tokio_serial::SerialStream,
    buf: String,
}

impl Port {
    fn open(path: &Path) -> Port {
        let s = tokio_serial::new(path.to_string_lossy(), 115_200)
            .open_native_async()
            .unwrap();
        Port {
            s,
            buf: String::new(),
        }
    }

    /// Reads until `done` holds on what arrived; returns all of it and clears the buffer.
    async fn until(&mut self, done: impl Fn(&str) -> bool) -> String {
        let mut chunk = [0u8; 512];
        tokio::time::timeout(GUARD, async {
            while !done(&self.buf) {
                let n = self.s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "port closed");
                self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer; got {:?}", self.buf));
        std::mem::take(&mut self.buf)
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.s
            .write_all(format!("{line}\r").as_bytes())
            .await
            .unwrap();
        self.answer().await
    }

    /// Reads up to the first final result (or prompt); what follows stays buffered.
    async fn answer(&mut self) -> String {
        let mut chunk = [0u8; 512];
        let end = tokio::time::timeout(GUARD, async {
            loop {
                if let Some(end) = final_end(&self.buf) {
                    return end;
                }
                let n = self.s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "port closed");
                self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer; got {:?}", self.buf));
        let rest = self.buf.split_off(end);
        std::mem::replace(&mut self.buf, rest)
    }
}

/// Where the first final result code (or the "> " prompt) ends.
fn final_end(s: &str) -> Option<usize> {
    let fixed = ["\r\nOK\r\n", "\r\nERROR\r\n", "\r\n> "]
        .iter()
        .filter_map(|p| s.find(p).map(|i| i + p.len()));
    let coded = ["\r\n+CME ERROR: ", "\r\n+CMS ERROR: "]
        .iter()
        .filter_map(|p| {
            s.find(p)
                .and_then(|i| s[i + 2..].find("\r\n").map(|e| i + 2 + e + 2))
        });
    fixed.chain(coded).min()
}

async fn bank(latency: Duration) -> (tempfile::TempDir, Bank) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(2, dir.path());
    cfg.latency = latency;
    cfg.report_delay = Duration::from_millis(20);
    cfg.seed = Some(42);
    cfg.control_socket = false;
    let bank = Bank::start(cfg).await.unwrap();
    (dir, bank)
}

fn events(bank: &Bank) -> Vec<serde_json::Value> {
    std::fs::read_to_string(bank.events_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn echo_cmee_and_cmgs_exchange() {
    let (_d, bank) = bank(Duration::from_millis(50)).await;
    let mut p = Port::open(&bank.port_path(0));
    assert_eq!(p.cmd("AT").await, "AT\r\r\nOK\r\n");
    assert_eq!(p.cmd("ATE0").await, "ATE0\r\r\nOK\r\n");
    assert_eq!(p.cmd("AT").await, "\r\nOK\r\n");
    let imei = p.cmd("AT+CGSN").await;
    let status = bank.control(Control::Status).await.unwrap();
    assert_eq!(status.modems.len(), 2);
    assert_eq!(imei, format!("\r\n{}\r\n\r\nOK\r\n", status.modems[0].imei));
    assert_ne!(status.modems[0].imsi[..5], status.modems[1].imsi[..5]);

    // A good PDU: prompt, then +CMGS: <mr> after the network latency; mr increments.
    assert_eq!(p.cmd("AT+CMGF=0;+CMGS=23").await, "\r\n> ");
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    let first = p.answer().await;
    assert!(first.starts_with("\r\n+CMGS: "), "{first:?}");
    assert_eq!(p.cmd("AT+CMGS=23").await, "\r\n> ");
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    let second = p.answer().await;
    let mr = |s: &str| {
        s.trim()
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("+CMGS: ")
            .parse::<u16>()
            .unwrap()
    };
    assert_eq!((mr(&first) + 1) % 256, mr(&second));

    // A bad PDU (declared length wrong): +CMS ERROR: 304, numeric then verbose.
    p.cmd("AT+CMEE=1").await;
    p.cmd("AT+CMGS=22").await;
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    assert_eq!(p.answer().await, "\r\n+CMS ERROR: 304\r\n");
    p.cmd("AT+CMEE=2").await;
    p.cmd("AT+CMGS=23").await;
    p.s.write_all(b"0011000B91640728\x1a").await.unwrap();
    assert_eq!(
        p.answer().await,
        "\r\n+CMS ERROR: invalid PDU mode parameter\r\n"
    );

    let ev = events(&bank);
    let cmgs: Vec<_> = ev.iter().filter(|e| e["event"] == "cmgs").collect();
    assert_eq!(cmgs.len(), 2);
    assert_eq!(cmgs[0]["pdu"], SUBMIT);
    assert_eq!(cmgs[0]["modem"], 0);
    assert_eq!(
        u16::try_from(cmgs[0]["mr"].as_u64().unwrap()).unwrap(),
        mr(&first)
    );
    let t = cmgs[0]["time"].as_str().unwrap();
    assert!(
        t.parse::<jiff::Timestamp>().is_ok() && t.len() == "2026-01-01T00:00:00.000000Z".len(),
        "{t}"
    );
    assert_eq!(
        ev.iter()
            .filter(|e| e["event"] == "fault" && e["kind"] == "bad_pdu")
            .count(),
        2
    );
    bank.shutdown().await;
}

#[tokio::test]
async fn inbound_cmti_cmgr_cmgd_and_status_report() {
    let (_d, bank) = bank(Duration::ZERO).await;
    let mut p = Port::open(&bank.port_path(1));
    p.cmd("ATE0").await;
    p.cmd("AT+CMEE=1;+CMGF=0;+CNMI=2,1,0,1,0").await;
    bank.control(Control::Inject {
        modem: 1,
        from: "+8613912345678".into(),
        text: "TD".into(),
    })
    .await
    .unwrap();
    let urc = p
        .until(|s| s.ends_with("\r\n") && s.contains("+CMTI"))
        .await;
    assert_eq!(urc, "\r\n+CMTI: \"SM\",1\r\n");
    assert!(p.cmd("AT+CPMS?").await.contains("\"SM\",1,30"));
    let r = p.cmd("AT+CMGR=1").await;
    let pdu = r.lines().nth(2).unwrap();
    // The DELIVER carries the sender and "TD" in GSM7: 54 22 (2 septets).
    assert!(pdu.contains("0D91683119325476F8"), "{r:?}");
    assert!(pdu.ends_with("025422"), "{pdu}");
    assert_eq!(p.cmd("AT+CMGD=1").await, "\r\nOK\r\n");
    assert_eq!(p.cmd("AT+CMGR=1").await, "\r\nOK\r\n");

    // Submit with SRR: +CMGS, then +CDS: <len> and the STATUS-REPORT PDU with the same mr.
    p.cmd("AT+CMGS=23").await;
    p.s.write_all(format!("{SUBMIT_SRR}\x1a").as_bytes())
        .await
        .unwrap();
    let ok = p.answer().await;
    let mr: u8 = ok
        .trim()
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("+CMGS: ")
        .parse()
        .unwrap();
    let cds = p.until(|s| s.matches("\r\n").count() >= 3).await;
    let lines: Vec<_> = cds.trim().lines().collect();
    assert!(lines[0].starts_with("+CDS: "), "{cds:?}");
    let sr = hex::decode(lines[1]).unwrap();
    let smsc_len = usize::from(sr[0]) + 1;
    assert_eq!(lines[0], format!("+CDS: {}", sr.len() - smsc_len));
    assert_eq!(sr[smsc_len] & 0x03, 0x02, "STATUS-REPORT MTI");
    assert_eq!(sr[smsc_len + 1], mr);
    assert_eq!(*sr.last().unwrap(), 0x00, "delivered");
    let ev = events(&bank);
    assert!(ev
        .iter()
        .any(|e| e["event"] == "inbound" && e["modem"] == 1));
    assert!(ev
        .iter()
        .any(|e| e["event"] == "status_report" && e["mr"] == mr));
    bank.shutdown().await;
}

#[tokio::test]
async fn faults_fail_sim_network_memory() {
    let (_d, bank) = bank(Duration::ZERO).await;
    let mut p = Port::open(&bank.port_path(0));
    p.cmd("ATE0;+CMEE=1;+CREG=1;+CNMI=2,1,0,0,0").await;
    bank.control(Control::Fail {
        modem: 0,
        cms: 38,
        mode: FailMode::Once,
    })
    .await
    .unwrap();
    for want in ["+CMS ERROR: 38", "+CMGS: "] {
        p.cmd("AT+CMGS=23").await;
        p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
            .await
            .unwrap();
        let got = p.answer().await;
        assert!(got.starts_with(&format!("\r\n{want}")), "{got:?}");
    }

    bank.control(Control::Network {
        modem: 0,
        up: false,
    })
    .await
    .unwrap();
    assert_eq!(
        p.until(|s| s.ends_with("+CREG: 2\r\n")).await,
        "\r\n+CREG: 2\r\n"
    );
    assert_eq!(p.cmd("AT+CREG?").await, "\r\n+CREG: 1,2\r\n\r\nOK\r\n");
    bank.control(Control::Network { modem: 0, up: true })
        .await
        .unwrap();
    assert_eq!(
        p.until(|s| s.ends_with("+CREG: 1\r\n")).await,
        "\r\n+CREG: 1\r\n"
    );

    bank.control(Control::MemoryFull {
        modem: 0,
        full: true,
    })
    .await
    .unwrap();
    p.cmd("AT+CMGW=23").await;
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    assert_eq!(p.answer().await, "\r\n+CMS ERROR: 322\r\n");

    bank.control(Control::SimRemove { modem: 0 }).await.unwrap();
    assert_eq!(
        p.until(|s| s.ends_with("+CREG: 0\r\n")).await,
        "\r\n+CPIN: NOT READY\r\n\r\n+CREG: 0\r\n"
    );
    assert_eq!(p.cmd("AT+CPIN?").await, "\r\n+CME ERROR: 10\r\n");
    p.cmd("AT+CMEE=2").await;
    assert_eq!(
        p.cmd("AT+CIMI").await,
        "\r\n+CME ERROR: SIM not inserted\r\n"
    );

    bank.control(Control::Recover { modem: 0 }).await.unwrap();
    p.until(|s| s.contains("+CPIN: READY\r\n") && s.contains("+CREG: 1\r\n"))
        .await;
    assert_eq!(p.cmd("AT+CPIN?").await, "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    let st = bank.control(Control::Status).await.unwrap();
    assert_eq!(st.modems[0].counters.failed, 1);
    assert_eq!(st.modems[0].counters.submitted, 1);
    assert!(st.modems[0].sim_present && !st.modems[0].memory_full);
    bank.shutdown().await;
}

#[tokio::test]
async fn faults_hang_garbage_unplug() {
    let (_d, bank) = bank(Duration::ZERO).await;
    let path = bank.port_path(0);
    let mut p = Port::open(&path);
    p.cmd("ATE0").await;

    // Hang: the command is swallowed; after recover the modem answers again.
    bank.control(Control::Hang {
        modem: 0,
        for_ms: None,
    })
    .await
    .unwrap();
    p.s.write_all(b"AT\r").await.unwrap();
    tokio::time::timeout(GUARD, async {
        while bank.control(Control::Status).await.unwrap().modems[0].swallowed_bytes < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the hung modem never read the input");
    assert_eq!(
        bank.control(Control::Status).await.unwrap().modems[0].state,
        "hung"
    );
    bank.control(Control::Recover { modem: 0 }).await.unwrap();
    assert_eq!(p.cmd("AT").await, "\r\nOK\r\n");

    // Garbage: noise arrives, and the modem still answers the next command.
    bank.control(Control::Garbage { modem: 0 }).await.unwrap();
    let mut noise = [0u8; 64];
    let n = tokio::time::timeout(GUARD, p.s.read(&mut noise))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0);
    let garbage = events(&bank)
        .into_iter()
        .find(|e| e["kind"] == "garbage")
        .unwrap();
    assert!(garbage["bytes"]
        .as_str()
        .unwrap()
        .starts_with(&hex::encode_upper(&noise[..n])));
    // Read exactly the rest of the noise the event logged (not "until quiet": on a loaded
    // machine the tail can come later than any fixed pause and end up in front of the OK).
    let total = garbage["bytes"].as_str().unwrap().len() / 2;
    let mut got = n;
    let mut rest = [0u8; 64];
    while got < total {
        let k = tokio::time::timeout(GUARD, p.s.read(&mut rest))
            .await
            .expect("the rest of the noise never came")
            .unwrap();
        assert!(k > 0, "port closed");
        got += k;
    }
    assert_eq!(got, total, "more than the noise arrived");
    assert_eq!(p.cmd("AT").await, "\r\nOK\r\n");

    // Unplug: the link vanishes and the open port dies; a new pty comes back at the same name.
    let old_tty = std::fs::read_link(&path).unwrap();
    bank.control(Control::Unplug {
        modem: 0,
        for_ms: Some(100),
        after_submit: false,
    })
    .await
    .unwrap();
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "link still there"
    );
    let mut b = [0u8; 16];
    let dead = tokio::time::timeout(GUARD, p.s.read(&mut b)).await.unwrap();
    assert!(
        matches!(dead, Ok(0) | Err(_)),
        "old port still alive: {dead:?}"
    );
    drop(p);
    tokio::time::timeout(GUARD, async {
        while std::fs::read_link(&path).is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    // The kernel may hand out the same /dev/pts number again; the pty itself is new.
    assert!(
        std::fs::read_link(&path).is_ok(),
        "{old_tty:?} not relinked"
    );
    let mut p = Port::open(&path);
    // The modem rebooted: echo is back on.
    assert_eq!(p.cmd("AT").await, "AT\r\r\nOK\r\n");
    let ev = events(&bank);
    assert!(ev
        .iter()
        .any(|e| e["event"] == "port_close" && e["reason"] == "unplug"));
    assert!(ev
        .iter()
        .any(|e| e["event"] == "port_open" && e["reason"] == "replug"));
    bank.shutdown().await;
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "shutdown leaves the link"
    );
}

#[tokio::test]
async fn huawei_rejects_chains_and_mixed_bank_spans_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(7, dir.path());
    cfg.dialect = "mixed".parse().unwrap();
    cfg.control_socket = false;
    cfg.chatter = None;
    cfg.seed = Some(1);
    let bank = Bank::start(cfg).await.unwrap();
    let st = bank.control(Control::Status).await.unwrap();
    let dialects: Vec<_> = st.modems.iter().map(|m| m.dialect.name()).collect();
    assert_eq!(
        dialects,
        ["generic", "huawei", "zte", "quectel", "simcom", "wavecom", "phs"]
    );
    let mut h = Port::open(&bank.port_path(1));
    assert_eq!(h.cmd("ATE0").await, "ATE0\r\r\nOK\r\n");
    assert_eq!(h.cmd("AT+CMEE=1;+CREG=2").await, "\r\nERROR\r\n");
    assert!(h.cmd("AT^ICCID?").await.starts_with("\r\n^ICCID: 8986"));
    bank.shutdown().await;
}

/// Huawei chatter arrives between responses, never inside one: with ^RSSI/^MODE flooding every
/// few milliseconds, every command's answer is still one contiguous block.
#[tokio::test]
async fn chatter_never_splits_a_response() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(1, dir.path());
    cfg.dialect = "huawei".parse().unwrap();
    cfg.control_socket = false;
    cfg.chatter = Some(Duration::from_millis(4));
    cfg.seed = Some(9);
    let bank = Bank::start(cfg).await.unwrap();
    let mut p = Port::open(&bank.port_path(0));
    p.cmd("ATE0").await;
    let mut chatter_seen = 0;
    for _ in 0..40 {
        p.s.write_all(b"AT+CSQ\r").await.unwrap();
        // Read up to the final OK; chatter after it stays buffered for the next round.
        let mut chunk = [0u8; 256];
        let got = tokio::time::timeout(GUARD, async {
            loop {
                if let Some(i) = p.buf.find("\r\nOK\r\n") {
                    let rest = p.buf.split_off(i + 6);
                    return std::mem::replace(&mut p.buf, rest);
                }
                let n = p.s.read(&mut chunk).await.unwrap();
                p.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
        .await
        .unwrap();
        // Strip whole chatter lines; what remains must be exactly the answer.
        let mut rest = got.as_str();
        let mut answer = String::new();
        while let Some(i) = rest.find("\r\n^") {
            answer.push_str(&rest[..i]);
            let end = rest[i + 2..].find("\r\n").map(|e| i + 2 + e + 2).unwrap();
            rest = &rest[end..];
            chatter_seen += 1;
        }
        answer.push_str(rest);
        let rssi = answer
            .strip_prefix("\r\n+CSQ: ")
            .and_then(|a| a.strip_suffix(",99\r\n\r\nOK\r\n"));
        assert!(rssi.is_some_and(|r| r.parse::<u8>().is_ok()), "{got:?}");
        tokio::time::sleep(Duration::from_millis(3)).await; // give the chatter room to fire
    }
    assert!(chatter_seen > 0, "no chatter at all");
    bank.shutdown().await;
}

/// Clients opening and closing the port are logged, and output queued while nobody has the
/// port open is discarded (a closed serial port keeps nothing for the next client).
#[tokio::test]
async fn client_open_close_and_no_stale_output() {
    let (_d, bank) = bank(Duration::ZERO).await;
    let mut p = Port::open(&bank.port_path(0));
    p.cmd("ATE0;+CNMI=2,2,0,0,0").await;
    drop(p);
    let closed = |bank: &Bank| {
        events(bank)
            .iter()
            .any(|e| e["event"] == "client_close" && e["clients"] == 0)
    };
    tokio::time::timeout(GUARD, async {
        while !closed(&bank) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("no client_close event");
    assert!(events(&bank)
        .iter()
        .any(|e| e["event"] == "client_open" && e["clients"] == 1));
    // Nobody listens: this +CMT goes nowhere.
    bank.control(Control::Inject {
        modem: 0,
        from: "+8613912345678".into(),
        text: "lost".into(),
    })
    .await
    .unwrap();
    let mut p = Port::open(&bank.port_path(0));
    assert_eq!(p.cmd("AT").await, "\r\nOK\r\n");
    tokio::time::timeout(GUARD, async {
        while bank.control(Control::Status).await.unwrap().modems[0].clients != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("status never counted the client");
    bank.shutdown().await;
}

/// Out-of-range control values are refused or saturate; none of them brings a modem down.
#[tokio::test]
async fn control_values_at_the_edges() {
    let (_d, bank) = bank(Duration::ZERO).await;
    assert!(bank
        .control(Control::Hang {
            modem: 0,
            for_ms: Some(u64::MAX)
        })
        .await
        .is_ok());
    assert!(bank
        .control(Control::Unplug {
            modem: 1,
            for_ms: Some(u64::MAX),
            after_submit: false,
        })
        .await
        .is_ok());
    let err = bank
        .control(Control::Fail {
            modem: 0,
            cms: 38,
            mode: FailMode::Rate(1.5),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("outside 0..=1"), "{err}");
    let err = bank
        .control(Control::Inject {
            modem: 0,
            from: "abc".into(),
            text: "x".into(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--from"), "{err}");
    let huge = "退".repeat(255 * 67 + 1);
    assert!(bank
        .control(Control::Inject {
            modem: 0,
            from: "+8613912345678".into(),
            text: huge
        })
        .await
        .is_err());
    assert!(matches!(
        bank.control(Control::Garbage { modem: 7 }).await,
        Err(smsgate::sim::SimError::NoSuchModem(7, 2))
    ));
    bank.control(Control::Recover { modem: 0 }).await.unwrap();
    bank.control(Control::Recover { modem: 1 }).await.unwrap();
    let mut p = Port::open(&bank.port_path(1));
    assert_eq!(p.cmd("AT").await, "AT\r\r\nOK\r\n");
    bank.shutdown().await;
}

/// Waits until events.jsonl holds an event that `want` accepts; returns it.
async fn wait_event(bank: &Bank, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    tokio::time::timeout(GUARD, async {
        loop {
            if let Some(e) = events(bank).into_iter().find(|e| want(e)) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("event never logged")
}

/// Reads until the port dies (EOF or an error); returns what arrived before.
async fn until_dead(p: &mut Port) -> String {
    let mut got = std::mem::take(&mut p.buf);
    let mut chunk = [0u8; 256];
    tokio::time::timeout(GUARD, async {
        loop {
            match p.s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("port still alive; got {got:?}"));
    got
}

async fn wait_link(path: &Path) {
    tokio::time::timeout(GUARD, async {
        while std::fs::read_link(path).is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("link never came back");
}

/// The TP-MR of a STATUS-REPORT PDU (hex, with its SMSC part).
fn report_mr(pdu_hex: &str) -> u8 {
    let sr = hex::decode(pdu_hex).unwrap();
    let smsc_len = usize::from(sr[0]) + 1;
    assert_eq!(sr[smsc_len] & 0x03, 0x02, "STATUS-REPORT MTI in {pdu_hex}");
    sr[smsc_len + 1]
}

/// `unplug --after-submit`: the network gets the part (events.jsonl `cmgs`), then the port
/// dies before "+CMGS:" is written; the status report produced while the modem is away is
/// kept in "SR", and the modem comes back at the same name, rebooted.
#[tokio::test]
async fn unplug_after_submit_loses_the_answer_not_the_part() {
    let (_d, bank) = bank(Duration::from_millis(50)).await;
    let path = bank.port_path(0);
    let mut p = Port::open(&path);
    p.cmd("ATE0;+CMGF=0;+CNMI=2,1,0,1,0").await;
    bank.control(Control::Unplug {
        modem: 0,
        for_ms: Some(300),
        after_submit: true,
    })
    .await
    .unwrap();
    // Armed, not fired: the modem still answers.
    assert_eq!(p.cmd("AT").await, "\r\nOK\r\n");
    assert_eq!(p.cmd("AT+CMGS=23").await, "\r\n> ");
    p.s.write_all(format!("{SUBMIT_SRR}\x1a").as_bytes())
        .await
        .unwrap();
    let got = until_dead(&mut p).await;
    assert!(!got.contains("+CMGS"), "the answer got out: {got:?}");
    drop(p);
    let ev = events(&bank);
    let cmgs: Vec<_> = ev.iter().filter(|e| e["event"] == "cmgs").collect();
    assert_eq!(cmgs.len(), 1, "the network has the part once");
    assert_eq!(cmgs[0]["pdu"], SUBMIT_SRR);
    let mr = cmgs[0]["mr"].as_u64().unwrap();
    assert!(ev
        .iter()
        .any(|e| e["event"] == "port_close" && e["reason"] == "unplug-after-submit"));
    let st = bank.control(Control::Status).await.unwrap();
    assert_eq!(st.modems[0].counters.submitted, 1);
    assert!(!st.modems[0].unplug_after_submit, "fired, so disarmed");
    // The report arrives while the modem is unplugged: stored, not lost.
    let sr = wait_event(&bank, |e| e["event"] == "status_report").await;
    assert_eq!(sr["delivery"], "stored", "{sr}");
    assert_eq!(sr["mr"], mr);

    wait_link(&path).await;
    let mut p = Port::open(&path);
    assert_eq!(
        p.cmd("AT").await,
        "AT\r\r\nOK\r\n",
        "rebooted: echo is back"
    );
    p.cmd("ATE0").await;
    assert_eq!(
        p.cmd("AT+CPMS=\"SR\"").await,
        "\r\n+CPMS: 1,20,0,30,0,30\r\n\r\nOK\r\n"
    );
    let list = p.cmd("AT+CMGL=4").await;
    let lines: Vec<_> = list.trim().lines().collect();
    assert!(lines[0].starts_with("+CMGL: 1,0,,"), "{list:?}");
    assert_eq!(u64::from(report_mr(lines[1])), mr);
    // Fired once: the next submit is answered normally.
    p.cmd("AT+CPMS=\"SM\"").await;
    p.cmd("AT+CMGS=23").await;
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    assert!(p.answer().await.starts_with("\r\n+CMGS: "));
    bank.shutdown().await;
}

/// `late`: "+CMGS:" comes after the driver's timeout, and the driver's next command is
/// answered after it, in order, as on a real serial line. The part counts as sent on time.
#[tokio::test]
async fn late_answer_comes_before_the_next_commands_answer() {
    let (_d, bank) = bank(Duration::ZERO).await;
    let mut p = Port::open(&bank.port_path(0));
    p.cmd("ATE0;+CMGF=0").await;
    bank.control(Control::Late { modem: 0, ms: 700 })
        .await
        .unwrap();
    p.cmd("AT+CMGS=23").await;
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    // A driver with a 300 ms timeout gets nothing...
    let mut chunk = [0u8; 64];
    let quiet = tokio::time::timeout(Duration::from_millis(300), p.s.read(&mut chunk)).await;
    assert!(quiet.is_err(), "answered early: {quiet:?}");
    // ...while the network already has the part.
    let cmgs = wait_event(&bank, |e| e["event"] == "cmgs").await;
    let mr = cmgs["mr"].as_u64().unwrap();
    // It gives up (ESC) and asks something else: the late line comes first.
    p.s.write_all(b"\x1bAT+CSQ\r").await.unwrap();
    let first = p.answer().await;
    assert_eq!(first, format!("\r\n+CMGS: {mr}\r\n\r\nOK\r\n"));
    let second = p.answer().await;
    assert!(
        second.starts_with("\r\n+CSQ: ") && second.ends_with(",99\r\n\r\nOK\r\n"),
        "{second:?}"
    );
    // Once only.
    p.cmd("AT+CMGS=23").await;
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    assert!(p.answer().await.starts_with("\r\n+CMGS: "));
    let ev = events(&bank);
    assert!(ev
        .iter()
        .any(|e| e["kind"] == "late_answer" && e["ms"] == 700));
    assert_eq!(ev.iter().filter(|e| e["event"] == "cmgs").count(), 2);
    bank.shutdown().await;
}

/// `reboot`: the port stays open; the modem is deaf for a moment (input lost), writes its
/// boot burst, and has forgotten the client's settings (echo on, text mode, +CNMI reset).
#[tokio::test]
async fn reboot_resets_settings_and_announces_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(1, dir.path());
    cfg.dialect = "quectel".parse().unwrap();
    cfg.latency = Duration::ZERO;
    cfg.seed = Some(3);
    cfg.control_socket = false;
    let bank = Bank::start(cfg).await.unwrap();
    let path = bank.port_path(0);
    let tty = std::fs::read_link(&path).unwrap();
    let mut p = Port::open(&path);
    p.cmd("ATE0;+CMEE=1;+CMGF=0;+CNMI=2,2,0,1,0").await;
    assert_eq!(
        p.cmd("AT+CNMI?").await,
        "\r\n+CNMI: 2,2,0,1,0\r\n\r\nOK\r\n"
    );
    bank.control(Control::Reboot {
        modem: 0,
        for_ms: Some(400),
    })
    .await
    .unwrap();
    assert_eq!(
        bank.control(Control::Status).await.unwrap().modems[0].state,
        "booting"
    );
    // Said while it boots: lost.
    p.s.write_all(b"AT\r").await.unwrap();
    let burst = p.until(|s| s.ends_with("+QIND: PB DONE\r\n")).await;
    assert_eq!(
        burst,
        "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n"
    );
    assert!(
        bank.control(Control::Status).await.unwrap().modems[0].swallowed_bytes >= 3,
        "the input during boot was answered"
    );
    assert_eq!(std::fs::read_link(&path).unwrap(), tty, "the port stayed");
    assert_eq!(p.cmd("AT").await, "AT\r\r\nOK\r\n", "echo is back on");
    p.cmd("ATE0").await;
    assert_eq!(p.cmd("AT+CMGF?").await, "\r\n+CMGF: 1\r\n\r\nOK\r\n");
    assert_eq!(
        p.cmd("AT+CNMI?").await,
        "\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
    );
    assert_eq!(p.cmd("AT+CMEE?").await, "\r\n+CMEE: 0\r\n\r\nOK\r\n");
    // A PDU-mode submit fails until the driver sets +CMGF=0 again.
    assert_eq!(p.cmd("AT+CMGS=23").await, "\r\n+CMS ERROR: 302\r\n");
    assert_eq!(p.cmd("AT+CMGF=0;+CMGS=23").await, "\r\n> ");
    p.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    assert!(p.answer().await.starts_with("\r\n+CMGS: "));
    let ev = events(&bank);
    assert!(ev.iter().any(|e| e["kind"] == "reboot"));
    assert!(ev.iter().any(|e| e["event"] == "boot"));
    bank.shutdown().await;
}

/// A status report that arrives while no client has the port open (the daemon is down) is
/// kept in "SR" like a modem does, and read and deleted in PDU mode at the next start-up;
/// with +CNMI ds=2 a listening client is told `+CDSI: "SR",<idx>`.
#[tokio::test]
async fn reports_while_nobody_listens_are_kept_in_sr() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(1, dir.path());
    cfg.latency = Duration::ZERO;
    cfg.report_delay = Duration::from_millis(400);
    cfg.seed = Some(11);
    cfg.control_socket = false;
    let bank = Bank::start(cfg).await.unwrap();
    let path = bank.port_path(0);
    let mut p = Port::open(&path);
    p.cmd("ATE0;+CMGF=0;+CNMI=2,1,0,1,0").await;
    p.cmd("AT+CMGS=23").await;
    p.s.write_all(format!("{SUBMIT_SRR}\x1a").as_bytes())
        .await
        .unwrap();
    let ok = p.answer().await;
    let mr: u8 = ok
        .trim()
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("+CMGS: ")
        .parse()
        .unwrap();
    drop(p);
    wait_event(&bank, |e| e["event"] == "client_close" && e["clients"] == 0).await;
    let sr = wait_event(&bank, |e| e["event"] == "status_report").await;
    assert_eq!(sr["delivery"], "stored", "{sr}");
    assert_eq!(sr["memory"], "SR");
    assert_eq!(sr["index"], 1);
    assert_eq!(
        bank.control(Control::Status).await.unwrap().modems[0].reports_stored,
        1
    );

    // The next start-up: nothing stale on the line, the report waits in "SR".
    let mut p = Port::open(&path);
    assert_eq!(p.cmd("AT").await, "\r\nOK\r\n");
    assert!(p
        .cmd("AT+CPMS=?")
        .await
        .starts_with("\r\n+CPMS: (\"SM\",\"ME\",\"SR\")"));
    assert_eq!(
        p.cmd("AT+CPMS=\"SR\"").await,
        "\r\n+CPMS: 1,20,0,30,0,30\r\n\r\nOK\r\n"
    );
    let list = p.cmd("AT+CMGL=4").await;
    let lines: Vec<_> = list.trim().lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{list:?}");
    let pdu = lines[1];
    let smsc_len = usize::from(hex::decode(&pdu[..2]).unwrap()[0]) + 1;
    assert_eq!(
        lines[0],
        format!("+CMGL: 1,0,,{}", pdu.len() / 2 - smsc_len)
    );
    assert_eq!(report_mr(pdu), mr);
    assert_eq!(
        *hex::decode(pdu).unwrap().last().unwrap(),
        0x00,
        "delivered"
    );
    let one = p.cmd("AT+CMGR=1").await;
    assert!(
        one.starts_with("\r\n+CMGR: 1,,") && one.contains(pdu),
        "{one:?}"
    );
    assert_eq!(p.cmd("AT+CMGD=1").await, "\r\nOK\r\n");
    assert_eq!(p.cmd("AT+CMGL=4").await, "\r\nOK\r\n");

    // ds=2 with a listener: stored and announced.
    p.cmd("AT+CPMS=\"SM\";+CNMI=2,1,0,2,0").await;
    p.cmd("AT+CMGS=23").await;
    p.s.write_all(format!("{SUBMIT_SRR}\x1a").as_bytes())
        .await
        .unwrap();
    p.answer().await;
    let cdsi = p
        .until(|s| s.ends_with("\r\n") && s.contains("+CDSI"))
        .await;
    assert_eq!(cdsi, "\r\n+CDSI: \"SR\",1\r\n");
    bank.shutdown().await;
}

/// One module on two AT ports (DIR/modem0 and DIR/modem0-at2, both matched by a
/// `DIR/modem*` glob): the same SIM, storage and network behind both, each port with its own
/// echo and prompt; unsolicited lines on the primary; an unplug takes both away.
#[tokio::test]
async fn second_at_port_is_the_same_modem() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(2, dir.path());
    cfg.dialect = "quectel".parse().unwrap();
    cfg.latency = Duration::ZERO;
    cfg.seed = Some(21);
    cfg.control_socket = false;
    cfg.second_port = vec![0];
    let bank = Bank::start(cfg).await.unwrap();
    let second = bank.second_port_path(0).unwrap();
    assert_eq!(second, dir.path().join("modem0-at2"));
    assert!(bank.second_port_path(1).is_none());
    assert_ne!(
        std::fs::read_link(&second).unwrap(),
        std::fs::read_link(bank.port_path(0)).unwrap()
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("modem"))
        .collect();
    names.sort();
    assert_eq!(names, ["modem0", "modem0-at2", "modem1"]);

    let mut a = Port::open(&bank.port_path(0));
    let mut b = Port::open(&second);
    a.cmd("ATE0;+CMGF=0;+CNMI=2,1,0,0,0").await;
    // Port b keeps its own echo.
    let iccid_b = b.cmd("AT+QCCID").await;
    assert!(iccid_b.starts_with("AT+QCCID\r\r\n+QCCID: "), "{iccid_b:?}");
    let iccid_a = a.cmd("AT+QCCID").await;
    assert_eq!(iccid_b.trim_start_matches("AT+QCCID\r"), iccid_a);
    b.cmd("ATE0;+CMGF=0").await;
    assert_eq!(a.cmd("AT+CIMI").await, b.cmd("AT+CIMI").await);
    let st = bank.control(Control::Status).await.unwrap();
    assert_eq!(st.modems[0].second_port.as_deref(), second.to_str());
    assert_eq!(
        st.modems[0].iccid,
        iccid_a.trim().lines().next().unwrap()["+QCCID: ".len()..]
    );

    // a at the prompt, b still answers.
    assert_eq!(a.cmd("AT+CMGS=23").await, "\r\n> ");
    assert!(b.cmd("AT+CSQ").await.ends_with("OK\r\n"));
    a.s.write_all(b"\x1b").await.unwrap();
    assert_eq!(a.answer().await, "\r\nOK\r\n");

    // Inbound: +CMTI on the primary only; the secondary reads the same storage.
    bank.control(Control::Inject {
        modem: 0,
        from: "+8613912345678".into(),
        text: "TD".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        a.until(|s| s.ends_with("\r\n") && s.contains("+CMTI"))
            .await,
        "\r\n+CMTI: \"SM\",1\r\n"
    );
    assert!(b.cmd("AT+CMGR=1").await.starts_with("\r\n+CMGR: 0,,"));

    // A submit on b is answered on b and counted for the one modem.
    assert_eq!(b.cmd("AT+CMGS=23").await, "\r\n> ");
    b.s.write_all(format!("{SUBMIT}\x1a").as_bytes())
        .await
        .unwrap();
    assert!(b.answer().await.starts_with("\r\n+CMGS: "));
    assert_eq!(a.cmd("AT").await, "\r\nOK\r\n", "nothing leaked to port a");
    let st = bank.control(Control::Status).await.unwrap();
    assert_eq!(st.modems[0].counters.submitted, 1);

    // The module drops off the bus: both ports die, both come back.
    bank.control(Control::Unplug {
        modem: 0,
        for_ms: Some(100),
        after_submit: false,
    })
    .await
    .unwrap();
    until_dead(&mut a).await;
    until_dead(&mut b).await;
    wait_link(&bank.port_path(0)).await;
    wait_link(&second).await;
    let mut b = Port::open(&second);
    assert_eq!(b.cmd("AT").await, "AT\r\r\nOK\r\n");
    bank.shutdown().await;
    assert!(
        std::fs::symlink_metadata(&second).is_err(),
        "shutdown leaves the link"
    );
}
