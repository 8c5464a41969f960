//! Prometheus metrics for every process (api.md §3.9): one recorder per process, and the HTTP
//! middleware that counts requests by route template, method and status.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
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

/// Middleware: request count, duration and in-flight gauge.
pub async fn track(req: Request, next: Next) -> Response {
    // Until the recorder is installed the macros hand out no-op handles: never cache those.
    if HANDLE.get().is_none() {
        return track_uncached(req, next).await;
    }
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    in_flight().increment(1.0);
    let res = next.run(req).await;
    in_flight().decrement(1.0);
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let s = series(&method, route, res.status().as_u16());
    s.total.increment(1);
    s.duration.record(started.elapsed().as_secs_f64());
    res
}

async fn track_uncached(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    metrics::gauge!("http_requests_in_flight").increment(1.0);
    let res = next.run(req).await;
    metrics::gauge!("http_requests_in_flight").decrement(1.0);
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    res
}
