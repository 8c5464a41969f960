//! The payments service's error answers (api.md §1.4, §5) and the mapping of internal failures.

use http::{StatusCode, header::RETRY_AFTER};
use payplane_kit::ApiError;

use crate::directory::DirectoryError;

pub fn payment_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "PAYMENT_NOT_FOUND",
        "Payment not found",
    )
}

pub fn recipient_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RECIPIENT_NOT_FOUND",
        "Recipient not found",
    )
}

pub fn invalid_recipient(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_RECIPIENT", message)
}

pub fn invalid_status() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "INVALID_STATUS",
        "Only pending payments can be edited",
    )
}

pub fn invalid_transition(from: &str, to: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "INVALID_STATUS_TRANSITION",
        format!("Cannot change status from {from} to {to}"),
    )
}

pub fn idempotency_in_progress() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "IDEMPOTENCY_IN_PROGRESS",
        "A request with this idempotency key is being processed",
    )
    .with_header(RETRY_AFTER, "1")
}

pub fn idempotency_key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
        "Idempotency key was already used with a different request",
    )
}

pub fn invalid_signature() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "INVALID_SIGNATURE",
        "Webhook signature is missing, invalid or stale",
    )
}

/// A failed directory lookup: 503 when auth cannot be asked, 500 otherwise.
pub fn directory(e: DirectoryError) -> ApiError {
    match e {
        DirectoryError::AuthUnavailable(_) | DirectoryError::AuthStatus(_) => {
            tracing::warn!(error = %e, "auth lookup failed");
            ApiError::unavailable("Auth service is unavailable")
        }
        other => ApiError::internal(&other),
    }
}
