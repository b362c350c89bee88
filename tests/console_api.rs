//! The console API end to end (issue 13): the real daemon with the virtual modem bank, its real
//! Unix socket, and two ways of calling it: as an admin (root, no account of its own) and as
//! the customer "shop" through the front-end header (`frontends` lists the test's uid), which
//! is how `smsgate web` calls it for a logged-in customer.
//!
//! What it proves: a quote's parts and cost are exactly what a send of the same text reserves
//! (a GSM 7-bit text, a 70-character and a 300-character Chinese text, each with the account's
//! unsubscribe suffix, which pushes the first two over a part boundary); the recipients check
//! classifies valid, invalid, duplicate, opted-out and blacklisted numbers; statistics, the
//! opt-out list and the CSV send log show the account's own sends; an account sets and reads
//! its own webhook; a failed webhook attempt reported by the front end shows as stuck with its
//! attempts and error; every route refuses another account's data (403) and bad parameters
//! (400); and through a logged-in user's session (how the console calls) a customer user gets
//! its own account's data and a reviewer none.

mod support;

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};
use smsgate::api::client::{ApiClient, ClientError};
use smsgate::api::types::{
    MessageState, QuoteRequest, RecipientCheckRequest, RecipientStatus, SendLogQuery, StatsQuery,
};
use support::{wait_for, Daemon, Sim};

/// Root is the admin; "shop" (suffix 回T退订) and "plain" (an ASCII suffix) are metered, "other"
/// is another customer. No account lists a uid: root has none of its own.
fn configure(dir: &std::path::Path, sim: &Sim) {
    let uid = nix::unistd::getuid().as_raw();
    let accounts = "[[accounts]]\nname = \"shop\"\nunsubscribe_suffix = \"回T退订\"\n\n\
                    [[accounts]]\nname = \"plain\"\nunsubscribe_suffix = \" Reply TD to stop\"\n\n\
                    [[accounts]]\nname = \"other\"\nunmetered = true\n";
    let path = support::write_config_with(dir, &sim.ports_glob(), "", accounts);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("frontends = [{uid}]\n{text}")).unwrap();
}

/// The API error of a failed call: (status, code).
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn available(admin: &ApiClient, account: &str) -> u64 {
    let v: Value = admin
        .call(
            Method::GET,
            &format!("/v1/accounts/{account}/credit"),
            None::<&()>,
        )
        .await
        .unwrap();
    v["available"].as_u64().expect("available credit")
}

