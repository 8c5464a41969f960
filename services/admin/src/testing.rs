//! Test support (feature `testing`): the admin service on a random port against a brand-new
//! database that is dropped afterwards, so tests run in parallel on the real PostgreSQL,
//! RabbitMQ (a per-test vhost) and Redis.

use payplane_db::testing::TestDatabase;
use payplane_kit::service::{Service as _, testing::Running};

use crate::{AppState, Application, Config, MIGRATOR, app::StartError};

/// A running admin service (address, state, stop) with its own database.
pub struct TestApp {
    pub db: TestDatabase,
    running: Running<AppState>,
}

impl std::ops::Deref for TestApp {
    type Target = Running<AppState>;

    fn deref(&self) -> &Running<AppState> {
        &self.running
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestAppError {
    #[error(transparent)]
    Db(#[from] payplane_db::DbError),
    #[error(transparent)]
    Start(#[from] StartError),
}

impl TestApp {
    /// Admin against `auth_url`, publishing to and consuming from `amqp_url`'s vhost.
    pub async fn spawn(auth_url: &str, amqp_url: &str) -> Result<Self, TestAppError> {
        Self::spawn_with(auth_url, amqp_url, |_| {}).await
    }

    pub async fn spawn_with(
        auth_url: &str,
        amqp_url: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, TestAppError> {
        let db = TestDatabase::create(&MIGRATOR).await?;
        let mut config = Config::for_tests(&db.url, auth_url, amqp_url);
        tweak(&mut config);
        let running = Running::start(Application::build(config).await?);
        Ok(Self { db, running })
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}
