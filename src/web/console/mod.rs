//! The customer console: HTML pages on the `smsgate web` listener beside `/api/v1` (which is
//! unchanged). Pages are minijinja templates embedded with `include_str!` (auto-escaped as
//! HTML), one layout with a role-aware menu ([`NAV`]), every word from `i18n.rs` (zh-CN by
//! default, English through the `lang` cookie). Each page calls the daemon as the logged-in
//! user (`daemon.rs`); the web process keeps no state but the login rate per address.
//!
//! Files: `session.rs` (cookies, CSRF, Origin, login rate), `daemon.rs` (calls as the user),
//! `auth.rs` (login, first-login password change, logout, language), `pages.rs` (dashboard,
//! replies, opt-outs, send log, API keys, webhook), `chart.rs` (the dashboard's SVG),
//! `send.rs` and `upload.rs` (the send page: preview, quote, submission; CSV/XLSX reading),
//! `messages.rs` (search, one message, server-sent state changes), `templates/`, `assets/`
//! (the one stylesheet and the one script, served from `/static/`; no third-party code).
//!
//! The operator's staff pages live in `staff/` (their routes, menu lines, templates, words and
//! element ids are listed in `staff/mod.rs`).
//!
//! Adding a page: a handler taking [`Ctx`] that returns
//! `console.page(&ctx, "x.html", context!{..})`, a route in [`router`], a [`NAV`] line with the
//! roles that see it, its words in `i18n.rs`, its element ids below.
//!
//! Stable element ids (the browser tests drive these; keep them):
//! - layout: `nav`, `nav-<page>` (dashboard, send, messages, inbox, optouts, sendlog, keys,
//!   webhook), `user-login`, `logout`, `lang-zh`, `lang-en`, `flash`, `error-message`;
//! - login: `login-form`, `login`, `password`, `login-submit`, `login-error`;
//!   password: `password-form`, `current`, `new`, `new2`, `password-submit`, `password-error`;
//! - dashboard: `credit-available`, `lots` (rows `lot-<id>`, class `expiring`),
//!   `expiry-warning`, `today-messages`, `today-parts`, `month-messages`, `month-parts`,
//!   `delivery-rate`, `chart`;
//! - send: `numbers`, `file`, `check`, `preview`, `preview-total`, `preview-valid`,
//!   `preview-invalid`, `preview-duplicate`, `preview-opted_out`, `preview-blacklisted`,
//!   `preview-rows`, `text`, `text-as-sent`, `count-chars`, `count-parts`, `count-cost`,
//!   `count-total`, `count-encoding`, `sender`, `not-before`, `validity`, `submit`, `progress`,
//!   `progress-text`, `send-result`, `send-error`;
//! - messages: `search-form`, `q-number`, `q-from`, `q-to`, `q-state`, `q-batch`, `search`,
//!   `messages-table`, rows `msg-<id>`, state cells `state-<id>` (attribute `data-state`),
//!   `live`; one message: `message`, `parts`;
//! - `inbox-table`, `optouts-table`, `sendlog-from`, `sendlog-to`, `sendlog-download`;
//! - keys: `key-name`, `key-ips`, `key-create`, `new-key`, `keys-table`, `revoke-<id>`;
//! - webhook: `webhook-url`, `webhook-save`, `webhook-remove`, `webhook-secret`, `stuck-table`.
//!
//! What must always hold: every page but `/login` and the static files needs a session the
//! daemon accepts; a user who must change the password sees only `/password` (and logout);
//! every state-changing request passes the CSRF and Origin checks of `session.rs` before its
//! handler runs ([`csrf_layer`]); pages carry a Content-Security-Policy that allows only this
//! site's own script and style; no template text reaches the page unescaped except the SVG
//! that `chart.rs` builds (its own labels escaped there).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Environment, Value};

use super::Web;
use crate::api::client::ClientError;

pub mod auth;
pub mod chart;
pub mod daemon;
pub mod i18n;
pub mod messages;
pub mod pages;
pub mod send;
pub mod session;
pub mod staff;
pub mod upload;

