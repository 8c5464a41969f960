//! The payplane profile service (api.md §7): one profile per user with contact fields and
//! preferences, created from `auth.user.created` (or lazily on the first request) and removed on
//! `auth.user.deleted`, with `profile.profile.updated` events written to the outbox in the same
//! transaction as each change and a versioned Redis read cache.

pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod housekeeping;
pub mod openapi;
pub mod ops;
pub mod routes;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod views;

pub use app::{AppState, Application, MIGRATOR, router};
pub use config::Config;
pub use openapi::openapi;
