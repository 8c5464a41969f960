//! The users read model (data.md §4.1): newer-wins upserts keyed on auth's `updatedAt`, final
//! deletion marks, last-login times, the directory query and dashboard counts.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, QueryBuilder, Row, postgres::PgRow};
use uuid::Uuid;

use super::{Ctx, StoreError};

/// A user as auth reported it (from an event snapshot or an internal API answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub is_active: bool,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&payplane_events::auth::UserSnapshot> for UserState {
    fn from(s: &payplane_events::auth::UserSnapshot) -> Self {
        Self {
            id: s.user_id,
            email: s.email.clone(),
            name: s.name.clone(),
            role: s.role.as_str().to_owned(),
            is_active: s.is_active,
            email_verified: s.email_verified,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// One read-model row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub state: UserState,
    pub last_login_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, email, name, role, is_active, email_verified, last_login_at, \
                       created_at, updated_at, deleted_at";

fn read(row: &PgRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        state: UserState {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            role: row.try_get("role")?,
            is_active: row.try_get("is_active")?,
            email_verified: row.try_get("email_verified")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        last_login_at: row.try_get("last_login_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

impl UserRow {
    /// The ManagedUser object of api.md §6.2.
    pub fn view(&self) -> Value {
        let f = payplane_events::time::format;
        let s = &self.state;
        json!({
            "id": s.id,
            "email": s.email,
            "name": s.name,
            "role": s.role,
            "isActive": s.is_active,
            "emailVerified": s.email_verified,
            "lastLoginAt": self.last_login_at.as_ref().map(f),
            "createdAt": f(&s.created_at),
            "updatedAt": f(&s.updated_at),
        })
    }
}

/// Inserts or updates the row when `u` is newer than what is stored; a row marked deleted is
/// final (events.md §6.2). Returns whether anything changed.
pub async fn upsert_if_newer(conn: &mut PgConnection, u: &UserState) -> Result<bool, StoreError> {
    let sql = "INSERT INTO users (id, email, name, role, is_active, email_verified, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
             role = EXCLUDED.role, is_active = EXCLUDED.is_active,
             email_verified = EXCLUDED.email_verified, created_at = EXCLUDED.created_at,
             updated_at = EXCLUDED.updated_at, synced_at = date_trunc('milliseconds', now())
         WHERE users.deleted_at IS NULL AND users.updated_at < EXCLUDED.updated_at";
    upsert(conn, u, sql, "upsert user").await
}

/// The `seed` command's upsert: always writes and clears any deletion mark (api.md §10).
pub async fn seed_upsert(conn: &mut PgConnection, u: &UserState) -> Result<(), StoreError> {
    let sql = "INSERT INTO users (id, email, name, role, is_active, email_verified, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
             role = EXCLUDED.role, is_active = EXCLUDED.is_active,
             email_verified = EXCLUDED.email_verified, created_at = EXCLUDED.created_at,
             updated_at = GREATEST(users.updated_at, EXCLUDED.updated_at), deleted_at = NULL,
             synced_at = date_trunc('milliseconds', now())";
    upsert(conn, u, sql, "seed user").await?;
    Ok(())
}

/// Runs `sql`, an `INSERT` of every column of `u` in declaration order with its own
/// `ON CONFLICT` clause (`what` names it in errors); whether a row was written.
async fn upsert(
    conn: &mut PgConnection,
    u: &UserState,
    sql: &'static str,
    what: &'static str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(sql)
        .bind(u.id)
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.role)
        .bind(u.is_active)
        .bind(u.email_verified)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&mut *conn)
        .await
        .ctx(what)?;
    Ok(done.rows_affected() > 0)
}

/// Marks the user deleted (final). A user never seen before gets a deleted row so that a late
/// `auth.user.created` for the same id changes nothing.
pub async fn mark_deleted(
    conn: &mut PgConnection,
    id: Uuid,
    email: &str,
    name: &str,
    role: &str,
    deleted_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, email, name, role, is_active, email_verified, created_at,
                            updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, false, false, $5, $5, $5)
         ON CONFLICT (id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at,
             synced_at = date_trunc('milliseconds', now())
         WHERE users.deleted_at IS NULL",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(role)
    .bind(deleted_at)
    .execute(&mut *conn)
    .await
    .ctx("mark user deleted")?;
    Ok(())
}

/// Records a login if it is later than the stored one.
pub async fn set_last_login(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET last_login_at = $2, synced_at = date_trunc('milliseconds', now())
         WHERE id = $1 AND (last_login_at IS NULL OR last_login_at < $2)",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *conn)
    .await
    .ctx("set last login")?;
    Ok(())
}

/// A live (not deleted) user.
pub async fn live(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .ctx("read user")?;
    row.as_ref().map(read).transpose().ctx("decode user")
}

/// Filters and ordering of `GET /api/admin/users` (api.md §6.3).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub role: Option<&'static str>,
    pub is_active: Option<bool>,
    pub search: Option<String>,
    /// Column expression; one of a fixed set.
    pub sort: &'static str,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// `%`, `_` and `\` are literal in the search text.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn push_filters(qb: &mut QueryBuilder<sqlx::Postgres>, f: &ListFilter) {
    qb.push(" WHERE deleted_at IS NULL");
    if let Some(role) = f.role {
        qb.push(" AND role = ").push_bind(role);
    }
    if let Some(active) = f.is_active {
        qb.push(" AND is_active = ").push_bind(active);
    }
    if let Some(search) = &f.search {
        let pattern = like_pattern(search);
        qb.push(" AND (lower(email) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR lower(name) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// One page of the directory and the total count.
pub async fn list(
    conn: &mut PgConnection,
    f: &ListFilter,
) -> Result<(Vec<UserRow>, i64), StoreError> {
    let mut count = QueryBuilder::new("SELECT count(*) FROM users");
    push_filters(&mut count, f);
    let total: i64 = count
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .ctx("count users")?;
    let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM users"));
    push_filters(&mut qb, f);
    let dir = if f.descending { "DESC" } else { "ASC" };
    qb.push(format!(" ORDER BY {} {dir}, id {dir} LIMIT ", f.sort))
        .push_bind(f.limit)
        .push(" OFFSET ")
        .push_bind(f.offset);
    let rows = qb.build().fetch_all(&mut *conn).await.ctx("list users")?;
    let users = rows
        .iter()
        .map(read)
        .collect::<Result<_, _>>()
        .ctx("decode users")?;
    Ok((users, total))
}

/// Dashboard counts of live users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub active: i64,
    pub admin: i64,
    pub customer: i64,
    pub vendor: i64,
    pub new_last_24h: i64,
}

pub async fn counts(conn: &mut PgConnection) -> Result<Counts, StoreError> {
    let row = sqlx::query(
        "SELECT count(*) AS total,
                count(*) FILTER (WHERE is_active) AS active,
                count(*) FILTER (WHERE role = 'ADMIN') AS admin,
                count(*) FILTER (WHERE role = 'CUSTOMER') AS customer,
                count(*) FILTER (WHERE role = 'VENDOR') AS vendor,
                count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS new_last_24h
         FROM users WHERE deleted_at IS NULL",
    )
    .fetch_one(&mut *conn)
    .await
    .ctx("count users")?;
    let get = |name: &str| row.try_get::<i64, _>(name);
    (|| {
        Ok(Counts {
            total: get("total")?,
            active: get("active")?,
            admin: get("admin")?,
            customer: get("customer")?,
            vendor: get("vendor")?,
            new_last_24h: get("new_last_24h")?,
        })
    })()
    .ctx("decode user counts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_wildcards_are_literal() {
        assert_eq!(like_pattern("A%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
