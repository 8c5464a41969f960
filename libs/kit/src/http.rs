//! The HTTP middleware stack every service wraps its router in. Outermost first:
//! request id (everything after it can name the request) → trace span and access log →
//! metrics (sees the final status, including panics) → panic catcher (a bug is a 500 envelope,
//! never a dropped connection) → body size (413 before authentication, api.md §1.5) →
//! contract fix-ups (envelope for 405, `Cache-Control: no-store` on `/api`) → routes.

use std::{any::Any, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    extract::Request,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use ipnet::IpNet;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use tracing::Level;

use crate::{
    ApiError,
    client_ip::TrustedProxies,
    health::{self, Health},
    json::{BodyLimit, DEFAULT_BODY_LIMIT},
    request_id::RequestId,
};

/// Per-service options of the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub body_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
}

impl StackOptions {
    /// The default body limit, with `X-Forwarded-For` believed from `trusted_proxies` only.
    pub fn trusting(trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            trusted_proxies,
            ..Self::default()
        }
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            trusted_proxies: Vec::new(),
        }
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::route_not_found(&method, uri.path())
}

async fn body_limit(limit: usize, mut req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    req.extensions_mut().insert(BodyLimit(limit));
    next.run(req).await
}

async fn contract_fixups(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api");
    let mut res = next.run(req).await;
    if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = res.headers().get(header::ALLOW).cloned();
        let mut err = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Method not allowed",
        )
        .into_response();
        if let Some(allow) = allow {
            err.headers_mut().insert(header::ALLOW, allow);
        }
        res = err;
    }
    if is_api && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "An unexpected error occurred",
    )
    .into_response()
}

/// The matched route template (low cardinality span names), else the bare path.
fn route_of(req: &Request) -> &str {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| req.uri().path(), axum::extract::MatchedPath::as_str)
}

/// Wraps a service's routes with health, metrics, the 404 fallback and the middleware stack.
pub fn stack(routes: Router, health: Health, opts: &StackOptions) -> Router {
    let limit = opts.body_limit;
    // Install the recorder before the first request is counted.
    let _ = crate::metrics::handle();
    routes
        .merge(health::router(health))
        .fallback(not_found)
        .layer(middleware::from_fn(contract_fixups))
        .layer(middleware::from_fn(move |req, next| body_limit(limit, req, next)))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(crate::metrics::TrackLayer::default())
        // Inside the request span: events and outgoing calls continue this service's span.
        .layer(crate::request_id::AdoptSpanContextLayer)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.extensions().get::<RequestId>().map_or("", RequestId::as_str).to_owned();
                    // The path only: query strings may carry tokens (/ws?token=…).
                    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path(),
                        otel.name = tracing::field::Empty, otel.kind = "server");
                    // Only the span exporter reads `otel.name`: no `format!` per request without it.
                    if crate::otel::enabled() {
                        span.record("otel.name", format!("{} {}", req.method(), route_of(req)).as_str());
                        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
                        crate::otel::set_remote_parent(&span, header("traceparent"), header("tracestate"));
                    }
                    span
                })
                .on_response(
                    |res: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::event!(Level::INFO, status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "response");
                    },
                )
                .on_request(())
                .on_failure(()),
        )
        .layer(crate::request_id::RequestIdLayer)
        .layer(Extension(TrustedProxies(Arc::new(opts.trusted_proxies.clone()))))
}
