//! The versioned Redis read cache of data.md §6.2. A reader takes the version counters first,
//! then reads the database, then stores under the versions it took; writers bump the counters
//! after commit. So a value read before a write can never be served after it. Redis trouble
//! is counted and logged, never returned: reads fall back to the database.

use std::time::Duration;

use redis::{AsyncCommands, aio::ConnectionManager};
use serde_json::Value;
use uuid::Uuid;

/// Which cached view (the `cache` label of `cache_requests_total`).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Detail,
    List,
    Report,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Detail => "payment_detail",
            Kind::List => "payment_list",
            Kind::Report => "payment_report",
        }
    }
}

fn count(kind: Kind, result: &'static str) {
    metrics::counter!("cache_requests_total", "cache" => kind.label(), "result" => result)
        .increment(1);
}

/// A version counter key.
#[derive(Debug, Clone)]
pub enum Scope {
    Payment(Uuid),
    User(Uuid),
    All,
}

#[derive(Clone)]
pub struct Cache {
    redis: ConnectionManager,
    prefix: String,
}

/// A key with the versions it was built from; `None` when Redis could not be asked.
#[derive(Debug, Clone)]
pub struct VersionedKey(pub Option<String>);

impl Cache {
    pub fn new(redis: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
        }
    }

    fn counter(&self, scope: &Scope) -> String {
        match scope {
            Scope::Payment(id) => format!("{}:v:payment:{id}", self.prefix),
            Scope::User(id) => format!("{}:v:user:{id}", self.prefix),
            Scope::All => format!("{}:v:all", self.prefix),
        }
    }

    /// The directory counter is part of every key: a user's name change shows in every
    /// payment that names them.
    fn dir_counter(&self) -> String {
        format!("{}:v:dir", self.prefix)
    }

    /// Reads the counters and returns `<prefix>:<name>:<v>.<dir v>:<suffix>`.
    pub async fn key(&self, kind: Kind, scope: &Scope, name: &str, suffix: &str) -> VersionedKey {
        let mut redis = self.redis.clone();
        let keys = [self.counter(scope), self.dir_counter()];
        let res: Result<Vec<Option<i64>>, _> =
            tokio::time::timeout(Duration::from_millis(500), redis.mget(&keys[..]))
                .await
                .unwrap_or_else(|_| Err(redis::RedisError::from(std::io::Error::other("timeout"))));
        match res {
            Ok(v) => {
                let a = v.first().copied().flatten().unwrap_or(0);
                let b = v.get(1).copied().flatten().unwrap_or(0);
                VersionedKey(Some(format!("{}:{name}:{a}.{b}:{suffix}", self.prefix)))
            }
            Err(e) => {
                count(kind, "error");
                tracing::warn!(error = %e, "cache version read failed");
                VersionedKey(None)
            }
        }
    }

    pub async fn get(&self, kind: Kind, key: &VersionedKey) -> Option<Value> {
        let key = key.0.as_deref()?;
        let mut redis = self.redis.clone();
        let res: Result<Option<String>, _> =
            tokio::time::timeout(Duration::from_millis(500), redis.get(key))
                .await
                .unwrap_or_else(|_| Err(redis::RedisError::from(std::io::Error::other("timeout"))));
        match res {
            Ok(Some(text)) => {
                if let Ok(v) = serde_json::from_str(&text) {
                    count(kind, "hit");
                    return Some(v);
                }
                count(kind, "miss");
                None
            }
            Ok(None) => {
                count(kind, "miss");
                None
            }
            Err(e) => {
                count(kind, "error");
                tracing::warn!(error = %e, "cache read failed");
                None
            }
        }
    }

    pub async fn put(&self, key: &VersionedKey, value: &Value, ttl_secs: u64) {
        let Some(key) = key.0.as_deref() else { return };
        let mut redis = self.redis.clone();
        let text = value.to_string();
        let res: Result<(), _> = tokio::time::timeout(
            Duration::from_millis(500),
            redis.set_ex(key, text, ttl_secs),
        )
        .await
        .unwrap_or_else(|_| Err(redis::RedisError::from(std::io::Error::other("timeout"))));
        if let Err(e) = res {
            tracing::warn!(error = %e, "cache write failed");
        }
    }

    /// Bumps the counters after a commit; retried once, then logged (the TTLs bound the damage).
    pub async fn bump(&self, scopes: &[Scope]) {
        let keys: Vec<String> = scopes.iter().map(|s| self.counter(s)).collect();
        self.incr(&keys).await;
    }

    /// After a directory change.
    pub async fn bump_directory(&self) {
        self.incr(&[self.dir_counter()]).await;
    }

    async fn incr(&self, keys: &[String]) {
        for attempt in 0..2 {
            let mut redis = self.redis.clone();
            let mut pipe = redis::pipe();
            for k in keys {
                pipe.incr(k, 1).ignore();
            }
            let res: Result<(), _> =
                tokio::time::timeout(Duration::from_millis(500), pipe.query_async(&mut redis))
                    .await
                    .unwrap_or_else(|_| {
                        Err(redis::RedisError::from(std::io::Error::other("timeout")))
                    });
            match res {
                Ok(()) => return,
                Err(e) if attempt == 1 => {
                    tracing::error!(error = %e, "cache version bump failed");
                }
                Err(_) => {}
            }
        }
    }

    /// The scopes a change to this payment touches.
    pub fn payment_scopes(id: Uuid, sender: Uuid, recipient: Uuid) -> Vec<Scope> {
        vec![
            Scope::Payment(id),
            Scope::User(sender),
            Scope::User(recipient),
            Scope::All,
        ]
    }
}
