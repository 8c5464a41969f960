//! `POST /api/payments/webhooks/psp` (api.md §5.12): HMAC-SHA256 over `<t>.<raw body>` with
//! 5 minutes of clock skew, then the event recorded with its outcome and the payment changed
//! in one transaction; a replayed PSP event id repeats the first outcome and changes nothing.

use axum::{body::Bytes, extract::State};
use http::{HeaderMap, header::CONTENT_TYPE};
use payplane_bus::outbox::EventContext;
use payplane_kit::{ApiError, Data, context::RequestContext, query::parse_date, validate::Fields};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    app::AppState,
    cache::Cache,
    domain::status::PaymentStatus,
    domain::{PSP_FAILURE_REASON, PSP_ID, PSP_STATUS},
    error,
    lifecycle::{self, Actor, Change, LifecycleError},
    store::{Ctx, payments, webhook_events},
};

/// Allowed clock skew between the PSP and us.
pub const MAX_SKEW_SECS: u64 = 300;

/// Checks `Psp-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` against every secret.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> bool {
    let Some(header) = header else { return false };
    let mut t: Option<&str> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return false;
        };
        match k {
            "t" => t = Some(v),
            "v1" => {
                if let Some(bytes) = from_hex(v) {
                    sigs.push(bytes);
                }
            }
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let Ok(ts) = t.parse::<i64>() else {
        return false;
    };
    // abs_diff: `now - ts` overflows for an extreme `t` (i64::MIN) and would panic.
    if now.abs_diff(ts) > MAX_SKEW_SECS || sigs.is_empty() {
        return false;
    }
    let mut signed = Vec::with_capacity(t.len() + 1 + body.len());
    signed.extend_from_slice(t.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    secrets.iter().any(|secret| {
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            secret.expose_secret().as_bytes(),
        );
        sigs.iter()
            .any(|sig| aws_lc_rs::hmac::verify(&key, &signed, sig).is_ok())
    })
}

/// The header value a PSP would send (tests, tools).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = aws_lc_rs::hmac::sign(&key, &signed);
    format!("t={t},v1={}", crate::digest::hex(tag.as_ref()))
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The event types a PSP may send (api.md §5.12).
pub const EVENT_TYPES: [&str; 5] = [
    "payment.processing",
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
    "payment.cancelled",
];

fn target_of(event_type: &str) -> PaymentStatus {
    match event_type {
        "payment.processing" => PaymentStatus::Processing,
        "payment.succeeded" => PaymentStatus::Completed,
        "payment.failed" => PaymentStatus::Failed,
        _ => PaymentStatus::Cancelled,
    }
}

struct WebhookEvent {
    id: String,
    event_type: &'static str,
    payment_id: Uuid,
    psp_transaction_id: String,
    psp_status: String,
    failure_reason: Option<String>,
}

fn validate(body: &Map<String, Value>) -> Result<WebhookEvent, ApiError> {
    let mut f = Fields::new(body);
    let id = f.text("id", true, PSP_ID);
    let event_type = f.one_of("type", true, &EVENT_TYPES);
    if let Some(v) = f.get("createdAt")
        && v.as_str().and_then(|s| parse_date(s, false)).is_none()
    {
        f.push("createdAt", "must be an RFC 3339 timestamp");
    }
    let empty = Map::new();
    let data = match f.get("data") {
        Some(Value::Object(d)) => d,
        Some(_) => {
            f.push("data", "must be an object");
            &empty
        }
        None => {
            f.push("data", "is required");
            &empty
        }
    };
    let mut d = Fields::new(data);
    let payment_id = match d.get("paymentId") {
        Some(Value::String(s)) => Uuid::parse_str(s).ok(),
        _ => None,
    };
    if payment_id.is_none() {
        f.push("data.paymentId", "must be a UUID");
    }
    let psp_tx = d.text("pspTransactionId", true, PSP_ID);
    let psp_status = d.text("pspStatus", false, PSP_STATUS);
    let reason = d.text("failureReason", false, PSP_FAILURE_REASON);
    if let Err(e) = d.finish()
        && let Some(Value::Array(items)) = e.details
    {
        for item in items {
            let field = item["field"].as_str().unwrap_or_default();
            f.push(
                &format!("data.{field}"),
                item["message"].as_str().unwrap_or_default(),
            );
        }
    }
    f.finish()?;
    let event_type = event_type.unwrap_or("payment.processing");
    Ok(WebhookEvent {
        id: id.unwrap_or_default(),
        event_type,
        payment_id: payment_id.unwrap_or_default(),
        psp_transaction_id: psp_tx.unwrap_or_default(),
        psp_status: psp_status.unwrap_or_else(|| {
            event_type
                .split_once('.')
                .map_or(event_type, |(_, s)| s)
                .to_owned()
        }),
        failure_reason: reason.filter(|r| !r.is_empty()),
    })
}

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
    let mut tx = s.db.begin().await.ctx("begin webhook")?;
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
        tx.commit().await.ctx("commit webhook duplicate")?;
        return Ok(Data(v));
    }
    let Some(mut p) = payments::lock(&mut tx, ev.payment_id).await? else {
        tx.commit().await.ctx("commit webhook")?;
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
    tx.commit().await.ctx("commit webhook")?;
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

fn change_for(ev: &WebhookEvent, target: PaymentStatus) -> Change {
    let failure_reason = match target {
        PaymentStatus::Failed => Some(
            ev.failure_reason
                .clone()
                .unwrap_or_else(|| "Payment failed".into()),
        ),
        PaymentStatus::Cancelled => Some(
            ev.failure_reason
                .clone()
                .unwrap_or_else(|| "Cancelled by payment processor".into()),
        ),
        _ => None,
    };
    Change {
        message: None,
        failure_reason,
        psp_transaction_id: Some(ev.psp_transaction_id.clone()),
        psp_status: Some(ev.psp_status.clone()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_rules() {
        let secrets = vec![SecretString::from("old"), SecretString::from("new")];
        let body = br#"{"id":"evt_1"}"#;
        let header = sign("new", 1_000, body);
        assert!(verify_signature(Some(&header), body, &secrets, 1_000));
        assert!(verify_signature(Some(&header), body, &secrets, 1_300));
        assert!(!verify_signature(Some(&header), body, &secrets, 1_301));
        assert!(!verify_signature(Some(&header), b"{}", &secrets, 1_000));
        assert!(!verify_signature(
            Some(&header),
            body,
            &["other".into()],
            1_000
        ));
        assert!(!verify_signature(Some(&header), body, &[], 1_000));
        assert!(!verify_signature(None, body, &secrets, 1_000));
        assert!(!verify_signature(Some("t=1000"), body, &secrets, 1_000));
        let two = format!("{},v1=00ff", sign("old", 1_000, body));
        assert!(verify_signature(Some(&two), body, &secrets, 1_000));
    }

    /// An extreme timestamp is refused, not an overflow panic (`(now - t).abs()` before).
    #[test]
    fn extreme_timestamps_are_refused_without_overflow() {
        let secrets = vec![SecretString::from("s")];
        let body = b"{}";
        for (t, now) in [
            (i64::MIN, 1_000),
            (i64::MAX, 1_000),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
        ] {
            let header = sign("s", t, body);
            assert!(!verify_signature(Some(&header), body, &secrets, now));
        }
    }
}
