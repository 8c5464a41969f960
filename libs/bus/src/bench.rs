//! The event throughput bench (`payplane bench events`): the raw ceiling of the broker (a bare
//! lapin publisher with confirms and a bare consumer, no database), then outbox → relay →
//! RabbitMQ → consumer runtime at saturation and at a fixed offered load, in one run, in a
//! sandbox vhost and database. Does I/O on both servers and reads /proc for CPU accounting.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::{FutureExt, StreamExt, stream::FuturesOrdered};
use lapin::{
    options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions},
    types::{FieldTable, ShortString},
};
use payplane_events::{
    Envelope, VERSION, time,
    topology::{ConsumerQueue, EVENTS_EXCHANGE},
};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    conn,
    consumer::{self, ConsumerConfig, Handler, HandlerError, IncomingEvent},
    message,
    relay::{Relay, RelayConfig},
    sandbox::{Sandbox, SandboxConfig, SandboxError},
    topology,
};

mod bare_chain;

const ROUTING_KEY: &str = "bench.tick.happened";
const RAW_KEY: &str = "raw.tick.happened";

/// Knobs of one run; `Default` is what the README's numbers use.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Messages in the raw phase and in the end-to-end saturation phase.
    pub messages: usize,
    /// Offered load of the latency phase, in events per second.
    pub offered_rate: u32,
    pub offered_seconds: u32,
    /// Distinct aggregates the events are spread over (order is checked per aggregate).
    pub aggregates: usize,
    /// Concurrent producers; each owns a share of the aggregates (so one aggregate's events are
    /// written by one producer, in order, as the aggregate row lock makes it in a service) and
    /// commits its own transactions, so PostgreSQL can group their commits.
    pub producers: usize,
    /// Most rows one producer transaction carries (a producer that falls behind writes what is
    /// queued in one multi-row INSERT).
    pub producer_batch: usize,
    /// Relay rows per pipelined batch.
    pub relay_batch: i64,
    /// Relay batches in flight.
    pub relay_depth: usize,
    pub consumer_prefetch: u16,
    /// Deliveries per consumer transaction.
    pub consumer_batch: usize,
    /// Confirms in flight for the raw publisher.
    pub raw_in_flight: usize,
    pub sandbox: SandboxConfig,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            messages: 100_000,
            offered_rate: 2409,
            offered_seconds: 5,
            aggregates: 100,
            producers: 4,
            producer_batch: 250,
            relay_batch: 1000,
            relay_depth: 2,
            consumer_prefetch: 1000,
            consumer_batch: 250,
            raw_in_flight: 1000,
            sandbox: SandboxConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Connect(#[from] conn::ConnError),
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    #[error("broker")]
    Broker(#[from] lapin::Error),
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("broker nacked a raw publish")]
    Nacked,
    #[error("{phase}: only {got} of {expected} messages arrived within {timeout:?}")]
    Incomplete {
        phase: &'static str,
        got: usize,
        expected: usize,
        timeout: Duration,
    },
}

/// CPU seconds used during a phase by the broker, PostgreSQL and this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuShare {
    pub broker: f64,
    pub postgres: f64,
    pub bench: f64,
    pub wall: f64,
    /// Messages that went through during the phase (for the per-message cost).
    pub messages: usize,
}

