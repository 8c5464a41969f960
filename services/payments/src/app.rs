//! Building and running the payments service: state, router, background tasks (relay,
//! `auth.user.*` consumer, PSP simulator, housekeeping), serving.

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, jwks::RemoteKeys, service::ServiceTokens, verifier::Keys};
use payplane_bus::{consumer::ConsumerConfig, tasks::BrokerTasks};
use payplane_events::topology::PAYMENTS_EVENTS;
use payplane_kit::{
    service::{
        self, ServiceError,
        cache::{self, connect_stores},
    },
    shell,
};
use sqlx::{PgPool, migrate::Migrator};

use crate::{
    cache::Cache,
    config::{Config, PspMode},
    directory::Directory,
    events::UserEvents,
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub use payplane_bus::tasks::TasksError as StartError;

/// Shared state of every handler.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub authn: Authn,
    pub cache: Cache,
    pub directory: Directory,
}

impl FromRef<AppState> for ServiceTokens {
    fn from_ref(s: &AppState) -> Self {
        s.config.service_tokens.clone()
    }
}

/// The service's routes wrapped in the shared stack; readiness also reports the broker
/// connections of `broker`.
pub fn router(state: AppState, broker: BrokerTasks) -> Router {
    let stores = (&state.db, &MIGRATOR, &state.authn.redis);
    let health = cache::health("payments", env!("CARGO_PKG_VERSION"), stores, move || {
        broker.check()
    });
    shell::router(crate::routes::routes(), state, health, None)
}

payplane_kit::service_state!(AppState, "payments", MIGRATOR, Config, StartError);

impl AppState {
    /// As `connect`, with verification keys given directly (tests that hold auth's keys).
    pub async fn connect_with_keys(config: Config, keys: Keys) -> Result<Self, StartError> {
        payplane_db::ensure_database(&config.database_url)
            .await
            .map_err(ServiceError::from)?;
        let (db, redis) = connect_stores(&config, config.db_pool_size, &MIGRATOR).await?;
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
        let consumer = cfg.consumer_enabled.then(|| ConsumerConfig {
            connection_name: "payments-consumer".into(),
            ..ConsumerConfig::new(cfg.amqp_url.clone(), PAYMENTS_EVENTS)
        });
        let cache = state.cache.clone();
        let broker = BrokerTasks::default()
            .with_relay(
                cfg.relay_enabled,
                "payments",
                &cfg.amqp_url,
                &state.db,
                &shutdown,
            )
            .with_consumer(consumer, || UserEvents::new(cache), &state.db, &shutdown);
        let served = service::serve(listener, router(state, broker.clone()), &shutdown).await;
        if let Some(sim) = simulator {
            let _ = sim.await;
        }
        let _ = housekeeping.await;
        broker.join().await?;
        Ok(served?)
    }
}
