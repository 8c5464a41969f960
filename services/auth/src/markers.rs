//! Writes the Redis revocation markers (api.md §2.4, data.md §6.1) after commits, and rebuilds
//! them all from the `revocations` table (written by triggers in the same transactions as the
//! changes): at start, every 60 s (a failed write heals), and within a second of Redis losing
//! its data — detected by the missing ready key, whose absence also makes every verifier
//! refuse tokens until the rebuild is done.

use std::time::Duration;

use payplane_authn::revocation::{MARKERS_READY_KEY, revoked_sid_key, token_version_key};
use redis::{AsyncCommands, aio::ConnectionManager};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::sessions;

#[derive(Clone)]
pub struct Markers {
    redis: ConnectionManager,
    /// Access-token lifetime plus one minute.
    ttl: Duration,
}

impl Markers {
    pub fn new(redis: ConnectionManager, access_ttl: Duration) -> Self {
        Self {
            redis,
            ttl: access_ttl + Duration::from_secs(60),
        }
    }

    async fn set(&self, key: String, value: i64, ttl_secs: u64) {
        let mut conn = self.redis.clone();
        let res: Result<(), _> = conn.set_ex(&key, value, ttl_secs.max(1)).await;
        if let Err(e) = res {
            // The reconciler re-writes it within a minute.
            tracing::warn!(key, error = %e, "writing revocation marker failed");
        }
    }

    pub async fn sessions_revoked(&self, ended: &[sessions::Revoked]) {
        for s in ended {
            self.set(revoked_sid_key(s.id), 1, self.ttl.as_secs()).await;
        }
    }

    pub async fn token_version(&self, user_id: Uuid, version: i32) {
        self.set(
            token_version_key(user_id),
            i64::from(version),
            self.ttl.as_secs(),
        )
        .await;
    }

    /// One reconciliation pass: every revocation still inside a token's lifetime written to
    /// Redis (one pipeline), older rows deleted, then the ready key set.
    pub async fn reconcile(&self, pool: &PgPool) -> Result<(), ReconcileError> {
        let window = i64::try_from(self.ttl.as_secs()).unwrap_or(16 * 60);
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT key, value, \
               GREATEST(1, $1 - EXTRACT(EPOCH FROM now() - revoked_at)::bigint) AS ttl \
             FROM revocations WHERE revoked_at > now() - make_interval(secs => $1)",
        )
        .bind(window)
        .fetch_all(pool)
        .await
        .map_err(ReconcileError::Read)?;
        let mut pipe = redis::pipe();
        for (key, value, ttl) in &rows {
            pipe.set_ex(key, value, u64::try_from(*ttl).unwrap_or(1))
                .ignore();
        }
        pipe.set(MARKERS_READY_KEY, 1).ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(ReconcileError::Write)?;
        sqlx::query(
            "DELETE FROM revocations WHERE revoked_at < now() - make_interval(secs => $1) - interval '1 hour'",
        )
        .bind(window)
        .execute(pool)
        .await
        .map_err(ReconcileError::Read)?;
        tracing::debug!(markers = rows.len(), "revocation markers rebuilt");
        Ok(())
    }

    /// Whether Redis still holds the ready key (`false` after it lost its data).
    async fn ready(&self) -> Result<bool, redis::RedisError> {
        let mut conn = self.redis.clone();
        conn.exists(MARKERS_READY_KEY).await
    }

    pub fn spawn_reconciler(
        self,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut full = tokio::time::interval(FULL_PASS_EVERY);
            let mut probe = tokio::time::interval(READY_PROBE_EVERY);
            loop {
                let due = tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = full.tick() => true,
                    // Not ready (Redis restarted) or unreachable: rebuild now.
                    _ = probe.tick() => !matches!(self.ready().await, Ok(true)),
                };
                if due && let Err(e) = self.reconcile(&pool).await {
                    tracing::warn!(error = %e, "marker reconciliation failed");
                }
            }
        })
    }
}

/// A full rewrite also heals a marker write that failed after its commit.
const FULL_PASS_EVERY: Duration = Duration::from_secs(60);
/// How soon a Redis that lost its data is rebuilt (verifiers refuse tokens meanwhile).
const READY_PROBE_EVERY: Duration = Duration::from_millis(500);

/// A reconciliation pass failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reading revocations from the auth database")]
    Read(#[source] sqlx::Error),
    #[error("writing revocation markers to Redis")]
    Write(#[source] redis::RedisError),
}
