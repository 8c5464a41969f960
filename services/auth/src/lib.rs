//! The payplane auth service (api.md §4, §8.1): users (source of truth), credentials,
//! per-device sessions with rotating refresh tokens, lockout, signing keys, and the auth
//! events written to the outbox in the same transaction as each change.

pub mod account;
pub mod app;
pub mod config;
pub mod error;
pub mod housekeeping;
pub mod keys;
pub mod lockout;
pub mod markers;
pub mod openapi;
pub mod ops;
pub mod password;
pub mod routes;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod views;

pub use app::{AppState, Application, MIGRATOR, router};
pub use config::Config;
pub use openapi::openapi;
