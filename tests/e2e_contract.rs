//! The contract in the running daemon, end to end: the real `smsgate` binary as daemon, a
//! virtual modem bank (`smsgate sim`) on real ptys, the real API socket, the admin CLI, and the
//! audit log checked (and tampered with) through the sqlite3 shell.
//!
//! Promises proved: credit is consumed earliest-expiry first (a 3-part message costs 3); an
//! expired lot cannot pay (402 with the shortfall); a modem failure refunds; blocked content
//! (even obfuscated) is refused with 422, charged, and blacklists the account; review approve
//! sends, reject refunds, violation charges; an inbound "TD" stops further sends to that number
//! without charge; `log verify` passes, then fails after a row is changed; retention below 90
//! days is refused at load; and the edges of issue 9 (held-message cancel, the deadline of a
//! delayed message, a self-contradicting validity, a blacklisted number in another spelling).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use smsgate::api::client::{ApiClient, ClientError};
use smsgate::api::types::{MessageId, MessageState, Priority, SendRequest, SendResponse};

const BIN: &str = env!("CARGO_BIN_EXE_smsgate");

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

fn start_sim(dir: &Path) -> Proc {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args(["sim", "--modems", "1", "--dir"])
        .arg(dir)
        .args(["--latency", "0", "--report-delay", "100ms", "--seed", "7"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    for line in BufReader::new(out).lines() {
        if line.unwrap() == "ready" {
            break;
        }
    }
    Proc(child)
}

fn write_config(dir: &Path, retention_days: u32) -> PathBuf {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[category]]\nname = \"gambling\"\naction = \"block\"\nwords = [\"赌博\"]\n\n\
         [[category]]\nname = \"loans\"\naction = \"review\"\nwords = [\"贷款\"]\n",
    )
    .unwrap();
    let text = format!(
        "socket = {socket:?}\ndatabase = {db:?}\nadmin_group = \"{gid}\"\nlog_level = \"info\"\n\
         [modems]\nports = [{ports:?}]\n\
         [quota]\nper_minute = 1000\nper_hour = 10000\nper_day = 100000\nmin_interval = \"0s\"\n\
         [[accounts]]\nname = \"acme\"\nuids = [{uid}]\n\
         [policy]\nrules = {rules:?}\n\
         [audit]\nretention_days = {retention_days}\n",
        socket = dir.join("api.sock"),
        db = dir.join("smsgate.db"),
        ports = format!("{}/modem*", dir.join("sim").display()),
        rules = rules,
    );
    let path = dir.join("smsgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn cli(args: &[&str], socket: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SMSGATE_SOCKET", socket)
        .output()
        .unwrap()
}

