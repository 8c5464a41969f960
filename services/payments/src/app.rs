//! Building and running the payments service: state, router, background tasks (relay,
//! `auth.user.*` consumer, PSP simulator, housekeeping), serving.

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, jwks::RemoteKeys, service::ServiceTokens, verifier::Keys};
use payplane_bus::{
    consumer::{self, ConsumerConfig, ConsumerHandle},
    relay::{Relay, RelayConfig, RelayHandle},
};
use payplane_kit::{
    health::{Check, Health},
    http::{StackOptions, stack},
    server::Bound,
    service::{
        ServiceError, ServiceState,
        cache::{connect_stores, database_and_cache},
    },
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
    Service(#[from] ServiceError),
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
    /// As [`ServiceState::connect`], with verification keys given directly (tests that hold
    /// auth's keys).
    pub async fn connect_with_keys(config: Config, keys: Keys) -> Result<Self, StartError> {
        payplane_db::ensure_database(&config.database_url)
            .await
            .map_err(ServiceError::from)?;
        let (db, redis) = connect_stores(
            &config.database_url,
            config.db_pool_size,
            &MIGRATOR,
            &config.redis_url,
        )
        .await?;
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
        let (db, redis, relay, consumer) =
            (db.clone(), redis.clone(), relay.clone(), consumer.clone());
        Box::pin(async move {
            let mut checks = database_and_cache(&db, &MIGRATOR, &redis).await;
            if relay.is_some() || consumer.is_some() {
                let relay_up = relay
                    .as_ref()
                    .is_none_or(|r| r.broker_connected() || !r.is_active());
                let consumer_up = consumer.as_ref().is_none_or(|c| c.broker_connected());
                checks.push(Check::optional("broker", relay_up && consumer_up));
            }
            checks
        })
    });
    let opts = StackOptions::trusting(state.config.trusted_proxies.clone());
    stack(crate::routes::routes().with_state(state), health, &opts)
}

/// A bound, ready-to-run service (`local_addr`, `state`, `shutdown_token`).
pub type Application = Bound<AppState>;

impl ServiceState for AppState {
    const NAME: &'static str = "payments";
    const MIGRATOR: Option<&'static Migrator> = Some(&MIGRATOR);
    type Config = Config;
    type Error = StartError;

    /// Connects to PostgreSQL (applying migrations) and Redis; tokens are verified with
    /// auth's JWKS (`AUTH_URL`).
    async fn connect(config: Config) -> Result<Self, StartError> {
        let remote = RemoteKeys::new(&config.auth_url);
        let _refresh = remote.spawn_refresh();
        Self::connect_with_keys(config, Keys::Remote(remote)).await
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token, with the background tasks running.
    async fn serve(bound: Application) -> Result<(), StartError> {
        let (listener, state, shutdown) = bound.into_parts();
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
        res.map_err(|e| ServiceError::Serve(e).into())
    }
}
