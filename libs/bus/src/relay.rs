//! The outbox relay (events.md §6.1): one active instance per database, chosen by a PostgreSQL
//! advisory lock, publishes unpublished outbox rows in sequence order with publisher confirms
//! and marks them published only after the broker acknowledged them. Wakes on `NOTIFY outbox`
//! and polls every second as a fallback. Does database and network I/O.
//!
//! Deviation from "one by one" in §6.1 step 3, for throughput: a batch is published pipelined
//! (all publishes in flight, then the confirms awaited in order) and the confirmed prefix is
//! marked in one UPDATE. Guarantees kept: a row is marked only after its confirm; on the first
//! nack/timeout/error the batch stops there and that row is retried after a back-off, later
//! rows wait. A connection loss mid-batch cannot reorder an aggregate's events because the
//! broker receives a channel's publishes in order (a prefix arrives, the rest is re-sent, the
//! re-sent prefix is deduplicated by consumers). Only a broker nack of one message followed by
//! acks of later ones could let a later event of the same aggregate overtake; consumers'
//! "ignore data that is not newer" rule (§6.2) covers that case. Set `batch_size = 1` and
//! `pipeline_depth = 1` for the literal one-by-one behaviour.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tracing::Instrument;

use lapin::{Channel, Connection, PublisherConfirm, options::BasicPublishOptions};
use payplane_events::topology::EVENTS_EXCHANGE;
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    conn, message, metrics as m,
    outbox::{self, OutboxRow},
    topology,
};

/// Advisory lock key shared by every relay of a database (any constant works; it only has to
/// be the same across replicas of one service).
pub const DEFAULT_LOCK_KEY: i64 = 0x7061_7970_6c61_6e65; // "payplane"

/// How a relay runs. Tests and benches build it directly.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// AMQP URL including the virtual host.
    pub amqp_url: String,
    /// Connection name shown in the broker's management UI.
    pub connection_name: String,
    pub lock_key: i64,
    /// Rows read and published per batch (events.md §6.1: 100).
    pub batch_size: i64,
    /// Fallback poll when no NOTIFY arrives (1 s).
    pub poll_interval: Duration,
    /// How often a standby replica retries the lock (5 s).
    pub standby_interval: Duration,
    /// How long to wait for the confirms of a batch (10 s).
    pub confirm_timeout: Duration,
    /// Batches sent before the oldest one's confirms are awaited (1 = strictly one batch at a time).
    pub pipeline_depth: usize,
    /// How far below the highest published seq a fetch starts (a full scan runs every
    /// `poll_interval`); see `ScanState`.
    pub lookback: i64,
}

