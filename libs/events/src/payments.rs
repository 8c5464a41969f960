//! Payloads of the `payments.payment.*` routing keys (events.md §3 PaymentSnapshot, §4.9).
//! Pure data. Amounts are two-decimal strings (`"1000.00"`) so this crate stays serde-only.

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ActorType, Event, time};

pub const PAYMENT_CREATED: &str = "payments.payment.created";
pub const PAYMENT_UPDATED: &str = "payments.payment.updated";
pub const PAYMENT_PROCESSING: &str = "payments.payment.processing";
pub const PAYMENT_COMPLETED: &str = "payments.payment.completed";
pub const PAYMENT_FAILED: &str = "payments.payment.failed";
pub const PAYMENT_CANCELLED: &str = "payments.payment.cancelled";

/// Payment statuses (api.md §5.10), for the schemas of `status` and `previousStatus`.
pub const STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "cancelled"];
/// Payment types (api.md §5), for the schema of `type`.
pub const TYPES: [&str; 3] = ["instant", "scheduled", "recurring"];
/// The fields a `payments.payment.updated` can name in `changedFields` (events.md §4.9).
pub const UPDATABLE_FIELDS: [&str; 7] = [
    "amount",
    "currency",
    "description",
    "recipientId",
    "metadata",
    "type",
    "scheduledFor",
];
/// The keys `previous` can hold: the updatable fields but `metadata`, which is named only.
pub const PREVIOUS_FIELDS: [&str; 6] = [
    "amount",
    "currency",
    "description",
    "recipientId",
    "type",
    "scheduledFor",
];

/// A schema transform pinning `status` to the one value an event can carry (events.md §4.9:
/// `created` and `updated` happen while `pending`, every other event is named after the
/// status it reports).
fn status_is(status: &'static str) -> impl Fn(&mut Schema) {
    move |schema: &mut Schema| {
        if let Some(field) = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut("status"))
            .and_then(serde_json::Value::as_object_mut)
        {
            field.remove("enum");
            field.insert("const".into(), status.into());
        }
    }
}

/// State of a payment after a change (events.md §3). `status` and `type` stay strings so a
/// consumer never fails on a new enum value (events.md §7.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSnapshot {
    pub payment_id: Uuid,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    /// Decimal string with two fraction digits.
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]*)\.[0-9]{2}$"))]
    pub amount: String,
    /// ISO 4217 code.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    #[schemars(extend("enum" = STATUSES))]
    pub status: String,
    #[serde(rename = "type")]
    #[schemars(extend("enum" = TYPES))]
    pub payment_type: String,
    pub description: String,
    #[serde(with = "time::millis_opt")]
    #[schemars(with = "Option<time::Timestamp>")]
    pub scheduled_for: Option<DateTime<Utc>>,
    pub psp_transaction_id: Option<String>,
    pub psp_status: Option<String>,
    pub failure_reason: Option<String>,
    #[serde(with = "time::millis_opt")]
    #[schemars(with = "Option<time::Timestamp>")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// `payments.payment.created` (`status` is `pending`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = status_is("pending"))]
pub struct PaymentCreated {
    #[serde(flatten)]
    pub payment: PaymentSnapshot,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
}

/// `payments.payment.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = status_is("pending"))]
pub struct PaymentUpdated {
    #[serde(flatten)]
    pub payment: PaymentSnapshot,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    /// Subset of `amount`, `currency`, `description`, `recipientId`, `metadata`, `type`, `scheduledFor`.
    #[schemars(extend(
        "items" = {"type": "string", "enum": UPDATABLE_FIELDS},
        "minItems" = 1,
        "uniqueItems" = true,
    ))]
    pub changed_fields: Vec<String>,
    /// Old values of the changed fields (`metadata` has no entry).
    #[schemars(extend("propertyNames" = {"enum": PREVIOUS_FIELDS}))]
    pub previous: serde_json::Map<String, serde_json::Value>,
}

/// `payments.payment.processing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = status_is("processing"))]
pub struct PaymentProcessing {
    #[serde(flatten)]
    pub payment: PaymentSnapshot,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[schemars(extend("enum" = STATUSES))]
    pub previous_status: String,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub processing_at: DateTime<Utc>,
}

/// `payments.payment.completed` (`completedAt` is in the snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = status_is("completed"))]
pub struct PaymentCompleted {
    #[serde(flatten)]
    pub payment: PaymentSnapshot,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[schemars(extend("enum" = STATUSES))]
    pub previous_status: String,
}

/// `payments.payment.failed` (`failureReason` is in the snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = status_is("failed"))]
pub struct PaymentFailed {
    #[serde(flatten)]
    pub payment: PaymentSnapshot,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[schemars(extend("enum" = STATUSES))]
    pub previous_status: String,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub failed_at: DateTime<Utc>,
}

/// `payments.payment.cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = status_is("cancelled"))]
pub struct PaymentCancelled {
    #[serde(flatten)]
    pub payment: PaymentSnapshot,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[schemars(extend("enum" = STATUSES))]
    pub previous_status: String,
    /// Same text as `failureReason`.
    pub reason: Option<String>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub cancelled_at: DateTime<Utc>,
}

macro_rules! payment_event {
    ($($ty:ty => $key:expr),* $(,)?) => {$(
        impl Event for $ty {
            const ROUTING_KEY: &'static str = $key;
            const AGGREGATE_TYPE: &'static str = "payment";
        }
    )*};
}

payment_event! {
    PaymentCreated => PAYMENT_CREATED,
    PaymentUpdated => PAYMENT_UPDATED,
    PaymentProcessing => PAYMENT_PROCESSING,
    PaymentCompleted => PAYMENT_COMPLETED,
    PaymentFailed => PAYMENT_FAILED,
    PaymentCancelled => PAYMENT_CANCELLED,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn example_snapshot() -> PaymentSnapshot {
        let at =
            time::truncate(chrono::DateTime::from_timestamp(1_772_359_203, 512_000_000).unwrap());
        PaymentSnapshot {
            payment_id: Uuid::nil(),
            sender_id: Uuid::nil(),
            recipient_id: Uuid::nil(),
            amount: "1000.00".into(),
            currency: "EUR".into(),
            status: "completed".into(),
            payment_type: "instant".into(),
            description: "rent".into(),
            scheduled_for: None,
            psp_transaction_id: None,
            psp_status: None,
            failure_reason: None,
            completed_at: Some(at),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn completed_has_every_key_with_nulls_and_round_trips() {
        let event = PaymentCompleted {
            payment: example_snapshot(),
            actor_id: None,
            actor_type: ActorType::Psp,
            previous_status: "processing".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        for key in [
            "paymentId",
            "senderId",
            "recipientId",
            "amount",
            "currency",
            "status",
            "type",
            "description",
            "scheduledFor",
            "pspTransactionId",
            "pspStatus",
            "failureReason",
            "completedAt",
            "createdAt",
            "updatedAt",
            "actorId",
            "actorType",
            "previousStatus",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["scheduledFor"], serde_json::Value::Null);
        assert_eq!(json["completedAt"], "2026-03-01T10:00:03.512Z");
        assert_eq!(json["actorType"], "psp");
        let back: PaymentCompleted = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
