//! Runs the event bench: `cargo run --release -p payplane-bus --example bench_events [messages]`.
//! Needs RabbitMQ (with the management plugin) and PostgreSQL on 127.0.0.1.

use payplane_bus::bench::{self, BenchOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut opts = BenchOptions::default();
    if let Some(n) = std::env::args().nth(1) {
        opts.messages = n.parse()?;
    }
    let report = bench::run(opts).await?;
    println!("{report}");
    Ok(())
}
