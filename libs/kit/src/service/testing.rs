//! A service running inside a test (feature `testing`): on its bound address, stopped by its
//! token when the test ends or drops it, and (a [`ServiceState`] service) on a brand-new
//! database of its own, dropped afterwards. Each service's `TestApp` adds only its own
//! fixtures (its test configuration, a vhost, peers).

use std::{error::Error as StdError, fmt::Display, future::Future, net::SocketAddr, ops::Deref};

use payplane_db::testing::TestDatabase;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod http;

use super::{BoxError, Service, ServiceState};
use crate::server::Bound;

/// A [`ServiceState`] service running on a brand-new database of its own: address, state
/// and stop through [`Running`], the database as `db`.
pub struct TestService<S> {
    pub db: TestDatabase,
    running: Running<S>,
}

/// Why a service could not be started for a test.
#[derive(Debug, thiserror::Error)]
pub enum TestServiceError<E: StdError + 'static> {
    #[error("the {0} service has no migrations to make a test database with")]
    NoDatabase(&'static str),
    #[error(transparent)]
    Db(#[from] payplane_db::DbError),
    #[error(transparent)]
    Start(E),
    #[error("starting the {0} service it runs beside")]
    Peer(&'static str, #[source] BoxError),
    #[error("{0}")]
    NotReady(&'static str),
}

impl<S: ServiceState + Clone> TestService<S> {
    /// Creates its database, takes `config` for the database's URL with `tweak` applied, then
    /// builds and runs the service.
    pub async fn start(
        config: impl FnOnce(&str) -> S::Config,
        tweak: impl FnOnce(&mut S::Config),
    ) -> Result<Self, TestServiceError<S::Error>> {
        let migrator = S::MIGRATOR.ok_or(TestServiceError::NoDatabase(S::NAME))?;
        let db = TestDatabase::create(migrator).await?;
        let mut config = config(&db.url);
        tweak(&mut config);
        Self::run(db, config).await
    }

    /// Stops it, then starts it again on the same database with `config`.
    pub async fn restart(mut self, config: S::Config) -> Result<Self, TestServiceError<S::Error>> {
        self.running.stop().await;
        Self::run(self.db, config).await
    }

    async fn run(db: TestDatabase, config: S::Config) -> Result<Self, TestServiceError<S::Error>> {
        let app = Bound::<S>::build(config)
            .await
            .map_err(TestServiceError::Start)?;
        let running = Running::start(app);
        Ok(Self { db, running })
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}

impl<S> Deref for TestService<S> {
    type Target = Running<S>;

    fn deref(&self) -> &Running<S> {
        &self.running
    }
}

/// A spawned service: where it listens, its state, and how to stop it.
pub struct Running<S> {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: S,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl<S> Running<S> {
    /// Spawns `run` (the service's `run_until_stopped`) for a service bound at `addr` with
    /// `state`, stopped by `shutdown`.
    pub fn spawn<E: Display>(
        name: &'static str,
        addr: Option<SocketAddr>,
        state: S,
        shutdown: CancellationToken,
        run: impl Future<Output = Result<(), E>> + Send + 'static,
    ) -> Self {
        let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let task = tokio::spawn(async move {
            if let Err(e) = run.await {
                tracing::error!(error = %e, "test {name} service stopped with an error");
            }
        });
        Self {
            addr,
            base_url: format!("http://{addr}"),
            state,
            shutdown,
            task: Some(task),
        }
    }

    /// Runs a built [`ServiceState`] service: its address, a clone of its state, its token.
    pub fn start(app: Bound<S>) -> Self
    where
        S: ServiceState + Clone,
    {
        let (addr, state, shutdown) = (app.local_addr(), app.state().clone(), app.shutdown_token());
        Self::spawn(S::NAME, addr, state, shutdown, app.run_until_stopped())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The token that stops it (for a test that stops it itself mid-way).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl<S> Drop for Running<S> {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
