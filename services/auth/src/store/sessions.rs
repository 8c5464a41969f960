//! `sessions`, `refresh_tokens` and `devices` (data.md §2.2–§2.4).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use payplane_events::auth::RevokeReason;
use sqlx::{PgConnection, Row, postgres::PgRow};
use uuid::Uuid;

use super::{Ctx, StoreError};

/// A session that was just ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_id: String,
    /// Active (not merely expired) when ended: only these get an event and a marker.
    pub was_active: bool,
}

fn revoked(row: &PgRow) -> Result<Revoked, sqlx::Error> {
    Ok(Revoked {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        device_id: row.try_get("device_id")?,
        was_active: row.try_get("was_active")?,
    })
}

/// Which sessions to end.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    One(Uuid),
    AllOf(Uuid),
    AllExcept {
        user_id: Uuid,
        keep: Uuid,
    },
    /// Every non-revoked session of the user on this device, expired ones included, so the
    /// one-active-session-per-device index stays satisfiable (data.md §2.3).
    Device {
        user_id: Uuid,
        device_id: &'a str,
    },
    /// Only the active sessions of the user on this device.
    ActiveOnDevice {
        user_id: Uuid,
        device_id: &'a str,
    },
    /// The oldest active sessions beyond the per-user limit.
    BeyondLimit {
        user_id: Uuid,
        keep: i64,
    },
}

macro_rules! revoke_sql {
    ($filter:literal) => {
        concat!(
            "UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE revoked_at IS NULL AND ",
            $filter,
            " RETURNING id, user_id, device_id, expires_at > $1 AS was_active"
        )
    };
}

/// Ends the targeted sessions with `reason`; only active ones unless the target says otherwise.
pub async fn revoke(
    conn: &mut PgConnection,
    target: &Target<'_>,
    reason: RevokeReason,
    now: DateTime<Utc>,
) -> Result<Vec<Revoked>, StoreError> {
    let q = match target {
        Target::One(id) => sqlx::query(revoke_sql!("id = $3 AND expires_at > $1")).bind(now).bind(reason.as_str()).bind(*id),
        Target::AllOf(user) => {
            sqlx::query(revoke_sql!("user_id = $3 AND expires_at > $1")).bind(now).bind(reason.as_str()).bind(*user)
        }
        Target::AllExcept { user_id, keep } => sqlx::query(revoke_sql!("user_id = $3 AND id <> $4 AND expires_at > $1"))
            .bind(now)
            .bind(reason.as_str())
            .bind(*user_id)
            .bind(*keep),
        Target::Device { user_id, device_id } => sqlx::query(revoke_sql!("user_id = $3 AND device_id = $4"))
            .bind(now)
            .bind(reason.as_str())
            .bind(*user_id)
            .bind(*device_id),
        Target::ActiveOnDevice { user_id, device_id } => {
            sqlx::query(revoke_sql!("user_id = $3 AND device_id = $4 AND expires_at > $1"))
                .bind(now)
                .bind(reason.as_str())
                .bind(*user_id)
                .bind(*device_id)
        }
        Target::BeyondLimit { user_id, keep } => sqlx::query(revoke_sql!(
            "id IN (SELECT id FROM sessions WHERE user_id = $3 AND revoked_at IS NULL AND expires_at > $1 \
             ORDER BY last_used_at DESC, created_at DESC, id DESC OFFSET $4)"
        ))
        .bind(now)
        .bind(reason.as_str())
        .bind(*user_id)
        .bind(*keep),
    };
    let rows = q.fetch_all(&mut *conn).await.ctx("revoke sessions")?;
    rows.iter()
        .map(revoked)
        .collect::<Result<_, _>>()
        .ctx("decode revoked sessions")
}

/// A session to create.
pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_ref: Uuid,
    pub device_id: &'a str,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(conn: &mut PgConnection, s: &NewSession<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, device_ref, device_id, ip_address, user_agent, created_at, last_used_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.device_ref)
    .bind(s.device_id)
    .bind(s.ip.map(IpNet::from))
    .bind(s.user_agent)
    .bind(s.now)
    .bind(s.expires_at)
    .execute(&mut *conn)
    .await
    .ctx("insert session")?;
    Ok(())
}

