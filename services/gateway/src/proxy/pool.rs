//! Keep-alive HTTP/1.1 connections to one upstream, kept per thread for the proxy's hot path.
//!
//! Why not hyper-util's pooled client (used until December 2026): its checkout hashes the pool
//! key with SipHash under a mutex, wraps each connection in a `Pooled` guard and spawns one
//! task per request that puts the connection back once it is idle — about 8,000 of a proxied
//! request's 74,000 instructions under callgrind. Here each thread keeps a plain stack of idle
//! senders per upstream. A sender goes back on the stack when its response body has been read
//! to the end ([`PooledBody`]); the next checkout waits for that connection's readiness itself,
//! which is immediate once the connection task has seen the end of the response.

use std::{
    cell::RefCell,
    pin::Pin,
    sync::atomic::{AtomicU32, Ordering},
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, uri::Authority};
use hyper::{
    body::{Body as HttpBody, Frame, Incoming, SizeHint},
    client::conn::http1::SendRequest,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections kept per upstream and thread; beyond that a connection closes when its
/// response ends (the same bound the shared client had).
const MAX_IDLE: usize = 256;

/// TCP keep-alive probes start after this much silence, so a vanished peer is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

thread_local! {
    /// This thread's idle connections, by upstream id. A handful of upstreams: a linear scan
    /// beats hashing.
    static IDLE: RefCell<Vec<(u32, Vec<SendRequest<Body>>)>> = const { RefCell::new(Vec::new()) };
}

/// Why a request got no response from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connecting timed out")]
    ConnectTimeout,
    #[error("connecting failed")]
    Connect(#[source] std::io::Error),
    #[error("the request failed")]
    Request(#[source] hyper::Error),
}

impl SendError {
    /// Whether the upstream could not be reached at all (what the circuit breaker counts).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::ConnectTimeout | Self::Connect(_))
    }
}

/// Where one upstream listens, and the thread-local pools' key for it.
#[derive(Debug)]
pub struct Target {
    id: u32,
    host: String,
    port: u16,
    connect_timeout: Duration,
}

impl Target {
    pub fn new(authority: &Authority, connect_timeout: Duration) -> Self {
        static NEXT_ID: AtomicU32 = AtomicU32::new(0);
        // `[::1]` is how an authority writes an IPv6 address; the resolver wants it bare.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            connect_timeout,
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) on an idle connection of this thread, or on a
    /// new one. A reused connection that the upstream closed while it sat idle hands the
    /// request back unsent, and the next connection takes it.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut sender, reused) = match self.checkout().await {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let (parts, inner) = res.into_parts();
                    let body = PooledBody {
                        inner,
                        sender: Some(sender),
                        id: self.id,
                    };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(SendError::Request(err.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open. Its last response ended, so
    /// `ready` resolves as soon as its connection task has run.
    async fn checkout(&self) -> Option<SendRequest<Body>> {
        while let Some(mut sender) = IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            idle.iter_mut()
                .find(|(id, _)| *id == self.id)
                .and_then(|(_, senders)| senders.pop())
        }) {
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| SendError::ConnectTimeout)?
        .map_err(SendError::Connect)?;
        // Small requests and answers must not wait for Nagle's algorithm.
        stream.set_nodelay(true).map_err(SendError::Connect)?;
        socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE))
            .map_err(SendError::Connect)?;
        // Flattened writes, as the server side (`kit::server::http`): requests are small.
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Request)?;
        // The connection's task runs on this thread's runtime, like the requests that use it.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// An upstream response body that puts its connection back on this thread's idle stack once it
/// has been read to the end. Dropped earlier, the connection closes with it: HTTP/1.1 cannot
/// reuse a connection with an unread answer on it.
pub struct PooledBody {
    inner: Incoming,
    sender: Option<SendRequest<Body>>,
    id: u32,
}

impl PooledBody {
    fn release(&mut self) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        if sender.is_closed() {
            return;
        }
        // `try_with`: a body dropped while the thread winds down finds no pool, and closes.
        let _ = IDLE.try_with(|idle| {
            let mut idle = idle.borrow_mut();
            let index = if let Some(index) = idle.iter().position(|(id, _)| *id == self.id) {
                index
            } else {
                idle.push((self.id, Vec::new()));
                idle.len() - 1
            };
            let senders = &mut idle[index].1;
            if senders.len() < MAX_IDLE {
                senders.push(sender);
            }
        });
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    /// A server that knows the length stops polling after the last byte instead of asking for
    /// the end, so the end is also recognised here.
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
