//! `GET|PUT /api/profile` and `GET|PUT /api/profile/preferences` (api.md §7.2–§7.5). Every
//! endpoint creates the caller's profile lazily if it is missing.

use axum::extract::State;
use payplane_authn::CurrentUser;
use payplane_bus::outbox;
use payplane_events::{ActorType, profile::ProfileUpdated, time};
use payplane_kit::{ApiError, Data, context::RequestContext, json::JsonObject};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    app::AppState,
    domain::{
        edit::{Change, ProfileEdit},
        preferences::PreferencesUpdate,
    },
    error,
    events::event_context,
    store::{
        StoreError,
        profiles::{self, Profile},
    },
    views,
};

/// The caller's profile as JSON: from the cache when it holds the current version, else from
/// the database (creating the profile if needed) and then cached under the version taken first.
async fn current(s: &AppState, user_id: Uuid) -> Result<Value, ApiError> {
    let version = s.cache.version(user_id).await;
    if let Some(v) = version
        && let Some(hit) = s.cache.get(user_id, v).await
    {
        return Ok(hit);
    }
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let existing = profiles::by_user(&mut conn, user_id).await?;
    let profile = if let Some(p) = existing {
        p
    } else {
        profiles::create_if_missing(&mut conn, user_id).await?;
        profiles::by_user(&mut conn, user_id)
            .await?
            .ok_or_else(error::user_not_found)?
    };
    let json = views::profile(&profile);
    if let Some(v) = version {
        s.cache.put(user_id, v, &json).await;
    }
    Ok(json)
}

/// Creates the profile if needed and locks it for the rest of the transaction.
async fn lock_or_create(tx: &mut PgConnection, user_id: Uuid) -> Result<Profile, ApiError> {
    if let Some(p) = profiles::lock(tx, user_id).await? {
        return Ok(p);
    }
    profiles::create_if_missing(tx, user_id).await?;
    profiles::lock(tx, user_id)
        .await?
        .ok_or_else(error::user_not_found)
}

/// Saves a changed profile with its `profile.profile.updated` row, commits, then invalidates
/// the cache. Nothing is written when nothing changed.
async fn commit_change(
    s: &AppState,
    ctx: &RequestContext,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    profile: &mut Profile,
    changed_fields: Vec<String>,
    changed_preferences: Vec<String>,
) -> Result<(), ApiError> {
    if changed_fields.is_empty() {
        tx.commit()
            .await
            .map_err(StoreError::at("commit unchanged profile"))?;
        return Ok(());
    }
    profile.updated_at = time::now();
    profiles::save(&mut tx, profile).await?;
    let event = ProfileUpdated {
        user_id: profile.user_id,
        profile_id: profile.id,
        changed_fields,
        changed_preferences,
        actor_id: Some(profile.user_id),
        actor_type: ActorType::User,
        updated_at: profile.updated_at,
    };
    outbox::enqueue(
        &mut tx,
        &event_context(ctx),
        &profile.id.to_string(),
        &event,
    )
    .await
    .map_err(|e| ApiError::internal(&e))?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit profile change"))?;
    s.cache.bump(profile.user_id).await;
    Ok(())
}

pub async fn show(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Data<Value>, ApiError> {
    current(&s, claims.sub).await.map(Data)
}

pub async fn show_preferences(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Data<Value>, ApiError> {
    let mut profile = current(&s, claims.sub).await?;
    Ok(Data(profile["preferences"].take()))
}

/// Applies an optional change; true when the stored value differs afterwards.
fn set(field: &mut Option<String>, change: Option<Change>) -> bool {
    let Some(new) = change.map(Change::into_value) else {
        return false;
    };
    if *field == new {
        return false;
    }
    *field = new;
    true
}

pub async fn update(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let edit = ProfileEdit::parse(&body)?;
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    let mut profile = lock_or_create(&mut tx, claims.sub).await?;
    let mut changed = Vec::new();
    for (name, field, change) in [
        ("phone", &mut profile.phone, edit.phone),
        ("address", &mut profile.address, edit.address),
        ("bio", &mut profile.bio, edit.bio),
        ("avatarUrl", &mut profile.avatar_url, edit.avatar_url),
    ] {
        if set(field, change) {
            changed.push(name.to_owned());
        }
    }
    commit_change(&s, &ctx, tx, &mut profile, changed, Vec::new()).await?;
    Ok(Data(views::profile(&profile)))
}

pub async fn update_preferences(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let update = PreferencesUpdate::parse(&body)?;
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    let mut profile = lock_or_create(&mut tx, claims.sub).await?;
    let (stored, changed) = update.apply(&profile.preferences);
    profile.preferences = stored;
    let fields = if changed.is_empty() {
        Vec::new()
    } else {
        vec!["preferences".to_owned()]
    };
    let changed = changed.into_iter().map(str::to_owned).collect();
    commit_change(&s, &ctx, tx, &mut profile, fields, changed).await?;
    let mut view = views::profile(&profile);
    Ok(Data(view["preferences"].take()))
}
