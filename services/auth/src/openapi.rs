//! The auth service's OpenAPI 3.1 document (api.md §4, §8.3: public routes only), served raw at
//! `GET /openapi.json` and merged by the gateway. The schema types below exist only to describe
//! the wire shapes; the handlers build their JSON from the store rows. No I/O.
#![expect(dead_code, reason = "documentation-only types and operation stubs")]
#![expect(clippy::struct_field_names, reason = "field names are the wire names")]

use payplane_kit::{
    openapi::{
        BearerAuth, FieldRule, FieldRules, Rule, StandardResponses, UniqueOperationIds, email,
        rules, secret, text, token,
    },
    openapi_envelope as envelope,
};
use utoipa::{OpenApi, ToSchema};

use crate::{
    password::{PASSWORD_MAX, PASSWORD_MIN, PASSWORD_PATTERN},
    routes::{
        DEVICE_ID_MAX, DEVICE_NAME, DEVICE_TYPES, LOGOUT_REFRESH_TOKEN_MAX, NAME,
        REFRESH_TOKEN_MAX, SELF_ROLES,
    },
};

/// A user's role.
#[derive(ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Customer,
    Vendor,
    Admin,
}

payplane_kit::openapi_vocabulary! {
    SelfRole = SELF_ROLES, "A self-registration role (`ADMIN` → 400 `VALIDATION_ERROR`).";
    DeviceType = DEVICE_TYPES, "A device type.";
}

/// PublicUser (api.md §4.2): exactly these six fields.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicUser {
    #[schema(format = "uuid")]
    id: String,
    #[schema(example = "customer@example.com")]
    email: String,
    #[schema(example = "Customer User")]
    name: String,
    role: Role,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    created_at: String,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    updated_at: String,
}

/// AuthResult (api.md §4.2), returned by register and login.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResult {
    user: PublicUser,
    /// An EdDSA-signed JWT.
    access_token: String,
    /// Opaque, 43 characters (base64url of 32 random bytes).
    refresh_token: String,
    /// The access-token lifetime as `<n><unit>`, unit `s|m|h|d`.
    #[schema(example = "15m")]
    expires_in: String,
    #[schema(format = "uuid")]
    session_id: String,
    device_id: String,
}

/// The answer to a refresh (api.md §4.6): AuthResult without `deviceId`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshResult {
    user: PublicUser,
    access_token: String,
    refresh_token: String,
    #[schema(example = "15m")]
    expires_in: String,
    #[schema(format = "uuid")]
    session_id: String,
}

/// `POST /api/auth/register`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// Email rule of api.md §1.5; stored lower-cased.
    #[schema(example = "customer@example.com")]
    email: String,
    /// 12..255 characters with an upper-case and a lower-case ASCII letter, a digit and a
    /// character that is not an ASCII letter or digit.
    #[schema(format = "password")]
    password: String,
    /// 1..255 characters.
    name: String,
    /// Default `CUSTOMER`.
    role: Option<SelfRole>,
    /// 1..128 of `^[A-Za-z0-9._:-]+$`; else the `X-Device-ID` header, else a new UUID.
    device_id: Option<String>,
    /// 1..100 characters.
    device_name: Option<String>,
    device_type: Option<DeviceType>,
}

/// `POST /api/auth/login`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    email: String,
    /// 1..255 characters, not trimmed.
    #[schema(format = "password")]
    password: String,
    device_id: Option<String>,
    device_name: Option<String>,
    device_type: Option<DeviceType>,
}

/// `POST /api/auth/refresh`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// 1..512 characters.
    refresh_token: String,
}

/// `POST /api/auth/logout`: all optional.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutRequest {
    /// End every active session of the user (default `false`).
    all_devices: Option<bool>,
    /// Identifies the session when no usable bearer token is sent.
    refresh_token: Option<String>,
}

/// `POST /api/auth/password`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChangeRequest {
    /// 1..255 characters.
    #[schema(format = "password")]
    current_password: String,
    /// The registration password rule, and different from `currentPassword`.
    #[schema(format = "password")]
    new_password: String,
}

