//! Test support (feature `testing`): the payments service on a random port against a
//! brand-new database, next to a real in-process auth service (its own database) whose
//! tokens and internal user endpoint payments uses. Also used by the bench.

use std::net::SocketAddr;

use payplane_auth::testing::TestApp as AuthApp;
use payplane_db::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

use crate::{AppState, Application, Config, MIGRATOR, app::StartError};

/// A running payments service with its auth service.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: AppState,
    pub db: TestDatabase,
    pub auth: AuthApp,
    shutdown: StopOnDrop,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Stops the service when the test app goes away, also when a test fails.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestAppError {
    #[error(transparent)]
    Db(#[from] payplane_db::DbError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Auth(#[from] payplane_auth::testing::TestAppError),
}

impl TestApp {
    /// Fresh auth and payments, simulator on (fast poll), no relay or consumer.
    pub async fn spawn() -> Result<Self, TestAppError> {
        Self::spawn_with(|_| {}, |_| {}).await
    }

    pub async fn spawn_with(
        tweak_auth: impl FnOnce(&mut payplane_auth::Config),
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, TestAppError> {
        let auth = AuthApp::spawn_with(tweak_auth).await?;
        let db = TestDatabase::create(&MIGRATOR).await?;
        let mut config = Config::for_tests(&db.url, &auth.base_url);
        tweak(&mut config);
        let app = Application::build(config).await?;
        Ok(Self::run(app, db, auth))
    }

    /// Restarts on the same database (simulator restart tests).
    pub async fn restart(mut self, tweak: impl FnOnce(&mut Config)) -> Result<Self, TestAppError> {
        self.shutdown.0.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let mut config = (*self.state.config).clone();
        config.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        tweak(&mut config);
        let app = Application::build(config).await?;
        let Self { db, auth, .. } = self;
        Ok(Self::run(app, db, auth))
    }

    fn run(app: Application, db: TestDatabase, auth: AuthApp) -> Self {
        let addr = app
            .local_addr()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let state = app.state().clone();
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(async move {
            if let Err(e) = app.run_until_stopped().await {
                tracing::error!(error = %e, "test payments service stopped with an error");
            }
        });
        Self {
            addr,
            base_url: format!("http://{addr}"),
            state,
            db,
            auth,
            shutdown: StopOnDrop(shutdown),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.0.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
