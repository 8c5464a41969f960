//! The transactional building blocks of the auth flows: creating a user, starting a session
//! and ending sessions, each writing its outbox events in the caller's transaction (events.md §6.1).

use chrono::{DateTime, TimeDelta, Utc};
use payplane_bus::outbox::{self, EventContext};
use payplane_events::{
    ActorType, Event,
    auth::{Origin, RevokeReason, SessionRevoked, UserCreated},
};
use payplane_kit::{ApiError, client_ip::ClientInfo, context::RequestContext};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    config::Config,
    error,
    store::{
        StoreError,
        sessions::{self, DeviceInput, NewSession, Revoked, Target},
        users::{self, NewUser, User},
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

/// Writes `event` about `subject` to the outbox in the caller's transaction (events.md §6.1);
/// a failure is an internal error.
pub async fn publish<E: Event>(
    conn: &mut PgConnection,
    ev: &EventContext,
    subject: Uuid,
    event: &E,
) -> Result<(), ApiError> {
    outbox::enqueue(conn, ev, &subject.to_string(), event)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(())
}

/// 409 `EMAIL_EXISTS` when `email` is taken, answered before the hash: a flood of duplicate
/// sign-ups costs a query each, not a core for tens of milliseconds. The insert of
/// [`create_user`] still settles races.
pub async fn refuse_taken_email(db: &PgPool, email: &str) -> Result<(), ApiError> {
    let mut conn = db.acquire().await.map_err(StoreError::at("acquire"))?;
    if users::by_email(&mut conn, email).await?.is_some() {
        return Err(error::email_exists());
    }
    Ok(())
}

/// Inserts `new` and writes its `auth.user.created` (`origin`, by `actor`); 409
/// `EMAIL_EXISTS` when the email is taken.
pub async fn create_user(
    conn: &mut PgConnection,
    ev: &EventContext,
    new: &NewUser<'_>,
    origin: Origin,
    actor: Actor,
) -> Result<User, ApiError> {
    let user = users::insert(conn, new)
        .await?
        .ok_or_else(error::email_exists)?;
    let created = UserCreated {
        user: user.snapshot(),
        origin,
        actor_id: actor.id,
        actor_type: actor.kind,
    };
    publish(conn, ev, user.id, &created).await?;
    Ok(user)
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
        publish(conn, ev, s.user_id, &event).await?;
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