use daemon::{Role, SessionUser};
use i18n::Lang;

/// One menu entry: element id `nav-<id>`, its path, its word, the roles that see it.
pub struct NavItem {
    pub id: &'static str,
    pub href: &'static str,
    pub word: &'static str,
    pub roles: &'static [Role],
}

const CUSTOMER: &[Role] = &[Role::Customer];

/// The menu, in order. Staff pages add lines with `&[Role::Admin]` or both staff roles.
pub const NAV: &[NavItem] = &[
    NavItem {
        id: "dashboard",
        href: "/",
        word: "nav_dashboard",
        roles: &[Role::Customer, Role::Reviewer, Role::Admin],
    },
    NavItem {
        id: "send",
        href: "/send",
        word: "nav_send",
        roles: CUSTOMER,
    },
    NavItem {
        id: "messages",
        href: "/messages",
        word: "nav_messages",
        roles: CUSTOMER,
    },
    NavItem {
        id: "inbox",
        href: "/inbox",
        word: "nav_inbox",
        roles: CUSTOMER,
    },
    NavItem {
        id: "optouts",
        href: "/optouts",
        word: "nav_optouts",
        roles: CUSTOMER,
    },
    NavItem {
        id: "sendlog",
        href: "/sendlog",
        word: "nav_sendlog",
        roles: CUSTOMER,
    },
    NavItem {
        id: "keys",
        href: "/keys",
        word: "nav_keys",
        roles: CUSTOMER,
    },
    NavItem {
        id: "webhook",
        href: "/webhook",
        word: "nav_webhook",
        roles: CUSTOMER,
    },
];

/// The templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("password.html", include_str!("templates/password.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("staff_home.html", include_str!("templates/staff_home.html")),
    ("send.html", include_str!("templates/send.html")),
    ("messages.html", include_str!("templates/messages.html")),
    ("message.html", include_str!("templates/message.html")),
    ("inbox.html", include_str!("templates/inbox.html")),
    ("optouts.html", include_str!("templates/optouts.html")),
    ("sendlog.html", include_str!("templates/sendlog.html")),
    ("keys.html", include_str!("templates/keys.html")),
    ("webhook.html", include_str!("templates/webhook.html")),
];

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Only this site's own script and style; no frames; forms post here only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// What the console's requests share.
pub struct Console {
    pub(crate) web: Arc<Web>,
    env: Environment<'static>,
    /// The listener speaks TLS: cookies are Secure, Origin is `https://`.
    pub(crate) tls: bool,
    pub(crate) logins: session::LoginLimiter,
}

impl Console {
    pub fn new(web: Arc<Web>, tls: bool) -> Console {
        Console {
            web,
            env: environment(),
            tls,
            logins: session::LoginLimiter::new(session::LOGIN_ATTEMPTS, session::LOGIN_WINDOW),
        }
    }

    /// Renders `template` inside the layout for `ctx`'s user, with `extra` in the context.
    pub fn page(&self, ctx: &Ctx, template: &str, extra: Value) -> Response {
        self.render(ctx.lang, Some(ctx), template, extra, StatusCode::OK)
    }