impl RelayConfig {
    pub fn new(amqp_url: impl Into<String>) -> Self {
        RelayConfig {
            amqp_url: amqp_url.into(),
            connection_name: "payplane-relay".into(),
            lock_key: DEFAULT_LOCK_KEY,
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            standby_interval: Duration::from_secs(5),
            confirm_timeout: Duration::from_secs(10),
            pipeline_depth: 2,
            lookback: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Connect(#[from] conn::ConnError),
    #[error("opening the relay's confirm channel")]
    Channel(#[source] lapin::Error),
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    #[error("publishing outbox row {seq}")]
    Publish {
        seq: i64,
        #[source]
        source: lapin::Error,
    },
    #[error("broker nacked outbox row {seq}")]
    Nacked { seq: i64 },
    #[error("no confirm for outbox row {seq} within {timeout:?}")]
    ConfirmTimeout { seq: i64, timeout: Duration },
}

#[derive(Debug, Default)]
struct RelayState {
    broker_connected: AtomicBool,
    active: AtomicBool,
}

/// Handle of a running relay task.
#[derive(Debug)]
pub struct RelayHandle {
    state: Arc<RelayState>,
    task: JoinHandle<()>,
}

impl RelayHandle {
    /// For readiness probes: the active relay holds an open confirm channel to the broker. A
    /// standby replica does not connect and reports `false`; combine with [`Self::is_active`].
    pub fn broker_connected(&self) -> bool {
        self.state.broker_connected.load(Ordering::Relaxed)
    }

    /// Whether this replica holds the advisory lock and publishes.
    pub fn is_active(&self) -> bool {
        self.state.active.load(Ordering::Relaxed)
    }

    /// Waits for the task to end (after the shutdown token was cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// Stops the task at once, as a crash would (tests).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// The relay task.
pub struct Relay;

impl Relay {
    /// Starts the relay on the current tokio runtime.
    pub fn spawn(pool: PgPool, config: RelayConfig, shutdown: CancellationToken) -> RelayHandle {
        let state = Arc::new(RelayState::default());
        let task = tokio::spawn(run(pool, config, shutdown, Arc::clone(&state)));
        RelayHandle { state, task }
    }
}

async fn sleep_or_cancel(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        () = shutdown.cancelled() => true,
    }
}

async fn run(
    pool: PgPool,
    config: RelayConfig,
    shutdown: CancellationToken,
    state: Arc<RelayState>,
) {
    let mut db_backoff = conn::reconnect_backoff();
    while !shutdown.is_cancelled() {
        // The lock lives on a detached connection: if it breaks, the lock is released and we
        // stop publishing, so two relays are never active at once.
        let mut lock_conn = match acquire_lock(&pool, &config, &shutdown, &state).await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(%error, "relay: taking the outbox lock failed");
                if sleep_or_cancel(
                    db_backoff.next().unwrap_or(Duration::from_secs(30)),
                    &shutdown,
                )
                .await
                {
                    break;
                }
                continue;
            }
        };
        db_backoff = conn::reconnect_backoff();
        state.active.store(true, Ordering::Relaxed);
        tracing::info!("relay: active");
        if let Err(error) = run_active(&pool, &mut lock_conn, &config, &shutdown, &state).await {
            tracing::warn!(error = %error_chain(&error), "relay: lost the database, standing by");
        }
        state.active.store(false, Ordering::Relaxed);
        state.broker_connected.store(false, Ordering::Relaxed);
    }
    state.active.store(false, Ordering::Relaxed);
    state.broker_connected.store(false, Ordering::Relaxed);
}

async fn acquire_lock(
    pool: &PgPool,
    config: &RelayConfig,
    shutdown: &CancellationToken,
    state: &RelayState,
) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut c = pool.acquire().await?.detach();
    // Losing a "published" mark in a database crash only causes a duplicate, which consumers
    // discard, so the marks need not wait for the WAL flush.
    sqlx::query("SET synchronous_commit TO off")
        .execute(&mut c)
        .await?;
    loop {
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(config.lock_key)
            .fetch_one(&mut c)
            .await?;
        if got {
            return Ok(Some(c));
        }
        state.active.store(false, Ordering::Relaxed);
        if sleep_or_cancel(config.standby_interval, shutdown).await {
            return Ok(None);
        }
    }
}

struct Broker {
    _conn: Connection,
    channel: Channel,
}

async fn open_broker(config: &RelayConfig) -> Result<Broker, RelayError> {
    let connection = conn::connect(&config.amqp_url, &config.connection_name).await?;
    let channel = conn::confirm_channel(&connection)
        .await
        .map_err(RelayError::Channel)?;
    topology::declare_producer(&channel).await?;
    Ok(Broker {
        _conn: connection,
        channel,
    })
}

async fn run_active(
    pool: &PgPool,
    lock_conn: &mut PgConnection,
    config: &RelayConfig,
    shutdown: &CancellationToken,
    state: &RelayState,
) -> Result<(), RelayError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen("outbox").await?;
    let mut broker: Option<Broker> = None;
    let mut reconnect = conn::reconnect_backoff();
    let mut failure_backoff: Option<Box<dyn Iterator<Item = Duration> + Send>> = None;
    let mut scan = ScanState {
        high_water: 0,
        last_full: Instant::now(),
    };
    let mut marker = Marker::default();
    // The lag gauges scan the whole partial index; a side task keeps that off the relay's path.
    let gauges_stop = shutdown.child_token();
    let _stop_gauges = gauges_stop.clone().drop_guard();
    tokio::spawn(report_backlog(
        pool.clone(),
        config.poll_interval,
        gauges_stop,
    ));
    while !shutdown.is_cancelled() {
        if broker.is_none() {
            match open_broker(config).await {
                Ok(b) => {
                    broker = Some(b);
                    reconnect = conn::reconnect_backoff();
                    state.broker_connected.store(true, Ordering::Relaxed);
                }
                Err(error) => {
                    state.broker_connected.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %error_chain(&error), "relay: broker unavailable");
                    if let RelayError::Topology(t) = &error
                        && t.is_fatal()
                    {
                        tracing::error!("relay: topology mismatch, not publishing");
                    }
                    let delay = reconnect.next().unwrap_or(Duration::from_secs(30));
                    if sleep_or_cancel(delay, shutdown).await {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(b) = broker.as_ref() else { continue };
        let mut relay = Active {
            pool,
            lock_conn: &mut *lock_conn,
            listener: &mut listener,
            channel: &b.channel,
            config,
            shutdown,
            scan: &mut scan,
            marker: &mut marker,
        };
        match drain(&mut relay).await {
            Ok(()) => failure_backoff = None,
            Err(RelayError::Database(e)) => return Err(RelayError::Database(e)),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "relay: publish failed, retrying the same row");
                if !b.channel.status().connected() {
                    broker = None;
                    state.broker_connected.store(false, Ordering::Relaxed);
                }
                let delays =
                    failure_backoff.get_or_insert_with(|| Box::new(conn::reconnect_backoff()));
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                if sleep_or_cancel(delay, shutdown).await {
                    break;
                }
                continue;
            }
        }
        tokio::select! {
            r = listener.recv() => {
                if let Err(error) = r {
                    tracing::warn!(%error, "relay: LISTEN connection failed; polling until it is back");
                    tokio::time::sleep(config.poll_interval).await;
                }
                while listener.next_buffered().is_some() {}
            }
            () = tokio::time::sleep(config.poll_interval) => {}
            () = shutdown.cancelled() => break,
        }
    }
    Ok(())
}

/// Where a fetch starts. Published rows leave dead entries in the partial index on unpublished
/// rows until vacuum, and a scan from the beginning walks all of them (measured: p95 relay lag
/// 19 ms → 129 ms with 100k dead rows). So scans start `lookback` below the highest marked
/// seq, which still catches transactions that took a seq earlier but committed later, and a
/// full scan from 0 runs every `poll_interval` so that even a very late commit waits at most
/// that long.
struct ScanState {
    high_water: i64,
    last_full: Instant,
}

impl ScanState {
    /// Raises the high water mark to the highest seq just marked.
    fn advance(&mut self, marked: &[i64]) {
        self.high_water = self
            .high_water
            .max(marked.iter().copied().max().unwrap_or(0));
    }

