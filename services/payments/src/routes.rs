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
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    app::AppState,
    directory::Lookup,
    domain::money::{Amount, MoneyError},
    error,
    store::{self, StoreError, payments::PaymentRow, users::DirUser},
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

/// Begins the transaction of a change to payment `id` and locks its row; `op` names the
/// change in a store error. A payment gone since it was read is a 404.
pub(crate) async fn lock_payment(
    s: &AppState,
    id: Uuid,
    op: &'static str,
) -> Result<(Transaction<'static, Postgres>, PaymentRow), ApiError> {
    let mut tx = s.db.begin().await.map_err(StoreError::at(op))?;
    let p = store::payments::lock(&mut tx, id)
        .await?
        .ok_or_else(error::payment_not_found)?;
    Ok((tx, p))
}

/// The directory user a request names (looked up in auth when not yet known), if any.
pub(crate) async fn resolve_user(
    s: &AppState,
    lookup: &Lookup,
) -> Result<Option<DirUser>, ApiError> {
    s.directory
        .resolve(&s.db, lookup)
        .await
        .map_err(error::directory)
}

/// A payment id from the path; anything but a UUID is a payment that does not exist.
pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| error::payment_not_found())
}
