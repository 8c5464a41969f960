//! Building and running the profile service: state, router, background tasks (JWKS refresh,
//! outbox relay, `profile.events` consumer, housekeeping), serving.

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, jwks::RemoteKeys, verifier::Keys};
use payplane_bus::{
    consumer::{ConsumerConfig, ConsumerError},
    tasks::BrokerTasks,
};
use payplane_events::topology::PROFILE_EVENTS;
use payplane_kit::{
    service::{
        self, ServiceError,
        cache::{self, connect_stores},
    },
    shell,
};
use sqlx::{PgPool, migrate::Migrator};

use crate::{cache::Cache, config::Config, events::UserEvents};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The body limit of `/api/profile/**` (api.md §3.6): avatars may be 2 MiB data URLs.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("consuming {queue}")]
    Consumer {
        queue: &'static str,
        #[source]
        source: ConsumerError,
    },
}

/// Shared state of every handler.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub authn: Authn,
    pub cache: Cache,
}

/// The service's routes wrapped in the shared stack; readiness also reports the broker
/// connections of `broker`.
pub fn router(state: AppState, broker: BrokerTasks) -> Router {
    let stores = (&state.db, &MIGRATOR, &state.authn.redis);
    let health = cache::health("profile", env!("CARGO_PKG_VERSION"), stores, move || {
        broker.check()
    });
    shell::router(crate::routes::routes(), state, health, Some(BODY_LIMIT))
}

payplane_kit::service_state!(AppState, "profile", MIGRATOR, Config, StartError);

impl AppState {
    /// Connects to PostgreSQL (applying migrations) and Redis; keys come from auth's JWKS.
    async fn connect(config: Config) -> Result<Self, StartError> {
        let (db, redis) = connect_stores(&config, 20, &MIGRATOR).await?;
        let verifier = Verifier::new(
            config.issuer.clone(),
            Keys::Remote(RemoteKeys::new(&config.auth_url)),
        );
        Ok(Self {
            db,
            cache: Cache::new(redis.clone(), config.cache_prefix.clone()),
            authn: Authn { verifier, redis },
            config: Arc::new(config),
        })
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token, with the background tasks running.
    async fn serve(bound: Application) -> Result<(), StartError> {
        let (listener, state, shutdown) = bound.into_parts();
        if let Keys::Remote(remote) = state.authn.verifier.keys() {
            let refresh = remote.spawn_refresh();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                refresh.abort();
            });
        }
        let housekeeping = crate::housekeeping::spawn(state.db.clone(), shutdown.clone());
        let cfg = Arc::clone(&state.config);
        let consumer = cfg
            .consumer_enabled
            .then(|| ConsumerConfig::new(cfg.amqp_url.clone(), PROFILE_EVENTS));
        let cache = state.cache.clone();
        let broker = BrokerTasks::default()
            .with_relay(
                cfg.relay_enabled,
                "profile",
                &cfg.amqp_url,
                &state.db,
                &shutdown,
            )
            .with_consumer(consumer, || UserEvents { cache }, &state.db, &shutdown);
        let served = service::serve(listener, router(state, broker.clone()), &shutdown).await;
        let _ = housekeeping.await;
        broker.join().await.map_err(|source| StartError::Consumer {
            queue: "profile.events",
            source,
        })?;
        Ok(served?)
    }
}
