//! Admin lockout tools (api.md §4.11). They emit no event and write no audit entry.

use axum::extract::{Path, State};
use payplane_authn::CurrentUser;
use payplane_events::{auth::Role, time};
use payplane_kit::{ApiError, Data};
use serde_json::{Value, json};

use crate::{
    app::AppState,
    lockout,
    store::{StoreError, throttle},
    tokens,
};

fn parse_email(raw: &str) -> Result<String, ApiError> {
    payplane_kit::validate::email(raw).map_err(|msg| ApiError::field("email", msg))
}

pub async fn show(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(email): Path<String>,
) -> Result<Data<Value>, ApiError> {
    user.require(&[Role::Admin])?;
    let email = parse_email(&email)?;
    let now = time::now();
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let mut state = throttle::get(&mut conn, &tokens::email_hash(&email))
        .await?
        .unwrap_or_default();
    lockout::apply_memory_reset(&mut state, now);
    let locked_until = state.locked_until.filter(|u| *u > now);
    let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| time::format(&t));
    let lock = locked_until.map(|until| {
        json!({
            "lockedAt": fmt(state.locked_at),
            "unlockAt": time::format(&until),
            "reason": "too_many_failed_attempts",
            "failedAttempts": state.failed_count,
        })
    });
    Ok(Data(json!({
        "email": email,
        "isLocked": locked_until.is_some(),
        "failedAttempts": state.failed_count,
        "lastFailedAt": fmt(state.last_failed_at),
        "lockedUntil": fmt(locked_until),
        "lockout": lock,
    })))
}

pub async fn unlock(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(email): Path<String>,
) -> Result<Data<Value>, ApiError> {
    user.require(&[Role::Admin])?;
    let email = parse_email(&email)?;
    let now = time::now();
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    let was = throttle::clear(&mut tx, &tokens::email_hash(&email)).await?;
    tx.commit().await.map_err(StoreError::at("commit unlock"))?;
    let was_locked = was.and_then(|t| t.locked_until).is_some_and(|u| u > now);
    Ok(Data(json!({
        "email": email,
        "wasLocked": was_locked,
        "message": format!("Account {email} has been unlocked"),
    })))
}
