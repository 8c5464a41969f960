//! `PATCH /api/payments/{id}/status` (api.md §5.10): permissions by role and relationship,
//! then the shared transition on the locked row.

use axum::extract::{Path, State};
use payplane_authn::CurrentUser;
use payplane_kit::{ApiError, Data, context::RequestContext, json::JsonObject, validate::Fields};
use serde_json::Value;

use super::{lock_payment, parse_id};
use crate::{
    access,
    app::AppState,
    cache::Cache,
    detail,
    domain::{STATUSES, status::PaymentStatus},
    error,
    lifecycle::{self, Change, LifecycleError},
    store::StoreError,
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
    let current = access::visible(&s, &user, id).await?;
    if !access::is_admin(&user) {
        if current.sender_id != user.0.sub {
            return Err(ApiError::forbidden(
                "Only the sender or an administrator may change this payment",
            ));
        }
        if target != PaymentStatus::Cancelled {
            return Err(ApiError::forbidden("Senders may only cancel payments"));
        }
    }
    let (mut tx, mut p) = lock_payment(&s, id, "begin status change").await?;
    let actor = access::actor(&user);
    let change = Change {
        message: reason.clone(),
        failure_reason: reason,
        ..Change::default()
    };
    match lifecycle::transition(
        &mut tx,
        &lifecycle::event_context(&ctx),
        &mut p,
        target,
        change,
        actor,
    )
    .await
    {
        Ok(()) => {}
        Err(LifecycleError::NotAllowed { from, to }) => {
            return Err(error::invalid_transition(from.as_str(), to.as_str()));
        }
        Err(e) => return Err(ApiError::internal(&e)),
    }
    let v = detail::of(&mut tx, &p).await?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit status change"))?;
    s.cache
        .bump(&Cache::payment_scopes(p.id, p.sender_id, p.recipient_id))
        .await;
    Ok(Data(v))
}
