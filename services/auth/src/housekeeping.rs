//! Hourly clean-up of the auth database (data.md §8), run by one replica at a time under an
//! advisory lock: ended sessions 30 days after they ended, devices idle for 90 days, idle
//! throttle rows, and outbox rows published more than 7 days ago.

use std::time::Duration;

use payplane_kit::{service::spawn_housekeeping, store::begin_housekeeping};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::{Ctx, StoreError};

/// Advisory lock key of the auth housekeeping job ("auth-hk").
/// The advisory lock that lets one replica at a time run a pass (public for tests that must
/// keep the service's own pass away while they stage rows).
pub const LOCK_KEY: i64 = 0x0061_7574_682d_686b;

/// Rows removed by one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub sessions: u64,
    pub devices: u64,
    pub throttle: u64,
    pub outbox: u64,
}

/// One pass; `None` when another replica holds the lock.
pub async fn run_once(pool: &PgPool) -> Result<Option<Removed>, StoreError> {
    let Some(mut tx) = begin_housekeeping(pool, LOCK_KEY).await? else {
        return Ok(None);
    };
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE COALESCE(revoked_at, expires_at) < now() - interval '30 days'",
    )
    .execute(&mut *tx)
    .await
    .ctx("delete old sessions")?
    .rows_affected();
    let devices = sqlx::query(
        "DELETE FROM devices d WHERE d.last_active_at < now() - interval '90 days' \
         AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.device_ref = d.id AND s.last_used_at > now() - interval '90 days')",
    )
    .execute(&mut *tx)
    .await
    .ctx("delete idle devices")?
    .rows_affected();
    let throttle = sqlx::query(
        "DELETE FROM login_throttle WHERE COALESCE(last_failed_at, '-infinity') < now() - interval '24 hours' \
         AND (locked_until IS NULL OR locked_until < now())",
    )
    .execute(&mut *tx)
    .await
    .ctx("delete idle throttle rows")?
    .rows_affected();
    let outbox = sqlx::query("DELETE FROM outbox WHERE published_at < now() - interval '7 days'")
        .execute(&mut *tx)
        .await
        .ctx("delete published outbox rows")?
        .rows_affected();
    tx.commit().await.ctx("commit housekeeping")?;
    Ok(Some(Removed {
        sessions,
        devices,
        throttle,
        outbox,
    }))
}

/// Runs [`run_once`] every hour, the first right away, until `shutdown`.
pub fn spawn(pool: PgPool, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let pass = |pool: PgPool| async move { run_once(&pool).await };
    spawn_housekeeping("housekeeping", Duration::ZERO, pool, shutdown, pass)
}
