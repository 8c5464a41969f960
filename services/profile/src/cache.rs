//! The Redis read cache of profiles (data.md §6.2) with versioned keys: a reader takes the
//! counter `profile:v:<userId>` first, then reads the database, then stores under the counter it
//! took; writers bump the counter after their commit. A value read before a write can therefore
//! never be served after it. Redis is never the source of truth: every cache failure is logged
//! and counted, and the caller falls back to the database.

use std::time::Duration;

use redis::{AsyncCommands, aio::ConnectionManager};
use serde_json::Value;
use uuid::Uuid;

/// How long a cached profile lives.
pub const TTL_SECS: u64 = 300;
/// A cache call slower than this is treated as a failure: the database answers instead.
const OP_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Cache {
    redis: ConnectionManager,
    prefix: String,
}

fn count(result: &'static str) {
    metrics::counter!("cache_requests_total", "cache" => "profile", "result" => result)
        .increment(1);
}

async fn bounded<T>(
    op: &'static str,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Option<T> {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::warn!(op, error = %e, "profile cache unavailable");
            None
        }
        Err(_) => {
            tracing::warn!(op, "profile cache timed out");
            None
        }
    }
}

impl Cache {
    pub fn new(redis: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
        }
    }

    pub fn version_key(&self, user_id: Uuid) -> String {
        format!("{}profile:v:{user_id}", self.prefix)
    }

    pub fn value_key(&self, user_id: Uuid, version: i64) -> String {
        format!("{}profile:{user_id}:{version}", self.prefix)
    }

    /// The user's current counter (0 when never bumped); `None` when Redis cannot answer, in
    /// which case nothing may be stored either.
    pub async fn version(&self, user_id: Uuid) -> Option<i64> {
        let mut redis = self.redis.clone();
        let key = self.version_key(user_id);
        let v = bounded(
            "version",
            async move { redis.get::<_, Option<i64>>(key).await },
        )
        .await;
        if v.is_none() {
            count("error");
        }
        v.map(Option::unwrap_or_default)
    }

    /// The cached profile under `version`, if any.
    pub async fn get(&self, user_id: Uuid, version: i64) -> Option<Value> {
        let mut redis = self.redis.clone();
        let key = self.value_key(user_id, version);
        match bounded(
            "get",
            async move { redis.get::<_, Option<String>>(key).await },
        )
        .await
        {
            None => {
                count("error");
                None
            }
            Some(None) => {
                count("miss");
                None
            }
            Some(Some(text)) => {
                let value = serde_json::from_str(&text).ok();
                count(if value.is_some() { "hit" } else { "error" });
                value
            }
        }
    }

    /// Stores a profile read from the database under the counter taken before that read.
    pub async fn put(&self, user_id: Uuid, version: i64, value: &Value) {
        let mut redis = self.redis.clone();
        let key = self.value_key(user_id, version);
        let text = value.to_string();
        if bounded("put", async move {
            redis.set_ex::<_, _, ()>(key, text, TTL_SECS).await
        })
        .await
        .is_none()
        {
            count("error");
        }
    }

    /// Invalidates every cached value of the user: called after the change committed. A failed
    /// bump is retried once; the TTL bounds the damage of a second failure.
    pub async fn bump(&self, user_id: Uuid) {
        for attempt in 0..2 {
            let mut redis = self.redis.clone();
            let key = self.version_key(user_id);
            if bounded("bump", async move { redis.incr::<_, _, i64>(key, 1).await })
                .await
                .is_some()
            {
                return;
            }
            if attempt == 1 {
                tracing::error!(%user_id, "profile cache version bump failed twice");
            }
        }
    }
}