    fn start(&mut self, config: &RelayConfig) -> i64 {
        if self.last_full.elapsed() >= config.poll_interval {
            self.last_full = Instant::now();
            0
        } else {
            (self.high_water - config.lookback).max(0)
        }
    }
}

/// Sets `outbox_pending` and `outbox_oldest_unpublished_seconds` every `interval` while this
/// relay is active.
async fn report_backlog(pool: PgPool, interval: Duration, stop: CancellationToken) {
    loop {
        if let Ok(mut c) = pool.acquire().await
            && let Ok((pending, oldest)) = outbox::backlog(&mut c).await
        {
            #[expect(
                clippy::cast_precision_loss,
                reason = "a gauge; backlogs never reach 2^52"
            )]
            metrics::gauge!(m::OUTBOX_PENDING).set(pending as f64);
            metrics::gauge!(m::OUTBOX_OLDEST).set(oldest);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

type MarkFuture = Pin<Box<dyn Future<Output = (PgConnection, Result<(), sqlx::Error>)> + Send>>;

/// Runs the "published" UPDATEs on a connection of their own, so the relay reads and sends the
/// next batch while the previous one is being marked (the UPDATE of 1,000 rows is the most
/// expensive statement of the relay). Rows stay excluded from reads until their mark committed.
#[derive(Default)]
struct Marker {
    conn: Option<PgConnection>,
    running: Option<MarkFuture>,
    /// Seqs of the UPDATE in progress.
    marking: Vec<i64>,
    /// Confirmed seqs waiting for the next UPDATE.
    queued: Vec<i64>,
}

impl Marker {
    fn idle(&self) -> bool {
        self.running.is_none() && self.queued.is_empty()
    }

    /// Starts an UPDATE of everything queued unless one is running.
    async fn start(&mut self, pool: &PgPool) -> Result<(), sqlx::Error> {
        if self.running.is_some() || self.queued.is_empty() {
            return Ok(());
        }
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => mark_connection(pool).await?,
        };
        self.marking = std::mem::take(&mut self.queued);
        let seqs = self.marking.clone();
        self.running = Some(Box::pin(async move {
            let result = outbox::mark_published(&mut conn, &seqs).await;
            (conn, result)
        }));
        Ok(())
    }

    /// Waits for the running UPDATE to commit; returns the seqs it marked.
    async fn finished(&mut self) -> Result<Vec<i64>, sqlx::Error> {
        let Some(running) = self.running.as_mut() else {
            return Ok(Vec::new());
        };
        let (conn, result) = running.await;
        self.running = None;
        result?;
        self.conn = Some(conn);
        Ok(std::mem::take(&mut self.marking))
    }

    /// Marks everything confirmed so far before returning.
    async fn flush(&mut self, pool: &PgPool, scan: &mut ScanState) -> Result<(), sqlx::Error> {
        while !self.idle() {
            self.start(pool).await?;
            let marked = self.finished().await?;
            scan.advance(&marked);
        }
        Ok(())
    }
}

/// A detached connection for marks. Losing a "published" mark in a database crash only causes
/// a duplicate, which consumers discard, so the marks need not wait for the WAL flush.
async fn mark_connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let mut c = pool.acquire().await?.detach();
    sqlx::query("SET synchronous_commit TO off")
        .execute(&mut c)
        .await?;
    Ok(c)
}

