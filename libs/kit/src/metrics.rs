//! Prometheus metrics for every process (api.md §3.9): one recorder per process, and the HTTP
//! middleware that counts requests by route template, method and status.

use std::{
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const HTTP_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle, installing it on first use. Tests start many services
/// in one process, so installation happens once and every app renders the same registry.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &HTTP_BUCKETS)
            {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only this kit's view"
                );
            }
            handle
        })
        .clone()
}

/// `GET /metrics`.
pub async fn render() -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}

/// One (method, route, status) series' handles.
#[derive(Clone)]
struct Series {
    total: metrics::Counter,
    duration: metrics::Histogram,
}

/// Cached series per worker thread, beyond which lookups go to the registry uncached.
const SERIES_CACHE_MAX: usize = 512;

/// The methods whose series are cached; other (extension) methods are open-ended, so a client
/// could otherwise grow the cache with them, and they go to the registry uncached.
const CACHED_METHODS: [http::Method; 9] = [
    http::Method::GET,
    http::Method::POST,
    http::Method::PUT,
    http::Method::PATCH,
    http::Method::DELETE,
    http::Method::HEAD,
    http::Method::OPTIONS,
    http::Method::CONNECT,
    http::Method::TRACE,
];

/// A cache key: the method's index in [`CACHED_METHODS`] above the status.
type SeriesKey = u32;

/// Hashes a [`SeriesKey`] with one multiplication: the std map's SipHash of a
/// `(Method, u16)` key cost ~200 instructions a request (callgrind, gateway profile).
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        // The map takes its bucket from the low bits and its tag from the high ones. The
        // multiplication carries every key bit into the high half, and the fold brings the
        // method's bits (above the status) down into the low half as well.
        let h = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

/// Cached series count, and the series by (method, status) then route template.
type SeriesCache = (
    usize,
    std::collections::HashMap<
        SeriesKey,
        Vec<(Box<str>, Series)>,
        std::hash::BuildHasherDefault<KeyHasher>,
    >,
);

thread_local! {
    /// This thread's handles by (method, status), then by route template: the label macros
    /// otherwise build three `String`s, a label vector and hash it into the registry for each
    /// of four metrics on every request (several thousand instructions of a proxied request).
    static SERIES: std::cell::RefCell<SeriesCache> =
        std::cell::RefCell::new((0, std::collections::HashMap::default()));
}

fn in_flight() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("http_requests_in_flight"))
}

/// The series' labels, for the registry.
fn labels(method: &http::Method, route: &str, status: u16) -> [(&'static str, String); 3] {
    [
        ("method", method.to_string()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ]
}

/// Counts one answer in its series, through this thread's cached handles (used in place: a
/// clone of the two handles is two reference-count updates, and two more to drop them).
fn record(method: &http::Method, route: &str, status: u16, elapsed: f64) {
    let lookup = || {
        let labels = labels(method, route, status);
        Series {
            total: metrics::counter!("http_requests_total", &labels),
            duration: metrics::histogram!("http_request_duration_seconds", &labels),
        }
    };
    let count = |s: &Series| {
        s.total.increment(1);
        s.duration.record(elapsed);
    };
    let Some(index) = (0..)
        .zip(&CACHED_METHODS)
        .find_map(|(i, m)| (m == method).then_some(i))
    else {
        return count(&lookup());
    };
    let key: SeriesKey = index << 16 | u32::from(status);
    SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (cached, map) = &mut *cache;
        let routes = map.entry(key).or_default();
        if let Some((_, s)) = routes.iter().find(|(r, _)| &**r == route) {
            return count(s);
        }
        let s = lookup();
        count(&s);
        if *cached < SERIES_CACHE_MAX {
            *cached += 1;
            routes.push((route.into(), s));
        }
    });
}

/// Which route template a path belongs to, for requests that reach their handler without
/// axum's router (the gateway's `/api/{service}` fast path), so they are counted under the label
/// `MatchedPath` would give them.
pub type RouteTemplates = fn(&str) -> Option<&'static str>;

/// Which route a request is counted under.
#[derive(Debug)]
enum RouteLabel {
    Matched(MatchedPath),
    Template(&'static str),
    Unmatched,
}

impl RouteLabel {
    fn of(req: &Request, templates: Option<RouteTemplates>) -> Self {
        if let Some(matched) = req.extensions().get::<MatchedPath>() {
            Self::Matched(matched.clone())
        } else if let Some(template) = templates.and_then(|t| t(req.uri().path())) {
            Self::Template(template)
        } else {
            Self::Unmatched
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Matched(matched) => matched.as_str(),
            Self::Template(template) => template,
            Self::Unmatched => "unmatched",
        }
    }
}

/// Layer: request count, duration and in-flight gauge. A plain tower layer with its own
/// future rather than `middleware::from_fn`, which boxes the rest of the stack and its future
/// on every request (about 2,000 instructions of a proxied request, counted with callgrind).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer {
    templates: Option<RouteTemplates>,
}

