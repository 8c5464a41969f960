//! The error of a service's SQL layer: a failed statement, named by what it was doing and by
//! the store (service database) it ran on. One generic type, so each service only names its
//! store and how its failures answer over HTTP.

use std::marker::PhantomData;

use sqlx::{PgPool, Postgres, Transaction};

use crate::ApiError;

/// A service's database, as its store errors name it.
pub trait Store: 'static {
    /// The name in `"<name> store: <op>"` (`admin`, `payments`, …).
    const NAME: &'static str;

    /// The answer to a request whose statement failed: by default the shared mapping of
    /// internal failures (503 with `Retry-After` when the database cannot be reached, else an
    /// opaque 500).
    fn api_error(e: &StoreError<Self>) -> ApiError
    where
        Self: Sized,
    {
        ApiError::internal(e)
    }
}

/// A failed statement, named by what it was doing.
#[derive(thiserror::Error)]
#[error("{} store: {op}", S::NAME)]
pub struct StoreError<S: Store> {
    pub op: &'static str,
    #[source]
    pub source: sqlx::Error,
    store: PhantomData<fn() -> S>,
}

impl<S: Store> StoreError<S> {
    pub fn new(op: &'static str, source: sqlx::Error) -> Self {
        Self {
            op,
            source,
            store: PhantomData,
        }
    }

    /// For `map_err` where the error wanted does not name the store (a handler's
    /// `ApiError`): `tx.commit().await.map_err(StoreError::at("commit"))?`.
    pub fn at(op: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::new(op, source)
    }
}

// By hand: a derive would require `S: Debug` of the marker.
impl<S: Store> std::fmt::Debug for StoreError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreError")
            .field("store", &S::NAME)
            .field("op", &self.op)
            .field("source", &self.source)
            .finish()
    }
}

impl<S: Store> From<StoreError<S>> for ApiError {
    fn from(e: StoreError<S>) -> Self {
        S::api_error(&e)
    }
}

/// Names the failure of a statement: `query.await.ctx("insert user")?`.
pub trait Ctx<T> {
    fn ctx<S: Store>(self, op: &'static str) -> Result<T, StoreError<S>>;
}

impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn ctx<S: Store>(self, op: &'static str) -> Result<T, StoreError<S>> {
        self.map_err(|source| StoreError::new(op, source))
    }
}

/// Begins a housekeeping pass under the advisory lock `key` ([`payplane_db::begin_locked`]),
/// so one replica at a time runs it; `None` when another replica holds the lock.
pub async fn begin_housekeeping<S: Store>(
    pool: &PgPool,
    key: i64,
) -> Result<Option<Transaction<'static, Postgres>>, StoreError<S>> {
    payplane_db::begin_locked(pool, key)
        .await
        .ctx("begin housekeeping under its lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Billing {}

    impl Store for Billing {
        const NAME: &'static str = "billing";
    }

    #[test]
    fn names_the_store_and_the_statement() {
        let e: Result<(), StoreError<Billing>> = Err(sqlx::Error::RowNotFound).ctx("load invoice");
        let e = e.unwrap_err();
        assert_eq!(e.to_string(), "billing store: load invoice");
        assert!(format!("{e:?}").contains("billing"));
        assert_eq!(ApiError::from(e).status.as_u16(), 500);
    }
}
