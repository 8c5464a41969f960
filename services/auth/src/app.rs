//! Building and running the auth service: state, router, background tasks, serving.

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, service::ServiceTokens, verifier::Keys};
use payplane_bus::relay::{Relay, RelayConfig, RelayHandle};
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

use crate::{config::Config, keys::SigningKeys, markers::Markers, password::Hasher};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
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
        let (db, redis, relay) = (db.clone(), redis.clone(), relay.clone());
        Box::pin(async move {
            let mut checks = database_and_cache(&db, &MIGRATOR, &redis).await;
            if let Some(relay) = &relay {
                let up = relay.broker_connected() || !relay.is_active();
                checks.push(Check::optional("broker", up));
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
    const NAME: &'static str = "auth";
    const MIGRATOR: Option<&'static Migrator> = Some(&MIGRATOR);
    type Config = Config;
    type Error = StartError;

    /// Connects to PostgreSQL (applying migrations) and Redis, and loads the signing keys.
    async fn connect(config: Config) -> Result<Self, StartError> {
        let (db, redis) =
            connect_stores(&config.database_url, 20, &MIGRATOR, &config.redis_url).await?;
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

    /// Serves until SIGINT/SIGTERM or the shutdown token, with the background tasks running.
    async fn serve(bound: Application) -> Result<(), StartError> {
        let (listener, state, shutdown) = bound.into_parts();
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
        res.map_err(|e| ServiceError::Serve(e).into())
    }
}
