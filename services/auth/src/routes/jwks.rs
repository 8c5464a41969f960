//! `GET /api/auth/.well-known/jwks.json` (api.md §4.12): raw JSON, cacheable for 5 minutes.

use axum::{Json, extract::State, response::IntoResponse};
use http::header::CACHE_CONTROL;

use crate::app::AppState;

pub async fn show(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(CACHE_CONTROL, "public, max-age=300")],
        Json(s.keys.jwks.clone()),
    )
}
