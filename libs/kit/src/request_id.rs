//! Request and correlation ids (api.md §1.2) and the W3C trace context a request arrived with.
//! The id lives in a task-local for the request's duration so error bodies and events can carry
//! it without threading it through every call.

use axum::{extract::Request, middleware::Next, response::Response};
use http::{HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

tokio::task_local! {
    static CURRENT: String;
}

/// The request id of the request being handled, available as an extension too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The W3C trace context of the incoming request, if it sent a valid one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// The id of the request this task is serving, or `None` outside a request.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

fn valid_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

/// Picks the incoming id: first valid of `X-Request-ID`, `X-Correlation-ID`, else a UUID v4.
pub fn choose(headers: &http::HeaderMap) -> String {
    [&X_REQUEST_ID, &X_CORRELATION_ID]
        .into_iter()
        .filter_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .find(|v| valid_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Middleware: settles the id, exposes it to the handler and echoes it on every response.
pub async fn middleware(mut req: Request, next: Next) -> Response {
    let id = choose(req.headers());
    let trace = TraceContext {
        traceparent: req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid_traceparent(v))
            .map(str::to_owned),
        tracestate: req
            .headers()
            .get("tracestate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(trace);
    let mut res = CURRENT.scope(id.clone(), next.run(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, value.clone());
        res.headers_mut().insert(X_CORRELATION_ID, value);
    }
    res
}

/// Layer inside the request span: when spans are exported, the trace context handed to
/// handlers (and so to events and outgoing calls) names this service's span instead of the
/// caller's, so the next hop becomes its child. It only touches the request, so its future is
/// the inner one: no box, and nothing but an atomic load when spans are not exported.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdoptSpanContextLayer;

impl<S> tower::Layer<S> for AdoptSpanContextLayer {
    type Service = AdoptSpanContext<S>;

    fn layer(&self, inner: S) -> AdoptSpanContext<S> {
        AdoptSpanContext { inner }
    }
}

/// The service of [`AdoptSpanContextLayer`].
#[derive(Debug, Clone)]
pub struct AdoptSpanContext<S> {
    inner: S,
}

impl<S> tower::Service<Request> for AdoptSpanContext<S>
where
    S: tower::Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> S::Future {
        if crate::otel::enabled()
            && let Some((traceparent, tracestate)) =
                crate::otel::context_of(&tracing::Span::current())
        {
            req.extensions_mut().insert(TraceContext {
                traceparent: Some(traceparent),
                tracestate,
            });
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_first_valid_header() {
        let mut h = http::HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("bad id with spaces"));
        h.insert(X_CORRELATION_ID, HeaderValue::from_static("corr-1:2.3_4"));
        assert_eq!(choose(&h), "corr-1:2.3_4");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("req-9"));
        assert_eq!(choose(&h), "req-9");
        let generated = choose(&http::HeaderMap::new());
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        assert!(!valid_id(&"a".repeat(129)));
    }

    #[test]
    fn traceparent_shape() {
        assert!(valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent("garbage"));
    }
}
