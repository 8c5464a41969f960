//! The admin service's OpenAPI 3.1 document (api.md §6, §8.3: public routes only), served raw at
//! `GET /openapi.json` and merged by the gateway. The schema types below exist only to describe
//! the wire shapes; the handlers build their JSON directly. The role, audit-action and
//! resource-type vocabularies come from the constants the handlers validate with. No I/O.
#![expect(dead_code, reason = "documentation-only types and operation stubs")]

use std::collections::BTreeMap;

use payplane_kit::{
    openapi::{BearerAuth, FieldError, Pagination, UniqueOperationIds},
    openapi_envelope as envelope,
};
use utoipa::{OpenApi, ToSchema};

use payplane_kit::openapi::{
    FieldRule, FieldRules, Rule, StandardResponses, date_or_date_time, email, rules, secret, text,
    uuid,
};

use crate::{
    audit::{ACTIONS, RESOURCE_TYPES},
    domain::{
        CONFIG_DESCRIPTION, CONFIG_KEY_MAX, CONFIG_KEY_PATTERN, LIST_LIMIT_MAX, NAME, ORDERS,
        PASSWORD_MAX, PASSWORD_MIN, PASSWORD_PATTERN, REASON, RESOURCE_ID, ROLES, USER_SEARCH,
        USER_SORT_KEYS,
    },
};

payplane_kit::openapi_vocabulary! {
    Role = ROLES, "A user's role; input matches it case-insensitively.";
    AuditAction = ACTIONS, "An audit action (api.md §6.11); the query filter matches it case-insensitively.";
    ResourceType = RESOURCE_TYPES, "A resource type an audit entry may name; the query filter matches it case-insensitively.";
    UserSort = USER_SORT_KEYS, "The sort key of the user list.";
    SortOrder = ORDERS, "A sort direction.";
}

/// A user as the admin API shows it (api.md §6.3), from the users read model.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedUser {
    #[schema(format = "uuid")]
    id: String,
    #[schema(example = "customer@example.com")]
    email: String,
    #[schema(example = "Customer User")]
    name: String,
    role: Role,
    is_active: bool,
    email_verified: bool,
    /// `null` until the user's first login is known.
    #[schema(format = "date-time", required, example = "2026-03-01T10:00:00.000Z")]
    last_login_at: Option<String>,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    created_at: String,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    updated_at: String,
}

/// `GET /api/admin/users` data.
#[derive(ToSchema)]
pub struct UserPage {
    users: Vec<ManagedUser>,
    pagination: Pagination,
}

/// `POST /api/admin/users`.
#[derive(ToSchema)]
pub struct UserCreate {
    email: String,
    /// 12..255 characters with an upper-case letter, a lower-case letter, a digit and a symbol.
    password: String,
    /// 1..255 characters.
    name: String,
    role: Role,
}

/// `PUT /api/admin/users/{id}`: at least one of `name`, `email` (`null` counts as absent).
#[derive(ToSchema)]
pub struct UserUpdate {
    email: Option<String>,
    name: Option<String>,
}

/// `PUT`/`PATCH /api/admin/users/{id}/role`.
#[derive(ToSchema)]
pub struct RoleChange {
    role: Role,
}

/// `PATCH /api/admin/users/{id}/status`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    is_active: bool,
    /// 1..500 characters (multi-line); kept as the deactivation reason. Empty or
    /// whitespace-only is treated as absent.
    reason: Option<String>,
}

/// One audit log entry (api.md §6.10). Optional fields are left out when unknown.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    #[schema(format = "uuid")]
    id: String,
    /// The acting user's id; `""` when there is none (system entries).
    user_id: String,
    #[schema(nullable = false)]
    user_name: Option<String>,
    #[schema(nullable = false)]
    user_email: Option<String>,
    action: AuditAction,
    /// One of the resource types, or `""` when the entry names none.
    resource_type: String,
    /// `""` when the entry names no resource.
    resource_id: String,
    /// Present only when non-empty.
    #[schema(nullable = false)]
    details: Option<BTreeMap<String, serde_json::Value>>,
    #[schema(nullable = false, example = "203.0.113.7")]
    ip_address: Option<String>,
    #[schema(nullable = false)]
    user_agent: Option<String>,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    timestamp: String,
}

/// `GET /api/admin/audit-logs` data: the entries nested as `data` (kept for client
/// compatibility).
#[derive(ToSchema)]
pub struct AuditPage {
    data: Vec<AuditEntry>,
    pagination: Pagination,
}

