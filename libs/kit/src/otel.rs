//! OpenTelemetry tracing: OTLP/HTTP span export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and
//! the W3C trace context carried across HTTP and AMQP, so that one client request is one trace
//! through the gateway, the services, the outbox relay and the consumers. No I/O here except
//! the exporter's own background thread.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported in this process. Hot paths (one span per published or consumed
/// message) create their spans only then, so tracing costs nothing when it is off.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter could not be built from the `OTEL_*` environment.
#[derive(Debug, thiserror::Error)]
#[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {0}")]
pub struct OtelError(#[from] opentelemetry_otlp::ExporterBuildError);

/// Flushes and stops the exporter when dropped (end of `main`), so the last spans are sent.
pub struct OtelGuard(Option<SdkTracerProvider>);

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

/// The tracer provider for `service` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else `None`
/// (tracing then stays local: logs only, and the helpers below fall back to the incoming
/// context). The exporter reads the standard `OTEL_*` variables itself.
pub fn provider(service: &str) -> Result<Option<SdkTracerProvider>, OtelError> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build();
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(provider))
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(
    provider: &SdkTracerProvider,
    service: &str,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(service.to_owned()))
}

pub fn guard(provider: Option<SdkTracerProvider>) -> OtelGuard {
    OtelGuard(provider)
}

struct Headers<'a>(&'a HashMap<String, String>);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct Sink<'a>(&'a mut HashMap<String, String>);

impl Injector for Sink<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Makes `span` a child of the remote span described by a W3C `traceparent` (HTTP header,
/// AMQP header or outbox column). Without an OpenTelemetry layer this does nothing.
pub fn set_remote_parent(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_owned(), state.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&Headers(&carrier));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` (and `tracestate`) naming `span`, when spans are exported; `None` when
/// OpenTelemetry is off, so callers keep forwarding what they received.
pub fn context_of(span: &Span) -> Option<(String, Option<String>)> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut Sink(&mut carrier));
    let traceparent = carrier.remove("traceparent")?;
    let tracestate = carrier.remove("tracestate").filter(|s| !s.is_empty());
    Some((traceparent, tracestate))
}

/// Adds the current span's `traceparent`/`tracestate` to outgoing HTTP headers, keeping any
/// value already there when spans are not exported.
pub fn inject_current(headers: &mut http::HeaderMap) {
    if let Some((parent, state)) = context_of(&Span::current()) {
        if let Ok(v) = http::HeaderValue::from_str(&parent) {
            headers.insert("traceparent", v);
        }
        if let Some(v) = state.and_then(|s| http::HeaderValue::from_str(&s).ok()) {
            headers.insert("tracestate", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_span_continues_the_remote_trace_and_names_itself() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(layer(&provider, "test"));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            set_remote_parent(&span, Some(PARENT), None);
            let (traceparent, _) = context_of(&span).expect("spans are exported");
            let parts: Vec<&str> = traceparent.split('-').collect();
            assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
            assert_ne!(parts[2], "00f067aa0ba902b7", "its own span id");

            let child = span.in_scope(|| tracing::info_span!("publish"));
            let (child_parent, _) = context_of(&child).expect("child exported");
            assert!(child_parent.contains("4bf92f3577b34da6a3ce929d0e0e4736"));

            let mut headers = http::HeaderMap::new();
            span.in_scope(|| inject_current(&mut headers));
            assert_eq!(headers["traceparent"], traceparent.as_str());
        });
    }

    #[test]
    fn without_export_nothing_is_invented() {
        let span = tracing::info_span!("request");
        set_remote_parent(&span, Some(PARENT), None);
        assert!(context_of(&span).is_none());
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static(PARENT));
        inject_current(&mut headers);
        assert_eq!(headers["traceparent"], PARENT, "the incoming value is kept");
    }
}
