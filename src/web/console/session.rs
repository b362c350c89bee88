//! The console's security plumbing: the session cookie, the CSRF token, the Origin check and
//! the login rate per client address.
//!
//! The session cookie `smsgate_session` holds the daemon's session token as issued
//! (`POST /v1/sessions`); the web process keeps no session state of its own, and asks the
//! daemon on every request (`POST /v1/sessions/verify`) who the token belongs to. Before a
//! login, the cookie `smsgate_login` (random, per browser) stands in for the session so the
//! login form has a CSRF token too.
//!
//! What must always hold: the session cookie is HttpOnly, SameSite=Strict, Path=/, and Secure
//! whenever the listener speaks TLS; every state-changing request (any method but GET/HEAD)
//! carries the CSRF token derived from the cookie it acts with (form field `csrf` or header
//! `x-csrf-token`), compared in constant time, or is refused 403 before it reaches a handler
//! or the daemon; a present `Origin` must be this listener's own; a token is never logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// The session cookie (the daemon's token).
pub const SESSION_COOKIE: &str = "smsgate_session";
/// The pre-login cookie: what the login form's CSRF token is derived from.
pub const LOGIN_COOKIE: &str = "smsgate_login";
/// The language cookie (`zh` or `en`).
pub const LANG_COOKIE: &str = "lang";
/// The CSRF header of the embedded script's requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The CSRF field of HTML forms.
pub const CSRF_FIELD: &str = "csrf";

/// Login attempts one client address may make per [`LOGIN_WINDOW`] (on top of the daemon's
/// lockout of a user after 5 failures).
pub const LOGIN_ATTEMPTS: usize = 10;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// The CSRF token of a session (or pre-login) token: hex of SHA-256("smsgate-csrf\0" + token).
/// Derived, so the web process stores nothing; unguessable without the HttpOnly cookie.
pub fn csrf_token(cookie_value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"smsgate-csrf\0");
    h.update(cookie_value.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `presented` is the CSRF token of `cookie_value` (constant time over the token).
pub fn csrf_ok(cookie_value: &str, presented: &str) -> bool {
    let expected = csrf_token(cookie_value);
    if presented.len() != expected.len() {
        return false;
    }
    expected
        .bytes()
        .zip(presented.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure under TLS; `max_age`
/// `Some(0)` deletes it, `None` makes a browser-session cookie.
pub fn set_cookie(name: &str, value: &str, tls: bool, max_age: Option<u64>) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    if tls {
        s.push_str("; Secure");
    }
    // Names and values are ours (hex tokens, fixed words): always a valid header value.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A fresh random pre-login token (32 hex digits).
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Whether the request's `Origin` (when present) is this listener: the same host and port as
/// `Host`, and the scheme the listener speaks. A missing Origin passes (older browsers, same-
/// origin GET-made forms): the CSRF token is the check that always applies.
pub fn origin_ok(headers: &HeaderMap, tls: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let scheme = if tls { "https" } else { "http" };
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

/// Sliding-window count of login attempts per client address.
pub struct LoginLimiter {
    attempts: Mutex<HashMap<IpAddr, Vec<Instant>>>,
    max: usize,
    window: Duration,
}

impl LoginLimiter {
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter {
            attempts: Mutex::new(HashMap::new()),
            max: max.max(1),
            window,
        }
    }

    /// Counts one attempt from `ip` at `now`: `Ok`, or `Err(seconds to wait)`.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut map = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.window;
        if map.len() > 10_000 {
            map.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < window));
        }
        let list = map.entry(ip).or_default();
        list.retain(|t| now.saturating_duration_since(*t) < window);
        if list.len() >= self.max {
            let oldest = list.first().copied().unwrap_or(now);
            let wait = window.saturating_sub(now.saturating_duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        list.push(now);
        Ok(())
    }
}

/// A local path to go back to after a language switch or a login: only `/...` of this site
/// (not `//host`, not a scheme), else `/`.
pub fn local_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control()) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_is_derived_and_checked() {
        let t = csrf_token("abc");
        assert_eq!(t.len(), 64);
        assert!(csrf_ok("abc", &t));
        assert!(!csrf_ok("abd", &t));
        assert!(!csrf_ok("abc", ""));
        assert!(!csrf_ok("abc", &t[..63]));
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("lang=en; smsgate_session=ff00"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("ff00"));
        assert_eq!(cookie(&h, LANG_COOKIE), Some("en"));
        assert_eq!(cookie(&h, "nope"), None);
        let c = set_cookie(SESSION_COOKIE, "ff00", true, None);
        assert_eq!(
            c.to_str().unwrap(),
            "smsgate_session=ff00; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let c = set_cookie(SESSION_COOKIE, "", false, Some(0));
        assert!(!c.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn origin_must_be_this_site() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(origin_ok(&h, false));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(origin_ok(&h, false));
        assert!(!origin_ok(&h, true));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_ok(&h, false));
    }

    #[test]
    fn login_attempts_are_limited_per_address() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(a, t0).is_ok());
        }
        let wait = l.take(a, t0).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.take(b, t0).is_ok(), "another address is not affected");
        assert!(l.take(a, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/send")), "/send");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil")), "/");
        assert_eq!(local_path(None), "/");
    }
}
