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

impl EventContext {
    /// The context of events caused by an API request: its request id as correlation id and
    /// its trace context (events.md §2.1).
    pub fn for_request(source: &'static str, ctx: &payplane_kit::context::RequestContext) -> Self {
        EventContext {
            source,
            correlation_id: ctx.request_id.clone(),
            causation_id: None,
            traceparent: ctx.trace.traceparent.clone(),
            tracestate: ctx.trace.tracestate.clone(),
        }
    }
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
    // One round trip: the NOTIFY rides on the INSERT. It is delivered at commit, and
    // PostgreSQL folds duplicate notifications of one transaction.
    sqlx::query(
        "WITH ins AS (INSERT INTO outbox (id, aggregate_type, aggregate_id, routing_key, envelope, headers) \
         VALUES ($1, $2, $3, $4, $5, $6)) SELECT pg_notify('outbox', '')",
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
    Ok(id)
}

/// One unpublished outbox row as the relay reads it. The body is the stored envelope's JSON
/// text, sent as is.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub seq: i64,
    pub id: Uuid,
    pub aggregate_id: String,
    pub routing_key: String,
    pub body: String,
    pub source: Option<String>,
    pub correlation_id: Option<String>,
    pub timestamp: Option<String>,
    pub headers: Value,
}

/// Reads up to `limit` unpublished rows in sequence order.
pub async fn fetch_unpublished(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    fetch_unpublished_after(conn, 0, limit).await
}

/// Reads up to `limit` unpublished rows with `seq > after` in sequence order (the relay skips
/// rows it already has in flight).
pub async fn fetch_unpublished_after(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as::<_, OutboxRow>(
        "SELECT seq, id, aggregate_id, routing_key, envelope::text AS body, \
                envelope->>'source' AS source, envelope->>'correlationId' AS correlation_id, \
                envelope->>'timestamp' AS timestamp, headers \
         FROM outbox WHERE published_at IS NULL AND seq > $2 ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .bind(after)
    .fetch_all(&mut *conn)
    .await
}

/// Reads up to `limit` unpublished rows with `seq > after` in sequence order, leaving out the
/// rows in `in_flight` (sent, not yet confirmed). Unlike a scan from the highest seq sent, this
/// also returns a row whose transaction took a lower seq but committed after the later rows were
/// read: a later event of the same aggregate can only commit after that one (the aggregate row
/// lock), so a read that sees the later event sees this one too, before it in seq order.
pub async fn fetch_unpublished_excluding(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
    in_flight: &[i64],
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    if in_flight.is_empty() {
        return fetch_unpublished_after(conn, after, limit).await;
    }
    let highest = in_flight.iter().copied().max().unwrap_or(after);
    sqlx::query_as::<_, OutboxRow>(
        "SELECT seq, id, aggregate_id, routing_key, envelope::text AS body, \
                envelope->>'source' AS source, envelope->>'correlationId' AS correlation_id, \
                envelope->>'timestamp' AS timestamp, headers \
         FROM outbox WHERE published_at IS NULL AND seq > $2 \
           AND (seq > $3 OR seq NOT IN (SELECT unnest($4::bigint[]))) \
         ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .bind(after)
    .bind(highest)
    .bind(in_flight)
    .fetch_all(&mut *conn)
    .await
}

/// Marks rows published; called only after the broker confirmed each of them.
pub async fn mark_published(conn: &mut PgConnection, seqs: &[i64]) -> Result<(), sqlx::Error> {
    if seqs.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE outbox SET published_at = date_trunc('milliseconds', now()), attempts = attempts + 1 \
         WHERE seq = ANY($1) AND published_at IS NULL",
    )
    .bind(seqs)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// Records a failed publish attempt of one row (events.md §6.1 step 4).
pub async fn record_failure(
    conn: &mut PgConnection,
    seq: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1")
        .bind(seq)
        .bind(error)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Number of unpublished rows and the age in seconds of the oldest one (0 when none).
pub async fn backlog(conn: &mut PgConnection) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as::<_, (i64, f64)>(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) \
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(&mut *conn)
    .await
}

/// Every row's routing key and envelope in write order (the tests' check of what a service
/// wrote).
pub async fn all_rows(pool: &sqlx::PgPool) -> Result<Vec<(String, Value)>, sqlx::Error> {
    sqlx::query_as("SELECT routing_key, envelope FROM outbox ORDER BY seq")
        .fetch_all(pool)
        .await
}

/// Deletes rows published more than `days` ago (data.md §8 housekeeping); returns how many.
pub async fn delete_published_older_than(
    conn: &mut PgConnection,
    days: i32,
) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)")
        .bind(days)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
}
