//! Payloads of the `auth.*` routing keys (events.md §4.2–§4.8).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ActorType, Event, time};

pub const USER_CREATED: &str = "auth.user.created";
pub const USER_UPDATED: &str = "auth.user.updated";
pub const USER_DELETED: &str = "auth.user.deleted";
pub const USER_LOGIN: &str = "auth.user.login";
pub const USER_LOGOUT: &str = "auth.user.logout";
pub const USER_PASSWORD_CHANGED: &str = "auth.user.password_changed";
pub const SESSION_REVOKED: &str = "auth.session.revoked";

/// The fields an `auth.user.updated` can name in `changedFields` and `previous` (events.md §4.3).
pub const USER_FIELDS: [&str; 4] = ["email", "name", "role", "isActive"];

/// A user's role, spelled as in the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Admin,
    Customer,
    Vendor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Customer => "CUSTOMER",
            Role::Vendor => "VENDOR",
        }
    }

    /// Case-insensitive parse (api.md §1.5: enum input is matched case-insensitively).
    pub fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_uppercase().as_str() {
            "ADMIN" => Some(Role::Admin),
            "CUSTOMER" => Some(Role::Customer),
            "VENDOR" => Some(Role::Vendor),
            _ => None,
        }
    }
}

/// Why a user lifecycle event happened (events.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    SelfService,
    Admin,
    Seed,
    System,
}

/// Why a session ended (events.md §4.8). Unknown future reasons deserialize as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    LogoutAll,
    DeviceLogout,
    LogoutOthers,
    PasswordChanged,
    TokenReuse,
    Replaced,
    SessionLimit,
    UserDeactivated,
    UserDeleted,
    // A consumer's catch-all for reasons added later (events.md §7.2). No producer sends it,
    // so the schema leaves it out. (A plain comment: a doc comment would make schemars describe
    // the variants one by one in a `oneOf`.)
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

impl RevokeReason {
    /// The spelling stored in `sessions.revoke_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::LogoutAll => "logout_all",
            RevokeReason::DeviceLogout => "device_logout",
            RevokeReason::LogoutOthers => "logout_others",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::TokenReuse => "token_reuse",
            RevokeReason::Replaced => "replaced",
            RevokeReason::SessionLimit => "session_limit",
            RevokeReason::UserDeactivated => "user_deactivated",
            RevokeReason::UserDeleted => "user_deleted",
            RevokeReason::Other => "other",
        }
    }
}

/// State of a user after a change (events.md §3, UserSnapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSnapshot {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_active: bool,
    pub email_verified: bool,
    pub token_version: i32,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// `auth.user.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct UserCreated {
    #[serde(flatten)]
    pub user: UserSnapshot,
    pub origin: Origin,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
}

impl Event for UserCreated {
    const ROUTING_KEY: &'static str = USER_CREATED;
    const AGGREGATE_TYPE: &'static str = "user";
}

/// `auth.user.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct UserUpdated {
    #[serde(flatten)]
    pub user: UserSnapshot,
    /// Subset of `email`, `name`, `role`, `isActive`; never empty.
    #[schemars(extend(
        "items" = {"type": "string", "enum": USER_FIELDS},
        "minItems" = 1,
        "uniqueItems" = true,
    ))]
    pub changed_fields: Vec<String>,
    /// Old value of each changed field only.
    #[schemars(extend("propertyNames" = {"enum": USER_FIELDS}))]
    pub previous: serde_json::Map<String, serde_json::Value>,
    pub reason: Option<String>,
    pub origin: Origin,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
}

impl Event for UserUpdated {
    const ROUTING_KEY: &'static str = USER_UPDATED;
    const AGGREGATE_TYPE: &'static str = "user";
}

/// `auth.user.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct UserDeleted {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub origin: Origin,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub deleted_at: DateTime<Utc>,
}

impl Event for UserDeleted {
    const ROUTING_KEY: &'static str = USER_DELETED;
    const AGGREGATE_TYPE: &'static str = "user";
}

/// `auth.user.login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct UserLogin {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub session_id: Uuid,
    pub device_id: String,
    pub device_name: Option<String>,
    pub device_type: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub login_at: DateTime<Utc>,
}

impl Event for UserLogin {
    const ROUTING_KEY: &'static str = USER_LOGIN;
    const AGGREGATE_TYPE: &'static str = "user";
}

/// `auth.user.logout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct UserLogout {
    pub user_id: Uuid,
    pub email: String,
    pub session_id: Uuid,
    pub all_devices: bool,
    pub revoked_session_ids: Vec<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub logout_at: DateTime<Utc>,
}

impl Event for UserLogout {
    const ROUTING_KEY: &'static str = USER_LOGOUT;
    const AGGREGATE_TYPE: &'static str = "user";
}

/// `auth.user.password_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PasswordChanged {
    pub user_id: Uuid,
    pub email: String,
    pub session_id: Uuid,
    #[schemars(range(min = 0))]
    pub revoked_session_count: i64,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub changed_at: DateTime<Utc>,
}

impl Event for PasswordChanged {
    const ROUTING_KEY: &'static str = USER_PASSWORD_CHANGED;
    const AGGREGATE_TYPE: &'static str = "user";
}

/// `auth.session.revoked`, one per ended session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct SessionRevoked {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub device_id: Option<String>,
    pub reason: RevokeReason,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub revoked_at: DateTime<Utc>,
}

impl Event for SessionRevoked {
    const ROUTING_KEY: &'static str = SESSION_REVOKED;
    const AGGREGATE_TYPE: &'static str = "user";
}
