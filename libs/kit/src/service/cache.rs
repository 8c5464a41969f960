//! The Redis connection every service opens the same way: bounded waits, so a stopped Redis
//! fails start-up (and each later command) clearly instead of hanging; and the readiness checks
//! of a service with its own database and Redis.

use std::{sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::{PgPool, migrate::Migrator};

use super::ServiceError;
use crate::{
    config::Common,
    health::{Check, Health},
};

/// How long to wait for Redis, and how often to retry a dropped connection.
#[derive(Debug, Clone, Copy)]
pub struct RedisTimeouts {
    pub connect: Duration,
    pub response: Duration,
    pub retries: usize,
}

impl RedisTimeouts {
    /// The services behind the gateway: a slow Redis is waited for a little.
    pub const SERVICE: Self = Self {
        connect: Duration::from_secs(3),
        response: Duration::from_secs(3),
        retries: 2,
    };
    /// The gateway answers every request at the edge, so it gives up sooner and fails open
    /// or closed per its own rules.
    pub const EDGE: Self = Self {
        connect: Duration::from_secs(3),
        response: Duration::from_secs(2),
        retries: 1,
    };
}

/// Opens a managed (reconnecting) connection to `url` (`REDIS_URL`).
pub async fn connect_redis(
    url: &str,
    timeouts: RedisTimeouts,
) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response))
        .set_number_of_retries(timeouts.retries);
    ConnectionManager::new_with_config(client, config).await
}

/// A service's own database (`DATABASE_URL`, a pool of `pool_size`, `migrator` applied) and
/// its Redis (`REDIS_URL`).
pub async fn connect_stores(
    common: &Common,
    pool_size: u32,
    migrator: &Migrator,
) -> Result<(PgPool, ConnectionManager), ServiceError> {
    let db = payplane_db::connect(&common.database_url, pool_size).await?;
    payplane_db::migrate(&db, migrator).await?;
    let redis = connect_redis(&common.redis_url, RedisTimeouts::SERVICE)
        .await
        .map_err(ServiceError::Redis)?;
    Ok((db, redis))
}

/// Redis answers `PING` within 2 s.
pub async fn redis_up(redis: &ConnectionManager) -> bool {
    let mut redis = redis.clone();
    tokio::time::timeout(
        Duration::from_secs(2),
        redis::cmd("PING").query_async::<String>(&mut redis),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// The readiness checks of a service with its own database and Redis, both required: the
/// database answers with every embedded migration applied, and Redis answers `PING`.
pub async fn database_and_cache(
    db: &PgPool,
    migrator: &Migrator,
    redis: &ConnectionManager,
) -> Vec<Check> {
    let (database, cache) = tokio::join!(payplane_db::ready(db, migrator), redis_up(redis));
    vec![
        Check::required("database", database),
        Check::required("cache", cache),
    ]
}

/// The health endpoints of a service with its own database and Redis ([`database_and_cache`])
/// and what `extra` adds after them (an optional `broker` check; `None`: nothing).
pub fn health(
    service: &'static str,
    version: &'static str,
    (db, migrator, redis): (&PgPool, &'static Migrator, &ConnectionManager),
    extra: impl Fn() -> Option<Check> + Send + Sync + 'static,
) -> Health {
    let (db, redis, extra) = (db.clone(), redis.clone(), Arc::new(extra));
    Health::new(service, version, move || {
        let (db, redis, extra) = (db.clone(), redis.clone(), Arc::clone(&extra));
        Box::pin(async move {
            let mut checks = database_and_cache(&db, migrator, &redis).await;
            checks.extend(extra());
            checks
        })
    })
}
