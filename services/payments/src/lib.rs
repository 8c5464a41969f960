//! The payplane payments service (api.md §5, §8.2): payments and their transaction history,
//! idempotent creation, the status machine shared by the API, the PSP simulator and the PSP
//! webhook, the user directory fed by `auth.user.*`, and the versioned Redis read cache.

pub mod access;
pub mod app;
pub mod cache;
pub mod config;
pub mod detail;
pub use payplane_kit::digest;
pub mod directory;
pub mod domain;
pub mod edit;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod lifecycle;
pub mod openapi;
pub mod ops;
pub mod psp;
pub mod reports;
pub mod routes;
pub mod simulator;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod views;

pub use app::{AppState, Application, MIGRATOR, router};
pub use config::Config;
pub use openapi::openapi;
