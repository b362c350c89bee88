//! Users, logins and sessions end to end (issue 13): the real daemon with the virtual modem bank,
//! the users made with the real `smsgate user` commands, and this test process as the front
//! end (its uid in `frontends`) logging users in and forwarding their requests with the
//! session header through `ApiClient::with_session`.
//!
//! What it proves: a login with a wrong password, an unknown login and a disabled user get the
//! same 401 `bad_login`; five wrong passwords lock the user (423, even with the right one;
//! audited `login_locked`) until an admin resets the password; a new user's session is refused
//! everything (403 `password_change_required`) but the password change, which then frees it;
//! a reviewer's session decides a held message (audited as the reviewer) but cannot add credit
//! or read messages; a customer's session cannot see another account's message nor name
//! another account; disabling a user ends its session at once; logout ends a session; the
//! `smsgate user` commands round-trip; and neither the daemon's log nor the audit log ever
//! holds a password or a session token.

mod api_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use api_support::{MemBackend, TestServer};
use serde_json::{json, Value};
use smsgate::api::client::{ApiClient, ClientError};
use smsgate::api::types::{ListQuery, MessageState};
use smsgate::api::users::{LoginAnswer, LoginRequest, Role};
use support::{Daemon, Sim};

/// The daemon's config of `support::write_config`, with this process as its front end, a
/// second account, and a content rule that holds messages for review.
fn configure(dir: &Path, sim: &Sim) -> PathBuf {
    let path = support::write_config(dir, &sim.ports_glob(), "");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[category]]\nname = \"loans\"\naction = \"review\"\nwords = [\"贷款\"]\n",
    )
    .unwrap();
    let uid = nix::unistd::getuid().as_raw();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = format!(
        "frontends = [{uid}]\n{text}\n[[accounts]]\nname = \"other\"\nunmetered = true\n\n\
         [policy]\nrules = {rules:?}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// `(status, code, message)` of a refused call.
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api {
            status,
            code,
            message,
        }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn login(
    client: &ApiClient,
    login: &str,
    password: &str,
) -> Result<LoginAnswer, ClientError> {
    client
        .login(&LoginRequest {
            login: login.into(),
            password: password.into(),
            client_ip: Some("203.0.113.7".into()),
        })
        .await
}

/// `(event, actor, outcome)` of every audit record whose event starts with one of `prefixes`.
fn audit(database: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(database).unwrap();
    let mut st = conn
        .prepare("SELECT event, actor, outcome FROM audit_log ORDER BY seq")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_lockout_roles_and_sessions_through_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("bank"), 1);
    configure(dir.path(), &sim);
    let daemon = Daemon::start(dir.path(), &sim);
    daemon.wait_ready(1).await;
    let front = daemon.client();
    let mut secrets: Vec<String> = Vec::new();

    // --- `smsgate user`: add (random password printed once, or from a file), list.
    let added: Value = serde_json::from_str(&ok(daemon.cli(&[
        "user",
        "add",
        "alice",
        "--account",
        "e2e",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        (
            &added["login"],
            &added["role"],
            &added["must_change_password"]
        ),
        (&json!("alice"), &json!("customer"), &json!(true))
    );
    let alice_initial = added["initial_password"].as_str().unwrap().to_owned();
    assert_eq!(alice_initial.len(), 16);
    secrets.push(alice_initial.clone());
    let pw_file = dir.path().join("initial.pw");
    let initial = "initial-passw0rd";
    std::fs::write(&pw_file, format!("{initial}\n")).unwrap();
    secrets.push(initial.into());
    let pw = pw_file.to_str().unwrap();
    let text = ok(daemon.cli(&[
        "user",
        "add",
        "rita",
        "--staff",
        "--role",
        "reviewer",
        "--password-file",
        pw,
    ]));
    assert!(
        text.contains("rita (reviewer) added") && !text.contains(initial),
        "{text}"
    );
    ok(daemon.cli(&[
        "user",
        "add",
        "bob",
        "--account",
        "other",
        "--password-file",
        pw,
    ]));
    ok(daemon.cli(&[
        "user",
        "add",
        "boss",
        "--staff",
        "--role",
        "admin",
        "--password-file",
        pw,
    ]));
    let no_role = daemon.cli(&["user", "add", "x1", "--staff"]);
    assert_eq!(no_role.status.code(), Some(2), "{}", stdout(&no_role));
    let taken = daemon.cli(&["user", "add", "ALICE", "--account", "e2e"]);
    assert!(String::from_utf8_lossy(&taken.stderr).contains("exists already"));
    let listed: Value = serde_json::from_str(&ok(daemon.cli(&["user", "list", "--json"]))).unwrap();
    let logins: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["alice", "bob", "boss", "rita"]);
    let table = ok(daemon.cli(&["user", "list", "--account", "other"]));
    assert!(table.contains("bob") && !table.contains("alice"), "{table}");

    // --- Wrong password, unknown login: the same answer.
    let wrong = refused(login(&front, "alice", "not-her-password").await);
    let unknown = refused(login(&front, "nobody", "not-her-password").await);
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.1, "bad_login");
    assert_eq!(wrong, unknown);

    // --- A new user must change the password before anything else.
    let first = login(&front, "Alice", &alice_initial).await.unwrap();
    secrets.push(first.token.clone());
    assert_eq!(first.user.login, "alice");
    assert_eq!(first.user.account.as_deref(), Some("e2e"));
    assert!(first.user.must_change_password);
    let alice = front.with_session(&first.token);
    let blocked = refused(alice.list(&ListQuery::default()).await);
    assert_eq!(
        (blocked.0, blocked.1.as_str()),
        (403, "password_change_required")
    );
    let short = refused(alice.change_own_password(&alice_initial, "short").await);
    assert_eq!(short.0, 400);
    let alice_pw = "alice-new-passw0rd";
    secrets.push(alice_pw.into());
    alice
        .change_own_password(&alice_initial, alice_pw)
        .await
        .unwrap();
    alice.list(&ListQuery::default()).await.unwrap();
    let verified = front.session_verify(&first.token).await.unwrap();
    assert!(!verified.user.must_change_password);
    assert_eq!(verified.user.role, Role::Customer);
    // The old password is gone.
    let old = refused(login(&front, "alice", &alice_initial).await);
    assert_eq!(old.1, "bad_login");

    // --- Five wrong passwords in a row lock the user, even against the right one.
    for _ in 0..4 {
        let r = refused(login(&front, "bob", "wrong-password-1").await);
        assert_eq!(r.1, "bad_login");
    }
    let lock = refused(login(&front, "bob", "wrong-password-1").await);
    assert_eq!((lock.0, lock.1.as_str()), (423, "locked"), "{lock:?}");
    assert!(lock.2.contains("locked until"), "{lock:?}");
    let still = refused(login(&front, "bob", initial).await);
    assert_eq!((still.0, still.1.as_str()), (423, "locked"));
    let records = audit(&daemon.database);
    let locked: Vec<_> = records.iter().filter(|r| r.0 == "login_locked").collect();
    assert_eq!(locked.len(), 1, "{records:?}");
    assert!(
        locked[0].2.contains("\"bob\"") && locked[0].2.contains("203.0.113.7"),
        "{locked:?}"
    );
    let bob_failures = records
        .iter()
        .filter(|r| r.0 == "login_failed" && r.2.contains("\"bob\""))
        .count();
    assert_eq!(
        bob_failures, 6,
        "five wrong passwords and the refusal while locked"
    );
    let listed: Value = serde_json::from_str(&ok(daemon.cli(&["user", "list", "--json"]))).unwrap();
    assert!(listed["users"][1]["locked_until"].is_string(), "{listed}");
    // An admin's reset unlocks (and the password must be changed again).
    let reset = dir.path().join("reset.pw");
    std::fs::write(&reset, "reset-passw0rd-bob\n").unwrap();
    secrets.push("reset-passw0rd-bob".into());
    ok(daemon.cli(&[
        "user",
        "passwd",
        "bob",
        "--password-file",
        reset.to_str().unwrap(),
    ]));
    let b = login(&front, "bob", "reset-passw0rd-bob").await.unwrap();
    secrets.push(b.token.clone());
    assert!(b.user.must_change_password);
    let bob = front.with_session(&b.token);
    let bob_pw = "bob-new-passw0rd";
    secrets.push(bob_pw.into());
    bob.change_own_password("reset-passw0rd-bob", bob_pw)
        .await
        .unwrap();

    // --- A customer's session: its own account only.
    let held = alice
        .send(&support::request(
            vec![support::recipient(1)],
            "低息贷款，欢迎咨询",
        ))
        .await
        .unwrap();
    let id = held.ids[0];
    let view = alice.status(id, None).await.unwrap();
    assert_eq!(view.state, MessageState::HeldForReview);
    let foreign = refused(bob.status(id, None).await);
    assert_eq!(foreign.0, 404, "{foreign:?}");
    let named = refused(bob.status(id, Some("e2e")).await);
    assert_eq!(named.0, 403, "{named:?}");
    let bobs = bob.list(&ListQuery::default()).await.unwrap();
    assert!(bobs.messages.is_empty(), "{bobs:?}");
    let not_admin = refused(bob.user_list(None).await);
    assert_eq!(not_admin.0, 403);

    // --- A reviewer's session: decides the held message, and nothing else admin.
    let r = login(&front, "rita", initial).await.unwrap();
    secrets.push(r.token.clone());
    let rita = front.with_session(&r.token);
    let rita_pw = "rita-new-passw0rd";
    secrets.push(rita_pw.into());
    rita.change_own_password(initial, rita_pw).await.unwrap();
    let queue: Value = rita
        .call(hyper::Method::GET, "/v1/reviews", None::<&()>)
        .await
        .unwrap();
    assert_eq!(queue["reviews"][0]["id"], json!(id.0), "{queue}");
    let uri = format!("/v1/reviews/{}", id.0);
    let _: Value = rita
        .call(
            hyper::Method::POST,
            &uri,
            Some(&json!({"decision": "approve"})),
        )
        .await
        .unwrap();
    let credit = refused(
        rita.call::<Value, Value>(
            hyper::Method::POST,
            "/v1/accounts/e2e/credit",
            Some(&json!({"messages": 100, "price_fen": 100})),
        )
        .await,
    );
    assert_eq!(credit.0, 403, "{credit:?}");
    assert_eq!(refused(rita.list(&ListQuery::default()).await).0, 403);
    assert_eq!(refused(rita.user_list(None).await).0, 403);
    rita.modems().await.unwrap();
    rita.health().await.unwrap();
    let reviewed = audit(&daemon.database);
    assert!(
        reviewed
            .iter()
            .any(|r| r.0 == "reviewed" && r.1 == "reviewer:user:rita (reviewer, web)"),
        "{reviewed:?}"
    );
    assert_ne!(
        alice.status(id, None).await.unwrap().state,
        MessageState::HeldForReview
    );

    // --- An admin's session: the user routes.
    let a = login(&front, "boss", initial).await.unwrap();
    secrets.push(a.token.clone());
    let boss = front.with_session(&a.token);
    let boss_pw = "boss-new-passw0rd";
    secrets.push(boss_pw.into());
    let not_current = refused(
        boss.change_own_password("not-the-current-pw", boss_pw)
            .await,
    );
    assert_eq!((not_current.0, not_current.1.as_str()), (403, "forbidden"));
    let same = refused(boss.change_own_password(initial, initial).await);
    assert_eq!((same.0, same.1.as_str()), (400, "invalid_field"));
    boss.change_own_password(initial, boss_pw).await.unwrap();
    assert_eq!(boss.user_list(Some("e2e")).await.unwrap().users.len(), 1);

    // --- Disabling a user ends its session at once; its logins get the same 401.
    ok(daemon.cli(&["user", "disable", "alice"]));
    let gone = refused(alice.list(&ListQuery::default()).await);
    assert_eq!((gone.0, gone.1.as_str()), (401, "unauthorized"));
    assert_eq!(refused(front.session_verify(&first.token).await).0, 401);
    let disabled = refused(login(&front, "alice", alice_pw).await);
    assert_eq!(disabled, unknown);
    ok(daemon.cli(&["user", "enable", "alice"]));
    let again = login(&front, "alice", alice_pw).await.unwrap();
    secrets.push(again.token.clone());
    assert!(!again.user.must_change_password);

    // --- Logout ends the session.
    rita.logout().await.unwrap();
    assert_eq!(refused(rita.health().await).0, 401);
    let bad = refused(front.with_session("00ff").health().await);
    assert_eq!((bad.0, bad.1.as_str()), (401, "unauthorized"));

    // --- Audited, and never a password or a token in the audit log or the daemon's log.
    let records = audit(&daemon.database);
    for event in [
        "user_added",
        "login_ok",
        "login_failed",
        "login_locked",
        "password_changed",
        "user_password_reset",
        "user_disabled",
        "user_enabled",
        "logout",
    ] {
        assert!(records.iter().any(|r| r.0 == event), "{event}: {records:?}");
    }
    let audit_text = format!("{records:?}");
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(log.contains("user logged in"), "{log}");
    for secret in &secrets {
        assert!(
            !audit_text.contains(secret.as_str()),
            "{secret} in the audit log"
        );
        assert!(
            !log.contains(secret.as_str()),
            "{secret} in the daemon's log"
        );
    }
}

/// The session header is a front end's: anyone else presenting one is refused before any
/// lookup, even root (an admin); a front end's bad token is 401 on every route.
#[tokio::test]
async fn only_front_ends_may_present_a_session() {
    let token = "ab".repeat(32);
    let server = TestServer::start(MemBackend::new());
    let not_front = refused(server.client().with_session(&token).health().await);
    assert_eq!((not_front.0, not_front.1.as_str()), (403, "forbidden"));
    assert!(not_front.2.contains("frontends"), "{not_front:?}");
    // Without a session, root is as it was: an admin.
    server.client().health().await.unwrap();
    drop(server);

    let mut access = api_support::access();
    access.frontends = vec![nix::unistd::getuid().as_raw()];
    let server = TestServer::start_with(MemBackend::new(), access);
    let session = server.client().with_session(&token);
    for r in [
        refused(session.health().await),
        refused(session.user_list(None).await),
        refused(session.logout().await),
    ] {
        assert_eq!((r.0, r.1.as_str()), (401, "unauthorized"), "{r:?}");
    }
    // Logging in is a front end's (a backend without users answers 404 past that check).
    let r = refused(login(&server.client(), "alice", "whatever-password").await);
    assert_eq!(r.0, 404, "{r:?}");
}
