//! `smsgate web`: the network front end. Its own process (own user, own systemd unit), with
//! the network API under `/api/v1/...` on `web.listen` (TLS with rustls, or plain HTTP on
//! loopback or behind a proxy). It holds no database and no device: every request goes to the
//! daemon's Unix-socket API, as a front end (the daemon's `frontends`), which checks the API key
//! (`POST /v1/keys/verify`) and then acts for that key's account only.
//!
//! Files: `console/` (the customer console's HTML pages on the same listener), `routes.rs`
//! (the network API's forwarded routes, key check, OpenAPI document), `limit.rs` (the
//! per-account rate), `tls.rs` (certificate and key), `push.rs` (webhooks: the daemon's outbox
//! POSTed, signed, to the accounts' URLs).
//!
//! What must always hold: a non-loopback listener speaks TLS unless `web.insecure_http` says a
//! proxy does (the configuration refuses otherwise); no key, password or full phone number is
//! logged at info level; a slow or silent client cannot hold a connection (header and TLS
//! handshake timeouts, body timeout in `routes.rs`); at most [`DAEMON_CALLS`] calls to the
//! daemon are in flight, below the daemon's connection cap per uid, so a burst waits here
//! instead of being refused there.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::client::ApiClient;
use crate::config::Config;

pub mod console;
pub mod limit;
pub mod push;
pub mod routes;
pub mod tls;

/// Calls to the daemon in flight at once (its cap is 64 connections per uid).
pub const DAEMON_CALLS: usize = 32;

/// Refused keys (401/403) a client address may present per second; beyond, its requests get
/// 429 without reaching the daemon, so a flood of guesses costs the daemon nothing.
pub const FAILED_KEYS_PER_SECOND: u32 = 5;

/// Open client connections at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

/// A client has this long to complete the TLS handshake, and then to send its headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of starting the web process.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What every request shares: the daemon client, the rate limiter.
pub struct Web {
    pub(crate) client: ApiClient,
    pub(crate) limiter: limit::RateLimiter,
    pub(crate) rate: u32,
    /// Refused keys per client address ([`FAILED_KEYS_PER_SECOND`]).
    pub(crate) failures: limit::RateLimiter,
    calls: tokio::sync::Semaphore,
}

impl Web {
    /// A front end of the daemon at `socket`, allowing `rate_per_second` requests per account.
    pub fn new(client: ApiClient, rate_per_second: u32) -> Web {
        Web {
            client,
            limiter: limit::RateLimiter::new(rate_per_second),
            rate: rate_per_second.max(1),
            failures: limit::RateLimiter::new(FAILED_KEYS_PER_SECOND),
            calls: tokio::sync::Semaphore::new(DAEMON_CALLS),
        }
    }

    /// One of the [`DAEMON_CALLS`] slots, held for one call to the daemon.
    pub(crate) async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed; `None` would only mean no limit.
        self.calls.acquire().await.ok()
    }
}

/// Binds `web.listen` and serves until `shutdown` completes.
pub async fn run(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let addr = config.web.listen_addr().map_err(WebError::Config)?;
    let acceptor = match (&config.web.tls_cert, &config.web.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(WebError::Tls)?),
        _ => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let local = listener.local_addr()?;
    tracing::info!(
        "web: network API on {}://{local}/api/v1/ (daemon socket {})",
        if acceptor.is_some() { "https" } else { "http" },
        config.socket.display()
    );
    let web = Arc::new(Web::new(
        ApiClient::new(&config.socket),
        config.web.rate_per_second,
    ));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let pusher = tokio::spawn(push::run(ApiClient::new(&config.socket), stopping));
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    serve(listener, acceptor, web, shutdown).await?;
    pusher.abort();
    Ok(())
}

/// Serves the network API on `listener` (TLS when `acceptor` is given) until `shutdown`
/// completes; then stops accepting and gives requests in flight 10 seconds to finish.
pub async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    web: Arc<Web>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The network API keeps its own JSON fallback for unknown paths; the console adds its
    // pages beside it (it has no fallback of its own, so the merge cannot conflict).
    let app = routes::router(Arc::clone(&web)).merge(console::router(web, acceptor.is_some()));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept(), if open.load(Ordering::SeqCst) < MAX_CONNECTIONS => {
                match accepted {
                    Ok((tcp, addr)) => {
                        let _ = tcp.set_nodelay(true);
                        let guard = Open::new(&open);
                        connections.spawn(connection(
                            tcp,
                            addr,
                            acceptor.clone(),
                            app.clone(),
                            stopping.clone(),
                            guard,
                        ));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: wait rather than spin.
                        tracing::warn!("web: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("web: shutting down, finishing requests in flight");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Counts an open connection while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: &Arc<AtomicUsize>) -> Open {
        count.fetch_add(1, Ordering::SeqCst);
        Open(Arc::clone(count))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    app: Router,
    stopping: tokio::sync::watch::Receiver<bool>,
    _open: Open,
) {
    match acceptor {
        None => http(tcp, addr, app, stopping).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => http(stream, addr, app, stopping).await,
                Ok(Err(e)) => tracing::debug!(client = %addr.ip(), "web: TLS handshake: {e}"),
                Err(_) => tracing::debug!(client = %addr.ip(), "web: TLS handshake timed out"),
            }
        }
    }
}

/// HTTP/1.1 on one connection; the handlers find the client's address in `ConnectInfo`.
async fn http<IO>(
    io: IO,
    addr: SocketAddr,
    app: Router,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use hyper::service::Service as _;
    let inner = hyper_util::service::TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |mut req: axum::http::Request<_>| {
        req.extensions_mut().insert(ConnectInfo(addr));
        inner.call(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let mut served =
        std::pin::pin!(builder.serve_connection(hyper_util::rt::TokioIo::new(io), service));
    tokio::select! {
        result = served.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("web: connection ended: {e}");
            }
            return;
        }
        _ = stopping.wait_for(|s| *s) => {}
    }
    served.as_mut().graceful_shutdown();
    if let Err(e) = served.await {
        tracing::debug!("web: connection ended: {e}");
    }
}
