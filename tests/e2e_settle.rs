//! The operator's decision on `unknown` parts, end to end: the real `smsgate` binary as daemon
//! (TOML config, SQLite file, API socket) over the virtual modem bank, parts left `unknown` by a
//! real `kill -9` mid-send, and the real CLI as the operator.
//!
//! What this proves (issue 8, "unknown parts are settled, not left for ever"): a message with an
//! `unknown` part reports `unknown` (not `sending`) and `GET /v1/messages?state=unknown` lists
//! it; `smsgate status` tells the operator what they can do; `smsgate settle ID --sent` uses the
//! part's credit and `--not-sent` refunds it; a non-admin is refused; settling a message with no
//! unknown part is refused with a clear error; settle and retry are both in the audit log under
//! the operator's name, and the log's chain still verifies.

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use smsgate::api::types::{MessageId, MessageState};
use support::*;

fn mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The e2e config, but the test's account pays for its messages, and uid 4001 is a customer
/// (account "other", not an admin).
fn write_metered_config(dir: &Path, ports_glob: &str) {
    let uid = nix::unistd::getuid().as_raw();
    let accounts = format!(
        "[[accounts]]\nname = \"e2e\"\nuids = [{uid}]\n\n[[accounts]]\nname = \"other\"\nuids = [4001]\n"
    );
    write_config_with(dir, ports_glob, "", &accounts);
}

fn ok_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn assert_refused(o: &Output, contains: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(contains), "{err}");
}

fn credit(daemon: &Daemon) -> Value {
    ok_json(&daemon.cli(&["credit", "show", "--account", "e2e", "--json"]))
}

/// (event, actor, message id) of the audit records of operators' actions.
fn operator_audit(database: &Path) -> Vec<(String, String, i64)> {
    let conn =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT event, actor, message_id FROM audit_log
             WHERE event IN ('settled', 'retried') ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn operator_settles_unknown_parts_sent_or_refunded_and_both_are_audited() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        // A 30 s +CMGS: the parts are surely `sending` when the daemon is killed.
        let sim = Sim::start_with(&tmp.path().join("bank"), 2, "30s");
        write_metered_config(tmp.path(), &sim.ports_glob());
        let mut daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(2).await;
        ok_json(&daemon.cli(&[
            "credit",
            "add",
            "--account",
            "e2e",
            "--messages",
            "10",
            "--valid-for",
            "1y",
            "--json",
        ]));
        let client = daemon.client();
        // No delivery report asked: nothing but the operator settles these parts.
        let mut ids = Vec::new();
        for i in 0..2 {
            let mut req = request(vec![recipient(i)], "【测试】您的验证码是 135790。");
            req.report = false;
            let resp = client.send(&req).await.expect("send");
            ids.push(resp.ids[0]);
        }
        wait_for("both parts sending", Duration::from_secs(20), || async {
            (part_states(&daemon.database).get("sending") == Some(&2)).then_some(())
        })
        .await;
        daemon.kill9();
        let daemon = Daemon::start(tmp.path(), &sim);
        // The API is enough: the modems are still busy with the submits in flight.
        daemon.wait_ready(0).await;
        let client = daemon.client();
        let [sent_id, lost_id] = [ids[0], ids[1]];

        // Both report `unknown`, and the list by state finds them (and `sending` does not).
        for m in views(&client, &ids).await {
            assert_eq!(m.state, MessageState::Unknown, "{m:?}");
            assert_eq!(m.parts[0].state, MessageState::Unknown, "{m:?}");
        }
        let list = |state: &'static str| {
            let daemon = &daemon;
            async move {
                let (status, body) = daemon
                    .client()
                    .raw(
                        hyper::Method::GET,
                        &format!("/v1/messages?state={state}"),
                        Vec::new(),
                    )
                    .await
                    .unwrap();
                assert_eq!(status, 200);
                let v: Value = serde_json::from_slice(&body).unwrap();
                let mut ids: Vec<u64> = v["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["id"].as_u64().unwrap())
                    .collect();
                ids.sort();
                ids
            }
        };
        assert_eq!(list("unknown").await, vec![sent_id.0, lost_id.0]);
        assert_eq!(list("sending").await, Vec::<u64>::new());
        assert_eq!(credit(&daemon)["reserved"], 2);

        // `smsgate status` says what the operator can do.
        let o = daemon.cli(&["status", &sent_id.to_string()]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{text}");
        assert!(text.contains("state      unknown"), "{text}");
        assert!(text.contains(&format!("smsgate retry {sent_id}")), "{text}");
        assert!(
            text.contains(&format!("smsgate settle {sent_id} --sent")),
            "{text}"
        );
        assert!(text.contains("--not-sent"), "{text}");

        // A customer may not settle (needs root to run the client as another uid).
        if nix::unistd::geteuid().is_root() {
            let o = std::process::Command::new(BIN)
                .args(["settle", &sent_id.to_string(), "--sent", "--socket"])
                .arg(&daemon.socket)
                .env_remove("SMSGATE_SOCKET")
                .uid(4001)
                .gid(4001)
                .output()
                .unwrap();
            assert_refused(&o, "for admins only");
        }
        // One verdict, not both, not none.
        let o = daemon.cli(&["settle", &sent_id.to_string()]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        let o = daemon.cli(&["settle", &sent_id.to_string(), "--sent", "--not-sent"]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");

        // --sent: the part is sent, its credit used.
        let v = ok_json(&daemon.cli(&["settle", &sent_id.to_string(), "--sent", "--json"]));
        assert_eq!(v["state"], "sent", "{v}");
        assert_eq!(v["parts"][0]["state"], "sent", "{v}");
        let c = credit(&daemon);
        assert_eq!(
            (c["used"].clone(), c["reserved"].clone()),
            (1.into(), 1.into())
        );
        // --not-sent: the part failed, its credit refunded.
        let v = ok_json(&daemon.cli(&["settle", &lost_id.to_string(), "--not-sent", "--json"]));
        assert_eq!(v["state"], "failed", "{v}");
        let c = credit(&daemon);
        assert_eq!(c["used"], 1, "{c}");
        assert_eq!(c["reserved"], 0, "{c}");
        assert_eq!(
            c["available"], 9,
            "the part settled as not sent was refunded: {c}"
        );

        // Settling a message that has no unknown part is refused, clearly.
        let o = daemon.cli(&["settle", &sent_id.to_string(), "--not-sent"]);
        assert_refused(&o, "has no unknown part to settle (it is sent)");
        assert_eq!(
            credit(&daemon)["used"],
            1,
            "a refused settle changes nothing"
        );

        // The failed one may be retried (reserving its credit again); both actions audited.
        let v = ok_json(&daemon.cli(&["retry", &lost_id.to_string(), "--json"]));
        assert_ne!(v["state"], "failed", "{v}");
        let audit = operator_audit(&daemon.database);
        let events: Vec<(&str, i64)> = audit.iter().map(|(e, _, m)| (e.as_str(), *m)).collect();
        let id = |m: MessageId| m.0 as i64;
        assert_eq!(
            events,
            vec![
                ("settled", id(sent_id)),
                ("settled", id(lost_id)),
                ("retried", id(lost_id))
            ]
        );
        let uid = nix::unistd::getuid().as_raw();
        for (_, actor, _) in &audit {
            assert!(
                actor.starts_with("admin:") && actor.ends_with(&format!("(uid {uid})")),
                "{actor}"
            );
        }
        let o = std::process::Command::new(BIN)
            .args(["log", "verify", "--database"])
            .arg(&daemon.database)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    });
}
