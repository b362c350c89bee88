//! The store's users and sessions under test: lockout, idle and absolute expiry, the password
//! to change, disabling; each checked with its audit records.

use super::*;
use crate::store::contract::NewAccount;

fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn store_with_user(role: UserRole) -> (Store, i64) {
    let mut s = Store::open_in_memory().unwrap();
    let account_id = (role == UserRole::Customer).then(|| {
        s.add_account(
            &NewAccount {
                name: "shop".into(),
                ..Default::default()
            },
            "admin:uid 0",
            t0(),
        )
        .unwrap()
    });
    let user = NewUser {
        login: "alice".into(),
        account_id,
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
    };
    let id = s.add_user(&user, "admin:uid 0", t0()).unwrap().unwrap();
    (s, id)
}

fn events(s: &Store) -> Vec<String> {
    crate::store::audit::all_records(&s.conn)
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.entry.event, r.entry.outcome))
        .collect()
}

fn login(s: &mut Store, id: i64, token: u8, now: Timestamp) -> LoginOutcome {
    let policy = SessionPolicy::default();
    s.login_succeeded(
        id,
        &[token; 32],
        Some("203.0.113.9"),
        &policy,
        "user:alice",
        now,
    )
    .unwrap()
}

fn session(outcome: LoginOutcome) -> SessionUser {
    match outcome {
        LoginOutcome::Session(u) => u,
        other => panic!("no session: {other:?}"),
    }
}

#[test]
fn logins_are_unique_without_case_and_a_customer_needs_an_account() {
    let (mut s, _) = store_with_user(UserRole::Customer);
    let again = NewUser {
        login: "ALICE".into(),
        account_id: None,
        role: UserRole::Admin,
        password_hash: "x".into(),
    };
    assert_eq!(s.add_user(&again, "a", t0()).unwrap(), None);
    let orphan = NewUser {
        login: "bob".into(),
        account_id: None,
        role: UserRole::Customer,
        password_hash: "x".into(),
    };
    assert!(s.add_user(&orphan, "a", t0()).is_err(), "the CHECK holds");
    let u = s.user_by_login("Alice").unwrap().unwrap();
    assert_eq!(
        (u.account.as_deref(), u.must_change_password),
        (Some("shop"), true)
    );
    assert!(!format!("{u:?}").contains("argon2"), "{u:?}");
    assert!(events(&s)
        .iter()
        .any(|e| e.starts_with("user_added user \"alice\"")));
}

#[test]
fn five_wrong_passwords_lock_for_fifteen_minutes() {
    let (mut s, id) = store_with_user(UserRole::Customer);
    let policy = SessionPolicy::default();
    let fail = |s: &mut Store, now| {
        s.login_failed(
            "alice",
            Some("203.0.113.9"),
            LoginFailure::WrongPassword,
            &policy,
            "frontend:uid 9",
            now,
        )
        .unwrap()
    };
    for i in 0..4 {
        assert_eq!(fail(&mut s, t0() + SignedDuration::from_secs(i)), None);
    }
    // A success between resets the count: the failures must be consecutive.
    session(login(&mut s, id, 1, t0() + SignedDuration::from_secs(5)));
    for i in 0..4 {
        assert_eq!(fail(&mut s, t0() + SignedDuration::from_secs(10 + i)), None);
    }
    let now = t0() + SignedDuration::from_secs(20);
    let until = fail(&mut s, now).expect("locked at the fifth");
    assert_eq!(until, now + SignedDuration::from_mins(15));
    // Locked: the right password gets no session, and a further attempt is refused.
    assert_eq!(
        login(&mut s, id, 2, now + SignedDuration::from_mins(14)),
        LoginOutcome::Locked(until)
    );
    assert_eq!(
        fail(&mut s, now + SignedDuration::from_mins(1)),
        Some(until)
    );
    let u = s.user(id).unwrap().unwrap();
    assert_eq!(
        u.failed_logins, 0,
        "a refused attempt while locked does not count"
    );
    // After the lock, a login works again.
    session(login(&mut s, id, 3, until));
    let ev = events(&s);
    assert_eq!(
        ev.iter().filter(|e| e.starts_with("login_locked")).count(),
        1,
        "{ev:?}"
    );
    assert!(ev
        .iter()
        .any(|e| e.contains("203.0.113.9") && e.contains("wrong password (5 of 5")));
    assert!(ev
        .iter()
        .any(|e| e.starts_with("login_ok login \"alice\" from 203.0.113.9")));
    // Unknown logins are audited too, and count for nobody.
    assert_eq!(
        s.login_failed(
            "mallory",
            None,
            LoginFailure::UnknownLogin,
            &policy,
            "f",
            now
        )
        .unwrap(),
        None
    );
    assert!(events(&s)
        .iter()
        .any(|e| e.contains("\"mallory\": unknown login")));
}