/// Every audit action, sorted alphabetically.
#[derive(ToSchema)]
pub struct Actions(Vec<AuditAction>);

/// A system config entry (api.md §6.12).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntry {
    #[schema(example = "payment.min_amount")]
    key: String,
    /// Any JSON value, `null` included.
    value: serde_json::Value,
    #[schema(required)]
    description: Option<String>,
    /// The admin who made the last change.
    #[schema(format = "uuid", required)]
    updated_by: Option<String>,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    created_at: String,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    updated_at: String,
}

/// `GET /api/admin/config` data: every entry, by key.
#[derive(ToSchema)]
pub struct ConfigList(Vec<ConfigEntry>);

/// `POST /api/admin/config`.
#[derive(ToSchema)]
pub struct ConfigCreate {
    /// 1..128 characters of `^[a-z0-9]+([._-][a-z0-9]+)*$`.
    key: String,
    /// Any JSON value (`null` included), at most 65 536 bytes in compact form.
    value: serde_json::Value,
    /// 0..500 characters (multi-line); `null` or absent for none.
    description: Option<String>,
}

/// `PUT /api/admin/config/{key}`: creates the entry or replaces its value.
#[derive(ToSchema)]
pub struct ConfigPut {
    /// Any JSON value (`null` included), at most 65 536 bytes in compact form.
    value: serde_json::Value,
    /// 0..500 characters (multi-line); `null` clears it, absent keeps the stored one.
    description: Option<String>,
}

/// The overall health: `healthy` with no unhealthy probe, `degraded` with one or two,
/// `unhealthy` with more.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

/// One probe's verdict.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProbeStatus {
    Healthy,
    Unhealthy,
}

/// One probe in detail.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeCheck {
    status: ProbeStatus,
    response_time_ms: u64,
    /// Why the probe failed; `null` when healthy.
    #[schema(required)]
    error: Option<String>,
}

/// Every probe's verdict.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatuses {
    database: ProbeStatus,
    redis: ProbeStatus,
    broker: ProbeStatus,
    auth_service: ProbeStatus,
    payments_service: ProbeStatus,
    admin_service: ProbeStatus,
    profile_service: ProbeStatus,
    gateway: ProbeStatus,
}

/// Every probe in detail.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceChecks {
    database: ProbeCheck,
    redis: ProbeCheck,
    broker: ProbeCheck,
    auth_service: ProbeCheck,
    payments_service: ProbeCheck,
    admin_service: ProbeCheck,
    profile_service: ProbeCheck,
    gateway: ProbeCheck,
}

/// `GET /api/admin/health` data (api.md §6.13).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemHealth {
    status: HealthStatus,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    timestamp: String,
    /// The admin service's version.
    version: String,
    /// Seconds since the admin service started.
    uptime: f64,
    /// Milliseconds taken by all probes together.
    response_time: u64,
    services: ServiceStatuses,
    checks: ServiceChecks,
}

/// Users per role.
#[derive(ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub struct RoleCounts {
    admin: i64,
    customer: i64,
    vendor: i64,
}

/// User totals from the read model (deleted users are not counted).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserTotals {
    total: i64,
    active: i64,
    inactive: i64,
    by_role: RoleCounts,
    /// Created in the last 24 hours.
    new_last_24h: i64,
}

/// Audit totals.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditTotals {
    /// Entries written in the last 24 hours.
    entries_last_24h: i64,
}

/// `GET /api/admin/dashboard` data (api.md §6.14).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    generated_at: String,
    users: UserTotals,
    /// The payments service's statistics (`GET /internal/payments/stats` data) as it answers
    /// them; `null` when they could not be fetched in time (see `warnings`).
    #[schema(required)]
    payments: Option<BTreeMap<String, serde_json::Value>>,
    audit: AuditTotals,
    /// E.g. `payments statistics unavailable`.
    warnings: Vec<String>,
}

envelope!(
    UserPageEnvelope,
    UserPage,
    "`{success: true, data: {users, pagination}}`."
);
envelope!(
    ManagedUserEnvelope,
    ManagedUser,
    "`{success: true, data: ManagedUser}`."
);
envelope!(
    AuditPageEnvelope,
    AuditPage,
    "`{success: true, data: {data, pagination}}`."
);
envelope!(
    ActionsEnvelope,
    Actions,
    "`{success: true, data: [action]}` (a plain array)."
);
envelope!(
    ConfigEntryEnvelope,
    ConfigEntry,
    "`{success: true, data: ConfigEntry}`."
);
envelope!(
    ConfigListEnvelope,
    ConfigList,
    "`{success: true, data: [ConfigEntry]}` (a plain array)."
);
envelope!(
    SystemHealthEnvelope,
    SystemHealth,
    "`{success: true, data: SystemHealth}`."
);
envelope!(
    DashboardEnvelope,
    Dashboard,
    "`{success: true, data: Dashboard}`."
);

