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

/// Cached series per worker thread, beyond which lookups go to the registry uncached (methods
/// are open-ended, so a client could otherwise grow the cache without bound).
const SERIES_CACHE_MAX: usize = 512;

/// Cached series count, and the series by (method, status) then route template.
type SeriesCache = (
    usize,
    std::collections::HashMap<(http::Method, u16), Vec<(Box<str>, Series)>>,
);

thread_local! {
    /// This thread's handles by (method, status), then by route template: the label macros
    /// otherwise build three `String`s, a label vector and hash it into the registry for each
    /// of four metrics on every request (several thousand instructions of a proxied request).
    static SERIES: std::cell::RefCell<SeriesCache> =
        std::cell::RefCell::new((0, std::collections::HashMap::new()));
}

fn in_flight() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("http_requests_in_flight"))
}

fn series(method: &http::Method, route: &str, status: u16) -> Series {
    let lookup = || {
        let labels = [
            ("method", method.to_string()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        Series {
            total: metrics::counter!("http_requests_total", &labels),
            duration: metrics::histogram!("http_request_duration_seconds", &labels),
        }
    };
    SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (count, map) = &mut *cache;
        let routes = map.entry((method.clone(), status)).or_default();
        if let Some((_, s)) = routes.iter().find(|(r, _)| &**r == route) {
            return s.clone();
        }
        let s = lookup();
        if *count < SERIES_CACHE_MAX {
            *count += 1;
            routes.push((route.into(), s.clone()));
        }
        s
    })
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
            in_flight().clone()
        } else {
            metrics::gauge!("http_requests_in_flight")
        };
        in_flight.increment(1.0);
        TrackFuture {
            method: req.method().clone(),
            route: RouteLabel::of(&req, self.templates),
            started: Instant::now(),
            cached,
            in_flight: InFlight(in_flight),
            inner: self.inner.call(req),
        }
    }
}

/// Leaves the in-flight gauge when the request ends, answered or dropped (a client that
/// disconnects drops the future before it completes).
struct InFlight(metrics::Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
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
                let s = series(this.method, route, status);
                s.total.increment(1);
                s.duration.record(elapsed);
            } else {
                let labels = [
                    ("method", this.method.to_string()),
                    ("route", route.to_owned()),
                    ("status", status.to_string()),
                ];
                metrics::counter!("http_requests_total", &labels).increment(1);
                metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed);
            }
        }
        Poll::Ready(res)
    }
}
