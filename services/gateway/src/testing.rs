//! Test and bench support (feature `testing`): the gateway on a random loopback port with a
//! given configuration, stopped when dropped.

use payplane_kit::service::{Service as _, testing::Running};

use crate::{AppState, Application, Config, StartError};

/// A running gateway (address, state, stop; `https://` base URL when it serves TLS).
pub struct TestGateway {
    running: Running<AppState>,
}

impl std::ops::Deref for TestGateway {
    type Target = Running<AppState>;

    fn deref(&self) -> &Running<AppState> {
        &self.running
    }
}

impl TestGateway {
    pub async fn spawn(config: Config) -> Result<Self, StartError> {
        let tls = config.tls.is_some();
        let app = Application::build(config).await?;
        let (addr, state, shutdown) = (app.local_addr(), app.state().clone(), app.shutdown_token());
        let mut running = Running::spawn("gateway", addr, state, shutdown, app.run_until_stopped());
        if tls {
            running.base_url = format!("https://{}", running.addr);
        }
        Ok(Self { running })
    }

    /// `ws://…/ws` of this gateway.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the gateway (WebSockets get 1001) and waits for it.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}