/// Logout and password-change result.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedSessions {
    #[schema(example = "Logged out successfully")]
    message: String,
    revoked_sessions: i64,
}

/// A device with at least one active session (api.md §4.10).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    user_id: String,
    /// The client's device id string.
    device_id: String,
    device_name: Option<String>,
    device_type: Option<DeviceType>,
    user_agent: Option<String>,
    #[schema(example = "203.0.113.7")]
    ip_address: Option<String>,
    #[schema(format = "date-time")]
    last_active_at: String,
    #[schema(format = "date-time")]
    created_at: String,
    /// True for the device of the caller's session.
    current: bool,
    active_sessions: i64,
}

/// `POST /api/auth/devices/register`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRegisterRequest {
    /// 1..128 of `^[A-Za-z0-9._:-]+$`.
    device_id: String,
    device_name: Option<String>,
    device_type: Option<DeviceType>,
}

/// `POST /api/auth/devices/logout-others`: optional body.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutOthersRequest {
    /// Validated by the device-id rule, otherwise ignored.
    current_device_id: Option<String>,
}

/// `POST /api/auth/devices/logout-others` result.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOutCount {
    logged_out_count: i64,
}

/// An active lock.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockoutInfo {
    #[schema(format = "date-time")]
    locked_at: Option<String>,
    #[schema(format = "date-time")]
    unlock_at: String,
    #[schema(example = "too_many_failed_attempts")]
    reason: String,
    failed_attempts: i64,
}

/// Login throttle state for an email (api.md §4.11).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockoutState {
    email: String,
    is_locked: bool,
    failed_attempts: i64,
    #[schema(format = "date-time")]
    last_failed_at: Option<String>,
    #[schema(format = "date-time")]
    locked_until: Option<String>,
    lockout: Option<LockoutInfo>,
}

/// `POST /api/auth/admin/unlock/{email}` result.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnlockResult {
    email: String,
    was_locked: bool,
    #[schema(example = "Account customer@example.com has been unlocked")]
    message: String,
}

/// One public signing key.
#[derive(ToSchema)]
pub struct Jwk {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    /// base64url public key.
    x: String,
    #[schema(example = "2026-03-key-1")]
    kid: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    use_: String,
    #[schema(example = "EdDSA")]
    alg: String,
}

/// The JWKS document (raw, not enveloped).
#[derive(ToSchema)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

envelope!(
    AuthResultEnvelope,
    AuthResult,
    "`{success: true, data: AuthResult}`."
);
envelope!(
    RefreshResultEnvelope,
    RefreshResult,
    "`{success: true, data: RefreshResult}`."
);
envelope!(
    PublicUserEnvelope,
    PublicUser,
    "`{success: true, data: PublicUser}`."
);
envelope!(
    RevokedSessionsEnvelope,
    RevokedSessions,
    "`{success: true, data: {message, revokedSessions}}`."
);
envelope!(DeviceEnvelope, Device, "`{success: true, data: Device}`.");
envelope!(
    DeviceListEnvelope,
    Vec<Device>,
    "`{success: true, data: [Device]}`, newest `lastActiveAt` first."
);
envelope!(
    LoggedOutCountEnvelope,
    LoggedOutCount,
    "`{success: true, data: {loggedOutCount}}`."
);
envelope!(
    LockoutStateEnvelope,
    LockoutState,
    "`{success: true, data: LockoutState}`."
);
envelope!(
    UnlockResultEnvelope,
    UnlockResult,
    "`{success: true, data: UnlockResult}`."
);

/// The error body of api.md §1.3.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A code of the catalog in api.md §1.4.
    #[schema(example = "VALIDATION_ERROR")]
    code: String,
    message: String,
    /// `VALIDATION_ERROR`: `[{field, message}]`; `INVALID_CREDENTIALS` and `INVALID_PASSWORD`:
    /// `{remainingAttempts}`; `ACCOUNT_LOCKED`: `{lockedUntil?, waitSeconds}`.
    details: Option<serde_json::Value>,
    request_id: String,
}

