//! Pure builder of a `Database`'s connection Secret and of the SQL plan. No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use kube::Resource;

use crate::crd::Database;
use crate::external::{DbPlan, LoginChange};
use crate::meta::{Child, MetaError, Owner, secret_body};

/// Where and how the database is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Host name clients use.
    pub host: String,
    /// Port clients use.
    pub port: i32,
    /// Owner role's password.
    pub password: String,
    /// libpq `sslmode`, when the cluster asks for one.
    pub ssl_mode: Option<String>,
}

/// Name of the connection Secret.
pub fn secret_name(db: &str) -> String {
    format!("{db}-credentials")
}

/// The second login role of the blue/green pair `<owner>`, `<owner>_b` (cut to fit
/// PostgreSQL's 63-byte names).
pub fn second_login(owner: &str) -> String {
    let cut: String = owner.chars().take(61).collect();
    format!("{cut}_b")
}

/// `postgres://user:password@host:port/dbname[?sslmode=…]` for the owner role.
pub fn uri(db: &Database, conn: &Connection) -> String {
    uri_for(db, conn, &db.spec.owner)
}

/// `postgres://login:password@host:port/dbname[?sslmode=…]`.
pub fn uri_for(db: &Database, conn: &Connection, login: &str) -> String {
    let mut uri = format!(
        "postgres://{}:{}@{}:{}/{}",
        login, conn.password, conn.host, conn.port, db.spec.database_name
    );
    if let Some(mode) = &conn.ssl_mode {
        uri.push_str("?sslmode=");
        uri.push_str(mode);
    }
    uri
}

/// The SQL plan of `db`: its database, owner role, mark and extensions, and `logins` to change.
pub fn plan(db: &Database, logins: Vec<LoginChange>) -> DbPlan {
    DbPlan {
        database: db.spec.database_name.clone(),
        owner: db.spec.owner.clone(),
        uid: db.meta().uid.clone().unwrap_or_default(),
        logins,
        extensions: db.spec.extensions.iter().map(|e| e.0.clone()).collect(),
    }
}

/// The connection Secret of `db` for its owner role.
pub fn build(db: &Database, conn: &Connection) -> Result<Vec<Child>, MetaError> {
    build_for(db, conn, &db.spec.owner)
}

/// The connection Secret of `db` for the login role `login` (after a rotation, `<owner>_b`).
pub fn build_for(db: &Database, conn: &Connection, login: &str) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(db)?;
    let data = BTreeMap::from([
        ("host".to_owned(), conn.host.clone()),
        ("port".to_owned(), conn.port.to_string()),
        ("dbname".to_owned(), db.spec.database_name.clone()),
        ("user".to_owned(), login.to_owned()),
        ("password".to_owned(), conn.password.clone()),
        ("uri".to_owned(), uri_for(db, conn, login)),
    ]);
    Ok(vec![owner.child::<Secret>(
        &secret_name(owner.name()),
        owner.name(),
        secret_body("Opaque", &data),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_login_fits_postgres_names() {
        assert_eq!(second_login("payments"), "payments_b");
        assert_eq!(second_login(&"a".repeat(63)).len(), 63);
    }
}