impl fmt::Display for CpuShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: f64| {
            if self.wall > 0.0 {
                100.0 * v / self.wall
            } else {
                0.0
            }
        };
        #[expect(clippy::cast_precision_loss, reason = "message counts")]
        let per_msg = |v: f64| {
            if self.messages > 0 {
                1e6 * v / self.messages as f64
            } else {
                0.0
            }
        };
        write!(
            f,
            "cpu (100% = one core): broker {:.0}%, postgres {:.0}%, bench process (relay+consumer+producer) {:.0}%; \
             per message: broker {:.0} us, postgres {:.0} us, bench process {:.0} us, total {:.0} us",
            pct(self.broker),
            pct(self.postgres),
            pct(self.bench),
            per_msg(self.broker),
            per_msg(self.postgres),
            per_msg(self.bench),
            per_msg(self.broker + self.postgres + self.bench)
        )
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn from_micros(mut samples: Vec<u64>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "percentile index"
        )]
        let at = |q: f64| {
            samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
        };
        Latency {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    pub messages: usize,
    pub raw_rate: f64,
    pub raw_cpu: CpuShare,
    /// Bare publisher (confirm awaited per message) to bare consumer at the offered rate.
    pub raw_offered_latency: Latency,
    pub e2e_rate: f64,
    pub e2e_latency: Latency,
    pub e2e_cpu: CpuShare,
    pub offered_rate: u32,
    pub achieved_rate: f64,
    /// Sent (before the producer's INSERT) → consumer committed.
    pub offered_latency: Latency,
    /// Producer's commit returned → consumer committed: the backbone's own share.
    pub offered_from_commit: Latency,
    /// Where the offered-load latency goes: outbox insert → relay marked it published (after
    /// the broker's confirm), and sent → handed to the consumer's handler (before its commit).
    pub offered_relay: Latency,
    pub offered_handled: Latency,
    pub offered_cpu: CpuShare,
    /// The same three durable steps done bare at the offered rate (producer commit, confirmed
    /// publish, consumer commit; no outbox, relay or `processed_events`), sent → committed.
    pub bare_chain: Latency,
    pub order_violations: u64,
}

impl BenchReport {
    pub fn ratio(&self) -> f64 {
        if self.raw_rate > 0.0 {
            self.e2e_rate / self.raw_rate
        } else {
            0.0
        }
    }

    /// End-to-end p95 at the offered rate over the bare chain's p95 (goal ≤ 1.5).
    pub fn offered_over_bare(&self) -> f64 {
        if self.bare_chain.p95 > 0.0 {
            self.offered_latency.p95 / self.bare_chain.p95
        } else {
            0.0
        }
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "raw broker ceiling: {:.0} msg/s ({} persistent messages, bare lapin publisher with confirms -> quorum queue -> bare consumer)",
            self.raw_rate, self.messages
        )?;
        writeln!(f, "  {}", self.raw_cpu)?;
        writeln!(
            f,
            "raw broker latency at {} msg/s offered (publish -> delivery, no database): p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms",
            self.offered_rate,
            self.raw_offered_latency.p50,
            self.raw_offered_latency.p95,
            self.raw_offered_latency.p99
        )?;
        writeln!(
            f,
            "end to end at saturation: {:.0} msg/s (outbox multi-row inserts -> relay -> RabbitMQ -> consumer with processed_events), latency p50 {:.1} ms p99 {:.1} ms (includes queueing behind the backlog)",
            self.e2e_rate, self.e2e_latency.p50, self.e2e_latency.p99
        )?;
        writeln!(f, "  {}", self.e2e_cpu)?;
        writeln!(
            f,
            "end to end at {} msg/s offered ({:.0} achieved): latency p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms max {:.2} ms",
            self.offered_rate,
            self.achieved_rate,
            self.offered_latency.p50,
            self.offered_latency.p95,
            self.offered_latency.p99,
            self.offered_latency.max
        )?;
        writeln!(
            f,
            "  from the producer's commit to the consumer's commit: p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms",
            self.offered_from_commit.p50,
            self.offered_from_commit.p95,
            self.offered_from_commit.p99
        )?;
        writeln!(
            f,
            "  of which: outbox row -> marked published p50 {:.1} ms p95 {:.1} ms (1 ms resolution); sent -> consumer handler p50 {:.1} ms p95 {:.1} ms",
            self.offered_relay.p50,
            self.offered_relay.p95,
            self.offered_handled.p50,
            self.offered_handled.p95
        )?;
        writeln!(f, "  {}", self.offered_cpu)?;
        writeln!(
            f,
            "bare chain at {} msg/s offered (producer commit -> confirmed publish -> consumer commit, no outbox): p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms",
            self.offered_rate, self.bare_chain.p50, self.bare_chain.p95, self.bare_chain.p99
        )?;
        writeln!(
            f,
            "per-aggregate order violations: {}",
            self.order_violations
        )?;
        write!(
            f,
            "events: {:.0} msg/s p50 {:.2} ms p99 {:.2} ms ratio {:.2} of raw, offered {}/s p95 {:.2} ms vs bare chain {:.2} ms ({:.2}x)",
            self.e2e_rate,
            self.offered_latency.p50,
            self.offered_latency.p99,
            self.ratio(),
            self.offered_rate,
            self.offered_latency.p95,
            self.bare_chain.p95,
            self.offered_over_bare()
        )
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Broker,
    Postgres,
    Bench,
}

