//! Hourly clean-up of the profile database (data.md §8), run by one replica at a time under an
//! advisory lock: outbox rows published more than 7 days ago and processed_events older than
//! 30 days.

use std::time::Duration;

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
    let mut tx = pool.begin().await.ctx("begin housekeeping")?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *tx)
        .await
        .ctx("housekeeping lock")?;
    if !locked {
        return Ok(None);
    }
    let outbox = payplane_bus::outbox::delete_published_older_than(&mut tx, 7)
        .await
        .ctx("delete published outbox rows")?;
    let processed_events = payplane_bus::consumer::delete_processed_older_than(&mut tx, 30)
        .await
        .ctx("delete old processed events")?;
    tx.commit().await.ctx("commit housekeeping")?;
    Ok(Some(Removed {
        outbox,
        processed_events,
    }))
}

pub fn spawn(pool: PgPool, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => match run_once(&pool).await {
                    Ok(Some(removed)) => tracing::info!(?removed, "housekeeping pass"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
                },
            }
        }
    })
}
