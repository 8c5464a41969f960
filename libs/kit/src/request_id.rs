//! Request and correlation ids (api.md §1.2) and the W3C trace context a request arrived with.
//! The id lives in a task-local for the request's duration so error bodies and events can carry
//! it without threading it through every call.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use tokio::task::futures::TaskLocalFuture;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The request id of the request being handled, available as an extension too. Held as the
/// header value it is echoed (and, by the gateway, forwarded) as, in one shared buffer: clones
/// cost a reference count. As a `String` it was copied into five separate allocations per
/// request (task-local, extension, the echo and its copy, the gateway's forwarded header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A fresh UUID v4, written without going through `core::fmt`, in the one allocation its
    /// clones share (a `Vec`-backed value would allocate again on its first clone).
    fn fresh() -> Self {
        let mut buf = [0_u8; uuid::fmt::Hyphenated::LENGTH];
        uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        // Hex digits and hyphens are always a valid header value; the fallback is unreachable.
        Self(
            HeaderValue::from_maybe_shared(Bytes::from_owner(buf))
                .unwrap_or_else(|_| HeaderValue::from_static("invalid-request-id")),
        )
    }

    /// The id. Ids are checked to be visible ASCII ([`valid_id`]), so they always read as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// The id as the header value it is echoed and forwarded as.
    pub fn header(&self) -> &HeaderValue {
        &self.0
    }
}

/// The W3C trace context of the incoming request, if it sent a valid one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// The id of the request this task is serving, or `None` outside a request.
pub fn current() -> Option<String> {
    CURRENT.try_with(|id| id.as_str().to_owned()).ok()
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
/// The caller's header value is kept as it came (its buffer is shared, not copied).
pub fn choose(headers: &http::HeaderMap) -> RequestId {
    [&X_REQUEST_ID, &X_CORRELATION_ID]
        .into_iter()
        .filter_map(|name| headers.get(name))
        .find(|v| v.to_str().is_ok_and(valid_id))
        .map_or_else(RequestId::fresh, |v| RequestId(v.clone()))
}

/// Layer: settles the id, exposes it to the handler (extension and task-local) and echoes it
/// on every response. A plain tower layer with its own future rather than
/// `middleware::from_fn`, which boxes the rest of the stack and its future on every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> SetRequestId<S> {
        SetRequestId { inner }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

impl<S, B> tower::Service<Request> for SetRequestId<S>
where
    S: tower::Service<Request, Response = http::Response<B>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // Most requests carry none of the four headers read here: one pass over the few names
        // present settles that, where four lookups would hash a name and probe the map each.
        let (id, trace) = if req.headers().keys().any(|n| {
            n == X_REQUEST_ID || n == X_CORRELATION_ID || n == TRACEPARENT || n == TRACESTATE
        }) {
            let header = |name: &HeaderName| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let trace = TraceContext {
                traceparent: header(&TRACEPARENT).filter(|v| valid_traceparent(v)),
                tracestate: header(&TRACESTATE),
            };
            (choose(req.headers()), trace)
        } else {
            (RequestId::fresh(), TraceContext::default())
        };
        let echo = id.header().clone();
        req.extensions_mut().insert(id.clone());
        // Every reader takes a missing context as the empty one, so a request that brought
        // none (most) costs no extension: each insert is a box and a hash-map entry, and a
        // fourth entry regrows the map.
        if trace.traceparent.is_some() || trace.tracestate.is_some() {
            req.extensions_mut().insert(trace);
        }
        RequestIdFuture {
            inner: CURRENT.scope(id, self.inner.call(req)),
            echo: Some(echo),
        }
    }
}

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

pin_project_lite::pin_project! {
    /// The rest of the stack with the id in scope; puts the id on the answer, whose body
    /// becomes axum's (as every handler's and `from_fn`'s answers are).
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: TaskLocalFuture<RequestId, F>,
        echo: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx))?;
        if let Some(value) = this.echo.take() {
            res.headers_mut().insert(X_REQUEST_ID, value.clone());
            res.headers_mut().insert(X_CORRELATION_ID, value);
        }
        Poll::Ready(Ok(res.map(axum::body::Body::new)))
    }
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

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
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
        assert_eq!(choose(&h).as_str(), "corr-1:2.3_4");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("req-9"));
        assert_eq!(choose(&h).as_str(), "req-9");
        let generated = choose(&http::HeaderMap::new());
        let uuid = uuid::Uuid::parse_str(generated.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(generated.as_str(), uuid.hyphenated().to_string());
        assert_ne!(choose(&http::HeaderMap::new()), generated);
        assert!(!valid_id(&"a".repeat(129)));
    }

    /// What the layer hands the handler (id and trace context) and echoes on the answer.
    async fn through_layer(headers: &[(&str, &str)]) -> (String, Option<TraceContext>, String) {
        use tower::{Layer, ServiceExt};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let inner = {
            let seen = seen.clone();
            tower::service_fn(move |req: Request| {
                let seen = seen.clone();
                async move {
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .map(|r| r.as_str().to_owned());
                    let trace = req.extensions().get::<TraceContext>().cloned();
                    *seen.lock().unwrap() = Some((id.unwrap(), trace));
                    Ok::<_, std::convert::Infallible>(
                        http::Response::new(axum::body::Body::empty()),
                    )
                }
            })
        };
        let mut req = http::Request::builder().uri("/x");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = RequestIdLayer
            .layer(inner)
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let echoed = res.headers()[X_REQUEST_ID].to_str().unwrap().to_owned();
        assert_eq!(res.headers()[X_CORRELATION_ID], echoed.as_str());
        let (id, trace) = seen.lock().unwrap().take().unwrap();
        (id, trace, echoed)
    }

    #[tokio::test]
    async fn the_layer_keeps_the_callers_ids_and_makes_one_otherwise() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (id, trace, echoed) = through_layer(&[
            ("accept", "application/json"),
            ("x-correlation-id", "corr-7"),
            ("traceparent", parent),
            ("tracestate", "vendor=1"),
        ])
        .await;
        assert_eq!((id.as_str(), echoed.as_str()), ("corr-7", "corr-7"));
        let trace = trace.expect("the caller's trace context");
        assert_eq!(trace.traceparent.as_deref(), Some(parent));
        assert_eq!(trace.tracestate.as_deref(), Some("vendor=1"));

        // An invalid traceparent is dropped; the tracestate alone is still carried.
        let (_, trace, _) =
            through_layer(&[("traceparent", "garbage"), ("tracestate", "vendor=1")]).await;
        let trace = trace.expect("the tracestate");
        assert_eq!(trace.traceparent, None);

        let (id, trace, echoed) = through_layer(&[("accept", "application/json")]).await;
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert_eq!(id, echoed);
        assert_eq!(trace, None, "no trace context when the caller sent none");
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
