//! The payments service's route table (api.md §5.1, §8.2) and the money readers its handlers
//! share. Handlers are thin: parse → domain/store → answer.

mod internal;
mod payments;
pub use payments::EDIT_FIELDS;
mod status;
pub mod webhook;

use axum::{
    Router,
    routing::{get, patch, post},
};
use payplane_kit::{openapi::RouteTable, query::QueryParams};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::{
    app::AppState,
    domain::money::{Amount, MoneyError},
};

pub fn routes() -> Router<AppState> {
    table().into_router()
}

/// Every route with its path; the OpenAPI test compares the document with these paths.
pub fn table() -> RouteTable<AppState> {
    RouteTable::default()
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/api/payments", get(payments::list).post(payments::create))
        .route("/api/payments/recipients", get(payments::recipients))
        .route("/api/payments/reports", get(payments::reports))
        .route("/api/payments/webhooks/psp", post(webhook::receive))
        .route(
            "/api/payments/{id}",
            get(payments::show).put(payments::update),
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

/// A money value from a JSON string or number (api.md §1.6). `written` is the member's text as
/// the client sent it: a number in exponent form (`1e3`) is refused, as the contract says,
/// though serde reads it as 1000.
pub(crate) fn money_value(v: &Value, written: Option<&str>) -> Result<Amount, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(_) if written.is_some_and(|w| w.contains(['e', 'E'])) => {
            return Err("must be a plain decimal number (no exponent)".into());
        }
        Value::Number(n) => written.map_or_else(|| n.to_string(), str::to_owned),
        _ => return Err("must be a decimal number or a decimal string".into()),
    };
    Amount::parse(&text).map_err(|e| e.to_string())
}
