//! Unit tests of the console's pages: every template renders in both languages with the
//! shapes the handlers give it (a missing word or field is a render error under the
//! semi-strict undefined behaviour), the menu follows the role, and the CSRF and security
//! headers are on every page.

use super::*;
use crate::api::client::ApiClient;

fn console() -> Console {
    let web = Arc::new(Web::new(ApiClient::new("/nonexistent/smsgate.sock"), 10));
    Console::new(web, true)
}

fn ctx(lang: Lang, role: Role) -> Ctx {
    Ctx {
        lang,
        user: SessionUser {
            login: "alice".into(),
            account: (role == Role::Customer).then(|| "e2e".into()),
            role,
            must_change_password: false,
        },
        token: "00ff".into(),
        csrf: session::csrf_token("00ff"),
        path: "/send".into(),
    }
}

async fn body(r: Response) -> (StatusCode, axum::http::HeaderMap, String) {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Every page template with the context its handler gives it.
fn samples() -> Vec<(&'static str, Value)> {
    let message = serde_json::json!({
        "id": 7, "to": "+8613912345678", "state": "sending", "created": "2026-11-30T01:00:00Z",
        "sent": null, "delivered": null,
        "parts": [{"seq": 1, "state": "sending", "sim": "8986", "mr": 3, "error": null}]
    });
    vec![
        ("error.html", context! { message => "boom <b>" }),
        (
            "login.html",
            context! { login_csrf => "x", next => "/", error => "bad" },
        ),
        (
            "password.html",
            context! { error => "short", done => false },
        ),
        (
            "password.html",
            context! { error => None::<String>, done => true },
        ),
        ("staff_home.html", context! {}),
        (
            "dashboard.html",
            context! {
                available => 900, expiring => true, rate => "98.0%",
                today => context! { messages => 1, parts => 2 },
                month => context! { messages => 3, parts => 4 },
                chart => Value::from_safe_string(chart::svg(&[], ["a", "b", "c"], "t")),
                lots => vec![context! { id => 1, quantity => 1000, available => 900,
                    purchased => "2026-11-01T00:00:00Z", expires => "2026-12-10T00:00:00Z",
                    state => "active", expiring => true }],
            },
        ),
        (
            "dashboard.html",
            context! { available => 0, expiring => false, rate => None::<String>,
            today => None::<Value>, month => None::<Value>, chart => None::<Value>, lots => Vec::<Value>::new() },
        ),
        (
            "send.html",
            context! { validities => send::VALIDITIES, chunk => send::CHUNK },
        ),
        (
            "messages.html",
            context! {
                q => context! { number => "139", from => "", to => "", state => "sent", batch => "" },
                states => vec!["queued", "sent", "delivered"],
                rows => vec![Value::from_serialize(&message)],
                capped => true, watch => "7",
            },
        ),
        (
            "message.html",
            context! { m => Value::from_serialize(&message), watch => "7" },
        ),
        (
            "inbox.html",
            context! { rows => vec![Value::from_serialize(serde_json::json!({
            "id": 1, "from": "+8613912345678", "text": "TD", "received": "2026-11-30T01:00:00Z", "sim": null}))] },
        ),
        (
            "optouts.html",
            context! { rows => Value::from_serialize(serde_json::json!([
            {"number": "+8613912345678", "at": "2026-11-30T01:00:00Z", "source": "reply TD"}])) },
        ),
        (
            "sendlog.html",
            context! { from => "2026-11-01", to => "2026-11-30" },
        ),
        (
            "keys.html",
            context! {
                keys => Value::from_serialize(serde_json::json!([
                    {"id": 1, "account": "e2e", "name": "prod", "prefix": "sgk_ab", "allow_ips": ["10.0.0.0/8"],
                     "created_at": "2026-11-30T01:00:00Z", "revoked_at": null},
                    {"id": 2, "account": "e2e", "name": "old", "prefix": "sgk_cd", "allow_ips": [],
                     "created_at": "2026-11-30T01:00:00Z", "revoked_at": "2026-11-30T02:00:00Z"}])),
                new_key => Value::from_serialize(serde_json::json!({"id": 3, "key": "sgk_secret"})),
                flash => "done",
            },
        ),
        (
            "webhook.html",
            context! {
                url => "https://example.com/hook", secret => "whsec", flash => None::<String>,
                stuck => Value::from_serialize(serde_json::json!([{"id": 1, "account": "e2e", "kind": "inbound",
                    "attempts": 3, "created": "2026-11-30T01:00:00Z", "first_attempt": "2026-11-30T01:00:00Z",
                    "last_attempt": null, "last_error": "connection refused"}])),
            },
        ),
        (
            "webhook.html",
            context! { url => "", secret => None::<String>, flash => None::<String>, stuck => Value::from(()) },
        ),
    ]
}

#[tokio::test]
async fn every_page_renders_in_both_languages() {
    let c = console();
    for lang in [Lang::Zh, Lang::En] {
        for (template, extra) in samples() {
            let (status, headers, html) =
                body(c.page(&ctx(lang, Role::Customer), template, extra)).await;
            assert_eq!(status, StatusCode::OK, "{template} ({lang:?}): {html}");
            assert!(
                html.contains(&format!("<html lang=\"{}\">", lang.html())),
                "{template}"
            );
            assert!(headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'"));
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
            assert!(!html.contains("<b>boom"), "escaped");
        }
    }
    let (_, _, html) = body(c.page(
        &ctx(Lang::Zh, Role::Customer),
        "error.html",
        context! { message => "<b>x" },
    ))
    .await;
    assert!(html.contains("&lt;b&gt;x"), "messages are escaped");
    let (_, _, html) = body(c.page(
        &ctx(Lang::En, Role::Customer),
        "send.html",
        samples()[7].1.clone(),
    ))
    .await;
    assert!(html.contains("Send SMS") && html.contains("id=\"preview-opted_out\""));
    let (_, _, html) = body(c.page(
        &ctx(Lang::Zh, Role::Customer),
        "send.html",
        samples()[7].1.clone(),
    ))
    .await;
    assert!(html.contains("发送短信"));
}

#[tokio::test]
async fn the_menu_follows_the_role_and_forms_carry_the_token() {
    let c = console();
    let (_, _, html) = body(c.page(
        &ctx(Lang::Zh, Role::Customer),
        "staff_home.html",
        context! {},
    ))
    .await;
    assert!(html.contains("id=\"nav-send\"") && html.contains("id=\"nav-keys\""));
    let send_link = &html[html.find("id=\"nav-send\"").unwrap()..];
    let send_link = &send_link[..send_link.find('>').unwrap()];
    assert!(send_link.contains("class=\"active\""), "{send_link}");
    assert!(html.contains(&format!(
        "name=\"csrf\" value=\"{}\"",
        session::csrf_token("00ff")
    )));
    let (_, _, html) = body(c.page(
        &ctx(Lang::Zh, Role::Reviewer),
        "staff_home.html",
        context! {},
    ))
    .await;
    assert!(!html.contains("id=\"nav-send\"") && html.contains("id=\"nav-dashboard\""));
    let mut must = ctx(Lang::Zh, Role::Customer);
    must.user.must_change_password = true;
    let (_, _, html) = body(c.page(
        &must,
        "password.html",
        context! { error => None::<String>, done => false },
    ))
    .await;
    assert!(
        !html.contains("id=\"nav\""),
        "no menu before the password is changed"
    );
}

#[tokio::test]
async fn state_changes_without_the_token_are_refused() {
    use tower::ServiceExt as _;
    let web = Arc::new(Web::new(ApiClient::new("/nonexistent/smsgate.sock"), 10));
    let app = router(web, false);
    let req = |csrf: Option<&str>, origin: Option<&str>| {
        let mut b = Request::builder()
            .method("POST")
            .uri("/keys")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, "smsgate_session=00ff")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        let form = match csrf {
            Some(t) => format!("name=x&csrf={t}"),
            None => "name=x".into(),
        };
        b.body(Body::from(form)).unwrap()
    };
    let good = session::csrf_token("00ff");
    for (csrf, origin) in [
        (None, None),
        (Some("0".repeat(64)), None),
        (Some(good.clone()), Some("http://evil.example")),
    ] {
        let r = app
            .clone()
            .oneshot(req(csrf.as_deref(), origin))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    // The right token passes the layer (and then fails to reach the absent daemon: 503).
    let r = app
        .clone()
        .oneshot(req(Some(&good), Some("http://127.0.0.1:8080")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A page without a session goes to the login.
    let r = app
        .oneshot(
            Request::builder()
                .uri("/messages")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/login?next=%2Fmessages");
}

#[test]
fn times_are_shown_in_china() {
    assert_eq!(
        local_time(Value::from("2026-11-30T01:00:00Z")),
        "2026-11-30 09:00:00"
    );
    assert_eq!(local_time(Value::from(0)), "1970-01-01 08:00:00");
    assert_eq!(local_time(Value::from("garbage")), "");
}