fn quote_request(text: &str) -> QuoteRequest {
    QuoteRequest {
        text: text.into(),
        ..QuoteRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_routes_for_an_account_and_their_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("bank"), 1);
    configure(dir.path(), &sim);
    let daemon = Daemon::start(dir.path(), &sim);
    daemon.wait_ready(1).await;
    let admin = daemon.client();
    let shop = admin.acting_for("shop");
    for account in ["shop", "plain"] {
        let out = daemon.cli(&["credit", "add", "--account", account, "--messages", "100"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // --- Quote = what the send reserves, for three texts.
    // 157 septets ('{', '}' and '€' take two each): one part alone, two with the suffix.
    let gsm = format!(
        "{}Thanks for shopping with us!",
        "Your parcel {A-17} ships today; fee 3€. ".repeat(3)
    );
    let chinese_70: String = "短信测试内容十个字".repeat(8).chars().take(70).collect();
    let chinese_300: String = "尊敬的会员您好您的订单已发货"
        .repeat(22)
        .chars()
        .take(300)
        .collect();
    let cases = [
        ("plain", gsm.as_str(), "gsm7", 2u32),
        ("shop", chinese_70.as_str(), "ucs2", 2),
        ("shop", chinese_300.as_str(), "ucs2", 5),
    ];
    let mut sent_ids = Vec::new();
    for (i, (account, text, encoding, parts)) in cases.into_iter().enumerate() {
        let mut req = quote_request(text);
        req.account = Some(account.into());
        let q = admin.quote(&req).await.unwrap();
        let suffix = if account == "shop" {
            "回T退订"
        } else {
            " Reply TD to stop"
        };
        assert_eq!(q.text_as_sent, format!("{text}{suffix}"));
        assert_eq!(q.characters as usize, q.text_as_sent.chars().count());
        assert_eq!(
            (q.encoding.as_str(), q.parts, q.cost),
            (encoding, parts, u64::from(parts))
        );
        // Three recipients cost three times as much.
        req.recipients = Some(3);
        assert_eq!(admin.quote(&req).await.unwrap().cost, 3 * u64::from(parts));

        let before = available(&admin, account).await;
        let mut send = support::request(vec![support::recipient(i)], text);
        send.account = Some(account.into());
        let r = admin.send(&send).await.unwrap();
        assert_eq!(r.parts, q.parts, "{account}: {text}");
        let after = available(&admin, account).await;
        assert_eq!(before - after, q.cost, "{account}: charged as quoted");
        if account == "shop" {
            sent_ids.extend(r.ids);
        }
    }
    // The customer's own quote needs no account; another account's is refused; bad input 400.
    let q = shop.quote(&quote_request("你好")).await.unwrap();
    assert_eq!((q.text_as_sent.as_str(), q.parts), ("你好回T退订", 1));
    let mut other = quote_request("hi");
    other.account = Some("plain".into());
    assert_eq!(refused(shop.quote(&other).await), (403, "forbidden".into()));
    assert_eq!(
        refused(admin.quote(&quote_request("hi")).await),
        (400, "invalid_field".into()),
        "an admin without an account names one"
    );
    assert_eq!(refused(shop.quote(&quote_request(" ")).await).0, 400);
    let mut many = quote_request("hi");
    many.recipients = Some(0);
    assert_eq!(refused(shop.quote(&many).await).0, 400);
    let mut phs = quote_request("hi");
    phs.sender = Some(smsgate::config::SenderKind::Phs);
    assert_eq!(
        refused(shop.quote(&phs).await).0,
        403,
        "a sender kind shop may not use"
    );
    let mut nobody = quote_request("hi");
    nobody.account = Some("nobody".into());
    assert_eq!(refused(admin.quote(&nobody).await).0, 404);

    // Shop's messages sent (the opt-out below finds shop as the account that messaged the
    // number) and delivered (for the statistics).
    wait_for("shop's messages delivered", Duration::from_secs(30), || {
        let (admin, ids) = (admin.clone(), sent_ids.clone());
        async move {
            for id in &ids {
                if admin.status(*id, None).await.ok()?.state != MessageState::Delivered {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;

    // --- An opt-out (a "TD" reply to shop) and a blacklisted number.
    let opted = support::recipient(1);
    sim.ctl(&[
        "inject",
        "--modem",
        "0",
        "--from",
        &format!("+86{opted}"),
        "--text",
        "TD",
    ]);
    let optouts = wait_for("the opt-out recorded", Duration::from_secs(30), || {
        let shop = shop.clone();
        async move {
            let list = shop.optouts(None).await.ok()?;
            (!list.optouts.is_empty()).then_some(list)
        }
    })
    .await;
    assert_eq!(optouts.account, "shop");
    assert_eq!(optouts.optouts[0].number, format!("+86{opted}"));
    assert_eq!(
        refused(shop.optouts(Some("plain")).await),
        (403, "forbidden".into())
    );
    assert_eq!(refused(admin.optouts(None).await).0, 400);
    assert!(admin
        .optouts(Some("plain"))
        .await
        .unwrap()
        .optouts
        .is_empty());
    let banned = support::recipient(20);
    let out = daemon.cli(&[
        "blacklist",
        "add",
        "--number",
        &banned,
        "--reason",
        "complaint",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --- Recipients check.
    let numbers = vec![
        support::recipient(30),
        "12345".to_owned(),
        format!("+86 {}", support::recipient(30)),
        opted.clone(),
        banned.clone(),
    ];
    let check = shop
        .check_recipients(&RecipientCheckRequest {
            numbers: numbers.clone(),
            account: None,
        })
        .await
        .unwrap();
    let statuses: Vec<RecipientStatus> = check.rows.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            RecipientStatus::Valid,
            RecipientStatus::Invalid,
            RecipientStatus::Duplicate,
            RecipientStatus::OptedOut,
            RecipientStatus::Blacklisted,
        ]
    );
    assert!(check.rows[1].number.is_none() && check.rows[1].reason.is_some());
    for status in ["valid", "invalid", "duplicate", "opted_out", "blacklisted"] {
        assert_eq!(check.counts[status], 1, "{status}: {:?}", check.counts);
    }
    // The opt-out is shop's: for plain the number is valid.
    let plain_check = admin
        .check_recipients(&RecipientCheckRequest {
            numbers: vec![opted.clone()],
            account: Some("plain".into()),
        })
        .await
        .unwrap();
    assert_eq!(plain_check.rows[0].status, RecipientStatus::Valid);
    let too_many = RecipientCheckRequest {
        numbers: (0..10_001).map(support::recipient).collect(),
        account: None,
    };
    assert_eq!(refused(shop.check_recipients(&too_many).await).0, 400);
    let foreign = RecipientCheckRequest {
        numbers: vec![],
        account: Some("other".into()),
    };
    assert_eq!(refused(shop.check_recipients(&foreign).await).0, 403);

    // --- Statistics: shop's two messages, 7 parts, sent and delivered.
    let stats = wait_for(
        "the delivery reports counted",
        Duration::from_secs(10),
        || {
            let shop = shop.clone();
            async move {
                let s = shop.stats(&StatsQuery::default()).await.ok()?;
                (s.hours.iter().map(|h| h.delivered).sum::<u64>() == 7).then_some(s)
            }
        },
    )
    .await;
    assert_eq!((stats.account.as_str(), stats.days), ("shop", 7));
    assert_eq!(stats.today.messages, 2);
    assert_eq!(stats.today.parts, 7);
    assert!(stats.month.parts >= 7);
    assert_eq!(stats.hours.len(), 7 * 24);
    assert_eq!(stats.hours.iter().map(|h| h.sent).sum::<u64>(), 7);
    assert_eq!(stats.delivery_rate, Some(1.0));
    let last = stats.hours.last().unwrap().hour;
    assert!(jiff::Timestamp::now().as_millisecond() - last < 3_600_000);
    let one = shop
        .stats(&StatsQuery {
            account: None,
            days: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(one.hours.len(), 24);
    for days in [0, 32] {
        let q = StatsQuery {
            account: None,
            days: Some(days),
        };
        assert_eq!(refused(shop.stats(&q).await).0, 400, "days={days}");
    }
    let q = StatsQuery {
        account: Some("plain".into()),
        days: None,
    };
    assert_eq!(refused(shop.stats(&q).await).0, 403);
    assert_eq!(admin.stats(&q).await.unwrap().today.parts, 2);

    // --- The send log: shop's own parts, a header row, RFC 3339 times.
    let csv = shop.send_log_csv(&SendLogQuery::default()).await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "message_id,part,recipient,sender,via,state,created,sent,delivered,error"
    );
    assert_eq!(lines.len(), 1 + 7, "{csv}");
    assert!(
        lines[1..].iter().all(|l| l.contains(",mobile,SIM ")),
        "{csv}"
    );
    assert!(
        lines[1..].iter().all(|l| l.contains(",delivered,")),
        "{csv}"
    );
    assert!(!csv.contains(&support::recipient(0)), "plain's send: {csv}");
    let today = jiff::ZonedDateTime::now().date().to_string();
    let dated = SendLogQuery {
        account: None,
        from: Some(today.clone()),
        to: Some(today),
    };
    assert_eq!(shop.send_log_csv(&dated).await.unwrap(), csv);
    for (from, to) in [("yesterday", None), ("2026-01-01", Some("2025-01-01"))] {
        let q = SendLogQuery {
            account: None,
            from: Some(from.into()),
            to: to.map(str::to_owned),
        };
        assert_eq!(refused(shop.send_log_csv(&q).await).0, 400, "{from}");
    }
    let q = SendLogQuery {
        account: Some("plain".into()),
        ..SendLogQuery::default()
    };
    assert_eq!(refused(shop.send_log_csv(&q).await).0, 403);
    assert_eq!(admin.send_log_csv(&q).await.unwrap().lines().count(), 1 + 2);

    // --- Webhook self-service: an account sets and reads its own, not another's.
    let set: Value = shop
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&json!({"account": "shop", "url": "http://127.0.0.1:1/hook"})),
        )
        .await
        .unwrap();
    assert!(set["secret"].as_str().unwrap().starts_with("whsec_"));
    let foreign: Result<Value, _> = shop
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&json!({"account": "other", "url": "http://127.0.0.1:1/x"})),
        )
        .await;
    assert_eq!(refused(foreign), (403, "forbidden".into()));
    admin
        .webhook_set("other", "https://example.com/other")
        .await
        .unwrap();
    let listed = shop.webhooks(None).await.unwrap();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["webhooks"][0]["account"], "shop");
    assert_eq!(
        admin.webhooks(None).await.unwrap()["webhooks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(refused(shop.webhooks(Some("other")).await).0, 403);
    let mine = shop.webhook("shop").await.unwrap();
    assert_eq!(mine.url.as_deref(), Some("http://127.0.0.1:1/hook"));
    assert!(mine.secret_prefix.is_some());
    assert_eq!(refused(shop.webhook("other").await).0, 403);
    assert_eq!(refused(shop.webhook_set("shop", "ftp://x").await).0, 400);
    let put = shop
        .webhook_set("shop", "http://127.0.0.1:1/hook2")
        .await
        .unwrap();
    assert_ne!(put["secret"], set["secret"], "a new secret");
    shop.webhook_remove("shop").await.unwrap();
    assert_eq!(shop.webhook("shop").await.unwrap().url, None);
    shop.webhook_set("shop", "http://127.0.0.1:1/hook")
        .await
        .unwrap();

    // --- Stuck events: a delivery report for shop, one failed attempt reported by the front
    // end (the test's uid, without an account header), listed with its attempt and error.
    let r = shop
        .send(&support::request(vec![support::recipient(40)], "webhook"))
        .await
        .unwrap();
    let frontend = daemon.client();
    let id = r.ids[0].0;
    let due: Value = wait_for("a webhook event due", Duration::from_secs(30), || {
        let frontend = frontend.clone();
        async move {
            let v: Value = frontend
                .call(Method::GET, "/v1/webhooks/due", None::<&()>)
                .await
                .ok()?;
            v["events"]
                .as_array()?
                .iter()
                .find(|e| {
                    e["body"]
                        .as_str()
                        .is_some_and(|b| b.contains(&format!("\"message_id\":{id}")))
                })
                .cloned()
        }
    })
    .await;
    let event = due["id"].as_i64().unwrap();
    assert_eq!(
        refused(shop.webhook_fail(event, "connect refused").await).0,
        403
    );
    assert_eq!(refused(frontend.webhook_fail(event, " ").await).0, 400);
    assert_eq!(refused(frontend.webhook_fail(999_999, "x").await).0, 404);
    let failed = frontend
        .webhook_fail(event, "connect refused")
        .await
        .unwrap();
    assert_eq!(failed["outcome"], "retry");
    let stuck = shop.webhooks_stuck(None).await.unwrap();
    assert_eq!(stuck.events.len(), 1, "{stuck:?}");
    let e = &stuck.events[0];
    assert_eq!((e.id, e.account.as_str(), e.attempts), (event, "shop", 1));
    assert_eq!(e.last_error.as_deref(), Some("connect refused"));
    assert!(e.first_attempt.is_some() && e.first_attempt == e.last_attempt);
    assert!(e.next_attempt.is_some() && e.given_up.is_none());
    assert_eq!(refused(shop.webhooks_stuck(Some("other")).await).0, 403);
    assert!(admin
        .webhooks_stuck(Some("other"))
        .await
        .unwrap()
        .events
        .is_empty());
    assert_eq!(admin.webhooks_stuck(None).await.unwrap(), stuck);

    // --- Through a logged-in user's session (how the console calls): a customer user sees its
    // own account's data only; a reviewer none of it; a new user first changes its password.
    use smsgate::api::users::{LoginRequest, NewUserRequest, Role};
    for (login, account, role) in [
        ("alice", Some("shop"), Role::Customer),
        ("rita", None, Role::Reviewer),
    ] {
        admin
            .user_add(&NewUserRequest {
                login: login.into(),
                account: account.map(str::to_owned),
                role,
                password: "initial-password-1".into(),
            })
            .await
            .unwrap();
    }
    let session = |login: &str| {
        let (frontend, login) = (daemon.client(), login.to_owned());
        async move {
            let answer = frontend
                .login(&LoginRequest {
                    login,
                    password: "initial-password-1".into(),
                    client_ip: Some("127.0.0.1".into()),
                })
                .await
                .unwrap();
            let user = frontend.with_session(&answer.token);
            user.change_own_password("initial-password-1", "a-new-password-2")
                .await
                .unwrap();
            user
        }
    };
    let alice = session("alice").await;
    let stats = alice.stats(&StatsQuery::default()).await.unwrap();
    assert_eq!(stats.account, "shop");
    assert_eq!(alice.quote(&quote_request("你好")).await.unwrap().parts, 1);
    let theirs = StatsQuery {
        account: Some("plain".into()),
        days: None,
    };
    assert_eq!(
        refused(alice.stats(&theirs).await),
        (403, "forbidden".into())
    );
    let plain_log = SendLogQuery {
        account: Some("plain".into()),
        ..SendLogQuery::default()
    };
    assert_eq!(refused(alice.send_log_csv(&plain_log).await).0, 403);
    let rita = session("rita").await;
    assert_eq!(refused(rita.stats(&StatsQuery::default()).await).0, 403);
    assert_eq!(refused(rita.quote(&quote_request("hi")).await).0, 403);
    assert_eq!(refused(rita.webhooks_stuck(None).await).0, 403);

    // Webhook changes by the account are audited as the account's.
    let conn = rusqlite::Connection::open(&daemon.database).unwrap();
    let actors: Vec<String> = conn
        .prepare("SELECT actor FROM audit_log WHERE event = 'webhook_set' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(actors.iter().any(|a| a == "account:shop"), "{actors:?}");
}
