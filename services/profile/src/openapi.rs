//! The service's OpenAPI 3.1 document (api.md §8.3: public routes only), served raw at
//! `GET /openapi.json` and merged by the gateway. The schema types below exist only to describe
//! the wire shapes; the handlers build their JSON from the domain types. No I/O.

use payplane_kit::openapi::{
    BearerAuth, FieldError, FieldRule, FieldRules, Rule, StandardResponses, UniqueOperationIds,
    text,
};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::domain::{
    edit::{
        ADDRESS, AVATAR_DATA_PATTERN, AVATAR_URL_PATTERN, BIO, MAX_DATA_URL, MAX_URL, PHONE_MAX,
        PHONE_MIN, PHONE_PATTERN,
    },
    preferences::{CURRENCIES, LANGUAGE_PATTERN, THEMES, timezones},
};

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

/// A string that clears the field: empty or whitespace only (api.md §7.3); `null` does too.
fn blank() -> serde_json::Value {
    json!({"type": "string", "pattern": r"^\s*$"})
}

/// The request rules the handlers enforce, from the constants they validate with.
pub fn field_rules() -> FieldRules {
    let phone = json!({"anyOf": [{"type": "null"}, blank(), {
        "type": "string", "minLength": PHONE_MIN, "maxLength": PHONE_MAX, "pattern": PHONE_PATTERN,
    }]});
    let mut address = text(ADDRESS);
    // Blank clears the address, so its minimum is what is left after trimming.
    address.retain(|r| !matches!(r, Rule::Length { .. }));
    address.push(Rule::Length {
        min: 0,
        max: ADDRESS.max,
    });
    let timezones: Vec<serde_json::Value> = timezones()
        .into_iter()
        .map(serde_json::Value::String)
        .chain([serde_json::Value::Null])
        .collect();
    FieldRules(vec![
        FieldRule::property("ProfileUpdate", "phone", [Rule::Keywords(phone.clone())]),
        FieldRule::property("ProfileUpdate", "phoneNumber", [Rule::Keywords(phone)]),
        FieldRule::property("ProfileUpdate", "address", address),
        FieldRule::property("ProfileUpdate", "bio", text(BIO)),
        FieldRule::property(
            "ProfileUpdate",
            "avatarUrl",
            [Rule::Keywords(json!({"anyOf": [
                {"type": "null"},
                blank(),
                {"type": "string", "maxLength": MAX_URL, "pattern": AVATAR_URL_PATTERN},
                {"type": "string", "maxLength": MAX_DATA_URL, "pattern": AVATAR_DATA_PATTERN},
            ]}))],
        ),
        // `phone` and its alias `phoneNumber` may both be sent only with the same value, which
        // JSON Schema cannot compare: the document asks for one of them.
        FieldRule::schema(
            "ProfileUpdate",
            [Rule::Keywords(
                json!({"not": {"required": ["phone", "phoneNumber"]}}),
            )],
        ),
        FieldRule::property("PreferencesUpdate", "theme", [Rule::OneOf(&THEMES)]),
        FieldRule::property(
            "PreferencesUpdate",
            "language",
            [Rule::pattern(LANGUAGE_PATTERN)],
        ),
        FieldRule::property("PreferencesUpdate", "currency", [Rule::OneOf(&CURRENCIES)]),
        FieldRule::property(
            "PreferencesUpdate",
            "timezone",
            [Rule::Keywords(json!({"enum": timezones}))],
        ),
        // api.md §1.1: an empty body is `{}`, which both accept (nothing changes).
        FieldRule::body("/api/profile", "put", [Rule::Optional]),
        FieldRule::body("/api/profile/preferences", "put", [Rule::Optional]),
    ])
}

// Every route counts against the gateway's rate limit (api.md §3.3).
payplane_kit::openapi_document!(ProfileApi, StandardResponses::RATE_LIMITED);
