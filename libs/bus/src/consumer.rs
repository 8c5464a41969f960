//! The consumer runtime (events.md §6.2–§6.3): manual ack, prefetch, a handler run inside a
//! database transaction that also records the event id in `processed_events`, retries through
//! `<queue>.retry.1/2/3` and dead-lettering with failure headers, reconnect with back-off.
//! `handle_one`/`handle_batch` are the database step (I/O on PostgreSQL only); `run` adds the
//! broker side.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tracing::Instrument;

use futures::{FutureExt, StreamExt};
use lapin::{
    BasicProperties, Channel, PublisherConfirm,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
        BasicQosOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use payplane_events::{
    time,
    topology::{
        ConsumerQueue, DEFAULT_EXCHANGE, DEFAULT_PREFETCH, DLX_EXCHANGE, RETRY_DELAYS_MS,
        headers as h,
    },
};
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crate::handler::{Handler, HandlerError, IncomingEvent};
use crate::{conn, message, metrics as m, relay::error_chain, topology};

/// Retries before a transiently failing event is dead-lettered.
pub const MAX_RETRIES: u32 = 3;
const MAX_REASON_CHARS: usize = 1024;

/// Dead-letter class (`x-failure-class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Permanent,
    RetriesExhausted,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Permanent => "permanent",
            FailureClass::RetriesExhausted => "retries_exhausted",
        }
    }
}

/// What to do with one message after the database step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Duplicate,
    Ignored,
    UnsupportedVersion,
    /// Publish a copy to `<queue>.retry.<attempt>`.
    Retry {
        attempt: u32,
        error: String,
    },
    /// Publish a copy to `<queue>.dlq`.
    DeadLetter {
        class: FailureClass,
        reason: String,
        retries: u32,
    },
    /// The database could not be reached: keep the delivery, wait for the database, handle it
    /// again. Never settled as such.
    Unavailable {
        reason: String,
    },
}

impl Outcome {
    /// The `outcome` label of `events_consumed_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::UnsupportedVersion => "unsupported_version",
            Outcome::Retry { .. } => "retried",
            Outcome::DeadLetter { .. } => "dead_lettered",
            Outcome::Unavailable { .. } => "database_unavailable",
        }
    }

    fn from_error(error: &HandlerError, retry_count: u32) -> Outcome {
        match error {
            HandlerError::Unavailable(reason) => Outcome::Unavailable {
                reason: reason.clone(),
            },
            HandlerError::Permanent(reason) => Outcome::DeadLetter {
                class: FailureClass::Permanent,
                reason: reason.clone(),
                retries: retry_count,
            },
            HandlerError::Transient(reason) if retry_count >= MAX_RETRIES => Outcome::DeadLetter {
                class: FailureClass::RetriesExhausted,
                reason: reason.clone(),
                retries: retry_count,
            },
            HandlerError::Transient(reason) => Outcome::Retry {
                attempt: retry_count + 1,
                error: reason.clone(),
            },
        }
    }
}

/// A message as the database step needs it.
#[derive(Debug, Clone, Copy)]
pub struct RawMessage<'a> {
    pub body: &'a [u8],
    pub headers: Option<&'a FieldTable>,
}

enum Prepared {
    Done(Outcome),
    Handle(IncomingEvent),
}

fn prepare<H: Handler>(queue: &str, handler: &H, msg: RawMessage<'_>) -> Prepared {
    let event = match IncomingEvent::parse(msg.body, msg.headers) {
        Ok(e) => e,
        Err(e) => {
            let retries = message::header_int(msg.headers, h::RETRY_COUNT)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            let outcome = Outcome::from_error(&e, retries);
            record(queue, "unknown", &outcome);
            return Prepared::Done(outcome);
        }
    };
    let skip = if !handler.supports_version(&event.routing_key, &event.version) {
        Outcome::UnsupportedVersion
    } else if !handler.handles(&event.routing_key) {
        Outcome::Ignored
    } else {
        return Prepared::Handle(event);
    };
    record(queue, &event.routing_key, &skip);
    Prepared::Done(skip)
}

