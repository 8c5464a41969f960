//! PSP webhook events (data.md §3.5): each event id recorded once with its outcome, so a
//! redelivery repeats the first answer.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Ctx, StoreError};

/// An event as first recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recorded {
    pub applied: bool,
    pub outcome: String,
    pub payment_id: Option<Uuid>,
}

/// Records a new event with the provisional outcome `payment_not_found`; `false` when the id
/// is already recorded. Claiming the id first serialises concurrent deliveries of one event.
pub async fn record(
    conn: &mut PgConnection,
    event_id: &str,
    event_type: &str,
    payment_id: Uuid,
    payload: &Value,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO psp_webhook_events (event_id, event_type, payment_id, payload, applied, outcome) \
         VALUES ($1, $2, $3, $4, false, 'payment_not_found') ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(payment_id)
    .bind(payload)
    .execute(conn)
    .await
    .ctx("record webhook event")?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn get(conn: &mut PgConnection, event_id: &str) -> Result<Recorded, StoreError> {
    sqlx::query_as(
        "SELECT applied, outcome, payment_id FROM psp_webhook_events WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(conn)
    .await
    .ctx("read webhook event")
}

pub async fn set_outcome(
    conn: &mut PgConnection,
    event_id: &str,
    applied: bool,
    outcome: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE psp_webhook_events SET applied = $2, outcome = $3 WHERE event_id = $1")
        .bind(event_id)
        .bind(applied)
        .bind(outcome)
        .execute(conn)
        .await
        .ctx("record webhook outcome")?;
    Ok(())
}
