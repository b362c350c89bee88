//! `smsgate sim` as a child process and `smsgate sim ctl` against it over DIR/ctl.sock: the
//! real binary, a real Unix socket, real ptys.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialPortBuilderExt;

const BIN: &str = env!("CARGO_BIN_EXE_smsgate");

/// The running bank; killed (SIGTERM, then SIGKILL) when dropped.
struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> (SimProcess, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(["sim", "--modems", "2", "--dir"])
        .arg(dir)
        .args(["--latency", "0", "--seed", "5"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        lines.push(line);
    }
    (SimProcess(child), lines)
}

fn ctl(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["sim", "ctl", "--dir"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn sim_binary_and_ctl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut sim, banner) = start(dir, &[]);
    assert_eq!(banner.len(), 2, "{banner:?}");
    assert!(banner[0].starts_with(&format!("modem0 {}/modem0 generic imei ", dir.display())));

    let out = ctl(dir, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status.as_array().unwrap().len(), 2);
    assert_eq!(status[1]["index"], 1);
    let imei = status[0]["imei"].as_str().unwrap().to_string();
    assert!(banner[0].contains(&imei));

    // Same seed, same identities (a second bank in another directory).
    let tmp2 = tempfile::tempdir().unwrap();
    let (_sim2, banner2) = start(tmp2.path(), &[]);
    assert_eq!(
        banner[0].split(" imei ").nth(1),
        banner2[0].split(" imei ").nth(1)
    );

    // Inject while a client listens with +CNMI=2,2: the whole DELIVER arrives as +CMT.
    let mut port = tokio_serial::new(dir.join("modem0").to_string_lossy(), 115_200)
        .open_native_async()
        .unwrap();
    port.write_all(b"ATE0;+CNMI=2,2,0,0,0\r").await.unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 512];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !got.ends_with("OK\r\n") {
            let n = port.read(&mut buf).await.unwrap();
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap();
    let out = ctl(
        dir,
        &[
            "inject",
            "--modem",
            "0",
            "--from",
            "+8613912345678",
            "--text",
            "退订",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    got.clear();
    tokio::time::timeout(Duration::from_secs(10), async {
        while got.matches("\r\n").count() < 3 {
            let n = port.read(&mut buf).await.unwrap();
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap();
    let lines: Vec<_> = got.trim().lines().collect();
    assert!(lines[0].starts_with("+CMT: ,"), "{got:?}");
    // UCS2 "退订" = 9000 8BA2.
    assert!(lines[1].ends_with("0490008BA2"), "{got:?}");

    // Faults through the CLI, and clear errors for bad requests.
    for args in [
        &["fail", "--modem", "1", "--cms", "38", "--times", "2"][..],
        &["latency", "--modem", "1", "2s"],
        &["network", "--modem", "1", "lost"],
        &["memory-full", "--modem", "1"],
        &["hang", "--modem", "1", "--for", "1s"],
        &["garbage", "--modem", "1"],
        &["sim-remove", "--modem", "1"],
        &["unplug", "--modem", "1", "--for", "200ms"],
        &["quirk", "--modem", "0", "smsc-drop", "on"],
        &["report-status", "--modem", "0", "0x46"],
    ] {
        let out = ctl(dir, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    }
    let out = ctl(dir, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[1]["latency_ms"], 2000);
    assert_eq!(status[1]["fail"], "cms 38 x2");
    assert_eq!(status[1]["sim_present"], false);
    assert_eq!(status[1]["memory_full"], true);
    assert_eq!(status[0]["counters"]["inbound"], 1);
    assert_eq!(status[0]["smsc_drop"], true);
    assert_eq!(status[0]["report_status"], 0x46);
    assert_eq!(status[1]["smsc_drop"], false);

    let out = ctl(dir, &["garbage", "--modem", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no modem 9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl(dir, &["network", "--modem", "0", "sideways"]);
    assert_eq!(out.status.code(), Some(2));
    for bad in [
        &["quirk", "--modem", "0", "echo-twice", "on"][..],
        &["quirk", "--modem", "0", "smsc-drop", "maybe"],
        &["report-status", "--modem", "0", "0x146"],
    ] {
        let out = ctl(dir, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let out = Command::new(BIN)
        .args(["sim", "--dir"])
        .arg(dir)
        .args(["--dialect", "nokia"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dialect"));

    // SIGTERM: the bank shuts down cleanly and removes its links and socket.
    drop(port);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sim.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = sim.0.wait().unwrap();
    assert!(status.success());
    assert!(!dir.join("ctl.sock").exists());
    assert!(std::fs::symlink_metadata(dir.join("modem0")).is_err());
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(events.lines().any(|l| l.contains("\"event\":\"inbound\"")));
    assert!(events
        .lines()
        .any(|l| l.contains("\"reason\":\"shutdown\"")));
}

/// The faults of issue 8 through the binary: `--second-port`, `unplug --after-submit`,
/// `late --by`, `reboot --for`, and clear errors for bad values.
#[tokio::test]
async fn sim_ctl_second_port_late_reboot_after_submit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (sim, banner) = start(dir, &["--second-port", "1"]);
    assert_eq!(banner.len(), 3, "{banner:?}");
    assert_eq!(
        banner[2],
        format!("modem1 {}/modem1-at2 second AT port", dir.display())
    );
    assert!(std::fs::read_link(dir.join("modem1-at2")).is_ok());

    for args in [
        &["unplug", "--modem", "0", "--after-submit", "--for", "200ms"][..],
        &["late", "--modem", "0", "--by", "1.5s"],
        &["reboot", "--modem", "1", "--for", "3s"],
    ] {
        let out = ctl(dir, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    }
    let out = ctl(dir, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[1]["state"], "booting");
    assert_eq!(
        status[1]["second_port"],
        dir.join("modem1-at2").display().to_string()
    );
    assert!(status[0].get("second_port").is_none());
    // Armed, not fired: modem 0 still has its port.
    assert_eq!(status[0]["state"], "idle");
    assert_eq!(status[0]["unplug_after_submit"], true);
    assert_eq!(status[0]["late_ms"], 1500);
    assert!(status[1].get("late_ms").is_none());
    let events: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |kind: &str, key: &str, value: serde_json::Value| {
        events.iter().any(|e| e["kind"] == kind && e[key] == value)
    };
    assert!(has("unplug", "after_submit", true.into()), "{events:?}");
    assert!(has("late", "ms", 1500.into()), "{events:?}");
    assert!(has("reboot", "for_ms", 3000.into()), "{events:?}");

    for bad in [
        &["late", "--modem", "0", "--by", "soon"][..],
        &["late", "--modem", "0"],
        &["reboot", "--modem", "0", "--for", "x"],
    ] {
        let out = ctl(dir, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    drop(sim);
    let out = Command::new(BIN)
        .args(["sim", "--modems", "2", "--second-port", "2", "--dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--second-port 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
