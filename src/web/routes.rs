//! The network API's routes: each is a forward of the same request to the daemon's socket API
//! ([`ROUTES`]: the public path, its method and the socket path), behind the API key check and
//! the account's rate limit; and the OpenAPI document (`openapi.json`, served as is).
//!
//! What must always hold: a forwarded request acts only for the account its key belongs to
//! (the daemon is told so in `x-smsgate-account` and judges every `account` the client names
//! against it); no request reaches the daemon without a key the daemon accepted for the
//! client's address; the key never appears in a log line; every refusal is the socket API's
//! JSON error; [`ROUTES`] and the OpenAPI document name the same paths and methods (a unit test
//! and `tests/web_api.rs` check both ways). Path parameters are percent-encoded again before
//! they are put in the socket path, so `1%2Fretry` cannot reach another daemon route.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Extension, Router};

use super::Web;
use crate::api::client::ClientError;
use crate::api::types::{ErrorBody, ErrorDetail, MAX_BODY_BYTES};
use crate::api::ApiError;

/// The OpenAPI 3 document served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The path of the OpenAPI document (served without a key).
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// A client has this long to send its request body once its headers are in.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// `(method, public path, daemon socket path)`. `{account}` in the socket path is the key's
/// account; other `{name}`s are the public path's parameters.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/messages", "/v1/messages"),
    ("GET", "/api/v1/messages", "/v1/messages"),
    ("GET", "/api/v1/messages/{id}", "/v1/messages/{id}"),
    ("DELETE", "/api/v1/messages/{id}", "/v1/messages/{id}"),
    ("GET", "/api/v1/inbox", "/v1/inbox"),
    ("GET", "/api/v1/credit", "/v1/accounts/{account}/credit"),
    ("GET", "/api/v1/webhook", "/v1/accounts/{account}/webhook"),
    ("PUT", "/api/v1/webhook", "/v1/accounts/{account}/webhook"),
    (
        "DELETE",
        "/api/v1/webhook",
        "/v1/accounts/{account}/webhook",
    ),
];

/// The account a request's key belongs to (set by [`authenticate`]).
#[derive(Debug, Clone)]
struct Account(String);

/// The network API over `web`.
pub fn router(web: Arc<Web>) -> Router {
    let mut by_path: BTreeMap<&str, MethodRouter<Arc<Web>>> = BTreeMap::new();
    for &(method, path, upstream) in ROUTES {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("ROUTES names method {other}, which router() does not map"),
        };
        let handler = move |state: State<Arc<Web>>,
                            account: Extension<Account>,
                            params: RawPathParams,
                            method: Method,
                            uri: Uri,
                            headers: HeaderMap,
                            body: Body| {
            forward(
                state,
                account,
                params,
                (method, uri, headers),
                body,
                (path, upstream),
            )
        };
        let entry = by_path.remove(path).unwrap_or_default();
        by_path.insert(path, entry.on(filter, handler));
    }
    let mut api = Router::new();
    for (path, methods) in by_path {
        api = api.route(path, methods);
    }
    api.route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(&web),
        authenticate,
    ))
    .route(OPENAPI_PATH, axum::routing::get(openapi))
    .fallback(no_route)
    .method_not_allowed_fallback(wrong_method)
    .with_state(web)
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from_static(OPENAPI.as_bytes()),
    )
        .into_response()
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// The daemon's answer to a failed call, as the client sees it: the daemon's own status and
/// JSON error, or 503 when the daemon cannot be reached.
fn client_error(e: ClientError) -> Response {
    match e {
        ClientError::Api {
            status,
            code,
            message,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = ErrorBody {
                error: ErrorDetail { code, message },
            };
            let mut response = (status, axum::Json(body)).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
        ClientError::Unreachable { .. } => {
            tracing::warn!("web: {e}");
            ApiError::Unavailable("smsgate is not reachable at the moment; try again later".into())
                .into_response()
        }
        ClientError::Protocol(m) => {
            ApiError::Internal(format!("smsgate answered oddly: {m}")).into_response()
        }
    }
}

/// The bearer token of `Authorization`, if well-formed.
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

/// Middleware of every forwarded route: the key (checked by the daemon, for the client's
/// address), then the account's rate. Sets [`Account`].
async fn authenticate(
    State(web): State<Arc<Web>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(key) = bearer(&req) else {
        return ApiError::Unauthorized(
            "an API key is required: Authorization: Bearer KEY (smsgate key add)".into(),
        )
        .into_response();
    };
    let client_ip = peer.ip().to_canonical().to_string();
    if let Some(retry_after_secs) = web.failures.exhausted(&client_ip, Instant::now()) {
        return ApiError::RateLimited {
            per_second: super::FAILED_KEYS_PER_SECOND,
            retry_after_secs,
        }
        .into_response();
    }
    let verified = {
        let _permit = web.permit().await;
        web.client.key_verify(key, peer.ip()).await
    };
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            if let ClientError::Api { status, .. } = &e {
                tracing::info!(client = %peer.ip(), status, "web: key refused");
                if matches!(status, 401 | 403) {
                    let _ = web.failures.take(&client_ip, Instant::now());
                }
            }
            return client_error(e);
        }
    };
    if let Err(retry_after_secs) = web.limiter.take(&verified.account, Instant::now()) {
        tracing::debug!(account = verified.account, "web: over the rate limit");
        return ApiError::RateLimited {
            per_second: web.rate,
            retry_after_secs,
        }
        .into_response();
    }
    req.extensions_mut().insert(Account(verified.account));
    next.run(req).await
}

