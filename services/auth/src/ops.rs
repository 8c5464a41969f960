//! Operator commands on the auth database: the demo `seed` (api.md §10) and
//! `bootstrap-admin` (§10.1). Used by the `payplane` CLI.

use payplane_bus::outbox::{self, EventContext};
use payplane_events::{
    ActorType,
    auth::{Origin, Role, UserCreated},
    time,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    password::{self, Hasher},
    store::{Ctx, StoreError, users},
};

pub const DEMO_PASSWORD: &str = "TestPassword123!";

/// The three demo accounts with their fixed ids (data.md §9).
pub const DEMO_USERS: [(Uuid, &str, &str, Role); 3] = [
    (
        Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000001),
        "customer@example.com",
        "Customer User",
        Role::Customer,
    ),
    (
        Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000002),
        "vendor@example.com",
        "Vendor User",
        Role::Vendor,
    ),
    (
        Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000003),
        "admin@example.com",
        "Admin User",
        Role::Admin,
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Invalid(String),
    #[error("an active ADMIN already exists")]
    AdminExists,
    #[error("email {0} is already taken")]
    EmailTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error(transparent)]
    Outbox(#[from] outbox::OutboxError),
}

fn system_context() -> EventContext {
    EventContext {
        source: "auth",
        correlation_id: Uuid::new_v4().to_string(),
        causation_id: None,
        traceparent: None,
        tracestate: None,
    }
}

/// Inserts `new` and writes its `auth.user.created` (`origin`, by the system); `EmailTaken`
/// when the email is in use.
async fn create(
    conn: &mut PgConnection,
    ev: &EventContext,
    new: &users::NewUser<'_>,
    origin: Origin,
) -> Result<users::User, OpsError> {
    let user = users::insert(conn, new)
        .await?
        .ok_or_else(|| OpsError::EmailTaken(new.email.to_owned()))?;
    let event = UserCreated {
        user: user.snapshot(),
        origin,
        actor_id: None,
        actor_type: ActorType::System,
    };
    outbox::enqueue(conn, ev, &user.id.to_string(), &event).await?;
    Ok(user)
}

/// Creates or resets the demo users; returns them with whether each was newly created.
pub async fn seed_users(
    pool: &PgPool,
    hasher: &Hasher,
) -> Result<Vec<(users::User, bool)>, OpsError> {
    let hash = hasher.hash(DEMO_PASSWORD).await?;
    let mut tx = pool.begin().await.ctx("begin seed")?;
    let mut out = Vec::new();
    let ev = system_context();
    for (id, email, name, role) in DEMO_USERS {
        let now = time::now();
        // By email, else by the demo account's fixed id: a demo user whose email was edited
        // (an admin's PATCH in a dev session) is reset, not a reason to refuse seeding.
        let found = match users::by_email(&mut tx, email).await? {
            Some(u) => Some(u),
            None => users::lock(&mut tx, id).await?,
        };
        if let Some(existing) = found {
            let existing = users::lock(&mut tx, existing.id).await?.unwrap_or(existing);
            let mut next = existing.clone();
            if next.email != email {
                next.email = email.to_owned();
                next.token_version += 1;
            }
            next.name = name.to_owned();
            next.role = role;
            next.is_active = true;
            next.email_verified = true;
            next.password_hash.clone_from(&hash);
            next.deactivated_at = None;
            next.deactivation_reason = None;
            if existing.name != next.name || existing.role != next.role || !existing.is_active {
                next.token_version += 1;
            }
            next.updated_at = now;
            let saved = users::save(&mut tx, &next)
                .await?
                .ok_or_else(|| OpsError::EmailTaken(email.into()))?;
            out.push((saved, false));
        } else {
            let new = users::NewUser {
                id,
                email,
                password_hash: &hash,
                name,
                role,
                email_verified: true,
                now,
            };
            let user = create(&mut tx, &ev, &new, Origin::Seed).await?;
            out.push((user, true));
        }
    }
    tx.commit().await.ctx("commit seed")?;
    Ok(out)
}

/// Creates the first ADMIN; refuses if an active ADMIN exists or the email is taken.
pub async fn bootstrap_admin(
    pool: &PgPool,
    hasher: &Hasher,
    email: &str,
    name: &str,
    password: &str,
) -> Result<users::User, OpsError> {
    let email = payplane_kit::validate::email(email)
        .map_err(|m| OpsError::Invalid(format!("email {m}")))?;
    let name = payplane_kit::validate::normalize_text(name, false)
        .map_err(|m| OpsError::Invalid(format!("name {m}")))?;
    payplane_kit::validate::check_len(&name, 1, 255)
        .map_err(|m| OpsError::Invalid(format!("name {m}")))?;
    password::check_rule(password).map_err(|m| OpsError::Invalid(format!("password {m}")))?;
    let hash = hasher.hash(password).await?;
    let mut tx = pool.begin().await.ctx("begin bootstrap")?;
    if !users::lock_active_admins(&mut tx).await?.is_empty() {
        return Err(OpsError::AdminExists);
    }
    let new = users::NewUser::unverified(&email, &hash, &name, Role::Admin, time::now());
    let user = create(&mut tx, &system_context(), &new, Origin::System).await?;
    tx.commit().await.ctx("commit bootstrap")?;
    Ok(user)
}
