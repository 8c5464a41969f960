//! Building and running the gateway: state, the router with its explicit tower stack,
//! background tasks (readiness polls, JWKS, docs, TLS reload, event bridge) and serving over
//! plain HTTP or TLS, both with HTTP/1.1 and HTTP/2.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use http::{StatusCode, Uri};
use payplane_authn::{Authn, Verifier, jwks::RemoteKeys, verifier::Keys};
use payplane_kit::{
    ApiError,
    health::{Check, Health},
    request_id::RequestId,
    server::http::serve_http,
    service::Service,
    service::cache::{RedisTimeouts, connect_redis},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{Layer, ServiceBuilder};
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::{CompressionLayer, Predicate, predicate::SizeAbove},
};

use crate::{
    api_first::{ApiFirst, Forward, api_route, split_segment},
    config::Config,
    docs::{self, Docs},
    edge::{Client, EdgeConfig, compress::CompressIfAskedLayer, layer::EdgeLayer},
    graphql,
    proxy::{Proxy, ProxyError, Upstream},
    ratelimit::RateLimiter,
    span::SpanLayer,
    tls::{ReloadingCert, TlsError, TlsListener},
    ws::{self, PaymentAccess, WsState, hub::Hub},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("connecting to Redis at REDIS_URL")]
    Redis(#[source] redis::RedisError),
    #[error("reading the JWKS file JWKS_FILE")]
    Jwks(#[source] std::io::Error),
    #[error("binding LISTEN_ADDR {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub proxy: Proxy,
    /// The web console: outside `proxy.upstreams`, so it is neither an `/api/{service}` target
    /// nor a readiness requirement or an OpenAPI source of the gateway.
    pub console: Arc<Upstream>,
    pub edge: Arc<EdgeConfig>,
    pub limiter: Option<RateLimiter>,
    pub ws: WsState,
    pub docs: Docs,
    pub redis: redis::aio::ConnectionManager,
    /// For readiness polls, OpenAPI fetches and permission checks (not for proxying).
    pub http: reqwest::Client,
    /// Whether the WebSocket bridge is consuming this replica's queue.
    pub bridge: ws::bridge::BridgeStatus,
}

impl AppState {
    pub async fn connect(config: Config) -> Result<Self, StartError> {
        let proxy = Proxy::new(&config.upstreams, config.upstream)?;
        // Not polled for readiness (always counted ready); the breaker still guards it.
        let console_policy = crate::config::UpstreamPolicy {
            ready_poll: Duration::ZERO,
            ..config.upstream
        };
        let console = Arc::new(Upstream::new(
            "console",
            &config.console_url,
            &console_policy,
        )?);
        let redis = connect_redis(&config.redis_url, RedisTimeouts::EDGE)
            .await
            .map_err(StartError::Redis)?;
        let auth_url = config
            .upstream_url("auth")
            .unwrap_or("http://localhost:3001")
            .to_owned();
        let keys = if let Some(path) = &config.jwks_file {
            Keys::from_jwks_file(path).map_err(StartError::Jwks)?
        } else {
            let remote = RemoteKeys::new(&auth_url);
            remote.spawn_refresh();
            Keys::Remote(remote)
        };
        let authn = Authn {
            verifier: Verifier::new(config.issuer.clone(), keys),
            redis: redis.clone(),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let mut origins = config.cors_origins.clone();
        origins.push(config.public_base_url.clone());
        let edge = Arc::new(EdgeConfig {
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            origins: Arc::new(origins),
            body_limit: config.body_limit,
            profile_body_limit: config.profile_body_limit,
        });
        let limiter = config
            .rate_limits
            .enabled
            .then(|| RateLimiter::new(redis.clone(), config.rate_limits.clone()));
        let payments_url = config
            .upstream_url("payments")
            .unwrap_or_default()
            .to_owned();
        let hub = Hub::new(config.ws);
        let ws = WsState {
            access: PaymentAccess::new(
                http.clone(),
                &payments_url,
                &config.service_token,
                hub.parties_cache(),
            ),
            hub,
            authn,
        };
        let graphiql = !config.environment.is_production();
        Ok(Self {
            config: Arc::new(config),
            proxy,
            console,
            edge,
            limiter,
            ws,
            docs: Docs::default().with_graphiql(graphiql),
            redis,
            http,
            bridge: ws::bridge::BridgeStatus::default(),
        })
    }
}

/// `/api/{service}[/…]`: the routing table of api.md §3.1.
async fn forward(State(state): State<Arc<AppState>>, req: Request) -> Response {
    forward_request(state, req).await
}

/// The API route's work, shared by the router's handler and the fast path (`api_first`).
/// Not an `async fn`, which would hold the request twice in its future (see
/// `edge::layer::Edge::handle`).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store the request twice"
)]
pub(crate) fn forward_request(
    state: Arc<AppState>,
    req: Request,
) -> impl Future<Output = Response> + Send {
    async move {
        let path = req.uri().path();
        // `/api/<service>/<next>…`; `<next>` = `internal` is never forwarded.
        let (_api, after) = split_segment(path.trim_start_matches('/'));
        let (service, after) = after.map_or(("", None), split_segment);
        let next = after.map(|rest| split_segment(rest).0);
        let upstream = state.proxy.get(service).cloned();
        let Some(upstream) = upstream.filter(|_| next != Some("internal")) else {
            return ApiError::route_not_found(req.method(), path).into_response();
        };
        let limit = state.edge.limit_for(path);
        state.proxy.forward(&upstream, req, limit).await
    }
}