/// utime+stime (in seconds) per pid of the broker, of PostgreSQL's background processes and
/// the backends of database `db` (other databases' backends belong to other work on the
/// machine), and of this process.
fn cpu_snapshot(db: &str) -> HashMap<u32, (Owner, f64)> {
    let mut out = HashMap::new();
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let owner = if pid == me {
            Owner::Bench
        } else if comm.starts_with("beam") || comm == "erl_child_setup" {
            Owner::Broker
        } else if comm.starts_with("postgres") || comm.starts_with("postmaster") {
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let backend = cmdline.contains('(') || cmdline.contains("[local]");
            if backend && !cmdline.contains(db) {
                continue;
            }
            Owner::Postgres
        } else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the comm.
        let ticks: f64 = fields
            .get(11)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        out.insert(pid, (owner, ticks / 100.0)); // USER_HZ is 100 on Linux
    }
    out
}

struct CpuMeter {
    db: String,
    start: HashMap<u32, (Owner, f64)>,
    at: Instant,
}

impl CpuMeter {
    fn start(db: &str) -> CpuMeter {
        CpuMeter {
            db: db.to_owned(),
            start: cpu_snapshot(db),
            at: Instant::now(),
        }
    }

    /// Per-process deltas, so processes that ended or started meanwhile do not skew the sums.
    fn stop(&self, messages: usize) -> CpuShare {
        let mut share = CpuShare {
            wall: self.at.elapsed().as_secs_f64(),
            messages,
            ..CpuShare::default()
        };
        for (pid, (owner, secs)) in cpu_snapshot(&self.db) {
            let before = self.start.get(&pid).map_or(0.0, |(_, s)| *s);
            let used = (secs - before).max(0.0);
            match owner {
                Owner::Broker => share.broker += used,
                Owner::Postgres => share.postgres += used,
                Owner::Bench => share.bench += used,
            }
        }
        share
    }
}

/// Runs the three phases in a fresh sandbox and returns the measurements.
pub async fn run(mut opts: BenchOptions) -> Result<BenchReport, BenchError> {
    // Producers, the consumer and the relay's gauge task each hold a pooled connection.
    let needed = u32::try_from(opts.producers + 4).unwrap_or(u32::MAX);
    opts.sandbox.pool_size = opts.sandbox.pool_size.max(needed);
    let sandbox = Sandbox::create_with("bench_events", opts.sandbox.clone()).await?;
    let mut report = BenchReport {
        messages: opts.messages,
        offered_rate: opts.offered_rate,
        ..BenchReport::default()
    };
    let sample = sample_body(&opts);
    let (rate, cpu) = raw_phase(&sandbox, &opts, &sample).await?;
    report.raw_rate = rate;
    report.raw_cpu = cpu;
    report.raw_offered_latency = raw_latency_phase(&sandbox, &opts, &sample).await?;
    e2e_phases(&sandbox, &opts, &mut report).await?;
    // Right after the pipeline's offered-load phase, so both see the same neighbours' load.
    report.bare_chain = bare_chain::run(&sandbox, &opts).await?;
    Ok(report)
}

fn sample_body(opts: &BenchOptions) -> Vec<u8> {
    envelope(Uuid::new_v4(), "agg-0", 0, opts).into_bytes()
}