fn ok_json(args: &[&str], socket: &Path) -> Value {
    let o = cli(args, socket);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn credit(socket: &Path, account: &str) -> Value {
    ok_json(&["credit", "show", "--account", account, "--json"], socket)
}

fn request(to: &str, text: &str, account: Option<&str>) -> SendRequest {
    SendRequest {
        to: vec![to.into()],
        text: text.into(),
        report: false,
        validity: None,
        not_before: None,
        priority: Priority::Normal,
        account: account.map(str::to_string),
        sender: None,
    }
}

async fn send(c: &ApiClient, to: &str, text: &str) -> Result<SendResponse, ClientError> {
    c.send(&request(to, text, None)).await
}

fn api_err(r: Result<SendResponse, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api {
            status,
            code,
            message,
        }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Waits until the message reaches one of `states` (the daemon works asynchronously).
async fn wait_state(c: &ApiClient, id: MessageId, states: &[MessageState]) -> MessageState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = c.status(id, None).await.unwrap();
        if states.contains(&v.state) {
            return v.state;
        }
        assert!(
            Instant::now() < deadline,
            "message {id:?} stuck in {:?}",
            v.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_ready(c: &ApiClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(h) = c.health().await {
            if h.modems_ready >= 1 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the modem never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_in_the_running_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _sim = start_sim(&dir.join("sim"));
    let config = write_config(dir, 180);
    let socket = dir.join("api.sock");
    let db = dir.join("smsgate.db");
    let daemon = Proc(
        Command::new(BIN)
            .args(["daemon", "--config"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let c = ApiClient::new(&socket);
    wait_ready(&c).await;
    let sim_dir = dir.join("sim");
    let sim_ctl = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(["sim", "ctl", "--dir"])
            .arg(&sim_dir)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };

    // --- Credit: two lots, the earlier-expiring one is used first.
    let soon = jiff::ZonedDateTime::now()
        .checked_add(jiff::Span::new().days(3))
        .unwrap()
        .date()
        .to_string();
    ok_json(
        &[
            "credit",
            "add",
            "--account",
            "acme",
            "--messages",
            "2",
            "--price",
            "0.10",
            "--expires",
            &soon,
            "--json",
        ],
        &socket,
    );
    ok_json(
        &[
            "credit",
            "add",
            "--account",
            "acme",
            "--messages",
            "100",
            "--valid-for",
            "1y",
            "--json",
        ],
        &socket,
    );
    let before = credit(&socket, "acme");
    assert_eq!(before["available"], 102);

    // A 3-part UCS2 message (150 characters: 67 + 67 + 16) costs 3.
    let long: String = "短信测试内容".repeat(25);
    let r = send(&c, "13912345678", &long).await.unwrap();
    assert_eq!(r.parts, 3);
    let id = r.ids[0];
    assert_eq!(
        wait_state(&c, id, &[MessageState::Sent, MessageState::Delivered]).await,
        MessageState::Sent
    );
    let after = credit(&socket, "acme");
    assert_eq!(after["available"], 99);
    assert_eq!(after["used"], 3);
    let lots = after["lots"].as_array().unwrap();
    assert_eq!(
        lots[0]["lot"]["quantity"], 2,
        "earliest expiry first in the list"
    );
    assert_eq!(lots[0]["lot"]["used"], 2, "the early lot paid first");
    assert_eq!(lots[1]["lot"]["used"], 1);

    // --- A send the modem refuses (+CMS ERROR: 21) is refunded.
    sim_ctl(&["fail", "--modem", "0", "--cms", "21", "--once"]);
    let r = send(&c, "13912340001", "退款测试").await.unwrap();
    assert_eq!(
        wait_state(&c, r.ids[0], &[MessageState::Failed, MessageState::Sent]).await,
        MessageState::Failed
    );
    let after_fail = credit(&socket, "acme");
    assert_eq!(after_fail["available"], 99, "the failed part was refunded");
    assert_eq!(after_fail["reserved"], 0);

    // --- An expired lot cannot pay: 402 with the shortfall.
    let o = cli(&["account", "add", "old", "--uid", "65000"], &socket);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok_json(
        &[
            "credit",
            "add",
            "--account",
            "old",
            "--messages",
            "5",
            "--json",
        ],
        &socket,
    );
    // Time passes for this lot: its expiry is moved into the past.
    sqlite(
        &db,
        "UPDATE credit_lots SET expires_at = (strftime('%s','now') - 60) * 1000 \
         WHERE account_id = (SELECT id FROM accounts WHERE name = 'old');",
    );
    let e = api_err(c.send(&request("13912340002", "hello", Some("old"))).await);
    assert_eq!(e.0, 402, "{e:?}");
    assert!(e.2.contains("short by 1"), "{e:?}");
    let old = credit(&socket, "old");
    assert_eq!(old["available"], 0);
    assert_eq!(old["expired"], 5);

    // --- Per-account options: a required 【signature】, a send window that is closed now.
    let o = cli(
        &[
            "account",
            "add",
            "signed",
            "--uid",
            "65001",
            "--signature-required",
            "--unsubscribe-suffix",
            "回T退订",
        ],
        &socket,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok_json(
        &[
            "credit",
            "add",
            "--account",
            "signed",
            "--messages",
            "3",
            "--json",
        ],
        &socket,
    );
    let e = api_err(
        c.send(&request("13912340010", "无签名", Some("signed")))
            .await,
    );
    assert_eq!((e.0, e.1.as_str()), (422, "signature_required"), "{e:?}");
    let r = c
        .send(&request("13912340010", "【ACME】有签名", Some("signed")))
        .await
        .unwrap();
    assert_eq!(r.ids.len(), 1);
    let hour = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .hour();
    let window = format!("{:02}:00-{:02}:00 UTC", (hour + 2) % 24, (hour + 3) % 24);
    let o = cli(
        &[
            "account",
            "add",
            "night",
            "--uid",
            "65002",
            "--send-window",
            &window,
        ],
        &socket,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok_json(
        &[
            "credit",
            "add",
            "--account",
            "night",
            "--messages",
            "3",
            "--json",
        ],
        &socket,
    );
    let r = c
        .send(&request("13912340011", "稍后发送", Some("night")))
        .await
        .unwrap();
    assert_eq!(
        c.status(r.ids[0], None).await.unwrap().state,
        MessageState::Scheduled,
        "outside the window the message waits"
    );

    // --- An account added at run time maps its uid at once (the database is the source of
    // truth); a non-admin may read its own credit but not add any. Needs root to switch uids.
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let o = cli(&["account", "add", "rt", "--uid", "65003"], &socket);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ok_json(
            &[
                "credit",
                "add",
                "--account",
                "rt",
                "--messages",
                "2",
                "--json",
            ],
            &socket,
        );
        let as_rt = |args: &[&str]| {
            Command::new(BIN)
                .args(args)
                .env("SMSGATE_SOCKET", &socket)
                .uid(65003)
                .gid(65003)
                .output()
                .unwrap()
        };
        let o = as_rt(&[
            "send",
            "--json",
            "--to",
            "13912340040",
            "--text",
            "运行时账户",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = as_rt(&["credit", "show", "--account", "rt", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["available"], 1);
        let o = as_rt(&["credit", "add", "--account", "rt", "--messages", "9"]);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("admins only"));
        let o = as_rt(&["credit", "show", "--account", "acme"]);
        assert!(
            !o.status.success(),
            "another account's credit is not visible"
        );
    } else {
        eprintln!("skipped the run-time uid mapping: needs root");
    }

    // --- Blocked content, obfuscated: refused (422), charged, the account blacklisted.
    let used_mid = credit(&socket, "acme")["used"].as_u64().unwrap();
    let e = api_err(send(&c, "13912340003", "来玩 赌 · 博 吧").await);
    assert_eq!((e.0, e.1.as_str()), (422, "content_prohibited"), "{e:?}");
    let charged = credit(&socket, "acme")["used"].as_u64().unwrap();
    assert_eq!(charged, used_mid + 1, "the attempt is charged");
    let e = api_err(send(&c, "13912340004", "正常的通知").await);
    assert_eq!((e.0, e.1.as_str()), (422, "account_blacklisted"), "{e:?}");
    let bl = ok_json(&["blacklist", "list", "--json"], &socket);
    assert_eq!(bl["accounts"][0]["account"], "acme");
    let o = cli(
        &[
            "blacklist",
            "remove",
            "--account",
            "acme",
            "--reason",
            "appeal accepted",
        ],
        &socket,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // --- Review: approve sends, reject refunds, violation charges and blacklists.
    let held = send(&c, "13912340005", "低息贷款").await.unwrap();
    let hid = held.ids[0];
    assert_eq!(
        c.status(hid, None).await.unwrap().state,
        MessageState::HeldForReview
    );
    let list = ok_json(&["review", "list", "--json"], &socket);
    assert_eq!(list["reviews"][0]["id"], hid.0);
    ok_json(
        &["review", "approve", &hid.0.to_string(), "--json"],
        &socket,
    );
    assert_eq!(
        wait_state(&c, hid, &[MessageState::Sent, MessageState::Delivered]).await,
        MessageState::Sent
    );

    let avail = credit(&socket, "acme")["available"].as_u64().unwrap();
    let held = send(&c, "13912340006", "低息贷款").await.unwrap();
    assert_eq!(credit(&socket, "acme")["available"], avail - 1, "reserved");
    let v = ok_json(
        &["review", "reject", &held.ids[0].0.to_string(), "--json"],
        &socket,
    );
    assert_eq!(v["refunded"], 1);
    assert_eq!(credit(&socket, "acme")["available"], avail, "refunded");
    assert_eq!(
        c.status(held.ids[0], None).await.unwrap().state,
        MessageState::Rejected
    );

    let used = credit(&socket, "acme")["used"].as_u64().unwrap();
    let held = send(&c, "13912340007", "低息贷款").await.unwrap();
    let v = ok_json(
        &[
            "review",
            "reject",
            &held.ids[0].0.to_string(),
            "--violation",
            "--json",
        ],
        &socket,
    );
    assert_eq!(v["charged"], 1);
    assert_eq!(credit(&socket, "acme")["used"], used + 1, "charged");
    let e = api_err(send(&c, "13912340008", "正常的通知").await);
    assert_eq!(e.1, "account_blacklisted");
    let o = cli(
        &[
            "blacklist",
            "remove",
            "--account",
            "acme",
            "--reason",
            "reviewed",
        ],
        &socket,
    );
    assert!(o.status.success());

    // --- Opt-out: "TD" from a recipient stops further sends to it, without charge.
    sim_ctl(&[
        "inject",
        "--modem",
        "0",
        "--from",
        "+8613912345678",
        "--text",
        "TD",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let avail = credit(&socket, "acme")["available"].as_u64().unwrap();
        let r = send(&c, "13912345678", "再次通知").await.unwrap();
        if r.ids.is_empty() {
            assert_eq!(credit(&socket, "acme")["available"], avail, "not charged");
            break r.refused;
        }
        // The reply had not arrived yet: that message was a legitimate send.
        assert!(Instant::now() < deadline, "the opt-out never took effect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused[0].code, "opted_out");

    // --- A number blacklist refuses that recipient, uncharged; other recipients go ahead.
    let o = cli(
        &[
            "blacklist",
            "add",
            "--number",
            "+86 139-1234-0020",
            "--reason",
            "complaint",
        ],
        &socket,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let avail = credit(&socket, "acme")["available"].as_u64().unwrap();
    let mut req = request("13912340020", "名单测试", None);
    req.to.push("13912340021".into());
    let r = c.send(&req).await.unwrap();
    assert_eq!(r.ids.len(), 1);
    assert_eq!(r.refused[0].code, "number_blacklisted");
    assert_eq!(
        credit(&socket, "acme")["available"],
        avail - 1,
        "one charged"
    );

    // --- SIGHUP reloads the content rules: a new review word holds messages.
    let rules = dir.join("rules.toml");
    let mut text = std::fs::read_to_string(&rules).unwrap();
    text.push_str(
        "\n[[category]]\nname = \"group buying\"\naction = \"review\"\nwords = [\"团购\"]\n",
    );
    std::fs::write(&rules, text).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.0.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = send(&c, "13912340030", "团购优惠").await.unwrap();
        if c.status(r.ids[0], None).await.unwrap().state == MessageState::HeldForReview {
            break;
        }
        assert!(Instant::now() < deadline, "the new rules never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // --- The audit log: intact, then broken by an edit in the sqlite3 shell.
    let o = cli(
        &["log", "verify", "--database", db.to_str().unwrap()],
        &socket,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli(
        &[
            "log",
            "export",
            "--database",
            db.to_str().unwrap(),
            "--from",
            "2020-01-01",
            "--to",
            "2100-01-01",
            "--account",
            "acme",
            "--format",
            "jsonl",
        ],
        &socket,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let export = String::from_utf8(o.stdout).unwrap();
    for event in [
        "\"accepted\"",
        "\"sent\"",
        "\"failed\"",
        "\"rejected\"",
        "\"held\"",
        "\"reviewed\"",
        "\"opt_out\"",
    ] {
        assert!(export.contains(event), "no {event} record in the export");
    }
    // Export by number, in any form: every record about that recipient.
    let o = cli(
        &[
            "log",
            "export",
            "--database",
            db.to_str().unwrap(),
            "--from",
            "2020-01-01",
            "--to",
            "2100-01-01",
            "--number",
            "+86 139 1234 5678",
            "--format",
            "csv",
        ],
        &socket,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let by_number = String::from_utf8(o.stdout).unwrap();
    for event in [",accepted,", ",sent,", ",opt_out,", ",rejected,"] {
        assert!(
            by_number.contains(event),
            "no {event} record for the number: {by_number}"
        );
    }
    assert!(
        !by_number.contains("13912340001"),
        "another number's record"
    );
    // The reviewer's identity is in the log, and sent records carry the SIM's ICCID.
    assert!(export.contains("reviewer:admin:"), "no reviewer identity");
    assert!(
        export
            .lines()
            .any(|l| l.contains("\"sent\"") && l.contains("\"sim_iccid\":\"")),
        "no SIM in the sent records"
    );
    drop(daemon);
    sqlite(
        &db,
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET outcome = 'nothing' WHERE seq = 3;",
    );
    let o = cli(
        &["log", "verify", "--database", db.to_str().unwrap()],
        &socket,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("record 3"), "{err}");

    // --- Retention below 90 days is refused at load.
    let bad = write_config(dir, 60);
    let o = Command::new(BIN)
        .args(["daemon", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("retention_days"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The contract's edges in the running daemon (issue 9): a held message cancelled by an admin
/// leaves no review pending and is refunded; a message that must wait three days gets its
/// validity from then, not from now; an explicit validity ending before `not_before` is a 400
/// that reserves nothing; a fixed line blacklisted in one spelling is refused in another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_edges_in_the_running_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _sim = start_sim(&dir.join("sim"));
    let config = write_config(dir, 180);
    let socket = dir.join("api.sock");
    let db = dir.join("smsgate.db");
    let _daemon = Proc(
        Command::new(BIN)
            .args(["daemon", "--config"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let c = ApiClient::new(&socket);
    wait_ready(&c).await;
    ok_json(
        &[
            "credit",
            "add",
            "--account",
            "acme",
            "--messages",
            "10",
            "--json",
        ],
        &socket,
    );

    // A held message: an admin's cancel refunds it and closes its review.
    let held = send(&c, "13912340005", "低息贷款").await.unwrap();
    let hid = held.ids[0];
    assert_eq!(credit(&socket, "acme")["available"], 9);
    let v = c.cancel(hid, None).await.unwrap();
    assert_eq!(v.state, MessageState::Cancelled);
    let list = ok_json(&["review", "list", "--json"], &socket);
    assert_eq!(list["reviews"], serde_json::json!([]), "{list}");
    assert_eq!(credit(&socket, "acme")["available"], 10, "refunded");
    let o = cli(
        &["review", "reject", &hid.0.to_string(), "--violation"],
        &socket,
    );
    assert!(!o.status.success(), "nothing left to review");

    // not_before three days ahead with the default 24 h validity: accepted, and its deadline is
    // 24 h after not_before (it was 24 h after now, so it expired unsent).
    let nb = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(72))
        .unwrap();
    let mut later = request("13912340006", "三天后发送", None);
    later.not_before = Some(nb);
    let r = c.send(&later).await.unwrap();
    let id = r.ids[0];
    assert_eq!(
        c.status(id, None).await.unwrap().state,
        MessageState::Scheduled
    );
    let span = sqlite_out(
        &db,
        &format!(
            "SELECT deadline - not_before FROM messages WHERE id = {}",
            id.0
        ),
    );
    assert_eq!(span.trim(), (24 * 3600 * 1000).to_string());

    // An explicit validity that ends before not_before: 400, nothing reserved.
    let before = credit(&socket, "acme")["available"].clone();
    let mut doomed = later.clone();
    doomed.validity = Some(jiff::SignedDuration::from_hours(2));
    let e = api_err(c.send(&doomed).await);
    assert_eq!((e.0, e.1.as_str()), (400, "invalid_field"), "{e:?}");
    assert!(e.2.contains("not_before"), "{e:?}");
    assert_eq!(credit(&socket, "acme")["available"], before);

    // A fixed line blacklisted as "+86 755 1234 5678" is refused as 0755-12345678.
    ok_json(
        &[
            "blacklist",
            "add",
            "--number",
            "+86 755 1234 5678",
            "--reason",
            "complaint",
            "--json",
        ],
        &socket,
    );
    let r = send(&c, "0755-12345678", "您好").await.unwrap();
    assert!(r.ids.is_empty(), "{r:?}");
    assert_eq!(r.refused[0].code, "number_blacklisted", "{r:?}");
}

fn sqlite_out(db: &Path, sql: &str) -> String {
    let o = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sqlite(db: &Path, sql: &str) {
    let o = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Issue 14: acceptance commits concurrent requests together (group commit). Requests that share
/// a transaction must still see each other's reservations: 24 clients at once against credit
/// for 10 parts get exactly 10 acceptances and 14 refusals (402), and every accepted message
/// is durable and visible with its credit reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_never_spend_the_same_credit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // No modem: nothing is sent, so the reservations stay as acceptance left them.
    let config = write_config(dir, 180);
    let socket = dir.join("api.sock");
    let _daemon = Proc(
        Command::new(BIN)
            .args(["daemon", "--config"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let c = ApiClient::new(&socket);
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.health().await.is_err() {
        assert!(Instant::now() < deadline, "the daemon never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ok_json(
        &[
            "credit",
            "add",
            "--account",
            "acme",
            "--messages",
            "10",
            "--valid-for",
            "1y",
            "--json",
        ],
        &socket,
    );
    let mut tasks = Vec::new();
    for i in 0..24 {
        let c = ApiClient::new(&socket);
        tasks.push(tokio::spawn(async move {
            send(&c, &format!("139{:08}", 10_000 + i), "【ACME】并发测试").await
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                assert_eq!(r.parts, 1);
                accepted.extend(r.ids);
            }
            Err(e) => {
                let (status, code, _) = api_err(Err(e));
                assert_eq!(status, 402, "{code}");
                refused += 1;
            }
        }
    }
    assert_eq!(accepted.len(), 10, "credit for 10 parts, 10 acceptances");
    assert_eq!(refused, 14);
    for id in &accepted {
        let m = c.status(*id, None).await.unwrap();
        assert_eq!(m.state, MessageState::Queued, "#{}", id.0);
    }
    let after = credit(&socket, "acme");
    assert_eq!(after["available"], 0);
    assert_eq!(after["reserved"], 10);
}
