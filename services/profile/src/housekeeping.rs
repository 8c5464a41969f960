//! Hourly clean-up of the profile database (data.md §8), run by one replica at a time under an
//! advisory lock: outbox rows published more than 7 days ago and processed_events older than
//! 30 days.

use std::time::Duration;

use payplane_kit::{service::spawn_housekeeping, store::begin_housekeeping};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::{Ctx, StoreError};

/// Advisory lock key of the profile housekeeping job ("prof-hk").
const LOCK_KEY: i64 = 0x0070_726f_662d_686b;

/// Rows removed by one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub outbox: u64,
    pub processed_events: u64,
}

/// One pass; `None` when another replica holds the lock.
pub async fn run_once(pool: &PgPool) -> Result<Option<Removed>, StoreError> {
    let Some(mut tx) = begin_housekeeping(pool, LOCK_KEY).await? else {
        return Ok(None);
    };
    let (outbox, processed_events) = payplane_bus::tasks::delete_delivered(&mut tx).await?;
    tx.commit().await.ctx("commit housekeeping")?;
    Ok(Some(Removed {
        outbox,
        processed_events,
    }))
}

/// Runs [`run_once`] every hour, the first right away, until `shutdown`.
pub fn spawn(pool: PgPool, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let pass = |pool: PgPool| async move { run_once(&pool).await };
    spawn_housekeeping("housekeeping", Duration::ZERO, pool, shutdown, pass)
}