fn envelope(id: Uuid, aggregate: &str, n: i64, _opts: &BenchOptions) -> String {
    let env = Envelope {
        id,
        event_type: ROUTING_KEY.to_owned(),
        version: VERSION.to_owned(),
        timestamp: time::now(),
        source: "payments".to_owned(),
        correlation_id: Uuid::new_v4().to_string(),
        causation_id: None,
        data: serde_json::json!({
            "aggregate": aggregate,
            "n": n,
            "sentAtMicros": now_micros(),
            "padding": "a payment snapshot is about this long: ids, amount, currency, status, type, description, timestamps",
        }),
    };
    serde_json::to_string(&env).unwrap_or_default()
}

async fn raw_phase(
    sandbox: &Sandbox,
    opts: &BenchOptions,
    body: &[u8],
) -> Result<(f64, CpuShare), BenchError> {
    let queue = ConsumerQueue::custom("bench.raw", "bench", &["raw.#"]);
    let link = RawLink::open(sandbox, "raw", &queue, opts.consumer_prefetch).await?;
    let mut deliveries = link.deliveries;
    let total = opts.messages;
    let ack_every = opts.consumer_batch.max(1);
    let consumer = tokio::spawn(async move {
        let mut got = 0usize;
        while got < total {
            let Some(d) = next_delivery(&mut deliveries).await else {
                break;
            };
            got += 1;
            if got.is_multiple_of(ack_every) || got == total {
                let _ = d.acker.ack(BasicAckOptions { multiple: true }).await;
            }
        }
        (got, Instant::now())
    });
    let meter = CpuMeter::start(&sandbox.name);
    let started = Instant::now();
    let mut in_flight = FuturesOrdered::new();
    // Chunks of a quarter of the confirms in flight, each queued whole before its writes are
    // awaited, as the relay sends its batches.
    let chunk = (opts.raw_in_flight / 4).max(1);
    let mut next = 0;
    while next < total {
        let end = (next + chunk).min(total);
        let confirms = publish_all(
            &link.ch,
            RAW_KEY,
            (next..end).map(|i| {
                message::properties(message::EventMeta {
                    id: &i.to_string(),
                    routing_key: RAW_KEY,
                    source: "payments",
                    correlation_id: "bench",
                    timestamp_secs: 0,
                    headers: FieldTable::default(),
                })
            }),
            body,
        )
        .await?;
        in_flight.extend(confirms);
        next = end;
        while in_flight.len() > opts.raw_in_flight {
            if let Some(c) = in_flight.next().await
                && !c?.is_ack()
            {
                return Err(BenchError::Nacked);
            }
        }
    }
    all_acked(&mut in_flight).await?;
    let (got, finished) = consumer.await.unwrap_or((0, Instant::now()));
    let cpu = meter.stop(got);
    if got < total {
        return Err(BenchError::Incomplete {
            phase: "raw",
            got,
            expected: total,
            timeout: DELIVERY_WAIT,
        });
    }
    #[expect(clippy::cast_precision_loss, reason = "message counts")]
    let rate = total as f64 / finished.duration_since(started).as_secs_f64();
    Ok((rate, cpu))
}

/// Publishes one message per item of `props` with the same body, queueing every publish's
/// frames (first poll, in order) before awaiting any write, as the relay does (awaiting each
/// write first costs a task wake-up and a socket write per message); returns the confirms.
async fn publish_all(
    ch: &lapin::Channel,
    routing_key: &str,
    props: impl Iterator<Item = lapin::BasicProperties>,
    body: &[u8],
) -> Result<Vec<lapin::PublisherConfirm>, lapin::Error> {
    let mut writes = Vec::new();
    for p in props {
        let mut publish = Box::pin(ch.basic_publish(
            EVENTS_EXCHANGE.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            p,
        ));
        let first = futures::poll!(publish.as_mut());
        writes.push((first, publish));
    }
    let mut confirms = Vec::with_capacity(writes.len());
    for (first, publish) in writes {
        confirms.push(match first {
            std::task::Poll::Ready(result) => result?,
            std::task::Poll::Pending => publish.await?,
        });
    }
    Ok(confirms)
}

