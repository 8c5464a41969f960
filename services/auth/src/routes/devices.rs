//! Devices (api.md §4.10).

use axum::{
    extract::{Path, State},
    response::IntoResponse,
};
use http::StatusCode;
use payplane_authn::CurrentUser;
use payplane_events::{auth::RevokeReason, time};
use payplane_kit::{ApiError, Data, context::RequestContext, json::JsonObject, validate::Fields};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    account::{self, Actor, event_context},
    app::AppState,
    error,
    routes::{DEVICE_ID_MAX, device_fields},
    store::{
        StoreError,
        sessions::{self, Revoked, Target},
        users,
    },
    views,
};

fn begin_err(source: sqlx::Error) -> StoreError {
    StoreError::new("begin", source)
}

pub async fn list(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Data<Value>, ApiError> {
    let mut conn = s.db.acquire().await.map_err(begin_err)?;
    let current = sessions::by_id(&mut conn, claims.sid)
        .await?
        .and_then(|c| c.device_ref);
    let devices = sessions::devices(&mut conn, claims.sub, time::now()).await?;
    Ok(Data(Value::Array(
        devices.iter().map(|d| views::device(d, current)).collect(),
    )))
}

/// Attaches the current session to a device (kept for client compatibility).
pub async fn register(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let device = device_fields(&mut f, None, true);
    f.finish()?;
    let now = time::now();
    let ev = event_context(&ctx);
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    users::lock(&mut tx, claims.sub).await?;
    let session = sessions::by_id(&mut tx, claims.sid)
        .await?
        .ok_or_else(error::device_not_found)?;
    let mut ended = Vec::new();
    if session.device_id != device.device_id {
        ended = account::end_sessions(
            &mut tx,
            &ev,
            &Target::Device {
                user_id: claims.sub,
                device_id: &device.device_id,
            },
            RevokeReason::Replaced,
            Actor::user(claims.sub),
            now,
        )
        .await?;
    }
    let device_ref = sessions::upsert_device(
        &mut tx,
        claims.sub,
        &device,
        ctx.client.ip,
        ctx.client.user_agent.as_deref(),
        now,
    )
    .await?;
    sessions::attach(&mut tx, claims.sid, device_ref, &device.device_id).await?;
    let row = sessions::device_by_ref(&mut tx, device_ref, now)
        .await?
        .ok_or_else(error::device_not_found)?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit device register"))?;
    s.markers.sessions_revoked(&ended).await;
    Ok(Data(views::device(&row, Some(device_ref))))
}

/// Ends every session of the caller on one device.
pub async fn remove(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
    ctx: RequestContext,
    Path(device_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !payplane_kit::validate::token_like(&device_id, DEVICE_ID_MAX) {
        return Err(error::device_not_found());
    }
    // Only active sessions count; expired leftovers on the device are not "sessions on it".
    let target = Target::ActiveOnDevice {
        user_id: claims.sub,
        device_id: &device_id,
    };
    let reason = (RevokeReason::DeviceLogout, "commit device logout");
    let ended = end_own_sessions(&s, &ctx, claims.sub, &target, reason).await?;
    if ended.is_empty() {
        return Err(error::device_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn logout_others(
    State(s): State<AppState>,
    CurrentUser(claims): CurrentUser,
    ctx: RequestContext,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let _ = f.token("currentDeviceId", false, DEVICE_ID_MAX);
    f.finish()?;
    let target = Target::AllExcept {
        user_id: claims.sub,
        keep: claims.sid,
    };
    let reason = (RevokeReason::LogoutOthers, "commit logout-others");
    let ended = end_own_sessions(&s, &ctx, claims.sub, &target, reason).await?;
    Ok(Data(json!({ "loggedOutCount": ended.len() })))
}

/// Ends the sessions of `target` of the caller `user_id` for `reason` (their `SessionRevoked`
/// events included) under the user's row lock, commits (`what` names the commit), then writes
/// the revocation markers; the sessions ended (none: nothing changed).
async fn end_own_sessions(
    s: &AppState,
    ctx: &RequestContext,
    user_id: Uuid,
    target: &Target<'_>,
    (reason, what): (RevokeReason, &'static str),
) -> Result<Vec<Revoked>, ApiError> {
    let mut tx = s.db.begin().await.map_err(begin_err)?;
    users::lock(&mut tx, user_id).await?;
    let (ev, actor) = (event_context(ctx), Actor::user(user_id));
    let ended = account::end_sessions(&mut tx, &ev, target, reason, actor, time::now()).await?;
    tx.commit().await.map_err(StoreError::at(what))?;
    s.markers.sessions_revoked(&ended).await;
    Ok(ended)
}
