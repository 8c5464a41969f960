//! Test support (feature `testing`): the payments service on a random port against a
//! brand-new database, next to a real in-process auth service (its own database) whose
//! tokens and internal user endpoint payments uses. Also used by the bench.

use std::net::SocketAddr;

use payplane_auth::testing::TestApp as AuthApp;
use payplane_db::testing::TestDatabase;
use payplane_kit::service::{Service as _, testing::Running};

use crate::{AppState, Application, Config, MIGRATOR, app::StartError};

/// A running payments service (address, state, stop) with its database and its auth service.
pub struct TestApp {
    pub db: TestDatabase,
    pub auth: AuthApp,
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
        self.running.stop().await;
        let mut config = (*self.state.config).clone();
        config.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        tweak(&mut config);
        let app = Application::build(config).await?;
        let Self { db, auth, .. } = self;
        Ok(Self::run(app, db, auth))
    }

    fn run(app: Application, db: TestDatabase, auth: AuthApp) -> Self {
        let running = Running::start(app);
        Self { db, auth, running }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}
