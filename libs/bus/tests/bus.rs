//! Integration tests of the event backbone against the real RabbitMQ and PostgreSQL; each test
//! runs in its own vhost and database (`Sandbox`), so they run in parallel.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]
#![expect(
    clippy::unwrap_used,
    reason = "tests: a poisoned lock or bad conversion is a failure"
)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use lapin::{
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::{FieldTable, ShortString},
};
use payplane_bus::{
    conn,
    consumer::{
        self, ConsumerConfig, ConsumerHandle, Handler, HandlerError, IncomingEvent, Outcome,
        RawMessage,
    },
    dlq,
    outbox::{self, EventContext},
    relay::{self, Relay, RelayConfig, RelayHandle},
    sandbox::Sandbox,
};
use payplane_events::{
    ActorType, Event,
    payments::{PaymentCreated, PaymentSnapshot},
    time,
    topology::{ADMIN_EVENTS, EVENTS_EXCHANGE},
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize)]
struct Tick {
    aggregate: String,
    n: i64,
}

impl Event for Tick {
    const ROUTING_KEY: &'static str = "test.tick.happened";
    const AGGREGATE_TYPE: &'static str = "tick";
}

/// Writes the outbox row of `Tick { aggregate, n }` in `conn`'s transaction.
async fn enqueue_tick(conn: &mut PgConnection, aggregate: &str, n: i64) -> Result<Uuid> {
    let tick = Tick {
        aggregate: aggregate.to_owned(),
        n,
    };
    Ok(outbox::enqueue(conn, &ctx(), aggregate, &tick).await?)
}

/// Commits the outbox row of `Tick { aggregate, n }` in a transaction of its own.
async fn commit_tick(pool: &PgPool, aggregate: &str, n: i64) -> Result<Uuid> {
    let mut tx = pool.begin().await?;
    let id = enqueue_tick(&mut tx, aggregate, n).await?;
    tx.commit().await?;
    Ok(id)
}

fn ctx() -> EventContext {
    EventContext {
        source: "payments",
        correlation_id: "req-1".into(),
        causation_id: None,
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        tracestate: None,
    }
}

async fn setup(name: &str) -> Result<Sandbox> {
    let sb = Sandbox::create(name).await?;
    sqlx::raw_sql(
        "CREATE TABLE effects (seq bigserial PRIMARY KEY, event_id uuid NOT NULL, aggregate text, n bigint); \
         CREATE TABLE attempts (at timestamptz NOT NULL DEFAULT clock_timestamp(), event_id uuid NOT NULL);",
    )
    .execute(&sb.pool)
    .await?;
    Ok(sb)
}

/// Records each event in `effects` inside the consumer's transaction; optionally fails.
#[derive(Clone)]
struct Recorder {
    pool: PgPool,
    fail: Arc<Mutex<Option<HandlerError>>>,
}

impl Recorder {
    fn new(pool: &PgPool) -> Self {
        Recorder {
            pool: pool.clone(),
            fail: Arc::new(Mutex::new(None)),
        }
    }
    fn failing(pool: &PgPool, error: HandlerError) -> Self {
        let r = Recorder::new(pool);
        *r.fail.lock().unwrap() = Some(error);
        r
    }
}

