//! The auth service's route table (api.md §4.1, §8.1). Handlers are thin: parse → flow → answer.

mod account;
mod attempt;
mod devices;
mod internal;
mod jwks;
mod lockout;
mod session;

use axum::{
    Router,
    routing::{delete, get, patch, post, put},
};
use payplane_kit::validate::{Fields, Text};

use payplane_kit::openapi::RouteTable;

use crate::{app::AppState, store::sessions::DeviceInput};

pub fn routes() -> Router<AppState> {
    table().into_router()
}

/// Every route with its path; the OpenAPI test compares the document with these paths.
pub fn table() -> RouteTable<AppState> {
    RouteTable::default()
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/api/auth/register", post(session::register))
        .route("/api/auth/login", post(session::login))
        .route("/api/auth/refresh", post(session::refresh))
        .route("/api/auth/logout", post(session::logout))
        .route("/api/auth/me", get(account::me))
        .route("/api/auth/password", post(account::change_password))
        .route("/api/auth/devices", get(devices::list))
        .route("/api/auth/devices/register", post(devices::register))
        .route(
            "/api/auth/devices/logout-others",
            post(devices::logout_others),
        )
        .route("/api/auth/devices/{device_id}", delete(devices::remove))
        .route("/api/auth/admin/lockout/{email}", get(lockout::show))
        .route("/api/auth/admin/unlock/{email}", post(lockout::unlock))
        .route("/api/auth/.well-known/jwks.json", get(jwks::show))
        .route("/internal/users", post(internal::create))
        .route("/internal/users/by-email", get(internal::by_email))
        .route(
            "/internal/users/{id}",
            get(internal::show)
                .patch(internal::update)
                .delete(internal::remove),
        )
        .route("/internal/users/{id}/role", put(internal::set_role))
        .route("/internal/users/{id}/status", patch(internal::set_status))
}

pub const DEVICE_TYPES: [&str; 4] = ["browser", "mobile", "desktop", "other"];
/// Roles a self-registration may ask for (`ADMIN` is refused, api.md §4.4).
pub const SELF_ROLES: [&str; 2] = ["CUSTOMER", "VENDOR"];
/// `deviceId` (and the `X-Device-ID` header): 1..128 of `validate::TOKEN_PATTERN` (api.md §4.2).
pub const DEVICE_ID_MAX: usize = 128;
/// `deviceName`: 1..100 characters.
pub const DEVICE_NAME: Text = Text::len(1, 100);
/// A user's `name`: 1..255 characters (api.md §4.4).
pub use payplane_kit::signup::NAME;
/// `refreshToken` on refresh: 1..512 characters (api.md §4.6).
pub const REFRESH_TOKEN_MAX: usize = 512;
/// `refreshToken` on logout: any string up to this length (api.md §4.7 sets no bound; this
/// one keeps hashing cheap).
pub const LOGOUT_REFRESH_TOKEN_MAX: usize = 4096;

/// Reads `deviceId`, `deviceName`, `deviceType` (api.md §4.2). Without a `deviceId`, a valid
/// `X-Device-ID` header is used, else a new UUID.
pub(crate) fn device_fields(
    f: &mut Fields<'_>,
    header: Option<&str>,
    required: bool,
) -> DeviceInput {
    let device_id = f.token("deviceId", required, DEVICE_ID_MAX);
    let device_name = f.text("deviceName", false, DEVICE_NAME);
    let device_type = f.one_of("deviceType", false, &DEVICE_TYPES);
    let device_id = device_id
        .or_else(|| {
            header
                .filter(|h| payplane_kit::validate::token_like(h, DEVICE_ID_MAX))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    DeviceInput {
        device_id,
        device_name,
        device_type,
    }
}