/// The broker's own latency floor: events at the offered rate, the send time in the message id.
async fn raw_latency_phase(
    sandbox: &Sandbox,
    opts: &BenchOptions,
    body: &[u8],
) -> Result<Latency, BenchError> {
    let queue = ConsumerQueue::custom("bench.rawlat", "bench", &["rawlat.#"]);
    let link = RawLink::open(sandbox, "rawlat", &queue, opts.consumer_prefetch).await?;
    let mut deliveries = link.deliveries;
    let total =
        usize::try_from(opts.offered_rate * opts.offered_seconds.min(3)).unwrap_or(usize::MAX);
    let consumer = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total);
        while samples.len() < total {
            let Some(d) = next_delivery(&mut deliveries).await else {
                break;
            };
            let sent = d
                .properties
                .message_id()
                .as_ref()
                .and_then(|m| m.as_str().parse::<u64>().ok())
                .unwrap_or(0);
            samples.push(now_micros().saturating_sub(sent));
            let _ = d.acker.ack(BasicAckOptions::default()).await;
        }
        samples
    });
    let mut pacer = Pacer::start(opts.offered_rate, total);
    let mut sent = 0usize;
    let mut confirms = FuturesOrdered::new();
    while sent < total {
        let due = pacer.due().await;
        if sent < due {
            confirms.extend(
                publish_all(
                    &link.ch,
                    "rawlat.tick.happened",
                    (sent..due).map(|_| {
                        message::properties(message::EventMeta {
                            id: &now_micros().to_string(),
                            routing_key: "rawlat.tick.happened",
                            source: "payments",
                            correlation_id: "bench",
                            timestamp_secs: 0,
                            headers: FieldTable::default(),
                        })
                    }),
                    body,
                )
                .await?,
            );
            sent = due;
        }
        while let Some(c) = confirms.next().now_or_never().flatten() {
            if !c?.is_ack() {
                return Err(BenchError::Nacked);
            }
        }
    }
    all_acked(&mut confirms).await?;
    let samples = consumer.await.unwrap_or_default();
    Ok(Latency::from_micros(samples))
}

#[derive(Default)]
struct Observed {
    latencies: Vec<u64>,
    /// Event id and when its consumer transaction committed.
    applied: Vec<(Uuid, u64)>,
    /// Sent → handed to the handler (before the consumer's commit).
    handled: Vec<u64>,
    /// Send time of each event handled and not yet committed, so `committed` does not parse
    /// the payload a second time.
    sent_at: HashMap<Uuid, u64>,
    last: HashMap<String, i64>,
    violations: u64,
}

struct BenchHandler {
    seen: Mutex<Observed>,
}

/// The fields of a bench event's `data` the handler reads (the padding is skipped).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tick {
    aggregate: String,
    n: i64,
    sent_at_micros: u64,
}

impl Handler for BenchHandler {
    // Latency is taken after the consumer's commit: the event is then durably applied.
    fn committed(&self, event: &IncomingEvent) {
        let now = now_micros();
        if let Ok(mut seen) = self.seen.lock() {
            let sent = seen.sent_at.remove(&event.id).unwrap_or(now);
            seen.latencies.push(now.saturating_sub(sent));
            seen.applied.push((event.id, now));
        }
    }

    async fn handle(
        &self,
        _tx: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        let tick: Tick = event.payload()?;
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| HandlerError::permanent("poisoned"))?;
        seen.handled
            .push(now_micros().saturating_sub(tick.sent_at_micros));
        seen.sent_at.insert(event.id, tick.sent_at_micros);
        let prev = seen.last.insert(tick.aggregate, tick.n);
        if prev.is_some_and(|p| p >= tick.n) {
            seen.violations += 1;
        }
        Ok(())
    }
}

