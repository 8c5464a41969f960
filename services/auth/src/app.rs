//! Building and running the auth service: state, router, background tasks, serving.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, service::ServiceTokens, verifier::Keys};
use payplane_bus::relay::{Relay, RelayConfig, RelayHandle};
use payplane_kit::{
    config::{ConfigError, Env},
    health::{Check, Health},
    http::{StackOptions, stack},
    server::{BindError, Bound},
    service::Service,
    service::cache::{RedisTimeouts, connect_redis},
};
use sqlx::{PgPool, migrate::Migrator};

use crate::{config::Config, keys::SigningKeys, markers::Markers, password::Hasher};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] payplane_db::DbError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    #[error("connecting to Redis at REDIS_URL")]
    Redis(#[source] redis::RedisError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub keys: Arc<SigningKeys>,
    pub authn: Authn,
    pub hasher: Hasher,
    pub markers: Markers,
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
    /// Connects to PostgreSQL (applying migrations) and Redis, and loads the signing keys.
    pub async fn connect(config: Config) -> Result<Self, StartError> {
        let db = payplane_db::connect(&config.database_url, 20).await?;
        payplane_db::migrate(&db, &MIGRATOR).await?;
        let redis = connect_redis(&config.redis_url, RedisTimeouts::SERVICE)
            .await
            .map_err(StartError::Redis)?;
        let keys = if config.signing_keys.is_empty() {
            tracing::warn!(
                "AUTH_SIGNING_KEYS not set: using an ephemeral key; tokens will not survive a restart"
            );
            SigningKeys::ephemeral()?
        } else {
            SigningKeys::load(&config.signing_keys)?
        };
        let verifier = Verifier::new(config.issuer.clone(), Keys::Local(keys.decoding.clone()));
        let markers = Markers::new(redis.clone(), config.access_ttl);
        // Before the first token is served: Redis holds every revocation in force and the ready
        // key that verifiers require (the reconciler keeps it so, and retries if this fails).
        if let Err(e) = markers.reconcile(&db).await {
            tracing::warn!(error = %e, "initial revocation marker rebuild failed");
        }
        Ok(Self {
            db,
            hasher: Hasher::with_limits(config.argon2, config.hash_limits)?,
            authn: Authn { verifier, redis },
            keys: Arc::new(keys),
            markers,
            config: Arc::new(config),
        })
    }
}

/// The service's routes wrapped in the shared stack.
pub fn router(state: AppState) -> Router {
    router_with_relay(state, None)
}

/// As [`router`], with readiness also reporting the relay's broker connection (not required:
/// the outbox holds events while the broker is away, api.md §8.3).
pub fn router_with_relay(state: AppState, relay: Option<Arc<RelayHandle>>) -> Router {
    let db = state.db.clone();
    let redis = state.authn.redis.clone();
    let health = Health::new("auth", env!("CARGO_PKG_VERSION"), move || {
        let (db, mut redis, relay) = (db.clone(), redis.clone(), relay.clone());
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
            if let Some(relay) = &relay {
                checks.push(Check {
                    name: "broker",
                    up: relay.broker_connected() || !relay.is_active(),
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

impl Service for Application {
    const NAME: &'static str = "auth";
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
        let addr = config.listen_addr;
        let state = AppState::connect(config).await?;
        Ok(Self(Bound::bind(addr, state).await?))
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token, with the background tasks running.
    async fn run_until_stopped(self) -> Result<(), StartError> {
        let (listener, state, shutdown) = self.0.into_parts();
        let reconciler = state
            .markers
            .clone()
            .spawn_reconciler(state.db.clone(), shutdown.clone());
        let housekeeping = crate::housekeeping::spawn(state.db.clone(), shutdown.clone());
        let relay = state.config.relay_enabled.then(|| {
            let config = RelayConfig {
                connection_name: "auth-relay".into(),
                ..RelayConfig::new(state.config.amqp_url.clone())
            };
            Arc::new(Relay::spawn(state.db.clone(), config, shutdown.clone()))
        });
        let app = router_with_relay(state, relay.clone());
        let res = payplane_kit::server::serve_until_stopped(listener, app, &shutdown).await;
        let _ = reconciler.await;
        let _ = housekeeping.await;
        if let Some(relay) = relay.and_then(|r| Arc::try_unwrap(r).ok()) {
            relay.join().await;
        }
        res.map_err(StartError::Serve)
    }
}
