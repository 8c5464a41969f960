//! What the profile service publishes (`profile.profile.updated`, events.md §4.12) and the
//! consumer of `profile.events` (events.md §5.3): a profile is created on `auth.user.created`
//! and deleted on `auth.user.deleted`; a deletion is final.

use payplane_bus::{
    consumer::{Handler, HandlerError, IncomingEvent},
    outbox::EventContext,
};
use payplane_events::auth::{USER_CREATED, USER_DELETED, USER_UPDATED, UserCreated, UserDeleted};
use payplane_kit::context::RequestContext;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{cache::Cache, store::profiles};

/// The `source` of every event this service produces.
pub const SOURCE: &str = "profile";

/// The context of events caused by a request.
pub fn event_context(ctx: &RequestContext) -> EventContext {
    EventContext::for_request(SOURCE, ctx)
}

/// The consumer of `profile.events`.
pub struct UserEvents {
    pub cache: Cache,
}

fn user_id_of(event: &IncomingEvent) -> Option<Uuid> {
    let data: serde_json::Value = event.payload().ok()?;
    data.get("userId")
        .or_else(|| data.get("user").and_then(|u| u.get("userId")))
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
}

impl Handler for UserEvents {
    fn handles(&self, routing_key: &str) -> bool {
        matches!(routing_key, USER_CREATED | USER_UPDATED | USER_DELETED)
    }

    fn committed(&self, event: &IncomingEvent) {
        // A deletion must not leave the old profile readable from the cache.
        if event.routing_key == USER_DELETED
            && let Some(user_id) = user_id_of(event)
        {
            let cache = self.cache.clone();
            tokio::spawn(async move { cache.bump(user_id).await });
        }
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        // Whether a row changed does not matter: a replayed event is a no-op either way.
        let stored = match event.routing_key.as_str() {
            USER_CREATED => {
                let data: UserCreated = event.payload()?;
                profiles::create_if_missing(tx, data.user.user_id).await
            }
            USER_DELETED => {
                let data: UserDeleted = event.payload()?;
                profiles::delete_user(tx, data.user_id, data.deleted_at).await
            }
            // No profile field follows account changes in this version (events.md §5.3).
            _ => return Ok(()),
        };
        stored.map_err(|e| HandlerError::from_error(&e))?;
        Ok(())
    }
}
