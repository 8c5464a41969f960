//! The one code path for status changes (api.md §5.10–§5.12): used by the status endpoint,
//! the PSP simulator, the webhook and account deletion. Each change, on a payment row the
//! caller has locked, writes the row, a Transaction row and the outbox event in the caller's
//! transaction.

use payplane_bus::outbox::{self, EventContext, OutboxError};
use payplane_events::{
    ActorType,
    payments::{PaymentCancelled, PaymentCompleted, PaymentFailed, PaymentProcessing},
    time,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::status::PaymentStatus,
    store::{
        StoreError,
        payments::{self, NewTx, PaymentRow},
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
    #[error("payment {0} has an unknown status")]
    UnknownStatus(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
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

pub fn actor_type_str(kind: ActorType) -> &'static str {
    match kind {
        ActorType::User => "user",
        ActorType::Admin => "admin",
        ActorType::System => "system",
        ActorType::Psp => "psp",
    }
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

pub fn status_of(p: &PaymentRow) -> Result<PaymentStatus, LifecycleError> {
    PaymentStatus::parse(&p.status).ok_or(LifecycleError::UnknownStatus(p.id))
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
    let from = status_of(p)?;
    if !from.can_become(to) {
        return Err(LifecycleError::NotAllowed { from, to });
    }
    let now = time::now();
    to.as_str().clone_into(&mut p.status);
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
            status: to.as_str(),
            previous_status: Some(from.as_str()),
            status_message: &message,
            psp_transaction_id: p.psp_transaction_id.as_deref(),
            actor_id: actor.id,
            actor_type: actor_type_str(actor.kind),
            metadata: None,
            at: now,
        },
    )
    .await?;
    let snapshot = views::snapshot(p);
    let previous_status = from.as_str().to_owned();
    let agg = p.id.to_string();
    let (actor_id, actor_type) = (actor.id, actor.kind);
    match to {
        PaymentStatus::Processing => {
            let ev = PaymentProcessing {
                payment: snapshot,
                actor_id,
                actor_type,
                previous_status,
                processing_at: now,
            };
            outbox::enqueue(conn, ctx, &agg, &ev).await?;
        }
        PaymentStatus::Completed => {
            let ev = PaymentCompleted {
                payment: snapshot,
                actor_id,
                actor_type,
                previous_status,
            };
            outbox::enqueue(conn, ctx, &agg, &ev).await?;
        }
        PaymentStatus::Failed => {
            let ev = PaymentFailed {
                payment: snapshot,
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
                payment: snapshot,
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
