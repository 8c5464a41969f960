//! Test support (feature `testing`): the profile service on a random port against a brand-new
//! database that is dropped afterwards and a random Redis key prefix, so tests run in parallel
//! on the real PostgreSQL, Redis and RabbitMQ.

use std::time::Duration;

use payplane_kit::service::testing::{TestService, TestServiceError};

use crate::{AppState, Config, app::StartError};

/// A running profile service (address, state, stop) with its own database.
pub struct TestApp(TestService<AppState>);

pub type TestAppError = TestServiceError<StartError>;

impl TestApp {
    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.0.stop().await;
    }

    /// No relay, no consumer: JWKS from `auth_url`.
    pub async fn spawn(auth_url: &str) -> Result<Self, TestAppError> {
        Self::spawn_with(auth_url, |_| {}).await
    }

    /// Relay and consumer on the vhost of `amqp_url`; returns once the consumer's queue and
    /// bindings exist, so events published afterwards reach it.
    pub async fn spawn_on_bus(auth_url: &str, amqp_url: &str) -> Result<Self, TestAppError> {
        let app = Self::spawn_with(auth_url, |c| {
            amqp_url.clone_into(&mut c.amqp_url);
            c.relay_enabled = true;
            c.consumer_enabled = true;
        })
        .await?;
        app.wait_broker_ready().await?;
        Ok(app)
    }

    pub async fn spawn_with(
        auth_url: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, TestAppError> {
        let config = |db: &str| Config::for_tests(db, auth_url);
        TestService::start(config, tweak).await.map(Self)
    }

    /// Polls `/health/ready` until the broker check is up.
    pub async fn wait_broker_ready(&self) -> Result<(), TestAppError> {
        let url = self.url("/health/ready");
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(res) = reqwest::get(&url).await
                && let Ok(body) = res.json::<serde_json::Value>().await
                && body["data"]["checks"]["broker"] == "up"
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(TestServiceError::NotReady(
            "the profile consumer did not connect to the broker within 10 s",
        ))
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestService<AppState>;

    fn deref(&self) -> &TestService<AppState> {
        &self.0
    }
}
