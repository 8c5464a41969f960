//! The skeleton every service binary shares: its `main` (telemetry, typed config, the `migrate`
//! sub-command, build, serve until stopped), the Redis connection, and running it in tests.
//!
//! A service implements [`Service`] for its `Application` and keeps only what is its own (its
//! state, routes and background tasks); a fix to start-up or shutdown is made here once.

#[cfg(feature = "redis")]
pub mod cache;
#[cfg(feature = "testing")]
pub mod testing;

use std::{
    error::Error as StdError,
    fmt::{Debug, Display},
    future::Future,
    net::SocketAddr,
    time::Duration,
};

pub use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{ConfigError, Env, ServiceConfig},
    server::{BindError, Bound},
};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a service's binary needs to know of it.
pub trait Service: Sized + Send {
    /// Its name in logs, traces and metrics (`admin`, `payments`, …).
    const NAME: &'static str;
    /// The embedded migrations `<binary> migrate` applies to the config's `database_url`;
    /// `None`: the service has no database.
    const MIGRATOR: Option<&'static Migrator> = None;
    type Config: ServiceConfig;
    type Error: StdError + Send + Sync + 'static;

    /// Reads the typed configuration (errors name the variable).
    fn config(env: &Env) -> Result<Self::Config, ConfigError> {
        Self::Config::from_env(env)
    }

    /// Applies the service's migrations and returns (`<binary> migrate`, the operator's
    /// migration Job): [`Self::MIGRATOR`] on one connection to the config's `database_url`.
    /// `None`: the service has no database.
    fn migrate(config: &Self::Config) -> Option<impl Future<Output = Result<(), BoxError>> + Send> {
        let migrator = Self::MIGRATOR?;
        let url = config.database_url()?.to_owned();
        Some(async move {
            payplane_db::migrate_only(&url, migrator)
                .await
                .map_err(BoxError::from)
        })
    }

    /// Connects what it needs and binds its listen address.
    fn build(config: Self::Config) -> impl Future<Output = Result<Self, Self::Error>> + Send;

    fn local_addr(&self) -> Option<SocketAddr>;

    /// Serves until SIGINT/SIGTERM or its shutdown token, background tasks included.
    fn run_until_stopped(self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A service whose `Application` is its state bound to its listen address (`Bound<Self>`):
/// every service but the gateway, which binds several listeners. It says how its state
/// connects and how it serves; binding, migrating and the rest of [`Service`] are the same
/// for all of them.
pub trait ServiceState: Sized + Send + 'static {
    /// [`Service::NAME`].
    const NAME: &'static str;
    /// [`Service::MIGRATOR`].
    const MIGRATOR: Option<&'static Migrator> = None;
    type Config: ServiceConfig;
    type Error: StdError + From<ServiceError> + Send + Sync + 'static;

    /// Connects what the handlers need (database, cache, peers), before the port is bound.
    fn connect(config: Self::Config) -> impl Future<Output = Result<Self, Self::Error>> + Send;

    /// Serves `bound` until SIGINT/SIGTERM or its shutdown token, background tasks included.
    fn serve(bound: Bound<Self>) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// What fails the same way in every [`ServiceState`] service: reaching its own database or
/// Redis, binding, serving. A service's own error wraps it beside what is its own.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] payplane_db::DbError),
    #[cfg(feature = "redis")]
    #[error("connecting to Redis at REDIS_URL")]
    Redis(#[source] redis::RedisError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
}

impl<S: ServiceState> Service for Bound<S> {
    const NAME: &'static str = S::NAME;
    const MIGRATOR: Option<&'static Migrator> = S::MIGRATOR;
    type Config = S::Config;
    type Error = S::Error;

    async fn build(config: S::Config) -> Result<Self, S::Error> {
        let addr = config.listen_addr();
        let state = S::connect(config).await?;
        Ok(Bound::bind(addr, state).await.map_err(ServiceError::from)?)
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        Bound::local_addr(self)
    }

    fn run_until_stopped(self) -> impl Future<Output = Result<(), S::Error>> + Send {
        S::serve(self)
    }
}

/// Serves `router` on `listener` until SIGINT/SIGTERM or `shutdown`
/// ([`crate::server::serve_until_stopped`]), a failure as [`ServiceError::Serve`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: &CancellationToken,
) -> Result<(), ServiceError> {
    crate::server::serve_until_stopped(listener, router, shutdown)
        .await
        .map_err(ServiceError::Serve)
}

/// Runs `pass` every `period` until `shutdown`, the first time after `first`: a periodic job
/// such as housekeeping. What a pass did (`Some`) is logged at info, a failure as a warning,
/// and the next tick runs again either way.
pub fn spawn_every<F, Fut, T, E>(
    job: &'static str,
    first: Duration,
    period: Duration,
    shutdown: CancellationToken,
    mut pass: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<T>, E>> + Send,
    T: Debug,
    E: Display,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match pass().await {
                Ok(Some(done)) => tracing::info!(?done, "{job} pass"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "{job} failed"),
            }
        }
    })
}

