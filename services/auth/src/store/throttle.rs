//! `login_throttle` rows (data.md §2.6), read and written under a row lock so parallel attempts
//! for one email are counted exactly.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sqlx::{PgConnection, Row};

use super::{Ctx, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttle {
    pub failed_count: i32,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub locked_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

fn decode(r: &sqlx::postgres::PgRow) -> Result<Throttle, sqlx::Error> {
    Ok(Throttle {
        failed_count: r.try_get("failed_count")?,
        first_failed_at: r.try_get("first_failed_at")?,
        last_failed_at: r.try_get("last_failed_at")?,
        locked_at: r.try_get("locked_at")?,
        locked_until: r.try_get("locked_until")?,
    })
}

/// Creates the row if needed and locks it for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, email_hash: &[u8]) -> Result<Throttle, StoreError> {
    sqlx::query("INSERT INTO login_throttle (email_hash) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(email_hash)
        .execute(&mut *conn)
        .await
        .ctx("ensure throttle row")?;
    let row = sqlx::query(
        "SELECT failed_count, first_failed_at, last_failed_at, locked_at, locked_until FROM login_throttle WHERE email_hash = $1 FOR UPDATE",
    )
    .bind(email_hash)
    .fetch_one(&mut *conn)
    .await
    .ctx("lock throttle row")?;
    decode(&row).ctx("decode throttle row")
}

pub async fn get(
    conn: &mut PgConnection,
    email_hash: &[u8],
) -> Result<Option<Throttle>, StoreError> {
    let row = sqlx::query("SELECT failed_count, first_failed_at, last_failed_at, locked_at, locked_until FROM login_throttle WHERE email_hash = $1")
        .bind(email_hash)
        .fetch_optional(&mut *conn)
        .await
        .ctx("select throttle row")?;
    row.as_ref()
        .map(decode)
        .transpose()
        .ctx("decode throttle row")
}

pub async fn save(
    conn: &mut PgConnection,
    email_hash: &[u8],
    t: &Throttle,
    ip: Option<IpAddr>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE login_throttle SET failed_count = $2, first_failed_at = $3, last_failed_at = $4, locked_at = $5, \
         locked_until = $6, last_ip = COALESCE($7, last_ip) WHERE email_hash = $1",
    )
    .bind(email_hash)
    .bind(t.failed_count)
    .bind(t.first_failed_at)
    .bind(t.last_failed_at)
    .bind(t.locked_at)
    .bind(t.locked_until)
    .bind(ip.map(IpNet::from))
    .execute(&mut *conn)
    .await
    .ctx("save throttle row")?;
    Ok(())
}

/// Deletes the state; returns what it was.
pub async fn clear(
    conn: &mut PgConnection,
    email_hash: &[u8],
) -> Result<Option<Throttle>, StoreError> {
    let row = sqlx::query(
        "DELETE FROM login_throttle WHERE email_hash = $1 RETURNING failed_count, first_failed_at, last_failed_at, locked_at, locked_until",
    )
    .bind(email_hash)
    .fetch_optional(&mut *conn)
    .await
    .ctx("clear throttle row")?;
    row.as_ref()
        .map(decode)
        .transpose()
        .ctx("decode throttle row")
}
