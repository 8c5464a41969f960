//! What the payments service consumes (events.md §5.2): `auth.user.created|updated|deleted`
//! feed the user directory; a deletion also cancels the user's pending payments in the same
//! transaction. Login, logout and password changes are not bound here (acked as ignored).

use std::{collections::HashMap, sync::Mutex};

use payplane_bus::{
    consumer::{Handler, HandlerError, IncomingEvent},
    outbox::EventContext,
};
use payplane_events::auth::{USER_CREATED, USER_DELETED, USER_UPDATED, UserDeleted, UserSnapshot};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    cache::{Cache, Scope},
    domain::status::PaymentStatus,
    lifecycle::{self, Actor, Change, LifecycleError},
    store::{
        payments,
        users::{self, UserData},
    },
};

/// The `payments.events` handler.
pub struct UserEvents {
    cache: Cache,
    /// Cache scopes to bump once each event's transaction has committed.
    pending_bumps: Mutex<HashMap<Uuid, Vec<Scope>>>,
}

impl UserEvents {
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            pending_bumps: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, event: Uuid, scopes: Vec<Scope>) {
        if let Ok(mut map) = self.pending_bumps.lock() {
            map.insert(event, scopes);
        }
    }
}

fn transient(e: impl std::error::Error + 'static) -> HandlerError {
    HandlerError::from_error(&e)
}

fn lifecycle_err(e: LifecycleError) -> HandlerError {
    match e {
        LifecycleError::NotAllowed { .. } => HandlerError::permanent(e),
        other => HandlerError::from_error(&other),
    }
}

/// Applies one user snapshot to the directory (if newer). Public for the step-function tests.
pub async fn apply_snapshot(
    conn: &mut PgConnection,
    u: &UserSnapshot,
) -> Result<bool, HandlerError> {
    let email = u.email.to_lowercase();
    let data = UserData {
        id: u.user_id,
        email: &email,
        name: &u.name,
        role: u.role.as_str(),
        is_active: u.is_active,
        source_updated_at: u.updated_at,
    };
    // A unique-email conflict is transient: the change that frees the address is usually
    // just behind (events.md §6.2).
    users::upsert_if_newer(conn, &data).await.map_err(transient)
}

impl Handler for UserEvents {
    fn handles(&self, routing_key: &str) -> bool {
        matches!(routing_key, USER_CREATED | USER_UPDATED | USER_DELETED)
    }

    fn committed(&self, event: &IncomingEvent) {
        let scopes = self
            .pending_bumps
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&event.id));
        let cache = self.cache.clone();
        tokio::spawn(async move {
            cache.bump_directory().await;
            if let Some(scopes) = scopes {
                cache.bump(&scopes).await;
            }
        });
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        match event.routing_key.as_str() {
            USER_CREATED | USER_UPDATED => {
                // Both payloads flatten a UserSnapshot at the top level of `data`.
                let snapshot: UserSnapshot = event.payload()?;
                apply_snapshot(tx, &snapshot).await?;
                Ok(())
            }
            USER_DELETED => {
                let d: UserDeleted = event.payload()?;
                let changed = users::mark_deleted(
                    tx,
                    d.user_id,
                    &d.email.to_lowercase(),
                    &d.name,
                    d.role.as_str(),
                    d.deleted_at,
                )
                .await
                .map_err(transient)?;
                if !changed {
                    return Ok(());
                }
                let ctx = EventContext {
                    source: "payments",
                    correlation_id: event
                        .correlation_id
                        .clone()
                        .unwrap_or_else(|| event.id.to_string()),
                    causation_id: Some(event.id),
                    traceparent: event.traceparent.clone(),
                    tracestate: None,
                };
                let pending = payments::lock_pending_of_user(tx, d.user_id)
                    .await
                    .map_err(transient)?;
                let mut scopes = vec![Scope::All];
                for mut p in pending {
                    let reason = if p.sender_id == d.user_id {
                        "Sender account deleted"
                    } else {
                        "Recipient account deleted"
                    };
                    scopes.extend([
                        Scope::Payment(p.id),
                        Scope::User(p.sender_id),
                        Scope::User(p.recipient_id),
                    ]);
                    lifecycle::transition(
                        tx,
                        &ctx,
                        &mut p,
                        PaymentStatus::Cancelled,
                        Change {
                            message: Some(reason.into()),
                            failure_reason: Some(reason.into()),
                            ..Change::default()
                        },
                        Actor::SYSTEM,
                    )
                    .await
                    .map_err(lifecycle_err)?;
                }
                self.remember(event.id, scopes);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
