//! The payplane web console: server-rendered pages (maud + htmx) for customers, vendors and
//! admins, calling the public API through the gateway like any client. Sessions are kept as a
//! backend-for-frontend (tokens in a sealed HttpOnly cookie), forms are CSRF-protected, and a
//! little JavaScript of our own adds live payment updates, cross-tab sign-out, the theme
//! toggle and an offline page.

pub mod api;
pub mod app;
pub mod assets;
pub mod config;
pub mod device;
pub mod forms;
pub mod routes;
pub mod session;
pub mod views;

pub use app::{AppState, Application, router};
pub use config::Config;
