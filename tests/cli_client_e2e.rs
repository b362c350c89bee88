//! The client commands end to end: the real `smsgate` binary, a separate process, against the
//! real API server (with the in-memory test double of tests/api_support) on a socket in a
//! tempdir. Golden outputs for the tables, exact JSON for `--json`, one-line errors with non-zero
//! exits, and (as root) real peer credentials: the binary run under other uids/gids.

mod api_support;

use std::path::Path;
use std::process::Output;

use api_support::{MemBackend, TestServer};
use serde_json::{json, Value};
use smsgate::api::types::MessageState;

const BIN: &str = env!("CARGO_BIN_EXE_smsgate");

/// Runs the binary with `args` against `socket`, optionally as another uid/gid.
async fn run(socket: &Path, args: &[&str], ids: Option<(u32, u32)>) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .arg("--socket")
        .arg(socket)
        .env_remove("SMSGATE_SOCKET")
        .env_remove("SMSGATE_LOG");
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid);
    }
    cmd.output().await.unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_out(o: &Output) -> Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// One line on stderr, starting "smsgate: ", and a failing exit code.
fn assert_one_line_error(o: &Output, code: i32, contains: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout {} stderr {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("smsgate: "), "{err}");
    assert!(err.contains(contains), "{err}");
}

fn running_as_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root to run the client under other uids");
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_json_and_table() {
    let server = TestServer::start(MemBackend::new());
    let o = run(
        &server.socket,
        &[
            "send",
            "--json",
            "--to",
            "13912345678",
            "13912345679",
            "--text",
            "您好",
        ],
        None,
    )
    .await;
    assert_eq!(json_out(&o), json!({"ids": [1, 2], "parts": 1}));

    let o = run(
        &server.socket,
        &[
            "send",
            "--to",
            "13912345670",
            "--to",
            "000",
            "--text",
            "hello",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "accepted 1 message, 1 part each\n\
         ID           TO\n\
         3            13912345670\n\
         refused 000: \"000\" is not a phone number (invalid_number)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_cancel_retry() {
    let server = TestServer::start(MemBackend::new());
    let text = "长".repeat(80);
    let o = run(
        &server.socket,
        &["send", "--json", "--to", "13912345678", "--text", &text],
        None,
    )
    .await;
    assert_eq!(json_out(&o)["parts"], 2);

    let o = run(&server.socket, &["status", "1", "--json"], None).await;
    let v = json_out(&o);
    let api = server
        .client()
        .status(smsgate::api::types::MessageId(1), None)
        .await
        .unwrap();
    assert_eq!(v, serde_json::to_value(&api).unwrap());

    let o = run(&server.socket, &["status", "1"], None).await;
    assert_eq!(
        stdout(&o),
        "id         1\n\
         to         13912345678\n\
         state      queued\n\
         created    2026-05-28T20:26:40Z\n\
         sent       -\n\
         delivered  -\n\
         PART STATE            SIM                    MR   ERROR\n\
         1    queued           -                      -    -\n\
         2    queued           -                      -    -\n"
    );

    let o = run(&server.socket, &["cancel", "1", "--json"], None).await;
    assert_eq!(json_out(&o)["state"], "cancelled");
    let o = run(&server.socket, &["cancel", "1"], None).await;
    assert_one_line_error(&o, 1, "only a message not yet sending can be cancelled");

    let o = run(&server.socket, &["status", "77"], None).await;
    assert_one_line_error(&o, 1, "no message with id 77");
    let o = run(&server.socket, &["status", "x1"], None).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    server.backend.set_state(1, MessageState::Failed);
    let o = run(&server.socket, &["retry", "1", "--json"], None).await;
    assert_eq!(json_out(&o)["state"], "scheduled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modems_and_inbox() {
    let server = TestServer::start(MemBackend::new());
    let o = run(&server.socket, &["modems", "--json"], None).await;
    let api = server.client().modems().await.unwrap();
    assert_eq!(json_out(&o), serde_json::to_value(&api).unwrap());

    let o = run(&server.socket, &["modems"], None).await;
    assert!(o.status.success());
    let table = stdout(&o);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("PORT "), "{table}");
    assert!(
        lines[1].starts_with("/dev/gsm/usb1-1.2-if00 ready"),
        "{table}"
    );
    assert!(
        lines[1].contains("-71dBm") && lines[1].contains("9/188/988"),
        "{table}"
    );
    assert!(lines[1].ends_with("+CMS ERROR: 42 (congestion)"), "{table}");
    assert!(lines[2].contains("starting"), "{table}");

    let o = run(&server.socket, &["inbox"], None).await;
    assert_eq!(
        stdout(&o),
        "ID       RECEIVED                   FROM             TEXT\n\
         7        2026-05-28T20:28:20Z       +8613912345678   退订\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_file_groups_texts_and_bad_files_send_nothing() {
    let server = TestServer::start(MemBackend::new());
    let csv = server.dir.path().join("batch.csv");
    std::fs::write(
        &csv,
        "number,text\n13900000001,\n13900000002,\"您好, 张三\"\n13900000003,\n000bad,\n",
    )
    .unwrap();
    let o = run(
        &server.socket,
        &[
            "send",
            "--json",
            "--file",
            csv.to_str().unwrap(),
            "--text",
            "default text",
        ],
        None,
    )
    .await;
    let v = json_out(&o);
    assert_eq!(v["ids"], json!([1, 2, 3]));
    assert_eq!(v["refused"][0]["to"], "000bad");
    // Two texts: two requests (rows with the default text went together).
    let calls = server.backend.state.lock().unwrap().calls.len();
    assert_eq!(calls, 2);
    let texts: Vec<String> = server
        .backend
        .state
        .lock()
        .unwrap()
        .messages
        .values()
        .map(|(_, m)| m.to.clone())
        .collect();
    assert_eq!(texts, vec!["13900000001", "13900000003", "13900000002"]);

    std::fs::write(&csv, "13900000001,ok\n13900000002\n").unwrap();
    let o = run(
        &server.socket,
        &["send", "--file", csv.to_str().unwrap()],
        None,
    )
    .await;
    assert_one_line_error(&o, 2, "line 2: no text");
    assert_eq!(
        server.backend.state.lock().unwrap().calls.len(),
        2,
        "nothing more was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_daemon_and_env_socket() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody.sock");
    let o = run(&missing, &["modems"], None).await;
    assert_one_line_error(
        &o,
        1,
        &format!(
            "cannot reach smsgate at {}: is the daemon running?",
            missing.display()
        ),
    );

    let server = TestServer::start(MemBackend::new());
    let o = tokio::process::Command::new(BIN)
        .args(["modems", "--json"])
        .env("SMSGATE_SOCKET", &server.socket)
        .output()
        .await
        .unwrap();
    assert_eq!(json_out(&o).as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_credentials_map_real_uids_and_groups() {
    if !running_as_root() {
        return;
    }
    let server = TestServer::start(MemBackend::new());
    let s = &server.socket;
    let send = ["send", "--json", "--to", "13912345678", "--text", "hi"];

    // uid 4001 is listed under "clinic".
    let o = run(s, &send, Some((4001, 4001))).await;
    json_out(&o);
    let (_, caller) = server.backend.last_call().unwrap();
    assert_eq!(
        (caller.uid, caller.account.as_deref(), caller.admin),
        (4001, Some("clinic"), false)
    );

    // A member of gid 4100 acts for "school".
    let o = run(s, &send, Some((4002, 4100))).await;
    json_out(&o);
    let (_, caller) = server.backend.last_call().unwrap();
    assert_eq!(
        (caller.uid, caller.account.as_deref(), caller.admin),
        (4002, Some("school"), false)
    );

    // An unmapped uid: 403 with a clear error.
    let o = run(s, &send, Some((4555, 4555))).await;
    assert_one_line_error(&o, 1, "uid 4555 is not mapped to any smsgate account");

    // A non-admin may not act for another account, nor retry.
    let o = run(
        s,
        &["send", "--to", "139", "--text", "x", "--account", "shop"],
        Some((4001, 4001)),
    )
    .await;
    assert_one_line_error(&o, 1, "may not act for account \"shop\"");
    server.backend.set_state(1, MessageState::Failed);
    let o = run(s, &["retry", "1"], Some((4001, 4001))).await;
    assert_one_line_error(&o, 1, "for admins only");
    server.backend.set_state(1, MessageState::Unknown);
    let o = run(s, &["settle", "1", "--not-sent"], Some((4001, 4001))).await;
    assert_one_line_error(&o, 1, "settling a message is for admins only");
    server.backend.set_state(1, MessageState::Failed);

    // A member of the admin group (gid 4200) with no account: may retry, must name an account
    // to send.
    let o = run(s, &["retry", "1", "--json"], Some((4003, 4200))).await;
    assert_eq!(json_out(&o)["state"], "scheduled");
    let o = run(s, &send, Some((4003, 4200))).await;
    assert_one_line_error(&o, 1, "has no account of its own");
    let o = run(
        s,
        &[
            "send",
            "--json",
            "--to",
            "139",
            "--text",
            "x",
            "--account",
            "clinic",
        ],
        Some((4003, 4200)),
    )
    .await;
    json_out(&o);
    let (_, caller) = server.backend.last_call().unwrap();
    assert_eq!(
        (caller.uid, caller.account.as_deref(), caller.admin),
        (4003, Some("clinic"), true)
    );
}
