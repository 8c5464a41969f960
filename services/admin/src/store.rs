//! The SQL of the admin database, one module per table. Every function runs on the connection
//! it is given, so callers compose them inside one transaction.

pub mod audit;
pub mod config;
pub mod users;

/// A failed statement, named by what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("admin store: {op}")]
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

impl From<StoreError> for payplane_kit::ApiError {
    fn from(e: StoreError) -> Self {
        payplane_kit::ApiError::internal(&e)
    }
}

impl From<StoreError> for payplane_bus::consumer::HandlerError {
    fn from(e: StoreError) -> Self {
        payplane_bus::consumer::HandlerError::from_error(&e)
    }
}