impl TrackLayer {
    /// Requests without a `MatchedPath` are counted under `templates(path)` when it names one.
    /// A function of the path rather than a request extension the fast path inserts: each
    /// extension is a box and a hash-map entry on every request.
    pub fn with_templates(templates: RouteTemplates) -> Self {
        Self {
            templates: Some(templates),
        }
    }
}

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            templates: self.templates,
        }
    }
}

/// The service of [`TrackLayer`].
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
    templates: Option<RouteTemplates>,
}

impl<S, B> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = http::Response<B>>,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Until the recorder is installed the macros hand out no-op handles: never cache those.
        let cached = HANDLE.get().is_some();
        let in_flight = if cached {
            InFlight::Cached(in_flight())
        } else {
            InFlight::Uncached(metrics::gauge!("http_requests_in_flight"))
        };
        in_flight.gauge().increment(1.0);
        TrackFuture {
            method: req.method().clone(),
            route: RouteLabel::of(&req, self.templates),
            started: Instant::now(),
            cached,
            in_flight,
            inner: self.inner.call(req),
        }
    }
}

/// Leaves the in-flight gauge when the request ends, answered or dropped (a client that
/// disconnects drops the future before it completes).
enum InFlight {
    /// The process's gauge, borrowed (a clone would be two reference-count updates a request).
    Cached(&'static metrics::Gauge),
    /// Before the recorder is installed: a no-op handle.
    Uncached(metrics::Gauge),
}

impl InFlight {
    fn gauge(&self) -> &metrics::Gauge {
        match self {
            Self::Cached(gauge) => gauge,
            Self::Uncached(gauge) => gauge,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge().decrement(1.0);
    }
}

pin_project_lite::pin_project! {
    /// Counts the answer once the inner future produced it.
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        method: http::Method,
        route: RouteLabel,
        started: Instant,
        cached: bool,
        in_flight: InFlight,
    }
}

impl<F, B, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx));
        if let Ok(res) = &res {
            let route = this.route.as_str();
            let status = res.status().as_u16();
            let elapsed = this.started.elapsed().as_secs_f64();
            if *this.cached {
                record(this.method, route, status, elapsed);
            } else {
                let labels = labels(this.method, route, status);
                metrics::counter!("http_requests_total", &labels).increment(1);
                metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed);
            }
        }
        Poll::Ready(res)
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::any};
    use tower::ServiceExt;

    use super::*;

    /// The value of the `http_requests_total` line with exactly these labels.
    fn total(rendered: &str, method: &str, route: &str, status: &str) -> Option<u64> {
        let labels = format!(r#"{{method="{method}",route="{route}",status="{status}"}}"#);
        rendered
            .lines()
            .find_map(|l| l.strip_prefix("http_requests_total")?.strip_prefix(&labels))
            .map(|v| v.trim().parse().unwrap())
    }

    #[tokio::test]
    async fn answers_are_counted_by_method_route_and_status_cached_or_not() {
        let handle = handle();
        let app = Router::new()
            .route("/track-test/{id}", any(|| async { "ok" }))
            .layer(TrackLayer::default());
        let call = |method: &str, path: &str| {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(req)
        };
        for _ in 0..3 {
            assert_eq!(call("GET", "/track-test/1").await.unwrap().status(), 200);
        }
        assert_eq!(call("POST", "/track-test/2").await.unwrap().status(), 200);
        // An extension method is counted without being cached.
        assert_eq!(call("PURGE", "/track-test/3").await.unwrap().status(), 200);
        assert_eq!(call("GET", "/track-missing").await.unwrap().status(), 404);
        let rendered = handle.render();
        assert_eq!(total(&rendered, "GET", "/track-test/{id}", "200"), Some(3));
        assert_eq!(total(&rendered, "POST", "/track-test/{id}", "200"), Some(1));
        assert_eq!(
            total(&rendered, "PURGE", "/track-test/{id}", "200"),
            Some(1)
        );
        assert!(total(&rendered, "GET", "unmatched", "404").is_some());
    }
}