/// Device details sent by the client.
#[derive(Debug, Clone, Default)]
pub struct DeviceInput {
    pub device_id: String,
    pub device_name: Option<String>,
    pub device_type: Option<&'static str>,
}

/// Creates or refreshes the device record; returns its row id.
pub async fn upsert_device(
    conn: &mut PgConnection,
    user_id: Uuid,
    d: &DeviceInput,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO devices (id, user_id, device_id, device_name, device_type, user_agent, ip_address, created_at, last_active_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (user_id, device_id) DO UPDATE SET \
           device_name = COALESCE(EXCLUDED.device_name, devices.device_name), \
           device_type = COALESCE(EXCLUDED.device_type, devices.device_type), \
           user_agent = COALESCE(EXCLUDED.user_agent, devices.user_agent), \
           ip_address = COALESCE(EXCLUDED.ip_address, devices.ip_address), \
           last_active_at = EXCLUDED.last_active_at \
         RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(&d.device_id)
    .bind(&d.device_name)
    .bind(d.device_type)
    .bind(user_agent)
    .bind(ip.map(IpNet::from))
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .ctx("upsert device")
}

/// Moves a session onto a device record.
pub async fn attach(
    conn: &mut PgConnection,
    sid: Uuid,
    device_ref: Uuid,
    device_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET device_ref = $2, device_id = $3 WHERE id = $1")
        .bind(sid)
        .bind(device_ref)
        .bind(device_id)
        .execute(&mut *conn)
        .await
        .ctx("attach session to device")?;
    Ok(())
}

pub async fn insert_refresh(
    conn: &mut PgConnection,
    id: Uuid,
    session_id: Uuid,
    hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    sqlx::query("INSERT INTO refresh_tokens (id, session_id, token_hash, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(session_id)
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await
        .ctx("insert refresh token")?;
    Ok(id)
}

/// A refresh token joined with its session, both locked.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub device_id: String,
    pub device_ref: Option<Uuid>,
    pub session_expires_at: DateTime<Utc>,
    pub session_revoked_at: Option<DateTime<Utc>>,
}

pub async fn find_refresh(
    conn: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<RefreshRow>, StoreError> {
    // Locking the session row serialises concurrent refreshes of one family (api.md §4.6).
    let row = sqlx::query(
        "SELECT rt.id, rt.expires_at, rt.rotated_at, s.id AS session_id, s.user_id, s.device_id, s.device_ref, \
                s.expires_at AS session_expires_at, s.revoked_at AS session_revoked_at \
         FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
         WHERE rt.token_hash = $1 FOR UPDATE OF rt, s",
    )
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await
    .ctx("select refresh token")?;
    row.map(|r| {
        Ok(RefreshRow {
            id: r.try_get("id")?,
            expires_at: r.try_get("expires_at")?,
            rotated_at: r.try_get("rotated_at")?,
            session_id: r.try_get("session_id")?,
            user_id: r.try_get("user_id")?,
            device_id: r.try_get("device_id")?,
            device_ref: r.try_get("device_ref")?,
            session_expires_at: r.try_get("session_expires_at")?,
            session_revoked_at: r.try_get("session_revoked_at")?,
        })
    })
    .transpose()
    .ctx("decode refresh token")
}

/// A refresh's writes in one statement (one round trip instead of three or four inside the
/// refresh's transaction, which a login flood makes expensive): marks token `old` consumed,
/// issues `new` for the same session, and touches the session and its device. `false` when
/// `old` was consumed already (lost the race); then nothing is written. The insert reads the
/// update's result, so the old token is no longer current when the one-current-token index
/// checks the new one.
#[expect(
    clippy::too_many_arguments,
    reason = "one statement's parameters, named at the call"
)]
pub async fn rotate_and_reissue(
    conn: &mut PgConnection,
    old: Uuid,
    new: Uuid,
    session_id: Uuid,
    device_ref: Option<Uuid>,
    hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let issued: i64 = sqlx::query_scalar(
        "WITH rotated AS ( \
             UPDATE refresh_tokens SET rotated_at = $3, replaced_by = $2 \
             WHERE id = $1 AND rotated_at IS NULL RETURNING session_id), \
         issued AS ( \
             INSERT INTO refresh_tokens (id, session_id, token_hash, issued_at, expires_at) \
             SELECT $2, session_id, $5, $3, $6 FROM rotated RETURNING session_id), \
         session AS ( \
             UPDATE sessions SET last_used_at = $3 \
             WHERE id = $4 AND EXISTS (SELECT 1 FROM issued)), \
         device AS ( \
             UPDATE devices SET last_active_at = $3 \
             WHERE id = $7 AND EXISTS (SELECT 1 FROM issued)) \
         SELECT count(*) FROM issued",
    )
    .bind(old)
    .bind(new)
    .bind(now)
    .bind(session_id)
    .bind(hash)
    .bind(expires_at)
    .bind(device_ref)
    .fetch_one(&mut *conn)
    .await
    .ctx("rotate and reissue refresh token")?;
    Ok(issued == 1)
}

