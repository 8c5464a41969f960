//! The one code path for every change of a payment: creation (api.md §5.8), edits (§5.9) and
//! status changes (§5.10–§5.12, used by the status endpoint, the PSP simulator, the webhook and
//! account deletion). Each change writes the row, a Transaction row and the outbox event in the
//! caller's transaction (edits and status changes on a row the caller has locked).

use chrono::{DateTime, Utc};
use payplane_bus::outbox::{self, EventContext, OutboxError};
use payplane_events::{
    ActorType,
    payments::{
        PaymentCancelled, PaymentCompleted, PaymentCreated, PaymentFailed, PaymentProcessing,
        PaymentUpdated,
    },
    time,
};
use payplane_kit::context::RequestContext;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{
        money::{Amount, Currency},
        status::PaymentStatus,
    },
    store::{
        StoreError,
        payments::{self, NewPayment, NewTx, PaymentRow, TxRow},
        users::DirUser,
    },
    views,
};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("transition {from} -> {to} is not allowed")]
    NotAllowed {
        from: PaymentStatus,
        to: PaymentStatus,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl LifecycleError {
    /// Whether a creation failed because its idempotency claim already has its payment.
    pub fn is_claim_taken(&self) -> bool {
        matches!(self, LifecycleError::Store(e)
            if e.source.as_database_error().and_then(|d| d.constraint())
                == Some("payments_idempotency_once"))
    }
}

/// Who changes the status.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub kind: ActorType,
}

impl Actor {
    pub const SYSTEM: Actor = Actor {
        id: None,
        kind: ActorType::System,
    };
    pub const PSP: Actor = Actor {
        id: None,
        kind: ActorType::Psp,
    };
}

/// The event context of a change made by an API request.
pub fn event_context(ctx: &RequestContext) -> EventContext {
    EventContext::for_request("payments", ctx)
}

/// One requested change of status.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Transaction message; `"Payment <status>"` when `None`.
    pub message: Option<String>,
    /// `failureReason` for failed/cancelled; a default per target when `None`.
    pub failure_reason: Option<String>,
    pub psp_transaction_id: Option<String>,
    pub psp_status: Option<String>,
}

/// Applies `to` to the locked payment `p` (updated in place).
pub async fn transition(
    conn: &mut PgConnection,
    ctx: &EventContext,
    p: &mut PaymentRow,
    to: PaymentStatus,
    change: Change,
    actor: Actor,
) -> Result<(), LifecycleError> {
    let from = p.status;
    if !from.can_become(to) {
        return Err(LifecycleError::NotAllowed { from, to });
    }
    let now = time::now();
    p.status = to;
    p.updated_at = now;
    if let Some(tx_id) = change.psp_transaction_id {
        p.psp_transaction_id = Some(tx_id);
    }
    if let Some(st) = change.psp_status {
        p.psp_status = Some(st);
    }
    match to {
        PaymentStatus::Completed => p.completed_at = Some(now),
        PaymentStatus::Failed => {
            p.failure_reason = Some(
                change
                    .failure_reason
                    .unwrap_or_else(|| "Payment failed".into()),
            );
        }
        PaymentStatus::Cancelled => {
            p.failure_reason = Some(change.failure_reason.unwrap_or_else(|| {
                if actor.kind == ActorType::Admin {
                    "Cancelled by administrator".into()
                } else {
                    "Cancelled by sender".into()
                }
            }));
        }
        PaymentStatus::Pending | PaymentStatus::Processing => {}
    }
    payments::save(conn, p).await?;
    let message = change
        .message
        .unwrap_or_else(|| format!("Payment {}", to.as_str()));
    payments::insert_tx(
        conn,
        &NewTx {
            payment_id: p.id,
            status: to,
            previous_status: Some(from),
            status_message: &message,
            psp_transaction_id: p.psp_transaction_id.as_deref(),
            actor_id: actor.id,
            actor_type: actor.kind,
            metadata: None,
            at: now,
        },
    )
    .await?;
    announce(conn, ctx, p, from, to, actor, now).await
}

/// Enqueues the event of a status change from `from` to `to` (events.md §3).
async fn announce(
    conn: &mut PgConnection,
    ctx: &EventContext,
    p: &PaymentRow,
    from: PaymentStatus,
    to: PaymentStatus,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let payment = views::snapshot(p);
    let previous_status = from.as_str().to_owned();
    let agg = p.id.to_string();
    let (actor_id, actor_type) = (actor.id, actor.kind);
    match to {
        PaymentStatus::Processing => {
            let ev = PaymentProcessing {
                payment,
                actor_id,
                actor_type,
                previous_status,
                processing_at: now,
            };
            outbox::enqueue(conn, ctx, &agg, &ev).await?;
        }
        PaymentStatus::Completed => {
            let ev = PaymentCompleted {
                payment,
                actor_id,
                actor_type,
                previous_status,
            };
            outbox::enqueue(conn, ctx, &agg, &ev).await?;
        }
        PaymentStatus::Failed => {
            let ev = PaymentFailed {
                payment,
                actor_id,
                actor_type,
                previous_status,
                failed_at: now,
            };
            outbox::enqueue(conn, ctx, &agg, &ev).await?;
        }
        PaymentStatus::Cancelled => {
            let ev = PaymentCancelled {
                reason: p.failure_reason.clone(),
                payment,
                actor_id,
                actor_type,
                previous_status,
                cancelled_at: now,
            };
            outbox::enqueue(conn, ctx, &agg, &ev).await?;
        }
        PaymentStatus::Pending => {}
    }
    Ok(())
}

