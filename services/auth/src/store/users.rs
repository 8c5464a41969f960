//! `users` rows (data.md §2.1).

use chrono::{DateTime, Utc};
use payplane_events::auth::{Role, UserSnapshot};
use sqlx::{PgConnection, Row, postgres::PgRow};
use uuid::Uuid;

use super::{Ctx, StoreError, is_unique_violation};

macro_rules! cols {
    () => {
        "id, email, password_hash, name, role, is_active, email_verified, token_version, \
         deactivated_at, deactivation_reason, created_at, updated_at"
    };
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: Role,
    pub is_active: bool,
    pub email_verified: bool,
    pub token_version: i32,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub deactivation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let role: String = row.try_get("role")?;
        Ok(Self {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            name: row.try_get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role}").into()))?,
            is_active: row.try_get("is_active")?,
            email_verified: row.try_get("email_verified")?,
            token_version: row.try_get("token_version")?,
            deactivated_at: row.try_get("deactivated_at")?,
            deactivation_reason: row.try_get("deactivation_reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub fn snapshot(&self) -> UserSnapshot {
        UserSnapshot {
            user_id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            is_active: self.is_active,
            email_verified: self.email_verified,
            token_version: self.token_version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

async fn one(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    op: &'static str,
) -> Result<Option<User>, StoreError> {
    let row = query.fetch_optional(&mut *conn).await.ctx(op)?;
    row.as_ref()
        .map(User::from_row)
        .transpose()
        .ctx("decode user")
}

pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>, StoreError> {
    let query = sqlx::query(concat!("SELECT ", cols!(), " FROM users WHERE id = $1")).bind(id);
    one(conn, query, "select user by id").await
}

/// Locks the row: every transaction that writes an outbox row for a user locks it first.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>, StoreError> {
    let query = sqlx::query(concat!(
        "SELECT ",
        cols!(),
        " FROM users WHERE id = $1 FOR UPDATE"
    ))
    .bind(id);
    one(conn, query, "lock user").await
}

pub async fn by_email(conn: &mut PgConnection, email: &str) -> Result<Option<User>, StoreError> {
    let query =
        sqlx::query(concat!("SELECT ", cols!(), " FROM users WHERE email = $1")).bind(email);
    one(conn, query, "select user by email").await
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub email_verified: bool,
    pub now: DateTime<Utc>,
}

impl<'a> NewUser<'a> {
    /// A user with a fresh id whose email is not verified yet.
    pub fn unverified(
        email: &'a str,
        password_hash: &'a str,
        name: &'a str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            email,
            password_hash,
            name,
            role,
            email_verified: false,
            now,
        }
    }
}

/// The user a write returned, or `None` when it broke the unique email (`what` names the
/// write in errors).
fn unless_email_taken(
    res: Result<PgRow, sqlx::Error>,
    what: &'static str,
) -> Result<Option<User>, StoreError> {
    match res {
        Ok(row) => User::from_row(&row).map(Some).ctx("decode user"),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(StoreError::new(what, e)),
    }
}

/// Inserts a user; `None` when the email is taken.
pub async fn insert(conn: &mut PgConnection, u: &NewUser<'_>) -> Result<Option<User>, StoreError> {
    let res = sqlx::query(concat!(
        "INSERT INTO users (id, email, password_hash, name, role, email_verified, password_changed_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) RETURNING ",
        cols!()
    ))
    .bind(u.id)
    .bind(u.email)
    .bind(u.password_hash)
    .bind(u.name)
    .bind(u.role.as_str())
    .bind(u.email_verified)
    .bind(u.now)
    .fetch_one(&mut *conn)
    .await;
    unless_email_taken(res, "insert user")
}

/// The full mutable state of a user, written back in one statement. `None` = email taken.
pub async fn save(conn: &mut PgConnection, u: &User) -> Result<Option<User>, StoreError> {
    let res = sqlx::query(concat!(
        "UPDATE users SET email = $2, password_hash = $3, name = $4, role = $5, is_active = $6, \
         email_verified = $7, token_version = $8, deactivated_at = $9, deactivation_reason = $10, updated_at = $11 \
         WHERE id = $1 RETURNING ",
        cols!()
    ))
    .bind(u.id)
    .bind(&u.email)
    .bind(&u.password_hash)
    .bind(&u.name)
    .bind(u.role.as_str())
    .bind(u.is_active)
    .bind(u.email_verified)
    .bind(u.token_version)
    .bind(u.deactivated_at)
    .bind(&u.deactivation_reason)
    .bind(u.updated_at)
    .fetch_one(&mut *conn)
    .await;
    unless_email_taken(res, "update user")
}

pub async fn set_password(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(&mut *conn)
        .await
        .ctx("update password")?;
    Ok(())
}

/// Replaces a verified legacy hash by its Argon2id equivalent (the password is unchanged).
pub async fn upgrade_hash(conn: &mut PgConnection, id: Uuid, hash: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(&mut *conn)
        .await
        .ctx("upgrade password hash")?;
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .ctx("delete user")?;
    Ok(())
}

/// Locks every active ADMIN row and returns their ids (the last-admin rule, data.md §2.1).
pub async fn lock_active_admins(conn: &mut PgConnection) -> Result<Vec<Uuid>, StoreError> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'ADMIN' AND is_active ORDER BY id FOR UPDATE",
    )
    .fetch_all(&mut *conn)
    .await
    .ctx("lock active admins")
}
