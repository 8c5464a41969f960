//! A brand-new database per test (created from the server's admin URL, migrated, and dropped
//! when the handle is dropped), so integration tests run in parallel on one real PostgreSQL.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool, migrate::Migrator};

use crate::DbError;

/// Where tests find PostgreSQL: `TEST_DATABASE_URL` (a superuser URL, any database) or the
/// local trust-auth default.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(admin: &str, name: &str) -> String {
    let base = admin.split('?').next().unwrap_or(admin);
    let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
    format!("{root}/{name}")
}

/// A throwaway database. Dropping it drops the database (terminating leftover connections).
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: String,
}

impl TestDatabase {
    /// Creates `t_<uuid>` and applies `migrator`.
    pub async fn create(migrator: &Migrator) -> Result<Self, DbError> {
        let admin = admin_url();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(&admin, &name);
        crate::ensure_database(&url).await?;
        let pool = crate::connect(&url, 10).await?;
        crate::migrate(&pool, migrator).await?;
        Ok(Self {
            name,
            url,
            pool,
            admin,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        drop_databases_blocking(self.admin.clone(), vec![self.name.clone()], Duration::ZERO);
    }
}

/// Drops the databases `names` (terminating leftover connections) from the server of
/// `admin_url`, after waiting `settle` (processes just killed may still hold connections), and
/// returns when they are gone. For `Drop` impls: these run inside a test's runtime, which
/// cannot be blocked on, so a helper thread with its own runtime does the DROPs and is joined.
/// Failures are ignored: a drop cannot report them, and a leftover database harms no other run.
pub fn drop_databases_blocking(admin_url: String, names: Vec<String>, settle: Duration) {
    let handle = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            tokio::time::sleep(settle).await;
            if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                for name in names {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            }
        });
    });
    let _ = handle.join();
}
