//! The auth service's error answers (api.md §1.4, §4) and the mapping of internal failures.

use http::{StatusCode, header::RETRY_AFTER};
use payplane_kit::ApiError;
use serde_json::json;

use crate::{password::PasswordError, tokens::TokenError};

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        match e {
            // Overload, not a fault: the client may retry shortly (api.md §1.4).
            PasswordError::Busy(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Too many sign-ins in progress; try again shortly",
            )
            .with_header(RETRY_AFTER, "1"),
            e => ApiError::internal(&e),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::internal(&e)
    }
}

pub fn email_exists() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "EMAIL_EXISTS",
        "Email is already registered",
    )
}

pub fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", "User not found")
}

pub fn device_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "DEVICE_NOT_FOUND",
        "Device not found",
    )
}

pub fn unauthorized(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

pub fn account_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "ACCOUNT_DISABLED",
        "Account is deactivated",
    )
}

pub fn conflict(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// 429 `ACCOUNT_LOCKED` with `Retry-After` (api.md §4.3).
pub fn account_locked(wait_seconds: i64, locked_until: Option<String>) -> ApiError {
    let wait = wait_seconds.max(1);
    let details = match locked_until {
        Some(until) => json!({ "lockedUntil": until, "waitSeconds": wait }),
        None => json!({ "waitSeconds": wait }),
    };
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "ACCOUNT_LOCKED",
        "Too many failed attempts; try again later",
    )
    .with_details(details)
    .with_header(RETRY_AFTER, &wait.to_string())
}
