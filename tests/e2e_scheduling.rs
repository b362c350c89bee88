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

/// Issue 14, the loop at the modem's pace: while a part is on the air, its SIM's next part is
/// chosen, and the outcome of the one and the claim of the next commit in one transaction. The
/// store shows it: a chained claim's `send_attempts.at` is the very instant the previous part
/// was recorded sent (one transaction, one time), where a claim made by a later planning round
/// carries that round's later time. And a message's parts go out one after the other on the
/// SIM, never interleaved with another message's.
#[test]
fn a_sim_goes_from_one_send_to_the_next_in_one_commit() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start_with(&tmp.path().join("bank"), 1, "150ms");
        let daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(1).await;
        let client = daemon.client();
        // 10 long (multi-part) messages, then 10 single-part ones.
        let ids = send_batch_with(&client, 0, 20, false).await;
        wait_messages(&client, &ids, Duration::from_secs(60), "all sent", |m| {
            matches!(m.state, MessageState::Sent | MessageState::Delivered)
        })
        .await;
        let conn = rusqlite::Connection::open_with_flags(
            &daemon.database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT a.at, p.sent_at, p.message_id, p.seq FROM send_attempts a
                 JOIN parts p ON p.id = a.part_id ORDER BY a.id",
            )
            .unwrap();
        let rows: Vec<(i64, i64, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(rows.len() >= 30, "{} attempts", rows.len());
        let chained = rows.windows(2).filter(|w| w[1].0 == w[0].1).count();
        // The first send has nothing before it, and a look-ahead may now and then not be
        // chosen before a 150 ms send ends; nearly every other send is chained.
        assert!(
            chained * 10 >= (rows.len() - 1) * 8,
            "{chained} of {} sends chained to the previous outcome",
            rows.len() - 1
        );
        // Parts in order, each message's parts together.
        for w in rows.windows(2) {
            let ((_, _, m0, s0), (_, _, m1, s1)) = (w[0], w[1]);
            if m1 == m0 {
                assert_eq!(s1, s0 + 1, "message {m0}: part {s1} after part {s0}");
            } else {
                assert_eq!(s1, 1, "message {m1} starts at part {s1} after message {m0}");
            }
        }
    });
}

/// A look-ahead part is held for its SIM until its chain's claim is written: a planning round
/// that read the due parts while a chain was claiming one must not give that part to another
/// SIM (the claim is then refused, that SIM goes through a round for nothing, and at the end
/// of a queue it may find every part held and sit out a whole send: a 49/51 split that cost
/// the drain benchmark a send's time). Regression test for that race.
#[test]
fn no_part_is_given_to_two_sims() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start_with(&tmp.path().join("bank"), 8, "80ms");
        let daemon = Daemon::start_with(
            tmp.path(),
            &sim,
            "",
            &[("SMSGATE_LOG", "smsgate=info,smsgate::daemon::runner=debug")],
        );
        daemon.wait_ready(8).await;
        let client = daemon.client();
        let mut ids = Vec::new();
        for batch in 0..24 {
            let to: Vec<String> = (batch * 10..batch * 10 + 10).map(recipient).collect();
            let resp = client
                .send(&request(to, "【测试】您的验证码是 428913。"))
                .await
                .expect("send");
            assert!(resp.refused.is_empty(), "refused: {:?}", resp.refused);
            ids.extend(resp.ids);
        }
        wait_messages(&client, &ids, Duration::from_secs(60), "all sent", |m| {
            matches!(m.state, MessageState::Sent | MessageState::Delivered)
        })
        .await;
        // A look-ahead the store refused at its chain's commit was also given to another SIM.
        // (A round's own claim may be refused for other reasons: acceptance's hand-over can
        // claim a part a round planned in the same instant; that costs nothing and is not
        // what this test is about.)
        let log = std::fs::read_to_string(&daemon.log).unwrap();
        let twice: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("look-ahead part not claimed"))
            .collect();
        assert!(
            twice.is_empty(),
            "{} parts were given to a SIM after another had them:\n{}",
            twice.len(),
            twice.join("\n")
        );
        // And each SIM sent its share (240 parts, 8 SIMs of the same speed).
        let conn = rusqlite::Connection::open_with_flags(
            &daemon.database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let per_sim: Vec<i64> = conn
            .prepare("SELECT COUNT(*) FROM send_attempts GROUP BY sim_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(per_sim.iter().sum::<i64>(), 240, "{per_sim:?}");
    });
}

/// On an idle bank a part is claimed in the acceptance's own commit (issue 14's hand-over):
/// when the 202 arrives the part is no longer `queued`, and the daemon says it handed it over.
/// Before the hand-over, a planning round claimed it in a second commit after the 202.
#[test]
fn an_idle_sim_gets_a_new_part_in_the_acceptance_commit() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start_with(&tmp.path().join("bank"), 2, "300ms");
        let daemon = Daemon::start_with(
            tmp.path(),
            &sim,
            "",
            &[(
                "SMSGATE_LOG",
                "smsgate=info,smsgate::daemon::handover=debug",
            )],
        );
        daemon.wait_ready(2).await;
        let client = daemon.client();
        let mut ids = Vec::new();
        for i in 0..5 {
            let resp = client
                .send(&request(
                    vec![recipient(i)],
                    "【测试】您的验证码是 428913。",
                ))
                .await
                .expect("send");
            // Read at once: the claim committed with the acceptance, before the 202.
            let m = client.status(resp.ids[0], None).await.expect("status");
            assert_ne!(
                m.state,
                MessageState::Queued,
                "message {i} still queued after its 202"
            );
            ids.extend(resp.ids);
            // Both SIMs idle again before the next one.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        wait_messages(&client, &ids, Duration::from_secs(30), "all sent", |m| {
            matches!(m.state, MessageState::Sent | MessageState::Delivered)
        })
        .await;
        let log = std::fs::read_to_string(&daemon.log).unwrap();
        let handed = log
            .lines()
            .filter(|l| l.contains("hand-over: claimed in acceptance's commit"))
            .count();
        assert_eq!(handed, 5, "log:\n{}", daemon.log_tail());
    });
}
