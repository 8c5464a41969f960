//! The operator process around its controllers: the ops endpoints (`/metrics`, `/livez`,
//! `/readyz`) and leader election, so that two replicas are safe (only the Lease holder runs
//! controllers; one that loses the Lease stops them and exits, and Kubernetes restarts it as a
//! standby).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use crate::controller::{self, Ctx};
use crate::metrics::Metrics;

/// Why the operator process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("binding the ops endpoints at {addr}")]
    BindOps {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving the ops endpoints")]
    ServeOps(#[source] std::io::Error),
    #[error("creating the leader-election lease manager")]
    Lease(#[source] kube_lease_manager::LeaseManagerError),
    #[error("the leader-election lease watch ended")]
    LeaseWatchEnded,
    #[error("lost leadership; exiting so that Kubernetes restarts this replica as a standby")]
    LostLeadership,
}

/// `/metrics` (Prometheus text), `/livez`, and `/readyz` (503 until `ready`).
pub fn ops_router(metrics: Arc<Metrics>, ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        )
}

/// Binds `addr` and serves [`ops_router`] until the task is dropped.
pub async fn serve_ops(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<(), ProcessError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ProcessError::BindOps { addr, source })?;
    axum::serve(listener, ops_router(metrics, ready))
        .await
        .map_err(ProcessError::ServeOps)
}

/// Who competes for the Lease.
#[derive(Debug, Clone)]
pub struct Election {
    /// Namespace of the `payplane-operator` Lease.
    pub namespace: String,
    /// This replica (the pod name).
    pub identity: String,
}

/// Runs the controllers while this replica holds the Lease; returns when `shutdown` resolves
/// (Ok) or leadership is lost ([`ProcessError::LostLeadership`]).
pub async fn run_as_leader(
    client: kube::Client,
    election: &Election,
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProcessError> {
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client, "payplane-operator")
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .map_err(ProcessError::Lease)?;
    let (mut leader, lease_task) = manager.watch().await;
    tracing::info!(identity = %election.identity, "waiting for leadership");
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    tokio::select! {
        r = leader.wait_for(|l| *l) => { r.map_err(|_| ProcessError::LeaseWatchEnded)?; }
        () = shutdown.clone() => { return Ok(()); }
    }
    tracing::info!(identity = %election.identity, "became leader; starting controllers");
    let mut lost = leader.clone();
    let lost_leadership = Arc::new(AtomicBool::new(false));
    let flag = lost_leadership.clone();
    // Boxed: seven controllers' state is too large a future for the stack frame.
    Box::pin(controller::run(ctx, async move {
        tokio::select! {
            _ = lost.wait_for(|l| !*l) => { flag.store(true, Ordering::Relaxed); }
            () = shutdown => {}
        }
    }))
    .await;
    drop(leader);
    if let Ok(Ok(manager)) = lease_task.await {
        let _ = manager.release().await;
    }
    if lost_leadership.load(Ordering::Relaxed) {
        return Err(ProcessError::LostLeadership);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    async fn status(router: &Router, path: &str) -> StatusCode {
        let request = Request::get(path).body(Body::empty()).unwrap();
        router.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn readyz_is_503_until_ready_and_livez_always_answers() {
        let ready = Arc::new(AtomicBool::new(false));
        let router = ops_router(Arc::new(Metrics::default()), ready.clone());
        assert_eq!(
            status(&router, "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&router, "/livez").await, StatusCode::OK);
        ready.store(true, Ordering::Relaxed);
        assert_eq!(status(&router, "/readyz").await, StatusCode::OK);
        assert_eq!(status(&router, "/metrics").await, StatusCode::OK);
    }
}
