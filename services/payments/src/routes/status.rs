//! `PATCH /api/payments/{id}/status` (api.md §5.10): permissions by role and relationship,
//! then the shared transition on the locked row.

use axum::extract::{Path, State};
use payplane_authn::CurrentUser;
use payplane_events::ActorType;
use payplane_kit::{ApiError, Data, context::RequestContext, json::JsonObject, validate::Fields};
use serde_json::Value;

use super::payments::{detail_of, event_context, is_admin, parse_id, visible};
use crate::{
    app::AppState,
    cache::Cache,
    domain::{STATUSES, status::PaymentStatus},
    error,
    lifecycle::{self, Actor, Change, LifecycleError},
    store::{Ctx, payments},
};

pub async fn change(
    State(s): State<AppState>,
    user: CurrentUser,
    ctx: RequestContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Data<Value>, ApiError> {
    let mut f = Fields::new(&body);
    let target = f.one_of("status", true, &STATUSES);
    let reason = f.text_or_absent("reason", crate::domain::REASON);
    f.finish()?;
    let target = target
        .and_then(PaymentStatus::parse)
        .ok_or_else(|| ApiError::field("status", "is required"))?;
    let id = parse_id(&id)?;
    let current = visible(&s, &user, id).await?;
    let admin = is_admin(&user);
    if !admin {
        if current.sender_id != user.0.sub {
            return Err(ApiError::forbidden(
                "Only the sender or an administrator may change this payment",
            ));
        }
        if target != PaymentStatus::Cancelled {
            return Err(ApiError::forbidden("Senders may only cancel payments"));
        }
    }
    let mut tx = s.db.begin().await.ctx("begin status change")?;
    let mut p = payments::lock(&mut tx, id)
        .await?
        .ok_or_else(error::payment_not_found)?;
    let actor = Actor {
        id: Some(user.0.sub),
        kind: if admin {
            ActorType::Admin
        } else {
            ActorType::User
        },
    };
    let change = Change {
        message: reason.clone(),
        failure_reason: reason,
        ..Change::default()
    };
    match lifecycle::transition(&mut tx, &event_context(&ctx), &mut p, target, change, actor).await
    {
        Ok(()) => {}
        Err(LifecycleError::NotAllowed { from, to }) => {
            return Err(error::invalid_transition(from.as_str(), to.as_str()));
        }
        Err(e) => return Err(ApiError::internal(&e)),
    }
    let v = detail_of(&mut tx, &p).await?;
    tx.commit().await.ctx("commit status change")?;
    s.cache
        .bump(&Cache::payment_scopes(p.id, p.sender_id, p.recipient_id))
        .await;
    Ok(Data(v))
}
