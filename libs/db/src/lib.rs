//! PostgreSQL plumbing for every service: connecting a pool, creating a database that is
//! missing (dev runner), applying embedded migrations under sqlx's advisory lock, readiness, a
//! transaction that one replica at a time holds, and (feature `testing`) a brand-new database
//! per test. All functions do I/O.

pub mod json;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool, Postgres, Transaction,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL {0:?} is not a valid PostgreSQL URL")]
    BadUrl(String, #[source] sqlx::Error),
    #[error("connecting to database {database}")]
    Connect {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("creating database {database}")]
    Create {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("applying migrations to {database}")]
    Migrate {
        database: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

fn options(url: &str) -> Result<PgConnectOptions, DbError> {
    url.parse::<PgConnectOptions>()
        .map_err(|e| DbError::BadUrl(url.to_owned(), e))
}

/// How long a request waits for a pooled connection before giving up.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// A pool on `url`, checked with one connection before returning.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let opts = options(url)?.log_statements(tracing::log::LevelFilter::Trace);
    let database = opts.get_database().unwrap_or("postgres").to_owned();
    PgPoolOptions::new()
        .max_connections(max_connections)
        // Short, so that while PostgreSQL is down clients learn it (503) in about a second
        // instead of waiting out a long pool timeout.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts)
        .await
        .map_err(|source| DbError::Connect { database, source })
}

/// Creates the database named in `url` when it does not exist (connecting to the server's
/// `postgres` database to do so). Returns whether it was created.
pub async fn ensure_database(url: &str) -> Result<bool, DbError> {
    let opts = options(url)?;
    let database = opts.get_database().unwrap_or("postgres").to_owned();
    let admin = opts.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .map_err(|source| DbError::Connect {
            database: "postgres".into(),
            source,
        })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut conn)
            .await
            .map_err(|source| DbError::Create {
                database: database.clone(),
                source,
            })?;
    if exists {
        return Ok(false);
    }
    let sql = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
    {
        Ok(_) => Ok(true),
        // Another process created it between the check and the create.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(false),
        Err(source) => Err(DbError::Create { database, source }),
    }
}

/// Applies the service's embedded migrations (sqlx takes an advisory lock, so concurrent
/// replicas do not race).
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> Result<(), DbError> {
    let database = pool
        .connect_options()
        .get_database()
        .unwrap_or("postgres")
        .to_owned();
    migrator
        .run(pool)
        .await
        .map_err(|source| DbError::Migrate { database, source })
}

/// `<service> migrate`: connects with one connection, applies the migrations, disconnects.
pub async fn migrate_only(url: &str, migrator: &Migrator) -> Result<(), DbError> {
    let pool = connect(url, 1).await?;
    let applied = migrate(&pool, migrator).await;
    pool.close().await;
    applied
}

/// Ready = the database answers and every embedded migration is applied.
pub async fn ready(pool: &PgPool, migrator: &Migrator) -> bool {
    let expected = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .count();
    let applied: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    matches!(applied, Ok(n) if usize::try_from(n).is_ok_and(|n| n >= expected))
}

/// Begins a transaction holding the advisory lock `key` until it ends, so one replica at a time
/// runs a periodic job; `None` when another session holds it.
pub async fn begin_locked(
    pool: &PgPool,
    key: i64,
) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
    Ok(locked.then_some(tx))
}
