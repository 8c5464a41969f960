//! Serving a router with the contract's edge rules (trailing slash ignored, peer address known)
//! and graceful shutdown: stop accepting on SIGTERM/SIGINT, let in-flight requests finish
//! within a grace period. Connections are served by [`http::serve_http`] (header-read and
//! idle timeouts).

pub mod http;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// The listen address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding LISTEN_ADDR {addr}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// A service's state bound to its listen address, with the token that stops it: what every
/// service's `Application` is (tests and the dev runner read the address and the state, and
/// cancel the token, before and while it runs).
pub struct Bound<S> {
    listener: TcpListener,
    state: S,
    shutdown: CancellationToken,
}

impl<S> Bound<S> {
    pub async fn bind(addr: SocketAddr, state: S) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        Ok(Self {
            listener,
            state,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn state(&self) -> &S {
        &self.state
    }

    /// Cancelling it stops the service gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn into_parts(self) -> (TcpListener, S, CancellationToken) {
        (self.listener, self.state, self.shutdown)
    }
}

/// Serves until SIGINT/SIGTERM or `shutdown` is cancelled, with the default grace period, then
/// cancels `shutdown` so the service's background tasks stop too.
pub async fn serve_until_stopped(
    listener: TcpListener,
    router: Router,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let stop = shutdown.clone();
    let signal = async move {
        tokio::select! {
            () = shutdown_signal() => {},
            () = stop.cancelled() => {},
        }
    };
    let res = serve(listener, router, signal, DEFAULT_GRACE).await;
    shutdown.cancel();
    res
}

/// How long in-flight requests may run after a shutdown signal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(20);

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// Serves until `shutdown` resolves, then waits at most `grace` for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    // Outside the router so that `/api/payments/` is routed as `/api/payments`.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router);
    let signalled = Arc::new(Notify::new());
    let notify = signalled.clone();
    // Without TCP_NODELAY a response body written after its headers waits for the client's
    // delayed ACK: ~40 ms per request on a kept-alive connection (found by bench console).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    let server = http::serve_http(listener, app, |peer: &SocketAddr| *peer, async move {
        shutdown.await;
        notify.notify_one();
    });
    tokio::pin!(server);
    tokio::select! {
        () = &mut server => Ok(()),
        () = async { signalled.notified().await; tokio::time::sleep(grace).await; } => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing remaining connections");
            Ok(())
        }
    }
}
