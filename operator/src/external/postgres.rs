//! Creates and drops a database and its owner role over SQL, idempotently (I/O: PostgreSQL).
//!
//! Identifiers are validated against `^[a-z_][a-z0-9_]*$` (the CRD's pattern) and the
//! password is alphanumeric, so quoting them into DDL (which takes no bind parameters) is safe.

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Failures talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Connecting as the superuser failed.
    #[error("connecting to {host}:{port}: {source}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Cause.
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Statement {
        /// What was being done.
        what: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// An identifier or password has characters that cannot be quoted safely.
    #[error("{0:?} is not a safe identifier or password")]
    Unsafe(String),
}

/// A server reached as its superuser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Superuser name.
    pub user: String,
    /// Superuser password (empty for trust authentication).
    pub password: String,
    /// libpq sslmode.
    pub ssl_mode: Option<String>,
}

/// The database to manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbPlan {
    /// Database name.
    pub database: String,
    /// Owner role.
    pub owner: String,
    /// Owner's password.
    pub password: String,
    /// Extensions to create.
    pub extensions: Vec<String>,
}

fn ident(s: &str) -> Result<&str, SqlError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(s)
    } else {
        Err(SqlError::Unsafe(s.to_owned()))
    }
}

fn password(s: &str) -> Result<&str, SqlError> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(s)
    } else {
        Err(SqlError::Unsafe("<password>".into()))
    }
}

async fn connect(t: &PgTarget, database: &str) -> Result<PgConnection, SqlError> {
    let ssl = match t.ssl_mode.as_deref() {
        Some("disable") => PgSslMode::Disable,
        Some("require") => PgSslMode::Require,
        Some("verify-ca") => PgSslMode::VerifyCa,
        Some("verify-full") => PgSslMode::VerifyFull,
        _ => PgSslMode::Prefer,
    };
    let mut opts = PgConnectOptions::new()
        .host(&t.host)
        .port(t.port)
        .username(&t.user)
        .database(database)
        .ssl_mode(ssl);
    if !t.password.is_empty() {
        opts = opts.password(&t.password);
    }
    PgConnection::connect_with(&opts)
        .await
        .map_err(|source| SqlError::Connect {
            host: t.host.clone(),
            port: t.port,
            source,
        })
}

async fn exec(conn: &mut PgConnection, what: &str, sql: String) -> Result<(), SqlError> {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|source| SqlError::Statement {
            what: what.to_owned(),
            source,
        })
}

/// Creates the role (LOGIN, with `plan.password`) and the database owned by it if missing,
/// then the extensions. Running it again changes nothing but the password.
pub async fn ensure_database(t: &PgTarget, plan: &DbPlan) -> Result<(), SqlError> {
    let db = ident(&plan.database)?;
    let owner = ident(&plan.owner)?;
    let pw = password(&plan.password)?;
    let mut conn = connect(t, "postgres").await?;
    let role_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(owner)
            .fetch_one(&mut conn)
            .await
            .map_err(|source| SqlError::Statement {
                what: "looking up the role".into(),
                source,
            })?;
    let verb = if role_exists { "ALTER" } else { "CREATE" };
    exec(
        &mut conn,
        "creating the role",
        format!("{verb} ROLE \"{owner}\" WITH LOGIN PASSWORD '{pw}'"),
    )
    .await?;
    let db_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(&mut conn)
            .await
            .map_err(|source| SqlError::Statement {
                what: "looking up the database".into(),
                source,
            })?;
    if !db_exists {
        exec(
            &mut conn,
            "creating the database",
            format!("CREATE DATABASE \"{db}\" OWNER \"{owner}\""),
        )
        .await?;
    }
    exec(
        &mut conn,
        "granting the database",
        format!("GRANT ALL PRIVILEGES ON DATABASE \"{db}\" TO \"{owner}\""),
    )
    .await?;
    let _ = conn.close().await;
    if !plan.extensions.is_empty() {
        let mut conn = connect(t, db).await?;
        for ext in &plan.extensions {
            let ext = ident(ext)?;
            exec(
                &mut conn,
                "creating an extension",
                format!("CREATE EXTENSION IF NOT EXISTS \"{ext}\""),
            )
            .await?;
        }
        let _ = conn.close().await;
    }
    Ok(())
}

/// Drops the database (terminating its connections) and the role, if they exist.
pub async fn drop_database(t: &PgTarget, plan: &DbPlan) -> Result<(), SqlError> {
    let db = ident(&plan.database)?;
    let owner = ident(&plan.owner)?;
    let mut conn = connect(t, "postgres").await?;
    exec(
        &mut conn,
        "dropping the database",
        format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
    )
    .await?;
    exec(
        &mut conn,
        "dropping the role",
        format!("DROP ROLE IF EXISTS \"{owner}\""),
    )
    .await?;
    let _ = conn.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_and_passwords_are_quoted() {
        assert!(ident("payments_db").is_ok());
        assert!(ident("x\"; DROP").is_err());
        assert!(ident("").is_err());
        assert!(password("abc123").is_ok());
        assert!(password("a'b").is_err());
    }
}
