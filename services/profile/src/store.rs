//! The SQL of the profile database. Every function runs on the connection it is given, so
//! callers compose them inside one transaction.

pub mod profiles;

/// The profile database, as its store errors name it.
pub enum ProfileDb {}

impl payplane_kit::store::Store for ProfileDb {
    const NAME: &'static str = "profile";

    /// A database that cannot be reached is 503 naming it (a required dependency is down).
    fn api_error(e: &StoreError) -> payplane_kit::ApiError {
        match &e.source {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::error!(error = %e, cause = %e.source, "profile database unavailable");
                payplane_kit::ApiError::unavailable("The profile database is unavailable")
            }
            _ => payplane_kit::ApiError::internal(e),
        }
    }
}

/// A failed statement, named by what it was doing.
pub type StoreError = payplane_kit::store::StoreError<ProfileDb>;
pub(crate) use payplane_kit::store::Ctx;
