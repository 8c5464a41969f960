//! The streaming reverse proxy (api.md §3.1, §3.7): keep-alive HTTP/1.1 connections per
//! upstream and thread (`pool`), bodies streamed both ways (never collected), forwarding headers set, hop-by-hop
//! and internal headers dropped, failures classified into 502/503/504, a circuit breaker and
//! readiness flag per upstream. Does network I/O.

use std::{
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, StatusCode, Uri,
    header::{self, RETRY_AFTER},
};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use payplane_kit::error::error_chain;
use payplane_kit::{
    ApiError,
    request_id::{RequestId, TraceContext},
};
use serde_json::json;

use crate::{
    breaker::{Admission, Breaker},
    config::UpstreamPolicy,
    edge::Client,
};

mod pool;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("upstream URL {url:?} is not an absolute http URL")]
    BadUpstreamUrl { url: String },
}

/// One upstream service.
#[derive(Debug)]
pub struct Upstream {
    pub name: &'static str,
    pub base: String,
    /// Where its connections go; also the key of the per-thread connection pools.
    target: pool::Target,
    /// For requests that arrive without a `Host` (HTTP/2 clients send the authority instead):
    /// HTTP/1.1 requires one.
    host: HeaderValue,
    pub breaker: Breaker,
    ready: AtomicBool,
    ready_failures: AtomicU32,
    /// False when readiness is not polled: the upstream then always counts as ready.
    tracked: bool,
    /// The hot path's metric handles, looked up once: the label macros otherwise build a label
    /// vector and hash it into the registry on every request.
    hot_metrics: OnceLock<HotMetrics>,
}

/// Handles for what every successful proxied request records.
#[derive(Debug)]
struct HotMetrics {
    duration: metrics::Histogram,
    ok: metrics::Counter,
}

