//! The payments service's route table (api.md §5.1, §8.2) and the path and query readers its
//! handlers share. Handlers are thin: parse → domain/store → answer.

mod create;
mod internal;
mod payments;
mod status;
mod update;
pub mod webhook;

pub use crate::domain::input::EDIT_FIELDS;

use axum::{
    Router,
    routing::{get, patch, post},
};
use payplane_kit::{ApiError, openapi::RouteTable, query::QueryParams};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    app::AppState,
    domain::money::{Amount, MoneyError},
    error,
};

pub fn routes() -> Router<AppState> {
    table().into_router()
}

/// Every route with its path; the OpenAPI test compares the document with these paths.
pub fn table() -> RouteTable<AppState> {
    RouteTable::default()
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/api/payments", get(payments::list).post(create::create))
        .route("/api/payments/recipients", get(payments::recipients))
        .route("/api/payments/reports", get(payments::reports))
        .route("/api/payments/webhooks/psp", post(webhook::receive))
        .route(
            "/api/payments/{id}",
            get(payments::show).put(update::update),
        )
        .route("/api/payments/{id}/status", patch(status::change))
        .route("/internal/payments/stats", get(internal::stats))
        .route("/internal/payments/{id}/parties", get(internal::parties))
}

/// A money filter (`minAmount`, `maxAmount`): any non-negative money value, not only payable
/// amounts.
pub(crate) fn money_param(q: &mut QueryParams, name: &str) -> Option<Decimal> {
    let raw = q.get(name)?.to_owned();
    match Amount::parse(&raw) {
        Ok(a) => Some(a.value()),
        Err(MoneyError::TooSmall) => Some(Decimal::ZERO),
        Err(e) => {
            q.push(name, e.to_string());
            None
        }
    }
}

/// A payment id from the path; anything but a UUID is a payment that does not exist.
pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| error::payment_not_found())
}
