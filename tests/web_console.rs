//! The customer console end to end (issue 13): the real `smsgate web` serving the console
//! beside `/api/v1`, the real daemon behind it with the virtual modem bank, users made with
//! the real `smsgate user add`, and a real headless Chromium (Debian's chromium through
//! chromedriver, WebDriver via fantoccini) clicking through the pages.
//!
//! What it proves: a new customer must change the initial password at the first login; a
//! Chinese message sent from the send page is followed to `delivered` on the messages page
//! without a reload (server-sent events); a 1,000-row CSV with invalid, duplicate, opted-out
//! and blacklisted rows shows the daemon's verdicts in the preview and sends nothing; an API
//! key made on the keys page is shown once and works on the network API (this one needs the
//! daemon to let an account manage its own keys). Over plain HTTP: a state-changing POST (the
//! webhook form) without or with a wrong CSRF token, or from a foreign Origin, is 403 and
//! changes nothing; the session cookie is HttpOnly, SameSite=Strict, Path=/, and Secure under
//! TLS; logins per address are rate-limited; logout ends the session. Each browser test saves a
//! screenshot under target/screenshots/.

mod console_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use console_support::{http, js, request_on, Browser, Stack};
use hyper::{Method, StatusCode};

const INITIAL: &str = "initial-pass-1";
const CHOSEN: &str = "chosen-pass-2026";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_speaks_chinese_then_english_and_refuses_a_wrong_password() {
    let stack = Stack::start("", false).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/", stack.base)).await;
    b.el("login-form").await;
    assert_eq!(b.path().await, "/login", "no session: to the login page");
    assert_eq!(b.text("login-submit").await, "登录");
    b.click("lang-en").await;
    b.wait_text(
        "login-submit",
        "the English page",
        Duration::from_secs(10),
        |t| t == "Log in",
    )
    .await;
    b.screenshot("console-login").await;
    b.fill("login", "nobody").await;
    b.fill("password", "wrong-password").await;
    b.click("login-submit").await;
    let said = b.text("login-error").await;
    assert_eq!(said, "Wrong login or password.");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_sends_chinese_and_watches_it_reach_delivered_without_reloading() {
    let stack = Stack::start_with("", false, "3s").await;
    stack.add_customer("alice", INITIAL);
    // Two lots: one expires within 30 days (the dashboard warns), one in a year.
    stack.add_credit(10_000, "20d");
    stack.add_credit(50_000, "1y");
    let b = Browser::start().await;
    b.first_login(&stack.base, "alice", INITIAL, CHOSEN).await;
    b.click("continue").await;
    assert_eq!(b.text("credit-available").await, "60000");
    assert_eq!(b.path().await, "/");
    b.el("expiry-warning").await;
    let lots = b.text("lots").await;
    assert!(lots.contains("10000") && lots.contains("50000"), "{lots}");

    // The send page: the number is checked first, the counter shows the daemon's quote.
    b.goto(&format!("{}/send", stack.base)).await;
    let to = support::recipient(1);
    let text = "【测试商城】您的验证码是 246810，五分钟内有效。";
    b.fill("numbers", &to).await;
    assert!(
        b.el("submit")
            .await
            .attr("disabled")
            .await
            .unwrap()
            .is_some(),
        "nothing can be sent before the preview"
    );
    b.click("check").await;
    b.wait_text(
        "preview-valid",
        "the preview",
        Duration::from_secs(20),
        |t| t == "1",
    )
    .await;
    b.fill("text", text).await;
    b.wait_text(
        "count-encoding",
        "the live quote",
        Duration::from_secs(20),
        |t| t == "ucs2",
    )
    .await;
    assert_eq!(b.text("count-parts").await, "1");
    let as_sent = b.text("text-as-sent").await;
    assert!(as_sent.contains(text), "as sent: {as_sent:?}");
    assert_eq!(
        b.text("count-chars").await,
        as_sent.chars().count().to_string()
    );
    b.screenshot("console-send").await;
    b.click("submit").await;
    b.el("batch-link").await.click().await.unwrap();

    // The messages page follows the message to delivered by itself (the bank takes 3 s to
    // send it, so the page shows it before it is delivered).
    b.el("live").await;
    assert_eq!(b.path().await, "/messages");
    js(&b, "window.__sameDocument = 42; return null;").await;
    let id = support::wait_for("the message row", Duration::from_secs(10), || async {
        let rows = b
            .client
            .find_all(fantoccini::Locator::Css(
                "#messages-table tbody tr[id^=msg-]",
            ))
            .await
            .ok()?;
        let row = rows.first()?;
        row.attr("id").await.ok()?.map(|s| s[4..].to_owned())
    })
    .await;
    let first_seen = b
        .el(&format!("state-{id}"))
        .await
        .attr("data-state")
        .await
        .unwrap();
    assert_ne!(
        first_seen.as_deref(),
        Some("delivered"),
        "too late to see it change"
    );
    support::wait_for("delivered on the page", Duration::from_secs(40), || async {
        let cell = b
            .client
            .find(fantoccini::Locator::Id(&format!("state-{id}")))
            .await
            .ok()?;
        (cell.attr("data-state").await.ok()?.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    assert_eq!(
        js(&b, "return window.__sameDocument;").await,
        serde_json::json!(42),
        "the page was reloaded: the state must change in place"
    );
    let when = b.text(&format!("delivered-{id}")).await;
    assert!(
        when.starts_with("20"),
        "the delivery time shown in place: {when:?}"
    );
    assert!(
        stack.sim.submits().iter().any(|s| s.to.ends_with(&to[3..])),
        "the bank never saw the message"
    );
    b.screenshot("console-messages").await;

    // The dashboard counts it (today, this month, the chart's hour).
    b.goto(&format!("{}/", stack.base)).await;
    assert_eq!(b.text("today-messages").await, "1");
    b.el("chart").await;
    b.screenshot("console-dashboard").await;
    b.close().await;
}

/// Numbers the daemon will call opted out: sent to once, then each replies TD.
async fn opt_out(stack: &Stack, numbers: &[String]) {
    let client = stack.daemon.client();
    let sent = client
        .send(&support::request(numbers.to_vec(), "hello"))
        .await
        .expect("send");
    support::wait_messages(&client, &sent.ids, Duration::from_secs(30), "sent", |m| {
        support::is_final(m.state)
    })
    .await;
    // The network shows the sender in international form.
    for n in numbers {
        let from = format!("+86{n}");
        stack
            .sim
            .ctl(&["inject", "--modem", "0", "--from", &from, "--text", "TD"]);
    }
    // The daemon's own check says when the opt-outs are in force.
    let body = serde_json::json!({ "numbers": numbers, "account": "e2e" });
    support::wait_for("the opt-outs in force", Duration::from_secs(30), || async {
        let v: serde_json::Value = client
            .call(Method::POST, "/v1/recipients/check", Some(&body))
            .await
            .ok()?;
        let rows = v["rows"].as_array()?;
        rows.iter()
            .all(|r| r["status"] == "opted_out")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1000_row_csv_with_bad_rows_shows_the_preview_and_sends_nothing() {
    let stack = Stack::start("", false).await;
    stack.add_customer("bob", INITIAL);
    let opted: Vec<String> = (0..5).map(|i| support::recipient(900 + i)).collect();
    opt_out(&stack, &opted).await;
    let blacklisted: Vec<String> = (0..5).map(|i| support::recipient(950 + i)).collect();
    for n in &blacklisted {
        let out = stack
            .daemon
            .cli(&["blacklist", "add", "--number", n, "--reason", "complaint"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // 940 valid (some with their own text), 25 invalid, 25 duplicates, 5 + 5 refused.
    let mut csv = String::from("号码,内容\n");
    for i in 0..940 {
        if i % 10 == 0 {
            csv.push_str(&format!(
                "{},\"您好，第 {i} 位会员\"\n",
                support::recipient(1000 + i)
            ));
        } else {
            csv.push_str(&format!("{}\n", support::recipient(1000 + i)));
        }
    }
    for i in 0..25 {
        let invalid = if i % 2 == 0 {
            format!("139{i:03}")
        } else {
            format!("abc-{i}")
        };
        csv.push_str(&format!("{invalid}\n"));
        csv.push_str(&format!("{}\n", support::recipient(1000 + i)));
    }
    for n in opted.iter().chain(&blacklisted) {
        csv.push_str(&format!("{n}\n"));
    }
    assert_eq!(csv.lines().count(), 1001);
    let file = stack.dir.path().join("recipients.csv");
    std::fs::write(&file, &csv).unwrap();
    let submits_before = stack.sim.submits().len();

    let b = Browser::start().await;
    b.first_login(&stack.base, "bob", INITIAL, CHOSEN).await;
    b.goto(&format!("{}/send", stack.base)).await;
    b.el("file")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.wait_text(
        "preview-total",
        "the preview of 1,000 rows",
        Duration::from_secs(30),
        |t| t == "1000",
    )
    .await;
    for (id, want) in [
        ("preview-valid", "940"),
        ("preview-invalid", "25"),
        ("preview-duplicate", "25"),
        ("preview-opted_out", "5"),
        ("preview-blacklisted", "5"),
    ] {
        let mut all = Vec::new();
        for other in ["valid", "invalid", "duplicate", "opted_out", "blacklisted"] {
            all.push(format!(
                "{other} {}",
                b.text(&format!("preview-{other}")).await
            ));
        }
        assert_eq!(b.text(id).await, want, "#{id}: {all:?}");
    }
    let problem_rows = b
        .client
        .find_all(fantoccini::Locator::Css("#preview-rows tbody tr"))
        .await
        .unwrap();
    assert_eq!(problem_rows.len(), 60, "every row with a problem is listed");
    b.fill("text", "春节优惠，全场八折。").await;
    b.wait_text(
        "count-total",
        "the quote for 940 numbers",
        Duration::from_secs(20),
        |t| t == "940",
    )
    .await;
    b.screenshot("console-upload-preview").await;
    assert_eq!(
        stack.sim.submits().len(),
        submits_before,
        "a preview sends nothing"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_made_on_the_keys_page_is_shown_once_and_works() {
    let stack = Stack::start("", false).await;
    stack.add_customer("carol", INITIAL);
    let b = Browser::start().await;
    b.first_login(&stack.base, "carol", INITIAL, CHOSEN).await;
    b.goto(&format!("{}/keys", stack.base)).await;
    b.fill("key-name", "订单系统").await;
    b.fill("key-ips", "127.0.0.1").await;
    b.click("key-create").await;
    let key = b.text("new-key").await;
    assert!(key.len() > 20, "the new key: {key:?}");
    b.screenshot("console-keys").await;

    // It works on the network API from an allowed address.
    let auth = format!("Bearer {key}");
    let credit = http(
        stack.addr,
        Method::GET,
        "/api/v1/credit",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(credit.status, StatusCode::OK, "{credit:?}");

    // Shown once: the list names it, without the key.
    b.goto(&format!("{}/keys", stack.base)).await;
    let table = b.text("keys-table").await;
    assert!(
        table.contains("订单系统") && table.contains("127.0.0.1"),
        "{table}"
    );
    assert!(!table.contains(&key));
    assert!(b
        .client
        .find(fantoccini::Locator::Id("new-key"))
        .await
        .is_err());
    let page = b.client.source().await.unwrap();
    assert!(!page.contains(&key), "the key is never shown again");
    b.close().await;
}

/// `name=value` pairs as an urlencoded form body.
fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_origin_cookie_flags_login_rate_and_logout_over_http() {
    let stack = Stack::start("", false).await;
    stack.add_customer("dave", INITIAL);
    let a = stack.addr;

    // The login form sets the pre-login cookie and carries its token.
    let page = http(a, Method::GET, "/login", &[], "").await;
    assert_eq!(page.status, StatusCode::OK);
    let pre = page.cookie("smsgate_login").expect("pre-login cookie");
    let login_csrf = page.csrf_field().expect("csrf field");
    let pre_cookie = format!("smsgate_login={pre}");
    let creds = [("login", "dave"), ("password", INITIAL)];

    // Without the token, or with another's: 403, and no session.
    let no = http(
        a,
        Method::POST,
        "/login",
        &[FORM, ("cookie", &pre_cookie)],
        &form(&creds),
    )
    .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    assert!(no.cookie("smsgate_session").is_none());
    let mut wrong = creds.to_vec();
    wrong.push(("csrf", "00"));
    let no = http(
        a,
        Method::POST,
        "/login",
        &[FORM, ("cookie", &pre_cookie)],
        &form(&wrong),
    )
    .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);

    let mut good = creds.to_vec();
    good.push(("csrf", &login_csrf));
    let ok = http(
        a,
        Method::POST,
        "/login",
        &[FORM, ("cookie", &pre_cookie)],
        &form(&good),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    assert_eq!(
        ok.headers["location"], "/password",
        "first login: password change"
    );
    let set = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("smsgate_session="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let token = ok.cookie("smsgate_session").unwrap();
    let session = format!("smsgate_session={token}");
    let csrf = {
        let p = http(a, Method::GET, "/password", &[("cookie", &session)], "").await;
        assert_eq!(p.status, StatusCode::OK);
        p.csrf_field().unwrap()
    };
    // Before the change, other pages lead to the password page.
    let keys = http(a, Method::GET, "/keys", &[("cookie", &session)], "").await;
    assert_eq!(keys.headers["location"], "/password");
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

    // Setting the webhook without the token, with a wrong one, with the right one from a
    // foreign Origin: refused before anything happens; with the right one, done.
    let hook = |fields: Vec<(&'static str, String)>, extra: Option<(&'static str, String)>| {
        let session = session.clone();
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut headers = vec![FORM, ("cookie", session.as_str())];
            if let Some((k, v)) = &extra {
                headers.push((k, v.as_str()));
            }
            http(a, Method::POST, "/webhook", &headers, &form(&pairs)).await
        }
    };
    let url = ("url", "https://erp.example.com/sms".to_owned());
    let save = ("action", "save".to_owned());
    let refused = [
        (vec![url.clone(), save.clone()], None),
        (
            vec![url.clone(), save.clone(), ("csrf", "f".repeat(64))],
            None,
        ),
        (
            vec![url.clone(), save.clone()],
            Some(("x-csrf-token", "0".repeat(64))),
        ),
        (
            vec![url.clone(), save.clone(), ("csrf", csrf.clone())],
            Some(("origin", "http://evil.example".to_owned())),
        ),
    ];
    for (fields, extra) in refused {
        let r = hook(fields.clone(), extra.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{fields:?} {extra:?}");
    }
    let webhook = || async {
        let v: serde_json::Value = stack
            .daemon
            .client()
            .call(Method::GET, "/v1/accounts/e2e/webhook", None::<&()>)
            .await
            .unwrap();
        v["url"].clone()
    };
    assert_eq!(
        webhook().await,
        serde_json::Value::Null,
        "refused requests changed nothing"
    );
    let own = Some(("origin", format!("http://{a}")));
    let done = hook(vec![url, save, ("csrf", csrf.clone())], own).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("id=\"webhook-secret\""),
        "the secret shown once"
    );
    assert_eq!(webhook().await, "https://erp.example.com/sms");

    // Logout ends the session in the daemon and clears the cookie.
    let out = http(
        a,
        Method::POST,
        "/logout",
        &[FORM, ("cookie", &session)],
        &form(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("smsgate_session=;") && c.contains("Max-Age=0")));
    let after = http(a, Method::GET, "/", &[("cookie", &session)], "").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));

    // Login attempts per address: wrong passwords, then 429 from the web process itself.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let body = form(&[
            ("login", "nobody"),
            ("password", "x"),
            ("csrf", &login_csrf),
        ]);
        let r = http(
            a,
            Method::POST,
            "/login",
            &[FORM, ("cookie", &pre_cookie)],
            &body,
        )
        .await;
        statuses.push(r.status.as_u16());
    }
    assert!(statuses[..8].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(!stack.web_log().contains(INITIAL) && !stack.web_log().contains(&token));
}

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI.
fn test_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_under_tls() {
    use rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = test_certificate(certs.path());
    let extra = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let stack = Stack::start(&extra, true).await;
    stack.add_customer("erin", INITIAL);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls =
        |method: Method, path: &'static str, headers: Vec<(&'static str, String)>, body: String| {
            let connector = connector.clone();
            let addr = stack.addr;
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let stream = connector.connect(name, tcp).await.expect("TLS handshake");
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                request_on(
                    stream,
                    &addr.to_string(),
                    method,
                    path,
                    &h,
                    body.into_bytes(),
                )
                .await
            }
        };
    let page = tls(Method::GET, "/login", vec![], String::new()).await;
    let pre_set = page.set_cookies().join("\n");
    assert!(
        pre_set.contains("smsgate_login=") && pre_set.contains("Secure"),
        "{pre_set}"
    );
    let pre = page.cookie("smsgate_login").unwrap();
    let body = form(&[
        ("login", "erin"),
        ("password", INITIAL),
        ("csrf", &page.csrf_field().unwrap()),
    ]);
    let headers = vec![
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("cookie", format!("smsgate_login={pre}")),
        ("origin", stack.base.clone()),
    ];
    let ok = tls(Method::POST, "/login", headers, body).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    let set = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("smsgate_session="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(set.contains(flag), "{set}");
    }
}
