//! The `system_config` table (data.md §4.3).

use chrono::{DateTime, Utc};
use payplane_db::json::StoredJson;
use serde_json::{Value, json};
use sqlx::{PgConnection, Row, postgres::PgRow};
use uuid::Uuid;

use super::{Ctx, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub description: Option<String>,
    pub updated_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Entry {
    /// The ConfigEntry object of api.md §6.12.
    pub fn view(&self) -> Value {
        json!({
            "key": self.key,
            "value": self.value,
            "description": self.description,
            "updatedBy": self.updated_by,
            "createdAt": payplane_events::time::format(&self.created_at),
            "updatedAt": payplane_events::time::format(&self.updated_at),
        })
    }
}

fn read(row: &PgRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        key: row.try_get("key")?,
        value: row
            .try_get::<StoredJson, _>("value")?
            .0
            .unwrap_or(Value::Null),
        description: row.try_get("description")?,
        updated_by: row.try_get("updated_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn all(conn: &mut PgConnection) -> Result<Vec<Entry>, StoreError> {
    let rows = sqlx::query("SELECT * FROM system_config ORDER BY key")
        .fetch_all(&mut *conn)
        .await
        .ctx("list config")?;
    rows.iter()
        .map(read)
        .collect::<Result<_, _>>()
        .ctx("decode config")
}

pub async fn get(conn: &mut PgConnection, key: &str) -> Result<Option<Entry>, StoreError> {
    let row = sqlx::query("SELECT * FROM system_config WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .ctx("read config")?;
    row.as_ref().map(read).transpose().ctx("decode config")
}

/// Reads and locks the entry (the aggregate row of its outbox events, events.md §6.1.2).
pub async fn lock(conn: &mut PgConnection, key: &str) -> Result<Option<Entry>, StoreError> {
    let row = sqlx::query("SELECT * FROM system_config WHERE key = $1 FOR UPDATE")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .ctx("lock config")?;
    row.as_ref().map(read).transpose().ctx("decode config")
}

/// Inserts a new entry; `None` if the key exists.
pub async fn insert(conn: &mut PgConnection, e: &Entry) -> Result<Option<Entry>, StoreError> {
    let row = sqlx::query(
        "INSERT INTO system_config (key, value, description, updated_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING RETURNING *",
    )
    .bind(&e.key)
    .bind(&e.value)
    .bind(e.description.as_deref())
    .bind(e.updated_by)
    .bind(e.created_at)
    .bind(e.updated_at)
    .fetch_optional(&mut *conn)
    .await
    .ctx("insert config")?;
    row.as_ref().map(read).transpose().ctx("decode config")
}

pub async fn update(conn: &mut PgConnection, e: &Entry) -> Result<Entry, StoreError> {
    let row = sqlx::query(
        "UPDATE system_config SET value = $2, description = $3, updated_by = $4, updated_at = $5
         WHERE key = $1 RETURNING *",
    )
    .bind(&e.key)
    .bind(&e.value)
    .bind(e.description.as_deref())
    .bind(e.updated_by)
    .bind(e.updated_at)
    .fetch_one(&mut *conn)
    .await
    .ctx("update config")?;
    read(&row).ctx("decode config")
}

pub async fn delete(conn: &mut PgConnection, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM system_config WHERE key = $1")
        .bind(key)
        .execute(&mut *conn)
        .await
        .ctx("delete config")?;
    Ok(())
}

/// The `seed` command's entries: created if absent, `updatedBy` null (api.md §10).
pub async fn seed(conn: &mut PgConnection) -> Result<(), StoreError> {
    for (key, value, description) in [
        ("app.version", "1.0.0", "Application version"),
        ("payment.min_amount", "0.01", "Minimum payment amount"),
    ] {
        sqlx::query(
            "INSERT INTO system_config (key, value, description) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(Value::String(value.into()))
        .bind(description)
        .execute(&mut *conn)
        .await
        .ctx("seed config")?;
    }
    Ok(())
}
