//! Payload of `profile.profile.updated` (events.md §4.12). Pure data; values are deliberately
//! absent (personal data, avatars).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ActorType, Event, time};

pub const PROFILE_UPDATED: &str = "profile.profile.updated";

/// `profile.profile.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileUpdated {
    pub user_id: Uuid,
    pub profile_id: Uuid,
    /// Subset of `phone`, `address`, `bio`, `avatarUrl`, `preferences`.
    pub changed_fields: Vec<String>,
    /// Subset of `theme`, `language`, `currency`, `timezone`, `notifications`.
    pub changed_preferences: Vec<String>,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    #[serde(with = "time::millis")]
    pub updated_at: DateTime<Utc>,
}

impl Event for ProfileUpdated {
    const ROUTING_KEY: &'static str = PROFILE_UPDATED;
    const AGGREGATE_TYPE: &'static str = "profile";
}
