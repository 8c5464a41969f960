//! Building and running the admin service: state, router, background tasks (relay, the
//! `admin.events` consumer, housekeeping), serving.

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use payplane_authn::{Authn, Verifier, jwks::RemoteKeys, verifier::Keys};
use payplane_bus::{consumer::ConsumerConfig, tasks::BrokerTasks};
use payplane_events::topology::ADMIN_EVENTS;
use payplane_kit::{
    health::{Check, Health},
    service::{self, cache::connect_stores},
    shell,
};
use sqlx::{PgPool, migrate::Migrator};

use crate::{auth_client::AuthClient, config::Config, events::AdminEvents, probes::Probes};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub use payplane_bus::tasks::TasksError as StartError;

/// Shared state of every handler.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub authn: Authn,
    pub auth: AuthClient,
    pub probes: Probes,
}
/// The service's routes wrapped in the shared stack.
pub fn router(state: AppState) -> Router {
    let probes = state.probes.clone();
    let health = Health::new("admin", env!("CARGO_PKG_VERSION"), move || {
        let probes = probes.clone();
        Box::pin(async move {
            let (database, cache) = probes.own_readiness().await;
            let broker = probes.broker().await.is_ok();
            vec![
                Check::required("database", database),
                Check::required("cache", cache),
                Check::optional("broker", broker),
            ]
        })
    });
    shell::router(crate::routes::routes(), state, health, None)
}

payplane_kit::service_state!(AppState, "admin", MIGRATOR, Config, StartError);

impl AppState {
    /// Connects to PostgreSQL (applying migrations) and Redis; starts loading auth's JWKS.
    async fn connect(config: Config) -> Result<Self, StartError> {
        let (db, redis) = connect_stores(&config, 20, &MIGRATOR).await?;
        let keys = RemoteKeys::new(&config.auth_url);
        // Retries until auth answers, then refreshes every 5 minutes (api.md §2.2).
        let _refresher = keys.spawn_refresh();
        let verifier = Verifier::new(config.issuer.clone(), Keys::Remote(keys));
        let probes = Probes::new(&config, db.clone(), redis.clone());
        Ok(Self {
            auth: AuthClient::new(&config.auth_url, &config.service_token),
            authn: Authn { verifier, redis },
            db,
            probes,
            config: Arc::new(config),
        })
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token, with the background tasks running.
    async fn serve(bound: Application) -> Result<(), StartError> {
        let (listener, state, shutdown) = bound.into_parts();
        let housekeeping = crate::housekeeping::spawn(state.db.clone(), shutdown.clone());
        let cfg = Arc::clone(&state.config);
        let consumer = cfg.consumer_enabled.then(|| ConsumerConfig {
            connection_name: "admin-consumer".into(),
            ..ConsumerConfig::new(cfg.amqp_url.clone(), ADMIN_EVENTS)
        });
        let broker = BrokerTasks::default()
            .with_relay(
                cfg.relay_enabled,
                "admin",
                &cfg.amqp_url,
                &state.db,
                &shutdown,
            )
            .with_consumer(consumer, || AdminEvents, &state.db, &shutdown);
        let served = service::serve(listener, router(state), &shutdown).await;
        let _ = housekeeping.await;
        broker.join().await?;
        Ok(served?)
    }
}
