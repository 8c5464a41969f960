//! A payment with its transaction history (api.md §5.2), read through the versioned cache or
//! inside the caller's transaction.

use payplane_kit::ApiError;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    app::AppState,
    cache::{Kind, Scope},
    store::{
        StoreError,
        payments::{self, PaymentRow},
    },
    views,
};

/// Reads a payment with its transactions through the versioned cache.
pub async fn load(s: &AppState, id: Uuid) -> Result<Option<Value>, ApiError> {
    let key = s
        .cache
        .key(
            Kind::Detail,
            &Scope::Payment(id),
            "payment",
            &id.to_string(),
        )
        .await;
    if let Some(v) = s.cache.get(Kind::Detail, &key).await {
        return Ok(Some(v));
    }
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let Some(p) = payments::get(&mut conn, id).await? else {
        return Ok(None);
    };
    let txs = payments::transactions(&mut conn, id).await?;
    let v = views::payment_detail(&p, &txs);
    s.cache.put(&key, &v, 60).await;
    Ok(Some(v))
}

/// The detail of `p` with the transactions visible on `conn` (inside a change's transaction).
pub async fn of(conn: &mut PgConnection, p: &PaymentRow) -> Result<Value, ApiError> {
    let txs = payments::transactions(conn, p.id).await?;
    Ok(views::payment_detail(p, &txs))
}
