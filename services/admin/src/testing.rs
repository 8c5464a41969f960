//! Test support (feature `testing`): the admin service on a random port against a brand-new
//! database that is dropped afterwards, so tests run in parallel on the real PostgreSQL,
//! RabbitMQ (a per-test vhost) and Redis.

use payplane_kit::service::testing::{TestService, TestServiceError};

use crate::{AppState, Config, app::StartError};

/// A running admin service (address, state, stop) with its own database.
pub struct TestApp(TestService<AppState>);

pub type TestAppError = TestServiceError<StartError>;

impl TestApp {
    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.0.stop().await;
    }

    /// Admin against `auth_url`, publishing to and consuming from `amqp_url`'s vhost.
    pub async fn spawn(auth_url: &str, amqp_url: &str) -> Result<Self, TestAppError> {
        Self::spawn_with(auth_url, amqp_url, |_| {}).await
    }

    pub async fn spawn_with(
        auth_url: &str,
        amqp_url: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, TestAppError> {
        let config = |db: &str| Config::for_tests(db, auth_url, amqp_url);
        TestService::start(config, tweak).await.map(Self)
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestService<AppState>;

    fn deref(&self) -> &TestService<AppState> {
        &self.0
    }
}
