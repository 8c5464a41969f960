//! The SQL of the auth database, one module per aggregate. Every function runs on the
//! connection it is given, so callers compose them inside one transaction.

pub mod sessions;
pub mod throttle;
pub mod users;

/// The auth database, as its store errors name it.
pub enum AuthDb {}

impl payplane_kit::store::Store for AuthDb {
    const NAME: &'static str = "auth";
}

/// A failed statement, named by what it was doing.
pub type StoreError = payplane_kit::store::StoreError<AuthDb>;
pub(crate) use payplane_kit::store::Ctx;

/// True when the error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}