    /// Renders a page for anyone (login, errors): `ctx` None shows no menu.
    pub fn render(
        &self,
        lang: Lang,
        ctx: Option<&Ctx>,
        template: &str,
        extra: Value,
        status: StatusCode,
    ) -> Response {
        let nav: Vec<Value> = match ctx {
            Some(c) if !c.user.must_change_password => NAV
                .iter()
                .chain(staff::NAV)
                .filter(|n| n.roles.contains(&c.user.role))
                .map(|n| {
                    context! {
                        id => n.id,
                        href => n.href,
                        label => lang.word(n.word),
                        active => n.href == c.path
                            || (n.href != "/" && c.path.starts_with(n.href)),
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        let common = context! {
            t => lang.words(),
            lang => lang.code(),
            html_lang => lang.html(),
            nav => nav,
            user => ctx.map(|c| context! {
                login => c.user.login.clone(),
                role => c.user.role.as_str(),
                account => c.user.account.clone(),
            }),
            csrf => ctx.map(|c| c.csrf.clone()),
            path_q => daemon::encode(ctx.map(|c| c.path.as_str()).unwrap_or("/")),
        };
        let rendered = self
            .env
            .get_template(template)
            .and_then(|t| t.render(context! { ..extra, ..common }));
        match rendered {
            Ok(html) => html_response(status, html),
            Err(e) => {
                tracing::error!("console: template {template}: {e:#}");
                // The unit tests read the cause; a browser never sees it.
                let body = if cfg!(test) {
                    format!("{e:#}")
                } else {
                    "template error".into()
                };
                (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
            }
        }
    }

    /// The error page (with the menu when there is a user).
    pub fn error(
        &self,
        lang: Lang,
        ctx: Option<&Ctx>,
        status: StatusCode,
        message: &str,
    ) -> Response {
        self.render(
            lang,
            ctx,
            "error.html",
            context! { message => message },
            status,
        )
    }

    /// What a page shows when its call to the daemon failed: back to the login when the
    /// session ended, to the password page when it must be changed, else the error page with
    /// the daemon's own words.
    pub fn daemon_error(&self, ctx: &Ctx, e: ClientError) -> Response {
        match &e {
            ClientError::Api { status: 401, .. } => to_login(&ctx.path),
            ClientError::Api { code, .. } if code == "password_change_required" => {
                Redirect::to("/password").into_response()
            }
            ClientError::Api {
                status, message, ..
            } => {
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
                self.error(ctx.lang, Some(ctx), status, message)
            }
            ClientError::Unreachable { .. } | ClientError::Protocol(_) => {
                tracing::warn!("console: {e}");
                self.error(
                    ctx.lang,
                    Some(ctx),
                    StatusCode::SERVICE_UNAVAILABLE,
                    ctx.lang.word("error_daemon"),
                )
            }
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, source) in TEMPLATES.iter().chain(staff::TEMPLATES) {
        if let Err(e) = env.add_template(name, source) {
            // Templates are compiled in; the unit tests render each, so this is a build bug.
            panic!("console template {name} does not compile: {e:#}");
        }
    }
    env.add_filter("localtime", local_time);
    env.add_filter("urlpart", |s: String| daemon::encode(&s));
    env
}

/// An RFC 3339 instant (or Unix milliseconds) as "YYYY-MM-DD HH:MM" in China's time.
pub fn local_time(value: Value) -> String {
    let ts = if let Some(ms) = value.as_i64() {
        jiff::Timestamp::from_millisecond(ms).ok()
    } else {
        value
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    };
    match ts {
        Some(ts) => ts
            .to_zoned_datetime(china())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => String::new(),
    }
}

/// Asia/Shanghai (UTC+8 when the time zone database is missing: China has no DST).
pub fn china() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Shanghai")
        .unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8)))
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// To the login page, coming back to `path` afterwards.
pub fn to_login(path: &str) -> Response {
    let next = session::local_path(Some(path));
    Redirect::to(&format!("/login?next={}", daemon::encode(&next))).into_response()
}

/// A request of a logged-in user: language, the daemon's view of the user, the session token
/// (for [`daemon::AsUser`]) and its CSRF token, and the request's path.
pub struct Ctx {
    pub lang: Lang,
    pub user: SessionUser,
    pub token: String,
    pub csrf: String,
    pub path: String,
}

impl Ctx {
    /// The account a customer acts for (staff have none).
    pub fn account(&self) -> &str {
        self.user.account.as_deref().unwrap_or("")
    }
}

/// The language of a request.
pub fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    Lang::from_cookie(session::cookie(headers, session::LANG_COOKIE))
}

impl FromRequestParts<Arc<Console>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Ctx, Response> {
        let lang = lang_of(&parts.headers);
        let path = parts.uri.path().to_owned();
        let Some(token) = session::cookie(&parts.headers, session::SESSION_COOKIE) else {
            return Err(to_login(&path));
        };
        let token = token.to_owned();
        let user = match daemon::verify(&console.web, &token).await {
            Ok(u) => u,
            Err(ClientError::Api { status: 401, .. }) => return Err(to_login(&path)),
            Err(e) => {
                tracing::warn!("console: session check: {e}");
                return Err(console.error(
                    lang,
                    None,
                    StatusCode::SERVICE_UNAVAILABLE,
                    lang.word("error_daemon"),
                ));
            }
        };
        let ctx = Ctx {
            lang,
            csrf: session::csrf_token(&token),
            token,
            user,
            path,
        };
        if ctx.user.must_change_password && ctx.path != "/password" && ctx.path != "/logout" {
            return Err(Redirect::to("/password").into_response());
        }
        Ok(ctx)
    }
}

/// The console's routes over `web` (merged beside the network API by `web::serve`).
pub fn router(web: Arc<Web>, tls: bool) -> Router {
    let console = Arc::new(Console::new(web, tls));
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/password", get(auth::password_page).post(auth::password))
        .route("/lang", get(auth::switch_lang))
        .route("/send", get(send::page))
        .route("/send/check", post(send::check))
        .route("/send/upload", post(send::upload))
        .route("/send/quote", post(send::quote))
        .route("/send/submit", post(send::submit))
        .route("/messages", get(messages::search))
        .route("/messages/events", get(messages::events))
        .route("/messages/{id}", get(messages::one))
        .route("/inbox", get(pages::inbox))
        .route("/optouts", get(pages::optouts))
        .route("/sendlog", get(pages::sendlog))
        .route("/sendlog.csv", get(pages::sendlog_csv))
        .route("/keys", get(pages::keys).post(pages::key_create))
        .route("/keys/{id}/revoke", post(pages::key_revoke))
        .route("/webhook", get(pages::webhook).post(pages::webhook_save))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .merge(staff::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&console),
            csrf_layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            upload::MAX_UPLOAD_BYTES + 64 * 1024,
        ))
        .with_state(console)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Largest urlencoded form read while looking for its CSRF field.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// Every state-changing request: Origin (when present) is this site, and the CSRF token of the
