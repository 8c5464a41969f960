//! Password rules and Argon2id hashing (api.md §4.4, §4.13). Hashing runs on the blocking pool
//! because it is deliberately slow.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier},
};

use crate::config::Argon2Params;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters")]
    Params(#[source] argon2::Error),
    #[error("hashing a password")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("the hashing task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// The shortest new password (api.md §4.4).
pub const PASSWORD_MIN: usize = 12;
/// The longest password, new or presented (api.md §4.4, §4.5, §4.9).
pub const PASSWORD_MAX: usize = 255;
/// [`check_rule`]'s composition as a pattern, for the OpenAPI document: an ASCII upper-case
/// letter, a lower-case letter, a digit and a character that is not an ASCII letter or digit.
pub const PASSWORD_PATTERN: &str =
    r"^(?=[\s\S]*[A-Z])(?=[\s\S]*[a-z])(?=[\s\S]*[0-9])(?=[\s\S]*[^A-Za-z0-9])[\s\S]*$";

/// 12..255 characters with an ASCII upper, an ASCII lower, a digit and a non-alphanumeric.
pub fn check_rule(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < PASSWORD_MIN {
        return Err("must be at least 12 characters");
    }
    if n > PASSWORD_MAX {
        return Err("must be at most 255 characters");
    }
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if !(has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
        && has(|c| !c.is_ascii_alphanumeric()))
    {
        return Err("must contain an upper-case letter, a lower-case letter, a digit and a symbol");
    }
    Ok(())
}

/// Hashes and verifies with the configured cost.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    /// Verified against for unknown emails so that timing does not reveal registration.
    dummy: String,
}

impl Hasher {
    pub fn new(cfg: Argon2Params) -> Result<Self, PasswordError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(PasswordError::Params)?;
        let dummy = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"payplane-dummy-password")
            .map_err(PasswordError::Hash)?
            .to_string();
        Ok(Self { params, dummy })
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(PasswordError::Hash)
        })
        .await
        .map_err(PasswordError::Join)?
    }

    /// Constant-time verification with the parameters stored in `hash` (or the dummy hash).
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, PasswordError> {
        let hash = hash.unwrap_or(&self.dummy).to_owned();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(PasswordError::Join)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule() {
        assert!(check_rule("TestPassword123!").is_ok());
        for bad in [
            "Short1!",
            "testpassword123!",
            "TESTPASSWORD123!",
            "TestPassword!!!",
            "TestPassword123",
        ] {
            assert!(check_rule(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_use_phc_format() {
        let h = Hasher::new(Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let hash = h.hash("TestPassword123!").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(h.verify(Some(&hash), "TestPassword123!").await.unwrap());
        assert!(!h.verify(Some(&hash), "TestPassword123?").await.unwrap());
        assert!(!h.verify(None, "TestPassword123!").await.unwrap());
    }
}
