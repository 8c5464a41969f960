//! Test support (feature `testing`): the auth service on a random port against a brand-new
//! database that is dropped afterwards, so tests run in parallel on the real PostgreSQL and
//! Redis. Also used by the CLI's benchmark.

use payplane_kit::service::testing::{TestService, TestServiceError};

use crate::{AppState, Config, app::StartError};

/// A running auth service (address, state, stop) with its own database.
pub struct TestApp(TestService<AppState>);

pub type TestAppError = TestServiceError<StartError>;

impl TestApp {
    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.0.stop().await;
    }

    /// Cheap argon2 parameters, ephemeral key, no relay.
    pub async fn spawn() -> Result<Self, TestAppError> {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Result<Self, TestAppError> {
        TestService::start(Config::for_tests, tweak).await.map(Self)
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestService<AppState>;

    fn deref(&self) -> &TestService<AppState> {
        &self.0
    }
}
