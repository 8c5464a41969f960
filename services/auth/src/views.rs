//! JSON shapes of api.md §4.2, §4.10 and §8.1. Pure.

use payplane_events::time::format;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::store::{sessions::DeviceRow, users::User};

/// PublicUser: exactly six fields (kept for client compatibility).
pub fn public_user(u: &User) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "role": u.role,
        "createdAt": format(&u.created_at),
        "updatedAt": format(&u.updated_at),
    })
}

/// InternalUser (internal answers only): the PublicUser fields and the account's state.
pub fn internal_user(u: &User) -> Value {
    let mut user = public_user(u);
    if let Value::Object(fields) = &mut user {
        fields.extend([
            ("isActive".to_owned(), json!(u.is_active)),
            ("emailVerified".to_owned(), json!(u.email_verified)),
            ("tokenVersion".to_owned(), json!(u.token_version)),
        ]);
    }
    user
}

pub fn device(d: &DeviceRow, current_ref: Option<Uuid>) -> Value {
    json!({
        "id": d.id,
        "userId": d.user_id,
        "deviceId": d.device_id,
        "deviceName": d.device_name,
        "deviceType": d.device_type,
        "userAgent": d.user_agent,
        "ipAddress": d.ip_address.map(|n| n.addr().to_string()),
        "lastActiveAt": format(&d.last_active_at),
        "createdAt": format(&d.created_at),
        "current": current_ref == Some(d.id),
        "activeSessions": d.active_sessions,
    })
}
