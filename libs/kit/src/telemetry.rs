//! Structured JSON logs with the `RUST_LOG` filter (api.md §3.10). Idempotent so tests may call it.

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call (tests, the dev runner starting several services) keeps the first subscriber.
    let _ = fmt()
        .json()
        .with_current_span(true)
        .with_env_filter(filter)
        .try_init();
}
