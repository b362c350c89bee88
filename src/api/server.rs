//! The HTTP side of the API: the message routes (merged with the admin routes of `admin.rs` and
//! the console routes of `console.rs` and the audit routes of `audit.rs`),
//! queries and ids with JSON errors, the Unix socket and the serve loop (axum 0.8 on a tokio
//! `UnixListener`). The extractors both route files share are in `extract.rs`.
//!
//! What must always hold: every body is read under [`MAX_BODY_BYTES`]; every rejection (bad JSON,
//! wrong type, oversize, unknown route, wrong method, bad id) is an [`ApiError`] rendered as JSON;
//! the caller is resolved from the connection's peer credentials on every request, never from
//! anything the client says; mutating requests are refused with 503 once shutdown has begun; a
//! request's headers and its body each arrive within their [`ConnectionLimits`] time or the
//! connection is closed (408 for a late body), so a slow client cannot keep a connection slot.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::UnixListener;

use super::access::{act_for, AccessMap};
use super::admin;
use super::extract::{caller, frontend_account, json_body, refuse_if_shutting_down};
pub use super::extract::{ApiState, Peer};
use super::listener::{ApiListener, ConnectionLimits};
use super::types::{
    InboxQuery, ListQuery, MessageId, SendRequest, SettleRequest, DEFAULT_PAGE, MAX_BODY_BYTES,
    MAX_PAGE, MAX_RECIPIENTS, MAX_TEXT_CHARS,
};
use super::{ApiError, Backend};

/// The longest validity the SMS relative validity period can express (63 weeks, TS 23.040).
const MAX_VALIDITY_SECS: i64 = 63 * 7 * 24 * 3600;

/// The routes of the API over `backend`. `shutting_down`, once true, makes mutating requests
/// answer 503. Serve it with connect info [`Peer`]
/// (`into_make_service_with_connect_info::<Peer>()`): handlers read the caller from it.
pub fn router<B: Backend>(
    backend: Arc<B>,
    access: AccessMap,
    shutting_down: Arc<AtomicBool>,
) -> Router {
    let state = ApiState {
        backend,
        access: Arc::new(access),
        shutting_down,
    };
    Router::new()
        .route("/v1/messages", post(submit::<B>).get(list::<B>))
        .route(
            "/v1/messages/{id}",
            get(get_message::<B>).delete(cancel::<B>),
        )
        .route("/v1/messages/{id}/retry", post(retry::<B>))
        .route("/v1/messages/{id}/settle", post(settle::<B>))
        .route("/v1/modems", get(modems::<B>))
        .route("/v1/gateways", get(gateways::<B>))
        .route("/v1/inbox", get(inbox::<B>))
        .route("/v1/health", get(health::<B>))
        .route("/metrics", get(metrics::<B>))
        .merge(admin::routes::<B>())
        .merge(super::users::routes::<B>())
        .merge(super::console::routes::<B>())
        .merge(super::audit::routes::<B>())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(frontend_account))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::session::resolve::<B>,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Binds the API socket at `path`: removes a stale socket file left by a crash (only if it is a
/// socket and nobody answers on it), binds, and opens it to every local user (mode 0666), since
/// access is decided per request from peer credentials, and an unmapped user should get a clear
/// 403 rather than a bare "permission denied".
pub fn bind_socket(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{}: another smsgate is already serving here",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting, marks the API
/// as shutting down (new mutating requests get 503) and lets requests in flight finish.
/// Connections are capped with the default [`ConnectionLimits`].
pub async fn serve<B: Backend>(
    listener: UnixListener,
    backend: Arc<B>,
    access: AccessMap,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        ConnectionLimits::default(),
        backend,
        access,
        shutdown,
    )
    .await
}

/// [`serve`] with explicit connection caps and timeouts. The accept loop is ours rather than
/// `axum::serve`'s, because that one gives no way to bound the time a client takes to send its
/// request: each connection is served by hyper's HTTP/1 server with a timer and a header read
/// timeout, and every body is read under [`ConnectionLimits::body_timeout`].
pub async fn serve_with<B: Backend>(
    listener: UnixListener,
    limits: ConnectionLimits,
    backend: Arc<B>,
    access: AccessMap,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flag = Arc::new(AtomicBool::new(false));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let app =
        router(backend, access, Arc::clone(&flag)).layer(axum::middleware::from_fn_with_state(
            (limits.body_timeout, stopping.clone()),
            read_body_within,
        ));
    let mut listener = ApiListener::new(listener, limits);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            (conn, _) = axum::serve::Listener::accept(&mut listener) => {
                let app = app.clone();
                let stopping = stopping.clone();
                connections.spawn(serve_connection(conn, app, limits.header_timeout, stopping));
            }
            // Reap finished connections as they end, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    // Stop accepting (connections still in the backlog are refused when the socket closes).
    drop(listener);
    flag.store(true, Ordering::SeqCst);
    tracing::info!("api: shutting down, finishing requests in flight");
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one accepted connection until it ends, the client is too slow, or shutdown begins:
/// then a request in its handler finishes and is answered, and a connection with no request
/// accepted (idle, or still sending its headers) is closed at once, so a slow client never
/// delays the daemon's stop.
async fn serve_connection(
    conn: super::listener::Connection,
    app: Router,
    header_timeout: std::time::Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    use hyper::service::Service as _;
    let peer = Peer(conn.peer(), None, None);
    let inner = hyper_util::service::TowerToHyperService::new(app);
    // Requests of this connection between their headers and their response.
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&busy);
    // What `into_make_service_with_connect_info::<Peer>()` would do: handlers read the caller
    // from the request's `ConnectInfo<Peer>`.
    let service = hyper::service::service_fn(move |mut req: axum::http::Request<_>| {
        req.extensions_mut().insert(ConnectInfo(peer.clone()));
        let answer = inner.call(req);
        let busy = Busy::new(&counted);
        async move {
            let response = answer.await;
            drop(busy);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let io = hyper_util::rt::TokioIo::new(conn);
    let mut served = std::pin::pin!(builder.serve_connection(io, service));
    tokio::select! {
        result = served.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("api: connection ended: {e}");
            }
            return;
        }
        _ = stopping.wait_for(|s| *s) => {}
    }
    if busy.load(Ordering::SeqCst) == 0 {
        // No request accepted on it: nothing to finish (dropping it closes it).
        return;
    }
    // Finish the request in flight (a body still arriving is cut short by
    // `read_body_within`); keep-alive off, so the connection closes after its answer.
    served.as_mut().graceful_shutdown();
    if let Err(e) = served.await {
        tracing::debug!("api: connection ended: {e}");
    }
}

/// Counts one request as in flight while it lives.
struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(count))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads the whole request body (at most [`MAX_BODY_BYTES`]) within `limit` before the route
/// runs: a client trickling its body is answered 408 and its connection closed, instead of
/// holding a connection slot for as long as it likes (or delaying a shutdown: once `stopping`,
/// a body still arriving is answered 503). Handlers then find the body in memory, as they would
/// have read it whole anyway.
async fn read_body_within(
    State((limit, mut stopping)): State<(std::time::Duration, tokio::sync::watch::Receiver<bool>)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    let read = tokio::select! {
        read = tokio::time::timeout(limit, limited.collect()) => read,
        Ok(_) = stopping.wait_for(|s| *s) => {
            let mut resp = ApiError::ShuttingDown.into_response();
            resp.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return resp;
        }
    };
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return ApiError::TooLarge(format!(
                "request body is larger than the limit of {MAX_BODY_BYTES} bytes"
            ))
            .into_response();
        }
        Ok(Err(e)) => {
            return ApiError::BadJson(format!("cannot read the request body: {e}")).into_response();
        }
        Err(_) => {
            tracing::warn!(
                "api: request body not received within {limit:?}; closing the connection"
            );
            let mut resp = ApiError::Timeout(format!(
                "the request body did not arrive within {} seconds",
                limit.as_secs_f64()
            ))
            .into_response();
            resp.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return resp;
        }
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|rejection| {
        ApiError::InvalidField(format!("bad query string: {}", rejection.body_text()))
    })
}

