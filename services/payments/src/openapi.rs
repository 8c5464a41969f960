//! The payments service's OpenAPI 3.1 document (api.md §5, §8.3: public routes only), served raw
//! at `GET /openapi.json` and merged by the gateway. The schema types below exist only to
//! describe the wire shapes; the handlers build their JSON from the store rows. No I/O.
#![expect(dead_code, reason = "documentation-only types and operation stubs")]

use std::collections::BTreeMap;

use payplane_kit::{
    openapi::{
        BearerAuth, FieldError, FieldRule, FieldRules, Pagination, Rule, StandardResponses,
        UniqueOperationIds, date_or_date_time, date_time, email, rules, text, uuid,
    },
    openapi_envelope as envelope,
};
use rust_decimal::prelude::ToPrimitive;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::{
    domain::{
        DESCRIPTION, IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, LIST_LIMIT_MAX, MAX_PAGE,
        ORDERS, PSP_FAILURE_REASON, PSP_ID, PSP_STATUS, REASON, RECIPIENT_SEARCH,
        RECIPIENTS_LIMIT_MAX, SORT_KEYS, STATUSES, TYPES,
        money::{AMOUNT_PATTERN, CURRENCIES, FILTER_AMOUNT_PATTERN, MAX_AMOUNT, MIN_AMOUNT},
    },
    psp::EVENT_TYPES,
};

payplane_kit::openapi_vocabulary! {
    PaymentStatus = STATUSES, "A payment status.";
    PaymentType = TYPES, "A payment type.";
    ActorType = ["user", "admin", "system", "psp"], "Who acted on a payment.";
    WebhookType = EVENT_TYPES, "A PSP event type (`payment.cancelled` is accepted too).";
}

/// A money value on input (api.md §1.6): a JSON string `^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$` or a
/// JSON number with at most two fraction digits and no exponent.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum MoneyInput {
    #[schema(example = "1000.00")]
    Text(String),
    Number(f64),
}

/// A party of a payment, from the payments service's user directory.
#[derive(ToSchema)]
pub struct UserRef {
    #[schema(format = "uuid")]
    id: String,
    email: String,
    name: String,
}

/// One state change or edit of a payment (oldest first).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    payment_id: String,
    status: PaymentStatus,
    previous_status: Option<PaymentStatus>,
    status_message: String,
    psp_transaction_id: Option<String>,
    /// The acting user's id for `user`/`admin`, otherwise `null`.
    #[schema(format = "uuid")]
    actor_id: Option<String>,
    actor_type: ActorType,
    metadata: Option<BTreeMap<String, serde_json::Value>>,
    #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
    created_at: String,
}

