//! The API's listener: a tokio `UnixListener` that reads each connection's peer credentials once,
//! at accept, and caps connections in total and per uid, so that one local user (mapped or not)
//! can neither exhaust the daemon's file descriptors, which the modem ports and the database
//! need too, nor crowd the other users out of the API.
//!
//! What must always hold: a connection over its uid's cap is closed at once, before any byte is
//! read; the total cap makes the listener stop accepting (connections wait in the kernel's
//! backlog) rather than fail; every slot is given back when its connection is dropped, however
//! it ends; and a connection cannot hold its slot by sending slowly or not at all, because the
//! server bounds the time for a request's headers (and for an idle kept-alive connection) and
//! for its body ([`ConnectionLimits::header_timeout`], [`ConnectionLimits::body_timeout`]).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::access::PeerCredentials;

/// How long a client may take to send a request's headers, counted from the moment the server
/// waits for them (so also how long an idle kept-alive connection is kept).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body once its headers are in. Bodies are at
/// most `MAX_BODY_BYTES` (a 10,000-recipient batch), seconds of transfer even on a slow box.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections the API holds open at once, and how long a slow client may hold one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_uid: usize,
    /// See [`HEADER_TIMEOUT`]; the connection is closed when it passes.
    pub header_timeout: Duration,
    /// See [`BODY_TIMEOUT`]; the request is answered 408 and the connection closed.
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// Far above what the CLI and a provider's platform need (one connection per request), far
    /// below a process's usual 1024 file descriptors; a client that sends one byte a minute
    /// (slow-loris) loses its connection after seconds, not never.
    fn default() -> Self {
        ConnectionLimits {
            total: 256,
            per_uid: 64,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
        }
    }
}

/// Open connections per uid; shared by the listener and the connections' guards.
type UidCounts = Arc<Mutex<HashMap<u32, usize>>>;

/// A Unix listener with connection caps; serve it with [`super::serve_with`].
pub struct ApiListener {
    inner: UnixListener,
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    per_uid: UidCounts,
}

impl ApiListener {
    pub fn new(inner: UnixListener, limits: ConnectionLimits) -> ApiListener {
        ApiListener {
            inner,
            limits,
            slots: Arc::new(Semaphore::new(limits.total.max(1))),
            per_uid: Arc::default(),
        }
    }

    /// Takes a slot for `uid`, or `None` when the uid is at its cap.
    fn admit(&self, uid: u32) -> Option<UidSlot> {
        let mut counts = self.per_uid.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(uid).or_insert(0);
        if *n >= self.limits.per_uid.max(1) {
            return None;
        }
        *n += 1;
        Some(UidSlot {
            uid,
            counts: Arc::clone(&self.per_uid),
        })
    }
}

/// One uid's connection slot, given back on drop.
struct UidSlot {
    uid: u32,
    counts: UidCounts,
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}

/// An accepted connection: the stream, its credentials, and the slots it holds.
pub struct Connection {
    stream: UnixStream,
    peer: Option<PeerCredentials>,
    _slot: Option<UidSlot>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Connection {
    /// The peer credentials read at accept; `None` if the kernel would not say.
    pub fn peer(&self) -> Option<PeerCredentials> {
        self.peer
    }
}

fn peer_of(stream: &UnixStream) -> Option<PeerCredentials> {
    match stream.peer_cred() {
        Ok(cred) => Some(PeerCredentials {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        }),
        Err(err) => {
            tracing::warn!("api: cannot read peer credentials: {err}");
            None
        }
    }
}

impl axum::serve::Listener for ApiListener {
    type Io = Connection;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Connection, Self::Addr) {
        loop {
            // The semaphore is never closed, so acquiring only fails if that changes; then the
            // total cap is simply not enforced rather than the API stopping.
            let permit = Arc::clone(&self.slots).acquire_owned().await.ok();
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            let peer = peer_of(&stream);
            // Without credentials the request will get 403; it still counts under uid u32::MAX.
            let uid = peer.map_or(u32::MAX, |p| p.uid);
            match self.admit(uid) {
                Some(slot) => {
                    return (
                        Connection {
                            stream,
                            peer,
                            _slot: Some(slot),
                            _permit: permit,
                        },
                        addr,
                    )
                }
                None => {
                    tracing::warn!(
                        uid,
                        "api: uid has {} connections open already; closing a new one",
                        self.limits.per_uid
                    );
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