type Confirmed = (usize, Option<RelayError>);
type ConfirmFuture = Pin<Box<dyn Future<Output = Confirmed> + Send>>;

/// One sent batch: its rows and a future resolving to its confirmed prefix.
struct InFlight {
    rows: Vec<OutboxRow>,
    confirmed: ConfirmFuture,
}

/// What an active relay works with while it drains.
struct Active<'a> {
    pool: &'a PgPool,
    lock_conn: &'a mut PgConnection,
    listener: &'a mut PgListener,
    channel: &'a Channel,
    config: &'a RelayConfig,
    shutdown: &'a CancellationToken,
    scan: &'a mut ScanState,
    marker: &'a mut Marker,
}

/// Publishes until the outbox is empty, every confirm is in and every confirmed row is marked,
/// or a publish fails. Up to `pipeline_depth` batches are in flight, and the relay keeps
/// reading while the broker confirms and while the marker updates: a NOTIFY that arrives
/// meanwhile is answered with a read at once, so a new event never waits for a previous
/// batch's confirm + mark cycle. Confirms are taken strictly in order; on the first failure
/// everything after it stays unpublished.
async fn drain(relay: &mut Active<'_>) -> Result<(), RelayError> {
    let config = relay.config;
    let depth = config.pipeline_depth.max(1);
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(depth);
    let mut want_fetch = true;
    loop {
        if relay.shutdown.is_cancelled() {
            relay.marker.flush(relay.pool, relay.scan).await?;
            return Ok(());
        }
        if want_fetch && in_flight.len() < depth {
            // Every read starts below what is in flight or being marked (and leaves those
            // out), so a late commit with a lower seq is sent before any later event of its
            // aggregate.
            let sent: Vec<i64> = in_flight
                .iter()
                .flat_map(|b| b.rows.iter().map(|r| r.seq))
                .chain(relay.marker.marking.iter().copied())
                .chain(relay.marker.queued.iter().copied())
                .collect();
            let rows = outbox::fetch_unpublished_excluding(
                relay.lock_conn,
                relay.scan.start(config),
                config.batch_size,
                &sent,
            )
            .await?;
            if !rows.is_empty() {
                // A short batch means the outbox is drained for now; a NOTIFY says when not.
                want_fetch = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= config.batch_size;
                let deadline = tokio::time::Instant::now() + config.confirm_timeout;
                let (confirms, send_error) = send_batch(relay.channel, &rows).await;
                if send_error.is_some() {
                    want_fetch = false;
                }
                let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                let confirmed = Box::pin(await_confirms_owned(
                    seqs,
                    confirms,
                    send_error,
                    deadline,
                    config.confirm_timeout,
                ));
                in_flight.push_back(InFlight { rows, confirmed });
                continue;
            }
            want_fetch = false;
        }
        relay.marker.start(relay.pool).await?;
        if in_flight.is_empty() && relay.marker.idle() {
            return Ok(());
        }
        let listen = !want_fetch && in_flight.len() < depth;
        let marking = relay.marker.running.is_some();
        tokio::select! {
            biased;
            Some(done) = async {
                match in_flight.front_mut() {
                    Some(front) => Some((&mut front.confirmed).await),
                    None => None,
                }
            }, if !in_flight.is_empty() => {
                let Some(batch) = in_flight.pop_front() else { continue };
                if let Err(error) = confirmed(relay, batch, done).await {
                    relay.marker.flush(relay.pool, relay.scan).await?;
                    return Err(error);
                }
                if in_flight.is_empty() {
                    // Rows with a lower seq that committed late are looked for again.
                    want_fetch = true;
                }
            }
            marked = relay.marker.finished(), if marking => {
                relay.scan.advance(&marked?);
            }
            notified = relay.listener.recv(), if listen => {
                if let Err(error) = notified {
                    tracing::warn!(%error, "relay: LISTEN connection failed; polling until it is back");
                }
                // One read covers every commit notified so far.
                while relay.listener.next_buffered().is_some() {}
                want_fetch = true;
            }
            () = relay.shutdown.cancelled() => {}
        }
    }
}