/// Declares `Payment` and `PaymentDetail`, which share every member but `transactions`: one
/// list, so the two schemas cannot drift apart.
macro_rules! payment {
    ($(#[$doc:meta])* $name:ident { $(#[$amount:meta])* amount, $($rest:tt)* }) => {
        $(#[$doc])*
        #[derive(ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[schema(format = "uuid")]
            id: String,
            #[schema(format = "uuid")]
            sender_id: String,
            #[schema(format = "uuid")]
            recipient_id: String,
            $(#[$amount])*
            #[schema(example = "1000.00")]
            amount: String,
            #[schema(example = "USD")]
            currency: String,
            status: PaymentStatus,
            r#type: PaymentType,
            description: String,
            metadata: Option<BTreeMap<String, serde_json::Value>>,
            psp_transaction_id: Option<String>,
            psp_status: Option<String>,
            failure_reason: Option<String>,
            #[schema(format = "date-time")]
            scheduled_for: Option<String>,
            #[schema(format = "date-time")]
            completed_at: Option<String>,
            #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
            created_at: String,
            #[schema(format = "date-time", example = "2026-03-01T10:00:00.000Z")]
            updated_at: String,
            sender: UserRef,
            recipient: UserRef,
            $($rest)*
        }
    };
}

payment! {
    /// A payment as listed (api.md §5.2), without `transactions`.
    Payment {
        /// Two fraction digits.
        amount,
    }
}

payment! {
    /// A single payment (get, create, update, status change): a Payment with its history.
    PaymentDetail { amount, transactions: Vec<Transaction>, }
}

/// `GET /api/payments` data.
#[derive(ToSchema)]
pub struct PaymentPage {
    payments: Vec<Payment>,
    pagination: Pagination,
}

/// Counts per status; every status is listed.
#[derive(ToSchema)]
pub struct StatusCounts {
    pending: i64,
    processing: i64,
    completed: i64,
    failed: i64,
    cancelled: i64,
}

/// Counts per type; every type is listed.
#[derive(ToSchema)]
pub struct TypeCounts {
    instant: i64,
    scheduled: i64,
    recurring: i64,
}

/// Count and exact sum for one currency.
#[derive(ToSchema)]
pub struct CurrencyTotal {
    count: i64,
    #[schema(example = "12000.00")]
    amount: String,
}

/// The effective report bounds.
#[derive(ToSchema)]
pub struct Period {
    #[schema(format = "date-time")]
    start: String,
    #[schema(format = "date-time")]
    end: String,
}

/// `GET /api/payments/reports` data.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    total_payments: i64,
    /// A JSON number: the plain sum across currencies (kept for client compatibility).
    #[schema(example = 15234.5)]
    total_amount: f64,
    by_status: StatusCounts,
    by_type: TypeCounts,
    /// Keyed by currency code.
    by_currency: BTreeMap<String, CurrencyTotal>,
    period: Period,
}

/// `POST /api/payments`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePayment {
    r#type: PaymentType,
    /// 0.01 ≤ amount ≤ 10 000 000.00.
    amount: MoneyInput,
    /// One of the 40 supported currencies (default `USD`).
    currency: Option<String>,
    /// 1..500 characters.
    description: String,
    /// Exactly one of `recipientId` / `recipientEmail`.
    #[schema(format = "uuid")]
    recipient_id: Option<String>,
    recipient_email: Option<String>,
    /// Compact JSON ≤ 16 384 bytes, nesting depth ≤ 10.
    metadata: Option<BTreeMap<String, serde_json::Value>>,
    /// Required for `scheduled`, optional for `recurring`, not allowed for `instant`; in the
    /// future and at most 365 days ahead.
    #[schema(format = "date-time")]
    scheduled_for: Option<String>,
}

/// `PUT /api/payments/{id}`: at least one field; rules as on create.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePayment {
    amount: Option<MoneyInput>,
    currency: Option<String>,
    description: Option<String>,
    #[schema(format = "uuid")]
    recipient_id: Option<String>,
    recipient_email: Option<String>,
    /// An object replaces the stored one; `null` clears it.
    metadata: Option<BTreeMap<String, serde_json::Value>>,
    /// Changing to `instant` clears `scheduledFor`.
    r#type: Option<PaymentType>,
    /// A timestamp, or `null` to clear it.
    #[schema(format = "date-time")]
    scheduled_for: Option<String>,
}

/// `PATCH /api/payments/{id}/status`.
#[derive(ToSchema)]
pub struct StatusChange {
    status: PaymentStatus,
    /// 1..500 characters.
    reason: Option<String>,
}

/// A PSP webhook event's payload.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookData {
    #[schema(format = "uuid")]
    payment_id: String,
    /// 1..255 characters.
    psp_transaction_id: String,
    /// 1..100; defaults to the part of `type` after the dot.
    psp_status: Option<String>,
    /// At most 1000 characters.
    failure_reason: Option<String>,
}

/// `POST /api/payments/webhooks/psp`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// The PSP's event id (1..255), the deduplication key.
    #[schema(example = "evt_0001")]
    id: String,
    r#type: WebhookType,
    #[schema(format = "date-time")]
    created_at: Option<String>,
    data: WebhookData,
}

/// Why a verified event changed nothing.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookReason {
    PaymentNotFound,
    AlreadyInStatus,
    InvalidTransition,
}

/// The outcome of a webhook event.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResult {
    event_id: String,
    duplicate: bool,
    applied: bool,
    #[schema(format = "uuid")]
    payment_id: Option<String>,
    /// The payment's status after handling (`null` if unknown).
    status: Option<PaymentStatus>,
    /// Present when `applied` is false.
    reason: Option<WebhookReason>,
}

