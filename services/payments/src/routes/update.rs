//! `PUT /api/payments/{id}` (api.md §5.9): the sender (or an administrator) edits a pending
//! payment; the edit is saved through the lifecycle.

use axum::extract::{Path, State};
use payplane_authn::CurrentUser;
use payplane_kit::{
    ApiError, Data, context::RequestContext, json::JsonObjectText, validate::Fields,
};
use serde_json::Value;

use super::{lock_payment, parse_id, resolve_user};
use crate::{
    access,
    app::AppState,
    cache::{Cache, Scope},
    detail,
    domain::{
        input::{self, EDIT_FIELDS, Input},
        status::PaymentStatus,
    },
    edit, error, lifecycle,
    store::{StoreError, payments::PaymentRow, users::DirUser},
};

pub async fn update(
    State(s): State<AppState>,
    user: CurrentUser,
    ctx: RequestContext,
    Path(id): Path<String>,
    json: JsonObjectText,
) -> Result<Data<Value>, ApiError> {
    let body = &json.body;
    let mut f = Fields::new(body);
    let input = input::read(body, json.member_text("amount").as_deref(), false, &mut f);
    if !EDIT_FIELDS.iter().any(|k| body.contains_key(*k)) {
        f.push("body", "must contain at least one field to change");
    }
    f.finish()?;
    let id = parse_id(&id)?;
    let current = access::visible(&s, &user, id).await?;
    if !access::is_admin(&user) && current.sender_id != user.0.sub {
        return Err(ApiError::forbidden("Only the sender may edit this payment"));
    }
    if !is_pending(&current) {
        return Err(error::invalid_status());
    }
    let new_recipient = new_recipient(&s, &input, &current).await?;
    let (mut tx, mut p) = lock_payment(&s, id, "begin payment edit").await?;
    if !is_pending(&p) {
        return Err(error::invalid_status());
    }
    let before_recipient = p.recipient_id;
    let edit = edit::apply(&mut p, input, new_recipient)?;
    if edit.changed.is_empty() {
        let v = detail::of(&mut tx, &p).await?;
        tx.commit()
            .await
            .map_err(StoreError::at("commit no-op edit"))?;
        return Ok(Data(v));
    }
    let ectx = lifecycle::event_context(&ctx);
    lifecycle::edit(&mut tx, &ectx, &mut p, edit, access::actor(&user))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let v = detail::of(&mut tx, &p).await?;
    tx.commit()
        .await
        .map_err(StoreError::at("commit payment edit"))?;
    let mut scopes = Cache::payment_scopes(p.id, p.sender_id, p.recipient_id);
    if before_recipient != p.recipient_id {
        scopes.push(Scope::User(before_recipient));
    }
    s.cache.bump(&scopes).await;
    Ok(Data(v))
}

fn is_pending(p: &PaymentRow) -> bool {
    p.status == PaymentStatus::Pending
}

/// Resolves a new recipient named by the edit, if any.
async fn new_recipient(
    s: &AppState,
    input: &Input,
    current: &PaymentRow,
) -> Result<Option<DirUser>, ApiError> {
    if input.both_recipients {
        return Err(error::invalid_recipient(
            "Give either recipientId or recipientEmail, not both",
        ));
    }
    let Some(lookup) = &input.recipient else {
        return Ok(None);
    };
    let r = resolve_user(s, lookup)
        .await?
        .ok_or_else(error::recipient_not_found)?;
    if r.id == current.sender_id {
        return Err(error::invalid_recipient(
            "The sender cannot be the recipient",
        ));
    }
    if !r.is_active {
        return Err(error::invalid_recipient("Recipient account is deactivated"));
    }
    Ok(Some(r))
}
