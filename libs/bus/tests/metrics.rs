//! The metric names and labels of events.md §8 are recorded by the relay and the consumer
//! runtime. Own test binary: it installs a global recorder.
#![expect(clippy::unwrap_used, reason = "tests: a poisoned lock is a failure")]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use payplane_bus::{
    consumer::{self, ConsumerConfig, Handler, HandlerError, IncomingEvent},
    outbox::{self, EventContext},
    relay::{Relay, RelayConfig},
    sandbox::Sandbox,
};
use payplane_events::{Event, topology::ADMIN_EVENTS};
use serde::Serialize;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

type Store = Arc<Mutex<BTreeMap<String, f64>>>;

struct Cell {
    key: String,
    store: Store,
}

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        #[expect(clippy::cast_precision_loss, reason = "small test counts")]
        let v = value as f64;
        *self
            .store
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += v;
    }
    fn absolute(&self, value: u64) {
        #[expect(clippy::cast_precision_loss, reason = "small test counts")]
        self.store
            .lock()
            .unwrap()
            .insert(self.key.clone(), value as f64);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        *self
            .store
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self
            .store
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.store.lock().unwrap().insert(self.key.clone(), value);
    }
}

impl HistogramFn for Cell {
    // Counts samples, which is what the assertions need.
    fn record(&self, _value: f64) {
        *self
            .store
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += 1.0;
    }
}

struct TestRecorder(Store);

impl TestRecorder {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Arc::new(Cell {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            store: Arc::clone(&self.0),
        })
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

#[derive(Serialize)]
struct Tick {
    n: i64,
}

impl Event for Tick {
    const ROUTING_KEY: &'static str = "test.tick.happened";
    const AGGREGATE_TYPE: &'static str = "tick";
}

#[derive(Serialize)]
struct Other {
    n: i64,
}

impl Event for Other {
    const ROUTING_KEY: &'static str = "test.other.happened";
    const AGGREGATE_TYPE: &'static str = "tick";
}

struct OnlyTicks;

impl Handler for OnlyTicks {
    fn handles(&self, routing_key: &str) -> bool {
        routing_key == Tick::ROUTING_KEY
    }
    async fn handle(
        &self,
        _tx: &mut PgConnection,
        _event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_consumer_record_the_contract_metrics() -> Result<()> {
    let store: Store = Arc::default();
    metrics::set_global_recorder(TestRecorder(Arc::clone(&store)))
        .map_err(|_| anyhow::anyhow!("recorder already set"))?;
    payplane_bus::metrics::describe();
    let sb = Sandbox::create("bus_metrics").await?;
    let ctx = EventContext {
        source: "payments",
        correlation_id: "c".into(),
        causation_id: None,
        traceparent: None,
        tracestate: None,
    };
    let mut tx = sb.pool.begin().await?;
    for n in 0..5 {
        outbox::enqueue(&mut tx, &ctx, "a", &Tick { n }).await?;
    }
    outbox::enqueue(&mut tx, &ctx, "a", &Other { n: 0 }).await?;
    tx.commit().await?;
    let shutdown = CancellationToken::new();
    let consumer = consumer::spawn(
        sb.pool.clone(),
        ConsumerConfig::new(&sb.amqp_url, ADMIN_EVENTS),
        Arc::new(OnlyTicks),
        shutdown.clone(),
    );
    let start = Instant::now();
    while !consumer.broker_connected() {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("consumer did not connect");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let relay = Relay::spawn(
        sb.pool.clone(),
        RelayConfig::new(&sb.amqp_url),
        shutdown.clone(),
    );
    let get = |k: &str| store.lock().unwrap().get(k).copied().unwrap_or(0.0);
    let processed = "events_consumed_total{outcome=processed,queue=admin.events,routing_key=test.tick.happened}";
    let ignored =
        "events_consumed_total{outcome=ignored,queue=admin.events,routing_key=test.other.happened}";
    while get(processed) < 5.0 || get(ignored) < 1.0 {
        if start.elapsed() > Duration::from_secs(15) {
            bail!("metrics not recorded: {:?}", store.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The published counters move on the broker's confirms, which can come after the consumer
    // saw the messages; the backlog gauges are set on the relay's next poll (every second).
    let settled = || {
        let all = store.lock().unwrap();
        let at = |k: &str| all.get(k).copied().unwrap_or(0.0);
        at("events_published_total{routing_key=test.tick.happened}") >= 5.0
            && at("events_published_total{routing_key=test.other.happened}") >= 1.0
            && at("event_handling_seconds{queue=admin.events,routing_key=test.tick.happened}")
                >= 5.0
            && all.contains_key("outbox_oldest_unpublished_seconds{}")
            && all.get("outbox_pending{}").is_some_and(|v| *v < 1.0)
    };
    while !settled() {
        if start.elapsed() > Duration::from_secs(15) {
            bail!("metrics not settled: {:?}", store.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        (get("events_published_total{routing_key=test.tick.happened}") - 5.0).abs() < f64::EPSILON
    );
    assert!(
        (get("events_published_total{routing_key=test.other.happened}") - 1.0).abs() < f64::EPSILON
    );
    assert!(
        (get("event_handling_seconds{queue=admin.events,routing_key=test.tick.happened}") - 5.0)
            .abs()
            < f64::EPSILON
    );
    shutdown.cancel();
    relay.join().await;
    consumer.join().await?;
    Ok(())
}
