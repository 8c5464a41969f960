//! The response envelope and the one error type every service answers with (api.md §1.3–§1.4).
//! Internal failures are logged once with their cause chain and answered as an opaque 500.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

/// `{ "success": true, "data": … }` with 200.
#[derive(Debug)]
pub struct Data<T>(pub T);

/// `{ "success": true, "data": … }` with 201.
#[derive(Debug)]
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        Json(json!({ "success": true, "data": self.0 })).into_response()
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (
            StatusCode::CREATED,
            Json(json!({ "success": true, "data": self.0 })),
        )
            .into_response()
    }
}

/// One field violation inside a `VALIDATION_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answer: status, stable code, message, optional details and extra headers.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Extra response headers (kept small: most errors carry none).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Validation failed",
        )
        .with_details(serde_json::to_value(errors).unwrap_or(Value::Null))
    }

    pub fn field(field: &str, message: &str) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn invalid_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            "Request body is not valid JSON",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("Request body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn route_not_found(method: &http::Method, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Route {method} {path} not found"),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            message,
        )
    }

    /// An unexpected failure: logs the whole cause chain here, once, and hides it from the client.
    /// A dependency that cannot be reached (the database restarting or stopped, a connection
    /// refused or reset) is not a bug: it answers 503 `SERVICE_UNAVAILABLE` with `Retry-After`.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        let chain = error_chain(err);
        if dependency_unreachable(err) {
            tracing::warn!(error = %chain, "dependency unavailable");
            return Self::unavailable("A dependency is unavailable; retry shortly")
                .with_header(http::header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECS);
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "An unexpected error occurred",
        )
    }
}

/// `Retry-After` of a 503 for an unreachable dependency: PostgreSQL restarts in a few seconds.
const UNAVAILABLE_RETRY_AFTER_SECS: &str = "2";

/// An error and its causes as one line, `outer: inner: root`.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// Whether any error of the cause chain means "cannot reach the dependency (PostgreSQL, a
/// socket) right now" rather than "the request or the code is wrong". API handlers answer 503
/// for it; event consumers wait for the database instead of spending an event's retries.
pub fn dependency_unreachable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if is_unreachable(e) {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether this one error (not its causes) means the dependency cannot be reached.
fn is_unreachable(err: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = err.downcast_ref::<sqlx::Error>() {
        return match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE class 08 (connection exception) and 57P01..57P03 (admin / crash shutdown,
            // cannot connect now: a server that is stopping or starting).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
            _ => false,
        };
    }
    if let Some(e) = err.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind as K;
        return matches!(
            e.kind(),
            K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::NotConnected
                | K::UnexpectedEof
                | K::TimedOut
        );
    }
    false
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = crate::request_id::current().unwrap_or_default();
        let mut error =
            json!({ "code": self.code, "message": self.message, "requestId": request_id });
        if let (Some(details), Some(obj)) = (self.details, error.as_object_mut()) {
            obj.insert("details".into(), details);
        }
        let mut res = (
            self.status,
            Json(json!({ "success": false, "error": error })),
        )
            .into_response();
        for (name, value) in self.headers {
            res.headers_mut().insert(name, value);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("select payment")]
    struct Store(#[source] sqlx::Error);

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
        ] {
            let err = ApiError::internal(&Store(e));
            assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(err.code, "SERVICE_UNAVAILABLE");
            assert_eq!(err.headers[0].0, http::header::RETRY_AFTER);
        }
    }

    #[test]
    fn other_failures_stay_opaque_500s() {
        let err = ApiError::internal(&Store(sqlx::Error::RowNotFound));
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.headers.is_empty());
    }
}
