//! The profile service's route table (api.md §7). Handlers are thin: parse → domain → store in
//! one transaction (with its outbox row) → invalidate the cache → answer.

mod profile;

use axum::{Router, routing::get};

use crate::app::AppState;

/// Every public operation; the OpenAPI document must describe exactly these (tested).
pub const PUBLIC: [(&str, &str); 4] = [
    ("GET", "/api/profile"),
    ("PUT", "/api/profile"),
    ("GET", "/api/profile/preferences"),
    ("PUT", "/api/profile/preferences"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/api/profile", get(profile::show).put(profile::update))
        .route(
            "/api/profile/preferences",
            get(profile::show_preferences).put(profile::update_preferences),
        )
}
