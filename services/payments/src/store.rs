//! The SQL of the payments database, one module per aggregate. Every function runs on the
//! connection it is given, so callers compose them inside one transaction.

pub mod idempotency;
pub mod payments;
pub mod users;
pub mod webhook_events;

/// A failed statement, named by what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("payments store: {op}")]
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
