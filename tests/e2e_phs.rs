//! End-to-end proof of the PHS round trip (issue 10): the real `smsgate daemon` drives a
//! `smsgate sim --dialect phs` modem (real pseudo-terminals), which speaks the CDMA/PHS text
//! mode: `^HCMGS` to send, `+CMTI` + `^HCMGR` to receive. A message sent to a PHS number
//! reaches the network as text; a reply stored before the daemon started is read at start-up;
//! a `TD` reply lands in the inbox and opts its sender out, so a later send to that number is
//! refused as `opted_out`. A part queued by an earlier release (schema 7, its PDU as acceptance
//! encoded it) sends after the upgrade, encoded for the PHS dialect at send time. What the
//! network received is read from the bank's events.jsonl.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use smsgate::api::types::MessageState;
use support::*;

const PHS_USER: &str = "075587654321";

fn inbox(daemon: &Daemon) -> Vec<serde_json::Value> {
    let out = daemon.cli(&["inbox", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["messages"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn phs_modem_sends_receives_and_a_td_reply_opts_out() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start_args(&tmp.path().join("bank"), 1, "50ms", &["--dialect", "phs"]);
        let config = write_config(tmp.path(), &sim.ports_glob(), "");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("dialect = \"generic\"", "dialect = \"phs\""),
        )
        .unwrap();
        let mut daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(1).await;
        let client = daemon.client();

        // Send: the module gets ^HCMGS with the national number and the text.
        let resp = client
            .send(&request(
                vec![PHS_USER.into()],
                "【测试】您的验证码是 123456",
            ))
            .await
            .expect("send");
        assert!(resp.refused.is_empty(), "{:?}", resp.refused);
        let id = resp.ids[0];
        wait_for("the message sent", Duration::from_secs(20), || async {
            let v = client.status(id, None).await.ok()?;
            matches!(v.state, MessageState::Sent | MessageState::Delivered).then_some(())
        })
        .await;
        let sent: Vec<_> = sim
            .events()
            .into_iter()
            .filter(|e| e["event"] == "hcmgs")
            .collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["to"], PHS_USER);
        assert_eq!(sent[0]["text"], "【测试】您的验证码是 123456");

        // A reply that arrives while no daemon runs stays on the module (its +CPMS memory, no
        // notification routed); the next start-up reads it with +CPMS and ^HCMGR.
        let (code, _) = daemon.stop(Signal::SIGTERM, Duration::from_secs(20)).await;
        assert!(code.success());
        sim.ctl(&[
            "inject",
            "--modem",
            "0",
            "--from",
            PHS_USER,
            "--text",
            "早上好",
        ]);
        let daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(1).await;
        let client = daemon.client();
        wait_for(
            "the stored reply in the inbox",
            Duration::from_secs(20),
            || async {
                inbox(&daemon)
                    .into_iter()
                    .find(|m| m["text"] == "早上好" && m["from"] == PHS_USER)
            },
        )
        .await;

        // The PHS user answers TD: it reaches the inbox through +CMTI and ^HCMGR ...
        sim.ctl(&["inject", "--modem", "0", "--from", PHS_USER, "--text", "TD"]);
        wait_for(
            "the TD reply in the inbox",
            Duration::from_secs(20),
            || async {
                inbox(&daemon)
                    .into_iter()
                    .find(|m| m["text"] == "TD" && m["from"] == PHS_USER)
            },
        )
        .await;
        // ... and opts the sender out: a later send to the number is refused.
        let refused = wait_for("the opt-out in force", Duration::from_secs(20), || async {
            let r = client
                .send(&request(vec![PHS_USER.into()], "【测试】再次通知"))
                .await
                .ok()?;
            r.ids.is_empty().then_some(r.refused)
        })
        .await;
        assert_eq!(refused[0].code, "opted_out", "{refused:?}");
        // The bank's storage was emptied by the acks (each read message deleted).
        wait_for(
            "the module's storage emptied",
            Duration::from_secs(10),
            || async { (sim.status()[0]["storage_used"] == 0).then_some(()) },
        )
        .await;
        // Nothing else was sent (the refused send never reached the network).
        let sent = sim
            .events()
            .into_iter()
            .filter(|e| e["event"] == "hcmgs")
            .count();
        assert_eq!(sent, 1);
    });
}

/// Issue 10 (PDUs encoded at send time): a part queued by an earlier release, stored as the
/// codec built it at acceptance (SMSC "00", SUBMIT to +8613912345678 with the international
/// type 0x91, UCS2 text), in a database at the schema before migration 0008, is sent after
/// the upgrade by a PHS module: the daemon migrates the file, claims the part and the module
/// gets ^HCMGS with the national number and the text, encoded for its dialect at send time.
#[test]
fn a_part_queued_by_an_earlier_release_sends_on_a_phs_module_after_the_upgrade() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start_args(&tmp.path().join("bank"), 1, "50ms", &["--dialect", "phs"]);
        let config = write_config(tmp.path(), &sim.ports_glob(), "");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("dialect = \"generic\"", "dialect = \"phs\""),
        )
        .unwrap();
        // The queued message as the earlier release left it; the file is then marked as
        // schema 7 (0008 converts only values that can be seconds, none here).
        let db = tmp.path().join("smsgate.db");
        drop(smsgate::store::Store::open(&db).unwrap());
        let opts = smsgate::pdu::SubmitOptions::new(
            smsgate::pdu::Address::parse_number("+8613912345678").unwrap(),
        );
        let part = smsgate::pdu::encode_submit(&opts, "早上好").unwrap().remove(0);
        assert!(part.hex().starts_with("0001000D91"), "{}", part.hex());
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO messages (id, account, recipient, text, encoding, part_count, state,
                 created_at) VALUES (1, 'e2e', '+8613912345678', '早上好', 'ucs2', 1, 'queued', ?1)",
            [now_ms],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO parts (message_id, seq, state, pdu_hex, cmgs_length)
                 VALUES (1, 1, 'queued', ?1, ?2)",
            rusqlite::params![part.hex(), part.cmgs_length as i64],
        )
        .unwrap();
        conn.execute_batch("PRAGMA user_version = 7;").unwrap();
        drop(conn);

        let daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(1).await;
        let client = daemon.client();
        wait_for("the old part sent", Duration::from_secs(20), || async {
            let v = client
                .status(smsgate::api::types::MessageId(1), None)
                .await
                .ok()?;
            matches!(v.state, MessageState::Sent | MessageState::Delivered).then_some(())
        })
        .await;
        let sent: Vec<_> = sim
            .events()
            .into_iter()
            .filter(|e| e["event"] == "hcmgs")
            .collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["to"], "13912345678", "national form: {sent:?}");
        assert_eq!(sent[0]["text"], "早上好");
        let version: i64 = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, smsgate::store::latest_schema_version());
    });
}