/// cookie it acts with (the session's; the pre-login cookie's on `/login`) is in the
/// `x-csrf-token` header or the form's `csrf` field. Otherwise 403, before any handler.
async fn csrf_layer(State(console): State<Arc<Console>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let lang = lang_of(req.headers());
    let refuse = |why: &str| {
        tracing::info!(path = req.uri().path(), "console: refused: {why}");
        console.error(
            lang,
            None,
            StatusCode::FORBIDDEN,
            lang.word("error_forbidden"),
        )
    };
    if !session::origin_ok(req.headers(), console.tls) {
        return refuse("foreign Origin");
    }
    let cookie_name = if req.uri().path() == "/login" {
        session::LOGIN_COOKIE
    } else {
        session::SESSION_COOKIE
    };
    let Some(cookie) = session::cookie(req.headers(), cookie_name).map(str::to_owned) else {
        return refuse("no cookie");
    };
    if let Some(token) = req.headers().get(session::CSRF_HEADER) {
        let ok = token.to_str().is_ok_and(|t| session::csrf_ok(&cookie, t));
        return if ok {
            next.run(req).await
        } else {
            refuse("wrong CSRF header")
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return refuse("no CSRF token");
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return console.error(
            lang,
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            lang.word("error_title"),
        );
    };
    let presented = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == session::CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    if !presented.is_some_and(|t| session::csrf_ok(&cookie, &t)) {
        tracing::info!(
            path = parts.uri.path(),
            "console: refused: wrong CSRF field"
        );
        return console.error(
            lang,
            None,
            StatusCode::FORBIDDEN,
            lang.word("error_forbidden"),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Counts by key, for templates (`BTreeMap` keeps the order stable).
pub type Counts = BTreeMap<String, u64>;

#[cfg(test)]
mod tests;
