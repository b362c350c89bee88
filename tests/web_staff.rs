//! The operator's staff console end to end (issue 13, "what the operator's staff see"): the
//! real `smsgate web` with its staff pages, the real daemon behind it with the virtual modem
//! bank and a content rule that holds messages for review, users made with the real
//! `smsgate user add`, and a real headless Chromium (Debian's chromium through chromedriver,
//! WebDriver via fantoccini; the harness of `console_support`).
//!
//! What it proves: a reviewer sees the modems live (the table refreshes without a reload),
//! finds a held message in the review queue with the matched word highlighted, approves it,
//! and the bank then receives it; an admin adds a credit lot with an expiry date on an
//! account's page and sees the new lot (and the daemon has it, price in fen), verifies the
//! audit log, adds a user (a random password shown once, never logged) and disables it,
//! blacklists a number with a reason and lifts it; a customer gets the 403 page on a staff
//! page. Over plain HTTP: a customer is
//! refused every staff page and action, a reviewer every admin page and action (nothing
//! changes), and the daemon's own audit routes refuse reviewer and customer sessions while
//! an admin's verify and export work. Each browser test saves a screenshot under
//! target/screenshots/.

mod console_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use console_support::{http, js, Browser, Stack};
use hyper::{Method, StatusCode};
use smsgate::api::types::MessageState;

const INITIAL: &str = "initial-pass-1";
const CHOSEN: &str = "chosen-pass-2026";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
/// The review words of the test's content rules: the queue keeps only the first one found;
/// the page must mark both (the daemon's `matches`).
const WORD: &str = "贷款";
const WORD2: &str = "利息";

