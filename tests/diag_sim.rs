//! `smsgate diag` against the virtual modem bank (real pseudo-terminals): the library and the
//! real binary report every field the sim's identities say, the sim's faults give the verdicts
//! a technician needs, --send-test reaches the sim's events.jsonl, and a port opened
//! exclusively by this test process is reported as held, naming this process.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use smsgate::diag::{self, DiagOptions, Status};
use smsgate::sim::{Bank, Control, DialectChoice, ModemStatus, SimConfig};

async fn bank(modems: usize, dialect: DialectChoice) -> (tempfile::TempDir, Bank) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(modems, dir.path());
    cfg.dialect = dialect;
    cfg.latency = Duration::from_millis(30);
    cfg.report_delay = Duration::from_millis(20);
    cfg.seed = Some(11);
    cfg.control_socket = false;
    // Vendor URC chatter on: diag must read through ^RSSI/^MODE floods.
    cfg.chatter = Some(Duration::from_millis(40));
    let bank = Bank::start(cfg).await.unwrap();
    (dir, bank)
}

fn ports(bank: &Bank) -> Vec<PathBuf> {
    (0..bank.len()).map(|i| bank.port_path(i)).collect()
}

async fn status(bank: &Bank) -> Vec<ModemStatus> {
    bank.control(Control::Status).await.unwrap().modems
}

/// Short timeouts so a hung modem costs a fraction of a second per baud.
fn quick() -> DiagOptions {
    DiagOptions {
        probe_timeout: Duration::from_millis(150),
        probe_attempts: 1,
        command_timeout: Duration::from_secs(2),
        ..DiagOptions::default()
    }
}

/// For the tests that assert the baud found: a probe at the first baud must not miss because
/// the box is loaded (seen once: 150 ms was too short, the 9600 probe answered instead).
fn patient() -> DiagOptions {
    DiagOptions {
        probe_timeout: Duration::from_secs(2),
        probe_attempts: 2,
        ..quick()
    }
}

fn carrier_name(s: &ModemStatus) -> String {
    // The sim's operator names (+COPS long form) per carrier, see sim/identity.rs.
    match s.operator.as_str() {
        "CHINA MOBILE" => "china_mobile",
        "CHN-UNICOM" => "china_unicom",
        "CHN-CT" => "china_telecom",
        other => panic!("unexpected operator {other}"),
    }
    .to_string()
}

