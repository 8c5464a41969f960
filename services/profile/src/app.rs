//! Building and running the profile service: state, router, background tasks (JWKS refresh,
//! outbox relay, `profile.events` consumer, housekeeping), serving.

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, jwks::RemoteKeys, verifier::Keys};
use payplane_bus::{
    consumer::{self, ConsumerConfig, ConsumerHandle},
    relay::{Relay, RelayConfig, RelayHandle},
};
use payplane_events::topology::PROFILE_EVENTS;
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
        source: consumer::ConsumerError,
    },
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub authn: Authn,
    pub cache: Cache,
}

impl FromRef<AppState> for Authn {
    fn from_ref(s: &AppState) -> Self {
        s.authn.clone()
    }
}

/// Broker-side tasks whose connection readiness reports (not required: the outbox holds events
/// while the broker is away, api.md §8.3).
#[derive(Clone, Default)]
pub struct BrokerTasks {
    pub relay: Option<Arc<RelayHandle>>,
    pub consumer: Option<Arc<ConsumerHandle>>,
}

impl BrokerTasks {
    fn connected(&self) -> bool {
        let relay = self
            .relay
            .as_ref()
            .is_none_or(|r| r.broker_connected() || !r.is_active());
        let consumer = self.consumer.as_ref().is_none_or(|c| c.broker_connected());
        relay && consumer
    }
}

/// The service's routes wrapped in the shared stack.
pub fn router(state: AppState) -> Router {
    router_with_broker(state, BrokerTasks::default())
}

/// As [`router`], with readiness also reporting the broker connections of `broker`.
pub fn router_with_broker(state: AppState, broker: BrokerTasks) -> Router {
    let db = state.db.clone();
    let redis = state.authn.redis.clone();
    let health = Health::new("profile", env!("CARGO_PKG_VERSION"), move || {
        let (db, redis, broker) = (db.clone(), redis.clone(), broker.clone());
        Box::pin(async move {
            let mut checks = database_and_cache(&db, &MIGRATOR, &redis).await;
            if broker.relay.is_some() || broker.consumer.is_some() {
                checks.push(Check::optional("broker", broker.connected()));
            }
            checks
        })
    });
    let opts = StackOptions {
        trusted_proxies: state.config.trusted_proxies.clone(),
        body_limit: BODY_LIMIT,
    };
    stack(crate::routes::routes().with_state(state), health, &opts)
}

/// A bound, ready-to-run service (`local_addr`, `state`, `shutdown_token`).
pub type Application = Bound<AppState>;

impl ServiceState for AppState {
    const NAME: &'static str = "profile";
    const MIGRATOR: Option<&'static Migrator> = Some(&MIGRATOR);
    type Config = Config;
    type Error = StartError;

    /// Connects to PostgreSQL (applying migrations) and Redis; keys come from auth's JWKS.
    async fn connect(config: Config) -> Result<Self, StartError> {
        let (db, redis) =
            connect_stores(&config.database_url, 20, &MIGRATOR, &config.redis_url).await?;
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
        let relay = state.config.relay_enabled.then(|| {
            let config = RelayConfig {
                connection_name: "profile-relay".into(),
                ..RelayConfig::new(state.config.amqp_url.clone())
            };
            Arc::new(Relay::spawn(state.db.clone(), config, shutdown.clone()))
        });
        let consumer = state.config.consumer_enabled.then(|| {
            let config = ConsumerConfig::new(state.config.amqp_url.clone(), PROFILE_EVENTS);
            let handler = Arc::new(UserEvents {
                cache: state.cache.clone(),
            });
            Arc::new(consumer::spawn(
                state.db.clone(),
                config,
                handler,
                shutdown.clone(),
            ))
        });
        let broker = BrokerTasks {
            relay: relay.clone(),
            consumer: consumer.clone(),
        };
        let app = router_with_broker(state, broker);
        let res = payplane_kit::server::serve_until_stopped(listener, app, &shutdown).await;
        let _ = housekeeping.await;
        if let Some(relay) = relay.and_then(|r| Arc::try_unwrap(r).ok()) {
            relay.join().await;
        }
        if let Some(consumer) = consumer.and_then(|c| Arc::try_unwrap(c).ok())
            && let Err(source) = consumer.join().await
        {
            return Err(StartError::Consumer {
                queue: "profile.events",
                source,
            });
        }
        res.map_err(|e| ServiceError::Serve(e).into())
    }
}
