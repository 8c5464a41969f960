//! The SQL of the auth database, one module per aggregate. Every function runs on the
//! connection it is given, so callers compose them inside one transaction.

pub mod sessions;
pub mod throttle;
pub mod users;

/// A failed statement, named by what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("auth store: {op}")]
pub struct StoreError {
    pub op: &'static str,
    #[source]
    pub source: sqlx::Error,
}

pub(crate) trait Ctx<T> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError { op, source })
    }
}

/// True when the error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}
