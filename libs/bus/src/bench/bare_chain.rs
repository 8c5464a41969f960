//! The physical floor of the offered-load latency: the same three durable steps as the
//! pipeline — a producer commit, a confirmed persistent publish to a quorum queue, a consumer
//! commit — done bare, at the same offered rate, in the same run. No outbox, no NOTIFY, no
//! relay read or mark, no `processed_events`: each producer lane commits what is queued for it
//! in one multi-row INSERT (like the pipeline's producers), then publishes those rows itself on
//! a confirm channel; a bare consumer commits what the broker already delivered in one
//! transaction and acks after the commit. Does I/O on both servers.

use futures::{FutureExt, StreamExt};
use lapin::{
    Channel, PublisherConfirm,
    options::{BasicAckOptions, BasicPublishOptions},
    types::{AMQPValue, FieldTable},
};
use payplane_events::topology::{ConsumerQueue, EVENTS_EXCHANGE};
use sqlx::PgPool;
use uuid::Uuid;

use super::{BenchError, BenchOptions, Latency, RawLink, now_micros};
use crate::{message, sandbox::Sandbox};

const BARE_KEY: &str = "bare.tick.happened";
/// Header carrying the send time (µs since the epoch) to the bare consumer.
const SENT_HEADER: &str = "x-bench-sent-micros";

const DDL: &str = "CREATE TABLE bench_bare_produced (id uuid PRIMARY KEY, aggregate text NOT NULL, envelope jsonb NOT NULL); \
                   CREATE TABLE bench_bare_applied (id uuid PRIMARY KEY)";

/// One event of the bare chain: what the producer writes and sends.
struct BareRow {
    id: Uuid,
    sent: u64,
    aggregate: String,
    envelope: String,
}

/// Runs the bare chain at `opts.offered_rate` for `opts.offered_seconds` and returns the
/// latency from before the producer's INSERT to after the consumer's commit.
pub(super) async fn run(sandbox: &Sandbox, opts: &BenchOptions) -> Result<Latency, BenchError> {
    sqlx::raw_sql(DDL).execute(&sandbox.pool).await?;
    let queue = ConsumerQueue::custom("bench.bare", "bench", &["bare.#"]);
    let link = RawLink::open(sandbox, "bare", &queue, opts.consumer_prefetch).await?;
    let total = usize::try_from(opts.offered_rate * opts.offered_seconds).unwrap_or(usize::MAX);
    let consumer = tokio::spawn(consume(
        sandbox.pool.clone(),
        link.deliveries,
        opts.consumer_batch,
        total,
    ));

    let mut lanes = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..opts.producers.max(1) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<BareRow>();
        lanes.push(tx);
        tasks.push(tokio::spawn(produce(
            sandbox.pool.clone(),
            link.ch.clone(),
            rx,
            opts.producer_batch.max(1),
        )));
    }
    let aggregates = opts.aggregates.max(1);
    let mut pacer = super::Pacer::start(opts.offered_rate, total);
    let mut sent = 0usize;
    while sent < total {
        let due = pacer.due().await;
        while sent < due {
            let a = sent % aggregates;
            let id = Uuid::new_v4();
            let aggregate = format!("agg-{a}");
            let envelope = super::envelope(id, &aggregate, 0, opts);
            let _ = lanes[a % lanes.len()].send(BareRow {
                id,
                sent: now_micros(),
                aggregate,
                envelope,
            });
            sent += 1;
        }
    }
    drop(lanes);
    for task in tasks {
        if let Ok(result) = task.await {
            result?;
        }
    }
    let samples = consumer.await.unwrap_or(Ok(Vec::new()))?;
    if samples.len() < total {
        return Err(BenchError::Incomplete {
            phase: "bare chain",
            got: samples.len(),
            expected: total,
            timeout: super::DELIVERY_WAIT,
        });
    }
    Ok(Latency::from_micros(samples))
}

/// A producer lane: commit what is queued, then publish it and check the confirms (awaited in
/// a side task, as the relay keeps sending while earlier confirms are outstanding).
async fn produce(
    pool: PgPool,
    ch: Channel,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<BareRow>,
    max: usize,
) -> Result<(), BenchError> {
    let mut rows = Vec::with_capacity(max);
    let mut confirms = Vec::new();
    while rx.recv_many(&mut rows, max).await > 0 {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let aggs: Vec<&str> = rows.iter().map(|r| r.aggregate.as_str()).collect();
        let envs: Vec<&str> = rows.iter().map(|r| r.envelope.as_str()).collect();
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO bench_bare_produced (id, aggregate, envelope) \
             SELECT t.id, t.agg, t.env::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, agg, env)",
        )
        .bind(&ids)
        .bind(&aggs)
        .bind(&envs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Bodies differ per row, so each publish is queued here the way `publish_all` does.
        let mut writes = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut headers = FieldTable::default();
            headers.insert(
                SENT_HEADER.into(),
                AMQPValue::LongLongInt(i64::try_from(row.sent).unwrap_or(0)),
            );
            let props = message::properties(message::EventMeta {
                id: &row.id.to_string(),
                routing_key: BARE_KEY,
                source: "payments",
                correlation_id: "bench",
                timestamp_secs: 0,
                headers,
            });
            let mut publish = Box::pin(ch.basic_publish(
                EVENTS_EXCHANGE.into(),
                BARE_KEY.into(),
                BasicPublishOptions::default(),
                row.envelope.as_bytes(),
                props,
            ));
            let first = futures::poll!(publish.as_mut());
            writes.push((first, publish));
        }
        let mut pending: Vec<PublisherConfirm> = Vec::with_capacity(writes.len());
        for (first, publish) in writes {
            pending.push(match first {
                std::task::Poll::Ready(result) => result?,
                std::task::Poll::Pending => publish.await?,
            });
        }
        rows.clear();
        confirms.push(tokio::spawn(async move {
            for c in pending {
                if !c.await?.is_ack() {
                    return Err(BenchError::Nacked);
                }
            }
            Ok(())
        }));
    }
    for c in confirms {
        if let Ok(result) = c.await {
            result?;
        }
    }
    Ok(())
}

/// The bare consumer: what the broker already delivered (up to `consumer_batch`) is recorded
/// in one transaction, acked after its commit; returns sent → committed per message.
async fn consume(
    pool: PgPool,
    mut deliveries: lapin::Consumer,
    batch_max: usize,
    total: usize,
) -> Result<Vec<u64>, BenchError> {
    let max = batch_max.max(1);
    let mut samples = Vec::with_capacity(total);
    while samples.len() < total {
        let Some(first) = super::next_delivery(&mut deliveries).await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match deliveries.next().now_or_never() {
                Some(Some(Ok(d))) => batch.push(d),
                _ => break,
            }
        }
        let ids: Vec<Uuid> = batch
            .iter()
            .filter_map(|d| {
                d.properties
                    .message_id()
                    .as_ref()
                    .and_then(|m| Uuid::parse_str(m.as_str()).ok())
            })
            .collect();
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO bench_bare_applied (id) SELECT unnest($1::uuid[])")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let now = now_micros();
        for d in &batch {
            let sent = message::header_int(d.properties.headers().as_ref(), SENT_HEADER)
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(now);
            samples.push(now.saturating_sub(sent));
        }
        if let Some(last) = batch.last() {
            last.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
    Ok(samples)
}
