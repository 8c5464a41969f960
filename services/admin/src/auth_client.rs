//! Calls to the auth service's internal user API (api.md §8.1) with the admin service's
//! credentials and the acting admin. Auth's error answers are passed through with their
//! status, code and details (api.md §6.2); auth unreachable → 503. Does network I/O.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::StatusCode;
use payplane_kit::{ApiError, context::RequestContext};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::store::users::UserState;

/// The codes auth may answer on the internal API; anything else is treated as a failure.
const PASSED_THROUGH: [&str; 6] = [
    "VALIDATION_ERROR",
    "INVALID_JSON",
    "USER_NOT_FOUND",
    "EMAIL_EXISTS",
    "LAST_ADMIN",
    "SELF_MODIFICATION_FORBIDDEN",
];

#[derive(Debug, thiserror::Error)]
pub enum AuthClientError {
    #[error("auth service unreachable at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("auth service answered {status} with an unexpected body")]
    Unexpected { status: u16 },
    #[error("auth service refused the admin service's credentials ({status})")]
    Credentials { status: u16 },
}

impl From<AuthClientError> for ApiError {
    fn from(e: AuthClientError) -> Self {
        tracing::error!(error = %e, "auth call failed");
        ApiError::unavailable("The auth service is unavailable")
    }
}

/// The auth internal API client.
#[derive(Debug, Clone)]
pub struct AuthClient {
    base: String,
    token: SecretString,
    http: reqwest::Client,
}

/// What an internal call produced: auth's user, or auth's error answer to pass through.
pub type AuthResult<T> = Result<T, ApiError>;

fn parse_time(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Reads an InternalUser object.
fn internal_user(v: &Value) -> Option<UserState> {
    Some(UserState {
        id: v.get("id")?.as_str()?.parse().ok()?,
        email: v.get("email")?.as_str()?.to_owned(),
        name: v.get("name")?.as_str()?.to_owned(),
        role: v.get("role")?.as_str()?.to_owned(),
        is_active: v.get("isActive")?.as_bool()?,
        email_verified: v.get("emailVerified")?.as_bool()?,
        created_at: parse_time(v, "createdAt")?,
        updated_at: parse_time(v, "updatedAt")?,
    })
}

/// Rebuilds auth's error answer; `code` must be one of the known codes.
fn passed_through(status: StatusCode, body: &Value) -> Option<ApiError> {
    let err = body.get("error")?;
    let code = err.get("code")?.as_str()?;
    let code = PASSED_THROUGH.iter().find(|c| **c == code)?;
    let message = err.get("message").and_then(Value::as_str).unwrap_or(code);
    let mut out = ApiError::new(status, code, message);
    if let Some(details) = err.get("details") {
        out = out.with_details(details.clone());
    }
    Some(out)
}

/// The user in the `data` of auth's answer with `status`.
fn user_answer((status, body): (StatusCode, Value)) -> AuthResult<UserState> {
    body.get("data").and_then(internal_user).ok_or_else(|| {
        AuthClientError::Unexpected {
            status: status.as_u16(),
        }
        .into()
    })
}

/// What a change to a user touches, and so which internal endpoint of auth takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Name and/or email.
    Profile,
    Role,
    /// Active or not (with a reason).
    Status,
}

impl AuthClient {
    pub fn new(base: &str, token: &SecretString) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        ctx: &RequestContext,
        actor: Uuid,
        body: Option<&Value>,
    ) -> AuthResult<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .header("x-service-name", "admin")
            .header("x-service-token", self.token.expose_secret())
            .header("x-actor-id", actor.to_string())
            .header("x-request-id", &ctx.request_id);
        if let Some(tp) = &ctx.trace.traceparent {
            req = req.header("traceparent", tp);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .map_err(|source| AuthClientError::Unreachable { url, source })?;
        let status = res.status();
        let body: Value = if status == StatusCode::NO_CONTENT {
            Value::Null
        } else {
            res.json().await.unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok((status, body));
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(AuthClientError::Credentials {
                status: status.as_u16(),
            }
            .into());
        }
        Err(passed_through(status, &body).unwrap_or_else(|| {
            AuthClientError::Unexpected {
                status: status.as_u16(),
            }
            .into()
        }))
    }

    pub async fn get(&self, ctx: &RequestContext, actor: Uuid, id: Uuid) -> AuthResult<UserState> {
        let path = format!("/internal/users/{id}");
        user_answer(self.call(Method::GET, &path, ctx, actor, None).await?)
    }

    pub async fn create(
        &self,
        ctx: &RequestContext,
        actor: Uuid,
        body: &Value,
    ) -> AuthResult<UserState> {
        user_answer(
            self.call(Method::POST, "/internal/users", ctx, actor, Some(body))
                .await?,
        )
    }

    /// Applies `body` to user `id` as auth takes `change`; the user after it.
    pub async fn change(
        &self,
        ctx: &RequestContext,
        actor: Uuid,
        (id, change): (Uuid, Change),
        body: &Value,
    ) -> AuthResult<UserState> {
        let (method, path) = match change {
            Change::Profile => (Method::PATCH, format!("/internal/users/{id}")),
            Change::Role => (Method::PUT, format!("/internal/users/{id}/role")),
            Change::Status => (Method::PATCH, format!("/internal/users/{id}/status")),
        };
        user_answer(self.call(method, &path, ctx, actor, Some(body)).await?)
    }

    pub async fn delete(&self, ctx: &RequestContext, actor: Uuid, id: Uuid) -> AuthResult<()> {
        self.call(
            Method::DELETE,
            &format!("/internal/users/{id}"),
            ctx,
            actor,
            None,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passes_known_codes_through_with_details() {
        let body = json!({"success": false, "error": {"code": "LAST_ADMIN", "message": "m",
            "details": [{"field": "x", "message": "y"}]}});
        let e = passed_through(StatusCode::CONFLICT, &body).unwrap();
        assert_eq!((e.status, e.code), (StatusCode::CONFLICT, "LAST_ADMIN"));
        assert_eq!(e.details.unwrap()[0]["field"], "x");
        let odd = json!({"error": {"code": "SOMETHING_ELSE"}});
        assert!(passed_through(StatusCode::CONFLICT, &odd).is_none());
    }
}