/// The live session whose current (unrotated, unexpired) refresh token has this hash.
pub async fn live_session_by_refresh(
    conn: &mut PgConnection,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, Uuid)>, StoreError> {
    let row = sqlx::query(
        "SELECT s.id, s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
         WHERE rt.token_hash = $1 AND rt.rotated_at IS NULL AND rt.expires_at > $2 \
           AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .ctx("select session by refresh token")?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("user_id")?)))
        .transpose()
        .ctx("decode session")
}

/// A session row as needed by device operations.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_ref: Option<Uuid>,
    pub device_id: String,
}

pub async fn by_id(conn: &mut PgConnection, sid: Uuid) -> Result<Option<SessionRow>, StoreError> {
    let row = sqlx::query("SELECT id, user_id, device_ref, device_id FROM sessions WHERE id = $1")
        .bind(sid)
        .fetch_optional(&mut *conn)
        .await
        .ctx("select session")?;
    row.map(|r| {
        Ok(SessionRow {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            device_ref: r.try_get("device_ref")?,
            device_id: r.try_get("device_id")?,
        })
    })
    .transpose()
    .ctx("decode session")
}

/// A device with at least one active session.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_id: String,
    pub device_name: Option<String>,
    pub device_type: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<IpNet>,
    pub last_active_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub active_sessions: i64,
}

macro_rules! device_sql {
    ($filter:literal) => {
        concat!(
            "SELECT d.id, d.user_id, d.device_id, d.device_name, d.device_type, d.user_agent, d.ip_address, \
                    d.last_active_at, d.created_at, count(s.id) AS active_sessions \
             FROM devices d JOIN sessions s ON s.device_ref = d.id AND s.revoked_at IS NULL AND s.expires_at > $2 \
             WHERE ",
            $filter,
            " GROUP BY d.id ORDER BY d.last_active_at DESC, d.id DESC"
        )
    };
}

fn device(r: &PgRow) -> Result<DeviceRow, sqlx::Error> {
    Ok(DeviceRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        device_id: r.try_get("device_id")?,
        device_name: r.try_get("device_name")?,
        device_type: r.try_get("device_type")?,
        user_agent: r.try_get("user_agent")?,
        ip_address: r.try_get("ip_address")?,
        last_active_at: r.try_get("last_active_at")?,
        created_at: r.try_get("created_at")?,
        active_sessions: r.try_get("active_sessions")?,
    })
}

pub async fn devices(
    conn: &mut PgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<DeviceRow>, StoreError> {
    let rows = sqlx::query(device_sql!("d.user_id = $1"))
        .bind(user_id)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .ctx("list devices")?;
    rows.iter()
        .map(device)
        .collect::<Result<_, _>>()
        .ctx("decode devices")
}

pub async fn device_by_ref(
    conn: &mut PgConnection,
    device_ref: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<DeviceRow>, StoreError> {
    let row = sqlx::query(device_sql!("d.id = $1"))
        .bind(device_ref)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
        .ctx("select device")?;
    row.as_ref().map(device).transpose().ctx("decode device")
}
