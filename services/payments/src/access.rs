//! Who may see a payment (api.md §5.7): its sender, its recipient, or an administrator. An
//! invisible payment is answered as not found.

use payplane_authn::CurrentUser;
use payplane_events::{ActorType, auth::Role};
use payplane_kit::ApiError;
use uuid::Uuid;

use crate::{
    app::AppState,
    error,
    lifecycle::Actor,
    store::{
        StoreError,
        payments::{self, PaymentRow},
    },
};

pub fn is_admin(u: &CurrentUser) -> bool {
    u.0.role == Role::Admin
}

pub fn can_see(u: &CurrentUser, sender: Uuid, recipient: Uuid) -> bool {
    is_admin(u) || u.0.sub == sender || u.0.sub == recipient
}

/// The caller as the actor of a change: an administrator or a user.
pub fn actor(u: &CurrentUser) -> Actor {
    Actor {
        id: Some(u.0.sub),
        kind: if is_admin(u) {
            ActorType::Admin
        } else {
            ActorType::User
        },
    }
}

/// Reads the payment for a change by `user`: 404 when invisible.
pub async fn visible(s: &AppState, user: &CurrentUser, id: Uuid) -> Result<PaymentRow, ApiError> {
    let mut conn = s.db.acquire().await.map_err(StoreError::at("acquire"))?;
    payments::get(&mut conn, id)
        .await?
        .filter(|p| can_see(user, p.sender_id, p.recipient_id))
        .ok_or_else(error::payment_not_found)
}