async fn run_binary(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .arg("diag")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tests of this file run one at a time: one of them forks the real binary, and a forked
/// child briefly holds copies of every descriptor the test process has open (until it execs),
/// which another test's probe would rightly report as "port held by another process".
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_and_binary_report_the_sims_identities() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // Mixed: generic, huawei, zte, quectel, simcom, wavecom, phs.
    let (_d, bank) = bank(7, DialectChoice::Mixed).await;
    let expected = status(&bank).await;
    let reports = diag::diagnose(&ports(&bank), &patient()).await;
    assert_eq!(reports.len(), 7);
    for (r, s) in reports.iter().zip(&expected) {
        let ctx = format!("modem {} ({})", s.index, s.dialect);
        assert_eq!(r.verdict.status, Status::Ok, "{ctx}: {:?}", r.verdict);
        assert!(r.answered, "{ctx}");
        assert_eq!(r.baud, Some(115_200), "{ctx}");
        assert_eq!(r.dialect, Some(s.dialect.name()), "{ctx}");
        assert_eq!(r.imei.as_deref(), Some(s.imei.as_str()), "{ctx}");
        assert_eq!(r.imsi.as_deref(), Some(s.imsi.as_str()), "{ctx}");
        assert_eq!(r.iccid.as_deref(), Some(s.iccid.as_str()), "{ctx}");
        assert_eq!(
            r.carrier.map(str::to_string),
            Some(carrier_name(s)),
            "{ctx}"
        );
        assert_eq!(r.operator.as_deref(), Some(s.operator.as_str()), "{ctx}");
        assert_eq!(r.sim, Some(diag::SimState::Ready), "{ctx}");
        assert_eq!(
            r.registration.map(diag::registration_name).as_deref(),
            Some("home"),
            "{ctx}"
        );
        let sig = r.signal.unwrap();
        assert!(
            sig.rssi <= 31 && sig.dbm.is_some() && sig.bars.is_some(),
            "{ctx}"
        );
        assert!(
            r.smsc.as_deref().is_some_and(|x| x.starts_with("+86")),
            "{ctx}"
        );
        assert_eq!(r.pdu_mode, Some(true), "{ctx}");
        assert_eq!(r.storage.len(), 3, "{ctx}");
        assert_eq!(r.storage[0].used, s.storage_used as u32, "{ctx}");
        assert_eq!(r.storage[0].total, s.storage_capacity as u32, "{ctx}");
        assert!(r.trace.is_empty());
    }

    // The real binary, --json: one object per port, the same facts, exit status 0. A patient
    // probe, as for the library above: a loaded CI box once let a 600 ms probe miss a port.
    let args: Vec<String> = ports(&bank)
        .iter()
        .map(|p| p.display().to_string())
        .chain(["--json", "--probe-timeout", "2s"].map(String::from))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run_binary(&args).await;
    assert_eq!(code, Some(0), "{stderr}\n{stdout}");
    let v: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v.len(), 7);
    for (o, s) in v.iter().zip(&expected) {
        assert_eq!(o["port"], bank.port_path(s.index).display().to_string());
        assert_eq!(o["dialect"], s.dialect.name());
        assert_eq!(o["imei"], s.imei.as_str());
        assert_eq!(o["imsi"], s.imsi.as_str());
        assert_eq!(o["iccid"], s.iccid.as_str());
        assert_eq!(o["carrier"], carrier_name(s));
        assert_eq!(o["operator"], s.operator.as_str());
        assert_eq!(o["sim"], "ready");
        assert_eq!(o["registration"], "home");
        assert_eq!(o["pdu_mode"], true);
        assert_eq!(o["baud"], 115_200);
        assert_eq!(o["verdict"]["status"], "ok");
        assert_eq!(o["verdict"]["code"], "ok");
        assert!(o["signal"]["dbm"].is_i64());
    }
    bank.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_give_the_technicians_verdicts() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_d, bank) = bank(5, DialectChoice::One(smsgate::sim::Dialect::Generic)).await;
    let expected = status(&bank).await;
    bank.control(Control::SimRemove { modem: 0 }).await.unwrap();
    bank.control(Control::Network {
        modem: 1,
        up: false,
    })
    .await
    .unwrap();
    bank.control(Control::Hang {
        modem: 2,
        for_ms: None,
    })
    .await
    .unwrap();
    bank.control(Control::Garbage { modem: 3 }).await.unwrap();
    let mut opts = quick();
    opts.trace = true;
    let r = diag::diagnose(&ports(&bank), &opts).await;

    assert_eq!(r[0].verdict.code, "sim_not_inserted");
    assert_eq!(r[0].verdict.hint, "SIM not inserted");
    assert_eq!(r[0].imei.as_deref(), Some(expected[0].imei.as_str()));
    assert_eq!(r[0].imsi, None);

    assert_eq!(r[1].verdict.code, "no_network");
    assert_eq!(r[1].verdict.hint, "no network: check antenna");
    assert_eq!(r[1].signal.and_then(|s| s.dbm), None, "+CSQ 99 is unknown");

    assert_eq!(r[2].verdict.code, "no_answer");
    assert_eq!(r[2].verdict.hint, "no answer: wrong port or baud");
    assert_eq!(r[2].baud, None);
    // Every rate was tried, each with its probe on the wire.
    let probes = r[2].trace.iter().filter(|e| e.text == "ATE0<CR>").count();
    assert_eq!(probes, diag::BAUD_RATES.len());

    // Line noise in front of the answers is survived: the facts are still right.
    assert_ne!(r[3].verdict.status, Status::Problem, "{:?}", r[3].verdict);
    assert_eq!(r[3].imei.as_deref(), Some(expected[3].imei.as_str()));
    assert_eq!(r[3].iccid.as_deref(), Some(expected[3].iccid.as_str()));

    assert_eq!(r[4].verdict.code, "ok");
    // The trace shows both directions with CR/LF visible.
    assert!(r[4]
        .trace
        .iter()
        .any(|e| e.dir == "tx" && e.text == "AT+CSQ<CR>"));
    assert!(r[4]
        .trace
        .iter()
        .any(|e| e.dir == "rx" && e.text.contains("<CR><LF>OK<CR><LF>")));

    // The binary exits 1 when any port has a problem, and the table says which.
    let p0 = bank.port_path(0).display().to_string();
    let p4 = bank.port_path(4).display().to_string();
    let (code, stdout, stderr) = run_binary(&[&p0, &p4]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("PROBLEM: SIM not inserted"), "{stdout}");
    assert!(stdout.contains("OK: ready to send"), "{stdout}");
    assert!(stderr.contains("1 of 2 port(s) have a problem"), "{stderr}");
    bank.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_reaches_the_network() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_d, bank) = bank(2, DialectChoice::Mixed).await;
    let p1 = bank.port_path(1).display().to_string(); // huawei
    let (code, stdout, stderr) =
        run_binary(&[&p1, "--json", "--trace", "--send-test", "+8613912345678"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let v: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let t = &v[0]["send_test"];
    assert_eq!(t["to"], "+86139****5678");
    let mr = t["mr"].as_u64().expect("a TP-MR");
    assert!(
        !stdout.contains("8613912345678\""),
        "number unmasked in output"
    );
    // The trace shows the prompt and the PDU ending in Ctrl-Z.
    let trace = v[0]["trace"].as_array().unwrap();
    assert!(trace
        .iter()
        .any(|e| e["text"].as_str().unwrap().ends_with("<SUB>")));

    let events = std::fs::read_to_string(bank.events_path()).unwrap();
    let cmgs: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "cmgs" && e["modem"] == 1)
        .collect();
    assert_eq!(cmgs.len(), 1, "{events}");
    assert_eq!(cmgs[0]["mr"].as_u64(), Some(mr));
    // Destination +8613912345678 as TS 23.040 semi-octets, type 0x91.
    assert!(cmgs[0]["pdu"]
        .as_str()
        .unwrap()
        .contains("0D91683119325476F8"));

    // A refusal from the network is printed with its class, and the port is a problem.
    bank.control(Control::Fail {
        modem: 1,
        cms: 21,
        mode: smsgate::sim::FailMode::Always,
    })
    .await
    .unwrap();
    let opts = DiagOptions {
        send_test: Some("+8613912345678".into()),
        ..quick()
    };
    let r = diag::probe_port(&bank.port_path(1), &opts).await;
    let t = r.send_test.clone().unwrap();
    assert_eq!(t.mr, None);
    assert!(
        t.error.as_deref().unwrap().contains("+CMS ERROR: 21"),
        "{t:?}"
    );
    assert_eq!(t.class.as_deref(), Some("permanent_for_message"));
    assert_eq!(r.verdict.code, "send_failed");
    bank.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_held_exclusively_names_its_holder() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_d, bank) = bank(1, DialectChoice::Mixed).await;
    let path = bank.port_path(0);
    let held = smsgate::modem::open_port(&path.display().to_string(), 115_200).unwrap();
    let me = std::process::id();

    let r = diag::probe_port(&path, &quick()).await;
    assert_eq!(r.verdict.code, "port_held");
    assert!(r.busy);
    assert!(r.holders.iter().any(|h| h.pid == me), "{:?}", r.holders);
    assert!(r.verdict.hint.starts_with("port held by another process: "));
    assert!(r.verdict.hint.contains(&format!("(pid {me})")));
    assert!(!r.answered);

    let p = path.display().to_string();
    let (code, stdout, stderr) = run_binary(&[&p, "--json"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    let v: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["verdict"]["code"], "port_held");
    assert!(v[0]["holders"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["pid"] == me));
    // Nothing was written to the held port: the sim saw no command.
    assert_eq!(status(&bank).await[0].counters.commands, 0);
    // (No re-probe after the drop: a concurrent test's fork may hold a copy of the fd, and
    // its flock, until its exec; the free-port case is covered by the other tests.)
    drop(held);
    bank.shutdown().await;
}

