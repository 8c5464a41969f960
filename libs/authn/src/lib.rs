//! Authentication shared by every payplane component (api.md §2): one verifier for Ed25519
//! access tokens, the JWKS document shape and cache, the Redis revocation markers, the axum
//! extractor that enforces them, and service credentials for `/internal/*` (§2.6).

pub mod claims;
pub mod extract;
pub mod jwks;
pub mod revocation;
pub mod service;
pub mod verifier;

pub use claims::AccessClaims;
pub use extract::{Authn, CurrentUser};
pub use verifier::Verifier;

/// The `aud` of every access token.
pub const AUDIENCE: &str = "payplane-api";
