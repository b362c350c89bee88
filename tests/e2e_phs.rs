//! End-to-end proof of the PHS round trip (issue 10): the real `smsgate daemon` drives a
//! `smsgate sim --dialect phs` modem (real pseudo-terminals), which speaks the CDMA/PHS text
//! mode: `^HCMGS` to send, `+CMTI` + `^HCMGR` to receive. A message sent to a PHS number
//! reaches the network as text; a reply stored before the daemon started is read at start-up;
//! a `TD` reply lands in the inbox and opts its sender out, so a later send to that number is
//! refused as `opted_out`. What the network received is read from the bank's events.jsonl.

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