fn record(queue: &str, routing_key: &str, outcome: &Outcome) {
    metrics::counter!(m::CONSUMED, "queue" => queue.to_owned(), "routing_key" => routing_key.to_owned(), "outcome" => outcome.label())
        .increment(1);
}

async fn timed<H: Handler>(
    handler: &H,
    queue: &str,
    tx: &mut PgConnection,
    event: &IncomingEvent,
) -> Result<(), HandlerError> {
    let started = Instant::now();
    let span = if payplane_kit::otel::enabled() {
        let span = tracing::info_span!("consume", otel.name = %format!("{} process", event.routing_key),
            otel.kind = "consumer", messaging.destination = %queue, messaging.message.id = %event.id);
        payplane_kit::otel::set_remote_parent(&span, event.traceparent.as_deref(), None);
        span
    } else {
        tracing::Span::none()
    };
    let result = handler.handle(tx, event).instrument(span).await;
    metrics::histogram!(m::HANDLING_SECONDS, "queue" => queue.to_owned(), "routing_key" => event.routing_key.clone())
        .record(started.elapsed().as_secs_f64());
    result
}

async fn apply_one<H: Handler>(
    pool: &PgPool,
    queue: &str,
    handler: &H,
    event: &IncomingEvent,
) -> Result<bool, HandlerError> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, routing_key) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(queue)
    .bind(event.id)
    .bind(&event.routing_key)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tx.commit().await?;
        return Ok(false);
    }
    timed(handler, queue, &mut tx, event).await?;
    tx.commit().await?;
    handler.committed(event);
    Ok(true)
}

/// The database step for one message (events.md §6.2 steps 1–4): parse, filter, and in one
/// transaction record the event id and apply the handler. Tests drive it without a broker.
pub async fn handle_one<H: Handler>(
    pool: &PgPool,
    queue: &str,
    handler: &H,
    msg: RawMessage<'_>,
) -> Outcome {
    let event = match prepare(queue, handler, msg) {
        Prepared::Done(outcome) => return outcome,
        Prepared::Handle(e) => e,
    };
    let outcome = match apply_one(pool, queue, handler, &event).await {
        Ok(true) => Outcome::Processed,
        Ok(false) => Outcome::Duplicate,
        Err(e) => Outcome::from_error(&e, event.retry_count),
    };
    record(queue, &event.routing_key, &outcome);
    outcome
}