envelope!(
    PaymentPageEnvelope,
    PaymentPage,
    "`{success: true, data: {payments, pagination}}`."
);
envelope!(
    PaymentDetailEnvelope,
    PaymentDetail,
    "`{success: true, data: Payment}` with `transactions`."
);
envelope!(
    RecipientsEnvelope,
    Vec<UserRef>,
    "`{success: true, data: [{id, email, name}]}` (a plain array)."
);
envelope!(ReportEnvelope, Report, "`{success: true, data: Report}`.");
envelope!(
    WebhookResultEnvelope,
    WebhookResult,
    "`{success: true, data: WebhookResult}`."
);

/// The error body of api.md §1.3.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A code of the catalog in api.md §1.4.
    #[schema(example = "PAYMENT_NOT_FOUND")]
    code: String,
    message: String,
    /// For `VALIDATION_ERROR`: every violation.
    details: Option<Vec<FieldError>>,
    request_id: String,
}

/// `{success: false, error: …}`.
#[derive(ToSchema)]
pub struct ErrorEnvelope {
    success: bool,
    error: ErrorBody,
}

#[utoipa::path(get, path = "/api/payments", tag = "payments", security(("bearerAuth" = [])),
    params(
        ("page" = Option<i64>, Query, description = "≥ 1, default 1"),
        ("limit" = Option<i64>, Query, description = "1..100, default 10"),
        ("sort" = Option<String>, Query, description = "`createdAt` (default), `amount` or `status`"),
        ("order" = Option<String>, Query, description = "`asc` or `desc` (default)"),
        ("status" = Option<PaymentStatus>, Query, description = "Only this status"),
        ("type" = Option<PaymentType>, Query, description = "Only this type"),
        ("startDate" = Option<String>, Query, description = "`createdAt` ≥ value: RFC 3339 or YYYY-MM-DD (alias `fromDate`)"),
        ("fromDate" = Option<String>, Query, description = "Alias of `startDate`", deprecated),
        ("endDate" = Option<String>, Query, description = "`createdAt` ≤ value; a plain date covers the whole day (alias `toDate`)"),
        ("toDate" = Option<String>, Query, description = "Alias of `endDate`", deprecated),
        ("minAmount" = Option<String>, Query, description = "Money, inclusive"),
        ("maxAmount" = Option<String>, Query, description = "Money, inclusive; ≥ `minAmount`"),
    ),
    responses(
        (status = 200, description = "Visible payments (ADMIN: all; others: sent or received)", body = PaymentPageEnvelope),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorEnvelope),
    ))]
fn list_payments() {}

#[utoipa::path(post, path = "/api/payments", tag = "payments", security(("bearerAuth" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1..255 printable ASCII; replays the stored answer for 24 h (`Idempotent-Replayed: true`)")),
    request_body = CreatePayment,
    responses(
        (status = 201, description = "Created as `pending`; emits payments.payment.created", body = PaymentDetailEnvelope),
        (status = 400, description = "VALIDATION_ERROR, INVALID_JSON or INVALID_RECIPIENT", body = ErrorEnvelope),
        (status = 404, description = "RECIPIENT_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "IDEMPOTENCY_IN_PROGRESS (Retry-After: 1)", body = ErrorEnvelope),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope),
        (status = 503, description = "SERVICE_UNAVAILABLE (auth unreachable)", body = ErrorEnvelope),
    ))]
fn create_payment() {}

#[utoipa::path(get, path = "/api/payments/recipients", tag = "payments", security(("bearerAuth" = [])),
    params(
        ("search" = Option<String>, Query, description = "1..100, case-insensitive substring of name or email"),
        ("limit" = Option<i64>, Query, description = "1..500, default 100"),
    ),
    responses(
        (status = 200, description = "Active users other than the caller, by name then email", body = RecipientsEnvelope),
    ))]
fn recipients() {}

#[utoipa::path(get, path = "/api/payments/reports", tag = "payments", security(("bearerAuth" = [])),
    params(
        ("startDate" = Option<String>, Query, description = "Default end − 30 days (alias `fromDate`)"),
        ("fromDate" = Option<String>, Query, description = "Alias of `startDate`", deprecated),
        ("endDate" = Option<String>, Query, description = "Default now (alias `toDate`)"),
        ("toDate" = Option<String>, Query, description = "Alias of `endDate`", deprecated),
    ),
    responses(
        (status = 200, description = "Aggregates (VENDOR: sent or received; ADMIN: all)", body = ReportEnvelope),
        (status = 403, description = "FORBIDDEN (CUSTOMER)", body = ErrorEnvelope),
    ))]
