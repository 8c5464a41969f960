//! The built-in PSP simulator (api.md §5.11) and the hourly housekeeping (data.md §8).
//! All work is found in the database (`FOR UPDATE SKIP LOCKED`), never held in memory, so it
//! survives restarts and any number of replicas can run it. Each step is one transaction.

use std::time::Duration;

use payplane_bus::outbox::EventContext;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    app::AppState,
    cache::Cache,
    domain::status::PaymentStatus,
    lifecycle::{self, Actor, Change, LifecycleError},
    store::{StoreError, payments},
};

/// Due `pending` payments created at least `$1` ms ago.
const SUBMIT: &str = "status = 'pending' \
    AND created_at <= now() - make_interval(secs => $1::bigint / 1000.0) \
    AND ((type IN ('instant','recurring') AND (scheduled_for IS NULL OR scheduled_for <= now())) \
      OR (type = 'scheduled' AND scheduled_for <= now()))";

/// Simulator-submitted `processing` payments unchanged for at least `$1` ms.
const SETTLE: &str = "status = 'processing' AND psp_transaction_id LIKE 'sim\\_%' \
    AND updated_at <= now() - make_interval(secs => $1::bigint / 1000.0)";

fn sim_reference() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = *uuid::Uuid::new_v4().as_bytes();
    }
    format!("sim_{}", crate::digest::hex(&bytes))
}

fn timer_context() -> EventContext {
    EventContext {
        source: "payments",
        correlation_id: uuid::Uuid::new_v4().to_string(),
        causation_id: None,
        traceparent: None,
        tracestate: None,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The settle decision (the failure rule of §5.11).
pub fn settles_as_failure(description: &str) -> bool {
    description.to_ascii_lowercase().contains("[fail]")
}

/// Runs one step on at most one payment; returns whether one was moved.
async fn step(
    db: &PgPool,
    cache: &Cache,
    submit: bool,
    delay: Duration,
) -> Result<bool, LifecycleError> {
    let mut tx = db
        .begin()
        .await
        .map_err(StoreError::at("begin simulator step"))?;
    let condition = if submit { SUBMIT } else { SETTLE };
    let Some(mut p) = payments::lock_next(&mut tx, condition, millis(delay)).await? else {
        return Ok(false);
    };
    let ctx = timer_context();
    if submit {
        lifecycle::transition(
            &mut tx,
            &ctx,
            &mut p,
            PaymentStatus::Processing,
            Change {
                message: Some("Submitted to payment processor".into()),
                psp_transaction_id: Some(sim_reference()),
                psp_status: Some("processing".into()),
                ..Change::default()
            },
            Actor::SYSTEM,
        )
        .await?;
    } else {
        let (to, change) = settle_change(&p.description);
        lifecycle::transition(&mut tx, &ctx, &mut p, to, change, Actor::SYSTEM).await?;
    }
    tx.commit()
        .await
        .map_err(StoreError::at("commit simulator step"))?;
    cache
        .bump(&Cache::payment_scopes(p.id, p.sender_id, p.recipient_id))
        .await;
    Ok(true)
}

/// The settle step's target and field changes, shared with the webhook's wording.
pub fn settle_change(description: &str) -> (PaymentStatus, Change) {
    if settles_as_failure(description) {
        let reason = "Declined by payment processor (simulated)".to_owned();
        (
            PaymentStatus::Failed,
            Change {
                message: Some(reason.clone()),
                failure_reason: Some(reason),
                psp_status: Some("declined".into()),
                ..Change::default()
            },
        )
    } else {
        (
            PaymentStatus::Completed,
            Change {
                psp_status: Some("succeeded".into()),
                ..Change::default()
            },
        )
    }
}

/// Drains both steps once (tests call this to avoid waiting for the poller).
pub async fn run_once(state: &AppState) -> Result<usize, LifecycleError> {
    let mut moved = 0;
    while step(&state.db, &state.cache, true, state.config.pickup_delay).await? {
        moved += 1;
    }
    while step(&state.db, &state.cache, false, state.config.settle_delay).await? {
        moved += 1;
    }
    Ok(moved)
}

/// Polls every `sim_poll_interval` until `shutdown`.
pub fn spawn(state: AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.sim_poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = run_once(&state).await {
                tracing::warn!(error = %e, "PSP simulator step failed; retrying next poll");
            }
        }
    })
}

/// Hourly cleanup under an advisory lock so one replica runs it (data.md §8).
pub fn spawn_housekeeping(db: PgPool, shutdown: CancellationToken) -> JoinHandle<()> {
    // Nothing to report from a pass: only failures are logged.
    let pass = |db: PgPool| async move { housekeep(&db).await.map(|()| None::<()>) };
    payplane_kit::service::spawn_housekeeping(
        "payments housekeeping",
        Duration::ZERO,
        db,
        shutdown,
        pass,
    )
}

async fn housekeep(db: &PgPool) -> Result<(), sqlx::Error> {
    let Some(mut tx) = payplane_db::begin_locked(db, 7_002_001).await? else {
        return Ok(());
    };
    sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < now() - interval '1 hour'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM psp_webhook_events WHERE received_at < now() - interval '30 days'")
        .execute(&mut *tx)
        .await?;
    let _ = payplane_bus::outbox::delete_published_older_than(&mut tx, 7).await;
    let _ = payplane_bus::consumer::delete_processed_older_than(&mut tx, 30).await;
    tx.commit().await
}
