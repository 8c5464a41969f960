//! The service's OpenAPI 3.1 document (api.md §8.3: public routes only), served raw at
//! `GET /openapi.json` and merged by the gateway. The schema types below exist only to describe
//! the wire shapes; the handlers build their JSON from the domain types. No I/O.

use axum::{Json, response::IntoResponse};
use payplane_kit::openapi::{BearerAuth, FieldError, UniqueOperationIds};
use utoipa::{OpenApi, ToSchema};

/// Notification flags.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct Notifications {
    email: bool,
    push: bool,
    sms: bool,
}

/// The effective preferences: stored values merged over the defaults (always complete).
#[derive(ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct Preferences {
    /// `light`, `dark` or `system` (default `system`).
    #[schema(example = "dark")]
    theme: String,
    /// `^[a-z]{2}(-[A-Z]{2})?$` after normalisation (default `en`).
    #[schema(example = "en-US")]
    language: String,
    /// One of the 40 supported currencies (default `USD`).
    #[schema(example = "USD")]
    currency: String,
    /// An IANA time-zone name or `UTC` (default `UTC`).
    #[schema(example = "Europe/Berlin")]
    timezone: String,
    notifications: Notifications,
}

/// A user's profile.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "documentation only")]
pub struct Profile {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    user_id: String,
    #[schema(example = "+1 555 010 0000")]
    phone: Option<String>,
    address: Option<String>,
    bio: Option<String>,
    avatar_url: Option<String>,
    preferences: Preferences,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    created_at: String,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    updated_at: String,
}

/// `PUT /api/profile`: every field optional; `""` or `null` clears it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "documentation only")]
pub struct ProfileUpdate {
    /// 10..20 characters of `^\+?[0-9\s().\-/]+$`.
    phone: Option<String>,
    /// Alias of `phone`, kept for client compatibility; both with different values → 400.
    phone_number: Option<String>,
    /// 1..500 characters.
    address: Option<String>,
    /// 0..1000 characters.
    bio: Option<String>,
    /// An absolute http(s) URL (≤ 2048) or `data:image/(png|jpeg|gif|webp);base64,…` (≤ 2 MiB).
    avatar_url: Option<String>,
}

/// `PUT /api/profile/preferences`: any subset; `null` resets a key (or flag) to its default.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct PreferencesUpdate {
    theme: Option<String>,
    language: Option<String>,
    currency: Option<String>,
    timezone: Option<String>,
    /// Merged flag by flag.
    notifications: Option<NotificationsUpdate>,
}

/// Flags to change; absent flags are kept.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct NotificationsUpdate {
    email: Option<bool>,
    push: Option<bool>,
    sms: Option<bool>,
}

/// `{success: true, data: Profile}`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct ProfileEnvelope {
    success: bool,
    data: Profile,
}

/// `{success: true, data: Preferences}`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct PreferencesEnvelope {
    success: bool,
    data: Preferences,
}

/// The error body of api.md §1.3.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "documentation only")]
pub struct ErrorBody {
    #[schema(example = "VALIDATION_ERROR")]
    code: String,
    message: String,
    /// For `VALIDATION_ERROR`: every violation.
    details: Option<Vec<FieldError>>,
    request_id: String,
}

/// `{success: false, error: …}`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct ErrorEnvelope {
    success: bool,
    error: ErrorBody,
}

#[utoipa::path(get, path = "/api/profile", tag = "profile", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's profile (created if missing)", body = ProfileEnvelope),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorEnvelope),
        (status = 503, description = "A required dependency is down", body = ErrorEnvelope),
    ))]
#[expect(dead_code, reason = "documentation only")]
fn get_profile() {}

#[utoipa::path(put, path = "/api/profile", tag = "profile", security(("bearerAuth" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The updated profile; emits profile.profile.updated if anything changed", body = ProfileEnvelope),
        (status = 400, description = "VALIDATION_ERROR or INVALID_JSON", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorEnvelope),
        (status = 413, description = "Body over 3 MiB", body = ErrorEnvelope),
        (status = 415, description = "Body is not application/json", body = ErrorEnvelope),
    ))]
#[expect(dead_code, reason = "documentation only")]
fn put_profile() {}

#[utoipa::path(get, path = "/api/profile/preferences", tag = "profile", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The effective preferences", body = PreferencesEnvelope),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorEnvelope),
    ))]
#[expect(dead_code, reason = "documentation only")]
fn get_preferences() {}

#[utoipa::path(put, path = "/api/profile/preferences", tag = "profile", security(("bearerAuth" = [])),
    request_body = PreferencesUpdate,
    responses(
        (status = 200, description = "The full effective preferences after the merge", body = PreferencesEnvelope),
        (status = 400, description = "VALIDATION_ERROR or INVALID_JSON", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ErrorEnvelope),
        (status = 415, description = "Body is not application/json", body = ErrorEnvelope),
    ))]
#[expect(dead_code, reason = "documentation only")]
fn put_preferences() {}

#[derive(OpenApi)]
#[openapi(
    info(title = "payplane profile service", description = "User profiles and preferences (api.md §7)."),
    paths(get_profile, put_profile, get_preferences, put_preferences),
    modifiers(&BearerAuth, &UniqueOperationIds),
    tags((name = "profile", description = "The caller's profile and preferences")),
)]
struct ProfileApi;

/// The service's OpenAPI document (also what the gateway merges).
pub fn openapi() -> utoipa::openapi::OpenApi {
    ProfileApi::openapi()
}

/// `GET /openapi.json` (raw, not enveloped: api.md §1.3).
pub async fn serve() -> impl IntoResponse {
    Json(openapi())
}