/// `{success: false, error: …}`.
#[derive(ToSchema)]
pub struct ErrorEnvelope {
    success: bool,
    error: ErrorBody,
}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth",
    params(("X-Device-ID" = Option<String>, Header, description = "Device id used when the body has no `deviceId`")),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created and signed in; emits auth.user.created", body = AuthResultEnvelope),
        (status = 409, description = "EMAIL_EXISTS", body = ErrorEnvelope),
    ))]
fn register() {}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    params(("X-Device-ID" = Option<String>, Header, description = "Device id used when the body has no `deviceId`")),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; a session on the same device is replaced", body = AuthResultEnvelope),
        (status = 401, description = "INVALID_CREDENTIALS (details.remainingAttempts after the 3rd and 4th failure)", body = ErrorEnvelope),
        (status = 403, description = "ACCOUNT_DISABLED", body = ErrorEnvelope),
        (status = 429, description = "ACCOUNT_LOCKED (details {lockedUntil?, waitSeconds}, Retry-After header) or RATE_LIMIT_EXCEEDED (gateway)", body = ErrorEnvelope),
    ))]
fn login() {}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Refresh token rotated, new access token", body = RefreshResultEnvelope),
        (status = 401, description = "TOKEN_INVALID, SESSION_REVOKED, TOKEN_REUSE_DETECTED or TOKEN_EXPIRED", body = ErrorEnvelope),
    ))]
fn refresh() {}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    security((), ("bearerAuth" = [])),
    request_body(content = LogoutRequest, description = "Optional; a bearer token (even expired or revoked) or a current refresh token identifies the session"),
    responses(
        (status = 200, description = "Session(s) ended", body = RevokedSessionsEnvelope),
        (status = 401, description = "UNAUTHORIZED: neither a usable token nor a current refresh token", body = ErrorEnvelope),
    ))]
fn logout() {}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The current user, read from the database", body = PublicUserEnvelope),
    ))]
fn me() {}

#[utoipa::path(post, path = "/api/auth/password", tag = "auth", security(("bearerAuth" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 200, description = "Password changed; every other session ended", body = RevokedSessionsEnvelope),
        (status = 400, description = "VALIDATION_ERROR, INVALID_JSON, or INVALID_PASSWORD (wrong current password, details.remainingAttempts)", body = ErrorEnvelope),
        (status = 429, description = "ACCOUNT_LOCKED or RATE_LIMIT_EXCEEDED (gateway); Retry-After header", body = ErrorEnvelope),
    ))]
fn change_password() {}

#[utoipa::path(get, path = "/api/auth/devices", tag = "devices", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Devices with at least one active session", body = DeviceListEnvelope),
    ))]
fn list_devices() {}

#[utoipa::path(post, path = "/api/auth/devices/register", tag = "devices", security(("bearerAuth" = [])),
    request_body = DeviceRegisterRequest,
    responses(
        (status = 200, description = "The current session attached to the device (kept for client compatibility)", body = DeviceEnvelope),
    ))]
fn register_device() {}

#[utoipa::path(post, path = "/api/auth/devices/logout-others", tag = "devices", security(("bearerAuth" = [])),
    request_body(content = LogoutOthersRequest, description = "Optional"),
    responses(
        (status = 200, description = "Every other active session ended", body = LoggedOutCountEnvelope),
    ))]
fn logout_others() {}

#[utoipa::path(delete, path = "/api/auth/devices/{deviceId}", tag = "devices", security(("bearerAuth" = [])),
    params(("deviceId" = String, Path, description = "The client device id string")),
    responses(
        (status = 204, description = "Every active session of the caller on that device ended"),
        (status = 404, description = "DEVICE_NOT_FOUND", body = ErrorEnvelope),
    ))]
fn remove_device() {}

#[utoipa::path(get, path = "/api/auth/admin/lockout/{email}", tag = "lockout", security(("bearerAuth" = [])),
    params(("email" = String, Path, description = "URL-encoded email address")),
    responses(
        (status = 200, description = "Login throttle state for the email", body = LockoutStateEnvelope),
        (status = 400, description = "VALIDATION_ERROR (invalid email)", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN (not an ADMIN)", body = ErrorEnvelope),
    ))]
