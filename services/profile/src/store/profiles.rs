//! `user_profiles` and `deleted_users` (data.md §5.1): creation that is safe under concurrency and
//! never resurrects a deleted user, row locking for edits, deletion.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Ctx, StoreError};

/// One stored profile.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Profile {
    pub id: Uuid,
    pub user_id: Uuid,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    /// Only the keys the user has set (defaults are applied on read).
    pub preferences: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates an empty profile unless one exists or the user was deleted
/// (`INSERT … ON CONFLICT (user_id) DO NOTHING`, data.md §5.1). Returns whether a row was
/// inserted.
pub async fn create_if_missing(conn: &mut PgConnection, user_id: Uuid) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO user_profiles (id, user_id) \
         SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = $2) \
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .execute(&mut *conn)
    .await
    .ctx("create profile")?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn by_user(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Option<Profile>, StoreError> {
    sqlx::query_as::<_, Profile>(
        "SELECT id, user_id, phone, address, bio, avatar_url, preferences, created_at, updated_at \
         FROM user_profiles WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
    .ctx("read profile")
}

/// The profile row, locked until the transaction ends (events.md §6.1.2: the aggregate is
/// locked before its outbox row is written).
pub async fn lock(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<Profile>, StoreError> {
    sqlx::query_as::<_, Profile>(
        "SELECT id, user_id, phone, address, bio, avatar_url, preferences, created_at, updated_at \
         FROM user_profiles WHERE user_id = $1 FOR UPDATE",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
    .ctx("lock profile")
}

/// Writes every editable column of `p` and its `updated_at`.
pub async fn save(conn: &mut PgConnection, p: &Profile) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE user_profiles SET phone = $2, address = $3, bio = $4, avatar_url = $5, \
         preferences = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(p.id)
    .bind(&p.phone)
    .bind(&p.address)
    .bind(&p.bio)
    .bind(&p.avatar_url)
    .bind(&p.preferences)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await
    .ctx("save profile")?;
    Ok(())
}

/// Deletes the profile and records the user as deleted, so that no later event or request
/// recreates it. Returns whether a profile existed.
pub async fn delete_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    deleted_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    sqlx::query(
        "INSERT INTO deleted_users (user_id, deleted_at) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(deleted_at)
    .execute(&mut *conn)
    .await
    .ctx("record deleted user")?;
    let removed = sqlx::query("DELETE FROM user_profiles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .ctx("delete profile")?
        .rows_affected();
    Ok(removed > 0)
}