/// The `{id}` of a path; anything but a positive integer (including invalid UTF-8 after
/// percent-decoding) names no message.
fn message_id(raw: Result<UrlPath<String>, PathRejection>) -> Result<MessageId, ApiError> {
    let UrlPath(raw) =
        raw.map_err(|_| ApiError::NotFound("no message with such an id".to_owned()))?;
    raw.parse::<MessageId>()
        .ok()
        .filter(|id| id.0 > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no message with id {raw:?}")))
}

fn page(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n @ 1..=MAX_PAGE) => Ok(n),
        Some(n) => Err(ApiError::InvalidField(format!(
            "limit: must be between 1 and {MAX_PAGE}, got {n}"
        ))),
    }
}

/// The shape checks of a send request; recipients themselves are the backend's to judge.
pub fn check_send_request(req: &SendRequest) -> Result<(), ApiError> {
    if req.to.is_empty() {
        return Err(ApiError::InvalidField(
            "to: at least one recipient is required".into(),
        ));
    }
    if req.to.len() > MAX_RECIPIENTS {
        return Err(ApiError::InvalidField(format!(
            "to: at most {MAX_RECIPIENTS} recipients per request, got {}",
            req.to.len()
        )));
    }
    if req.text.trim().is_empty() {
        return Err(ApiError::InvalidField("text: must not be empty".into()));
    }
    let chars = req.text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(ApiError::InvalidField(format!(
            "text: at most {MAX_TEXT_CHARS} characters, got {chars}"
        )));
    }
    if let Some(validity) = req.validity {
        let secs = validity.as_secs();
        if !(300..=MAX_VALIDITY_SECS).contains(&secs) {
            return Err(ApiError::InvalidField(format!(
                "validity: must be between 5 minutes and 63 weeks, got {validity:#}"
            )));
        }
    }
    Ok(())
}