/// Queues a batch's confirmed prefix for marking and counts it; records and returns a failure.
async fn confirmed(
    relay: &mut Active<'_>,
    batch: InFlight,
    (confirmed, failure): Confirmed,
) -> Result<(), RelayError> {
    let confirmed = confirmed.min(batch.rows.len());
    for row in &batch.rows[..confirmed] {
        metrics::counter!(m::PUBLISHED, "routing_key" => row.routing_key.clone()).increment(1);
    }
    relay
        .marker
        .queued
        .extend(batch.rows[..confirmed].iter().map(|r| r.seq));
    let Some(error) = failure else {
        return Ok(());
    };
    let reason = match &error {
        RelayError::Nacked { .. } => "nack",
        RelayError::ConfirmTimeout { .. } => "timeout",
        _ => "error",
    };
    metrics::counter!(m::PUBLISH_FAILURES, "reason" => reason).increment(1);
    if let Some(row) = batch.rows.get(confirmed) {
        outbox::record_failure(relay.lock_conn, row.seq, &error_chain(&error)).await?;
    }
    Err(error)
}

/// Publishes `rows` pipelined on a confirm channel and waits for their confirms in order.
/// Returns how many leading rows were confirmed, and the error that stopped it, if any.
pub async fn publish_batch(
    channel: &Channel,
    rows: &[OutboxRow],
    confirm_timeout: Duration,
) -> (usize, Option<RelayError>) {
    let deadline = tokio::time::Instant::now() + confirm_timeout;
    let (confirms, send_error) = send_batch(channel, rows).await;
    await_confirms(rows, confirms, send_error, deadline, confirm_timeout).await
}

