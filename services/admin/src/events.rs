//! The `admin.events` consumer (events.md §5.1, binds `#`): keeps the users read model and
//! writes one audit entry (with its `admin.audit.created` event) per auditable event. The
//! admin service's own `admin.*` events and unknown keys are acked as ignored.

use payplane_bus::{
    consumer::{Handler, HandlerError, IncomingEvent},
    outbox::EventContext,
};
use payplane_events::{
    auth::{
        self as a, Origin, PasswordChanged, RevokeReason, SessionRevoked, UserCreated, UserDeleted,
        UserLogin, UserLogout, UserUpdated,
    },
    payments::{
        self as p, PaymentCancelled, PaymentCompleted, PaymentCreated, PaymentFailed,
        PaymentProcessing, PaymentSnapshot, PaymentUpdated,
    },
    profile::{self as pr, ProfileUpdated},
};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use crate::{
    audit,
    store::{
        audit::NewEntry,
        users::{self, UserState},
    },
};

/// Routing keys with an effect here.
pub const HANDLED: [&str; 14] = [
    a::USER_CREATED,
    a::USER_UPDATED,
    a::USER_DELETED,
    a::USER_LOGIN,
    a::USER_LOGOUT,
    a::USER_PASSWORD_CHANGED,
    a::SESSION_REVOKED,
    p::PAYMENT_CREATED,
    p::PAYMENT_UPDATED,
    p::PAYMENT_PROCESSING,
    p::PAYMENT_COMPLETED,
    p::PAYMENT_FAILED,
    p::PAYMENT_CANCELLED,
    pr::PROFILE_UPDATED,
];

/// The handler of the `admin.events` queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdminEvents;

impl Handler for AdminEvents {
    fn handles(&self, routing_key: &str) -> bool {
        HANDLED.contains(&routing_key)
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        apply(tx, event).await
    }
}

fn produced_by(event: &IncomingEvent) -> EventContext {
    EventContext {
        source: "admin",
        correlation_id: event
            .correlation_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        causation_id: Some(event.id),
        traceparent: event.traceparent.clone(),
        tracestate: None,
    }
}

fn entry(event: &IncomingEvent, action: &'static str) -> NewEntry {
    NewEntry {
        action,
        source_event_id: Some(event.id),
        correlation_id: event.correlation_id.clone(),
        ..NewEntry::default()
    }
}

/// The entry of user `user_id`'s own `action` (`details`), made from the client address and
/// user agent `(ip, ua)` when the event names them.
fn own_action(
    event: &IncomingEvent,
    action: &'static str,
    user_id: uuid::Uuid,
    details: Value,
    (ip, ua): (Option<&String>, Option<&String>),
) -> NewEntry {
    NewEntry {
        user_id: Some(user_id),
        resource_type: Some("user"),
        resource_id: Some(user_id.to_string()),
        details: Some(details),
        ip_address: ip.and_then(|ip| ip.parse().ok()),
        user_agent: ua.map(|u| u.chars().take(512).collect()),
        ..entry(event, action)
    }
}

fn payment_entry(
    event: &IncomingEvent,
    action: &'static str,
    actor: Option<uuid::Uuid>,
    p: &PaymentSnapshot,
    extra: Map<String, Value>,
) -> NewEntry {
    let mut details = Map::new();
    details.insert("amount".into(), json!(p.amount));
    details.insert("currency".into(), json!(p.currency));
    details.insert("type".into(), json!(p.payment_type));
    details.insert("status".into(), json!(p.status));
    details.insert("senderId".into(), json!(p.sender_id));
    details.insert("recipientId".into(), json!(p.recipient_id));
    details.extend(extra);
    NewEntry {
        user_id: actor,
        resource_type: Some("payment"),
        resource_id: Some(p.payment_id.to_string()),
        details: Some(Value::Object(details)),
        ..entry(event, action)
    }
}

fn status_extra(previous: &str, reason: Option<&String>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("previousStatus".into(), json!(previous));
    m.insert("reason".into(), json!(reason));
    m
}

/// The audit entries and read-model effect of one event.
async fn apply(tx: &mut PgConnection, event: &IncomingEvent) -> Result<(), HandlerError> {
    let entries = match event.routing_key.as_str() {
        a::USER_CREATED => user_created(tx, event).await?,
        a::USER_UPDATED => user_updated(tx, event).await?,
        a::USER_DELETED => user_deleted(tx, event).await?,
        a::USER_LOGIN => user_login(tx, event).await?,
        _ => audit_only(event)?,
    };
    let ctx = produced_by(event);
    for en in &entries {
        audit::record(tx, &ctx, en).await?;
    }
    Ok(())
}