/// A payment to create: validated, with its parties resolved.
#[derive(Debug, Clone)]
pub struct Draft {
    pub sender: DirUser,
    pub recipient: DirUser,
    pub amount: Amount,
    pub currency: Currency,
    pub payment_type: &'static str,
    pub description: String,
    pub metadata: Option<Value>,
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// The idempotency claim a created payment carries: the key and its generation.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRef<'a> {
    pub key: &'a str,
    pub since: DateTime<Utc>,
}

/// Creates a pending payment: the row, the `pending` Transaction row and `payment.created`.
/// Returns the row and its first transaction. A second payment for one claim fails on the
/// unique index `payments_idempotency_once` ([`LifecycleError::is_claim_taken`]).
pub async fn create(
    conn: &mut PgConnection,
    ctx: &EventContext,
    draft: Draft,
    claim: Option<ClaimRef<'_>>,
    actor: Actor,
) -> Result<(PaymentRow, TxRow), LifecycleError> {
    let now = time::now();
    let id = Uuid::new_v4();
    payments::insert(
        conn,
        &NewPayment {
            id,
            sender_id: draft.sender.id,
            recipient_id: draft.recipient.id,
            amount: draft.amount,
            currency: draft.currency.code(),
            payment_type: draft.payment_type,
            description: &draft.description,
            metadata: draft.metadata.as_ref(),
            scheduled_for: draft.scheduled_for,
            idempotency_key: claim.map(|c| c.key),
            idempotency_since: claim.map(|c| c.since),
            status: PaymentStatus::Pending,
            psp_transaction_id: None,
            psp_status: None,
            completed_at: None,
            now,
        },
    )
    .await?;
    let tx = payments::insert_tx(conn, &NewTx::created(id, actor.id, actor.kind, now)).await?;
    let row = created_row(id, draft, now);
    let ev = PaymentCreated {
        payment: views::snapshot(&row),
        actor_id: actor.id,
        actor_type: actor.kind,
    };
    outbox::enqueue(conn, ctx, &id.to_string(), &ev).await?;
    Ok((row, tx))
}

/// The row as [`create`] stored it.
fn created_row(id: Uuid, d: Draft, now: DateTime<Utc>) -> PaymentRow {
    PaymentRow {
        id,
        sender_id: d.sender.id,
        recipient_id: d.recipient.id,
        amount: d.amount,
        currency: d.currency.code().to_owned(),
        status: PaymentStatus::Pending,
        payment_type: d.payment_type.to_owned(),
        description: d.description,
        metadata: d.metadata,
        psp_transaction_id: None,
        psp_status: None,
        failure_reason: None,
        scheduled_for: d.scheduled_for,
        completed_at: None,
        created_at: now,
        updated_at: now,
        sender_email: d.sender.email,
        sender_name: d.sender.name,
        recipient_email: d.recipient.email,
        recipient_name: d.recipient.name,
    }
}

/// The fields an edit changed and their previous values (api.md §5.9, `payment.updated`).
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub changed: Vec<&'static str>,
    pub previous: Map<String, Value>,
}

/// Saves the edited pending payment `p` (locked, changed in place by the caller): the row, a
/// `pending` Transaction row naming the changed fields and `payment.updated`.
pub async fn edit(
    conn: &mut PgConnection,
    ctx: &EventContext,
    p: &mut PaymentRow,
    edit: Edit,
    actor: Actor,
) -> Result<(), LifecycleError> {
    let now = time::now();
    p.updated_at = now;
    payments::save(conn, p).await?;
    payments::insert_tx(
        conn,
        &NewTx {
            payment_id: p.id,
            status: PaymentStatus::Pending,
            previous_status: Some(PaymentStatus::Pending),
            status_message: "Payment details updated",
            psp_transaction_id: None,
            actor_id: actor.id,
            actor_type: actor.kind,
            metadata: Some(json!({ "changedFields": edit.changed })),
            at: now,
        },
    )
    .await?;
    let ev = PaymentUpdated {
        payment: views::snapshot(p),
        actor_id: actor.id,
        actor_type: actor.kind,
        changed_fields: edit.changed.iter().map(|c| (*c).to_owned()).collect(),
        previous: edit.previous,
    };
    outbox::enqueue(conn, ctx, &p.id.to_string(), &ev).await?;
    Ok(())
}
