//! Hourly clean-up of the admin database (data.md §8) under an advisory lock so one replica
//! runs it: outbox rows published more than 7 days ago, processed events older than 30 days.
//! Audit logs and system config are never deleted.

use std::time::Duration;

use payplane_kit::{service::spawn_housekeeping, store::begin_housekeeping};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::{Ctx, StoreError};

/// Advisory lock key of the admin housekeeping job ("admin-hk").
const LOCK_KEY: i64 = 0x6164_6d69_6e2d_686b;

/// One pass; returns `(outbox rows, processed_events rows)` removed, `None` when another
/// replica holds the lock.
pub async fn run_once(pool: &PgPool) -> Result<Option<(u64, u64)>, StoreError> {
    let Some(mut tx) = begin_housekeeping(pool, LOCK_KEY).await? else {
        return Ok(None);
    };
    let removed = payplane_bus::tasks::delete_delivered(&mut tx).await?;
    tx.commit().await.ctx("commit housekeeping")?;
    Ok(Some(removed))
}

/// Runs [`run_once`] every hour, the first an hour after start, until `shutdown`.
pub fn spawn(pool: PgPool, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let pass = |pool: PgPool| async move { run_once(&pool).await };
    spawn_housekeeping(
        "admin housekeeping",
        Duration::from_secs(3600),
        pool,
        shutdown,
        pass,
    )
}