/// `USER_CREATED`: the read model, then its audit entries.
async fn user_created(
    tx: &mut PgConnection,
    event: &IncomingEvent,
) -> Result<Vec<NewEntry>, HandlerError> {
    let mut entries = Vec::new();
    let e: UserCreated = event.payload()?;
    users::upsert_if_newer(tx, &UserState::from(&e.user)).await?;
    let user = &e.user;
    let base = NewEntry {
        resource_type: Some("user"),
        resource_id: Some(user.user_id.to_string()),
        ..NewEntry::default()
    };
    match e.origin {
        Origin::SelfService => entries.push(NewEntry {
            user_id: Some(user.user_id),
            details: Some(json!({"email": user.email, "name": user.name, "role": user.role})),
            ..entry(event, "USER_REGISTERED").with_resource(&base)
        }),
        Origin::Seed | Origin::System => {
            let source = if e.origin == Origin::Seed {
                "seed"
            } else {
                "system"
            };
            entries.push(NewEntry {
                details: Some(json!({"email": user.email, "role": user.role, "source": source})),
                ..entry(event, "USER_CREATED").with_resource(&base)
            });
        }
        Origin::Admin => {}
    }
    Ok(entries)
}

/// `USER_UPDATED`: the read model, then its audit entries.
async fn user_updated(
    tx: &mut PgConnection,
    event: &IncomingEvent,
) -> Result<Vec<NewEntry>, HandlerError> {
    let mut entries = Vec::new();
    let e: UserUpdated = event.payload()?;
    users::upsert_if_newer(tx, &UserState::from(&e.user)).await?;
    if e.origin != Origin::Admin {
        let base = NewEntry {
            user_id: e.actor_id,
            resource_type: Some("user"),
            resource_id: Some(e.user.user_id.to_string()),
            ..NewEntry::default()
        };
        let changed = |f: &str| e.changed_fields.iter().any(|c| c == f);
        if changed("role") {
            entries.push(NewEntry {
                details: Some(
                    json!({"previousRole": e.previous.get("role"), "newRole": e.user.role}),
                ),
                ..entry(event, "USER_ROLE_CHANGED").with_resource(&base)
            });
        }
        if changed("isActive") {
            entries.push(NewEntry {
                details: Some(json!({"isActive": e.user.is_active,
                        "previousIsActive": e.previous.get("isActive"), "reason": e.reason})),
                ..entry(event, "USER_STATUS_CHANGED").with_resource(&base)
            });
        }
        let fields: Vec<&String> = e
            .changed_fields
            .iter()
            .filter(|f| *f == "email" || *f == "name")
            .collect();
        if !fields.is_empty() {
            let previous: Map<String, Value> = fields
                .iter()
                .filter_map(|f| e.previous.get(*f).map(|v| ((*f).clone(), v.clone())))
                .collect();
            entries.push(NewEntry {
                details: Some(json!({"updatedFields": fields, "previous": previous})),
                ..entry(event, "USER_UPDATED").with_resource(&base)
            });
        }
    }
    Ok(entries)
}

/// `USER_DELETED`: the read model, then its audit entries.
async fn user_deleted(
    tx: &mut PgConnection,
    event: &IncomingEvent,
) -> Result<Vec<NewEntry>, HandlerError> {
    let e: UserDeleted = event.payload()?;
    users::mark_deleted(
        tx,
        e.user_id,
        &e.email,
        &e.name,
        e.role.as_str(),
        e.deleted_at,
    )
    .await?;
    // An admin's deletion is audited by the admin service itself.
    let audited = (e.origin != Origin::Admin).then(|| NewEntry {
        user_id: e.actor_id,
        resource_type: Some("user"),
        resource_id: Some(e.user_id.to_string()),
        details: Some(json!({"deletedUserEmail": e.email, "role": e.role})),
        ..entry(event, "USER_DELETED")
    });
    Ok(audited.into_iter().collect())
}

/// `USER_LOGIN`: the read model, then its audit entries.
async fn user_login(
    tx: &mut PgConnection,
    event: &IncomingEvent,
) -> Result<Vec<NewEntry>, HandlerError> {
    let e: UserLogin = event.payload()?;
    users::set_last_login(tx, e.user_id, e.login_at).await?;
    let details = json!({"email": e.email, "sessionId": e.session_id,
        "deviceId": e.device_id, "deviceName": e.device_name, "deviceType": e.device_type});
    let from = (e.ip_address.as_ref(), e.user_agent.as_ref());
    Ok(vec![own_action(
        event,
        "USER_LOGIN",
        e.user_id,
        details,
        from,
    )])
}

