//! Edge rules applied to every request before routing (api.md §3.2, §3.4–§3.6): the real
//! client IP, the CORS allow-list with its 403, security headers and declared body sizes.
//! Header logic only; no I/O.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request},
    response::{IntoResponse, Response},
};

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use ipnet::IpNet;
use payplane_kit::{ApiError, client_ip};

use crate::proxy;

pub mod compress;
pub mod layer;

/// The TCP peer and whether the connection is TLS, recorded per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr {
    pub addr: SocketAddr,
    pub tls: bool,
}

/// Who is calling. One request extension, `ConnectInfo<Client>`: the listener inserts it for
/// every request of a connection with the peer as the client ([`Client::plain`],
/// [`Client::tls`]), and the edge settles it in place (step 5, [`settle_client`]) — the real
/// client IP behind trusted proxies and the TLS flag — before anything reads it
/// ([`Client::of`]). In place because each extension insert or removal is a box and a hash-map
/// operation (replacing the peer's extension by a settled one cost ~200 instructions a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client IP of api.md §3.2.
    pub ip: IpAddr,
    /// Whether the request arrived over TLS, directly or per `X-Forwarded-Proto` from a
    /// trusted proxy.
    pub tls: bool,
    /// The connection as the listener saw it (what `ip` and `tls` were settled from).
    peer: PeerAddr,
}

impl Client {
    fn of_peer(peer: PeerAddr) -> Self {
        Self {
            ip: peer.addr.ip().to_canonical(),
            tls: peer.tls,
            peer,
        }
    }

    /// A peer on the plain listener (`serve_http`'s connect-info function).
    pub fn plain(addr: &SocketAddr) -> Self {
        Self::of_peer(PeerAddr {
            addr: *addr,
            tls: false,
        })
    }

    /// A peer on the TLS listener.
    pub fn tls(addr: &SocketAddr) -> Self {
        Self::of_peer(PeerAddr {
            addr: *addr,
            tls: true,
        })
    }

    /// The request's client, as the edge settled it.
    pub fn of(extensions: &http::Extensions) -> Option<Self> {
        extensions.get::<ConnectInfo<Client>>().map(|c| c.0)
    }
}

/// What the edge middleware needs from the configuration.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub trusted_proxies: Arc<Vec<IpNet>>,
    pub origins: Arc<Vec<String>>,
    pub body_limit: usize,
    pub profile_body_limit: usize,
}

impl EdgeConfig {
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }

    /// The body limit of a path (api.md §3.6).
    pub fn limit_for(&self, path: &str) -> usize {
        if path == "/api/profile" || path.starts_with("/api/profile/") {
            self.profile_body_limit
        } else {
            self.body_limit
        }
    }
}

/// Settles the client IP and TLS flag once, for everything after it (step 5), in the
/// request's [`Client`] (inserted when the listener did not: tests serving the router with a
/// plain `ConnectInfo<SocketAddr>`); returns the TLS flag. A request that keeps its extensions
/// to three (client, request id, the caller's trace context) never regrows their map.
pub fn settle_client(cfg: &EdgeConfig, req: &mut Request) -> bool {
    let peer = Client::of(req.extensions()).map_or_else(
        || PeerAddr {
            addr: req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), |c| c.0),
            tls: false,
        },
        |c| c.peer,
    );
    let peer_trusted = cfg
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&peer.addr.ip().to_canonical()));
    // Only a trusted proxy's `X-Forwarded-For` counts (`resolve` ignores it otherwise), so a
    // direct client's request skips the lookup (~180 instructions: a custom name is hashed
    // byte by byte).
    let ip = if peer_trusted {
        let xff = req
            .headers()
            .get(proxy::X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok());
        client_ip::resolve(peer.addr.ip(), xff, &cfg.trusted_proxies)
    } else {
        peer.addr.ip().to_canonical()
    };
    let forwarded_https = peer_trusted
        && req
            .headers()
            .get(proxy::X_FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let tls = peer.tls || forwarded_https;
    // No `TrustedProxies` extension: only kit's `ClientInfo` extractor reads it, which nothing
    // in the gateway uses (the services behind it resolve the client from the
    // `X-Forwarded-For` the proxy sends).
    let settled = Client { ip, tls, peer };
    match req.extensions_mut().get_mut::<ConnectInfo<Client>>() {
        Some(client) => client.0 = settled,
        None => {
            req.extensions_mut().insert(ConnectInfo(settled));
        }
    }
    tls
}

/// `/metrics` only for the allow-listed CIDRs, when configured (api.md §3.8; step 7): the 404
/// a caller outside them gets.
pub fn metrics_denied(allowed: &[IpNet], req: &Request) -> Option<Response> {
    if req.uri().path() != "/metrics" || allowed.is_empty() {
        return None;
    }
    let ip = Client::of(req.extensions()).map(|c| c.ip.to_canonical());
    if ip.is_some_and(|ip| allowed.iter().any(|n| n.contains(&ip))) {
        None
    } else {
        Some(ApiError::route_not_found(req.method(), "/metrics").into_response())
    }
}

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Content-Type, Authorization, X-Request-ID, X-Correlation-ID, X-Device-ID, Idempotency-Key, traceparent";
const EXPOSE_HEADERS: &str = "X-Request-ID, X-Correlation-ID, Idempotent-Replayed, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy";

pub fn origin_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "ORIGIN_NOT_ALLOWED",
        "Origin is not allowed",
    )
}