async fn insert_batch(pool: &PgPool, rows: &[Row]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let aggs: Vec<&str> = rows.iter().map(|r| r.aggregate.as_str()).collect();
    let envs: Vec<&str> = rows.iter().map(|r| r.envelope.as_str()).collect();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "WITH ins AS (INSERT INTO outbox (id, aggregate_type, aggregate_id, routing_key, envelope) \
         SELECT t.id, 'tick', t.agg, $4, t.env::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, agg, env)) \
         SELECT pg_notify('outbox', '')",
    )
    .bind(&ids)
    .bind(&aggs)
    .bind(&envs)
    .bind(ROUTING_KEY)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// One outbox row to write.
struct Row {
    id: Uuid,
    aggregate: String,
    envelope: String,
}

/// Builds rows with a per-aggregate counter and routes each to the producer owning its aggregate.
struct Counters {
    next_n: Vec<i64>,
    cursor: usize,
}

impl Counters {
    fn row(&mut self, opts: &BenchOptions) -> (usize, Row) {
        let a = self.cursor % self.next_n.len();
        self.cursor += 1;
        let n = self.next_n[a];
        self.next_n[a] += 1;
        let aggregate = format!("agg-{a}");
        let id = Uuid::new_v4();
        let envelope = envelope(id, &aggregate, n, opts);
        (
            a,
            Row {
                id,
                aggregate,
                envelope,
            },
        )
    }
}

/// Concurrent producer tasks. Each takes whatever rows are queued for it (up to
/// `producer_batch`) and writes them in one transaction with `NOTIFY outbox`, then records
/// when its commit returned.
struct Producers {
    lanes: Vec<tokio::sync::mpsc::UnboundedSender<Row>>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), sqlx::Error>>>,
    committed: Arc<Mutex<HashMap<Uuid, u64>>>,
}

impl Producers {
    fn start(pool: &PgPool, opts: &BenchOptions) -> Producers {
        let committed = Arc::new(Mutex::new(HashMap::new()));
        let mut lanes = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..opts.producers.max(1) {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Row>();
            let pool = pool.clone();
            let max = opts.producer_batch.max(1);
            let committed = Arc::clone(&committed);
            lanes.push(tx);
            tasks.push(tokio::spawn(async move {
                let mut rows = Vec::with_capacity(max);
                while rx.recv_many(&mut rows, max).await > 0 {
                    insert_batch(&pool, &rows).await?;
                    let now = now_micros();
                    if let Ok(mut c) = committed.lock() {
                        c.extend(rows.iter().map(|r| (r.id, now)));
                    }
                    rows.clear();
                }
                Ok(())
            }));
        }
        Producers {
            lanes,
            tasks,
            committed,
        }
    }

    fn send(&self, aggregate: usize, row: Row) {
        let _ = self.lanes[aggregate % self.lanes.len()].send(row);
    }

    /// Closes the lanes and waits for every queued row to be committed.
    async fn finish(self) -> Result<(), BenchError> {
        drop(self.lanes);
        for task in self.tasks {
            if let Ok(result) = task.await {
                result?;
            }
        }
        Ok(())
    }
}

