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

/// Text of the comment that marks a role or database as created (owned) by one resource.
pub fn marker(uid: &str) -> String {
    format!("payplane.dev/owner-uid={uid}")
}

/// What the server has of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// `rolsuper`.
    pub superuser: bool,
    /// `rolcanlogin`.
    pub login: bool,
    /// `COMMENT ON ROLE`, if any.
    pub comment: Option<String>,
}

/// What the server has of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The owning role.
    pub owner: String,
    /// `COMMENT ON DATABASE`, if any.
    pub comment: Option<String>,
}

/// The roles and database a `Database` names, as found on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgObserved {
    /// Roles by name (the owner and its login roles), absent when they do not exist.
    pub roles: std::collections::BTreeMap<String, RoleInfo>,
    /// The database, if it exists.
    pub database: Option<DatabaseInfo>,
}

/// Why a `Database` may not touch what it names: they belong to something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgConflict {
    /// A superuser is never managed.
    #[error("role {0} is a superuser; a Database never manages it")]
    Superuser(String),
    /// Marked with another resource's uid.
    #[error("{what} is owned by another resource ({marker})")]
    OwnedByOther {
        /// `role x` or `database y`.
        what: String,
        /// The other owner's marker.
        marker: String,
    },
    /// Exists without a marker and this resource may not adopt it.
    #[error(
        "{0} already exists and was not created by this Database (annotate payplane.dev/adopt=true to take it over)"
    )]
    Unmarked(String),
}

/// Decides whether the resource with `uid` may manage the roles and database of `obs`
/// (pure). Unmarked objects are adopted only when `adopt` holds (the resource's own Secret
/// already names the role, as an operator before ownership markers wrote it, or the user
/// asked with `payplane.dev/adopt`); an unmarked database is also adopted when its owner
/// role is this resource's. A superuser is never managed.
pub fn check_ownership(
    obs: &PgObserved,
    uid: &str,
    owner: &str,
    adopt: bool,
) -> Result<(), PgConflict> {
    let ours = marker(uid);
    let mut owner_ours = false;
    for (name, role) in &obs.roles {
        if role.superuser {
            return Err(PgConflict::Superuser(name.clone()));
        }
        match role.comment.as_deref() {
            Some(c) if c == ours => {
                owner_ours |= name == owner;
            }
            Some(c) if c.starts_with("payplane.dev/owner-uid=") => {
                return Err(PgConflict::OwnedByOther {
                    what: format!("role {name}"),
                    marker: c.to_owned(),
                });
            }
            _ if adopt => owner_ours |= name == owner,
            _ => return Err(PgConflict::Unmarked(format!("role {name}"))),
        }
    }
    if let Some(db) = &obs.database {
        match db.comment.as_deref() {
            Some(c) if c == ours => {}
            Some(c) if c.starts_with("payplane.dev/owner-uid=") => {
                return Err(PgConflict::OwnedByOther {
                    what: "the database".into(),
                    marker: c.to_owned(),
                });
            }
            _ if adopt || (owner_ours && db.owner == owner) => {}
            _ => return Err(PgConflict::Unmarked("the database".into())),
        }
    }
    Ok(())
}

/// A change to one login role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginChange {
    /// Create it (a member of the owner role, acting as it) or enable it, with this password.
    Enable {
        /// Role name (the owner itself or a login role of it).
        name: String,
        /// New password.
        password: String,
    },
    /// Refuse its logins from now on and end its sessions.
    Disable {
        /// Role name.
        name: String,
    },
}

/// The database to manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbPlan {
    /// Database name.
    pub database: String,
    /// Owner role (owns the database; a login of its own unless disabled by a rotation).
    pub owner: String,
    /// Uid of the resource that owns them, written as a comment on each.
    pub uid: String,
    /// Password changes, in order: only on creation, a lost Secret, or a rotation.
    pub logins: Vec<LoginChange>,
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

fn uid_literal(s: &str) -> Result<&str, SqlError> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(s)
    } else {
        Err(SqlError::Unsafe(s.to_owned()))
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
    // A stopped server must surface as an error within a reconcile, not hang it.
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        PgConnection::connect_with(&opts),
    )
    .await
    .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut))
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

