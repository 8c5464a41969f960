//! Test support (feature `testing`): the payments service on a random port against a
//! brand-new database, next to a real in-process auth service (its own database) whose
//! tokens and internal user endpoint payments uses. Also used by the bench.

use std::net::SocketAddr;

use payplane_auth::testing::TestApp as AuthApp;
use payplane_kit::service::testing::{TestService, TestServiceError};

use crate::{AppState, Config, app::StartError};

/// A running payments service (address, state, stop) with its database and its auth service.
pub struct TestApp {
    pub auth: AuthApp,
    app: TestService<AppState>,
}

pub type TestAppError = TestServiceError<StartError>;

impl TestApp {
    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.app.stop().await;
    }

    /// Fresh auth and payments, simulator on (fast poll), no relay or consumer.
    pub async fn spawn() -> Result<Self, TestAppError> {
        Self::spawn_with(|_| {}, |_| {}).await
    }

    pub async fn spawn_with(
        tweak_auth: impl FnOnce(&mut payplane_auth::Config),
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, TestAppError> {
        let auth = AuthApp::spawn_with(tweak_auth)
            .await
            .map_err(|e| TestServiceError::Peer("auth", e.into()))?;
        let config = |db: &str| Config::for_tests(db, &auth.base_url);
        let app = TestService::start(config, tweak).await?;
        Ok(Self { auth, app })
    }

    /// Restarts on the same database (simulator restart tests).
    pub async fn restart(self, tweak: impl FnOnce(&mut Config)) -> Result<Self, TestAppError> {
        let mut config = (*self.state.config).clone();
        config.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        tweak(&mut config);
        let app = self.app.restart(config).await?;
        Ok(Self { app, ..self })
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestService<AppState>;

    fn deref(&self) -> &TestService<AppState> {
        &self.app
    }
}