impl Upstream {
    pub fn new(
        name: &'static str,
        base: &str,
        policy: &UpstreamPolicy,
    ) -> Result<Self, ProxyError> {
        let uri: Uri = base.parse().map_err(|_| ProxyError::BadUpstreamUrl {
            url: base.to_owned(),
        })?;
        // Plain HTTP only: upstreams sit inside the cluster, behind the gateway's TLS.
        let Some(authority) = uri
            .authority()
            .filter(|_| uri.scheme() == Some(&http::uri::Scheme::HTTP))
        else {
            return Err(ProxyError::BadUpstreamUrl {
                url: base.to_owned(),
            });
        };
        let Ok(host) = HeaderValue::from_str(authority.as_str()) else {
            return Err(ProxyError::BadUpstreamUrl {
                url: base.to_owned(),
            });
        };
        let tracked = !policy.ready_poll.is_zero();
        Ok(Self {
            name,
            base: base.trim_end_matches('/').to_owned(),
            target: pool::Target::new(authority, policy.connect_timeout),
            host,
            breaker: Breaker::new(policy.failure_threshold, policy.open_for),
            ready: AtomicBool::new(!tracked),
            ready_failures: AtomicU32::new(0),
            tracked,
            hot_metrics: OnceLock::new(),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Readiness tracking (api.md §3.7): ready on one success, not ready after two failures.
    pub fn record_poll(&self, ok: bool) {
        if !self.tracked {
            return;
        }
        if ok {
            self.ready_failures.store(0, Ordering::Relaxed);
            self.ready.store(true, Ordering::Relaxed);
        } else if self.ready_failures.fetch_add(1, Ordering::Relaxed) + 1 >= 2 {
            self.ready.store(false, Ordering::Relaxed);
        }
    }

    /// Resolved on first use, not in `new`: the recorder is installed when the router is built,
    /// after the upstreams.
    fn hot_metrics(&self) -> &HotMetrics {
        self.hot_metrics.get_or_init(|| HotMetrics {
            duration: metrics::histogram!("upstream_request_duration_seconds", "upstream" => self.name),
            ok: metrics::counter!("upstream_requests_total", "upstream" => self.name, "outcome" => "ok"),
        })
    }

    fn set_breaker_gauge(&self) {
        metrics::gauge!("circuit_breaker_open", "upstream" => self.name)
            .set(if self.breaker.is_open() { 1.0 } else { 0.0 });
    }
}

/// Every upstream and the policy for all of them.
#[derive(Clone)]
pub struct Proxy {
    pub upstreams: Arc<Vec<Arc<Upstream>>>,
    pub policy: UpstreamPolicy,
}

impl Proxy {
    pub fn new(
        upstreams: &[(&'static str, String)],
        policy: UpstreamPolicy,
    ) -> Result<Self, ProxyError> {
        let upstreams = upstreams
            .iter()
            .map(|(name, url)| Upstream::new(name, url, &policy).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            upstreams: Arc::new(upstreams),
            policy,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// Polls every upstream's `/health/ready` now (2 s timeout each).
    pub async fn poll_ready(&self, http: &reqwest::Client) {
        let polls = self.upstreams.iter().map(|u| async move {
            let ok = http
                .get(format!("{}/health/ready", u.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            u.record_poll(ok);
        });
        futures::future::join_all(polls).await;
    }

    /// Forwards `req` to `upstream`, streaming both bodies. `body_limit` cuts off a chunked
    /// request body that grows beyond it (413).
    #[expect(
        clippy::too_many_lines,
        reason = "the hot path of every proxied request in one piece, so its per-request cost reads (and is counted with callgrind) as one sequence"
    )]
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the request twice"
    )]
    pub fn forward<'a>(
        &'a self,
        upstream: &'a Upstream,
        req: Request,
        body_limit: usize,
    ) -> impl Future<Output = Response> + Send + 'a {
        // Not an `async fn`, which would hold the request twice in its future (see
        // `edge::layer::Edge::handle`).
        async move {
            // One clock read for the breaker, the response deadline and the duration metric
            // (the header rewrite between them is a microsecond; each read is a vDSO call).
            let started = Instant::now();
            let admission = upstream.breaker.admit(started);
            if let Admission::Open(wait) = admission {
                record(upstream, "circuit_open");
                let secs = wait.as_secs_f64().ceil().max(1.0);
                return ApiError::unavailable(format!(
                    "The {} service is temporarily unavailable",
                    upstream.name
                ))
                .with_details(json!({ "service": upstream.name, "reason": "circuit_open" }))
                .with_header(RETRY_AFTER, &format!("{secs}"))
                .into_response();
            }
            if !upstream.is_ready() {
                // A half-open trial must not be lost when the upstream is not ready yet.
                upstream.breaker.success();
                record(upstream, "not_ready");
                return ApiError::unavailable(format!(
                    "The {} service is not ready",
                    upstream.name
                ))
                .with_details(json!({ "service": upstream.name, "reason": "not_ready" }))
                .into_response();
            }
            let (mut parts, body) = req.into_parts();
            // Origin-form, as HTTP/1.1 sends to a server that is not a proxy.
            let path_and_query = parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
            let client = Client::of(&parts.extensions);
            let client_ip = client.map(|c| c.ip);
            let tls = client.is_some_and(|c| c.tls);
            // The id's header value shares its buffer: a reference count, no copy.
            let request_id = parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.header().clone());
            let traceparent = parts
                .extensions
                .get::<TraceContext>()
                .and_then(|t| t.traceparent.as_deref())
                .and_then(|t| HeaderValue::from_str(t).ok())
                .unwrap_or_else(new_traceparent);
            let host_header = parts.headers.get(header::HOST).cloned();
            let has_host_header = host_header.is_some();
            // HTTP/2 clients send the authority in the URI instead of a Host header.
            let host = host_header.or_else(|| {
                parts
                    .uri
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            });
            let stripped = rewrite_request_headers(
                &mut parts.headers,
                client_ip,
                tls,
                host,
                request_id,
                traceparent,
            );
            // The rewrite keeps `Host` unless the `Connection` header named it, so whether it is
            // there is mostly known already: no second lookup on the common path.
            if !has_host_header || (stripped && !parts.headers.contains_key(header::HOST)) {
                parts.headers.insert(header::HOST, upstream.host.clone());
            }
            parts.uri = Uri::from(path_and_query);
            parts.version = http::Version::HTTP_11;
            // Bodiless requests (most GETs) skip the counting wrapper: one boxed body and one Arc
            // fewer per request.
            let exceeded = (!body.is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
            let body = match &exceeded {
                Some(flag) => Body::new(LimitedBody {
                    inner: body,
                    remaining: body_limit,
                    exceeded: flag.clone(),
                }),
                None => body,
            };
            let outbound = Request::from_parts(parts, body);
            let deadline = tokio::time::Instant::from_std(started + self.policy.response_timeout);
            let result = tokio::time::timeout_at(deadline, upstream.target.send(outbound)).await;
            let hot = upstream.hot_metrics();
            hot.duration.record(started.elapsed().as_secs_f64());
            match result {
                Ok(Ok(res)) => {
                    if upstream.breaker.success() {
                        upstream.set_breaker_gauge();
                    }
                    hot.ok.increment(1);
                    let (mut parts, body) = res.into_parts();
                    strip_response_headers(&mut parts.headers);
                    Response::from_parts(parts, Body::new(body))
                }
                Ok(Err(_)) if exceeded.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) => {
                    record(upstream, "payload_too_large");
                    ApiError::payload_too_large(body_limit).into_response()
                }
                Ok(Err(err)) => {
                    let timed_out =
                        matches!(err, pool::SendError::ConnectTimeout) || is_io_timeout(&err);
                    let connect = err.is_connect();
                    tracing::warn!(upstream = upstream.name, error = %error_chain(&err), "upstream request failed");
                    if (connect || timed_out) && upstream.breaker.failure(Instant::now()) {
                        upstream.set_breaker_gauge();
                    }
                    if timed_out {
                        record(upstream, "timeout");
                        gateway_timeout(upstream.name)
                    } else {
                        record(upstream, "error");
                        ApiError::new(
                            StatusCode::BAD_GATEWAY,
                            "BAD_GATEWAY",
                            format!("The {} service could not be reached", upstream.name),
                        )
                        .into_response()
                    }
                }
                Err(_elapsed) => {
                    if upstream.breaker.failure(Instant::now()) {
                        upstream.set_breaker_gauge();
                    }
                    record(upstream, "timeout");
                    gateway_timeout(upstream.name)
                }
            }
        }
    }
}

fn gateway_timeout(name: &str) -> Response {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "GATEWAY_TIMEOUT",
        format!("The {name} service did not answer in time"),
    )
    .into_response()
}

fn record(upstream: &Upstream, outcome: &'static str) {
    metrics::counter!("upstream_requests_total", "upstream" => upstream.name, "outcome" => outcome)
        .increment(1);
}

fn is_io_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = src {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        src = e.source();
    }
    false
}

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
// `X-Forwarded-Proto`'s values as constants, so their bytes are checked at compile time (see
// `edge::CSP_JSON`).
const HTTPS: HeaderValue = HeaderValue::from_static("https");
const HTTP: HeaderValue = HeaderValue::from_static("http");

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the common non-standard ones). Constants, not
/// strings: a `&str` name is parsed and hashed again on every lookup, which was an eighth of a
/// proxied request's instructions.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::TRANSFER_ENCODING,
];