/// Percent-encodes everything but RFC 3986 unreserved characters (a path segment).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The socket path for `upstream` with the request's parameters and account filled in.
fn upstream_path(upstream: &str, params: &RawPathParams, account: &str) -> String {
    let mut path = upstream.replace("{account}", &segment(account));
    for (name, value) in params {
        path = path.replace(&format!("{{{name}}}"), &segment(value));
    }
    path
}

async fn forward(
    State(web): State<Arc<Web>>,
    Extension(Account(account)): Extension<Account>,
    params: RawPathParams,
    (method, uri, headers): (Method, Uri, HeaderMap),
    body: Body,
    (route, upstream): (&'static str, &'static str),
) -> Response {
    use http_body_util::BodyExt;
    // A declared length over the limit is refused before any of the body is read, so the
    // client, still sending, reads the answer instead of a reset connection.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        let mut response = ApiError::TooLarge(format!(
            "request body is larger than the limit of {MAX_BODY_BYTES} bytes"
        ))
        .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return ApiError::TooLarge(format!(
                "request body is larger than the limit of {MAX_BODY_BYTES} bytes"
            ))
            .into_response();
        }
        Ok(Err(e)) => {
            return ApiError::BadJson(format!("cannot read the request body: {e}")).into_response()
        }
        Err(_) => {
            let mut response = ApiError::Timeout(format!(
                "the request body did not arrive within {} seconds",
                BODY_TIMEOUT.as_secs()
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let mut target = upstream_path(upstream, &params, &account);
    if let Some(q) = uri.query() {
        target.push('?');
        target.push_str(q);
    }
    let answer = {
        let _permit = web.permit().await;
        web.client
            .acting_for(&account)
            .raw(method.clone(), &target, bytes.to_vec())
            .await
    };
    match answer {
        Ok((status, body)) => {
            // The route, not the path: a client may put anything (a number) in the path.
            tracing::info!(account, status = status.as_u16(), "web: {method} {route}");
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => client_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn openapi_names_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["get", "post", "put", "delete", "patch"] {
                if item.get(method).is_some() {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        routed.insert(("GET".into(), OPENAPI_PATH.into()));
        assert_eq!(documented, routed);
    }

    #[test]
    fn parameters_cannot_leave_their_segment() {
        assert_eq!(segment("1/retry"), "1%2Fretry");
        assert_eq!(segment("42"), "42");
        assert_eq!(segment("商户"), "%E5%95%86%E6%88%B7");
        assert_eq!(segment("a?b#c"), "a%3Fb%23c");
    }
}
