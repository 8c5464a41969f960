//! The profile service's error answers (api.md §1.4, §7) and the mapping of internal failures:
//! a database that cannot be reached is 503 `SERVICE_UNAVAILABLE` (a required dependency is
//! down), anything else unexpected an opaque 500.

use http::StatusCode;
use payplane_kit::ApiError;

use crate::store::StoreError;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e.source {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::error!(error = %e, cause = %e.source, "profile database unavailable");
                ApiError::unavailable("The profile database is unavailable")
            }
            _ => ApiError::internal(&e),
        }
    }
}

/// The user's profile cannot exist: the account was deleted (its tokens normally stop working
/// at the same moment, so only a request racing the deletion sees this).
pub fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", "User not found")
}
