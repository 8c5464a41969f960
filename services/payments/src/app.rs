//! Building and running the payments service: state, router, background tasks (relay,
//! `auth.user.*` consumer, PSP simulator, housekeeping), serving.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, jwks::RemoteKeys, service::ServiceTokens, verifier::Keys};
use payplane_bus::{
    consumer::{self, ConsumerConfig, ConsumerHandle},
    relay::{Relay, RelayConfig, RelayHandle},
};
use payplane_kit::{
    config::{ConfigError, Env},
    health::{Check, Health},
    http::{StackOptions, stack},
    server::{BindError, Bound},
    service::Service,
    service::cache::{RedisTimeouts, connect_redis},
};
use sqlx::{PgPool, migrate::Migrator};

use crate::{
    cache::Cache,
    config::{Config, PspMode},
    directory::Directory,
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] payplane_db::DbError),
    #[error("connecting to Redis at REDIS_URL")]
    Redis(#[source] redis::RedisError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Consumer(#[from] payplane_bus::consumer::ConsumerError),
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub authn: Authn,
    pub cache: Cache,
    pub directory: Directory,
}

impl FromRef<AppState> for Authn {
    fn from_ref(s: &AppState) -> Self {
        s.authn.clone()
    }
}

impl FromRef<AppState> for ServiceTokens {
    fn from_ref(s: &AppState) -> Self {
        s.config.service_tokens.clone()
    }
}

impl AppState {
    /// Connects to PostgreSQL (applying migrations) and Redis; tokens are verified with
    /// auth's JWKS (`AUTH_URL`).
    pub async fn connect(config: Config) -> Result<Self, StartError> {
        let remote = RemoteKeys::new(&config.auth_url);
        let _refresh = remote.spawn_refresh();
        Self::connect_with_keys(config, Keys::Remote(remote)).await
    }

    pub async fn connect_with_keys(config: Config, keys: Keys) -> Result<Self, StartError> {
        payplane_db::ensure_database(&config.database_url).await?;
        let db = payplane_db::connect(&config.database_url, config.db_pool_size).await?;
        payplane_db::migrate(&db, &MIGRATOR).await?;
        let redis = connect_redis(&config.redis_url, RedisTimeouts::SERVICE)
            .await
            .map_err(StartError::Redis)?;
        let verifier = Verifier::new(config.issuer.clone(), keys);
        Ok(Self {
            db,
            authn: Authn {
                verifier,
                redis: redis.clone(),
            },
            cache: Cache::new(redis, config.cache_prefix.clone()),
            directory: Directory::new(&config.auth_url, &config.service_token),
            config: Arc::new(config),
        })
    }
}

/// The service's routes wrapped in the shared stack.
pub fn router(state: AppState) -> Router {
    router_with_bus(state, None, None)
}

/// As [`router`], with readiness also reporting the broker connections (not required: the
/// outbox holds events while the broker is away, api.md §8.3).
pub fn router_with_bus(
    state: AppState,
    relay: Option<Arc<RelayHandle>>,
    consumer: Option<Arc<ConsumerHandle>>,
) -> Router {
    let db = state.db.clone();
    let redis = state.authn.redis.clone();
    let health = Health::new("payments", env!("CARGO_PKG_VERSION"), move || {
        let (db, mut redis, relay, consumer) =
            (db.clone(), redis.clone(), relay.clone(), consumer.clone());
        Box::pin(async move {
            let database = payplane_db::ready(&db, &MIGRATOR).await;
            let cache = tokio::time::timeout(
                Duration::from_secs(2),
                redis::cmd("PING").query_async::<String>(&mut redis),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            let mut checks = vec![
                Check {
                    name: "database",
                    up: database,
                    required: true,
                },
                Check {
                    name: "cache",
                    up: cache,
                    required: true,
                },
            ];
            if relay.is_some() || consumer.is_some() {
                let relay_up = relay
                    .as_ref()
                    .is_none_or(|r| r.broker_connected() || !r.is_active());
                let consumer_up = consumer.as_ref().is_none_or(|c| c.broker_connected());
                checks.push(Check {
                    name: "broker",
                    up: relay_up && consumer_up,
                    required: false,
                });
            }
            checks
        })
    });
    let opts = StackOptions {
        trusted_proxies: state.config.trusted_proxies.clone(),
        ..StackOptions::default()
    };
    stack(crate::routes::routes().with_state(state), health, &opts)
}

/// A bound, ready-to-run service; `local_addr`, `state` and `shutdown_token` come from
/// [`Bound`] through `Deref`.
pub struct Application(Bound<AppState>);

impl std::ops::Deref for Application {
    type Target = Bound<AppState>;

    fn deref(&self) -> &Bound<AppState> {
        &self.0
    }
}

impl Application {
    /// With verification keys given directly (tests that hold auth's keys).
    pub async fn build_with_keys(config: Config, keys: Keys) -> Result<Self, StartError> {
        let state = AppState::connect_with_keys(config, keys).await?;
        Self::from_state(state).await
    }

    async fn from_state(state: AppState) -> Result<Self, StartError> {
        let addr = state.config.listen_addr;
        Ok(Self(Bound::bind(addr, state).await?))
    }
}

impl Service for Application {
    const NAME: &'static str = "payments";
    type Config = Config;
    type Error = StartError;

    fn config(env: &Env) -> Result<Config, ConfigError> {
        Config::from_env(env)
    }

    fn migrate(config: &Config) -> Option<impl Future<Output = Result<(), StartError>> + Send> {
        let url = config.database_url.clone();
        Some(async move { Ok(payplane_db::migrate_only(&url, &MIGRATOR).await?) })
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local_addr()
    }

    async fn build(config: Config) -> Result<Self, StartError> {
        let state = AppState::connect(config).await?;
        Self::from_state(state).await
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token, with the background tasks running.
    async fn run_until_stopped(self) -> Result<(), StartError> {
        let (listener, state, shutdown) = self.0.into_parts();
        let cfg = Arc::clone(&state.config);
        let simulator = (cfg.psp_mode == PspMode::Simulator)
            .then(|| crate::simulator::spawn(state.clone(), shutdown.clone()));
        let housekeeping = crate::simulator::spawn_housekeeping(state.db.clone(), shutdown.clone());
        let relay = cfg.relay_enabled.then(|| {
            let config = RelayConfig {
                connection_name: "payments-relay".into(),
                ..RelayConfig::new(cfg.amqp_url.clone())
            };
            Arc::new(Relay::spawn(state.db.clone(), config, shutdown.clone()))
        });
        let consumer = cfg.consumer_enabled.then(|| {
            let mut config = ConsumerConfig::new(
                cfg.amqp_url.clone(),
                payplane_events::topology::PAYMENTS_EVENTS,
            );
            config.connection_name = "payments-consumer".into();
            Arc::new(consumer::spawn(
                state.db.clone(),
                config,
                Arc::new(crate::events::UserEvents::new(state.cache.clone())),
                shutdown.clone(),
            ))
        });
        let app = router_with_bus(state, relay.clone(), consumer.clone());
        let res = payplane_kit::server::serve_until_stopped(listener, app, &shutdown).await;
        if let Some(sim) = simulator {
            let _ = sim.await;
        }
        let _ = housekeeping.await;
        if let Some(relay) = relay.and_then(|r| Arc::try_unwrap(r).ok()) {
            relay.join().await;
        }
        if let Some(consumer) = consumer.and_then(|c| Arc::try_unwrap(c).ok()) {
            consumer.join().await?;
        }
        res.map_err(StartError::Serve)
    }
}
