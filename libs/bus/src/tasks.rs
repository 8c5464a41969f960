//! The outbox relay and the event consumer a service runs beside its HTTP server: started from
//! its settings, reported by readiness and joined once the server has stopped, the same way in
//! every service.

use std::sync::Arc;

use payplane_kit::{
    health::Check,
    service::ServiceError,
    store::{Ctx, Store, StoreError},
};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::{
    consumer::{self, ConsumerConfig, ConsumerError, ConsumerHandle, Handler},
    outbox,
    relay::{Relay, RelayConfig, RelayHandle},
};

/// Why a service whose own failures are only the shared ones and its consumer's stopped.
#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
}

/// A service's broker-side tasks; either may be off.
#[derive(Clone, Default)]
pub struct BrokerTasks {
    pub relay: Option<Arc<RelayHandle>>,
    pub consumer: Option<Arc<ConsumerHandle>>,
}

impl BrokerTasks {
    /// With the outbox relay of `service` (connection `<service>-relay`) when `enabled`.
    #[must_use]
    pub fn with_relay(
        mut self,
        enabled: bool,
        service: &str,
        amqp_url: &str,
        db: &PgPool,
        shutdown: &CancellationToken,
    ) -> Self {
        self.relay = enabled.then(|| {
            let config = RelayConfig {
                connection_name: format!("{service}-relay"),
                ..RelayConfig::new(amqp_url)
            };
            Arc::new(Relay::spawn(db.clone(), config, shutdown.clone()))
        });
        self
    }

    /// With a consumer of `config` (none when `None`) handing deliveries to `handler`. A
    /// queue-argument mismatch stops the whole service (the runtime cancels `shutdown`) and is
    /// returned by [`Self::join`].
    #[must_use]
    pub fn with_consumer<H: Handler>(
        mut self,
        config: Option<ConsumerConfig>,
        handler: impl FnOnce() -> H,
        db: &PgPool,
        shutdown: &CancellationToken,
    ) -> Self {
        self.consumer = config.map(|config| {
            let handler = Arc::new(handler());
            Arc::new(consumer::spawn(
                db.clone(),
                config,
                handler,
                shutdown.clone(),
            ))
        });
        self
    }

    /// Every running task reaches the broker; a standby relay (another replica publishes)
    /// does not connect and counts as up.
    pub fn connected(&self) -> bool {
        let relay = self
            .relay
            .as_ref()
            .is_none_or(|r| r.broker_connected() || !r.is_active());
        let consumer = self.consumer.as_ref().is_none_or(|c| c.broker_connected());
        relay && consumer
    }

    /// The `broker` readiness check, never required (the outbox holds events while the broker
    /// is away, api.md §8.3); `None` when neither task runs.
    pub fn check(&self) -> Option<Check> {
        (self.relay.is_some() || self.consumer.is_some())
            .then(|| Check::optional("broker", self.connected()))
    }

    /// Waits for the tasks once the shutdown token was cancelled; `Err` is the consumer's
    /// fatal topology mismatch.
    pub async fn join(self) -> Result<(), ConsumerError> {
        if let Some(relay) = self.relay.and_then(|r| Arc::try_unwrap(r).ok()) {
            relay.join().await;
        }
        match self.consumer.and_then(|c| Arc::try_unwrap(c).ok()) {
            Some(consumer) => consumer.join().await,
            None => Ok(()),
        }
    }
}

/// The housekeeping a service that relays and consumes owes the bus (data.md §8): outbox rows
/// published more than 7 days ago and processed-event records older than 30 days; returns
/// `(outbox, processed)` rows removed.
pub async fn delete_delivered<S: Store>(
    conn: &mut PgConnection,
) -> Result<(u64, u64), StoreError<S>> {
    let outbox = outbox::delete_published_older_than(conn, 7)
        .await
        .ctx("delete published outbox rows")?;
    let processed = consumer::delete_processed_older_than(conn, 30)
        .await
        .ctx("delete old processed events")?;
    Ok((outbox, processed))
}
