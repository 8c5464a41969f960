//! The axum extractor that authenticates a bearer token: header form, verification, then the
//! revocation markers; every failure answers with the code of api.md §2.5.

use axum::extract::{FromRef, FromRequestParts};
use http::{StatusCode, header::WWW_AUTHENTICATE, request::Parts};
use payplane_events::auth::Role;
use payplane_kit::ApiError;
use redis::aio::ConnectionManager;

use crate::{
    AccessClaims, Verifier,
    revocation::{self, RevocationError},
    verifier::TokenError,
};

/// What a service needs to authenticate callers.
#[derive(Clone)]
pub struct Authn {
    pub verifier: Verifier,
    pub redis: ConnectionManager,
}

const INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";

pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "Authentication required",
    )
    .with_header(WWW_AUTHENTICATE, "Bearer")
}

fn token_401(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
        .with_header(WWW_AUTHENTICATE, INVALID_TOKEN)
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => token_401("TOKEN_EXPIRED", "Access token has expired"),
            TokenError::Invalid => token_401("TOKEN_INVALID", "Access token is invalid"),
            TokenError::KeysUnavailable => {
                ApiError::unavailable("Token verification keys are not loaded yet")
            }
        }
    }
}

impl From<RevocationError> for ApiError {
    fn from(e: RevocationError) -> Self {
        match e {
            RevocationError::SessionRevoked => {
                token_401("SESSION_REVOKED", "Session has been revoked")
            }
            RevocationError::Superseded => {
                token_401("TOKEN_EXPIRED", "Access token has been superseded")
            }
            RevocationError::Unavailable => {
                ApiError::unavailable("Token revocation check is unavailable")
            }
        }
    }
}

/// The token from `Authorization: Bearer <token>` (scheme case-insensitive, one space).
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    bearer_from_headers(&parts.headers)
}

/// As [`bearer_token`], from a header map.
pub fn bearer_from_headers(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

impl Authn {
    /// Verifies a token and its revocation markers.
    pub async fn authenticate(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let claims = self.verifier.verify(token).await?;
        revocation::check(&self.redis, &claims).await?;
        Ok(claims)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub AccessClaims);

impl CurrentUser {
    /// 403 `FORBIDDEN` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden("Insufficient permissions"))
        }
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Authn: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or_else(unauthorized)?;
        let authn = Authn::from_ref(state);
        authn.authenticate(token).await.map(CurrentUser)
    }
}
