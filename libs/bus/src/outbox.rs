//! Writing events into a service's `outbox` table inside the caller's transaction (events.md §6.1).
//! Does I/O only on the connection it is given; publishing is the relay's job.

use payplane_events::{Envelope, Event, VERSION, time};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

/// Where an event comes from: the producing service and the request or event that caused it.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// Producing service (`auth`, `payments`, `admin`, `profile`).
    pub source: &'static str,
    /// The request id, or the causing event's correlation id (events.md §2.1).
    pub correlation_id: String,
    /// The causing event's id; `None` for HTTP requests and timers.
    pub causation_id: Option<Uuid>,
    /// W3C trace context to send as AMQP headers.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("serialising the {routing_key} payload")]
    Serialize {
        routing_key: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("inserting the {routing_key} outbox row for {aggregate_id}")]
    Insert {
        routing_key: &'static str,
        aggregate_id: String,
        #[source]
        source: sqlx::Error,
    },
}

/// Appends one event to the outbox on `conn` (which must be inside the state change's
/// transaction) and notifies the relay. Returns the event id.
pub async fn enqueue<E: Event>(
    conn: &mut PgConnection,
    ctx: &EventContext,
    aggregate_id: &str,
    data: &E,
) -> Result<Uuid, OutboxError> {
    let id = Uuid::new_v4();
    let envelope = Envelope {
        id,
        event_type: E::ROUTING_KEY.to_owned(),
        version: VERSION.to_owned(),
        timestamp: time::now(),
        source: ctx.source.to_owned(),
        correlation_id: ctx.correlation_id.clone(),
        causation_id: ctx.causation_id,
        data,
    };
    let envelope = serde_json::to_value(&envelope).map_err(|source| OutboxError::Serialize {
        routing_key: E::ROUTING_KEY,
        source,
    })?;
    let mut headers = Map::new();
    if let Some(tp) = &ctx.traceparent {
        headers.insert("traceparent".into(), Value::String(tp.clone()));
    }
    if let Some(ts) = &ctx.tracestate {
        headers.insert("tracestate".into(), Value::String(ts.clone()));
    }
    sqlx::query(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, routing_key, envelope, headers) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(E::AGGREGATE_TYPE)
    .bind(aggregate_id)
    .bind(E::ROUTING_KEY)
    .bind(&envelope)
    .bind(Value::Object(headers))
    .execute(&mut *conn)
    .await
    .map_err(|source| OutboxError::Insert {
        routing_key: E::ROUTING_KEY,
        aggregate_id: aggregate_id.to_owned(),
        source,
    })?;
    // Delivered at commit; PostgreSQL folds duplicate notifications of one transaction.
    sqlx::query("SELECT pg_notify('outbox', '')")
        .execute(&mut *conn)
        .await
        .map_err(|source| OutboxError::Insert {
            routing_key: E::ROUTING_KEY,
            aggregate_id: aggregate_id.to_owned(),
            source,
        })?;
    Ok(id)
}
