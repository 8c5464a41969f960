//! `GET /api/auth/me` and `POST /api/auth/password` (api.md §4.8, §4.9).

use axum::extract::State;
use chrono::{DateTime, Utc};
use http::StatusCode;
use payplane_authn::CurrentUser;
use payplane_events::{
    auth::{PasswordChanged, RevokeReason},
    time,
};
use payplane_kit::{ApiError, Data, context::RequestContext, json::JsonObject, validate::Fields};
use serde_json::{Value, json};

use crate::{
    account::{self, Actor, event_context},
    app::AppState,
    error,
    lockout::{self, Failure},
    password,
    routes::attempt::{self, gate_refusal},
    store::{StoreError, sessions::Target, throttle, users},
    tokens,
    views::public_user,
};

pub async fn me(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Data<Value>, ApiError> {
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    let user = users::by_id(&mut conn, claims.sub)
        .await?
        .ok_or_else(|| error::unauthorized("TOKEN_INVALID", "Account no longer exists"))?;
    Ok(Data(public_user(&user)))
}

fn invalid_password() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_PASSWORD",
        "Current password is incorrect",
    )
}

/// The answer to a wrong current password: locked now (with the wait), or counted.
fn wrong_current_password(outcome: Failure, now: DateTime<Utc>) -> ApiError {
    match outcome {
        Failure::LockedNow { until } => error::account_locked(
            lockout::wait_seconds(until, now),
            Some(time::format(&until)),
        ),
        Failure::Counted { remaining } => match remaining {
            Some(n) => invalid_password().with_details(json!({ "remainingAttempts": n })),
            None => invalid_password(),
        },
    }
}

pub async fn change_password(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let current = f.secret("currentPassword", true, 1, password::PASSWORD_MAX);
    let new = payplane_kit::password::field(&mut f, "newPassword");
    if !f.has_error("newPassword") && new.is_some() && new == current {
        f.push("newPassword", "must differ from the current password");
    }
    f.finish()?;
    let (current, new) = (current.unwrap_or_default(), new.unwrap_or_default());

    // Phase 1, no transaction: the user's stored hash and a first look at the gate, so a locked
    // account costs no hash.
    let (user, early) = {
        let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
        let user = users::by_id(&mut conn, claims.sub)
            .await?
            .ok_or_else(|| error::unauthorized("TOKEN_INVALID", "Account no longer exists"))?;
        let gate = attempt::peek(&mut conn, &tokens::email_hash(&user.email)).await?;
        (user, gate)
    };
    if let Some(err) = gate_refusal(early) {
        return Err(err);
    }
    // Phase 2: both hashes outside any transaction, bounded by the hasher's slots.
    let valid = s.hasher.verify(Some(&user.password_hash), &current).await?;
    let hash = if valid {
        Some(s.hasher.hash(&new).await?)
    } else {
        None
    };
    // Phase 3, under the user and throttle row locks: counted exactly, gate checked again.
    let now = time::now();
    let mut tx = s.db.begin().await.map_err(StoreError::at("begin"))?;
    let verified_hash = user.password_hash;
    let user = users::lock(&mut tx, claims.sub)
        .await?
        .ok_or_else(|| error::unauthorized("TOKEN_INVALID", "Account no longer exists"))?;
    let key = tokens::email_hash(&user.email);
    let (mut tx, state) = attempt::lock_open(tx, &key, now, gate_refusal).await?;
    let Some(hash) = hash else {
        let what = "commit failed password change";
        let outcome = attempt::count_failure(tx, &key, state, ctx.client.ip, now, what).await?;
        return Err(wrong_current_password(outcome, now));
    };
    if user.password_hash != verified_hash {
        // Changed by a parallel request while this one hashed: what was checked is no longer
        // the current password (not counted as a failure: it was right when checked).
        return Err(invalid_password());
    }
    throttle::clear(&mut tx, &key).await?;
    users::set_password(&mut tx, user.id, &hash, now).await?;
    let ev = event_context(&ctx);
    let ended = account::end_sessions(
        &mut tx,
        &ev,
        &Target::AllExcept {
            user_id: user.id,
            keep: claims.sid,
        },
        RevokeReason::PasswordChanged,
        Actor::user(user.id),
        now,
    )
    .await?;
    let event = PasswordChanged {
        user_id: user.id,
        email: user.email.clone(),
        session_id: claims.sid,
        revoked_session_count: i64::try_from(ended.len()).unwrap_or(i64::MAX),
        ip_address: ctx.client.ip.map(|ip| ip.to_string()),
        user_agent: ctx.client.user_agent.clone(),
        changed_at: now,
    };
    account::publish(&mut tx, &ev, user.id, &event).await?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit password change"))?;
    s.markers.sessions_revoked(&ended).await;
    Ok(Data(
        json!({ "message": "Password changed successfully", "revokedSessions": ended.len() }),
    ))
}
