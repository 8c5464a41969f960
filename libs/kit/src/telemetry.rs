//! Structured JSON logs with the `RUST_LOG` filter (api.md §3.10), plus OpenTelemetry span export
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (see `otel`). Idempotent so tests may call it.

use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::otel::{self, OtelError, OtelGuard};

/// Logs only; for tools and tests that export no spans.
pub fn init() {
    let _ = tracing_subscriber::registry().with(log_layer()).try_init();
}

/// Logs, and spans exported as `service` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Keep the
/// guard until the process ends: dropping it flushes the last spans.
pub fn init_service(service: &str) -> Result<OtelGuard, OtelError> {
    let provider = otel::provider(service)?;
    // Spans are filtered on their own: RUST_LOG=warn must quiet the logs, not empty the traces.
    let spans = provider
        .as_ref()
        .map(|p| otel::layer(p, service).with_filter(LevelFilter::INFO));
    // A second call (tests, the dev runner starting several services) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(log_layer())
        .with(spans)
        .try_init();
    Ok(otel::guard(provider))
}

fn log_layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    fmt::layer()
        .json()
        .with_current_span(true)
        .with_filter(filter)
}
