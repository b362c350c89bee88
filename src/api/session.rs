//! The `x-smsgate-session` header: a front end forwarding a logged-in user's request names the
//! user's session token in [`SESSION_HEADER`]. The [`resolve`] middleware asks the backend for
//! the session on every request that carries it (which also slides its idle time), puts it in
//! the request's [`Peer`] (where `extract::caller` makes it a [`Caller`](super::Caller)), and
//! applies the rules that hold whatever the route: what a session whose user must change the
//! password may call ([`MUST_CHANGE_ROUTES`]), and what a reviewer may call
//! ([`REVIEWER_ROUTES`]).
//!
//! What must always hold: only a front end (`frontends`) may present a session; a bad, ended
//! or expired token is 401 `unauthorized` on every route; a must-change session gets 403
//! `password_change_required` on every route but the two of [`MUST_CHANGE_ROUTES`]; a reviewer
//! session gets 403 on every route not in [`REVIEWER_ROUTES`] (a list of what is allowed, so a
//! route added later is closed to reviewers until it is added here on purpose). The token is
//! never logged.

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::{is_frontend, ApiState, Peer};
use super::users::{CallerSession, Role};
use super::{ApiError, Backend};

/// The header in which a front end forwards a logged-in user's session token.
pub const SESSION_HEADER: &str = "x-smsgate-session";

/// What a session may call while its user must change the password (method, route).
pub const MUST_CHANGE_ROUTES: [(&str, &str); 2] = [
    ("POST", "/v1/users/me/password"),
    ("DELETE", "/v1/sessions/current"),
];

/// Everything a reviewer session may call: the review queue, and reading the modems, the
/// gateways and the health (and its own password and logout).
pub const REVIEWER_ROUTES: [(&str, &str); 5] = [
    ("GET", "/v1/reviews"),
    ("POST", "/v1/reviews/{id}"),
    ("GET", "/v1/modems"),
    ("GET", "/v1/gateways"),
    ("GET", "/v1/health"),
];

/// Whether a session of this user may call `method` on `route` (the matched route pattern;
/// `None` when no route matched, which a restricted session is refused rather than told).
pub fn allowed(
    role: Role,
    must_change_password: bool,
    method: &str,
    route: Option<&str>,
) -> Result<(), ApiError> {
    let call = route.map(|r| (method, r));
    let is = |list: &[(&str, &str)]| call.is_some_and(|c| list.contains(&c));
    if is(&MUST_CHANGE_ROUTES) {
        return Ok(());
    }
    if must_change_password {
        return Err(ApiError::PasswordChangeRequired);
    }
    if role == Role::Reviewer && !is(&REVIEWER_ROUTES) {
        return Err(ApiError::Forbidden(format!(
            "a reviewer may use the review queue and read modems, gateways and health only, \
             not {method} {}",
            route.unwrap_or("this path")
        )));
    }
    Ok(())
}

/// Middleware: resolves [`SESSION_HEADER`] into the request's [`Peer`], or answers the refusal.
pub(super) async fn resolve<B: Backend>(
    State(state): State<ApiState<B>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(value) = req.headers().get(SESSION_HEADER) else {
        return next.run(req).await;
    };
    let token = value.to_str().unwrap_or("").trim().to_owned();
    let frontend = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .is_some_and(|ConnectInfo(peer)| is_frontend(&state, peer));
    if !frontend {
        return ApiError::Forbidden(format!(
            "only the uids in `frontends` of the smsgate configuration may present a session \
             in {SESSION_HEADER}"
        ))
        .into_response();
    }
    let session = match state.backend().session(token).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if let Err(e) = allowed(
        session.user.role,
        session.user.must_change_password,
        req.method().as_str(),
        route.as_deref(),
    ) {
        return e.into_response();
    }
    if let Some(ConnectInfo(peer)) = req.extensions_mut().get_mut::<ConnectInfo<Peer>>() {
        peer.2 = Some(CallerSession::from(session));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn must_change_and_reviewer_rules() {
        let ok = |role, must, m, r| allowed(role, must, m, Some(r)).is_ok();
        assert!(ok(Role::Customer, false, "GET", "/v1/messages"));
        assert!(!ok(Role::Customer, true, "GET", "/v1/messages"));
        let refused = allowed(Role::Admin, true, "GET", Some("/v1/users")).unwrap_err();
        assert_eq!(
            (refused.status().as_u16(), refused.code()),
            (403, "password_change_required")
        );
        for role in [Role::Customer, Role::Reviewer, Role::Admin] {
            assert!(ok(role, true, "POST", "/v1/users/me/password"));
            assert!(ok(role, true, "DELETE", "/v1/sessions/current"));
        }
        assert!(ok(Role::Reviewer, false, "POST", "/v1/reviews/{id}"));
        assert!(ok(Role::Reviewer, false, "GET", "/v1/modems"));
        assert!(!ok(
            Role::Reviewer,
            false,
            "POST",
            "/v1/accounts/{name}/credit"
        ));
        assert!(!ok(Role::Reviewer, false, "GET", "/v1/messages"));
        assert!(!ok(Role::Reviewer, false, "POST", "/v1/modems"));
        assert!(allowed(Role::Reviewer, false, "GET", None).is_err());
        assert!(allowed(Role::Admin, false, "GET", None).is_ok());
    }
}
