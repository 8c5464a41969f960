//! Payload of `profile.profile.updated` (events.md §4.12). Pure data; values are deliberately
//! absent (personal data, avatars).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ActorType, Event, time};

pub const PROFILE_UPDATED: &str = "profile.profile.updated";

/// What `changedFields` can name (events.md §4.12).
pub const PROFILE_FIELDS: [&str; 5] = ["phone", "address", "bio", "avatarUrl", "preferences"];
/// What `changedPreferences` can name (events.md §4.12).
pub const PREFERENCE_FIELDS: [&str; 5] =
    ["theme", "language", "currency", "timezone", "notifications"];

/// `profile.profile.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ProfileUpdated {
    pub user_id: Uuid,
    pub profile_id: Uuid,
    /// Subset of `phone`, `address`, `bio`, `avatarUrl`, `preferences`; never empty (the event
    /// is only emitted when something changed).
    #[schemars(extend(
        "items" = {"type": "string", "enum": PROFILE_FIELDS},
        "minItems" = 1,
        "uniqueItems" = true,
    ))]
    pub changed_fields: Vec<String>,
    /// Subset of `theme`, `language`, `currency`, `timezone`, `notifications`; empty unless
    /// `preferences` changed.
    #[schemars(extend(
        "items" = {"type": "string", "enum": PREFERENCE_FIELDS},
        "uniqueItems" = true,
    ))]
    pub changed_preferences: Vec<String>,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[serde(with = "time::millis")]
    #[schemars(with = "time::Timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Event for ProfileUpdated {
    const ROUTING_KEY: &'static str = PROFILE_UPDATED;
    const AGGREGATE_TYPE: &'static str = "profile";
}
