//! End-to-end proof that waiting work never starves due work: the real `smsgate` binary as
//! `smsgate daemon` driving the virtual modem bank `smsgate sim` (real pseudo-terminals), what
//! the network received read from the bank's events.jsonl.
//!
//! What these tests prove (issue 8, "a message can starve"): parts that are not due (a
//! `not_before` hours ahead) never fill the runner's window of due parts, so an ordinary message
//! accepted after thousands of them goes out at once, and the waiting parts stay unsent.

mod support;

use std::time::Duration;

use smsgate::api::types::MessageState;
use support::*;

fn mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// As a new user would try it: 2,100 recipients (more than the runner's window of 2,048 parts)
/// scheduled 8 hours ahead, then one ordinary message. Before the fix the ordinary message
/// stayed `queued` until the scheduled ones were due.
#[test]
fn an_ordinary_message_goes_out_while_2100_scheduled_parts_wait() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start(&tmp.path().join("bank"), 1);
        let daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(1).await;
        let client = daemon.client();

        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(8);
        let mut campaign = request(
            (0..2100).map(recipient).collect(),
            "【测试商城】双十一会员日，全场五折起，详情见官网。回T退订",
        );
        campaign.not_before = Some(later);
        let resp = client.send(&campaign).await.expect("send the campaign");
        assert!(resp.refused.is_empty(), "refused: {:?}", resp.refused);
        assert_eq!(resp.ids.len(), 2100);
        let campaign_ids = resp.ids;

        let ordinary = request(
            vec![recipient(5000)],
            "【测试】您的验证码是 424242，5分钟内有效。",
        );
        let resp = client
            .send(&ordinary)
            .await
            .expect("send the ordinary message");
        assert_eq!(resp.ids.len(), 1);
        let done = wait_messages(
            &client,
            &resp.ids,
            Duration::from_secs(20),
            "the ordinary message sent while 2,100 scheduled parts wait",
            |m| matches!(m.state, MessageState::Sent | MessageState::Delivered),
        )
        .await;
        assert_eq!(done[0].parts.len(), 1);

        // The network received the ordinary message and nothing of the campaign.
        let submits = sim.submits();
        assert_eq!(submits.len(), 1, "{submits:?}");
        assert!(
            submits[0].to.ends_with(&recipient(5000)[3..]),
            "{submits:?}"
        );
        let states = part_states(&daemon.database);
        assert_eq!(states.get("queued"), Some(&2100), "{states:?}");
        let ends = [campaign_ids[0], campaign_ids[2099]];
        for m in views(&client, &ends).await {
            assert_eq!(m.state, MessageState::Scheduled, "{m:?}");
        }
    });
}