/// The error body of api.md §1.3.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A code of the catalog in api.md §1.4; auth's answers to user changes are passed through.
    #[schema(example = "USER_NOT_FOUND")]
    code: String,
    message: String,
    /// For `VALIDATION_ERROR`: every violation.
    #[schema(nullable = false)]
    details: Option<Vec<FieldError>>,
    request_id: String,
}

/// `{success: false, error: …}`.
#[derive(ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    success: bool,
    error: ErrorBody,
}

/// List, search and filter users
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearerAuth" = [])),
    params(
        ("page" = Option<i64>, Query, description = "≥ 1, default 1"),
        ("limit" = Option<i64>, Query, description = "1..100, default 10"),
        ("sort" = Option<UserSort>, Query, description = "Default `createdAt`; `email` and `name` ignore case"),
        ("order" = Option<SortOrder>, Query, description = "Default `desc`"),
        ("role" = Option<Role>, Query, description = "Only this role"),
        ("search" = Option<String>, Query, description = "Case-insensitive substring of name or email (`%`, `_` are literal)"),
        ("isActive" = Option<bool>, Query, description = "Only active (`true`) or inactive (`false`) users"),
    ),
    responses(
        (status = 200, description = "One page of users (deleted users are left out)", body = UserPageEnvelope),
    ))]
fn list_users() {}

/// Create a user (any role)
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", security(("bearerAuth" = [])),
    request_body = UserCreate,
    responses(
        (status = 201, description = "Created through auth; audited as USER_CREATED", body = ManagedUserEnvelope),
        (status = 409, description = "EMAIL_EXISTS", body = ErrorEnvelope),
        (status = 503, description = "SERVICE_UNAVAILABLE (auth unreachable)", body = ErrorEnvelope),
    ))]
fn create_user() {}

/// One user
#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "admin", security(("bearerAuth" = [])),
    params(("id" = String, Path, format = "uuid", description = "User id (UUID)")),
    responses(
        (status = 200, description = "The user", body = ManagedUserEnvelope),
        (status = 404, description = "USER_NOT_FOUND (unknown, deleted or non-UUID id)", body = ErrorEnvelope),
    ))]
fn get_user() {}

/// Change name and/or email
#[utoipa::path(put, path = "/api/admin/users/{id}", tag = "admin", security(("bearerAuth" = [])),
    params(("id" = String, Path, format = "uuid", description = "User id (UUID)")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The user after the change; audited as USER_UPDATED if anything changed", body = ManagedUserEnvelope),
        (status = 404, description = "USER_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "EMAIL_EXISTS", body = ErrorEnvelope),
        (status = 503, description = "SERVICE_UNAVAILABLE (auth unreachable)", body = ErrorEnvelope),
    ))]
fn update_user() {}

/// Delete a user
#[utoipa::path(delete, path = "/api/admin/users/{id}", tag = "admin", security(("bearerAuth" = [])),
    params(("id" = String, Path, format = "uuid", description = "User id (UUID)")),
    responses(
        (status = 204, description = "Deleted through auth; audited as USER_DELETED"),
        (status = 404, description = "USER_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SELF_MODIFICATION_FORBIDDEN or LAST_ADMIN", body = ErrorEnvelope),
        (status = 503, description = "SERVICE_UNAVAILABLE (auth unreachable)", body = ErrorEnvelope),
    ))]
fn delete_user() {}

/// Change a user's role
#[utoipa::path(method(put, patch), path = "/api/admin/users/{id}/role", tag = "admin", security(("bearerAuth" = [])),
    params(("id" = String, Path, format = "uuid", description = "User id (UUID)")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The user after the change; audited as USER_ROLE_CHANGED if the role changed", body = ManagedUserEnvelope),
        (status = 404, description = "USER_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SELF_MODIFICATION_FORBIDDEN or LAST_ADMIN", body = ErrorEnvelope),
        (status = 503, description = "SERVICE_UNAVAILABLE (auth unreachable)", body = ErrorEnvelope),
    ))]
fn set_role() {}