/// Headers a caller may never present through the gateway: service credentials (api.md §2.6)
/// and the forwarding headers only the gateway sets.
const CALLER_MAY_NOT_SET: [HeaderName; 7] = [
    HeaderName::from_static("x-service-name"),
    HeaderName::from_static("x-service-token"),
    HeaderName::from_static("x-actor-id"),
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    header::FORWARDED,
];

/// Removes hop-by-hop headers, including those the `Connection` header names; false when the
/// message had none (nothing was removed).
fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // Most messages carry none: one pass over the few names present decides, instead of a
    // hashed removal per candidate.
    if !headers.keys().any(|n| HOP_BY_HOP.contains(n)) {
        return false;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    true
}

/// The response headers the client gets from an upstream: no hop-by-hop headers. (`Server`
/// and `X-Powered-By` are removed from every answer by the edge's security headers, so not
/// looked for twice here.)
fn strip_response_headers(headers: &mut HeaderMap) {
    let _ = strip_hop_by_hop(headers);
}

fn rewrite_request_headers(
    headers: &mut HeaderMap,
    client_ip: Option<IpAddr>,
    tls: bool,
    host: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    traceparent: HeaderValue,
) -> bool {
    let stripped = strip_hop_by_hop(headers);
    if headers.keys().any(|n| CALLER_MAY_NOT_SET.contains(n)) {
        for name in &CALLER_MAY_NOT_SET {
            headers.remove(name);
        }
    }
    if let Some(ip) = client_ip.and_then(ip_header) {
        headers.insert(X_FORWARDED_FOR, ip);
    }
    headers.insert(X_FORWARDED_PROTO, if tls { HTTPS } else { HTTP });
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(id) = request_id {
        headers.insert(payplane_kit::request_id::X_REQUEST_ID, id);
    }
    headers.insert(TRACEPARENT, traceparent);
    stripped
}

