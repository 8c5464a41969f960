//! Test support (feature `testing`): the admin service on a random port against a brand-new
//! database that is dropped afterwards, so tests run in parallel on the real PostgreSQL,
//! RabbitMQ (a per-test vhost) and Redis.

use std::net::SocketAddr;

use payplane_db::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

use crate::{AppState, Application, Config, MIGRATOR, app::StartError};

/// A running admin service.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: AppState,
    pub db: TestDatabase,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
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
        let app = Application::build(config).await?;
        let addr = app
            .local_addr()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let state = app.state().clone();
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(async move {
            if let Err(e) = app.run_until_stopped().await {
                tracing::error!(error = %e, "test admin service stopped with an error");
            }
        });
        Ok(Self {
            addr,
            base_url: format!("http://{addr}"),
            state,
            db,
            shutdown,
            task: Some(task),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