async fn wait_seen(
    handler: &BenchHandler,
    expected: usize,
    timeout: Duration,
    phase: &'static str,
) -> Result<Instant, BenchError> {
    let start = Instant::now();
    loop {
        let got = handler.seen.lock().map_or(0, |s| s.latencies.len());
        if got >= expected {
            return Ok(Instant::now());
        }
        if start.elapsed() > timeout {
            return Err(BenchError::Incomplete {
                phase,
                got,
                expected,
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn take_latencies(handler: &BenchHandler) -> Vec<u64> {
    handler
        .seen
        .lock()
        .map(|mut s| std::mem::take(&mut s.latencies))
        .unwrap_or_default()
}

#[expect(
    clippy::too_many_lines,
    reason = "a bench reads as one procedure: set up, load, measure, report"
)]
async fn e2e_phases(
    sandbox: &Sandbox,
    opts: &BenchOptions,
    report: &mut BenchReport,
) -> Result<(), BenchError> {
    let shutdown = CancellationToken::new();
    let queue = ConsumerQueue::custom("bench.events", "bench", &["bench.#"]);
    let handler = Arc::new(BenchHandler {
        seen: Mutex::new(Observed::default()),
    });
    let mut cc = ConsumerConfig::new(&sandbox.amqp_url, queue);
    cc.prefetch = opts.consumer_prefetch;
    cc.max_batch = opts.consumer_batch;
    let consumer = consumer::spawn(
        sandbox.pool.clone(),
        cc,
        Arc::clone(&handler),
        shutdown.clone(),
    );
    let mut rc = RelayConfig::new(&sandbox.amqp_url);
    rc.batch_size = opts.relay_batch;
    rc.pipeline_depth = opts.relay_depth;
    let relay = Relay::spawn(sandbox.pool.clone(), rc, shutdown.clone());
    let ready_by = Instant::now() + Duration::from_secs(15);
    while !(consumer.broker_connected() && relay.broker_connected()) && Instant::now() < ready_by {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut counters = Counters {
        next_n: vec![0; opts.aggregates.max(1)],
        cursor: 0,
    };

    // Saturation: the producers write everything as fast as they can while the pipeline runs.
    let meter = CpuMeter::start(&sandbox.name);
    let started = Instant::now();
    let producers = Producers::start(&sandbox.pool, opts);
    for _ in 0..opts.messages {
        let (aggregate, row) = counters.row(opts);
        producers.send(aggregate, row);
    }
    producers.finish().await?;
    let finished = wait_seen(
        &handler,
        opts.messages,
        Duration::from_mins(2),
        "end to end",
    )
    .await?;
    report.e2e_cpu = meter.stop(opts.messages);
    #[expect(clippy::cast_precision_loss, reason = "message counts")]
    let rate = opts.messages as f64 / finished.duration_since(started).as_secs_f64();
    report.e2e_rate = rate;
    report.e2e_latency = Latency::from_micros(take_latencies(&handler));

    // Fixed offered load: every millisecond the events due are handed to the producers, which
    // commit them concurrently (one transaction per producer carrying what is queued for it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The saturation phase leaves ~100k dead index entries (published rows) behind, which
    // every relay read would walk until autovacuum (naptime 1 min) removed them; a service's
    // outbox is in that vacuumed steady state, so the latency phase starts from it.
    sqlx::query("VACUUM outbox").execute(&sandbox.pool).await?;
    let (first_seq,): (i64,) = sqlx::query_as("SELECT COALESCE(max(seq), 0) FROM outbox")
        .fetch_one(&sandbox.pool)
        .await?;
    if let Ok(mut seen) = handler.seen.lock() {
        seen.handled.clear();
        seen.applied.clear();
    }
    let producers = Producers::start(&sandbox.pool, opts);
    let meter = CpuMeter::start(&sandbox.name);
    let total = usize::try_from(opts.offered_rate * opts.offered_seconds).unwrap_or(usize::MAX);
    let mut pacer = Pacer::start(opts.offered_rate, total);
    let mut sent = 0usize;
    while sent < total {
        let due = pacer.due().await;
        while sent < due {
            let (aggregate, row) = counters.row(opts);
            producers.send(aggregate, row);
            sent += 1;
        }
    }
    let committed_at = producers.committed.clone();
    producers.finish().await?;
    let finished = wait_seen(&handler, total, Duration::from_mins(1), "offered load").await?;
    report.offered_cpu = meter.stop(total);
    #[expect(clippy::cast_precision_loss, reason = "message counts")]
    let achieved = total as f64 / finished.duration_since(pacer.started()).as_secs_f64();
    report.achieved_rate = achieved;
    report.offered_latency = Latency::from_micros(take_latencies(&handler));
    let committed_at = committed_at
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .unwrap_or_default();
    let applied = handler
        .seen
        .lock()
        .map(|mut s| std::mem::take(&mut s.applied))
        .unwrap_or_default();
    report.offered_from_commit = Latency::from_micros(
        applied
            .iter()
            .filter_map(|(id, at)| committed_at.get(id).map(|c| at.saturating_sub(*c)))
            .collect(),
    );
    report.offered_handled = Latency::from_micros(
        handler
            .seen
            .lock()
            .map(|mut s| std::mem::take(&mut s.handled))
            .unwrap_or_default(),
    );
    let relay_lags: Vec<i64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM published_at - created_at) * 1000000)::bigint FROM outbox WHERE seq > $1 AND published_at IS NOT NULL",
    )
    .bind(first_seq)
    .fetch_all(&sandbox.pool)
    .await?;
    report.offered_relay = Latency::from_micros(
        relay_lags
            .into_iter()
            .map(|v| u64::try_from(v).unwrap_or(0))
            .collect(),
    );
    report.order_violations = handler.seen.lock().map_or(0, |s| s.violations);

    shutdown.cancel();
    relay.join().await;
    let _ = consumer.join().await;
    Ok(())
}

/// The clock of a paced phase: every millisecond it says how many of `total` messages are due
/// by then at `rate` per second, and the phase sends up to that count.
pub(crate) struct Pacer {
    started: Instant,
    rate: u32,
    total: usize,
    tick: tokio::time::Interval,
}

impl Pacer {
    pub(crate) fn start(rate: u32, total: usize) -> Self {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        // A late tick is not made up for: `due` counts from the start, so nothing is lost.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Pacer {
            started: Instant::now(),
            rate,
            total,
            tick,
        }
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Waits for the next tick; how many messages are due by now.
    pub(crate) async fn due(&mut self) -> usize {
        self.tick.tick().await;
        usize::try_from(self.started.elapsed().as_micros() * u128::from(self.rate) / 1_000_000)
            .unwrap_or(usize::MAX)
            .min(self.total)
    }
}

/// How long a bench consumer waits for its next delivery before it gives up on the phase.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// The next delivery, or `None` once the stream ends, fails or stays quiet for [`DELIVERY_WAIT`].
pub(crate) async fn next_delivery(
    deliveries: &mut lapin::Consumer,
) -> Option<lapin::message::Delivery> {
    match tokio::time::timeout(DELIVERY_WAIT, deliveries.next()).await {
        Ok(Some(Ok(d))) => Some(d),
        _ => None,
    }
}

/// Awaits every confirm still in flight; a nack fails the phase.
async fn all_acked(
    in_flight: &mut FuturesOrdered<lapin::PublisherConfirm>,
) -> Result<(), BenchError> {
    while let Some(c) = in_flight.next().await {
        if !c?.is_ack() {
            return Err(BenchError::Nacked);
        }
    }
    Ok(())
}

/// A raw phase's bare publisher and consumer, each on a connection of its own as a service's
/// would be: a confirm channel that has declared the queue, and the queue's deliveries.
struct RawLink {
    // Held so that the connections and the consuming channel stay open for the phase.
    _connections: (lapin::Connection, lapin::Connection),
    _sub: lapin::Channel,
    ch: lapin::Channel,
    deliveries: lapin::Consumer,
}

impl RawLink {
    async fn open(
        sandbox: &Sandbox,
        label: &str,
        queue: &ConsumerQueue,
        prefetch: u16,
    ) -> Result<Self, BenchError> {
        let url = &sandbox.amqp_url;
        let pub_conn = conn::connect(url, &format!("bench-{label}-publisher")).await?;
        let sub_conn = conn::connect(url, &format!("bench-{label}-consumer")).await?;
        let ch = conn::confirm_channel(&pub_conn).await?;
        topology::declare_consumer(&ch, queue).await?;
        let sub = sub_conn.create_channel().await?;
        let deliveries = subscribe(&sub, queue, prefetch).await?;
        Ok(RawLink {
            _connections: (pub_conn, sub_conn),
            _sub: sub,
            ch,
            deliveries,
        })
    }
}

/// Consumes `queue` on `ch` with `prefetch` unacknowledged deliveries at most (every bench
/// consumer starts this way).
pub(crate) async fn subscribe(
    ch: &lapin::Channel,
    queue: &ConsumerQueue,
    prefetch: u16,
) -> Result<lapin::Consumer, BenchError> {
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    Ok(ch
        .basic_consume(
            queue.name.as_ref().into(),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?)
}