/// The audit entries of an event that changes no read model (pure).
fn audit_only(event: &IncomingEvent) -> Result<Vec<NewEntry>, HandlerError> {
    let mut entries = Vec::new();
    match event.routing_key.as_str() {
        a::USER_LOGOUT => {
            let e: UserLogout = event.payload()?;
            let details = json!({"email": e.email, "sessionId": e.session_id,
                "allDevices": e.all_devices, "revokedSessionCount": e.revoked_session_ids.len()});
            let from = (e.ip_address.as_ref(), e.user_agent.as_ref());
            entries.push(own_action(event, "USER_LOGOUT", e.user_id, details, from));
        }
        a::USER_PASSWORD_CHANGED => {
            let e: PasswordChanged = event.payload()?;
            let details = json!({"email": e.email, "revokedSessionCount": e.revoked_session_count});
            let from = (e.ip_address.as_ref(), e.user_agent.as_ref());
            entries.push(own_action(
                event,
                "USER_PASSWORD_CHANGED",
                e.user_id,
                details,
                from,
            ));
        }
        a::SESSION_REVOKED => {
            let e: SessionRevoked = event.payload()?;
            if !matches!(e.reason, RevokeReason::Logout | RevokeReason::LogoutAll) {
                entries.push(NewEntry {
                    user_id: e.actor_id,
                    resource_type: Some("session"),
                    resource_id: Some(e.session_id.to_string()),
                    details: Some(json!({"userId": e.user_id, "deviceId": e.device_id,
                        "reason": e.reason.as_str()})),
                    ..entry(event, "SESSION_REVOKED")
                });
            }
        }
        pr::PROFILE_UPDATED => {
            let e: ProfileUpdated = event.payload()?;
            entries.push(NewEntry {
                user_id: Some(e.user_id),
                resource_type: Some("profile"),
                resource_id: Some(e.profile_id.to_string()),
                details: Some(json!({"changedFields": e.changed_fields,
                    "changedPreferences": e.changed_preferences})),
                ..entry(event, "PROFILE_UPDATED")
            });
        }
        p::PAYMENT_CREATED
        | p::PAYMENT_UPDATED
        | p::PAYMENT_PROCESSING
        | p::PAYMENT_COMPLETED
        | p::PAYMENT_FAILED
        | p::PAYMENT_CANCELLED => return payment_audit(event),
        _ => {}
    }
    Ok(entries)
}

/// The audit entry of a payment event (pure).
fn payment_audit(event: &IncomingEvent) -> Result<Vec<NewEntry>, HandlerError> {
    let (action, actor, payment, extra) = match event.routing_key.as_str() {
        p::PAYMENT_CREATED => {
            let e: PaymentCreated = event.payload()?;
            ("PAYMENT_CREATED", e.actor_id, e.payment, Map::new())
        }
        p::PAYMENT_UPDATED => {
            let e: PaymentUpdated = event.payload()?;
            let mut extra = Map::new();
            extra.insert("changedFields".into(), json!(e.changed_fields));
            extra.insert("previous".into(), Value::Object(e.previous));
            ("PAYMENT_UPDATED", e.actor_id, e.payment, extra)
        }
        p::PAYMENT_PROCESSING => {
            let e: PaymentProcessing = event.payload()?;
            let extra = status_extra(&e.previous_status, e.payment.failure_reason.as_ref());
            ("PAYMENT_PROCESSING", e.actor_id, e.payment, extra)
        }
        p::PAYMENT_COMPLETED => {
            let e: PaymentCompleted = event.payload()?;
            let extra = status_extra(&e.previous_status, None);
            ("PAYMENT_COMPLETED", e.actor_id, e.payment, extra)
        }
        p::PAYMENT_FAILED => {
            let e: PaymentFailed = event.payload()?;
            let extra = status_extra(&e.previous_status, e.payment.failure_reason.as_ref());
            ("PAYMENT_FAILED", e.actor_id, e.payment, extra)
        }
        p::PAYMENT_CANCELLED => {
            let e: PaymentCancelled = event.payload()?;
            let reason = e.reason.as_ref().or(e.payment.failure_reason.as_ref());
            let extra = status_extra(&e.previous_status, reason);
            ("PAYMENT_CANCELLED", e.actor_id, e.payment, extra)
        }
        _ => return Ok(Vec::new()),
    };
    Ok(vec![payment_entry(event, action, actor, &payment, extra)])
}

impl NewEntry {
    /// Copies the resource and actor of `base` into `self`.
    fn with_resource(mut self, base: &NewEntry) -> Self {
        self.resource_type = base.resource_type;
        self.resource_id.clone_from(&base.resource_id);
        if self.user_id.is_none() {
            self.user_id = base.user_id;
        }
        self
    }
}