/// Whether a request is a CORS preflight (answered here, never counted or forwarded).
pub fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// What CORS (api.md §3.4, step 8) makes of a request.
pub enum Cors {
    /// No `Origin`: not a CORS request.
    NotCors,
    /// Answered here: a disallowed origin's 403 envelope, or a preflight's 204.
    Answered(Response),
    /// An allowed origin: its answer gets [`Cors::decorate`]'s headers.
    Allowed(HeaderValue),
}

impl Cors {
    pub fn check(cfg: &EdgeConfig, req: &Request) -> Self {
        let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
            return Self::NotCors;
        };
        if !origin.to_str().is_ok_and(|o| cfg.origin_allowed(o)) {
            let mut res = origin_not_allowed().into_response();
            res.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
            return Self::Answered(res);
        }
        if !is_preflight(req) {
            return Self::Allowed(origin);
        }
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        allow_origin(h, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("3600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        Self::Answered(res)
    }

    /// The CORS headers of an allowed origin's answer (a preflight's or a request's).
    pub fn decorate(self, h: &mut HeaderMap) {
        let Self::Allowed(origin) = self else {
            return;
        };
        allow_origin(h, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// The two headers every answer to an allowed origin carries.
fn allow_origin(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

// Header values as constants: `from_static` checks every byte, and it does so at run time when
// the string is chosen by a branch (the CSP's 42 bytes were ~420 instructions per response).
const CSP_JSON: HeaderValue =
    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");
const CSP_DOCS: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
);

/// Which of api.md §3.5's security headers a response gets, settled from the request path
/// before the request moves on (so the path is not copied to be looked at afterwards).
#[derive(Debug, Clone, Copy)]
pub struct SecurityHeaders {
    tls: bool,
    console_page: bool,
    docs_page: bool,
    graphql: bool,
    no_store: bool,
}

const X_POWERED_BY: http::HeaderName = http::HeaderName::from_static("x-powered-by");

impl SecurityHeaders {
    pub fn for_request(path: &str, tls: bool) -> Self {
        Self {
            tls,
            console_page: crate::app::routes_to_console(path),
            docs_page: path == "/api-docs"
                || (path.starts_with("/api-docs/") && path != "/api-docs/openapi.json"),
            graphql: path == "/graphql",
            no_store: (path == "/api" || path.starts_with("/api/"))
                && path != "/api/auth/.well-known/jwks.json",
        }
    }

    /// Security headers of api.md §3.5 on every response (step 6).
    pub fn apply(self, h: &mut HeaderMap) {
        if self.tls {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // Console pages keep their own `same-origin`: under `no-referrer` browsers send
        // `Origin: null` on form posts, which the CORS check (and the console's CSRF check) refuse.
        if !(self.console_page && h.contains_key(header::REFERRER_POLICY)) {
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
        }
        // The console sets its own (stricter-than-docs) policy for its pages, and GraphiQL its
        // own (`GET /graphql`, outside production); keep them.
        if !((self.console_page || self.graphql) && h.contains_key(header::CONTENT_SECURITY_POLICY))
        {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                if self.docs_page { CSP_DOCS } else { CSP_JSON },
            );
        }
        if self.no_store {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        // One pass over the names present; a `&str` name would be parsed and hashed per lookup.
        if h.keys().any(|n| n == header::SERVER || n == X_POWERED_BY) {
            h.remove(header::SERVER);
            h.remove(X_POWERED_BY);
        }
    }
}

/// A declared `Content-Length` above the route's limit is refused before reading (api.md §3.6,
/// step 11); chunked bodies are counted by the proxy while streaming.
pub fn declared_too_large(cfg: &EdgeConfig, req: &Request) -> Option<Response> {
    let limit = cfg.limit_for(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared
        .is_some_and(|n| n > limit as u64)
        .then(|| ApiError::payload_too_large(limit).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_lose_the_names_of_the_software_behind_them() {
        let mut h = HeaderMap::new();
        h.insert(header::SERVER, HeaderValue::from_static("uvicorn"));
        h.insert("x-powered-by", HeaderValue::from_static("php"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        SecurityHeaders::for_request("/api/payments", false).apply(&mut h);
        assert!(h.get(header::SERVER).is_none() && h.get("x-powered-by").is_none());
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn docs_pages_get_their_own_csp_and_api_is_not_cached() {
        let apply_security_headers = |h: &mut HeaderMap, path: &str, tls: bool| {
            SecurityHeaders::for_request(path, tls).apply(h);
        };
        let mut h = HeaderMap::new();
        apply_security_headers(&mut h, "/api-docs/index.html", false);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP_DOCS);
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        let mut h = HeaderMap::new();
        apply_security_headers(&mut h, "/api/payments", true);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP_JSON);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        let mut h = HeaderMap::new();
        apply_security_headers(&mut h, "/api/auth/.well-known/jwks.json", false);
        assert!(!h.contains_key(header::CACHE_CONTROL));
    }

    #[test]
    fn profile_routes_have_the_larger_limit() {
        let cfg = EdgeConfig {
            trusted_proxies: Arc::default(),
            origins: Arc::default(),
            body_limit: 1,
            profile_body_limit: 3,
        };
        assert_eq!(cfg.limit_for("/api/profile/preferences"), 3);
        assert_eq!(cfg.limit_for("/api/profiles"), 1);
        assert_eq!(cfg.limit_for("/api/payments"), 1);
    }
}
