//! The JSON shapes of api.md §5.2 and the event snapshot of events.md §3, built from rows.

use payplane_events::{payments::PaymentSnapshot, time};
use serde_json::{Value, json};

use crate::store::payments::{PaymentRow, TxRow};

fn ts(at: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    at.map_or(Value::Null, |a| Value::String(time::format(&a)))
}

/// Two fraction digits, always.
pub fn money(amount: rust_decimal::Decimal) -> String {
    format!("{amount:.2}")
}

/// A payment without `transactions` (list items).
pub fn payment(p: &PaymentRow) -> Value {
    json!({
        "id": p.id,
        "senderId": p.sender_id,
        "recipientId": p.recipient_id,
        "amount": p.amount.to_string(),
        "currency": p.currency,
        "status": p.status.as_str(),
        "type": p.payment_type,
        "description": p.description,
        "metadata": p.metadata,
        "pspTransactionId": p.psp_transaction_id,
        "pspStatus": p.psp_status,
        "failureReason": p.failure_reason,
        "scheduledFor": ts(p.scheduled_for),
        "completedAt": ts(p.completed_at),
        "createdAt": time::format(&p.created_at),
        "updatedAt": time::format(&p.updated_at),
        "sender": { "id": p.sender_id, "email": p.sender_email, "name": p.sender_name },
        "recipient": { "id": p.recipient_id, "email": p.recipient_email, "name": p.recipient_name },
    })
}

pub fn transaction(t: &TxRow) -> Value {
    json!({
        "id": t.id,
        "paymentId": t.payment_id,
        "status": t.status,
        "previousStatus": t.previous_status,
        "statusMessage": t.status_message,
        "pspTransactionId": t.psp_transaction_id,
        "actorId": t.actor_id,
        "actorType": t.actor_type,
        "metadata": t.metadata,
        "createdAt": time::format(&t.created_at),
    })
}

/// A payment with its transaction history (single-payment responses).
pub fn payment_detail(p: &PaymentRow, txs: &[TxRow]) -> Value {
    let mut v = payment(p);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "transactions".into(),
            Value::Array(txs.iter().map(transaction).collect()),
        );
    }
    v
}

pub fn snapshot(p: &PaymentRow) -> PaymentSnapshot {
    PaymentSnapshot {
        payment_id: p.id,
        sender_id: p.sender_id,
        recipient_id: p.recipient_id,
        amount: p.amount.to_string(),
        currency: p.currency.clone(),
        status: p.status.as_str().to_owned(),
        payment_type: p.payment_type.clone(),
        description: p.description.clone(),
        scheduled_for: p.scheduled_for,
        psp_transaction_id: p.psp_transaction_id.clone(),
        psp_status: p.psp_status.clone(),
        failure_reason: p.failure_reason.clone(),
        completed_at: p.completed_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}