/// The client IP as a header value. The last one rendered is kept per thread: a keep-alive
/// connection (or a proxy in front) sends many requests from one address, and formatting an
/// address goes through `core::fmt` each time.
fn ip_header(ip: IpAddr) -> Option<HeaderValue> {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<Option<(IpAddr, HeaderValue)>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((cached, value)) = last.as_ref()
            && *cached == ip
        {
            return Some(value.clone());
        }
        let value = HeaderValue::from_str(&ip.to_string()).ok()?;
        *last = Some((ip, value.clone()));
        Some(value)
    })
}

/// A fresh W3C trace context for requests that arrive without one. The ids only need to be
/// unique, not unpredictable: they come from a per-thread wyrand stream seeded once from the
/// OS (two `Uuid::new_v4()` per request were two `getrandom` syscalls, ~2.6 % of a proxy
/// profile; SipHash plus `format!` after that still cost ~2,000 instructions).
fn new_traceparent() -> HeaderValue {
    let (hi, lo, span) = (fast_random(), fast_random() | 1, fast_random() | 1);
    // All-zero ids are invalid (W3C trace context §3.2.2.3); `| 1` keeps them non-zero.
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-01";
    hex_into(&mut out[3..19], hi);
    hex_into(&mut out[19..35], lo);
    hex_into(&mut out[36..52], span);
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Writes `value` as 16 lowercase hex digits.
fn hex_into(out: &mut [u8], value: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate().take(16) {
        let nibble = (value >> (60 - 4 * i)) & 0xf;
        *byte = HEX[usize::try_from(nibble).unwrap_or(0)];
    }
}

/// wyrand (Wang Yi's generator): one multiply per number, good enough for ids that must not
/// repeat, not for secrets.
fn fast_random() -> u64 {
    use std::{
        cell::Cell,
        collections::hash_map::RandomState,
        hash::{BuildHasher, Hasher},
    };
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish());
    }
    STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "folding the 128-bit product into 64 bits is the algorithm"
        )]
        let folded = (t >> 64) as u64 ^ t as u64;
        folded
    })
}

/// Streams the client's body while counting it; beyond the limit it fails the upload and
/// raises the flag so the proxy answers 413 instead of 502.
struct LimitedBody {
    inner: Body,
    remaining: usize,
    exceeded: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit")]
struct BodyTooLarge;

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if data.len() > self.remaining {
                        self.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                    }
                    self.remaining -= data.len();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_traceparents_are_well_formed_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let v = new_traceparent();
            let s = v.to_str().unwrap().to_owned();
            let parts: Vec<&str> = s.split('-').collect();
            assert_eq!(parts.len(), 4, "{s}");
            assert_eq!((parts[0], parts[3]), ("00", "01"));
            assert_eq!((parts[1].len(), parts[2].len()), (32, 16));
            assert!(parts[1..3].iter().all(|p| {
                p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    && p.bytes().any(|b| b != b'0')
            }));
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn ids_are_written_as_big_endian_lowercase_hex() {
        let mut out = [0_u8; 16];
        hex_into(&mut out, 0x0123_4567_89ab_cdef);
        assert_eq!(&out, b"0123456789abcdef");
        hex_into(&mut out, 1);
        assert_eq!(&out, b"0000000000000001");
    }

    #[test]
    fn request_headers_lose_hop_by_hop_and_caller_set_forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-drop-me"),
        );
        h.insert("x-drop-me", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-service-token", HeaderValue::from_static("stolen"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        rewrite_request_headers(
            &mut h,
            Some(ip),
            true,
            Some(HeaderValue::from_static("example.com")),
            Some(HeaderValue::from_static("req-1")),
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        for gone in [
            "connection",
            "x-drop-me",
            "keep-alive",
            "x-service-token",
            "forwarded",
        ] {
            assert!(!h.contains_key(gone), "{gone} kept");
        }
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert_eq!(h["x-request-id"], "req-1");
        assert_eq!(h[header::ACCEPT], "*/*");
        // The per-thread address cache answers for the address it holds, not another one.
        assert_eq!(ip_header(ip).unwrap(), "10.1.2.3");
        assert_eq!(ip_header("::1".parse().unwrap()).unwrap(), "::1");
    }

    #[test]
    fn response_headers_lose_hop_by_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        strip_response_headers(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }
}