fn statement(what: &str) -> impl FnOnce(sqlx::Error) -> SqlError + '_ {
    move |source| SqlError::Statement {
        what: what.to_owned(),
        source,
    }
}

/// Reads the roles `roles` and the database `database` with their ownership comments.
pub async fn observe(
    t: &PgTarget,
    roles: &[String],
    database: &str,
) -> Result<PgObserved, SqlError> {
    let mut conn = connect(t, "postgres").await?;
    let rows: Vec<(String, bool, bool, Option<String>)> = sqlx::query_as(
        "SELECT rolname::text, rolsuper, rolcanlogin, shobj_description(oid, 'pg_authid') \
         FROM pg_roles WHERE rolname = ANY($1)",
    )
    .bind(roles)
    .fetch_all(&mut conn)
    .await
    .map_err(statement("looking up the roles"))?;
    let db: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT pg_get_userbyid(datdba)::text, shobj_description(oid, 'pg_database') \
         FROM pg_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_optional(&mut conn)
    .await
    .map_err(statement("looking up the database"))?;
    let _ = conn.close().await;
    Ok(PgObserved {
        roles: rows
            .into_iter()
            .map(|(name, superuser, login, comment)| {
                (
                    name,
                    RoleInfo {
                        superuser,
                        login,
                        comment,
                    },
                )
            })
            .collect(),
        database: db.map(|(owner, comment)| DatabaseInfo { owner, comment }),
    })
}

async fn role_exists(conn: &mut PgConnection, name: &str) -> Result<bool, SqlError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .map_err(statement("looking up a role"))
}

