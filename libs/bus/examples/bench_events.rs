//! Runs the event bench: `cargo run --release -p payplane-bus --example bench_events [messages]`.
//! Needs RabbitMQ (with the management plugin) and PostgreSQL on 127.0.0.1.

use payplane_bus::bench::{self, BenchOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut opts = BenchOptions::default();
    if let Some(n) = std::env::args().nth(1) {
        opts.messages = n.parse()?;
    }
    // Tuning knobs for experiments; the README's figures use the defaults.
    let knob = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    if let Some(v) = knob("BENCH_PRODUCERS") {
        opts.producers = v;
    }
    if let Some(v) = knob("BENCH_PRODUCER_BATCH") {
        opts.producer_batch = v;
    }
    if let Some(v) = knob("BENCH_RELAY_BATCH") {
        opts.relay_batch = i64::try_from(v)?;
    }
    if let Some(v) = knob("BENCH_RELAY_DEPTH") {
        opts.relay_depth = v;
    }
    if let Some(v) = knob("BENCH_PREFETCH") {
        opts.consumer_prefetch = u16::try_from(v)?;
    }
    if let Some(v) = knob("BENCH_CONSUMER_BATCH") {
        opts.consumer_batch = v;
    }
    if let Some(v) = knob("BENCH_OFFERED_SECONDS") {
        opts.offered_seconds = u32::try_from(v)?;
    }
    let report = bench::run(opts).await?;
    println!("{report}");
    Ok(())
}
