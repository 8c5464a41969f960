//! The profile service's error answers (api.md §1.4, §7); a failed statement answers as
//! [`crate::store::ProfileDb`] says.

use http::StatusCode;
use payplane_kit::ApiError;

/// The user's profile cannot exist: the account was deleted (its tokens normally stop working
/// at the same moment, so only a request racing the deletion sees this).
pub fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", "User not found")
}
