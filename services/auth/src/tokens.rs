//! Access tokens (Ed25519 JWTs with the claims of api.md §2.2) and opaque refresh tokens
//! (32 random bytes, base64url, stored only as SHA-256). Pure apart from the CSPRNG.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header, encode};
use payplane_authn::{AUDIENCE, AccessClaims};
use uuid::Uuid;

use crate::{keys::SigningKeys, store::users::User};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signing an access token")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error("the system random generator failed")]
    Random,
}

/// Signs an access token for `user` in session `sid`, built from the user's current row.
pub fn access_token(
    keys: &SigningKeys,
    issuer: &str,
    ttl: Duration,
    user: &User,
    sid: Uuid,
) -> Result<String, TokenError> {
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: user.id,
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.role,
        sid,
        ver: user.token_version,
        jti: Uuid::new_v4(),
        iat: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.kid.clone());
    encode(&header, &claims, &keys.encoding).map_err(TokenError::Sign)
}

/// A new refresh token and its stored hash.
pub fn refresh_token() -> Result<(String, Vec<u8>), TokenError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| TokenError::Random)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh(&token);
    Ok((token, hash))
}

pub fn hash_refresh(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// SHA-256 of the lower-cased email, the `login_throttle` key (data.md §2.6).
pub fn email_hash(email: &str) -> Vec<u8> {
    digest(&SHA256, email.to_lowercase().as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_43_chars_and_hash_to_32_bytes() {
        let (t, h) = refresh_token().unwrap();
        assert_eq!(t.len(), 43);
        assert_eq!(h.len(), 32);
        assert_eq!(hash_refresh(&t), h);
        assert_ne!(refresh_token().unwrap().0, t);
    }
}
