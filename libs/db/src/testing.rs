//! A brand-new database per test (created from the server's admin URL, migrated, and dropped
//! when the handle is dropped), so integration tests run in parallel on one real PostgreSQL.

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
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a helper thread with
        // its own runtime does the DROP and is joined so the database is gone when drop returns.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        });
        let _ = handle.join();
    }
}
