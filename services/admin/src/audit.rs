//! Writing audit entries (api.md §6.10–§6.11, events.md §4.10): every entry is stored together
//! with its `admin.audit.created` outbox row, on the caller's transaction. Also the action and
//! resource-type vocabularies.

use payplane_bus::outbox::{self, EventContext, OutboxError};
use payplane_events::{admin::AuditCreated, time};
use payplane_kit::context::RequestContext;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store::{StoreError, audit::NewEntry};

/// Every audit action, sorted alphabetically (api.md §6.11).
pub const ACTIONS: [&str; 18] = [
    "PAYMENT_CANCELLED",
    "PAYMENT_COMPLETED",
    "PAYMENT_CREATED",
    "PAYMENT_FAILED",
    "PAYMENT_PROCESSING",
    "PAYMENT_UPDATED",
    "PROFILE_UPDATED",
    "SESSION_REVOKED",
    "SYSTEM_CONFIG_CHANGED",
    "USER_CREATED",
    "USER_DELETED",
    "USER_LOGIN",
    "USER_LOGOUT",
    "USER_PASSWORD_CHANGED",
    "USER_REGISTERED",
    "USER_ROLE_CHANGED",
    "USER_STATUS_CHANGED",
    "USER_UPDATED",
];

/// The resource types an entry may name (data.md §4.2).
pub const RESOURCE_TYPES: [&str; 5] = ["user", "payment", "system_config", "session", "profile"];

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl From<AuditError> for payplane_kit::ApiError {
    fn from(e: AuditError) -> Self {
        payplane_kit::ApiError::internal(&e)
    }
}

impl From<AuditError> for payplane_bus::consumer::HandlerError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Store(s) => s.into(),
            AuditError::Outbox(o) => payplane_bus::consumer::HandlerError::from_error(&o),
        }
    }
}

/// The event context of a change caused by an admin API request.
pub fn request_events(ctx: &RequestContext) -> EventContext {
    EventContext::for_request("admin", ctx)
}

/// The acting admin and client of an API-written entry.
pub fn from_request(ctx: &RequestContext, actor: Uuid, action: &'static str) -> NewEntry {
    NewEntry {
        user_id: Some(actor),
        action,
        ip_address: ctx.client.ip,
        user_agent: ctx.client.user_agent.clone(),
        correlation_id: Some(ctx.request_id.clone()),
        ..NewEntry::default()
    }
}

/// Stores `entry` and its `admin.audit.created` event. Returns `false` (and writes nothing)
/// when the entry already exists for the same source event and action.
pub async fn record(
    conn: &mut PgConnection,
    events: &EventContext,
    entry: &NewEntry,
) -> Result<bool, AuditError> {
    let id = Uuid::new_v4();
    let at = time::now();
    if !crate::store::audit::insert(conn, id, entry, at).await? {
        return Ok(false);
    }
    let event = AuditCreated {
        audit_log_id: id,
        action: entry.action.to_owned(),
        user_id: entry.user_id,
        resource_type: entry.resource_type.map(str::to_owned),
        resource_id: entry.resource_id.clone(),
        details: entry.details.clone(),
        ip_address: entry.ip_address.map(|ip| ip.to_string()),
        user_agent: entry.user_agent.clone(),
        source_event_id: entry.source_event_id,
        created_at: at,
    };
    outbox::enqueue(conn, events, &id.to_string(), &event).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_sorted_and_well_formed() {
        let mut sorted = ACTIONS;
        sorted.sort_unstable();
        assert_eq!(sorted, ACTIONS);
        assert!(
            ACTIONS
                .iter()
                .all(|a| a.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        );
    }
}