/// Creates the owner role (NOLOGIN until a login change enables it) and the database owned
/// by it if missing, marks both with the owner's uid, applies the login changes, keeps
/// `CONNECT` from `PUBLIC`, and creates the extensions. Call only after
/// [`check_ownership`] allowed it. Passwords change only through `plan.logins`.
pub async fn ensure_database(t: &PgTarget, plan: &DbPlan) -> Result<(), SqlError> {
    let db = ident(&plan.database)?;
    let owner = ident(&plan.owner)?;
    let mark = marker(uid_literal(&plan.uid)?);
    let mut conn = connect(t, "postgres").await?;
    // Role and its marker in one transaction: a role of ours never exists unmarked.
    let create = if role_exists(&mut conn, owner).await? {
        String::new()
    } else {
        format!("CREATE ROLE \"{owner}\" NOLOGIN; ")
    };
    exec(
        &mut conn,
        "creating and marking the owner role",
        format!("BEGIN; {create}COMMENT ON ROLE \"{owner}\" IS '{mark}'; COMMIT"),
    )
    .await?;
    for change in &plan.logins {
        match change {
            LoginChange::Enable { name, password: pw } => {
                let name = ident(name)?;
                let pw = password(pw)?;
                if name == owner {
                    exec(
                        &mut conn,
                        "enabling the owner's login",
                        format!("ALTER ROLE \"{owner}\" LOGIN PASSWORD '{pw}'"),
                    )
                    .await?;
                    continue;
                }
                let verb = if role_exists(&mut conn, name).await? {
                    format!("ALTER ROLE \"{name}\" LOGIN PASSWORD '{pw}'")
                } else {
                    format!("CREATE ROLE \"{name}\" LOGIN PASSWORD '{pw}' IN ROLE \"{owner}\"")
                };
                // Sessions act as the owner, so what either login creates belongs to the
                // owner and stays usable by the other after a rotation.
                exec(
                    &mut conn,
                    "creating a login role",
                    format!(
                        "BEGIN; {verb}; GRANT \"{owner}\" TO \"{name}\"; \
                         ALTER ROLE \"{name}\" SET role = '{owner}'; \
                         COMMENT ON ROLE \"{name}\" IS '{mark}'; COMMIT"
                    ),
                )
                .await?;
            }
            LoginChange::Disable { name } => {
                let name = ident(name)?;
                exec(
                    &mut conn,
                    "disabling a login",
                    format!(
                        "ALTER ROLE \"{name}\" NOLOGIN PASSWORD NULL; \
                         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'"
                    ),
                )
                .await?;
            }
        }
    }
    let db_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(&mut conn)
            .await
            .map_err(statement("looking up the database"))?;
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
        "marking and granting the database",
        format!(
            "COMMENT ON DATABASE \"{db}\" IS '{mark}'; \
             REVOKE CONNECT, TEMPORARY ON DATABASE \"{db}\" FROM PUBLIC; \
             GRANT ALL PRIVILEGES ON DATABASE \"{db}\" TO \"{owner}\""
        ),
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

/// Drops the database (terminating its connections) and the roles `logins` and the owner,
/// but only those marked with `plan.uid`: what another resource or a person made stays.
pub async fn drop_database(t: &PgTarget, plan: &DbPlan, logins: &[String]) -> Result<(), SqlError> {
    let db = ident(&plan.database)?;
    let owner = ident(&plan.owner)?;
    let mark = marker(uid_literal(&plan.uid)?);
    let mut names: Vec<String> = logins.iter().filter(|l| *l != owner).cloned().collect();
    names.push(owner.to_owned());
    let obs = observe(t, &names, db).await?;
    let mut conn = connect(t, "postgres").await?;
    if obs
        .database
        .as_ref()
        .is_some_and(|d| d.comment.as_deref() == Some(mark.as_str()))
    {
        exec(
            &mut conn,
            "dropping the database",
            format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )
        .await?;
    }
    // Login roles first: they are members of the owner.
    for name in &names {
        if obs
            .roles
            .get(name)
            .is_some_and(|r| r.comment.as_deref() == Some(mark.as_str()))
        {
            let name = ident(name)?;
            exec(
                &mut conn,
                "dropping a role",
                format!("DROP ROLE IF EXISTS \"{name}\""),
            )
            .await?;
        }
    }
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
        assert!(uid_literal("0b1c-2d").is_ok());
        assert!(uid_literal("x'").is_err());
    }

    fn role(comment: Option<&str>) -> RoleInfo {
        RoleInfo {
            superuser: false,
            login: true,
            comment: comment.map(str::to_owned),
        }
    }

    fn observed(roles: &[(&str, RoleInfo)], db: Option<(&str, Option<&str>)>) -> PgObserved {
        PgObserved {
            roles: roles
                .iter()
                .map(|(n, r)| ((*n).to_owned(), r.clone()))
                .collect(),
            database: db.map(|(owner, c)| DatabaseInfo {
                owner: owner.to_owned(),
                comment: c.map(str::to_owned),
            }),
        }
    }

    #[test]
    fn nothing_there_or_all_ours_may_be_managed() {
        let m = marker("u1");
        assert_eq!(
            check_ownership(&observed(&[], None), "u1", "app", false),
            Ok(())
        );
        let obs = observed(&[("app", role(Some(&m)))], Some(("app", Some(&m))));
        assert_eq!(check_ownership(&obs, "u1", "app", false), Ok(()));
    }

    #[test]
    fn another_resources_role_or_database_is_a_conflict() {
        let theirs = marker("u2");
        let obs = observed(&[("app", role(Some(&theirs)))], None);
        assert!(matches!(
            check_ownership(&obs, "u1", "app", true),
            Err(PgConflict::OwnedByOther { .. })
        ));
        // A reused databaseName with a fresh owner role: the database is theirs.
        let obs = observed(&[], Some(("other", Some(&theirs))));
        assert!(matches!(
            check_ownership(&obs, "u1", "app", false),
            Err(PgConflict::OwnedByOther { .. })
        ));
    }

    #[test]
    fn a_superuser_is_never_managed_even_when_adopting() {
        let mut su = role(None);
        su.superuser = true;
        let obs = observed(&[("postgres", su)], None);
        assert_eq!(
            check_ownership(&obs, "u1", "postgres", true),
            Err(PgConflict::Superuser("postgres".into()))
        );
    }

    #[test]
    fn unmarked_objects_are_adopted_only_when_allowed() {
        let obs = observed(&[("app", role(None))], Some(("app", None)));
        assert_eq!(
            check_ownership(&obs, "u1", "app", false),
            Err(PgConflict::Unmarked("role app".into()))
        );
        assert_eq!(check_ownership(&obs, "u1", "app", true), Ok(()));
        // Our own role's database left unmarked by an interrupted creation is ours.
        let m = marker("u1");
        let obs = observed(&[("app", role(Some(&m)))], Some(("app", None)));
        assert_eq!(check_ownership(&obs, "u1", "app", false), Ok(()));
    }
}
