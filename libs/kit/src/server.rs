//! Serving a router with the contract's edge rules (trailing slash ignored, peer address known)
//! and graceful shutdown: stop accepting on SIGTERM/SIGINT, let in-flight requests finish
//! within a grace period.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::Request};
use tokio::{net::TcpListener, sync::Notify};
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

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
    let make = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
    let signalled = Arc::new(Notify::new());
    let notify = signalled.clone();
    let server = axum::serve(listener, make).with_graceful_shutdown(async move {
        shutdown.await;
        notify.notify_one();
    });
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => res,
        () = async { signalled.notified().await; tokio::time::sleep(grace).await; } => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing remaining connections");
            Ok(())
        }
    }
}