fn reports() {}

#[utoipa::path(post, path = "/api/payments/webhooks/psp", tag = "psp",
    params(("Psp-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex>[,v1=<hex>…]`: HMAC-SHA256 over `<t>.<raw body>`, ±300 s")),
    request_body = WebhookEvent,
    responses(
        (status = 200, description = "Recorded (also duplicates and events that change nothing)", body = WebhookResultEnvelope),
        (status = 401, description = "INVALID_SIGNATURE", body = ErrorEnvelope),
    ))]
fn psp_webhook() {}

#[utoipa::path(get, path = "/api/payments/{id}", tag = "payments", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Payment id (UUID)")),
    responses(
        (status = 200, description = "The payment with its transaction history", body = PaymentDetailEnvelope),
        (status = 404, description = "PAYMENT_NOT_FOUND (unknown, non-UUID or not visible)", body = ErrorEnvelope),
    ))]
fn get_payment() {}

#[utoipa::path(put, path = "/api/payments/{id}", tag = "payments", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Payment id (UUID)")),
    request_body = UpdatePayment,
    responses(
        (status = 200, description = "The payment after the edit (unchanged if nothing differs)", body = PaymentDetailEnvelope),
        (status = 400, description = "VALIDATION_ERROR, INVALID_JSON or INVALID_RECIPIENT", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN (the recipient)", body = ErrorEnvelope),
        (status = 404, description = "PAYMENT_NOT_FOUND or RECIPIENT_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "INVALID_STATUS (not pending)", body = ErrorEnvelope),
    ))]
fn update_payment() {}

#[utoipa::path(patch, path = "/api/payments/{id}/status", tag = "payments", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Payment id (UUID)")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The payment after the transition", body = PaymentDetailEnvelope),
        (status = 403, description = "FORBIDDEN (sender asking for anything but `cancelled`, or the recipient)", body = ErrorEnvelope),
        (status = 404, description = "PAYMENT_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "INVALID_STATUS_TRANSITION", body = ErrorEnvelope),
    ))]
fn change_status() {}

#[derive(OpenApi)]
#[openapi(
    info(title = "payplane payments service", description = "Payments, their lifecycle and the PSP webhook (api.md §5)."),
    paths(list_payments, create_payment, recipients, reports, psp_webhook, get_payment,
        update_payment, change_status),
    modifiers(&BearerAuth, &UniqueOperationIds),
    tags(
        (name = "payments", description = "Payments visible to the caller"),
        (name = "psp", description = "Payment processor notifications (signed, no bearer token)"),
    ),
)]
struct PaymentsApi;

/// The request rules the handlers enforce, from the constants they validate with.
pub fn field_rules() -> FieldRules {
    let mut table = value_rules();
    table.extend(param_rules());
    table.extend(property_rules());
    for path in ["/api/payments", "/api/payments/reports"] {
        for name in ["startDate", "fromDate", "endDate", "toDate"] {
            table.push(FieldRule::param(path, name, date_or_date_time()));
        }
    }
    table.extend(body_rules());
    FieldRules(table)
}

/// The enumerations and the money input.
fn value_rules() -> Vec<FieldRule> {
    let (min, max) = (
        MIN_AMOUNT.to_f64().unwrap_or(0.01),
        MAX_AMOUNT.to_f64().unwrap_or(10_000_000.0),
    );
    vec![
        // A JSON string or a JSON number with at most two fraction digits (api.md §1.6).
        FieldRule::schema(
            "MoneyInput",
            [Rule::Keywords(json!({"oneOf": [
                {"type": "string", "pattern": AMOUNT_PATTERN, "example": "1000.00"},
                {"type": "number", "minimum": min, "maximum": max, "multipleOf": 0.01},
            ]}))],
        ),
    ]
}

