//! Building and running the console: state, the router wrapped in the shared stack plus the
//! console's own layers (sessions and CSRF, security headers, compression), serving.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::Request,
    middleware::{self, Next},
    response::Response,
};
use http::{HeaderValue, header};
use payplane_kit::{
    health::{Check, Health},
    http::{StackOptions, stack},
    server::Bound,
    service::{ServiceError, ServiceState},
};
use secrecy::ExposeSecret;
use tower_http::compression::CompressionLayer;

use crate::{
    api::Gateway,
    config::Config,
    session::{Refresher, Sealer},
};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub gateway: Gateway,
    pub sealer: Arc<Sealer>,
    pub refresher: Arc<Refresher>,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        Self {
            gateway: Gateway::new(&config.gateway_url),
            sealer: Arc::new(Sealer::new(&config.session_key.expose_secret().0)),
            refresher: Arc::new(Refresher::default()),
            config: Arc::new(config),
        }
    }
}

/// The only origin pages may load from or talk to; no inline script or style at all.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'; worker-src 'self'; manifest-src 'self'";

async fn security_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages carry personal data: never stored by the browser or a shared cache.
    if !path.starts_with("/assets/") && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The console's routes wrapped in the shared stack.
pub fn router(state: AppState) -> Router {
    let gateway = state.gateway.clone();
    let health = Health::new("console", env!("CARGO_PKG_VERSION"), move || {
        let gateway = gateway.clone();
        Box::pin(async move {
            // Reported, not required: the console still serves its sign-in and offline pages
            // while the gateway restarts, and the gateway's readiness must not wait on ours.
            let live = reqwest::Client::new()
                .get(format!("{}/health/live", gateway.base()))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            vec![Check::optional("gateway", live)]
        })
    });
    let opts = StackOptions::trusting(state.config.trusted_proxies.clone());
    let routes = crate::routes::routes()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::session::middleware,
        ))
        .with_state(state);
    stack(routes, health, &opts)
        .layer(middleware::from_fn(security_headers))
        .layer(CompressionLayer::new())
}

/// A bound, ready-to-run console (`local_addr`, `state`, `shutdown_token`).
pub type Application = Bound<AppState>;

impl ServiceState for AppState {
    const NAME: &'static str = "console";
    type Config = Config;
    type Error = ServiceError;

    async fn connect(config: Config) -> Result<Self, ServiceError> {
        Ok(Self::new(config))
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token.
    async fn serve(bound: Application) -> Result<(), ServiceError> {
        let (listener, state, shutdown) = bound.into_parts();
        payplane_kit::server::serve_until_stopped(listener, router(state), &shutdown)
            .await
            .map_err(ServiceError::Serve)
    }
}
