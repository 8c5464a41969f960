//! Internal user management for admin and payments (api.md §8.1). Auth stays the source of
//! truth: every change here bumps the token version where the contract says so and emits the
//! `auth.user.*` events in the same transaction.

use axum::{
    extract::{Path, RawQuery, State},
    response::IntoResponse,
};
use http::StatusCode;
use payplane_authn::service::ServiceCaller;
use payplane_events::{
    ActorType,
    auth::{Origin, RevokeReason, Role, UserDeleted, UserUpdated},
    time,
};
use payplane_kit::{
    ApiError, Created, Data,
    context::RequestContext,
    json::JsonObject,
    query::QueryParams,
    signup::Signup,
    validate::{Fields, Text},
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{
    account::{self, Actor, event_context},
    app::AppState,
    error,
    store::{StoreError, sessions::Target, users},
    views::internal_user,
};

const ROLES: [&str; 3] = ["ADMIN", "CUSTOMER", "VENDOR"];

fn begin_err(source: sqlx::Error) -> StoreError {
    StoreError::new("begin", source)
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| error::user_not_found())
}

/// What every admin-only change of a user starts from: the caller is admin, and the acting
/// admin (`X-Actor-Id`) and the target user's id.
fn admin_change(caller: &ServiceCaller, raw_id: &str) -> Result<(Uuid, Uuid), ApiError> {
    caller.allow(&["admin"])?;
    let actor = caller.actor_id()?;
    Ok((actor, user_id(raw_id)?))
}

/// Begins the change's transaction with the user `id` locked; 404 when there is none.
async fn lock_user(
    s: &AppState,
    id: Uuid,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, users::User), ApiError> {
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    let user = users::lock(&mut tx, id)
        .await?
        .ok_or_else(error::user_not_found)?;
    Ok((tx, user))
}

pub async fn show(
    State(s): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<String>,
) -> Result<Data<Value>, ApiError> {
    caller.allow(&["payments", "admin"])?;
    let id = user_id(&id)?;
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let user = users::by_id(&mut conn, id)
        .await?
        .ok_or_else(error::user_not_found)?;
    Ok(Data(internal_user(&user)))
}

pub async fn by_email(
    State(s): State<AppState>,
    caller: ServiceCaller,
    RawQuery(raw): RawQuery,
) -> Result<Data<Value>, ApiError> {
    caller.allow(&["payments", "admin"])?;
    let mut q = QueryParams::parse(raw.as_deref());
    let email = q.email("email", true);
    q.finish()?;
    let Some(email) = email else {
        // Not reached: a required email that is not returned was refused by `finish`.
        return Err(ApiError::field("email", "must be a valid email address"));
    };
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let user = users::by_email(&mut conn, &email)
        .await?
        .ok_or_else(error::user_not_found)?;
    Ok(Data(internal_user(&user)))
}

pub async fn create(
    State(s): State<AppState>,
    caller: ServiceCaller,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Created<Value>, ApiError> {
    caller.allow(&["admin"])?;
    let actor = caller.actor_id()?;
    let mut f = Fields::new(&body);
    let new = Signup::read(&mut f);
    let role = f.one_of("role", false, &ROLES);
    f.finish()?;
    let (email, name) = (new.email.unwrap_or_default(), new.name.unwrap_or_default());
    account::refuse_taken_email(&s.db, &email).await?;
    let hash = s.hasher.hash(&new.password.unwrap_or_default()).await?;
    let now = time::now();
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    let role = role.and_then(Role::parse).unwrap_or(Role::Customer);
    let new = users::NewUser::unverified(&email, &hash, &name, role, now);
    let (ev, actor) = (event_context(&ctx), Actor::admin(actor));
    let user = account::create_user(&mut tx, &ev, &new, Origin::Admin, actor).await?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit internal create"))?;
    Ok(Created(internal_user(&user)))
}

/// Applies a change to a locked user: bumps the version, saves, emits `auth.user.updated`.
async fn apply_update(
    tx: &mut sqlx::PgConnection,
    ctx: &RequestContext,
    before: &users::User,
    mut after: users::User,
    reason: Option<String>,
    actor: Uuid,
) -> Result<users::User, ApiError> {
    let mut changed = Vec::new();
    let mut previous = Map::new();
    if before.email != after.email {
        changed.push("email".to_owned());
        previous.insert("email".into(), json!(before.email));
    }
    if before.name != after.name {
        changed.push("name".to_owned());
        previous.insert("name".into(), json!(before.name));
    }
    if before.role != after.role {
        changed.push("role".to_owned());
        previous.insert("role".into(), json!(before.role));
    }
    if before.is_active != after.is_active {
        changed.push("isActive".to_owned());
        previous.insert("isActive".into(), json!(before.is_active));
    }
    after.token_version = before.token_version + 1;
    after.updated_at = time::now();
    let saved = users::save(tx, &after)
        .await?
        .ok_or_else(error::email_exists)?;
    let event = UserUpdated {
        user: saved.snapshot(),
        changed_fields: changed,
        previous,
        reason,
        origin: Origin::Admin,
        actor_id: Some(actor),
        actor_type: ActorType::Admin,
    };
    account::publish(tx, &event_context(ctx), saved.id, &event).await?;
    Ok(saved)
}

/// Saves the change and its event, commits, then writes the revocation markers.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per internal endpoint, all arguments distinct"
)]
async fn commit_change(
    s: &AppState,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    ctx: &RequestContext,
    before: &users::User,
    after: users::User,
    reason: Option<String>,
    actor: Uuid,
    ended: &[crate::store::sessions::Revoked],
) -> Result<Data<Value>, ApiError> {
    let saved = apply_update(&mut tx, ctx, before, after, reason, actor).await?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit user change"))?;
    s.markers.sessions_revoked(ended).await;
    s.markers.token_version(saved.id, saved.token_version).await;
    Ok(Data(internal_user(&saved)))
}

