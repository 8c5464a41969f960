//! `POST /api/payments/webhooks/psp` (api.md §5.12): the signature and the body checked
//! ([`crate::psp`]), then the event recorded with its outcome and the payment changed through
//! the lifecycle in one transaction; a replayed PSP event id repeats the first outcome and
//! changes nothing.

use axum::{body::Bytes, extract::State};
use http::{HeaderMap, header::CONTENT_TYPE};
use payplane_bus::outbox::EventContext;
use payplane_kit::{ApiError, Data, context::RequestContext};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

pub use crate::psp::{EVENT_TYPES, MAX_SKEW_SECS, sign, verify_signature};
use crate::{
    app::AppState,
    cache::Cache,
    domain::status::PaymentStatus,
    error,
    lifecycle::{self, Actor, Change, LifecycleError},
    psp::{WebhookEvent, change_for, target_of, validate},
    store::{StoreError, payments, webhook_events},
};

pub async fn receive(
    State(s): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Data<Value>, ApiError> {
    let header = headers.get("psp-signature").and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if !verify_signature(header, &body, &s.config.webhook_secrets, now) {
        return Err(error::invalid_signature());
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let obj = payplane_kit::json::parse_object(content_type, &body)?;
    let ev = validate(&obj)?;
    let mut tx =
        s.db.begin()
            .await
            .map_err(StoreError::at("begin webhook"))?;
    if !webhook_events::record(
        &mut tx,
        &ev.id,
        ev.event_type,
        ev.payment_id,
        &Value::Object(obj),
    )
    .await?
    {
        let v = duplicate(&mut tx, &ev.id).await?;
        tx.commit()
            .await
            .map_err(StoreError::at("commit webhook duplicate"))?;
        return Ok(Data(v));
    }
    let Some(mut p) = payments::lock(&mut tx, ev.payment_id).await? else {
        tx.commit()
            .await
            .map_err(StoreError::at("commit webhook"))?;
        return Ok(Data(answer(
            &ev.id,
            false,
            false,
            Some(ev.payment_id),
            None,
            "payment_not_found",
        )));
    };
    let outcome = apply_event(&mut tx, &lifecycle::event_context(&ctx), &mut p, &ev).await?;
    let applied = outcome == "applied";
    webhook_events::set_outcome(&mut tx, &ev.id, applied, outcome).await?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit webhook"))?;
    if applied {
        s.cache
            .bump(&Cache::payment_scopes(p.id, p.sender_id, p.recipient_id))
            .await;
    }
    Ok(Data(answer(
        &ev.id,
        false,
        applied,
        Some(p.id),
        Some(p.status.as_str()),
        outcome,
    )))
}

/// The answer to a redelivered event: its first outcome and the payment's current status.
async fn duplicate(conn: &mut PgConnection, event_id: &str) -> Result<Value, ApiError> {
    let first = webhook_events::get(conn, event_id).await?;
    let status = match first.payment_id {
        Some(pid) => payments::get(conn, pid).await?.map(|p| p.status),
        None => None,
    };
    Ok(answer(
        event_id,
        true,
        first.applied,
        first.payment_id,
        status.map(PaymentStatus::as_str),
        &first.outcome,
    ))
}

/// Applies the event to the locked payment through the lifecycle; returns the outcome.
async fn apply_event(
    conn: &mut PgConnection,
    ectx: &EventContext,
    p: &mut payments::PaymentRow,
    ev: &WebhookEvent,
) -> Result<&'static str, ApiError> {
    let target = target_of(ev.event_type);
    let from = p.status;
    // A PSP reference is unique across payments (data.md §3.2). One that already belongs to
    // another payment is a PSP-side mix-up: recorded for reconciliation, never a 500 that the
    // PSP would retry forever.
    let held_elsewhere = payments::psp_reference_holder(conn, &ev.psp_transaction_id, p.id).await?;
    Ok(if from == target {
        "already_in_status"
    } else if let Some(other) = held_elsewhere {
        tracing::warn!(payment_id = %p.id, other_payment_id = %other, event_id = %ev.id,
            "PSP transaction id already belongs to another payment; left for reconciliation");
        "psp_transaction_conflict"
    } else if from == PaymentStatus::Pending && target == PaymentStatus::Completed {
        let step = Change {
            psp_transaction_id: Some(ev.psp_transaction_id.clone()),
            psp_status: Some("processing".into()),
            ..Change::default()
        };
        apply(conn, ectx, p, PaymentStatus::Processing, step).await?;
        apply(conn, ectx, p, target, change_for(ev, target)).await?;
        "applied"
    } else if from.can_become(target) {
        apply(conn, ectx, p, target, change_for(ev, target)).await?;
        "applied"
    } else {
        tracing::warn!(payment_id = %p.id, from = %from, to = %target, event_id = %ev.id,
            "PSP event does not fit the payment's status; left for reconciliation");
        "invalid_transition"
    })
}

async fn apply(
    conn: &mut PgConnection,
    ctx: &EventContext,
    p: &mut payments::PaymentRow,
    to: PaymentStatus,
    change: Change,
) -> Result<(), ApiError> {
    lifecycle::transition(conn, ctx, p, to, change, Actor::PSP)
        .await
        .map_err(|e: LifecycleError| ApiError::internal(&e))
}

fn answer(
    event_id: &str,
    duplicate: bool,
    applied: bool,
    payment_id: Option<Uuid>,
    status: Option<&str>,
    outcome: &str,
) -> Value {
    let mut v = json!({
        "eventId": event_id,
        "duplicate": duplicate,
        "applied": applied,
        "paymentId": payment_id,
        "status": status,
    });
    if outcome != "applied" {
        v["reason"] = Value::String(outcome.to_owned());
    }
    v
}