#[test]
fn sessions_end_when_idle_and_at_their_absolute_end() {
    let (mut s, id) = store_with_user(UserRole::Admin);
    let policy = SessionPolicy::default();
    let first = session(login(&mut s, id, 1, t0()));
    assert_eq!(first.expires_at, t0() + SignedDuration::from_mins(30));
    assert_eq!(first.role, UserRole::Admin);
    // Used every 20 minutes, it lives on, sliding...
    let mut now = t0();
    for _ in 0..40 {
        now += SignedDuration::from_mins(20);
        let u = s.resolve_session(&[1; 32], &policy, now).unwrap();
        if now < t0() + SignedDuration::from_hours(12) {
            let u = u.expect("alive while used");
            assert!(u.expires_at <= t0() + SignedDuration::from_hours(12));
        } else {
            // ...until 12 hours after the login, used or not.
            assert_eq!(u, None, "past the absolute end at {now}");
            break;
        }
    }
    assert!(now >= t0() + SignedDuration::from_hours(12));
    // Deleted once found expired: gone even for an earlier clock.
    assert_eq!(s.resolve_session(&[1; 32], &policy, t0()).unwrap(), None);
    // Unused for 30 minutes, a session ends.
    session(login(&mut s, id, 2, now));
    let at = |mins| now + SignedDuration::from_mins(mins);
    assert_eq!(s.resolve_session(&[2; 32], &policy, at(31)).unwrap(), None);
    // Used at 29 minutes, it slides: alive at 29 + 29, gone at 29 + 31.
    session(login(&mut s, id, 3, now));
    let used = s.resolve_session(&[3; 32], &policy, at(29)).unwrap();
    assert_eq!(used.map(|u| u.expires_at), Some(at(59)));
    assert!(s
        .resolve_session(&[3; 32], &policy, at(58))
        .unwrap()
        .is_some());
    assert_eq!(
        s.resolve_session(&[3; 32], &policy, at(58 + 31)).unwrap(),
        None
    );
    assert_eq!(s.resolve_session(&[9; 32], &policy, now).unwrap(), None);
}

#[test]
fn must_change_clears_with_the_own_change_which_ends_the_other_sessions() {
    let (mut s, id) = store_with_user(UserRole::Customer);
    let policy = SessionPolicy::default();
    let a = session(login(&mut s, id, 1, t0()));
    session(login(&mut s, id, 2, t0()));
    assert!(a.must_change_password);
    assert_eq!(a.account.as_deref(), Some("shop"));
    assert!(s
        .change_own_password(id, a.session_id, "$argon2id$new", "user:alice", t0())
        .unwrap());
    let a = s
        .resolve_session(&[1; 32], &policy, t0())
        .unwrap()
        .expect("this session stays");
    assert!(!a.must_change_password);
    assert_eq!(
        s.resolve_session(&[2; 32], &policy, t0()).unwrap(),
        None,
        "the other ended"
    );
    assert_eq!(s.user(id).unwrap().unwrap().password_hash, "$argon2id$new");
    // An admin's reset: must change again, every session ends, the lock is lifted.
    for _ in 0..5 {
        s.login_failed(
            "alice",
            None,
            LoginFailure::WrongPassword,
            &policy,
            "f",
            t0(),
        )
        .unwrap();
    }
    assert!(s.user(id).unwrap().unwrap().locked_at(t0()).is_some());
    assert!(s
        .reset_password("alice", "$argon2id$reset", "admin:uid 0", t0())
        .unwrap());
    assert!(!s
        .reset_password("nobody", "x", "admin:uid 0", t0())
        .unwrap());
    let u = s.user(id).unwrap().unwrap();
    assert!(u.must_change_password && u.locked_until.is_none());
    assert_eq!(s.resolve_session(&[1; 32], &policy, t0()).unwrap(), None);
    let ev = events(&s).join("\n");
    assert!(
        ev.contains("password_changed user \"alice\" changed its password; 1 other"),
        "{ev}"
    );
    assert!(
        ev.contains("user_password_reset password of user \"alice\" reset"),
        "{ev}"
    );
    assert!(!ev.contains("argon2"), "{ev}");
}

#[test]
fn disabling_ends_sessions_and_refuses_logins_until_enabled() {
    let (mut s, id) = store_with_user(UserRole::Reviewer);
    let policy = SessionPolicy::default();
    let u = session(login(&mut s, id, 1, t0()));
    assert_eq!((u.role, u.account), (UserRole::Reviewer, None));
    assert_eq!(
        s.set_user_disabled("alice", true, "admin:uid 0", t0())
            .unwrap(),
        Some(true)
    );
    assert_eq!(s.resolve_session(&[1; 32], &policy, t0()).unwrap(), None);
    assert_eq!(login(&mut s, id, 2, t0()), LoginOutcome::Disabled);
    assert_eq!(
        s.set_user_disabled("alice", true, "admin:uid 0", t0())
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        s.set_user_disabled("nobody", true, "admin:uid 0", t0())
            .unwrap(),
        None
    );
    assert_eq!(
        s.set_user_disabled("alice", false, "admin:uid 0", t0())
            .unwrap(),
        Some(true)
    );
    let third = session(login(&mut s, id, 3, t0()));
    assert!(s.end_session(third.session_id, "user:alice", t0()).unwrap());
    assert!(!s.end_session(third.session_id, "user:alice", t0()).unwrap());
    assert_eq!(s.resolve_session(&[3; 32], &policy, t0()).unwrap(), None);
    let ev = events(&s).join("\n");
    for e in [
        "user_disabled user \"alice\" disabled; 1 session(s) ended",
        "user_enabled",
        "logout user \"alice\"",
    ] {
        assert!(ev.contains(e), "{e} in {ev}");
    }
    assert_eq!(s.users(None).unwrap().len(), 1);
}