/// Whether a path belongs to the web console: everything except the API (`/api`), GraphQL,
/// the WebSocket, health, metrics, the API docs and `/internal`.
pub fn routes_to_console(path: &str) -> bool {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    !(under("/api")
        || under("/graphql")
        || under("/ws")
        || under("/metrics")
        || under("/internal")
        || path.starts_with("/health")
        || path.starts_with("/api-docs"))
}

/// The fallback: console paths go to the console (same origin), anything else is a 404.
async fn console_or_not_found(state: Arc<AppState>, req: Request) -> Response {
    if !routes_to_console(req.uri().path()) {
        return ApiError::route_not_found(req.method(), req.uri().path()).into_response();
    }
    let limit = state.edge.body_limit;
    state.proxy.forward(&state.console, req, limit).await
}

fn health(state: &AppState) -> Health {
    let proxy = state.proxy.clone();
    let redis = state.redis.clone();
    Health::new("gateway", env!("CARGO_PKG_VERSION"), move || {
        let (proxy, mut redis) = (proxy.clone(), redis.clone());
        Box::pin(async move {
            let mut checks: Vec<Check> = proxy
                .upstreams
                .iter()
                .map(|u| Check {
                    name: u.name,
                    up: u.is_ready(),
                    required: true,
                })
                .collect();
            let cache = tokio::time::timeout(
                Duration::from_secs(2),
                redis::cmd("PING").query_async::<String>(&mut redis),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            checks.push(Check {
                name: "cache",
                up: cache,
                required: true,
            });
            checks
        })
    })
}

/// Compress JSON bodies only (api.md §3 "gzip/br for JSON"); streamed downloads pass untouched.
fn json_only() -> impl Predicate {
    SizeAbove::new(256).and(
        |_: StatusCode, _: http::Version, h: &http::HeaderMap, _: &http::Extensions| {
            h.get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/json"))
        },
    )
}

/// The gateway's routes wrapped in its stack.
pub fn router(
    state: AppState,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    // Install the recorder before the first request is counted.
    let _ = payplane_kit::metrics::handle();
    let edge = state.edge.clone();
    let ws_state = state.ws.clone();
    let (docs, health) = (state.docs.clone(), health(&state));
    let gql = graphql::GraphQl::new(
        &state.config,
        state.http.clone(),
        state.limiter.clone(),
        state.ws.clone(),
    );
    // Shared behind one Arc: handlers and middleware clone the state per request.
    let state = Arc::new(state);
    let routes = Router::new()
        .route("/api/{service}", any(forward))
        .route("/api/{service}/{*rest}", any(forward))
        .with_state(state.clone())
        .route("/ws", get(ws::handler).with_state(Arc::new(ws_state)))
        .merge(graphql::router(gql))
        .merge(docs::router(docs))
        .merge(payplane_kit::health::router(health))
        .fallback({
            let state = state.clone();
            move |req: Request| console_or_not_found(state.clone(), req)
        });
    let stack = ServiceBuilder::new()
            // 1. Request id first: every later layer's log line and error envelope names the request.
            .layer(payplane_kit::request_id::RequestIdLayer)
            // 2. Access log span; the path only, never the query (`/ws?token=…`). The id is
            // recorded as the span is made, so it is borrowed, not copied; the caller's trace
            // context is only parsed when spans are exported.
            // Our own span layer, not tower-http's `TraceLayer` (see `span`).
            .layer(SpanLayer::new(|req: &Request| {
                let id = req.extensions().get::<RequestId>().map_or("", RequestId::as_str);
                // `otel.name` is for the span exporter only: formatted when spans are exported
                // (a `format!` per request otherwise, ~730 instructions).
                let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path(),
                    otel.name = tracing::field::Empty, otel.kind = "server");
                if payplane_kit::otel::enabled() {
                    span.record("otel.name", format!("{} {}", req.method(), req.uri().path()).as_str());
                    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
                    payplane_kit::otel::set_remote_parent(&span, header("traceparent"), header("tracestate"));
                }
                span
            }))
            // 2b. With span export on, what is forwarded upstream names the gateway's span.
            .layer(payplane_kit::request_id::AdoptSpanContextLayer)
            // 3. Metrics see every final status, including the edge's own rejections below;
            // API requests that skip the router are labelled with the route it would match.
            .layer(payplane_kit::metrics::TrackLayer::with_templates(api_route))
            // 4. A panic becomes a 500 envelope instead of a dropped connection.
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "An unexpected error occurred").into_response()
            }))
            // 5.–9., 11. The edge steps, in this order (see `edge::layer`): client IP and TLS
            // flag; security headers on every response; the `/metrics` allow-list; edge
            // rejections of `/graphql` in the GraphQL error format (api.md §9.2); CORS with its
            // preflights; rate limits (429 never reaches an upstream); a declared oversized
            // body refused before any byte is read.
            .layer(EdgeLayer::new(edge, state.limiter.clone(), state.config.metrics_allowed.clone()))
            // 10. gzip/br for JSON answers (upstream bodies stay streamed), for requests that
            // ask for it; the others skip the compressing body (see `edge::compress`).
            .layer(CompressIfAskedLayer::new(CompressionLayer::new().compress_when(json_only())));
    // The API skips the router's matching (see `api_first`); both go through the same stack.
    ApiFirst {
        api: stack.clone().service(Forward(state)),
        rest: routes.layer(stack),
    }
}

