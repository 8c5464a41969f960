//! The admin service's route table (api.md §6.1) and the ADMIN-only guard every route uses.
//! Handlers are thin: authenticate → parse → auth call or store transaction → answer.

mod audit_logs;
mod config;
mod system;
mod users;

use axum::{
    Router,
    extract::{FromRef, FromRequestParts},
    routing::get,
};
use http::request::Parts;
use payplane_authn::{Authn, CurrentUser};
use payplane_events::auth::Role;
use payplane_kit::{ApiError, openapi::RouteTable};
use uuid::Uuid;

use crate::app::AppState;

/// An authenticated caller with role ADMIN. As an extractor it runs before the body is read,
/// so 401/403 come before 415/`INVALID_JSON`/400 (api.md §1.5 order of checks).
#[derive(Debug, Clone)]
pub struct Admin {
    pub id: Uuid,
}

impl<S> FromRequestParts<S> for Admin
where
    Authn: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        user.require(&[Role::Admin])?;
        Ok(Admin { id: user.0.sub })
    }
}

pub fn routes() -> Router<AppState> {
    table().into_router()
}

/// Every route with its path; the OpenAPI test compares the document with these paths.
pub fn table() -> RouteTable<AppState> {
    RouteTable::default()
        .route("/api/admin/users", get(users::list).post(users::create))
        .route(
            "/api/admin/users/{id}",
            get(users::show).put(users::update).delete(users::remove),
        )
        .route(
            "/api/admin/users/{id}/role",
            axum::routing::put(users::set_role).patch(users::set_role),
        )
        .route(
            "/api/admin/users/{id}/status",
            axum::routing::patch(users::set_status),
        )
        .route("/api/admin/audit-logs", get(audit_logs::list))
        .route("/api/admin/audit-logs/actions", get(audit_logs::actions))
        .route("/api/admin/config", get(config::list).post(config::create))
        .route(
            "/api/admin/config/{key}",
            get(config::show).put(config::put).delete(config::remove),
        )
        .route("/api/admin/health", get(system::health))
        .route("/api/admin/dashboard", get(system::dashboard))
        .route("/openapi.json", get(crate::openapi::serve))
}
