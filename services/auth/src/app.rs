//! Building and running the auth service: state, router, background tasks, serving.

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, service::ServiceTokens, verifier::Keys};
use payplane_bus::tasks::BrokerTasks;
use payplane_kit::{
    service::{
        self, ServiceError,
        cache::{self, connect_stores},
    },
    shell,
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
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub keys: Arc<SigningKeys>,
    pub authn: Authn,
    pub hasher: Hasher,
    pub markers: Markers,
}

impl FromRef<AppState> for ServiceTokens {
    fn from_ref(s: &AppState) -> Self {
        s.config.service_tokens.clone()
    }
}

/// The service's routes wrapped in the shared stack; readiness also reports the relay's broker
/// connection.
pub fn router(state: AppState, broker: BrokerTasks) -> Router {
    let stores = (&state.db, &MIGRATOR, &state.authn.redis);
    let health = cache::health("auth", env!("CARGO_PKG_VERSION"), stores, move || {
        broker.check()
    });
    shell::router(crate::routes::routes(), state, health, None)
}

payplane_kit::service_state!(AppState, "auth", MIGRATOR, Config, StartError);

impl AppState {
    /// Connects to PostgreSQL (applying migrations) and Redis, and loads the signing keys.
    async fn connect(config: Config) -> Result<Self, StartError> {
        let (db, redis) = connect_stores(&config, 20, &MIGRATOR).await?;
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
        let cfg = Arc::clone(&state.config);
        let broker = BrokerTasks::default().with_relay(
            cfg.relay_enabled,
            "auth",
            &cfg.amqp_url,
            &state.db,
            &shutdown,
        );
        let served = service::serve(listener, router(state, broker.clone()), &shutdown).await;
        let _ = reconciler.await;
        let _ = housekeeping.await;
        // Without a consumer there is no error to join.
        let _ = broker.join().await;
        Ok(served?)
    }
}
