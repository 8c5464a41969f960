//! `/health`, `/health/live` and `/health/ready` (api.md §8.3). Readiness runs the service's
//! own dependency probes on each call.

use std::{future::Future, pin::Pin, sync::Arc, time::Instant};

use axum::{Router, extract::State, response::IntoResponse, routing::get};
use serde_json::{Map, Value, json};

use crate::{ApiError, Data};

/// The outcome of one dependency probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub up: bool,
    /// Whether readiness depends on it (the broker is reported but not required).
    pub required: bool,
}

impl Check {
    /// A dependency readiness waits for.
    pub fn required(name: &'static str, up: bool) -> Self {
        Self {
            name,
            up,
            required: true,
        }
    }

    /// A dependency reported but not waited for.
    pub fn optional(name: &'static str, up: bool) -> Self {
        Self {
            name,
            up,
            required: false,
        }
    }
}

pub type ReadyFuture = Pin<Box<dyn Future<Output = Vec<Check>> + Send>>;

/// What a service tells the health endpoints about itself.
#[derive(Clone)]
pub struct Health {
    pub service: &'static str,
    pub version: &'static str,
    started: Instant,
    probe: Arc<dyn Fn() -> ReadyFuture + Send + Sync>,
}

impl Health {
    pub fn new(
        service: &'static str,
        version: &'static str,
        probe: impl Fn() -> ReadyFuture + Send + Sync + 'static,
    ) -> Self {
        Self {
            service,
            version,
            started: Instant::now(),
            probe: Arc::new(probe),
        }
    }

    pub async fn checks(&self) -> Vec<Check> {
        (self.probe)().await
    }
}

fn now() -> String {
    payplane_events::time::format(&chrono::Utc::now())
}

async fn health(State(h): State<Health>) -> impl IntoResponse {
    Data(json!({
        "status": "healthy",
        "service": h.service,
        "version": h.version,
        "uptime": h.started.elapsed().as_secs_f64(),
        "timestamp": now(),
    }))
}

async fn live() -> impl IntoResponse {
    Data(json!({ "alive": true, "timestamp": now() }))
}

async fn ready(State(h): State<Health>) -> Result<Data<Value>, ApiError> {
    let checks = h.checks().await;
    let ready = checks.iter().all(|c| c.up || !c.required);
    let map: Map<String, Value> = checks
        .iter()
        .map(|c| {
            (
                c.name.to_owned(),
                Value::from(if c.up { "up" } else { "down" }),
            )
        })
        .collect();
    if ready {
        Ok(Data(
            json!({ "ready": true, "timestamp": now(), "checks": map }),
        ))
    } else {
        Err(ApiError::unavailable("Service is not ready").with_details(json!({ "checks": map })))
    }
}

/// The three health routes plus `/metrics`.
pub fn router<S: Clone + Send + Sync + 'static>(health: Health) -> Router<S> {
    Router::new()
        .route("/health", get(self::health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(crate::metrics::render))
        .with_state(health)
}
