//! A service running inside a test (feature `testing`): on its bound address, stopped by its
//! token when the test ends or drops it. Each service's `TestApp` adds only its own fixtures
//! (a fresh database, a vhost, peers).

use std::{fmt::Display, future::Future, net::SocketAddr};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Service, ServiceState};
use crate::server::Bound;

/// A spawned service: where it listens, its state, and how to stop it.
pub struct Running<S> {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: S,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl<S> Running<S> {
    /// Spawns `run` (the service's `run_until_stopped`) for a service bound at `addr` with
    /// `state`, stopped by `shutdown`.
    pub fn spawn<E: Display>(
        name: &'static str,
        addr: Option<SocketAddr>,
        state: S,
        shutdown: CancellationToken,
        run: impl Future<Output = Result<(), E>> + Send + 'static,
    ) -> Self {
        let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let task = tokio::spawn(async move {
            if let Err(e) = run.await {
                tracing::error!(error = %e, "test {name} service stopped with an error");
            }
        });
        Self {
            addr,
            base_url: format!("http://{addr}"),
            state,
            shutdown,
            task: Some(task),
        }
    }

    /// Runs a built [`ServiceState`] service: its address, a clone of its state, its token.
    pub fn start(app: Bound<S>) -> Self
    where
        S: ServiceState + Clone,
    {
        let (addr, state, shutdown) = (app.local_addr(), app.state().clone(), app.shutdown_token());
        Self::spawn(S::NAME, addr, state, shutdown, app.run_until_stopped())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The token that stops it (for a test that stops it itself mid-way).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl<S> Drop for Running<S> {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
