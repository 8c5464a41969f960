//! The append-only `audit_logs` table (data.md §4.2): inserts (idempotent per source event and
//! action), the filtered, paginated listing with the actor's name from the read model, and
//! the dashboard count.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use payplane_db::json::StoredJson;
use serde_json::{Map, Value};
use sqlx::{PgConnection, QueryBuilder, Row, postgres::PgRow};
use uuid::Uuid;

use super::{Ctx, StoreError};

/// An entry to write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEntry {
    pub user_id: Option<Uuid>,
    pub action: &'static str,
    pub resource_type: Option<&'static str>,
    pub resource_id: Option<String>,
    pub details: Option<Value>,
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub source_event_id: Option<Uuid>,
    pub correlation_id: Option<String>,
}

/// Inserts `entry` with id `id`; `None` when an entry for the same source event and action
/// already exists (a redelivered event).
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    entry: &NewEntry,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, details,
                                 ip_address, user_agent, source_event_id, correlation_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (source_event_id, action) DO NOTHING",
    )
    .bind(id)
    .bind(entry.user_id)
    .bind(entry.action)
    .bind(entry.resource_type)
    .bind(entry.resource_id.as_deref())
    .bind(entry.details.as_ref())
    .bind(entry.ip_address.map(IpNet::from))
    .bind(entry.user_agent.as_deref())
    .bind(entry.source_event_id)
    .bind(entry.correlation_id.as_deref())
    .bind(at)
    .execute(&mut *conn)
    .await
    .ctx("insert audit entry")?;
    Ok(done.rows_affected() > 0)
}

/// Filters of `GET /api/admin/audit-logs` (api.md §6.10).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub action: Option<&'static str>,
    pub user_id: Option<Uuid>,
    pub resource_type: Option<&'static str>,
    pub resource_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

fn push_filters(qb: &mut QueryBuilder<sqlx::Postgres>, f: &ListFilter) {
    qb.push(" WHERE true");
    if let Some(action) = f.action {
        qb.push(" AND a.action = ").push_bind(action);
    }
    if let Some(user) = f.user_id {
        qb.push(" AND a.user_id = ").push_bind(user);
    }
    if let Some(rt) = f.resource_type {
        qb.push(" AND a.resource_type = ").push_bind(rt);
    }
    if let Some(rid) = &f.resource_id {
        qb.push(" AND a.resource_id = ").push_bind(rid.clone());
    }
    if let Some(from) = f.from {
        qb.push(" AND a.created_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(" AND a.created_at < ").push_bind(to);
    }
}

fn view(row: &PgRow) -> Result<Value, sqlx::Error> {
    let mut out = Map::new();
    let id: Uuid = row.try_get("id")?;
    out.insert("id".into(), Value::String(id.to_string()));
    let user: Option<Uuid> = row.try_get("user_id")?;
    out.insert(
        "userId".into(),
        Value::String(user.map(|u| u.to_string()).unwrap_or_default()),
    );
    if let Some(name) = row.try_get::<Option<String>, _>("user_name")? {
        out.insert("userName".into(), Value::String(name));
    }
    if let Some(email) = row.try_get::<Option<String>, _>("user_email")? {
        out.insert("userEmail".into(), Value::String(email));
    }
    out.insert("action".into(), Value::String(row.try_get("action")?));
    let text = |name: &str| -> Result<Value, sqlx::Error> {
        Ok(Value::String(
            row.try_get::<Option<String>, _>(name)?.unwrap_or_default(),
        ))
    };
    out.insert("resourceType".into(), text("resource_type")?);
    out.insert("resourceId".into(), text("resource_id")?);
    if let Some(details) = row
        .try_get::<StoredJson, _>("details")?
        .0
        .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
    {
        out.insert("details".into(), details);
    }
    if let Some(ip) = row.try_get::<Option<IpNet>, _>("ip_address")? {
        out.insert("ipAddress".into(), Value::String(ip.addr().to_string()));
    }
    if let Some(ua) = row.try_get::<Option<String>, _>("user_agent")? {
        out.insert("userAgent".into(), Value::String(ua));
    }
    let at: DateTime<Utc> = row.try_get("created_at")?;
    out.insert(
        "timestamp".into(),
        Value::String(payplane_events::time::format(&at)),
    );
    Ok(Value::Object(out))
}

/// One page of entries (newest first) as AuditEntry objects, and the total.
pub async fn list(
    conn: &mut PgConnection,
    f: &ListFilter,
) -> Result<(Vec<Value>, i64), StoreError> {
    let mut count = QueryBuilder::new("SELECT count(*) FROM audit_logs a");
    push_filters(&mut count, f);
    let total: i64 = count
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .ctx("count audit entries")?;
    let mut qb = QueryBuilder::new(
        "SELECT a.id, a.user_id, a.action, a.resource_type, a.resource_id, a.details,
                a.ip_address, a.user_agent, a.created_at, u.name AS user_name, u.email AS user_email
         FROM audit_logs a LEFT JOIN users u ON u.id = a.user_id",
    );
    push_filters(&mut qb, f);
    qb.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
        .push_bind(f.limit)
        .push(" OFFSET ")
        .push_bind(f.offset);
    let rows = qb
        .build()
        .fetch_all(&mut *conn)
        .await
        .ctx("list audit entries")?;
    let entries = rows
        .iter()
        .map(view)
        .collect::<Result<_, _>>()
        .ctx("decode audit entries")?;
    Ok((entries, total))
}

/// Entries written in the last 24 hours.
pub async fn count_last_24h(conn: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_logs WHERE created_at > now() - interval '24 hours'",
    )
    .fetch_one(&mut *conn)
    .await
    .ctx("count recent audit entries")
}
