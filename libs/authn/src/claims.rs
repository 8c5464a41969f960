//! The access-token claims (api.md §2.2).

use payplane_events::auth::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    /// Same as `sub`, kept for client compatibility.
    #[serde(rename = "userId")]
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub sid: Uuid,
    pub ver: i32,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
}