fn lockout_state() {}

#[utoipa::path(post, path = "/api/auth/admin/unlock/{email}", tag = "lockout", security(("bearerAuth" = [])),
    params(("email" = String, Path, description = "URL-encoded email address")),
    responses(
        (status = 200, description = "Throttle state cleared", body = UnlockResultEnvelope),
        (status = 400, description = "VALIDATION_ERROR (invalid email)", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN (not an ADMIN)", body = ErrorEnvelope),
    ))]
fn unlock() {}

#[utoipa::path(get, path = "/api/auth/.well-known/jwks.json", tag = "auth",
    responses(
        (status = 200, description = "Public signing keys (not enveloped; Cache-Control: public, max-age=300)", body = Jwks),
    ))]
fn jwks() {}

#[derive(OpenApi)]
#[openapi(
    info(title = "payplane auth service", description = "Users, sessions, devices and signing keys (api.md §4)."),
    paths(register, login, refresh, logout, me, change_password, list_devices, register_device,
        logout_others, remove_device, lockout_state, unlock, jwks),
    modifiers(&BearerAuth, &UniqueOperationIds),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens and the current user"),
        (name = "devices", description = "The caller's devices and their sessions"),
        (name = "lockout", description = "Login throttle tools (ADMIN only)"),
    ),
)]
struct AuthApi;

/// The request rules the handlers enforce, from the constants they validate with.
pub fn field_rules() -> FieldRules {
    let new_password = || {
        rules([
            secret(PASSWORD_MIN, PASSWORD_MAX),
            vec![Rule::pattern(PASSWORD_PATTERN)],
        ])
    };
    let device = |schema| {
        [
            FieldRule::property(schema, "deviceId", token(DEVICE_ID_MAX)),
            FieldRule::property(schema, "deviceName", text(DEVICE_NAME)),
        ]
    };
    let mut table = vec![
        FieldRule::property("RegisterRequest", "email", email()),
        FieldRule::property("RegisterRequest", "password", new_password()),
        FieldRule::property("RegisterRequest", "name", text(NAME)),
        FieldRule::property("LoginRequest", "email", email()),
        FieldRule::property("LoginRequest", "password", secret(1, PASSWORD_MAX)),
        FieldRule::property(
            "RefreshRequest",
            "refreshToken",
            [Rule::Length {
                min: 1,
                max: REFRESH_TOKEN_MAX,
            }],
        ),
        FieldRule::property(
            "LogoutRequest",
            "refreshToken",
            [Rule::Length {
                min: 0,
                max: LOGOUT_REFRESH_TOKEN_MAX,
            }],
        ),
        FieldRule::property(
            "PasswordChangeRequest",
            "currentPassword",
            secret(1, PASSWORD_MAX),
        ),
        FieldRule::property("PasswordChangeRequest", "newPassword", new_password()),
        FieldRule::property(
            "LogoutOthersRequest",
            "currentDeviceId",
            token(DEVICE_ID_MAX),
        ),
        // api.md §1.1: an empty body is `{}`, which these accept.
        FieldRule::body("/api/auth/logout", "post", [Rule::Optional]),
        FieldRule::body("/api/auth/devices/logout-others", "post", [Rule::Optional]),
        FieldRule::param("/api/auth/register", "X-Device-ID", token(DEVICE_ID_MAX)),
        FieldRule::param("/api/auth/login", "X-Device-ID", token(DEVICE_ID_MAX)),
        FieldRule::param(
            "/api/auth/devices/{deviceId}",
            "deviceId",
            token(DEVICE_ID_MAX),
        ),
        FieldRule::param("/api/auth/admin/lockout/{email}", "email", email()),
        FieldRule::param("/api/auth/admin/unlock/{email}", "email", email()),
    ];
    for schema in ["RegisterRequest", "LoginRequest", "DeviceRegisterRequest"] {
        table.extend(device(schema));
    }
    FieldRules(table)
}

// Every route counts against the gateway's rate limit (api.md §3.3).
payplane_kit::openapi_document!(AuthApi, StandardResponses::RATE_LIMITED);