impl Handler for Recorder {
    fn handles(&self, routing_key: &str) -> bool {
        routing_key != "test.ignored.thing"
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        // Outside the transaction, so attempts survive the rollback of a failure.
        sqlx::query("INSERT INTO attempts (event_id) VALUES ($1)")
            .bind(event.id)
            .execute(&self.pool)
            .await?;
        let fail = self.fail.lock().unwrap().clone();
        if let Some(error) = fail {
            return Err(error);
        }
        let (aggregate, n) = match event.payload::<Tick>() {
            Ok(t) => (Some(t.aggregate), Some(t.n)),
            Err(_) => (None, None),
        };
        sqlx::query("INSERT INTO effects (event_id, aggregate, n) VALUES ($1, $2, $3)")
            .bind(event.id)
            .bind(aggregate)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

struct Seen {
    routing_key: String,
    properties: lapin::BasicProperties,
    data: Vec<u8>,
}

/// A raw queue bound to every event, recording each delivery's message id (to count copies).
struct Tap {
    seen: Arc<Mutex<Vec<Seen>>>,
    _conn: lapin::Connection,
}

impl Tap {
    async fn start(sb: &Sandbox) -> Result<Tap> {
        let connection = conn::connect(&sb.amqp_url, "tap").await?;
        let ch = connection.create_channel().await?;
        payplane_bus::topology::declare_producer(&ch).await?;
        ch.queue_declare(
            "tap".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            "tap".into(),
            EVENTS_EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let mut consumer = ch
            .basic_consume(
                "tap".into(),
                ShortString::from(""),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                sink.lock().unwrap().push(Seen {
                    routing_key: d.routing_key.as_str().to_owned(),
                    properties: d.properties.clone(),
                    data: d.data.clone(),
                });
            }
        });
        Ok(Tap {
            seen,
            _conn: connection,
        })
    }

    fn count_by_id(&self) -> HashMap<String, usize> {
        let mut map = HashMap::new();
        for d in self.seen.lock().unwrap().iter() {
            let id = d
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default();
            *map.entry(id).or_insert(0) += 1;
        }
        map
    }
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Spawns a consumer of `handler` on `pool` and waits (up to 10 s) until it is connected to the
/// broker, so that what the test publishes next has a queue to land in.
async fn connected_consumer_with<H: Handler>(
    pool: PgPool,
    config: ConsumerConfig,
    handler: Arc<H>,
    shutdown: &CancellationToken,
) -> Result<ConsumerHandle> {
    let consumer = consumer::spawn(pool, config, handler, shutdown.clone());
    wait_for("consumer", Duration::from_secs(10), || async {
        Ok(consumer.broker_connected())
    })
    .await?;
    Ok(consumer)
}

/// [`connected_consumer_with`] on the sandbox's database with the tests' consumer config.
async fn connected_consumer<H: Handler>(
    sb: &Sandbox,
    handler: Arc<H>,
    shutdown: &CancellationToken,
) -> Result<ConsumerHandle> {
    connected_consumer_with(sb.pool.clone(), consumer_config(sb), handler, shutdown).await
}

/// A connected consumer recording into `effects` in batches of up to 16 events, and a relay.
async fn batched_pipeline(
    sb: &Sandbox,
    shutdown: &CancellationToken,
) -> Result<(ConsumerHandle, RelayHandle)> {
    let mut cc = consumer_config(sb);
    cc.max_batch = 16;
    let handler = Arc::new(Recorder::new(&sb.pool));
    let consumer = connected_consumer_with(sb.pool.clone(), cc, handler, shutdown).await?;
    let relay = Relay::spawn(sb.pool.clone(), relay_config(sb), shutdown.clone());
    Ok((consumer, relay))
}

/// A connected consumer whose handler fails every event with `error` (until told otherwise
/// through the returned handler), and a relay.
async fn failing_pipeline(
    sb: &Sandbox,
    error: HandlerError,
    shutdown: &CancellationToken,
) -> Result<(Arc<Recorder>, ConsumerHandle, RelayHandle)> {
    let handler = Arc::new(Recorder::failing(&sb.pool, error));
    let consumer = connected_consumer(sb, Arc::clone(&handler), shutdown).await?;
    let relay = Relay::spawn(sb.pool.clone(), relay_config(sb), shutdown.clone());
    Ok((handler, consumer, relay))
}

/// Stops the relay and the consumer of a test; the consumer must end without an error.
async fn stop(
    shutdown: &CancellationToken,
    relay: RelayHandle,
    consumer: ConsumerHandle,
) -> Result<()> {
    shutdown.cancel();
    relay.join().await;
    consumer.join().await?;
    Ok(())
}

async fn wait_dlq(
    ch: &lapin::Channel,
    n: usize,
    timeout: Duration,
) -> Result<Vec<dlq::DlqMessage>> {
    let start = Instant::now();
    loop {
        let parked = dlq::list(ch, "admin.events", 10).await?;
        if parked.len() >= n {
            return Ok(parked);
        }
        if start.elapsed() > timeout {
            bail!("timed out waiting for {n} dead letters");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages ready in `queue` (passive declare: exact, unlike the management statistics).
async fn ready(ch: &lapin::Channel, queue: &str) -> Result<u32> {
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

async fn count(pool: &PgPool, sql: &'static str) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?)
}

/// Outbox rows no relay has marked published yet.
async fn unpublished(pool: &PgPool) -> Result<i64> {
    count(
        pool,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
    )
    .await
}

fn relay_config(sb: &Sandbox) -> RelayConfig {
    let mut c = RelayConfig::new(&sb.amqp_url);
    c.standby_interval = Duration::from_millis(200);
    c
}

fn consumer_config(sb: &Sandbox) -> ConsumerConfig {
    ConsumerConfig::new(&sb.amqp_url, ADMIN_EVENTS)
}

async fn write_ticks(
    pool: &PgPool,
    aggregates: usize,
    per_aggregate: i64,
    per_tx: usize,
) -> Result<()> {
    let mut pending: Vec<(String, i64)> = Vec::new();
    for n in 0..per_aggregate {
        for a in 0..aggregates {
            pending.push((format!("agg-{a}"), n));
        }
    }
    for chunk in pending.chunks(per_tx) {
        let mut tx = pool.begin().await?;
        for (aggregate, n) in chunk {
            enqueue_tick(&mut tx, aggregate, *n).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

fn payment() -> PaymentCreated {
    let at = time::now();
    PaymentCreated {
        payment: PaymentSnapshot {
            payment_id: Uuid::new_v4(),
            sender_id: Uuid::new_v4(),
            recipient_id: Uuid::new_v4(),
            amount: "1000.00".into(),
            currency: "EUR".into(),
            status: "pending".into(),
            payment_type: "transfer".into(),
            description: "rent".into(),
            scheduled_for: None,
            psp_transaction_id: None,
            psp_status: None,
            failure_reason: None,
            completed_at: None,
            created_at: at,
            updated_at: at,
        },
        actor_id: None,
        actor_type: ActorType::User,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_consume_end_to_end_with_exact_envelope() -> Result<()> {
    let sb = setup("bus_e2e").await?;
    let shutdown = CancellationToken::new();
    let handler = Arc::new(Recorder::new(&sb.pool));
    let consumer = connected_consumer(&sb, Arc::clone(&handler), &shutdown).await?;
    let tap = Tap::start(&sb).await?;
    let relay = Relay::spawn(sb.pool.clone(), relay_config(&sb), shutdown.clone());

    let event = payment();
    let mut tx = sb.pool.begin().await?;
    let id = outbox::enqueue(
        &mut tx,
        &ctx(),
        &event.payment.payment_id.to_string(),
        &event,
    )
    .await?;
    tx.commit().await?;

    wait_for("effect", Duration::from_secs(10), || async {
        Ok(count(&sb.pool, "SELECT count(*) FROM effects").await? == 1)
    })
    .await?;
    wait_for("tap", Duration::from_secs(5), || async {
        Ok(tap.seen.lock().unwrap().len() == 1)
    })
    .await?;
    assert!(relay.broker_connected() && relay.is_active());

    let stored: serde_json::Value = sqlx::query_scalar("SELECT envelope FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&sb.pool)
        .await?;
    // The relay marks the row in its own transaction after the broker's confirm, which can
    // commit after the consumer already has the message: wait for it with a deadline.
    wait_for(
        "the row marked published",
        Duration::from_secs(10),
        || async {
            let published_at: Option<chrono::DateTime<chrono::Utc>> =
                sqlx::query_scalar("SELECT published_at FROM outbox WHERE id = $1")
                    .bind(id)
                    .fetch_one(&sb.pool)
                    .await?;
            Ok(published_at.is_some())
        },
    )
    .await?;
    let d = tap.seen.lock().unwrap().remove(0);
    let body: serde_json::Value = serde_json::from_slice(&d.data)?;
    assert_eq!(body, stored);
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["type"], "payments.payment.created");
    assert_eq!(body["version"], "1");
    assert_eq!(body["source"], "payments");
    assert_eq!(body["correlationId"], "req-1");
    assert!(
        body.get("causationId").is_none(),
        "omitted for HTTP-caused events"
    );
    assert_eq!(body["data"], serde_json::to_value(&event)?);
    let ts = body["timestamp"].as_str().context("timestamp")?;
    assert_eq!(ts.len(), "2026-03-01T10:00:03.512Z".len());
    let p = &d.properties;
    assert_eq!(d.routing_key, "payments.payment.created");
    assert_eq!(
        p.content_type().as_ref().map(ShortString::as_str),
        Some("application/json")
    );
    assert_eq!(p.delivery_mode(), &Some(2));
    assert_eq!(
        p.message_id().as_ref().map(ShortString::as_str),
        Some(id.to_string().as_str())
    );
    assert_eq!(
        p.kind().as_ref().map(ShortString::as_str),
        Some("payments.payment.created")
    );
    assert_eq!(
        p.app_id().as_ref().map(ShortString::as_str),
        Some("payments")
    );
    assert_eq!(
        p.correlation_id().as_ref().map(ShortString::as_str),
        Some("req-1")
    );
    let secs = chrono::DateTime::parse_from_rfc3339(ts)?.timestamp();
    assert_eq!(p.timestamp().map(|t| i64::try_from(t).unwrap()), Some(secs));
    assert_eq!(
        payplane_bus::message::header_str(p.headers().as_ref(), "traceparent").as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    let (eid, key): (Uuid, String) = sqlx::query_as(
        "SELECT event_id, routing_key FROM processed_events WHERE consumer = 'admin.events'",
    )
    .fetch_one(&sb.pool)
    .await?;
    assert_eq!((eid, key.as_str()), (id, "payments.payment.created"));

    stop(&shutdown, relay, consumer).await
}

/// One step of the `admin.events` consumer on a message of `body` without headers.
async fn handle_body(pool: &PgPool, handler: &Recorder, body: &[u8]) -> Outcome {
    let msg = RawMessage {
        body,
        headers: None,
    };
    consumer::handle_one(pool, "admin.events", handler, msg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_delivery_has_exactly_one_effect_and_filters_are_acked() -> Result<()> {
    let sb = setup("bus_dup").await?;
    let handler = Recorder::new(&sb.pool);
    let id = Uuid::new_v4();
    let body = format!(
        r#"{{"id":"{id}","type":"test.tick.happened","version":"1","timestamp":"2026-03-01T10:00:03.512Z","source":"payments","correlationId":"c","data":{{"aggregate":"a","n":1}}}}"#
    );
    let msg = RawMessage {
        body: body.as_bytes(),
        headers: None,
    };
    assert_eq!(
        consumer::handle_one(&sb.pool, "admin.events", &handler, msg).await,
        Outcome::Processed
    );
    assert_eq!(
        consumer::handle_one(&sb.pool, "admin.events", &handler, msg).await,
        Outcome::Duplicate
    );
    // Two copies in one batch: one effect.
    let id2 = Uuid::new_v4();
    let body2 = body.replace(&id.to_string(), &id2.to_string());
    let msg2 = RawMessage {
        body: body2.as_bytes(),
        headers: None,
    };
    let outcomes =
        consumer::handle_batch(&sb.pool, "admin.events", &handler, &[msg2, msg2, msg]).await;
    assert_eq!(
        outcomes,
        [Outcome::Processed, Outcome::Duplicate, Outcome::Duplicate]
    );
    let v2 = body.replace(r#""version":"1""#, r#""version":"2""#);
    let ignored = body.replace("test.tick.happened", "test.ignored.thing");
    assert_eq!(
        handle_body(&sb.pool, &handler, v2.as_bytes()).await,
        Outcome::UnsupportedVersion
    );
    assert_eq!(
        handle_body(&sb.pool, &handler, ignored.as_bytes()).await,
        Outcome::Ignored
    );
    assert!(matches!(
        handle_body(&sb.pool, &handler, b"{}").await,
        Outcome::DeadLetter { .. }
    ));
    assert_eq!(count(&sb.pool, "SELECT count(*) FROM effects").await?, 2);

    // Through the broker: the same event published twice is applied once.
    let shutdown = CancellationToken::new();
    let consumer = connected_consumer(&sb, Arc::new(handler), &shutdown).await?;
    commit_tick(&sb.pool, "a", 7).await?;
    let mut c = sb.pool.acquire().await?;
    let rows = outbox::fetch_unpublished(&mut c, 10).await?;
    let connection = conn::connect(&sb.amqp_url, "dup").await?;
    let ch = conn::confirm_channel(&connection).await?;
    for _ in 0..2 {
        assert!(relay::publish_row(&ch, &rows[0]).await?.await?.is_ack());
    }
    wait_for("both copies handled", Duration::from_secs(10), || async {
        Ok(
            count(&sb.pool, "SELECT count(*) FROM processed_events").await? == 3
                && ready(&ch, "admin.events").await? == 0,
        )
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&sb.pool, "SELECT count(*) FROM effects WHERE n = 7").await?,
        1
    );
    shutdown.cancel();
    consumer.join().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_handler_parks_message_in_dlq_after_three_spaced_retries() -> Result<()> {
    let sb = setup("bus_retry").await?;
    let shutdown = CancellationToken::new();
    let error = HandlerError::transient("database unavailable");
    let (_, consumer, relay) = failing_pipeline(&sb, error, &shutdown).await?;
    let id = commit_tick(&sb.pool, "a", 1).await?;

    let connection = conn::connect(&sb.amqp_url, "dlq-check").await?;
    let ch = connection.create_channel().await?;
    let parked = wait_dlq(&ch, 1, Duration::from_secs(15)).await?;
    assert_eq!(parked.len(), 1);
    let m = &parked[0];
    assert_eq!(m.message_id.as_deref(), Some(id.to_string().as_str()));
    assert_eq!(m.retry_count, Some(3));
    assert_eq!(m.failure_class.as_deref(), Some("retries_exhausted"));
    assert_eq!(m.routing_key.as_deref(), Some("test.tick.happened"));
    assert!(
        m.failure_reason
            .as_deref()
            .unwrap_or_default()
            .contains("database unavailable")
    );
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT at FROM attempts ORDER BY at")
            .fetch_all(&sb.pool)
            .await?;
    assert_eq!(times.len(), 4, "one attempt plus exactly three retries");
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_seconds_f64())
        .collect();
    println!("retry spacing: {gaps:.2?} s");
    for (gap, expected) in gaps.iter().zip([1.0, 2.0, 4.0]) {
        assert!(
            *gap >= expected * 0.95 && *gap < expected + 1.0,
            "gap {gap} vs {expected}"
        );
    }
    assert_eq!(count(&sb.pool, "SELECT count(*) FROM effects").await?, 0);
    assert_eq!(
        count(&sb.pool, "SELECT count(*) FROM processed_events").await?,
        0
    );
    // Still parked after listing.
    assert_eq!(dlq::list(&ch, "admin.events", 10).await?.len(), 1);
    stop(&shutdown, relay, consumer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_is_parked_at_once_then_replayed_and_purged() -> Result<()> {
    let sb = setup("bus_dlqops").await?;
    let shutdown = CancellationToken::new();
    let error = HandlerError::permanent("invariant broken");
    let (handler, consumer, relay) = failing_pipeline(&sb, error, &shutdown).await?;
    write_ticks(&sb.pool, 3, 1, 3).await?;
    let connection = conn::connect(&sb.amqp_url, "dlq-ops").await?;
    let ch = connection.create_channel().await?;
    let parked = wait_dlq(&ch, 3, Duration::from_secs(10)).await?;
    assert!(
        parked
            .iter()
            .all(|m| m.failure_class.as_deref() == Some("permanent") && m.retry_count == Some(0))
    );
    assert_eq!(
        count(&sb.pool, "SELECT count(*) FROM attempts").await?,
        3,
        "no retry for permanent failures"
    );

    *handler.fail.lock().unwrap() = None;
    let first = parked[0].message_id.clone();
    let dry = dlq::replay(&ch, "admin.events", first.as_deref(), 10, true).await?;
    assert_eq!(dry.len(), 1);
    assert_eq!(
        dlq::list(&ch, "admin.events", 10).await?.len(),
        3,
        "dry run moves nothing"
    );
    let replayed = dlq::replay(&ch, "admin.events", first.as_deref(), 10, false).await?;
    assert_eq!(replayed.len(), 1);
    wait_for("replayed effect", Duration::from_secs(10), || async {
        Ok(count(&sb.pool, "SELECT count(*) FROM effects").await? == 1)
    })
    .await?;
    assert_eq!(dlq::list(&ch, "admin.events", 10).await?.len(), 2);
    let second = parked[1].message_id.clone();
    assert_eq!(dlq::purge(&ch, "admin.events", second.as_deref()).await?, 1);
    assert_eq!(dlq::list(&ch, "admin.events", 10).await?.len(), 1);
    assert_eq!(dlq::purge(&ch, "admin.events", None).await?, 1);
    assert!(dlq::list(&ch, "admin.events", 10).await?.is_empty());
    stop(&shutdown, relay, consumer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_crash_between_publish_and_mark_republishes_and_consumer_applies_once() -> Result<()>
{
    let sb = setup("bus_crash").await?;
    let shutdown = CancellationToken::new();
    let consumer = connected_consumer(&sb, Arc::new(Recorder::new(&sb.pool)), &shutdown).await?;
    let tap = Tap::start(&sb).await?;
    write_ticks(&sb.pool, 5, 10, 10).await?;

    // A relay that published and got its confirms, then died before marking.
    {
        let mut c = sb.pool.acquire().await?;
        let rows = outbox::fetch_unpublished(&mut c, 100).await?;
        let connection = conn::connect(&sb.amqp_url, "doomed-relay").await?;
        let ch = conn::confirm_channel(&connection).await?;
        let (confirmed, error) = relay::publish_batch(&ch, &rows, Duration::from_secs(10)).await;
        assert!(error.is_none());
        assert_eq!(confirmed, 50);
    }
    assert_eq!(unpublished(&sb.pool).await?, 50);
    let probe_conn = conn::connect(&sb.amqp_url, "probe").await?;
    let probe = probe_conn.create_channel().await?;
    let relay = Relay::spawn(sb.pool.clone(), relay_config(&sb), shutdown.clone());
    wait_for("all marked", Duration::from_secs(10), || async {
        Ok(unpublished(&sb.pool).await? == 0)
    })
    .await?;
    wait_for("both copies consumed", Duration::from_secs(10), || async {
        Ok(
            count(&sb.pool, "SELECT count(*) FROM attempts").await? >= 50
                && tap.seen.lock().unwrap().len() == 100
                && ready(&probe, "admin.events").await? == 0,
        )
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tap.count_by_id().values().all(|n| *n == 2),
        "every event was published twice"
    );
    assert_eq!(count(&sb.pool, "SELECT count(*) FROM effects").await?, 50);
    assert_eq!(
        count(&sb.pool, "SELECT count(DISTINCT event_id) FROM effects").await?,
        50
    );
    stop(&shutdown, relay, consumer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_per_aggregate_is_kept_over_1000_events() -> Result<()> {
    let sb = setup("bus_order").await?;
    let shutdown = CancellationToken::new();
    let (consumer, relay) = batched_pipeline(&sb, &shutdown).await?;
    write_ticks(&sb.pool, 10, 100, 7).await?;
    wait_for("1000 effects", Duration::from_secs(30), || async {
        Ok(count(&sb.pool, "SELECT count(*) FROM effects").await? == 1000)
    })
    .await?;
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT aggregate, n FROM effects ORDER BY seq")
        .fetch_all(&sb.pool)
        .await?;
    let mut last: HashMap<String, i64> = HashMap::new();
    for (aggregate, n) in rows {
        let prev = last.insert(aggregate.clone(), n);
        assert_eq!(
            prev.map_or(0, |p| p + 1),
            n,
            "aggregate {aggregate} out of order"
        );
    }
    assert_eq!(last.len(), 10);
    stop(&shutdown, relay, consumer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_outbox_publish_each_event_once() -> Result<()> {
    let sb = setup("bus_tworelays").await?;
    let shutdown = CancellationToken::new();
    let tap = Tap::start(&sb).await?;
    let a = Relay::spawn(sb.pool.clone(), relay_config(&sb), shutdown.clone());
    let b = Relay::spawn(sb.pool.clone(), relay_config(&sb), shutdown.clone());
    let writers = (0..2).map(|_| {
        let pool = sb.pool.clone();
        tokio::spawn(async move { write_ticks(&pool, 20, 15, 5).await })
    });
    for w in writers {
        w.await??;
    }
    wait_for("600 published", Duration::from_secs(20), || async {
        Ok(tap.seen.lock().unwrap().len() >= 600)
    })
    .await?;
    assert_eq!(
        usize::from(a.is_active()) + usize::from(b.is_active()),
        1,
        "one active relay"
    );
    // The active one dies; the standby takes over.
    let (active, standby) = if a.is_active() { (a, b) } else { (b, a) };
    active.abort();
    write_ticks(&sb.pool, 20, 10, 20).await?;
    wait_for("800 published", Duration::from_secs(20), || async {
        Ok(tap.seen.lock().unwrap().len() >= 800)
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(standby.is_active());
    let counts = tap.count_by_id();
    assert_eq!(counts.len(), 800);
    assert!(
        counts.values().all(|n| *n == 1),
        "an event was published twice"
    );
    shutdown.cancel();
    standby.join().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_connections_killed_under_load_every_event_consumed_once() -> Result<()> {
    let sb = setup("bus_fault").await?;
    let shutdown = CancellationToken::new();
    let (consumer, relay) = batched_pipeline(&sb, &shutdown).await?;
    wait_for("relay", Duration::from_secs(10), || async {
        Ok(relay.broker_connected())
    })
    .await?;

    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let pool = sb.pool.clone();
        let producing = Arc::clone(&producing);
        tokio::spawn(async move {
            let mut n = 0;
            while producing.load(Ordering::Relaxed) {
                let mut tx = pool.begin().await?;
                for a in 0..5 {
                    enqueue_tick(&mut tx, &format!("agg-{a}"), n).await?;
                }
                tx.commit().await?;
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            anyhow::Ok(n)
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_for("connections listed", Duration::from_secs(10), || async {
        Ok(sb.broker_connections()?.len() >= 2)
    })
    .await?;
    let before = count(&sb.pool, "SELECT count(*) FROM effects").await?;
    let kill_time = chrono::Utc::now();
    let killed_at = Instant::now();
    let closed = sb.close_broker_connections()?;
    assert!(
        closed >= 2,
        "relay and consumer connections closed (got {closed})"
    );
    // Recovered = both sides reconnected and an event written after the kill was applied.
    let recovery = loop {
        let flowing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM effects e JOIN outbox o ON o.id = e.event_id WHERE o.created_at > $1",
        )
        .bind(kill_time)
        .fetch_one(&sb.pool)
        .await?;
        if flowing > 0 && relay.broker_connected() && consumer.broker_connected() {
            break killed_at.elapsed();
        }
        if killed_at.elapsed() > Duration::from_secs(15) {
            bail!("no recovery within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    producing.store(false, Ordering::Relaxed);
    let batches = producer.await??;
    let probe_conn = conn::connect(&sb.amqp_url, "probe").await?;
    let probe = probe_conn.create_channel().await?;
    let written = count(&sb.pool, "SELECT count(*) FROM outbox").await?;
    assert_eq!(written, batches * 5);
    wait_for("all consumed", Duration::from_secs(20), || async {
        Ok(
            count(&sb.pool, "SELECT count(*) FROM effects").await? >= written
                && ready(&probe, "admin.events").await? == 0,
        )
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let applied = count(&sb.pool, "SELECT count(*) FROM effects").await?;
    let distinct = count(&sb.pool, "SELECT count(DISTINCT event_id) FROM effects").await?;
    println!(
        "fault test: {written} events written, {applied} effects applied ({distinct} distinct), {before} before the kill; \
         {closed} connections closed; recovery took {:.2} s",
        recovery.as_secs_f64()
    );
    assert_eq!(applied, written);
    assert_eq!(distinct, written);
    stop(&shutdown, relay, consumer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_refuses_to_start_on_queue_argument_mismatch_and_names_the_queue() -> Result<()> {
    let sb = setup("bus_mismatch").await?;
    let connection = conn::connect(&sb.amqp_url, "operator").await?;
    let ch = connection.create_channel().await?;
    // Declared earlier by someone else as a classic queue.
    ch.queue_declare(
        "admin.events".into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        consumer::run(
            sb.pool.clone(),
            consumer_config(&sb),
            Arc::new(Recorder::new(&sb.pool)),
            CancellationToken::new(),
        ),
    )
    .await?;
    let error = result.err().context("must refuse to start")?;
    let text = format!("{error}");
    assert!(
        text.contains("admin.events") && text.contains("refusing to start"),
        "{text}"
    );
    // Spawned the way services run it, the mismatch also stops the service it belongs to.
    let service_shutdown = CancellationToken::new();
    let handle = consumer::spawn(
        sb.pool.clone(),
        consumer_config(&sb),
        Arc::new(Recorder::new(&sb.pool)),
        service_shutdown.clone(),
    );
    tokio::time::timeout(Duration::from_secs(10), service_shutdown.cancelled()).await?;
    let error = handle
        .join()
        .await
        .err()
        .context("join names the failure")?;
    assert!(format!("{error}").contains("admin.events"), "{error}");
    Ok(())
}

/// A transaction that took a lower seq but committed after later rows were read and sent is
/// read before the next event of its aggregate, even while those later rows are in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commit_with_lower_seq_is_read_before_later_events_of_its_aggregate() -> Result<()> {
    let sb = setup("bus_late_commit").await?;
    let mut late = sb.pool.begin().await?;
    enqueue_tick(&mut late, "x", 1).await?;
    let mut other = sb.pool.begin().await?;
    enqueue_tick(&mut other, "y", 1).await?;
    enqueue_tick(&mut other, "y", 2).await?;
    other.commit().await?;
    let mut relay_conn = sb.pool.acquire().await?;
    let sent = outbox::fetch_unpublished_excluding(&mut relay_conn, 0, 100, &[]).await?;
    assert_eq!(
        sent.iter()
            .map(|r| r.aggregate_id.as_str())
            .collect::<Vec<_>>(),
        ["y", "y"]
    );
    // x's first event commits while y's rows are still unconfirmed, then x's second one.
    late.commit().await?;
    let mut next = sb.pool.begin().await?;
    enqueue_tick(&mut next, "x", 2).await?;
    next.commit().await?;
    let in_flight: Vec<i64> = sent.iter().map(|r| r.seq).collect();
    let rows = outbox::fetch_unpublished_excluding(&mut relay_conn, 0, 100, &in_flight).await?;
    let read: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            let data: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            (r.aggregate_id.clone(), data["data"]["n"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(read, [("x".to_owned(), 1), ("x".to_owned(), 2)]);
    assert!(
        rows[0].seq < in_flight[0],
        "the late row has the lowest seq"
    );
    Ok(())
}

/// A TCP forwarder to PostgreSQL that the test can take down (connections refused, open ones
/// cut) and bring back on the same port: a database outage for one pool only, without
/// restarting the machine's PostgreSQL under the other tests.
struct Outage {
    addr: std::net::SocketAddr,
    stop: Option<CancellationToken>,
}

impl Outage {
    async fn start() -> Result<Outage> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut o = Outage { addr, stop: None };
        o.serve(listener);
        Ok(o)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let stop = CancellationToken::new();
        self.stop = Some(stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = stop.cancelled() => return,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        });
    }

    /// Refuses new connections and cuts the open ones.
    fn down(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
        }
    }

    async fn up(&mut self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_longer_than_the_retry_ladder_is_waited_out_not_dead_lettered() -> Result<()>
{
    let sb = setup("bus_outage").await?;
    let mut outage = Outage::start().await?;
    let (_, db) = sb.database_url.rsplit_once('/').context("database url")?;
    let through_proxy = format!("postgres://postgres@{}/{db}", outage.addr);
    let consumer_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect(&through_proxy)
        .await?;
    let shutdown = CancellationToken::new();
    let consumer = connected_consumer_with(
        consumer_pool,
        consumer_config(&sb),
        Arc::new(Recorder::new(&sb.pool)),
        &shutdown,
    )
    .await?;
    let relay = Relay::spawn(sb.pool.clone(), relay_config(&sb), shutdown.clone());

    outage.down();
    let id = commit_tick(&sb.pool, "a", 1).await?;
    let connection = conn::connect(&sb.amqp_url, "outage-check").await?;
    let ch = connection.create_channel().await?;
    wait_for("the relay to publish", Duration::from_secs(10), || async {
        Ok(unpublished(&sb.pool).await? == 0)
    })
    .await?;
    // Longer than the whole ladder of the old behaviour: 1 + 2 + 4 s of delays plus a 1 s
    // pool timeout per attempt.
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert!(
        dlq::list(&ch, "admin.events", 10).await?.is_empty(),
        "dead-lettered during the outage"
    );
    assert_eq!(count(&sb.pool, "SELECT count(*) FROM effects").await?, 0);

    outage.up().await?;
    wait_for(
        "the event applied after the outage",
        Duration::from_secs(20),
        || async { Ok(count(&sb.pool, "SELECT count(*) FROM effects").await? == 1) },
    )
    .await?;
    let applied: Uuid = sqlx::query_scalar("SELECT event_id FROM effects")
        .fetch_one(&sb.pool)
        .await?;
    assert_eq!(applied, id);
    assert!(dlq::list(&ch, "admin.events", 10).await?.is_empty());
    stop(&shutdown, relay, consumer).await
}
