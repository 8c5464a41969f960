//! Pure builder of a `Database`'s connection Secret and of the SQL plan. No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use crate::crd::Database;
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

/// `postgres://user:password@host:port/dbname[?sslmode=…]`.
pub fn uri(db: &Database, conn: &Connection) -> String {
    let mut uri = format!(
        "postgres://{}:{}@{}:{}/{}",
        db.spec.owner, conn.password, conn.host, conn.port, db.spec.database_name
    );
    if let Some(mode) = &conn.ssl_mode {
        uri.push_str("?sslmode=");
        uri.push_str(mode);
    }
    uri
}

/// The connection Secret of `db`.
pub fn build(db: &Database, conn: &Connection) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(db)?;
    let data = BTreeMap::from([
        ("host".to_owned(), conn.host.clone()),
        ("port".to_owned(), conn.port.to_string()),
        ("dbname".to_owned(), db.spec.database_name.clone()),
        ("user".to_owned(), db.spec.owner.clone()),
        ("password".to_owned(), conn.password.clone()),
        ("uri".to_owned(), uri(db, conn)),
    ]);
    Ok(vec![owner.child::<Secret>(
        &secret_name(owner.name()),
        owner.name(),
        secret_body("Opaque", &data),
    )])
}
