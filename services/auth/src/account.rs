//! The transactional building blocks of the auth flows: starting a session and ending
//! sessions, each writing its outbox events in the caller's transaction (events.md §6.1).

use chrono::{DateTime, TimeDelta, Utc};
use payplane_bus::outbox::{self, EventContext};
use payplane_events::{
    ActorType,
    auth::{RevokeReason, SessionRevoked},
};
use payplane_kit::{ApiError, client_ip::ClientInfo, context::RequestContext};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    config::Config,
    store::{
        sessions::{self, DeviceInput, NewSession, Revoked, Target},
        users::User,
    },
    tokens,
};

/// A user may hold at most this many active sessions (api.md §2.3).
pub const MAX_SESSIONS: i64 = 20;

/// Who ended something.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub kind: ActorType,
}

impl Actor {
    pub fn user(id: Uuid) -> Self {
        Self {
            id: Some(id),
            kind: ActorType::User,
        }
    }
    pub fn admin(id: Uuid) -> Self {
        Self {
            id: Some(id),
            kind: ActorType::Admin,
        }
    }
    pub fn system() -> Self {
        Self {
            id: None,
            kind: ActorType::System,
        }
    }
}

/// The event context of a request.
pub fn event_context(ctx: &RequestContext) -> EventContext {
    EventContext::for_request("auth", ctx)
}

fn to_delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::days(30))
}

/// Ends the targeted sessions and writes one `auth.session.revoked` per active one.
/// The caller writes the Redis markers after commit.
pub async fn end_sessions(
    conn: &mut PgConnection,
    ev: &EventContext,
    target: &Target<'_>,
    reason: RevokeReason,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Vec<Revoked>, ApiError> {
    let ended = sessions::revoke(conn, target, reason, now).await?;
    for s in ended.iter().filter(|s| s.was_active) {
        let event = SessionRevoked {
            user_id: s.user_id,
            session_id: s.id,
            device_id: Some(s.device_id.clone()),
            reason,
            actor_id: actor.id,
            actor_type: actor.kind,
            revoked_at: now,
        };
        outbox::enqueue(conn, ev, &s.user_id.to_string(), &event)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    Ok(ended.into_iter().filter(|s| s.was_active).collect())
}

/// A freshly started session.
#[derive(Debug, Clone)]
pub struct Started {
    pub session_id: Uuid,
    pub refresh_token: String,
    pub device_id: String,
    /// Sessions ended to make room (replaced on this device, or beyond the limit).
    pub ended: Vec<Revoked>,
}

/// Starts a session for `user` on `device` (login or registration): replaces the device's
/// previous session, records the device, issues the first refresh token, applies the limit.
pub async fn start_session(
    conn: &mut PgConnection,
    cfg: &Config,
    ev: &EventContext,
    user: &User,
    device: &DeviceInput,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Started, ApiError> {
    let mut ended = end_sessions(
        conn,
        ev,
        &Target::Device {
            user_id: user.id,
            device_id: &device.device_id,
        },
        RevokeReason::Replaced,
        Actor::user(user.id),
        now,
    )
    .await?;
    let device_ref = sessions::upsert_device(
        conn,
        user.id,
        device,
        client.ip,
        client.user_agent.as_deref(),
        now,
    )
    .await?;
    let session_id = Uuid::new_v4();
    sessions::create(
        conn,
        &NewSession {
            id: session_id,
            user_id: user.id,
            device_ref,
            device_id: &device.device_id,
            ip: client.ip,
            user_agent: client.user_agent.as_deref(),
            now,
            expires_at: now + to_delta(cfg.session_max_lifetime),
        },
    )
    .await?;
    let (refresh_token, hash) = tokens::refresh_token()?;
    sessions::insert_refresh(
        conn,
        Uuid::new_v4(),
        session_id,
        &hash,
        now,
        now + to_delta(cfg.refresh_ttl),
    )
    .await?;
    let evicted = end_sessions(
        conn,
        ev,
        &Target::BeyondLimit {
            user_id: user.id,
            keep: MAX_SESSIONS,
        },
        RevokeReason::SessionLimit,
        Actor::system(),
        now,
    )
    .await?;
    ended.extend(evicted);
    Ok(Started {
        session_id,
        refresh_token,
        device_id: device.device_id.clone(),
        ended,
    })
}
