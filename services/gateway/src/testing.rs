//! Test and bench support: the gateway on a random loopback port with a given configuration,
//! stopped when dropped.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use crate::{AppState, Application, Config, StartError};

/// A running gateway.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: AppState,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), StartError>>>,
}

impl TestGateway {
    pub async fn spawn(config: Config) -> Result<Self, StartError> {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let app = Application::build(config).await?;
        let addr = app
            .local_addr()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let state = app.state().clone();
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(app.run_until_stopped());
        Ok(Self {
            addr,
            base_url: format!("{scheme}://{addr}"),
            state,
            shutdown,
            task: Some(task),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `ws://…/ws` of this gateway.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the gateway (WebSockets get 1001) and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