/// Sends rows until the first send error; returns the pending confirms.
async fn send_batch(
    channel: &Channel,
    rows: &[OutboxRow],
) -> (Vec<PublisherConfirm>, Option<RelayError>) {
    let mut pending: Vec<PublisherConfirm> = Vec::with_capacity(rows.len());
    for row in rows {
        match publish_row(channel, row).await {
            Ok(confirm) => pending.push(confirm),
            Err(source) => {
                return (
                    pending,
                    Some(RelayError::Publish {
                        seq: row.seq,
                        source,
                    }),
                );
            }
        }
    }
    (pending, None)
}

/// Awaits confirms in order; returns the confirmed prefix length and what stopped it.
async fn await_confirms(
    rows: &[OutboxRow],
    confirms: Vec<PublisherConfirm>,
    send_error: Option<RelayError>,
    deadline: tokio::time::Instant,
    confirm_timeout: Duration,
) -> (usize, Option<RelayError>) {
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    await_confirms_owned(seqs, confirms, send_error, deadline, confirm_timeout).await
}

/// [`await_confirms`] owning its inputs, so a batch's confirms can be awaited as a stored
/// future while the relay sends the next batch.
async fn await_confirms_owned(
    seqs: Vec<i64>,
    confirms: Vec<PublisherConfirm>,
    send_error: Option<RelayError>,
    deadline: tokio::time::Instant,
    confirm_timeout: Duration,
) -> (usize, Option<RelayError>) {
    let sent = confirms.len();
    for (i, confirm) in confirms.into_iter().enumerate() {
        let seq = seqs[i];
        match tokio::time::timeout_at(deadline, confirm).await {
            Ok(Ok(c)) if c.is_ack() => {}
            Ok(Ok(_)) => return (i, Some(RelayError::Nacked { seq })),
            Ok(Err(source)) => return (i, Some(RelayError::Publish { seq, source })),
            Err(_) => {
                return (
                    i,
                    Some(RelayError::ConfirmTimeout {
                        seq,
                        timeout: confirm_timeout,
                    }),
                );
            }
        }
    }
    (sent, send_error)
}

/// Publishes one row with the properties of events.md §2.2; resolves when the frame is sent,
/// the returned future when the broker confirmed.
pub async fn publish_row(
    channel: &Channel,
    row: &OutboxRow,
) -> Result<PublisherConfirm, lapin::Error> {
    let id = row.id.to_string();
    let timestamp_secs = row
        .timestamp
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| u64::try_from(t.timestamp()).ok())
        .unwrap_or(0);
    let mut headers = message::headers_from_json(&row.headers);
    // With span export on, the publish is a span of the request's trace and the consumer
    // continues from it; otherwise the stored trace context travels unchanged.
    let span = if payplane_kit::otel::enabled() {
        let span = tracing::info_span!("publish", otel.name = %format!("{} publish", row.routing_key),
            otel.kind = "producer", messaging.message.id = %id);
        let stored = |key: &str| row.headers.get(key).and_then(serde_json::Value::as_str);
        payplane_kit::otel::set_remote_parent(&span, stored("traceparent"), stored("tracestate"));
        if let Some((traceparent, _)) = payplane_kit::otel::context_of(&span) {
            headers.insert(
                "traceparent".into(),
                lapin::types::AMQPValue::LongString(traceparent.into()),
            );
        }
        span
    } else {
        tracing::Span::none()
    };
    let props = message::properties(message::EventMeta {
        id: &id,
        routing_key: &row.routing_key,
        source: row.source.as_deref().unwrap_or_default(),
        correlation_id: row.correlation_id.as_deref().unwrap_or_default(),
        timestamp_secs,
        headers,
    });
    channel
        .basic_publish(
            EVENTS_EXCHANGE.into(),
            row.routing_key.as_str().into(),
            BasicPublishOptions::default(),
            row.body.as_bytes(),
            props,
        )
        .instrument(span)
        .await
}

/// `error: cause: cause` on one line, for logs and `last_error` (kit's, shared with the API's
/// error logging).
pub(crate) use payplane_kit::error::error_chain;