/// Query, header and path parameters.
fn param_rules() -> Vec<FieldRule> {
    vec![
        FieldRule::param(
            "/api/payments",
            "page",
            [Rule::Range {
                min: 1,
                max: MAX_PAGE,
            }],
        ),
        FieldRule::param(
            "/api/payments",
            "limit",
            [Rule::Range {
                min: 1,
                max: LIST_LIMIT_MAX,
            }],
        ),
        FieldRule::param("/api/payments", "sort", [Rule::OneOf(&SORT_KEYS)]),
        FieldRule::param("/api/payments", "order", [Rule::OneOf(&ORDERS)]),
        FieldRule::param(
            "/api/payments",
            "minAmount",
            [Rule::pattern(FILTER_AMOUNT_PATTERN)],
        ),
        FieldRule::param(
            "/api/payments",
            "maxAmount",
            [Rule::pattern(FILTER_AMOUNT_PATTERN)],
        ),
        FieldRule::param(
            "/api/payments",
            "Idempotency-Key",
            [
                Rule::Length {
                    min: 1,
                    max: IDEMPOTENCY_KEY_MAX,
                },
                Rule::pattern(IDEMPOTENCY_KEY_PATTERN),
            ],
        ),
        FieldRule::param(
            "/api/payments/recipients",
            "limit",
            [Rule::Range {
                min: 1,
                max: RECIPIENTS_LIMIT_MAX,
            }],
        ),
        FieldRule::param("/api/payments/recipients", "search", text(RECIPIENT_SEARCH)),
        FieldRule::param("/api/payments/{id}", "id", uuid()),
        FieldRule::param("/api/payments/{id}/status", "id", uuid()),
    ]
}

/// Members of the webhook event and the status change.
fn property_rules() -> Vec<FieldRule> {
    vec![
        FieldRule::property("WebhookEvent", "createdAt", date_time()),
        FieldRule::property("WebhookData", "paymentId", uuid()),
        FieldRule::property("StatusChange", "reason", text(REASON)),
        FieldRule::property("WebhookEvent", "id", text(PSP_ID)),
        FieldRule::property("WebhookData", "pspTransactionId", text(PSP_ID)),
        FieldRule::property("WebhookData", "pspStatus", text(PSP_STATUS)),
        FieldRule::property("WebhookData", "failureReason", text(PSP_FAILURE_REASON)),
    ]
}

/// The create and edit bodies.
fn body_rules() -> Vec<FieldRule> {
    let mut table = Vec::new();
    for schema in ["CreatePayment", "UpdatePayment"] {
        table.extend([
            FieldRule::property(schema, "currency", [Rule::OneOf(&CURRENCIES)]),
            FieldRule::property(schema, "description", text(DESCRIPTION)),
            FieldRule::property(schema, "recipientEmail", email()),
            // `null` reads as absent; a request names its recipient with a value.
            FieldRule::property(schema, "recipientId", rules([uuid(), vec![Rule::NotNull]])),
            FieldRule::property(schema, "recipientEmail", [Rule::NotNull]),
            FieldRule::property(schema, "scheduledFor", date_time()),
        ]);
    }
    // Exactly one of the two recipient fields (both → 400 INVALID_RECIPIENT, api.md §5.8).
    // `scheduledFor` is required for `scheduled` and not allowed for `instant` (api.md §5.8).
    // Its window (in the future, at most 365 days ahead) moves with the clock: JSON Schema
    // cannot state it, the description does.
    table.push(FieldRule::schema(
        "CreatePayment",
        [Rule::Keywords(json!({
            "oneOf": [{"required": ["recipientId"]}, {"required": ["recipientEmail"]}],
            "allOf": [
                {"if": {"properties": {"type": {"const": "scheduled"}}, "required": ["type"]},
                 "then": {"properties": {"scheduledFor": {"type": "string"}}, "required": ["scheduledFor"]}},
                {"if": {"properties": {"type": {"const": "instant"}}, "required": ["type"]},
                 "then": {"properties": {"scheduledFor": {"type": "null"}}}},
            ],
        }))],
    ));
    // At least one field to change (api.md §5.9); unknown members do not count.
    let one_of_each: Vec<serde_json::Value> = crate::routes::EDIT_FIELDS
        .iter()
        .map(|f| json!({"required": [f]}))
        .collect();
    table.push(FieldRule::schema(
        "UpdatePayment",
        [Rule::Keywords(json!({"anyOf": one_of_each}))],
    ));
    table
}

// The PSP webhook is authenticated by signature instead of being rate limited (api.md §3.3).
payplane_kit::openapi_document!(
    PaymentsApi,
    StandardResponses {
        rate_limit_exempt: &["/api/payments/webhooks/psp"],
        ..StandardResponses::RATE_LIMITED
    }
);