/// Activate or deactivate
#[utoipa::path(patch, path = "/api/admin/users/{id}/status", tag = "admin", security(("bearerAuth" = [])),
    params(("id" = String, Path, format = "uuid", description = "User id (UUID)")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The user after the change; deactivation ends the user's sessions; audited as USER_STATUS_CHANGED if the status changed", body = ManagedUserEnvelope),
        (status = 404, description = "USER_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SELF_MODIFICATION_FORBIDDEN or LAST_ADMIN", body = ErrorEnvelope),
        (status = 503, description = "SERVICE_UNAVAILABLE (auth unreachable)", body = ErrorEnvelope),
    ))]
fn change_status() {}

/// Audit log, newest first
#[utoipa::path(get, path = "/api/admin/audit-logs", tag = "admin", security(("bearerAuth" = [])),
    params(
        ("page" = Option<i64>, Query, description = "≥ 1, default 1"),
        ("limit" = Option<i64>, Query, description = "1..100, default 20"),
        ("action" = Option<AuditAction>, Query, description = "Only this action"),
        ("userId" = Option<String>, Query, format = "uuid", description = "Only entries of this acting user"),
        ("resourceType" = Option<ResourceType>, Query, description = "Only this resource type"),
        ("resourceId" = Option<String>, Query, description = "Only this resource id"),
        ("startDate" = Option<String>, Query, description = "Entries at or after: RFC 3339 with offset or YYYY-MM-DD (UTC); not after `endDate`"),
        ("endDate" = Option<String>, Query, description = "Entries at or before: RFC 3339 with offset, or YYYY-MM-DD (UTC) for the whole day"),
    ),
    responses(
        (status = 200, description = "One page of entries, newest first", body = AuditPageEnvelope),
    ))]
fn list_audit_logs() {}

/// Known audit actions
#[utoipa::path(get, path = "/api/admin/audit-logs/actions", tag = "admin", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Every audit action, sorted alphabetically", body = ActionsEnvelope),
    ))]
fn audit_actions() {}

/// All config entries
#[utoipa::path(get, path = "/api/admin/config", tag = "admin", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Every entry, by key", body = ConfigListEnvelope),
    ))]
fn list_config() {}

/// Create a config entry
#[utoipa::path(post, path = "/api/admin/config", tag = "admin", security(("bearerAuth" = [])),
    request_body = ConfigCreate,
    responses(
        (status = 201, description = "Created; audited as SYSTEM_CONFIG_CHANGED, emits admin.config.updated", body = ConfigEntryEnvelope),
        (status = 409, description = "CONFIG_EXISTS", body = ErrorEnvelope),
    ))]
fn create_config() {}

/// One config entry
#[utoipa::path(get, path = "/api/admin/config/{key}", tag = "admin", security(("bearerAuth" = [])),
    params(("key" = String, Path, description = "Config key")),
    responses(
        (status = 200, description = "The entry", body = ConfigEntryEnvelope),
        (status = 404, description = "CONFIG_NOT_FOUND (unknown or malformed key)", body = ErrorEnvelope),
    ))]
fn get_config() {}

/// Create or replace a config entry
#[utoipa::path(put, path = "/api/admin/config/{key}", tag = "admin", security(("bearerAuth" = [])),
    params(("key" = String, Path, description = "Config key")),
    request_body = ConfigPut,
    responses(
        (status = 200, description = "Replaced (unchanged if value and description are the same); a change is audited as SYSTEM_CONFIG_CHANGED and emits admin.config.updated", body = ConfigEntryEnvelope),
        (status = 201, description = "Created; audited as SYSTEM_CONFIG_CHANGED, emits admin.config.updated", body = ConfigEntryEnvelope),
        (status = 404, description = "CONFIG_NOT_FOUND (malformed key)", body = ErrorEnvelope),
        (status = 409, description = "CONFIG_EXISTS (created concurrently)", body = ErrorEnvelope),
    ))]
fn put_config() {}

/// Delete a config entry
#[utoipa::path(delete, path = "/api/admin/config/{key}", tag = "admin", security(("bearerAuth" = [])),
    params(("key" = String, Path, description = "Config key")),
    responses(
        (status = 204, description = "Deleted; audited as SYSTEM_CONFIG_CHANGED, emits admin.config.updated"),
        (status = 404, description = "CONFIG_NOT_FOUND (unknown or malformed key)", body = ErrorEnvelope),
    ))]
fn delete_config() {}

/// System health
#[utoipa::path(get, path = "/api/admin/health", tag = "admin", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Every dependency and service probed in parallel (also when some are down)", body = SystemHealthEnvelope),
    ))]
fn system_health() {}

