//! The profile service's route table (api.md §7). Handlers are thin: parse → domain → store in
//! one transaction (with its outbox row) → invalidate the cache → answer.

mod profile;

use axum::{Router, routing::get};
use payplane_kit::openapi::RouteTable;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    table().into_router()
}

/// Every route with its path; the OpenAPI test compares the document with these paths.
pub fn table() -> RouteTable<AppState> {
    RouteTable::default()
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/api/profile", get(profile::show).put(profile::update))
        .route(
            "/api/profile/preferences",
            get(profile::show_preferences).put(profile::update_preferences),
        )
}
