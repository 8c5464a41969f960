//! The profile service's route table (api.md §7). Handlers are thin: parse → domain → store in
//! one transaction (with its outbox row) → invalidate the cache → answer.

mod profile;

use axum::{Router, routing::get};

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/profile", get(profile::show).put(profile::update))
        .route(
            "/api/profile/preferences",
            get(profile::show_preferences).put(profile::update_preferences),
        )
}
