//! `POST /api/payments` (api.md §5.8): validate, claim the idempotency key, resolve the
//! parties, create through the lifecycle, record the answer for the key.

use axum::{extract::State, response::Response};
use http::{HeaderMap, StatusCode};
use payplane_authn::CurrentUser;
use payplane_events::ActorType;
use payplane_kit::{ApiError, context::RequestContext, json::JsonObjectText, validate::Fields};
use serde_json::json;
use uuid::Uuid;

use super::resolve_user;
use crate::{
    app::AppState,
    cache::Cache,
    directory::Lookup,
    domain::{
        input::{self, Input},
        money::Currency,
    },
    error,
    idempotency::{self, Held},
    lifecycle::{self, Actor, ClaimRef, Draft},
    store::{StoreError, users::DirUser},
    views,
};

const PATH: &str = "/api/payments";

pub async fn create(
    State(s): State<AppState>,
    user: CurrentUser,
    ctx: RequestContext,
    headers: HeaderMap,
    json: JsonObjectText,
) -> Result<Response, ApiError> {
    let body = &json.body;
    let mut f = Fields::new(body);
    let input = input::read(body, json.member_text("amount").as_deref(), true, &mut f);
    if let Some(ty) = input.payment_type
        && !f.has_error("scheduledFor")
    {
        input::check_schedule(&mut f, ty, input.scheduled_for.flatten());
    }
    let key = idempotency::key_from(&headers, &mut f);
    f.finish()?;
    let Some(key) = key else {
        return create_payment(&s, &user, &ctx, input, None).await;
    };
    let held = match idempotency::claim(&s.db, user.0.sub, key, PATH, body).await? {
        Ok(held) => held,
        Err(answer) => return Ok(answer),
    };
    let result = create_payment(&s, &user, &ctx, input, Some(&held)).await;
    idempotency::settle(&s.db, &held, result).await
}

async fn create_payment(
    s: &AppState,
    user: &CurrentUser,
    ctx: &RequestContext,
    input: Input,
    held: Option<&Held>,
) -> Result<Response, ApiError> {
    if input.both_recipients {
        return Err(error::invalid_recipient(
            "Give either recipientId or recipientEmail, not both",
        ));
    }
    let lookup = input
        .recipient
        .clone()
        .ok_or_else(error::recipient_not_found)?;
    let (sender, recipient) = resolve_parties(s, user, &lookup).await?;
    let draft = Draft {
        sender,
        recipient,
        amount: input
            .amount
            .ok_or_else(|| ApiError::field("amount", "is required"))?,
        currency: input.currency.unwrap_or(Currency::USD),
        payment_type: input.payment_type.unwrap_or("instant"),
        description: input.description.unwrap_or_default(),
        metadata: input.metadata.flatten(),
        scheduled_for: input.scheduled_for.flatten(),
    };
    let claim = held.map(|h| ClaimRef {
        key: &h.key,
        since: h.owner.since,
    });
    let mut tx =
        s.db.begin()
            .await
            .map_err(StoreError::at("begin payment create"))?;
    let actor = Actor {
        id: Some(user.0.sub),
        kind: ActorType::User,
    };
    let ectx = lifecycle::event_context(ctx);
    let (row, txrow) = match lifecycle::create(&mut tx, &ectx, draft, claim, actor).await {
        Ok(created) => created,
        Err(e) => {
            return match held {
                Some(h) if e.is_claim_taken() => {
                    // This generation of the key already has its payment (a claim taken over
                    // from a request that did commit): the key's answer is that payment,
                    // never a second one.
                    drop(tx);
                    idempotency::replay_existing(s, h).await
                }
                _ => Err(ApiError::internal(&e)),
            };
        }
    };
    let body = json!({ "success": true, "data": views::payment_detail(&row, &[txrow]) });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    if let Some(h) = held
        && !idempotency::finish(&mut tx, h, 201, &bytes, Some(row.id)).await?
    {
        // Taken over while we worked: dropping `tx` rolls the payment back.
        return Err(error::idempotency_in_progress());
    }
    tx.commit()
        .await
        .map_err(StoreError::at("commit payment create"))?;
    s.cache
        .bump(&Cache::payment_scopes(
            row.id,
            row.sender_id,
            row.recipient_id,
        ))
        .await;
    Ok(idempotency::json_response(
        StatusCode::CREATED,
        bytes,
        false,
    ))
}

/// Resolves the recipient and the caller's own directory row (step 3–4 of §5.8).
async fn resolve_parties(
    s: &AppState,
    user: &CurrentUser,
    recipient: &Lookup,
) -> Result<(DirUser, DirUser), ApiError> {
    // Common case: both already in the directory, read in one round trip.
    if let Lookup::Id(rid) = recipient {
        let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
        let rows = crate::store::users::by_ids(&mut conn, &[*rid, user.0.sub]).await?;
        let find = |id: Uuid| rows.iter().find(|u| u.id == id && u.deleted_at.is_none());
        if let (Some(r), Some(me)) = (find(*rid), find(user.0.sub)) {
            return check_parties(me.clone(), r.clone());
        }
    }
    let recipient = resolve_user(s, recipient)
        .await?
        .ok_or_else(error::recipient_not_found)?;
    let sender = resolve_user(s, &Lookup::Id(user.0.sub))
        .await?
        .ok_or_else(|| ApiError::forbidden("Account no longer exists"))?;
    check_parties(sender, recipient)
}

fn check_parties(sender: DirUser, recipient: DirUser) -> Result<(DirUser, DirUser), ApiError> {
    if recipient.id == sender.id {
        return Err(error::invalid_recipient("You cannot pay yourself"));
    }
    if !recipient.is_active {
        return Err(error::invalid_recipient("Recipient account is deactivated"));
    }
    Ok((sender, recipient))
}
