//! Service-local endpoints (api.md §8.2): payment parties for the gateway's room checks and
//! statistics for the admin dashboard.

use axum::extract::{Path, State};
use payplane_authn::service::ServiceCaller;
use payplane_kit::{ApiError, Data};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::parse_id;
use crate::{
    app::AppState,
    error, reports,
    store::{StoreError, payments},
    views,
};

pub async fn parties(
    State(s): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<String>,
) -> Result<Data<Value>, ApiError> {
    caller.allow(&["gateway"])?;
    let id = parse_id(&id)?;
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let p = payments::get(&mut conn, id)
        .await?
        .ok_or_else(error::payment_not_found)?;
    Ok(Data(json!({
        "id": p.id, "senderId": p.sender_id, "recipientId": p.recipient_id, "status": p.status.as_str(),
    })))
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
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let t = reports::totals(&payments::aggregate(&mut conn, None, None, None).await?);
    let volume = payments::completed_volume(&mut conn, false).await?;
    let last = payments::last_24h(&mut conn).await?;
    let last_volume = payments::completed_volume(&mut conn, true).await?;
    Ok(Data(json!({
        "total": t.count,
        "byStatus": t.by_status,
        "byType": t.by_type,
        "volumeByCurrency": volumes(volume),
        "last24h": {
            "created": last.created,
            "completed": last.completed,
            "failed": last.failed,
            "volumeByCurrency": volumes(last_volume),
        },
    })))
}
