//! The Redis revocation markers of api.md §2.4 / data.md §6.1: key names (shared with the
//! writer in auth) and the fail-closed check every verifier runs after the signature.
//!
//! Redis may lose every marker (the built-in one keeps nothing across a restart). Auth's
//! reconciler rewrites them all from its database and then sets [`MARKERS_READY_KEY`]; a
//! verifier that does not see that key cannot tell revoked tokens from good ones and refuses
//! (503) until it is back — so no moment exists in which a revoked token passes.

use std::time::Duration;

use redis::{AsyncCommands, aio::ConnectionManager};
use uuid::Uuid;

use crate::AccessClaims;

pub fn revoked_sid_key(sid: Uuid) -> String {
    format!("auth:revoked:sid:{sid}")
}

pub fn token_version_key(user_id: Uuid) -> String {
    format!("auth:tokver:{user_id}")
}

/// Present while Redis holds every marker still in force (set by auth after a full rewrite).
pub const MARKERS_READY_KEY: &str = "auth:markers:ready";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("session revoked")]
    SessionRevoked,
    #[error("token superseded by an account change")]
    Superseded,
    #[error("revocation store unavailable")]
    Unavailable,
}

/// Checks that the markers are complete, then the session marker, then the token-version
/// marker. Fails closed.
pub async fn check(
    redis: &ConnectionManager,
    claims: &AccessClaims,
) -> Result<(), RevocationError> {
    let mut conn = redis.clone();
    let keys = [
        revoked_sid_key(claims.sid),
        token_version_key(claims.sub),
        MARKERS_READY_KEY.to_owned(),
    ];
    let fut = conn.mget::<_, (Option<String>, Option<i64>, Option<String>)>(&keys);
    let (revoked, version, ready) = tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| RevocationError::Unavailable)?
        .map_err(|e| {
            tracing::warn!(error = %e, "revocation check failed");
            RevocationError::Unavailable
        })?;
    if ready.is_none() {
        tracing::warn!("revocation markers not rebuilt yet (Redis lost its data): refusing");
        return Err(RevocationError::Unavailable);
    }
    if revoked.is_some() {
        return Err(RevocationError::SessionRevoked);
    }
    if version.is_some_and(|v| i64::from(claims.ver) < v) {
        return Err(RevocationError::Superseded);
    }
    Ok(())
}
