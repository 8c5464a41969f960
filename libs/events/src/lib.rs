//! Wire types shared by every producer and consumer of payplane events (events.md §2–§4).
//! Pure data, no I/O, so producers and consumers cannot disagree on names. Each payload type
//! also derives its JSON Schema (events.md §7.6, see [`schema`]) from the same attributes.

pub mod admin;
pub mod auth;
pub mod payments;
pub mod profile;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod topology;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only major version this crate speaks (events.md §7).
pub const VERSION: &str = "1";

/// Every routing key of the catalog (events.md §4.1).
pub const ROUTING_KEYS: [&str; 16] = [
    auth::USER_CREATED,
    auth::USER_UPDATED,
    auth::USER_DELETED,
    auth::USER_LOGIN,
    auth::USER_LOGOUT,
    auth::USER_PASSWORD_CHANGED,
    auth::SESSION_REVOKED,
    payments::PAYMENT_CREATED,
    payments::PAYMENT_UPDATED,
    payments::PAYMENT_PROCESSING,
    payments::PAYMENT_COMPLETED,
    payments::PAYMENT_FAILED,
    payments::PAYMENT_CANCELLED,
    admin::AUDIT_CREATED,
    admin::CONFIG_UPDATED,
    profile::PROFILE_UPDATED,
];

/// Who acted (events.md §3, actor fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    User,
    Admin,
    System,
    Psp,
}

/// A payload that belongs to exactly one routing key.
pub trait Event: Serialize {
    /// The routing key, which is also the envelope `type`.
    const ROUTING_KEY: &'static str;
    /// The aggregate type recorded in the outbox (`user`, `payment`, …).
    const AGGREGATE_TYPE: &'static str;
}

/// The message body of every event (events.md §2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: String,
    #[serde(with = "time::millis")]
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub source: String,
    pub correlation_id: String,
    /// Omitted when the cause is an HTTP request or a timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    pub data: T,
}

#[cfg(test)]
mod examples {
    use serde::{Serialize, de::DeserializeOwned};

    use super::*;

    fn round_trip<T: Event + DeserializeOwned + Serialize>(json: &str) {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let typed: T = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            value,
            "{}",
            T::ROUTING_KEY
        );
    }

    macro_rules! example {
        ($ty:ty, $key:literal) => {
            round_trip::<$ty>(include_str!(concat!("../examples-json/", $key, ".json")))
        };
    }

    #[test]
    fn every_routing_key_has_an_example_matching_its_type() {
        example!(auth::UserCreated, "auth.user.created");
        example!(auth::UserUpdated, "auth.user.updated");
        example!(auth::UserDeleted, "auth.user.deleted");
        example!(auth::UserLogin, "auth.user.login");
        example!(auth::UserLogout, "auth.user.logout");
        example!(auth::PasswordChanged, "auth.user.password_changed");
        example!(auth::SessionRevoked, "auth.session.revoked");
        example!(payments::PaymentCreated, "payments.payment.created");
        example!(payments::PaymentUpdated, "payments.payment.updated");
        example!(payments::PaymentProcessing, "payments.payment.processing");
        example!(payments::PaymentCompleted, "payments.payment.completed");
        example!(payments::PaymentFailed, "payments.payment.failed");
        example!(payments::PaymentCancelled, "payments.payment.cancelled");
        example!(admin::AuditCreated, "admin.audit.created");
        example!(admin::ConfigUpdated, "admin.config.updated");
        example!(profile::ProfileUpdated, "profile.profile.updated");
        assert_eq!(ROUTING_KEYS.len(), 16);
    }
}
