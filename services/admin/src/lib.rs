//! The payplane admin service (api.md §6): user management through auth's internal API with
//! a users read model fed by `auth.user.*`, the audit log written from every event and every
//! admin action, system config with events, system health and the dashboard.

pub mod app;
pub mod audit;
pub mod auth_client;
pub mod config;
pub mod domain;
pub mod events;
pub mod housekeeping;
pub mod openapi;
pub mod probes;
pub mod routes;
pub mod seed;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{AppState, Application, MIGRATOR, router};
pub use config::Config;