/// `smsgate user add LOGIN --staff --role ROLE --password-file F`.
fn add_staff(stack: &Stack, login: &str, role: &str) {
    let file = stack.dir.path().join(format!("{login}.password"));
    std::fs::write(&file, INITIAL).unwrap();
    let out = stack.daemon.cli(&[
        "user",
        "add",
        login,
        "--staff",
        "--role",
        role,
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Gives the running daemon a content rule that holds [`WORD`] for review: the rules file is
/// named in the configuration and the daemon reloads it on SIGHUP.
async fn hold_for_review(stack: &Stack) {
    let rules = stack.dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!("[[category]]\nname = \"loans\"\naction = \"review\"\nwords = [\"{WORD}\", \"{WORD2}\"]\n"),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(&stack.daemon.config).unwrap();
    config.push_str(&format!("\n[policy]\nrules = {:?}\n", rules));
    std::fs::write(&stack.daemon.config, config).unwrap();
    nix::sys::signal::kill(stack.daemon.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    support::wait_for("the rules reloaded", Duration::from_secs(20), || async {
        let log = std::fs::read_to_string(&stack.daemon.log).unwrap_or_default();
        log.contains("content rules and opt-out words reloaded")
            .then_some(())
    })
    .await;
}

/// A message the rules hold: its id (checked held).
async fn held_message(stack: &Stack, to: &str) -> smsgate::api::types::MessageId {
    let client = stack.daemon.client();
    let text = format!("【测试商城】低息{WORD}，{WORD2}优惠，欢迎咨询。");
    let sent = client
        .send(&support::request(vec![to.to_owned()], &text))
        .await
        .expect("send");
    let id = sent.ids[0];
    let v = client.status(id, None).await.unwrap();
    assert_eq!(v.state, MessageState::HeldForReview, "{v:?}");
    id
}

/// A form body.
fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Logs `login` in over plain HTTP and changes the initial password: the session cookie
/// (`smsgate_session=TOKEN`), the token, and the session's CSRF token.
async fn http_login(a: SocketAddr, login: &str) -> (String, String, String) {
    let page = http(a, Method::GET, "/login", &[], "").await;
    let pre = format!("smsgate_login={}", page.cookie("smsgate_login").unwrap());
    let body = form(&[
        ("login", login),
        ("password", INITIAL),
        ("csrf", &page.csrf_field().unwrap()),
    ]);
    let ok = http(a, Method::POST, "/login", &[FORM, ("cookie", &pre)], &body).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    let token = ok.cookie("smsgate_session").expect("session cookie");
    let session = format!("smsgate_session={token}");
    let p = http(a, Method::GET, "/password", &[("cookie", &session)], "").await;
    let csrf = p.csrf_field().unwrap();
    let change = form(&[
        ("current", INITIAL),
        ("new", CHOSEN),
        ("new2", CHOSEN),
        ("csrf", &csrf),
    ]);
    let changed = http(
        a,
        Method::POST,
        "/password",
        &[FORM, ("cookie", &session)],
        &change,
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    (session, token, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_sees_the_modems_live_and_approves_a_held_message_which_is_then_sent() {
    let stack = Stack::start("", false).await;
    hold_for_review(&stack).await;
    let to = support::recipient(7);
    let id = held_message(&stack, &to).await;
    add_staff(&stack, "rita", "reviewer");

    let b = Browser::start().await;
    b.first_login(&stack.base, "rita", INITIAL, CHOSEN).await;
    b.click("continue").await;
    // The menu: the live page and the queue, nothing of the admins'.
    b.el("nav-reviews").await;
    let nav = b.text("nav").await;
    assert!(!nav.is_empty());
    for admin_only in ["nav-accounts", "nav-users", "nav-blacklist", "nav-audit"] {
        assert!(
            b.client
                .find(fantoccini::Locator::Id(admin_only))
                .await
                .is_err(),
            "a reviewer's menu shows {admin_only}"
        );
    }

    // The live page: the modem is there, and the tables refresh in place.
    b.click("nav-live").await;
    b.el("modems-table").await;
    support::wait_for("the modem ready", Duration::from_secs(20), || async {
        let cell = b
            .client
            .find(fantoccini::Locator::Id("modem-state-1"))
            .await
            .ok()?;
        let s = cell.attr("data-state").await.ok()??;
        matches!(s.as_str(), "ready" | "sending").then_some(())
    })
    .await;
    js(&b, "window.__sameDocument = 7; return null;").await;
    let first = b.text("live-updated").await;
    b.wait_text(
        "live-updated",
        "a refresh of the tables",
        Duration::from_secs(15),
        |t| !t.is_empty() && t != first,
    )
    .await;
    assert_eq!(
        js(&b, "return window.__sameDocument;").await,
        serde_json::json!(7),
        "the live page reloaded instead of refreshing its rows"
    );
    b.screenshot("staff-live").await;

    // The queue: the held message, its matched word highlighted; approve.
    b.click("nav-reviews").await;
    let row = format!("review-{}", id.0);
    b.el(&row).await;
    let marked = js(
        &b,
        &format!(
            "return Array.from(document.querySelectorAll('#review-text-{} mark.hit')).map(m => m.textContent);",
            id.0
        ),
    )
    .await;
    assert_eq!(
        marked,
        serde_json::json!([WORD, WORD2]),
        "every matched word is marked"
    );
    b.screenshot("staff-reviews").await;
    b.click(&format!("approve-{}", id.0)).await;
    let flash = b.text("flash").await;
    assert!(flash.contains("已通过"), "{flash}");
    assert!(
        b.client.find(fantoccini::Locator::Id(&row)).await.is_err(),
        "the approved message left the queue"
    );

    // The daemon sends it: the bank receives it.
    let client = stack.daemon.client();
    support::wait_messages(
        &client,
        &[id],
        Duration::from_secs(40),
        "sent after approval",
        |m| matches!(m.state, MessageState::Sent | MessageState::Delivered),
    )
    .await;
    assert!(
        stack.sim.submits().iter().any(|s| s.to.ends_with(&to[3..])),
        "the bank never saw the approved message"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_credit_with_an_expiry_and_sees_the_new_lot() {
    let stack = Stack::start("", false).await;
    add_staff(&stack, "adam", "admin");
    let b = Browser::start().await;
    b.first_login(&stack.base, "adam", INITIAL, CHOSEN).await;
    b.click("continue").await;
    b.click("nav-accounts").await;
    b.click("open-e2e").await;
    assert_eq!(b.text("credit-available").await, "0");
    b.fill("credit-messages", "5000").await;
    b.fill("credit-price", "450.50").await;
    // A date input takes its value in the browser's own format when typed: set it directly.
    js(
        &b,
        "document.getElementById('credit-expires').value = '2030-06-30'; return null;",
    )
    .await;
    b.click("credit-add").await;
    let flash = b.text("flash").await;
    assert!(flash.contains("充值批次已添加"), "{flash}");
    assert_eq!(b.text("credit-available").await, "5000");
    let lots = b.text("lots").await;
    assert!(
        lots.contains("5000") && lots.contains("450.50") && lots.contains("2030-06-30 23:59:59"),
        "{lots}"
    );
    b.screenshot("staff-credit").await;

    // The daemon has the lot: quantity, price in fen, the end of that day in China.
    let out = stack
        .daemon
        .cli(&["credit", "show", "--account", "e2e", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lot = &v["lots"][0]["lot"];
    assert_eq!(lot["quantity"], 5000, "{v}");
    assert_eq!(lot["price_fen"], 45050, "{v}");
    let expires: jiff::Timestamp = lot["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.to_string(), "2030-06-30T15:59:59Z");

    // A lot in the past is the daemon's refusal, shown on the page; nothing is added.
    b.fill("credit-messages", "10").await;
    js(
        &b,
        "document.getElementById('credit-expires').value = '2001-01-01'; return null;",
    )
    .await;
    b.click("credit-add").await;
    let said = b.text("credit-error").await;
    assert!(said.contains("future"), "{said}");
    assert_eq!(b.text("credit-available").await, "5000");

    // The audit log: the credit is in it, and the chain verifies.
    b.click("nav-audit").await;
    b.click("audit-verify").await;
    let result = b.el("audit-result").await;
    assert_eq!(
        result.attr("data-result").await.unwrap().as_deref(),
        Some("intact")
    );
    b.screenshot("staff-audit").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_and_disables_a_user_and_blacklists_a_number_with_a_reason() {
    let stack = Stack::start("", false).await;
    add_staff(&stack, "ann", "admin");
    let b = Browser::start().await;
    b.first_login(&stack.base, "ann", INITIAL, CHOSEN).await;
    b.click("continue").await;

    // A customer of e2e with a random initial password, shown once.
    b.click("nav-users").await;
    b.fill("new-login", "newbie").await;
    js(
        &b,
        "document.getElementById('new-account').value = 'e2e'; \
         document.getElementById('new-role').value = 'customer'; return null;",
    )
    .await;
    b.click("user-add").await;
    let shown = b.text("shown-password").await;
    assert_eq!(shown.chars().count(), 16, "{shown:?}");
    let listed = stack.daemon.cli(&["user", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let newbie = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "newbie")
        .expect("the new user")
        .clone();
    assert_eq!(newbie["account"], "e2e");
    assert_eq!(newbie["must_change_password"], true);
    assert!(
        !stack.web_log().contains(&shown),
        "the password reached the web log"
    );
    b.click("disable-newbie").await;
    assert!(b.text("flash").await.contains("已停用"));
    b.el("enable-newbie").await;
    b.screenshot("staff-users").await;

    // A number blacklisted with its reason, then lifted with another.
    let number = support::recipient(42);
    b.click("nav-blacklist").await;
    b.fill("bl-number", &number).await;
    b.fill("bl-reason", "用户投诉").await;
    b.click("bl-add").await;
    assert!(b.text("flash").await.contains("已加入黑名单"));
    let rows = b.text("bl-numbers").await;
    assert!(
        rows.contains(&number[3..]) && rows.contains("用户投诉"),
        "{rows}"
    );
    b.screenshot("staff-blacklist").await;
    b.fill("bl-remove-reason-n1", "核实后解除").await;
    b.click("bl-remove-n1").await;
    assert!(b.text("flash").await.contains("已移出黑名单"));
    let bl = stack.daemon.cli(&["blacklist", "list", "--json"]);
    assert!(
        !String::from_utf8_lossy(&bl.stdout).contains(&number[3..]),
        "{}",
        String::from_utf8_lossy(&bl.stdout)
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_gets_403_on_a_staff_page() {
    let stack = Stack::start("", false).await;
    stack.add_customer("cora", INITIAL);
    let b = Browser::start().await;
    b.first_login(&stack.base, "cora", INITIAL, CHOSEN).await;
    b.click("continue").await;
    b.el("nav-send").await;
    assert!(
        b.client
            .find(fantoccini::Locator::Id("nav-reviews"))
            .await
            .is_err(),
        "a customer's menu shows a staff page"
    );
    b.goto(&format!("{}/staff/reviews", stack.base)).await;
    let said = b.text("error-message").await;
    assert_eq!(said, "此页面仅限运营人员（相应角色）访问。");
    b.screenshot("staff-forbidden").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_refused_what_the_socket_api_refuses_them() {
    let stack = Stack::start("", false).await;
    hold_for_review(&stack).await;
    let id = held_message(&stack, &support::recipient(9)).await;
    stack.add_customer("cleo", INITIAL);
    add_staff(&stack, "rex", "reviewer");
    add_staff(&stack, "ada", "admin");
    let a = stack.addr;
    let get = |path: String, session: String| async move {
        http(a, Method::GET, &path, &[("cookie", &session)], "")
            .await
            .status
    };
    let post = |path: String, session: String, body: String| async move {
        http(a, Method::POST, &path, &[FORM, ("cookie", &session)], &body).await
    };
    let admin_pages = [
        "/staff/accounts",
        "/staff/accounts/e2e",
        "/staff/users",
        "/staff/blacklist",
        "/staff/audit",
        "/staff/audit/export?from=2026-01-01&to=2026-01-02",
    ];

    // A customer: every staff page and action is refused; the message stays held.
    let (cs, ctoken, ccsrf) = http_login(a, "cleo").await;
    for p in ["/staff/live", "/staff/live/rows", "/staff/reviews"]
        .iter()
        .chain(&admin_pages)
    {
        assert_eq!(get(p.to_string(), cs.clone()).await, 403, "customer {p}");
    }
    let approve = form(&[("decision", "approve"), ("csrf", &ccsrf)]);
    let r = post(format!("/staff/reviews/{}", id.0), cs.clone(), approve).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A reviewer: the live page and the queue, no admin page or action.
    let (rs, rtoken, rcsrf) = http_login(a, "rex").await;
    assert_eq!(get("/staff/live".into(), rs.clone()).await, 200);
    assert_eq!(get("/staff/reviews".into(), rs.clone()).await, 200);
    for p in admin_pages {
        assert_eq!(get(p.to_string(), rs.clone()).await, 403, "reviewer {p}");
    }
    let credit = form(&[("messages", "100"), ("price", ""), ("csrf", &rcsrf)]);
    let r = post("/staff/accounts/e2e/credit".into(), rs.clone(), credit).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let bl = form(&[("number", "13800000000"), ("reason", "x"), ("csrf", &rcsrf)]);
    let r = post("/staff/blacklist".into(), rs.clone(), bl).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let user = form(&[("login", "mallory"), ("role", "admin"), ("csrf", &rcsrf)]);
    let r = post("/staff/users".into(), rs.clone(), user).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Nothing changed in the daemon.
    let client = stack.daemon.client();
    let v = client.status(id, None).await.unwrap();
    assert_eq!(v.state, MessageState::HeldForReview);
    let credit = stack
        .daemon
        .cli(&["credit", "show", "--account", "e2e", "--json"]);
    let credit: serde_json::Value = serde_json::from_slice(&credit.stdout).unwrap();
    assert_eq!(credit["lots"], serde_json::json!([]), "{credit}");
    let users = client.user_list(None).await.unwrap();
    assert!(!users.users.iter().any(|u| u.login == "mallory"));
    let bl = stack.daemon.cli(&["blacklist", "list", "--json"]);
    assert!(!String::from_utf8_lossy(&bl.stdout).contains("13800000000"));

    // The daemon itself: its audit routes refuse reviewer and customer sessions, whatever
    // the web process does; an admin's session verifies and exports.
    for token in [&rtoken, &ctoken] {
        let refused = client.with_session(token).audit_verify().await.unwrap_err();
        assert!(
            matches!(
                refused,
                smsgate::api::client::ClientError::Api { status: 403, .. }
            ),
            "{refused:?}"
        );
    }
    let (admin_session, atoken, _) = http_login(a, "ada").await;
    let report = client.with_session(&atoken).audit_verify().await.unwrap();
    assert_eq!(report["result"], "intact", "{report}");
    let now = jiff::Timestamp::now();
    let query = smsgate::api::audit::ExportQuery {
        from: Some(now - jiff::SignedDuration::from_hours(1)),
        to: Some(now + jiff::SignedDuration::from_hours(1)),
        ..Default::default()
    };
    let csv = client
        .with_session(&atoken)
        .audit_export(&query)
        .await
        .unwrap();
    let csv = String::from_utf8_lossy(&csv);
    assert!(
        csv.contains("held for review: loans"),
        "the export has the held message: {csv}"
    );
    // And through the admin's page: the same export as a download.
    // China has no daylight saving time: UTC+8 is its time all year.
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8)));
    let day = today.date().to_string();
    let page = http(
        a,
        Method::GET,
        &format!("/staff/audit/export?from={day}&to={day}&format=jsonl"),
        &[("cookie", &admin_session)],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("audit.jsonl"));
    assert!(page.body.lines().count() >= 2, "{}", page.body);
}
