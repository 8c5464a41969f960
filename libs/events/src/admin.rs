//! Payloads of the `admin.*` routing keys (events.md §4.10–§4.11). Pure data.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ActorType, Event, time};

pub const AUDIT_CREATED: &str = "admin.audit.created";
pub const CONFIG_UPDATED: &str = "admin.config.updated";

/// `admin.audit.created`, written with every audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AuditCreated {
    pub audit_log_id: Uuid,
    pub action: String,
    pub user_id: Option<Uuid>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// An object, or `null` (events.md §4.10).
    // The Rust type stays `Value` (producers build it with `json!`); the schema says "object".
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub details: Option<serde_json::Value>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The event the entry was derived from; `null` for entries written by the admin API.
    pub source_event_id: Option<Uuid>,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub created_at: DateTime<Utc>,
}

impl Event for AuditCreated {
    const ROUTING_KEY: &'static str = AUDIT_CREATED;
    const AGGREGATE_TYPE: &'static str = "audit";
}

/// What happened to a config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConfigOperation {
    Created,
    Updated,
    Deleted,
}

/// `admin.config.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ConfigUpdated {
    pub key: String,
    pub operation: ConfigOperation,
    /// `null` when deleted.
    pub value: Option<serde_json::Value>,
    /// `null` when created.
    pub previous_value: Option<serde_json::Value>,
    pub description: Option<String>,
    pub updated_by: Uuid,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Event for ConfigUpdated {
    const ROUTING_KEY: &'static str = CONFIG_UPDATED;
    const AGGREGATE_TYPE: &'static str = "config";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_updated_keeps_null_fields() {
        let event = ConfigUpdated {
            key: "fees.percent".into(),
            operation: ConfigOperation::Created,
            value: Some(serde_json::json!(1.5)),
            previous_value: None,
            description: None,
            updated_by: Uuid::nil(),
            actor_id: Some(Uuid::nil()),
            actor_type: ActorType::Admin,
            updated_at: time::now(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["operation"], "created");
        assert_eq!(json["previousValue"], serde_json::Value::Null);
        assert!(json.as_object().unwrap().contains_key("description"));
        assert_eq!(
            serde_json::from_value::<ConfigUpdated>(json).unwrap(),
            event
        );
    }
}
