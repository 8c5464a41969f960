//! The GraphQL types of api.md §9.3: scalars with the REST text forms (§1.6), enums with the
//! REST values, output objects deserialized straight from the REST `data` payloads, and input
//! objects serialized straight into REST bodies. Pure data; no I/O.

use async_graphql::{
    Enum, InputObject, InputValueError, InputValueResult, Json, MaybeUndefined, Scalar, ScalarType,
    SimpleObject, Value,
};
use serde::{Deserialize, Serialize};

/// A REST timestamp (`2026-03-01T10:00:00.000Z`). Input is passed to REST as written, so a
/// plain date and every REST date rule apply unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DateTime(pub String);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Self(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// Money (§1.6): output the REST string (`"123.45"`); input a string or a number, forwarded as
/// the same JSON string or number so REST applies its money rule and answers its own
/// `VALIDATION_ERROR` details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Decimal(pub serde_json::Value);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Self(serde_json::Value::String(s))),
            Value::Number(n) => Ok(Self(serde_json::Value::Number(n))),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(_) | Value::Number(_))
    }

    fn to_value(&self) -> Value {
        match &self.0 {
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Number(n) => Value::String(n.to_string()),
            _ => Value::Null,
        }
    }
}

/// `JSON`: any JSON value.
pub type AnyJson = Json<serde_json::Value>;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UserRole {
    Admin,
    Customer,
    Vendor,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PaymentType {
    Instant,
    Scheduled,
    Recurring,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "camelCase")]
#[serde(rename_all = "camelCase")]
pub enum PaymentSortField {
    CreatedAt,
    Amount,
    Status,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "camelCase")]
#[serde(rename_all = "camelCase")]
pub enum UserSortField {
    CreatedAt,
    Email,
    Name,
    Role,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    System,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(rename_items = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    Browser,
    Mobile,
    Desktop,
    Other,
}

/// The query-string text of an enum value (the REST spelling).
pub fn rest_value<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: async_graphql::ID,
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedUser {
    pub id: async_graphql::ID,
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub is_active: bool,
    pub email_verified: bool,
    pub last_login_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthPayload {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: String,
    pub session_id: async_graphql::ID,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct Party {
    pub id: async_graphql::ID,
    pub email: String,
    pub name: String,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentTransaction {
    pub id: async_graphql::ID,
    pub payment_id: async_graphql::ID,
    pub status: PaymentStatus,
    pub previous_status: Option<PaymentStatus>,
    pub status_message: Option<String>,
    pub psp_transaction_id: Option<String>,
    pub actor_id: Option<async_graphql::ID>,
    pub actor_type: String,
    pub metadata: Option<AnyJson>,
    pub created_at: DateTime,
}

// A payment as REST returns it. `transactions` is resolved in `resolvers` (from this object
// when the REST answer carried them, else from the detail endpoint through the loader).
#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[graphql(complex)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: async_graphql::ID,
    pub sender_id: async_graphql::ID,
    pub recipient_id: async_graphql::ID,
    pub amount: Decimal,
    pub currency: String,
    pub status: PaymentStatus,
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub description: String,
    pub metadata: Option<AnyJson>,
    pub psp_transaction_id: Option<String>,
    pub psp_status: Option<String>,
    pub failure_reason: Option<String>,
    pub scheduled_for: Option<DateTime>,
    pub completed_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub sender: Party,
    pub recipient: Party,
    #[graphql(skip)]
    #[serde(default, rename = "transactions")]
    pub inline_transactions: Option<Vec<PaymentTransaction>>,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: i32,
    pub limit: i32,
    pub total: i32,
    pub total_pages: i32,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct PaymentPage {
    pub payments: Vec<Payment>,
    pub pagination: Pagination,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct ManagedUserPage {
    pub users: Vec<ManagedUser>,
    pub pagination: Pagination,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    pub id: async_graphql::ID,
    pub user_id: String,
    pub user_name: Option<String>,
    pub user_email: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub details: Option<AnyJson>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub timestamp: DateTime,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct AuditLogPage {
    pub data: Vec<AuditLog>,
    pub pagination: Pagination,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemConfig {
    pub key: String,
    pub value: Option<AnyJson>,
    pub description: Option<String>,
    pub updated_by: Option<async_graphql::ID>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct NotificationPreferences {
    pub email: bool,
    pub push: bool,
    pub sms: bool,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct Preferences {
    pub theme: Theme,
    pub language: String,
    pub currency: String,
    pub timezone: String,
    pub notifications: NotificationPreferences,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: async_graphql::ID,
    pub user_id: async_graphql::ID,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub preferences: Preferences,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// One `payments.payment.*` event, as `paymentUpdated` delivers it.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct PaymentEvent {
    pub event_id: async_graphql::ID,
    /// The WebSocket name, e.g. `payment:completed`.
    pub event_type: String,
    pub payment_id: async_graphql::ID,
    pub status: PaymentStatus,
    pub previous_status: Option<PaymentStatus>,
    pub amount: Decimal,
    pub currency: String,
    #[graphql(name = "type")]
    pub kind: PaymentType,
    pub sender_id: async_graphql::ID,
    pub recipient_id: async_graphql::ID,
    pub occurred_at: DateTime,
}

// Inputs: serialized as REST bodies. `MaybeUndefined` keeps "absent" (not sent, leave
// unchanged) apart from explicit `null` (sent as null, clear), as api.md §9.3 requires.

#[derive(InputObject, Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub device_id: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub device_name: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub device_type: MaybeUndefined<DeviceType>,
}

#[derive(InputObject, Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub role: MaybeUndefined<UserRole>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub device_id: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub device_name: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub device_type: MaybeUndefined<DeviceType>,
}

#[derive(InputObject, Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePaymentInput {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub amount: Decimal,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub currency: MaybeUndefined<String>,
    pub description: String,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub recipient_id: MaybeUndefined<async_graphql::ID>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub recipient_email: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub metadata: MaybeUndefined<AnyJson>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub scheduled_for: MaybeUndefined<DateTime>,
}

#[derive(InputObject, Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePaymentInput {
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub amount: MaybeUndefined<Decimal>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub currency: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub description: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub recipient_id: MaybeUndefined<async_graphql::ID>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub recipient_email: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub metadata: MaybeUndefined<AnyJson>,
    #[graphql(name = "type")]
    #[serde(rename = "type", skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub kind: MaybeUndefined<PaymentType>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub scheduled_for: MaybeUndefined<DateTime>,
}

#[derive(InputObject, Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfileInput {
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub phone: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub address: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub bio: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub avatar_url: MaybeUndefined<String>,
}

#[derive(InputObject, Debug, Clone, Serialize)]
pub struct NotificationPreferencesInput {
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub email: MaybeUndefined<bool>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub push: MaybeUndefined<bool>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub sms: MaybeUndefined<bool>,
}

#[derive(InputObject, Debug, Clone, Serialize)]
pub struct UpdatePreferencesInput {
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub theme: MaybeUndefined<Theme>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub language: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub currency: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub timezone: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub notifications: MaybeUndefined<NotificationPreferencesInput>,
}
