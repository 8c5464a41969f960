//! `GET /api/admin/health` (api.md §6.13) and `GET /api/admin/dashboard` (§6.14).

use secrecy::ExposeSecret;
use std::time::{Duration, Instant};

use axum::extract::State;
use payplane_kit::{ApiError, Data};
use serde_json::{Map, Value, json};

use super::Admin;
use crate::{
    app::AppState,
    probes::{PROBE_TIMEOUT, ProbeError, ProbeResult, timed},
    store::{StoreError, audit, users},
};

/// `healthy` with no unhealthy probe, `degraded` with one or two, `unhealthy` with more.
pub fn overall(unhealthy: usize) -> &'static str {
    match unhealthy {
        0 => "healthy",
        1 | 2 => "degraded",
        _ => "unhealthy",
    }
}

fn status(healthy: bool) -> &'static str {
    if healthy { "healthy" } else { "unhealthy" }
}

pub async fn health(_admin: Admin, State(s): State<AppState>) -> Data<Value> {
    let started = Instant::now();
    let p = &s.probes;
    let own = async {
        let (db, cache) = p.own_readiness().await;
        match (db, cache) {
            (true, true) => Ok(()),
            (false, _) => Err(ProbeError::Failed("database not ready".into())),
            (true, false) => Err(ProbeError::Failed("redis not ready".into())),
        }
    };
    let (database, redis, broker, auth, payments, admin, profile, gateway) = tokio::join!(
        timed(p.database()),
        timed(p.redis()),
        timed(p.broker()),
        timed(p.http_ok(format!("{}/health/ready", p.auth_url))),
        timed(p.http_ok(format!("{}/health/ready", p.payments_url))),
        timed(own),
        timed(p.http_ok(format!("{}/health/ready", p.profile_url))),
        timed(p.http_ok(format!("{}/health/live", p.gateway_url))),
    );
    let results: [(&str, ProbeResult); 8] = [
        ("database", database),
        ("redis", redis),
        ("broker", broker),
        ("authService", auth),
        ("paymentsService", payments),
        ("adminService", admin),
        ("profileService", profile),
        ("gateway", gateway),
    ];
    let mut services = Map::new();
    let mut checks = Map::new();
    for (key, r) in &results {
        services.insert((*key).into(), json!(status(r.healthy)));
        checks.insert(
            (*key).into(),
            json!({"status": status(r.healthy), "responseTimeMs": r.millis, "error": r.error}),
        );
    }
    let unhealthy = results.iter().filter(|(_, r)| !r.healthy).count();
    Data(json!({
        "status": overall(unhealthy),
        "timestamp": payplane_events::time::format(&chrono::Utc::now()),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": p.started.elapsed().as_secs_f64(),
        "responseTime": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "services": services,
        "checks": checks,
    }))
}

/// Payments statistics from `GET /internal/payments/stats` (api.md §8.2); `None` when they
/// cannot be fetched within the probe timeout.
async fn payment_stats(s: &AppState) -> Option<Value> {
    let url = format!("{}/internal/payments/stats", s.probes.payments_url);
    let call = async {
        let res = s
            .probes
            .http()
            .get(&url)
            .header("x-service-name", "admin")
            .header("x-service-token", s.config.service_token.expose_secret())
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            tracing::warn!(
                status = res.status().as_u16(),
                "payments statistics refused"
            );
            return None;
        }
        let body: Value = res.json().await.ok()?;
        body.get("data").filter(|d| d.is_object()).cloned()
    };
    tokio::time::timeout(PROBE_TIMEOUT.min(Duration::from_secs(3)), call)
        .await
        .ok()
        .flatten()
}

pub async fn dashboard(_admin: Admin, State(s): State<AppState>) -> Result<Data<Value>, ApiError> {
    let (counts, entries, payments) = {
        let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
        let counts = users::counts(&mut conn).await?;
        let entries = audit::count_last_24h(&mut conn).await?;
        drop(conn);
        (counts, entries, payment_stats(&s).await)
    };
    let mut warnings = Vec::new();
    if payments.is_none() {
        warnings.push("payments statistics unavailable");
    }
    Ok(Data(json!({
        "generatedAt": payplane_events::time::format(&chrono::Utc::now()),
        "users": {
            "total": counts.total,
            "active": counts.active,
            "inactive": counts.total - counts.active,
            "byRole": {"ADMIN": counts.admin, "CUSTOMER": counts.customer, "VENDOR": counts.vendor},
            "newLast24h": counts.new_last_24h,
        },
        "payments": payments,
        "audit": {"entriesLast24h": entries},
        "warnings": warnings,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_status_rule() {
        assert_eq!(overall(0), "healthy");
        assert_eq!(overall(1), "degraded");
        assert_eq!(overall(2), "degraded");
        assert_eq!(overall(3), "unhealthy");
        assert_eq!(overall(8), "unhealthy");
    }
}