async fn submit<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    let req: SendRequest = json_body(body)?;
    check_send_request(&req)?;
    let caller = act_for(caller, req.account.as_deref())?;
    if caller.account.is_none() {
        return Err(ApiError::InvalidField(
            "account: this caller has no account of its own; name one with \"account\"".into(),
        ));
    }
    let recipients = req.to.len();
    let first = req
        .to
        .first()
        .map(|n| crate::number::mask(n))
        .unwrap_or_default();
    let resp = state.backend.submit(caller.clone(), req).await?;
    tracing::info!(
        uid = caller.uid,
        account = caller.account.as_deref().unwrap_or(""),
        "api: accepted {} of {recipients} recipients (first {first}), {} parts each",
        resp.ids.len(),
        resp.parts
    );
    Ok((StatusCode::ACCEPTED, Json(resp)).into_response())
}

async fn get_message<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
    q: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    let caller = act_for(caller, query(q)?.account.as_deref())?;
    let id = message_id(id)?;
    Ok(Json(state.backend.get(caller, id).await?).into_response())
}

async fn list<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    let mut q = query(q)?;
    q.limit = Some(page(q.limit)?);
    let caller = act_for(caller, q.account.as_deref())?;
    Ok(Json(state.backend.list(caller, q).await?).into_response())
}

async fn cancel<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
    q: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    let caller = act_for(caller, query(q)?.account.as_deref())?;
    let id = message_id(id)?;
    let view = state.backend.cancel(caller.clone(), id).await?;
    tracing::info!(uid = caller.uid, "api: cancelled message {id}");
    Ok(Json(view).into_response())
}

async fn retry<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    if !caller.admin {
        return Err(ApiError::Forbidden(format!(
            "uid {}: retrying a message is for admins only (a retry may send a duplicate SMS)",
            caller.uid
        )));
    }
    let id = message_id(id)?;
    let view = state.backend.retry(caller.clone(), id).await?;
    tracing::info!(uid = caller.uid, "api: retry of message {id} requested");
    Ok(Json(view).into_response())
}

async fn settle<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    id: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    refuse_if_shutting_down(&state)?;
    if !caller.admin {
        return Err(ApiError::Forbidden(format!(
            "uid {}: settling a message is for admins only (it decides what the account pays)",
            caller.uid
        )));
    }
    let id = message_id(id)?;
    let req: SettleRequest = json_body(body)?;
    let view = state.backend.settle(caller.clone(), id, req.sent).await?;
    tracing::info!(
        uid = caller.uid,
        sent = req.sent,
        "api: message {id} settled by an operator"
    );
    Ok(Json(view).into_response())
}

async fn gateways<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    Ok(Json(state.backend.gateways(caller).await?).into_response())
}

async fn modems<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    Ok(Json(state.backend.modems(caller).await?).into_response())
}

async fn inbox<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    q: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    let mut q = query(q)?;
    q.limit = Some(page(q.limit)?);
    let caller = act_for(caller, q.account.as_deref())?;
    Ok(Json(state.backend.inbox(caller, q).await?).into_response())
}

async fn health<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    Ok(Json(state.backend.health(caller).await?).into_response())
}

async fn metrics<B: Backend>(
    State(state): State<ApiState<B>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, peer).await?;
    let text = state.backend.metrics(caller).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `?account=` on single-message routes.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountQuery {
    account: Option<String>,
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(to: usize, text: &str) -> SendRequest {
        SendRequest {
            to: vec!["13912345678".into(); to],
            text: text.into(),
            report: true,
            validity: None,
            not_before: None,
            priority: Default::default(),
            account: None,
            sender: None,
        }
    }

    #[test]
    fn shape_limits() {
        assert!(check_send_request(&request(1, "hi")).is_ok());
        assert!(check_send_request(&request(MAX_RECIPIENTS, "hi")).is_ok());
        assert_eq!(
            check_send_request(&request(0, "hi")).unwrap_err().status(),
            400
        );
        let err = check_send_request(&request(MAX_RECIPIENTS + 1, "hi")).unwrap_err();
        assert!(err.to_string().contains("10001"), "{err}");
        assert!(check_send_request(&request(1, "  ")).is_err());
        assert!(check_send_request(&request(1, &"短".repeat(MAX_TEXT_CHARS))).is_ok());
        assert!(check_send_request(&request(1, &"短".repeat(MAX_TEXT_CHARS + 1))).is_err());
        let mut r = request(1, "hi");
        r.validity = Some(jiff::SignedDuration::from_secs(60));
        assert!(check_send_request(&r).is_err());
        r.validity = Some(jiff::SignedDuration::from_hours(24));
        assert!(check_send_request(&r).is_ok());
    }

    #[test]
    fn ids_and_pages() {
        let id = |s: &str| message_id(Ok(UrlPath(s.to_owned())));
        assert_eq!(id("42").unwrap(), MessageId(42));
        assert_eq!(id("0").unwrap_err().status(), 404);
        assert_eq!(id("x'; drop").unwrap_err().status(), 404);
        assert_eq!(page(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page(Some(0)).unwrap_err().status(), 400);
        assert_eq!(page(Some(MAX_PAGE + 1)).unwrap_err().status(), 400);
    }
}