/// The runtime `main` runs the gateway on. With several workers (TLS keeps one) the calling
/// thread is worker 0, a single-threaded loop like each of nginx's workers; `build` starts the
/// others on their own threads. Otherwise one multi-threaded runtime serves everything.
pub fn main_runtime(workers: usize, tls: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if workers > 1 && !tls {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
}

/// A bound, ready-to-run gateway.
pub struct Application {
    listener: TcpListener,
    /// More `SO_REUSEPORT` listeners on the same address, one per extra worker runtime
    /// (`Config::workers`); kept as std sockets until their own runtime registers them.
    extra: Vec<std::net::TcpListener>,
    state: AppState,
    shutdown: CancellationToken,
    tls: Option<Arc<ReloadingCert>>,
}

impl Service for Application {
    const NAME: &'static str = "gateway";
    type Config = Config;
    type Error = StartError;

    async fn build(config: Config) -> Result<Self, StartError> {
        let addr = config.listen_addr;
        let tls = match &config.tls {
            Some((cert, key)) => Some(ReloadingCert::load(cert, key)?),
            None => None,
        };
        let workers = if tls.is_some() { 1 } else { config.workers };
        let state = AppState::connect(config).await?;
        let bind_err = |source| StartError::Bind { addr, source };
        let (listener, extra) = if workers > 1 {
            let first = reuseport_listener(addr).map_err(bind_err)?;
            // Port 0 resolves on the first bind; the others join that port.
            let actual = first.local_addr().map_err(bind_err)?;
            let mut extra = Vec::with_capacity(workers - 1);
            for _ in 1..workers {
                let l = reuseport_listener(actual).map_err(bind_err)?;
                extra.push(l.into_std().map_err(bind_err)?);
            }
            (first, extra)
        } else {
            (TcpListener::bind(addr).await.map_err(bind_err)?, Vec::new())
        };
        Ok(Self {
            listener,
            extra,
            state,
            shutdown: CancellationToken::new(),
            tls,
        })
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token.
    async fn run_until_stopped(self) -> Result<(), StartError> {
        let Self {
            listener,
            extra,
            state,
            shutdown,
            tls,
        } = self;
        let tasks = CancellationToken::new();
        let config = state.config.clone();
        // Readiness polls (api.md §3.7).
        if !config.upstream.ready_poll.is_zero() {
            spawn_ready_poll(&state, tasks.clone(), config.upstream.ready_poll);
        }
        let docs_task = state.docs.spawn_refresh(
            config.upstreams.clone(),
            state.http.clone(),
            config.docs_refresh,
            tasks.clone(),
        );
        let bridge = config.events_enabled.then(|| {
            ws::bridge::spawn(
                config.amqp_url.clone(),
                config.instance_id.clone(),
                state.ws.hub.clone(),
                state.bridge.clone(),
                tasks.clone(),
            )
        });
        let hub = state.ws.hub.clone();
        let stop = shutdown.clone();
        let stop_workers = CancellationToken::new();
        let workers_stop = stop_workers.clone();
        let signal = async move {
            tokio::select! {
                () = payplane_kit::server::shutdown_signal() => {},
                () = stop.cancelled() => {},
            }
            // WebSockets are long-lived: close them (1001) before the server waits for connections.
            hub.shutdown(Duration::from_secs(5)).await;
            workers_stop.cancel();
        };
        let app = tower::util::MapRequestLayer::new(trim_trailing_slash).layer(router(state));
        let threads = spawn_workers(extra, &app, &stop_workers)?;
        if let Some(cert) = tls {
            let watch = cert.spawn_watch(config.tls_poll, tasks.clone());
            let listener = TlsListener::new(listener, cert.server_config(), tasks.clone())
                .map_err(StartError::Serve)?;
            serve_http(listener, app, Client::tls, signal).await;
            watch.abort();
        } else {
            serve_http(nodelay(listener), app, Client::plain, signal).await;
        }
        let res: std::io::Result<()> = Ok(());
        // The worker runtimes drain their connections after the same signal.
        stop_workers.cancel();
        let joined = tokio::task::spawn_blocking(move || {
            threads.into_iter().try_for_each(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("gateway worker panicked")))
            })
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let res = res.and(joined);
        shutdown.cancel();
        tasks.cancel();
        docs_task.abort();
        if let Some(task) = bridge {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        res.map_err(StartError::Serve)
    }
}

impl Application {
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancelling it stops the gateway gracefully (tests and the dev runner use this).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Polls every upstream's readiness every `every` until `stop`.
fn spawn_ready_poll(state: &AppState, stop: CancellationToken, every: Duration) {
    let (proxy, http) = (state.proxy.clone(), state.http.clone());
    tokio::spawn(async move {
        loop {
            proxy.poll_ready(&http).await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// One thread with its own single-threaded runtime per extra `SO_REUSEPORT` listener, each
/// serving `app` until `stop`.
fn spawn_workers<A>(
    extra: Vec<std::net::TcpListener>,
    app: &A,
    stop: &CancellationToken,
) -> Result<Vec<std::thread::JoinHandle<std::io::Result<()>>>, StartError>
where
    A: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    A::Future: Send,
{
    let mut threads = Vec::with_capacity(extra.len());
    for (i, std_listener) in extra.into_iter().enumerate() {
        let (app, stop) = (app.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("gateway-worker-{}", i + 1))
            .spawn(move || -> std::io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener)?;
                    serve_http(
                        nodelay(listener),
                        app,
                        Client::plain,
                        stop.cancelled_owned(),
                    )
                    .await;
                    Ok(())
                })
            })
            .map_err(StartError::Serve)?;
        threads.push(thread);
    }
    Ok(threads)
}

/// A listener that shares its port with the other workers' (`SO_REUSEPORT`: the kernel
/// spreads new connections over them, so no accept lock and no hand-off between threads).
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A single trailing slash is ignored (api.md §1.1), except under `/api-docs/`, where Swagger
/// UI lives at the slash form and would otherwise redirect forever.
fn trim_trailing_slash<B>(mut req: http::Request<B>) -> http::Request<B> {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') && !path.starts_with("/api-docs") {
        let trimmed = path.trim_end_matches('/');
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// TCP_NODELAY on every accepted socket (the TLS listener sets it itself): without it a body
/// written after its headers waits for the client's delayed ACK, ~40 ms on a kept-alive
/// connection.
fn nodelay(listener: TcpListener) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    })
}

#[cfg(test)]
mod console_routing_tests {
    use super::routes_to_console;

    #[test]
    fn only_non_api_paths_go_to_the_console() {
        for p in [
            "/",
            "/signin",
            "/payments/abc",
            "/assets/app.1.css",
            "/sw.js",
            "/apis",
            "/wsx",
        ] {
            assert!(routes_to_console(p), "{p}");
        }
        for p in [
            "/api",
            "/api/payments",
            "/graphql",
            "/ws",
            "/health",
            "/health/ready",
            "/metrics",
            "/api-docs",
            "/api-docs/openapi.json",
            "/internal/x",
        ] {
            assert!(!routes_to_console(p), "{p}");
        }
    }
}