/// 409 `LAST_ADMIN` when `target` is the only active ADMIN.
async fn guard_last_admin(
    tx: &mut sqlx::PgConnection,
    target: &users::User,
) -> Result<(), ApiError> {
    if target.role != Role::Admin || !target.is_active {
        return Ok(());
    }
    let admins = users::lock_active_admins(tx).await?;
    if admins.iter().all(|id| *id == target.id) {
        return Err(error::conflict(
            "LAST_ADMIN",
            "The last active administrator cannot be removed",
        ));
    }
    Ok(())
}

fn guard_self(actor: Uuid, target: Uuid) -> Result<(), ApiError> {
    if actor == target {
        Err(error::conflict(
            "SELF_MODIFICATION_FORBIDDEN",
            "Administrators cannot change their own account this way",
        ))
    } else {
        Ok(())
    }
}

pub async fn update(
    State(s): State<AppState>,
    caller: ServiceCaller,
    ctx: RequestContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let (actor, id) = admin_change(&caller, &id)?;
    let mut f = Fields::new(&body);
    let name = f.text("name", false, Text::len(1, 255));
    let email = f.email("email", false);
    if !f.present("name") && !f.present("email") {
        f.push("body", "at least one of name, email is required");
    }
    f.finish()?;
    let (tx, before) = lock_user(&s, id).await?;
    let mut after = before.clone();
    after.name = name.unwrap_or_else(|| before.name.clone());
    after.email = email.unwrap_or_else(|| before.email.clone());
    if after.name == before.name && after.email == before.email {
        return Ok(Data(internal_user(&before)));
    }
    commit_change(&s, tx, &ctx, &before, after, None, actor, &[]).await
}

pub async fn set_role(
    State(s): State<AppState>,
    caller: ServiceCaller,
    ctx: RequestContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let (actor, id) = admin_change(&caller, &id)?;
    let mut f = Fields::new(&body);
    let role = f.one_of("role", true, &ROLES);
    f.finish()?;
    let role = role.and_then(Role::parse).unwrap_or(Role::Customer);
    let (mut tx, before) = lock_user(&s, id).await?;
    if before.role == role {
        return Ok(Data(internal_user(&before)));
    }
    guard_self(actor, id)?;
    guard_last_admin(&mut tx, &before).await?;
    let mut after = before.clone();
    after.role = role;
    commit_change(&s, tx, &ctx, &before, after, None, actor, &[]).await
}

pub async fn set_status(
    State(s): State<AppState>,
    caller: ServiceCaller,
    ctx: RequestContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let (actor, id) = admin_change(&caller, &id)?;
    let mut f = Fields::new(&body);
    let active = f.boolean("isActive", true);
    let reason = f.text("reason", false, Text::multiline(1, 500));
    f.finish()?;
    let active = active.unwrap_or(true);
    let now = time::now();
    let (mut tx, before) = lock_user(&s, id).await?;
    if before.is_active == active {
        return Ok(Data(internal_user(&before)));
    }
    guard_self(actor, id)?;
    if !active {
        guard_last_admin(&mut tx, &before).await?;
    }
    let mut after = before.clone();
    after.is_active = active;
    after.deactivated_at = (!active).then_some(now);
    after.deactivation_reason = if active { None } else { reason.clone() };
    let ended = if active {
        Vec::new()
    } else {
        account::end_sessions(
            &mut tx,
            &event_context(&ctx),
            &Target::AllOf(id),
            RevokeReason::UserDeactivated,
            Actor::admin(actor),
            now,
        )
        .await?
    };
    commit_change(&s, tx, &ctx, &before, after, reason, actor, &ended).await
}

pub async fn remove(
    State(s): State<AppState>,
    caller: ServiceCaller,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (actor, id) = admin_change(&caller, &id)?;
    let now = time::now();
    let (mut tx, user) = lock_user(&s, id).await?;
    guard_self(actor, id)?;
    guard_last_admin(&mut tx, &user).await?;
    let ev = event_context(&ctx);
    let ended = account::end_sessions(
        &mut tx,
        &ev,
        &Target::AllOf(id),
        RevokeReason::UserDeleted,
        Actor::admin(actor),
        now,
    )
    .await?;
    users::delete(&mut tx, id).await?;
    let event = UserDeleted {
        user_id: id,
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.role,
        origin: Origin::Admin,
        actor_id: Some(actor),
        actor_type: ActorType::Admin,
        deleted_at: now,
    };
    account::publish(&mut tx, &ev, id, &event).await?;
    tx.commit().await.map_err(StoreError::at("commit delete"))?;
    s.markers.sessions_revoked(&ended).await;
    Ok(StatusCode::NO_CONTENT)
}
