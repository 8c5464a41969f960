//! The broker side of the hub (events.md gateway queue, websocket.md §11): this replica's
//! exclusive, auto-delete queue `gateway.ws.<instance-id>` bound to `payments.#`, `auth.#` and
//! `admin.#`, consumed at most once (auto-ack, no database) and handed to the hub.
//! Reconnects with backoff and redeclares after every reconnect. Does AMQP I/O.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use backon::BackoffBuilder;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use payplane_events::topology::{gateway_declarations, gateway_queue_name};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ws::{hub::Hub, mapping::map_event};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Connect(#[from] payplane_bus::conn::ConnError),
    #[error(transparent)]
    Topology(#[from] payplane_bus::topology::TopologyError),
    #[error("AMQP channel operation failed")]
    Channel(#[source] lapin::Error),
    #[error("the delivery stream ended")]
    StreamEnded,
}

/// Whether the consumer is currently attached (readiness, tests).
#[derive(Clone, Default)]
pub struct BridgeStatus(Arc<AtomicBool>);

impl BridgeStatus {
    pub fn connected(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Runs the consumer until `stop`, reconnecting forever.
pub fn spawn(
    amqp_url: String,
    instance_id: String,
    hub: Hub,
    flag: BridgeStatus,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = payplane_bus::conn::reconnect_backoff().build();
        loop {
            let res = tokio::select! {
                () = stop.cancelled() => return,
                r = consume(&amqp_url, &instance_id, &hub, &flag, &stop) => r,
            };
            flag.0.store(false, Ordering::Release);
            match res {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "gateway event bridge disconnected; reconnecting");
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    })
}

async fn consume(
    url: &str,
    instance_id: &str,
    hub: &Hub,
    status: &BridgeStatus,
    stop: &CancellationToken,
) -> Result<(), BridgeError> {
    let conn = payplane_bus::conn::connect(url, &format!("gateway-{instance_id}")).await?;
    let channel = conn.create_channel().await.map_err(BridgeError::Channel)?;
    payplane_bus::topology::declare(&channel, &gateway_declarations(instance_id)).await?;
    channel
        .basic_qos(256, BasicQosOptions::default())
        .await
        .map_err(BridgeError::Channel)?;
    let queue = gateway_queue_name(instance_id);
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            format!("gateway-{instance_id}").as_str().into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..BasicConsumeOptions::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .map_err(BridgeError::Channel)?;
    status.0.store(true, Ordering::Release);
    tracing::info!(queue, "gateway event bridge consuming");
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => {
                // Closing the channel removes the exclusive queue (websocket.md §10 step 4).
                let _ = channel.close(200, "shutting down".into()).await;
                let _ = conn.close(200, "shutting down".into()).await;
                return Ok(());
            }
            n = deliveries.next() => n,
        };
        let delivery = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(BridgeError::Channel(e)),
            None => return Err(BridgeError::StreamEnded),
        };
        let Ok(envelope) = serde_json::from_slice::<Value>(&delivery.data) else {
            tracing::debug!("gateway bridge: undecodable event dropped");
            continue;
        };
        if let Some(dispatch) = map_event(&envelope) {
            hub.dispatch(&dispatch);
        }
    }
}