/// Dashboard totals
#[utoipa::path(get, path = "/api/admin/dashboard", tag = "admin", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "User, payment and audit totals", body = DashboardEnvelope),
    ))]
fn dashboard() {}

#[derive(OpenApi)]
#[openapi(
    info(title = "payplane admin service", description = "User management, audit log, system config, system health and dashboard (api.md §6)."),
    paths(list_users, create_user, get_user, update_user, delete_user, set_role,
        change_status, list_audit_logs, audit_actions, list_config, create_config, get_config,
        put_config, delete_config, system_health, dashboard),
    // Types used only by query parameters are not collected from the paths.
    components(schemas(UserSort, SortOrder, ResourceType)),
    modifiers(&BearerAuth, &UniqueOperationIds),
    tags((name = "admin", description = "User management, audit log, system config, health (ADMIN only)")),
)]
struct AdminApi;

/// The request rules the handlers enforce, from the constants they validate with.
pub fn field_rules() -> FieldRules {
    let key = || {
        vec![
            Rule::Length {
                min: 1,
                max: CONFIG_KEY_MAX,
            },
            Rule::pattern(CONFIG_KEY_PATTERN),
        ]
    };
    let mut table = vec![
        FieldRule::property("UserCreate", "email", email()),
        FieldRule::property(
            "UserCreate",
            "password",
            rules([
                secret(PASSWORD_MIN, PASSWORD_MAX),
                vec![Rule::pattern(PASSWORD_PATTERN)],
            ]),
        ),
        FieldRule::property("UserCreate", "name", text(NAME)),
        // `null` reads as absent, and at least one of them must be given (api.md §6.6).
        FieldRule::property("UserUpdate", "email", rules([email(), vec![Rule::NotNull]])),
        FieldRule::property(
            "UserUpdate",
            "name",
            rules([text(NAME), vec![Rule::NotNull]]),
        ),
        FieldRule::schema(
            "UserUpdate",
            [Rule::Keywords(serde_json::json!({
                "anyOf": [{"required": ["email"]}, {"required": ["name"]}]
            }))],
        ),
        FieldRule::property("StatusChange", "reason", text(REASON)),
        FieldRule::property("ConfigCreate", "key", key()),
        FieldRule::property("ConfigCreate", "description", text(CONFIG_DESCRIPTION)),
        FieldRule::property("ConfigPut", "description", text(CONFIG_DESCRIPTION)),
        FieldRule::param("/api/admin/users", "search", text(USER_SEARCH)),
        FieldRule::param("/api/admin/audit-logs", "resourceId", text(RESOURCE_ID)),
    ];
    for path in ["/api/admin/users", "/api/admin/audit-logs"] {
        table.push(FieldRule::param(
            path,
            "page",
            [Rule::Range {
                min: 1,
                max: i64::MAX,
            }],
        ));
        table.push(FieldRule::param(
            path,
            "limit",
            [Rule::Range {
                min: 1,
                max: LIST_LIMIT_MAX,
            }],
        ));
    }
    for name in ["startDate", "endDate"] {
        table.push(FieldRule::param(
            "/api/admin/audit-logs",
            name,
            date_or_date_time(),
        ));
    }
    table.push(FieldRule::param("/api/admin/audit-logs", "userId", uuid()));
    // Every operation on the path (get, put, delete) declares `key`.
    table.push(FieldRule::param("/api/admin/config/{key}", "key", key()));
    FieldRules(table)
}

// Every route counts against the gateway's rate limit (api.md §3.3), and every one is ADMIN only.
payplane_kit::openapi_document!(
    AdminApi,
    StandardResponses::RATE_LIMITED.with_forbidden("FORBIDDEN (not ADMIN)")
);

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn document() -> Value {
        serde_json::to_value(openapi()).unwrap()
    }

    #[test]
    fn every_route_is_documented_and_references_resolve() {
        let doc = document();
        let (_, problems) =
            payplane_kit::openapi::check_document(&doc, &crate::routes::table().public_paths());
        // check_document also resolves every `$ref`.
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_operation_is_secured_and_tagged() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert_eq!(op["tags"], json!(["admin"]), "{method} {path}");
                assert_eq!(
                    op["security"],
                    json!([{"bearerAuth": []}]),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"],
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
        );
    }

    #[test]
    fn vocabularies_come_from_the_handlers_constants() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["AuditAction"]["enum"], json!(ACTIONS));
        assert_eq!(schemas["ResourceType"]["enum"], json!(RESOURCE_TYPES));
        assert_eq!(schemas["Role"]["enum"], json!(ROLES));
    }
}