/// Like [`handle_one`] for several messages in delivery order, sharing one transaction and one
/// multi-row `processed_events` insert. If any handler or the commit fails, the transaction is
/// rolled back and every message is handled again on its own, so one failure never affects
/// the others' outcome.
pub async fn handle_batch<H: Handler>(
    pool: &PgPool,
    queue: &str,
    handler: &H,
    msgs: &[RawMessage<'_>],
) -> Vec<Outcome> {
    if msgs.len() <= 1 {
        let mut out = Vec::with_capacity(1);
        for msg in msgs {
            out.push(handle_one(pool, queue, handler, *msg).await);
        }
        return out;
    }
    let prepared: Vec<Prepared> = msgs
        .iter()
        .map(|msg| prepare(queue, handler, *msg))
        .collect();
    match try_batch(pool, queue, handler, &prepared).await {
        Ok(outcomes) => {
            for (p, o) in prepared.iter().zip(&outcomes) {
                if let Prepared::Handle(e) = p {
                    record(queue, &e.routing_key, o);
                }
            }
            return outcomes;
        }
        // Handling them one by one would only wait for the pool once per message.
        Err(HandlerError::Unavailable(reason)) => {
            return unavailable_from(prepared, &reason);
        }
        Err(_) => {}
    }
    let mut out = Vec::with_capacity(msgs.len());
    let mut unavailable = false;
    for (msg, p) in msgs.iter().zip(prepared) {
        let outcome = match p {
            Prepared::Done(o) => o,
            Prepared::Handle(_) if unavailable => Outcome::Unavailable {
                reason: "database unavailable earlier in this batch".to_owned(),
            },
            Prepared::Handle(_) => handle_one(pool, queue, handler, *msg).await,
        };
        unavailable |= matches!(outcome, Outcome::Unavailable { .. });
        out.push(outcome);
    }
    out
}

fn unavailable_from(prepared: Vec<Prepared>, reason: &str) -> Vec<Outcome> {
    prepared
        .into_iter()
        .map(|p| match p {
            Prepared::Done(o) => o,
            Prepared::Handle(_) => Outcome::Unavailable {
                reason: reason.to_owned(),
            },
        })
        .collect()
}

/// Waits until the database answers `SELECT 1` (back-off 250 ms doubling to 5 s), or until
/// `shutdown`; returns whether the database is back.
async fn wait_for_database(pool: &PgPool, queue: &str, shutdown: &CancellationToken) -> bool {
    let mut delay = Duration::from_millis(250);
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return false,
        }
        match sqlx::query("SELECT 1").execute(pool).await {
            Ok(_) => {
                tracing::info!(%queue, "consumer: database reachable again");
                return true;
            }
            Err(e) => {
                tracing::debug!(%queue, error = %error_chain(&e), "consumer: database still unavailable");
            }
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn try_batch<H: Handler>(
    pool: &PgPool,
    queue: &str,
    handler: &H,
    prepared: &[Prepared],
) -> Result<Vec<Outcome>, HandlerError> {
    let events: Vec<&IncomingEvent> = prepared
        .iter()
        .filter_map(|p| match p {
            Prepared::Handle(e) => Some(e),
            Prepared::Done(_) => None,
        })
        .collect();
    let mut tx = pool.begin().await?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let keys: Vec<String> = events.iter().map(|e| e.routing_key.clone()).collect();
    let mut fresh: HashSet<Uuid> = if ids.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar::<_, Uuid>(
            "INSERT INTO processed_events (consumer, event_id, routing_key) \
             SELECT $1, t.id, t.key FROM unnest($2::uuid[], $3::text[]) AS t(id, key) \
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(queue)
        .bind(&ids)
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let mut out = Vec::with_capacity(prepared.len());
    for p in prepared {
        out.push(match p {
            Prepared::Done(o) => o.clone(),
            // The same id twice in one batch: only its first copy is fresh.
            Prepared::Handle(e) if fresh.remove(&e.id) => {
                timed(handler, queue, &mut tx, e).await?;
                Outcome::Processed
            }
            Prepared::Handle(_) => Outcome::Duplicate,
        });
    }
    tx.commit().await?;
    for (p, o) in prepared.iter().zip(&out) {
        if let (Prepared::Handle(e), Outcome::Processed) = (p, o) {
            handler.committed(e);
        }
    }
    Ok(out)
}

/// Deletes `processed_events` rows older than `days` (data.md §8 housekeeping, 30 days);
/// returns how many.
pub async fn delete_processed_older_than(
    conn: &mut PgConnection,
    days: i32,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM processed_events WHERE processed_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected())
}

/// How a consumer runs. Tests and benches build it directly.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// AMQP URL including the virtual host.
    pub amqp_url: String,
    pub queue: ConsumerQueue,
    /// Unacknowledged deliveries in flight (events.md §1.4: 16).
    pub prefetch: u16,
    /// Messages already delivered that may share one database transaction. 1 is the contract's
    /// "one message at a time"; larger values keep the order but batch the commits.
    pub max_batch: usize,
    pub connection_name: String,
}

impl ConsumerConfig {
    pub fn new(amqp_url: impl Into<String>, queue: ConsumerQueue) -> Self {
        let connection_name = format!("payplane-consumer-{}", queue.name);
        ConsumerConfig {
            amqp_url: amqp_url.into(),
            queue,
            prefetch: DEFAULT_PREFETCH,
            max_batch: 1,
            connection_name,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Connect(#[from] conn::ConnError),
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    #[error("broker channel")]
    Channel(#[source] lapin::Error),
    #[error("delivery stream of {queue} ended")]
    StreamEnded { queue: String },
}

#[derive(Debug, Default)]
struct ConsumerState {
    connected: AtomicBool,
}

/// Handle of a running consumer task.
#[derive(Debug)]
pub struct ConsumerHandle {
    state: Arc<ConsumerState>,
    task: JoinHandle<Result<(), ConsumerError>>,
}

impl ConsumerHandle {
    /// For readiness probes.
    pub fn broker_connected(&self) -> bool {
        self.state.connected.load(Ordering::Relaxed)
    }

    /// Waits for the task; `Err` only for a fatal topology mismatch (the service must not start).
    pub async fn join(self) -> Result<(), ConsumerError> {
        self.task.await.unwrap_or(Ok(()))
    }
}

/// Starts [`run`] on the current runtime. `shutdown` is the service's own token: a fatal
/// topology mismatch cancels it, so the whole service stops and [`ConsumerHandle::join`] names
/// the queue (events.md §1.2: the service refuses to start) instead of serving without events.
pub fn spawn<H: Handler>(
    pool: PgPool,
    config: ConsumerConfig,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> ConsumerHandle {
    let state = Arc::new(ConsumerState::default());
    let task_state = Arc::clone(&state);
    let task = tokio::spawn(async move {
        let stop = shutdown.clone();
        let res = run_with_state(pool, config, handler, shutdown, task_state).await;
        if res.is_err() {
            stop.cancel();
        }
        res
    });
    ConsumerHandle { state, task }
}

/// Consumes until `shutdown`, reconnecting forever with back-off. Returns `Err` only when the
/// queue exists with other arguments (events.md §1.2: refuse to start, naming the queue).
pub async fn run<H: Handler>(
    pool: PgPool,
    config: ConsumerConfig,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    run_with_state(
        pool,
        config,
        handler,
        shutdown,
        Arc::new(ConsumerState::default()),
    )
    .await
}

async fn run_with_state<H: Handler>(
    pool: PgPool,
    config: ConsumerConfig,
    handler: Arc<H>,
    shutdown: CancellationToken,
    state: Arc<ConsumerState>,
) -> Result<(), ConsumerError> {
    let mut backoff = conn::reconnect_backoff();
    while !shutdown.is_cancelled() {
        let result = session(
            &pool,
            &config,
            handler.as_ref(),
            &shutdown,
            &state,
            &mut backoff,
        )
        .await;
        state.connected.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => break,
            Err(ConsumerError::Topology(t)) if t.is_fatal() => {
                tracing::error!(error = %error_chain(&t), "consumer: refusing to start");
                return Err(ConsumerError::Topology(t));
            }
            Err(error) => {
                let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(error = %error_chain(&error), queue = %config.queue.name, ?delay, "consumer: reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    Ok(())
}

async fn session<H: Handler>(
    pool: &PgPool,
    config: &ConsumerConfig,
    handler: &H,
    shutdown: &CancellationToken,
    state: &ConsumerState,
    backoff: &mut backon::ExponentialBackoff,
) -> Result<(), ConsumerError> {
    let connection = conn::connect(&config.amqp_url, &config.connection_name).await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(ConsumerError::Channel)?;
    topology::declare_consumer(&channel, &config.queue).await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await
        .map_err(ConsumerError::Channel)?;
    // Retry and dead-letter copies go through their own confirm channel.
    let publisher = conn::confirm_channel(&connection)
        .await
        .map_err(ConsumerError::Channel)?;
    let mut deliveries = channel
        .basic_consume(
            config.queue.name.as_ref().into(),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(ConsumerError::Channel)?;
    state.connected.store(true, Ordering::Relaxed);
    *backoff = conn::reconnect_backoff();
    tracing::info!(queue = %config.queue.name, "consumer: connected");
    let max_batch = config.max_batch.max(1);
    loop {
        let first = tokio::select! {
            d = deliveries.next() => d,
            () = shutdown.cancelled() => return Ok(()),
        };
        let mut batch: Vec<Delivery> = Vec::with_capacity(max_batch);
        match first {
            Some(Ok(d)) => batch.push(d),
            Some(Err(e)) => return Err(ConsumerError::Channel(e)),
            None => {
                return Err(ConsumerError::StreamEnded {
                    queue: config.queue.name.to_string(),
                });
            }
        }
        // Take what the broker already delivered, without waiting for more.
        while batch.len() < max_batch {
            match deliveries.next().now_or_never() {
                Some(Some(Ok(d))) => batch.push(d),
                _ => break,
            }
        }
        let raws: Vec<RawMessage<'_>> = batch
            .iter()
            .map(|d| RawMessage {
                body: &d.data,
                headers: d.properties.headers().as_ref(),
            })
            .collect();
        let mut outcomes = handle_batch(pool, &config.queue.name, handler, &raws).await;
        // The deliveries stay unacknowledged while the database is away (prefetch bounds how
        // many); those already applied come back as duplicates. On shutdown they are left
        // unacknowledged and the broker redelivers them.
        while let Some(Outcome::Unavailable { reason }) = outcomes
            .iter()
            .find(|o| matches!(o, Outcome::Unavailable { .. }))
        {
            tracing::warn!(queue = %config.queue.name, error = %reason, "consumer: database unavailable; waiting for it");
            if !wait_for_database(pool, &config.queue.name, shutdown).await {
                return Ok(());
            }
            outcomes = handle_batch(pool, &config.queue.name, handler, &raws).await;
        }
        settle(&publisher, &config.queue, &batch, &outcomes).await?;
    }
}

/// Publishes the retry/dead-letter copies, then acks (or nacks with requeue the messages whose
/// copy was not confirmed). Acks happen only after the commit and after the copies' confirms.
async fn settle(
    publisher: &Channel,
    queue: &ConsumerQueue,
    batch: &[Delivery],
    outcomes: &[Outcome],
) -> Result<(), ConsumerError> {
    let mut copies: Vec<(usize, PublisherConfirm)> = Vec::new();
    let mut failed: HashSet<usize> = HashSet::new();
    for (i, (d, outcome)) in batch.iter().zip(outcomes).enumerate() {
        let routed = match outcome {
            Outcome::Retry { attempt, error } => Some(retry_copy(queue, d, *attempt, error)),
            Outcome::DeadLetter {
                class,
                reason,
                retries,
            } => Some(dead_letter_copy(queue, d, *class, reason, *retries)),
            _ => None,
        };
        if let Some((exchange, key, props)) = routed {
            match publisher
                .basic_publish(
                    exchange.into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    &d.data,
                    props,
                )
                .await
            {
                Ok(c) => copies.push((i, c)),
                Err(_) => {
                    failed.insert(i);
                }
            }
        }
    }
    for (i, confirm) in copies {
        match tokio::time::timeout(Duration::from_secs(10), confirm).await {
            Ok(Ok(c)) if c.is_ack() => {}
            _ => {
                failed.insert(i);
            }
        }
    }
    if failed.is_empty() {
        if let Some(last) = batch.last() {
            last.acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .map_err(ConsumerError::Channel)?;
        }
        return Ok(());
    }
    for (i, d) in batch.iter().enumerate() {
        let result = if failed.contains(&i) {
            // The queue's delivery limit (10) bounds this loop (events.md §6.3).
            d.acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
        } else {
            d.acker.ack(BasicAckOptions::default()).await
        };
        result.map_err(ConsumerError::Channel)?;
    }
    Ok(())
}

fn event_type(d: &Delivery) -> String {
    d.properties.kind().as_ref().map_or_else(
        || d.routing_key.as_str().to_owned(),
        |k| k.as_str().to_owned(),
    )
}

fn retry_copy(
    queue: &ConsumerQueue,
    d: &Delivery,
    attempt: u32,
    error: &str,
) -> (&'static str, String, BasicProperties) {
    let props = message::with_edited_headers(
        &d.properties,
        |map: &mut BTreeMap<ShortString, AMQPValue>| {
            map.insert(
                h::RETRY_COUNT.into(),
                AMQPValue::LongLongInt(i64::from(attempt)),
            );
            map.insert(
                h::LAST_ERROR.into(),
                message::text(message::truncate_chars(error, MAX_REASON_CHARS)),
            );
        },
    );
    let n = usize::try_from(attempt)
        .unwrap_or(1)
        .clamp(1, RETRY_DELAYS_MS.len());
    (DEFAULT_EXCHANGE, queue.retry_queue(n), props)
}

fn dead_letter_copy(
    queue: &ConsumerQueue,
    d: &Delivery,
    class: FailureClass,
    reason: &str,
    retries: u32,
) -> (&'static str, String, BasicProperties) {
    let routing_key = event_type(d);
    let props = message::with_edited_headers(&d.properties, |map| {
        map.insert(
            h::FAILURE_REASON.into(),
            message::text(message::truncate_chars(reason, MAX_REASON_CHARS)),
        );
        map.insert(h::FAILURE_CLASS.into(), message::text(class.as_str()));
        map.insert(
            h::FAILED_AT.into(),
            message::text(time::format(&time::now())),
        );
        map.insert(h::ORIGINAL_QUEUE.into(), message::text(queue.name.as_ref()));
        map.insert(h::ORIGINAL_ROUTING_KEY.into(), message::text(routing_key));
        map.insert(
            h::RETRY_COUNT.into(),
            AMQPValue::LongLongInt(i64::from(retries)),
        );
        map.insert(h::CONSUMER.into(), message::text(queue.owner.as_ref()));
    });
    (DLX_EXCHANGE, queue.dlq(), props)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_malformed_and_reads_retry_count() {
        assert!(matches!(
            IncomingEvent::parse(b"not json", None),
            Err(HandlerError::Permanent(_))
        ));
        let body = br#"{"id":"nope","type":"a.b.c","version":"1","timestamp":"2026-03-01T10:00:03.512Z","source":"auth","correlationId":"c","data":{}}"#;
        assert!(matches!(
            IncomingEvent::parse(body, None),
            Err(HandlerError::Permanent(_))
        ));
        let body = br#"{"id":"0b6f1c1e-8a3e-4f7a-9d61-3c0f7d2a9e10","type":"a.b.c","version":"1","timestamp":"2026-03-01T10:00:03.512Z","source":"auth","correlationId":"c","data":{"x":1}}"#;
        let mut headers = FieldTable::default();
        headers.insert(h::RETRY_COUNT.into(), AMQPValue::LongInt(2));
        let e = IncomingEvent::parse(body, Some(&headers)).unwrap();
        assert_eq!(e.retry_count, 2);
        assert_eq!(e.routing_key, "a.b.c");
        assert_eq!(e.causation_id, None);
    }

    #[test]
    fn retry_ladder_then_dead_letter() {
        let t = HandlerError::transient("db down");
        assert_eq!(
            Outcome::from_error(&t, 0),
            Outcome::Retry {
                attempt: 1,
                error: "db down".into()
            }
        );
        assert_eq!(
            Outcome::from_error(&t, 2),
            Outcome::Retry {
                attempt: 3,
                error: "db down".into()
            }
        );
        assert!(matches!(
            Outcome::from_error(&t, 3),
            Outcome::DeadLetter {
                class: FailureClass::RetriesExhausted,
                retries: 3,
                ..
            }
        ));
        assert!(matches!(
            Outcome::from_error(&HandlerError::permanent("bad"), 0),
            Outcome::DeadLetter {
                class: FailureClass::Permanent,
                ..
            }
        ));
    }
}