/// A service's housekeeping: `pass` on `pool` every hour until `shutdown`, the first after
/// `first` (as [`spawn_every`]).
pub fn spawn_housekeeping<F, Fut, T, E>(
    job: &'static str,
    first: Duration,
    pool: sqlx::PgPool,
    shutdown: CancellationToken,
    pass: F,
) -> JoinHandle<()>
where
    F: Fn(sqlx::PgPool) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<T>, E>> + Send,
    T: Debug,
    E: Display,
{
    let hour = Duration::from_secs(3600);
    spawn_every(job, first, hour, shutdown, move || pass(pool.clone()))
}

/// Why a service's `main` ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceMainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("starting telemetry")]
    Telemetry(#[source] crate::otel::OtelError),
    #[error("unknown argument {0:?}: expected `serve` (the default) or `migrate`")]
    UnknownCommand(String),
    #[error("the {0} service has no migrations to apply")]
    NoMigrations(&'static str),
    #[error("applying the {0} service's migrations")]
    Migrate(&'static str, #[source] BoxError),
    #[error("starting the {0} service")]
    Start(&'static str, #[source] BoxError),
    #[error("the {0} service stopped with an error")]
    Run(&'static str, #[source] BoxError),
}

/// What a service binary was asked to do: its first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// No argument or `serve` (the operator's Deployments pass `serve`).
    Serve,
    /// `migrate`: apply the migrations and exit (the operator's migration Job).
    Migrate,
}

impl Command {
    /// From the arguments after the program name; anything else is refused, so a typo in a
    /// pod's `args` fails loudly instead of serving.
    pub fn from_args(mut args: impl Iterator<Item = String>) -> Result<Self, ServiceMainError> {
        let command = match args.next().as_deref() {
            None | Some("serve") => Self::Serve,
            Some("migrate") => Self::Migrate,
            Some(other) => return Err(ServiceMainError::UnknownCommand(other.to_owned())),
        };
        match args.next() {
            None => Ok(command),
            Some(extra) => Err(ServiceMainError::UnknownCommand(extra)),
        }
    }
}

/// The whole `main` of a service binary: config from the process environment, then
/// [`main_with`].
pub async fn main<S: Service>() -> Result<(), ServiceMainError> {
    let config = S::config(&Env::from_process())?;
    main_with::<S>(config).await
}

/// `main` with the configuration already read (the gateway reads it first to size its
/// runtime): telemetry, then the command of the process's arguments.
pub async fn main_with<S: Service>(config: S::Config) -> Result<(), ServiceMainError> {
    let command = Command::from_args(std::env::args().skip(1))?;
    // Kept until exit: dropping it flushes the last exported spans.
    let _telemetry =
        crate::telemetry::init_service(S::NAME).map_err(ServiceMainError::Telemetry)?;
    run::<S>(config, command).await
}

/// Runs `command` for service `S`: migrate and return, or build and serve until stopped.
pub async fn run<S: Service>(config: S::Config, command: Command) -> Result<(), ServiceMainError> {
    if command == Command::Migrate {
        let migrate = S::migrate(&config).ok_or(ServiceMainError::NoMigrations(S::NAME))?;
        migrate
            .await
            .map_err(|e| ServiceMainError::Migrate(S::NAME, e))?;
        tracing::info!(service = S::NAME, "migrations applied");
        return Ok(());
    }
    let app = S::build(config)
        .await
        .map_err(|e| ServiceMainError::Start(S::NAME, Box::new(e)))?;
    tracing::info!(service = S::NAME, addr = ?app.local_addr(), "listening");
    app.run_until_stopped()
        .await
        .map_err(|e| ServiceMainError::Run(S::NAME, Box::new(e)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn commands_are_serve_by_default_and_migrate_on_request() {
        assert_eq!(Command::from_args(args(&[])).ok(), Some(Command::Serve));
        assert_eq!(
            Command::from_args(args(&["serve"])).ok(),
            Some(Command::Serve)
        );
        assert_eq!(
            Command::from_args(args(&["migrate"])).ok(),
            Some(Command::Migrate)
        );
        for bad in [&["migrat"][..], &["serve", "now"], &["--help"]] {
            let err = Command::from_args(args(bad)).unwrap_err();
            assert!(
                matches!(err, ServiceMainError::UnknownCommand(_)),
                "{bad:?}: {err}"
            );
        }
    }

    static MIGRATED: AtomicUsize = AtomicUsize::new(0);
    static BUILT: AtomicUsize = AtomicUsize::new(0);
    static SERVED: AtomicUsize = AtomicUsize::new(0);

    /// A service whose steps only count themselves.
    struct Counted;

    /// No variables to read.
    struct NoConfig;

    impl ServiceConfig for NoConfig {
        fn from_env(_: &Env) -> Result<Self, ConfigError> {
            Ok(Self)
        }

        fn listen_addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;

    impl Service for Counted {
        const NAME: &'static str = "counted";
        type Config = NoConfig;
        type Error = Never;

        fn migrate(_: &NoConfig) -> Option<impl Future<Output = Result<(), BoxError>> + Send> {
            Some(async {
                MIGRATED.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }

        async fn build(_: NoConfig) -> Result<Self, Never> {
            BUILT.fetch_add(1, Ordering::SeqCst);
            Ok(Self)
        }

        fn local_addr(&self) -> Option<SocketAddr> {
            None
        }

        async fn run_until_stopped(self) -> Result<(), Never> {
            SERVED.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// A service without a database.
    struct Stateless;

    impl Service for Stateless {
        const NAME: &'static str = "stateless";
        type Config = NoConfig;
        type Error = Never;

        async fn build(_: NoConfig) -> Result<Self, Never> {
            Ok(Self)
        }

        fn local_addr(&self) -> Option<SocketAddr> {
            None
        }

        async fn run_until_stopped(self) -> Result<(), Never> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn migrate_applies_migrations_without_serving_and_serve_does_not_migrate() {
        run::<Counted>(NoConfig, Command::Migrate).await.unwrap();
        assert_eq!(
            (
                MIGRATED.load(Ordering::SeqCst),
                BUILT.load(Ordering::SeqCst)
            ),
            (1, 0)
        );
        run::<Counted>(NoConfig, Command::Serve).await.unwrap();
        assert_eq!(
            [&MIGRATED, &BUILT, &SERVED].map(|c| c.load(Ordering::SeqCst)),
            [1, 1, 1]
        );
        let err = run::<Stateless>(NoConfig, Command::Migrate)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceMainError::NoMigrations("stateless")),
            "{err}"
        );
    }
}
