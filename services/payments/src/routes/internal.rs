//! Service-local endpoints (api.md §8.2): payment parties for the gateway's room checks and
//! statistics for the admin dashboard.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use payplane_authn::service::ServiceCaller;
use payplane_kit::{ApiError, Data};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::payments::parse_id;
use crate::{
    app::AppState,
    domain::{STATUSES, TYPES},
    error,
    store::{Ctx, payments},
    views,
};

pub async fn parties(
    State(s): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<String>,
) -> Result<Data<Value>, ApiError> {
    caller.allow(&["gateway"])?;
    let id = parse_id(&id)?;
    let mut conn = s.db.acquire().await.ctx("acquire")?;
    let p = payments::get(&mut conn, id)
        .await?
        .ok_or_else(error::payment_not_found)?;
    Ok(Data(json!({
        "id": p.id, "senderId": p.sender_id, "recipientId": p.recipient_id, "status": p.status,
    })))
}

#[derive(sqlx::FromRow)]
struct Last24 {
    created: i64,
    completed: i64,
    failed: i64,
}

fn volumes(rows: Vec<(String, Decimal)>) -> Map<String, Value> {
    rows.into_iter()
        .map(|(c, a)| (c, Value::String(views::money(a))))
        .collect()
}

pub async fn stats(
    State(s): State<AppState>,
    caller: ServiceCaller,
) -> Result<Data<Value>, ApiError> {
    caller.allow(&["admin"])?;
    let mut conn = s.db.acquire().await.ctx("acquire")?;
    let rows = payments::aggregate(&mut conn, None, None, None).await?;
    let mut by_status: BTreeMap<&str, i64> = STATUSES.iter().map(|s| (*s, 0)).collect();
    let mut by_type: BTreeMap<&str, i64> = TYPES.iter().map(|t| (*t, 0)).collect();
    let mut total = 0;
    for r in &rows {
        total += r.count;
        if let Some(c) = by_status.get_mut(r.status.as_str()) {
            *c += r.count;
        }
        if let Some(c) = by_type.get_mut(r.payment_type.as_str()) {
            *c += r.count;
        }
    }
    let volume: Vec<(String, Decimal)> = sqlx::query_as(
        "SELECT currency::text, sum(amount) FROM payments WHERE status = 'completed' \
         GROUP BY currency ORDER BY currency",
    )
    .fetch_all(&mut *conn)
    .await
    .ctx("completed volume")?;
    let last: Last24 = sqlx::query_as(
        "SELECT \
           count(*) FILTER (WHERE created_at >= now() - interval '24 hours') AS created, \
           count(*) FILTER (WHERE completed_at >= now() - interval '24 hours') AS completed, \
           count(*) FILTER (WHERE status = 'failed' AND updated_at >= now() - interval '24 hours') AS failed \
         FROM payments",
    )
    .fetch_one(&mut *conn)
    .await
    .ctx("last 24h counts")?;
    let last_volume: Vec<(String, Decimal)> = sqlx::query_as(
        "SELECT currency::text, sum(amount) FROM payments \
         WHERE completed_at >= now() - interval '24 hours' GROUP BY currency ORDER BY currency",
    )
    .fetch_all(&mut *conn)
    .await
    .ctx("last 24h volume")?;
    Ok(Data(json!({
        "total": total,
        "byStatus": by_status,
        "byType": by_type,
        "volumeByCurrency": volumes(volume),
        "last24h": {
            "created": last.created,
            "completed": last.completed,
            "failed": last.failed,
            "volumeByCurrency": volumes(last_volume),
        },
    })))
}
