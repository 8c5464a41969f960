//! Dependency probes for readiness and `GET /api/admin/health` (api.md §6.13, §8.3): the
//! admin database, Redis, the broker (a passive declare of `events` on a kept connection),
//! and the other services' health endpoints. Each probe is bounded by 3 s. Does network I/O.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use lapin::{Connection, ExchangeKind, options::ExchangeDeclareOptions, types::FieldTable};
use payplane_events::topology::EVENTS_EXCHANGE;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::config::Config;

/// Time limit of each probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a probe failed, as reported in `checks.<key>.error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("timeout")]
    Timeout,
    #[error("{0}")]
    Failed(String),
}

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub healthy: bool,
    pub millis: u64,
    pub error: Option<String>,
}

/// Runs `f` with the probe timeout and measures it.
pub async fn timed<F>(f: F) -> ProbeResult
where
    F: Future<Output = Result<(), ProbeError>>,
{
    let started = Instant::now();
    let outcome = match tokio::time::timeout(PROBE_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout),
    };
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    ProbeResult {
        healthy: outcome.is_ok(),
        millis,
        error: outcome.err().map(|e| e.to_string()),
    }
}

/// Everything the probes need; cheap to clone.
#[derive(Clone)]
pub struct Probes {
    db: PgPool,
    redis: ConnectionManager,
    http: reqwest::Client,
    amqp_url: String,
    broker: Arc<Mutex<Option<Connection>>>,
    pub auth_url: String,
    pub payments_url: String,
    pub profile_url: String,
    pub gateway_url: String,
    pub started: Instant,
}

impl Probes {
    pub fn new(config: &Config, db: PgPool, redis: ConnectionManager) -> Self {
        Self {
            db,
            redis,
            http: reqwest::Client::builder()
                .timeout(PROBE_TIMEOUT)
                .connect_timeout(PROBE_TIMEOUT)
                .build()
                .unwrap_or_default(),
            amqp_url: config.amqp_url.clone(),
            broker: Arc::default(),
            auth_url: config.auth_url.trim_end_matches('/').to_owned(),
            payments_url: config.payments_url.trim_end_matches('/').to_owned(),
            profile_url: config.profile_url.trim_end_matches('/').to_owned(),
            gateway_url: config.gateway_url.trim_end_matches('/').to_owned(),
            started: Instant::now(),
        }
    }

    /// The HTTP client used for probes and for the payments statistics call.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn database(&self) -> Result<(), ProbeError> {
        sqlx::query("SELECT 1")
            .execute(&self.db)
            .await
            .map(|_| ())
            .map_err(|e| ProbeError::Failed(e.to_string()))
    }

    pub async fn redis(&self) -> Result<(), ProbeError> {
        let mut redis = self.redis.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .map(|_| ())
            .map_err(|e| ProbeError::Failed(e.to_string()))
    }

    /// Database and Redis, each bounded (the service's own readiness).
    pub async fn own_readiness(&self) -> (bool, bool) {
        let (db, cache) = tokio::join!(timed(self.database()), timed(self.redis()));
        (db.healthy, cache.healthy)
    }

    /// The kept broker connection is open (reopened if not) and `events` exists.
    pub async fn broker(&self) -> Result<(), ProbeError> {
        let fail = |e: &dyn std::fmt::Display| ProbeError::Failed(e.to_string());
        let attempt = async {
            let mut guard = self.broker.lock().await;
            if !guard.as_ref().is_some_and(|c| c.status().connected()) {
                let conn = payplane_bus::conn::connect(&self.amqp_url, "admin-health")
                    .await
                    .map_err(|e| fail(&e))?;
                *guard = Some(conn);
            }
            let Some(conn) = guard.as_ref() else {
                return Err(ProbeError::Failed("no broker connection".into()));
            };
            let channel = conn.create_channel().await.map_err(|e| fail(&e))?;
            let declared = channel
                .exchange_declare(
                    EVENTS_EXCHANGE.into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await;
            let _ = channel.close(200, "probe done".into()).await;
            declared.map_err(|e| fail(&e))
        };
        match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Timeout),
        }
    }

    /// `GET <url>` answers 200.
    pub async fn http_ok(&self, url: String) -> Result<(), ProbeError> {
        let res = self.http.get(&url).send().await.map_err(|e| {
            if e.is_timeout() {
                ProbeError::Timeout
            } else {
                ProbeError::Failed(format!("unreachable: {}", e.without_url()))
            }
        })?;
        if res.status() == reqwest::StatusCode::OK {
            Ok(())
        } else {
            Err(ProbeError::Failed(format!(
                "answered {}",
                res.status().as_u16()
            )))
        }
    }
}
