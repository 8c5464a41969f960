//! Writes the Redis revocation markers (api.md §2.4, data.md §6.1) after commits, and re-writes
//! recent ones every 60 s so a Redis restart or a failed write heals within a minute.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use payplane_authn::revocation::{revoked_sid_key, token_version_key};
use redis::{AsyncCommands, aio::ConnectionManager};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{sessions, users};

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

    /// One reconciliation pass.
    pub async fn reconcile(&self, pool: &PgPool) -> Result<(), crate::store::StoreError> {
        let now = Utc::now();
        let window = TimeDelta::from_std(self.ttl).unwrap_or(TimeDelta::minutes(16));
        let since = now - window;
        let mut conn = pool
            .acquire()
            .await
            .map_err(|source| crate::store::StoreError {
                op: "acquire",
                source,
            })?;
        let remaining = |at: chrono::DateTime<Utc>| {
            u64::try_from((at + window - now).num_seconds()).unwrap_or(1)
        };
        for (sid, at) in sessions::revoked_since(&mut conn, since).await? {
            self.set(revoked_sid_key(sid), 1, remaining(at)).await;
        }
        for (uid, version, at) in users::changed_since(&mut conn, since).await? {
            self.set(token_version_key(uid), i64::from(version), remaining(at))
                .await;
        }
        Ok(())
    }

    pub fn spawn_reconciler(
        self,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = self.reconcile(&pool).await {
                            tracing::warn!(error = %e, "marker reconciliation failed");
                        }
                    }
                }
            }
        })
    }
}
