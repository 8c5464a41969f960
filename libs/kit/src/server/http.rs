//! The connection loop every payplane server runs (in place of `axum::serve`, which offers no
//! timer): HTTP/1 and HTTP/2 with upgrades (WebSockets), a header-read timeout that also closes
//! idle keep-alive connections, HTTP/2 keep-alive pings, the peer's address as `ConnectInfo`,
//! and a graceful stop that lets in-flight requests finish.

use std::{
    convert::Infallible,
    future::Future,
    task::{Context, Poll, Waker},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    response::Response,
    serve::Listener,
};
use futures::future::Either;
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
};
use tower::{Service, ServiceExt, util::Oneshot};

/// How long a client may take to send a request's headers, and how long a keep-alive
/// connection may sit idle before its next request (hyper starts the same timer for both).
/// A slow-loris client that trickles header bytes is cut off after this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 connections are pinged this often when idle and closed when a ping goes unanswered
/// for as long.
pub const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// The connection builder with the timeouts above.
fn builder() -> Builder<TokioExecutor> {
    builder_with(HEADER_READ_TIMEOUT)
}

fn builder_with(header_read_timeout: Duration) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    // Heads and bodies flattened into one buffer and one `write`, not queued for `writev`:
    // answers are mostly small JSON, where the queue's bookkeeping cost more than copying the
    // body (README, gateway profile table; large streamed bodies pay one more copy).
    b.http1()
        .writev(false)
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEP_ALIVE))
        .keep_alive_timeout(H2_KEEP_ALIVE)
        // WebSockets over HTTP/2 (RFC 8441).
        .enable_connect_protocol();
    b
}

/// Accepts connections from `listener` and serves `app` on each, with `connect_info(peer)`
/// as the `ConnectInfo<C>` extension of every request, until `shutdown` resolves; then stops
/// accepting and waits for open connections to finish their requests (callers bound that
/// wait with their grace period).
pub async fn serve_http<L, S, C>(
    listener: L,
    app: S,
    connect_info: fn(&L::Addr) -> C,
    shutdown: impl Future<Output = ()> + Send,
) where
    L: Listener,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    C: Clone + Send + Sync + 'static,
{
    serve_http_with(listener, app, connect_info, shutdown, builder()).await;
}

async fn serve_http_with<L, S, C>(
    mut listener: L,
    app: S,
    connect_info: fn(&L::Addr) -> C,
    shutdown: impl Future<Output = ()> + Send,
    builder: Builder<TokioExecutor>,
) where
    L: Listener,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    C: Clone + Send + Sync + 'static,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let info = ConnectInfo(connect_info(&peer));
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(info.clone());
            let req = if req.body().is_end_stream() {
                req.map(Body::new)
            } else {
                req.map(|b| Body::new(DrainOnDrop(Some(b))))
            };
            call_when_ready(app.clone(), req)
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::trace!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Calls `app` with `req` right away when it is ready, as every payplane stack always is;
/// only a stack that is not waits in a `Oneshot`. (A `Oneshot` first stores the request and
/// moves it out again on its first poll: two copies of ~240 bytes a request.) Asking without
/// a waker is sound: on `Pending` the `Oneshot` asks again with the task's own.
fn call_when_ready<S>(mut app: S, req: Request) -> Either<S::Future, Oneshot<S, Request>>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    match app.poll_ready(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(())) => Either::Left(app.call(req)),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => Either::Right(app.oneshot(req)),
    }
}

/// At most this much of a request body a handler did not read is still read and discarded
/// after its (early) answer, and for at most [`DRAIN_FOR`].
pub const DRAIN_AT_MOST: usize = 4 * 1024 * 1024;
/// See [`DRAIN_AT_MOST`].
pub const DRAIN_FOR: Duration = Duration::from_secs(5);

/// A request body that, when the handler drops it unread (an early 401, 413 or 415), keeps
/// reading and discarding the rest in the background for a while. Without this the server
/// closes the connection while the client is still sending: the client (a proxy above all)
/// then gets a broken pipe instead of the answer, and the gateway turned a 401 into a 502.
struct DrainOnDrop(Option<Incoming>);

impl http_body::Body for DrainOnDrop {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.0.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(mut body) = self.0.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0_usize;
                while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
                    read += frame.data_ref().map_or(0, bytes::Bytes::len);
                    if read > DRAIN_AT_MOST {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::{Router, routing::get};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::*;

    /// A connection to `addr` that has sent `bytes`.
    async fn sent(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(bytes).await.unwrap();
        c
    }

    async fn start(timeout: Duration) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(serve_http_with(
            listener,
            app,
            |a: &SocketAddr| *a,
            async move {
                let _ = rx.await;
            },
            builder_with(timeout),
        ));
        (addr, tx)
    }

    /// A client that sends half a request head and then nothing is disconnected after the
    /// header-read timeout, without an answer.
    #[tokio::test]
    async fn a_slow_client_is_cut_off_after_the_header_read_timeout() {
        let (addr, _stop) = start(Duration::from_millis(300)).await;
        let mut slow = sent(addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the server closed the connection");
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(
            !String::from_utf8_lossy(&buf).contains("200 OK"),
            "no answer to an incomplete head"
        );
    }

    /// A complete request is answered with the peer address available, and an idle keep-alive
    /// connection is closed after the same timeout.
    #[tokio::test]
    async fn requests_are_served_and_idle_connections_closed() {
        let (addr, _stop) = start(Duration::from_millis(300)).await;
        let mut c = sent(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = [0_u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("127.0.0.1"), "{text}");
        let closed = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0))), "idle connection closed");
    }

    /// A stack that is not ready (here: a concurrency limit of one, held by a request waiting
    /// in its handler) is waited for, and the waiting request is answered once it is ready.
    #[tokio::test]
    async fn a_stack_that_is_not_ready_is_waited_for() {
        let (entered_tx, mut entered) = tokio::sync::mpsc::channel::<()>(1);
        let gate = std::sync::Arc::new(tokio::sync::Notify::new());
        let held = gate.clone();
        let app = Router::new()
            .route(
                "/held",
                get(move || {
                    let (entered_tx, held) = (entered_tx.clone(), held.clone());
                    async move {
                        let _ = entered_tx.send(()).await;
                        held.notified().await;
                        "held"
                    }
                }),
            )
            .route("/", get(|| async { "next" }));
        let app = tower::limit::ConcurrencyLimit::new(app, 1);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_http_with(
            listener,
            app,
            |a: &SocketAddr| *a,
            std::future::pending(),
            builder(),
        ));
        let mut first = sent(addr, b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n").await;
        tokio::time::timeout(Duration::from_secs(5), entered.recv())
            .await
            .expect("the first request reached its handler");
        let mut second = sent(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = [0_u8; 1024];
        let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
        assert!(early.is_err(), "answered while the only permit was held");
        gate.notify_one();
        for (conn, body) in [(&mut first, "held"), (&mut second, "next")] {
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .expect("answered once ready")
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
            assert!(text.ends_with(body), "{text}");
        }
    }

    #[tokio::test]
    async fn shutdown_stops_accepting() {
        let (addr, stop) = start(Duration::from_secs(5)).await;
        stop.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "still accepting");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
