//! The Profile object of api.md §7.1 as JSON. Pure.

use payplane_events::time;
use serde_json::{Value, json};

use crate::{domain::preferences, store::profiles::Profile};

pub fn profile(p: &Profile) -> Value {
    json!({
        "id": p.id,
        "userId": p.user_id,
        "phone": p.phone,
        "address": p.address,
        "bio": p.bio,
        "avatarUrl": p.avatar_url,
        "preferences": preferences::effective(&p.preferences),
        "createdAt": time::format(&p.created_at),
        "updatedAt": time::format(&p.updated_at),
    })
}
