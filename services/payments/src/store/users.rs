//! The user directory (data.md §3.1): who may be paid and whose names payments show. Fed by
//! `auth.user.*` events and by lookups in auth; rows are never removed, only marked deleted.

use chrono::{DateTime, Utc};
use sqlx::{
    PgConnection, Postgres,
    postgres::PgArguments,
    query::{Query, QueryAs},
};
use uuid::Uuid;

use super::{Ctx, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DirUser {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub is_active: bool,
    pub deleted_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, email, name, role, is_active, deleted_at";

/// The directory columns of the rows matching `filter` (a fixed SQL condition).
fn select_where<'q>(filter: &'static str) -> QueryAs<'q, Postgres, DirUser, PgArguments> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE {filter}"
    )))
}

pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<DirUser>, StoreError> {
    select_where("id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .ctx("select directory user by id")
}

/// Several rows by id in one round trip (any order).
pub async fn by_ids(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<DirUser>, StoreError> {
    select_where("id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await
        .ctx("select directory users by id")
}

/// The live (not deleted) user with this lower-case email.
pub async fn by_email(conn: &mut PgConnection, email: &str) -> Result<Option<DirUser>, StoreError> {
    select_where("email = $1 AND deleted_at IS NULL")
        .bind(email)
        .fetch_optional(conn)
        .await
        .ctx("select directory user by email")
}

/// The data of one auth user as of `source_updated_at`.
#[derive(Debug, Clone)]
pub struct UserData<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub is_active: bool,
    pub source_updated_at: DateTime<Utc>,
}

impl UserData<'_> {
    /// Inserts the row, or on a conflict sets the user's data and then `rest` (more
    /// assignments, maybe a `WHERE`): the two upserts differ only in that tail.
    fn upsert(&self, rest: &'static str) -> Query<'_, Postgres, PgArguments> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (id, email, name, role, is_active, source_updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, \
               role = EXCLUDED.role, is_active = EXCLUDED.is_active, {rest}"
        )))
        .bind(self.id)
        .bind(self.email)
        .bind(self.name)
        .bind(self.role)
        .bind(self.is_active)
        .bind(self.source_updated_at)
    }
}

/// Inserts or updates the row unless it is deleted (final) or already holds newer data.
/// Returns whether anything changed. A live row of another user holding the same email is a
/// unique violation, which the consumer treats as transient (events.md §6.2).
pub async fn upsert_if_newer(
    conn: &mut PgConnection,
    u: &UserData<'_>,
) -> Result<bool, sqlx::Error> {
    let res = u
        .upsert(
            "source_updated_at = EXCLUDED.source_updated_at, \
             updated_at = date_trunc('milliseconds', now()) \
             WHERE users.deleted_at IS NULL AND users.source_updated_at < EXCLUDED.source_updated_at",
        )
    .execute(conn)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Seed: writes the row whatever its state, clearing any deletion mark (api.md §10).
pub async fn force_upsert(conn: &mut PgConnection, u: &UserData<'_>) -> Result<(), StoreError> {
    u.upsert(
        "deleted_at = NULL, \
         source_updated_at = GREATEST(users.source_updated_at, EXCLUDED.source_updated_at), \
         updated_at = date_trunc('milliseconds', now())",
    )
    .execute(conn)
    .await
    .ctx("seed directory user")?;
    Ok(())
}

/// Marks the user deleted (final). Creates a tombstone row when the user was never seen, so a
/// late `created` event cannot resurrect them. Returns whether the row changed.
pub async fn mark_deleted(
    conn: &mut PgConnection,
    id: Uuid,
    email: &str,
    name: &str,
    role: &str,
    deleted_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let res = sqlx::query(
        "INSERT INTO users (id, email, name, role, is_active, deleted_at, source_updated_at) \
         VALUES ($1, $2, $3, $4, false, $5, $5) \
         ON CONFLICT (id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at, \
           source_updated_at = EXCLUDED.source_updated_at, \
           updated_at = date_trunc('milliseconds', now()) \
         WHERE users.deleted_at IS NULL",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(role)
    .bind(deleted_at)
    .execute(conn)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Active, live users other than `exclude`, optionally filtered by a case-insensitive
/// substring of name or email, ordered by name then email (api.md §5.5).
pub async fn recipients(
    conn: &mut PgConnection,
    exclude: Uuid,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<DirUser>, StoreError> {
    let pattern = search.map(|s| {
        let escaped = s
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    select_where(
        "deleted_at IS NULL AND is_active AND id <> $1 \
           AND ($2::text IS NULL OR lower(name) LIKE $2 OR email LIKE $2) \
         ORDER BY lower(name), email, id LIMIT $3",
    )
    .bind(exclude)
    .bind(pattern)
    .bind(limit)
    .fetch_all(conn)
    .await
    .ctx("select recipients")
}
