//! Unit tests of the staff pages: every staff template renders in both languages with the
//! shapes its handler gives it (a missing word or field is a render error), the matched
//! words are marked and escaped, the menu shows each role its pages only, and a customer or a
//! reviewer asking for an admin page gets the 403 page before any call to the daemon.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use minijinja::{context, Value};
use tower::ServiceExt as _;

use super::super::daemon::{Role, SessionUser};
use super::super::i18n::Lang;
use super::super::{router, session, Console, Ctx};
use super::*;
use crate::api::client::ApiClient;
use crate::web::Web;

fn console() -> Console {
    let web = Arc::new(Web::new(ApiClient::new("/nonexistent/smsgate.sock"), 10));
    Console::new(web, true)
}

fn ctx(lang: Lang, role: Role, path: &str) -> Ctx {
    Ctx {
        lang,
        user: SessionUser {
            login: "sam".into(),
            account: (role == Role::Customer).then(|| "e2e".into()),
            role,
            must_change_password: false,
        },
        token: "00ff".into(),
        csrf: session::csrf_token("00ff"),
        path: path.into(),
    }
}

async fn body(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn j(v: serde_json::Value) -> Value {
    Value::from_serialize(v)
}

/// Every staff template with the context its handler gives it.
fn samples() -> Vec<(&'static str, Value)> {
    let modem = context! {
        port => "/dev/gsm/usb1", state => "ready", signal => -71, operator => "CHINA MOBILE",
        iccid => "8986", used => "1 / 2 / 3", left => "9 / 98 / 997", rate => 1,
        counters => "1 / 0 / 1 / 0", failed => 0, error => "+CMS ERROR: 42",
    };
    let bare = context! {
        port => "/dev/gsm/usb2", state => "starting", signal => None::<i64>, operator => None::<String>,
        iccid => None::<String>, used => None::<String>, left => None::<String>, rate => None::<u64>,
        counters => "0 / 0 / 0 / 0", failed => 0, error => None::<String>,
    };
    let gateway = context! {
        name => "cmpp1", address => "10.0.0.1:7890", src_id => "106900", links_up => 1, links => 2,
        window => 16, in_use => 3, submits => 120, results => "0: 118, 8: 2", error => None::<String>,
    };
    let review = context! {
        id => 7, account => "e2e", category => "loans", words => vec!["贷款"],
        held_at => "2026-11-30T01:00:00Z", to => "+8613912345678",
        pieces => Value::from_serialize(reviews::pieces("低息<b>贷款</b>", &[(9, 15)])),
    };
    vec![
        (
            "staff_live.html",
            context! { every => 3000, modems => vec![modem.clone(), bare], gateways => vec![gateway.clone()] },
        ),
        (
            "staff_live.html",
            context! { every => 3000, modems => Vec::<Value>::new(), gateways => Vec::<Value>::new() },
        ),
        (
            "staff_live_rows.html",
            context! { modems => vec![modem], gateways => vec![gateway] },
        ),
        (
            "staff_reviews.html",
            context! { rows => vec![review], flash => "ok" },
        ),
        (
            "staff_reviews.html",
            context! { rows => Vec::<Value>::new(), flash => None::<String> },
        ),
        (
            "staff_accounts.html",
            context! { flash => None::<String>, accounts => j(serde_json::json!([
            {"name": "e2e", "uids": [1000], "gids": [], "signature_required": true,
             "unsubscribe_suffix": "回T退订", "send_window": null, "blacklisted": null},
            {"name": "bad", "uids": [], "gids": [], "signature_required": false,
             "unsubscribe_suffix": null, "send_window": "08:00-22:00 Asia/Shanghai",
             "blacklisted": {"reason": "violation", "since": "2026-11-30T01:00:00Z"}}])) },
        ),
        (
            "staff_account.html",
            context! {
                name => "e2e", available => 900, flash => "ok", form_error => "bad price",
                typed => context! { messages => "10", price => "x", expires => "" },
                lots => vec![context! { id => 1, quantity => 1000, available => 900, price_fen => 45050,
                    purchased => "2026-11-01T00:00:00Z", expires => "2027-11-01T00:00:00Z", state => "active" }],
                users => j(serde_json::json!([{"login": "alice", "account": "e2e", "role": "customer",
                    "disabled": false, "must_change_password": true, "locked_until": null, "last_login": null}])),
            },
        ),
        (
            "staff_account.html",
            context! { name => "e2e", available => 0, flash => None::<String>, form_error => None::<String>,
            typed => None::<Value>, lots => Vec::<Value>::new(), users => Value::from(()) },
        ),
        (
            "staff_users.html",
            context! {
                accounts => vec!["e2e"], form_error => "taken", flash => None::<String>,
                shown => context! { login => "bob", password => "s3cret-<pass>" },
                users => j(serde_json::json!([
                    {"login": "alice", "account": "e2e", "role": "customer", "disabled": false,
                     "must_change_password": false, "locked_until": "2026-11-30T02:00:00Z", "last_login": "2026-11-30T01:00:00Z"},
                    {"login": "rita", "account": null, "role": "reviewer", "disabled": true,
                     "must_change_password": false, "locked_until": null, "last_login": null}])),
            },
        ),
        (
            "staff_blacklist.html",
            context! {
                accounts => vec!["e2e"], form_error => "reason needed", flash => "ok",
                blocked_accounts => j(serde_json::json!([{"account": "bad", "reason": "violation", "since": "2026-11-30T01:00:00Z"}])),
                numbers => j(serde_json::json!([
                    {"account": null, "number": "+8613900000000", "reason": "complaint", "added_by": "admin:uid 0", "added_at": "2026-11-30T01:00:00Z"},
                    {"account": "e2e", "number": "+8613900000001", "reason": "asked", "added_by": "admin:uid 0", "added_at": "2026-11-30T01:00:00Z"}])),
            },
        ),
        (
            "staff_audit.html",
            context! { report => j(serde_json::json!({"result": "intact", "records": 12})),
            form_error => None::<String>, accounts => vec!["e2e"], from => "2026-11-23", to => "2026-11-30" },
        ),
        (
            "staff_audit.html",
            context! { report => j(serde_json::json!({"result": "broken", "seq": 3, "fault": "altered"})),
            form_error => "bad range", accounts => Vec::<String>::new(), from => "", to => "" },
        ),
    ]
}

#[tokio::test]
async fn every_staff_page_renders_in_both_languages() {
    let c = console();
    for lang in [Lang::Zh, Lang::En] {
        for (template, extra) in samples() {
            let (status, html) =
                body(c.page(&ctx(lang, Role::Admin, "/staff/live"), template, extra)).await;
            assert_eq!(status, StatusCode::OK, "{template} ({lang:?}): {html}");
            assert!(!html.contains("<b>贷款"), "{template}: unescaped text");
        }
    }
    let (_, html) = body(c.page(
        &ctx(Lang::En, Role::Admin, "/staff/reviews"),
        "staff_reviews.html",
        samples()[3].1.clone(),
    ))
    .await;
    assert!(
        html.contains("<mark class=\"hit\">贷款</mark>"),
        "the matched word is marked: {html}"
    );
    assert!(html.contains("&lt;b&gt;"), "the rest is escaped");
    assert!(html.contains("id=\"violation-7\"") && html.contains("Review queue"));
    let (_, html) = body(c.page(
        &ctx(Lang::En, Role::Admin, "/staff/users"),
        "staff_users.html",
        samples()[8].1.clone(),
    ))
    .await;
    assert!(html.contains("s3cret-&lt;pass&gt;") && html.contains("id=\"disable-alice\""));
    assert!(html.contains("id=\"enable-rita\""));
}

#[tokio::test]
async fn the_menu_shows_each_role_its_staff_pages() {
    let c = console();
    let staff_ids = [
        "nav-live",
        "nav-reviews",
        "nav-accounts",
        "nav-users",
        "nav-blacklist",
        "nav-audit",
    ];
    for (role, shown) in [
        (Role::Admin, &staff_ids[..]),
        (Role::Reviewer, &staff_ids[..2]),
        (Role::Customer, &[][..]),
    ] {
        let (_, html) =
            body(c.page(&ctx(Lang::Zh, role, "/"), "staff_home.html", context! {})).await;
        for id in staff_ids {
            assert_eq!(
                html.contains(&format!("id=\"{id}\"")),
                shown.contains(&id),
                "{role:?} and {id}"
            );
        }
    }
}

#[tokio::test]
async fn the_role_check_comes_before_the_daemon() {
    let c = console();
    // No daemon behind: an allowed role would get 503; a refused one gets 403 first.
    for (role, roles, allowed) in [
        (Role::Customer, STAFF, false),
        (Role::Customer, ADMIN, false),
        (Role::Reviewer, ADMIN, false),
        (Role::Reviewer, STAFF, true),
        (Role::Admin, ADMIN, true),
    ] {
        let r = forbid(&c, &ctx(Lang::En, role, "/staff/x"), roles);
        match r {
            None => assert!(allowed, "{role:?}"),
            Some(resp) => {
                assert!(!allowed, "{role:?}");
                let (status, html) = body(resp).await;
                assert_eq!(status, StatusCode::FORBIDDEN);
                assert!(html.contains("operator&#x27;s staff"), "{html}");
            }
        }
    }
    // Through the router: a state change without the CSRF token is refused before anything.
    let web = Arc::new(Web::new(ApiClient::new("/nonexistent/smsgate.sock"), 10));
    let app = router(web, false);
    for path in [
        "/staff/reviews/7",
        "/staff/accounts/e2e/credit",
        "/staff/users",
        "/staff/blacklist",
    ] {
        let r = app
            .clone()
            .oneshot(
                Request::builder()
                    .method("POST")
                    .uri(path)
                    .header(header::COOKIE, "smsgate_session=00ff")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from("decision=approve"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let r = app
        .oneshot(
            Request::builder()
                .uri("/static/staff.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn notices_are_only_the_listed_words() {
    let c = ctx(Lang::En, Role::Admin, "/staff/reviews");
    assert_eq!(
        notice(&c, Some("ok_approve")),
        Some("Approved: the message will be sent.")
    );
    assert_eq!(notice(&c, Some("<script>")), None);
    assert_eq!(notice(&c, None), None);
    assert_eq!(filled("  x "), Some("x".into()));
    assert_eq!(filled("   "), None);
}