#[tokio::test]
async fn bad_arguments_exit_2_and_missing_ports_are_problems() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (code, _, stderr) = run_binary(&["/dev/null", "--send-test", "12ab"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = run_binary(&["/a", "/b", "--send-test", "+8613912345678"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = run_binary(&["--no-such-flag"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stdout, _) = run_binary(&["/nonexistent/ttyUSB9", "--json"]).await;
    assert_eq!(code, Some(1));
    let v: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["verdict"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_names_of_one_device_are_probed_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_d, bank) = bank(1, DialectChoice::Mixed).await;
    let s = status(&bank).await.remove(0);
    let tty = PathBuf::from(s.tty.clone().expect("the sim reports its tty"));
    let r = diag::diagnose(&[bank.port_path(0), tty.clone()], &quick()).await;
    for (r, name) in r.iter().zip([bank.port_path(0), tty]) {
        assert_eq!(r.port, name.display().to_string());
        assert_eq!(r.verdict.code, "ok", "{:?}", r.verdict);
        assert_eq!(r.imei.as_deref(), Some(s.imei.as_str()));
    }
    bank.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_on_a_phs_module_uses_text_mode_hcmgs() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_d, bank) = bank(1, DialectChoice::One(smsgate::sim::Dialect::Phs)).await;
    let opts = DiagOptions {
        send_test: Some("075512345678".into()),
        ..quick()
    };
    let r = diag::probe_port(&bank.port_path(0), &opts).await;
    assert_eq!(r.dialect, Some("phs"));
    let t = r.send_test.clone().unwrap();
    assert!(t.mr.is_some(), "{t:?}");
    assert_eq!(r.verdict.code, "ok", "{:?}", r.verdict);
    let events = std::fs::read_to_string(bank.events_path()).unwrap();
    let sent: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "hcmgs")
        .collect();
    assert_eq!(sent.len(), 1, "{events}");
    assert_eq!(sent[0]["to"], "075512345678");
    assert_eq!(sent[0]["text"], diag::probe::TEST_TEXT);
    assert_eq!(sent[0]["mr"].as_u64(), t.mr.map(u64::from));
    bank.shutdown().await;
}
