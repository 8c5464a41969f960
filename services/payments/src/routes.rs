//! The payments service's route table (api.md §5.1, §8.2) and the query-string and body
//! readers its handlers share. Handlers are thin: parse → domain/store → answer.

mod internal;
mod payments;
pub use payments::EDIT_FIELDS;
mod status;
pub mod webhook;

use std::collections::HashMap;

use axum::{
    Router,
    routing::{get, patch, post},
};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use payplane_kit::{ApiError, error::FieldError, openapi::RouteTable};
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

/// A query string under the contract's rules (api.md §1.5): empty values are absent, a
/// parameter repeated with different values is an error, unknown parameters are ignored.
#[derive(Debug, Default)]
pub(crate) struct Params {
    map: HashMap<String, String>,
    pub errors: Vec<FieldError>,
}

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        let mut p = Params::default();
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            match p.map.get(&k) {
                Some(existing) if *existing != v => {
                    if !p.errors.iter().any(|e| e.field == k) {
                        p.errors.push(FieldError::new(
                            k.clone(),
                            "must not be repeated with different values",
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    p.map.insert(k, v);
                }
            }
        }
        p
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The canonical name, else its alias.
    pub fn get_either(&self, name: &str, alias: &str) -> Option<(&'static str, &str)> {
        // The field named in errors is the one the client sent.
        if let Some(v) = self.get(name) {
            return Some((leak_name(name), v));
        }
        self.get(alias).map(|v| (leak_name(alias), v))
    }

    /// One error per parameter: a repeated one is not checked again.
    fn push(&mut self, field: &str, message: impl Into<String>) {
        if self.errors.iter().any(|e| e.field == field) {
            return;
        }
        self.errors.push(FieldError::new(field, message));
    }

    pub fn int(&mut self, name: &str, min: i64, max: i64, default: i64) -> i64 {
        match self.get(name).map(str::parse::<i64>) {
            None => default,
            Some(Ok(n)) if (min..=max).contains(&n) => n,
            Some(_) => {
                self.push(name, format!("must be an integer from {min} to {max}"));
                default
            }
        }
    }

    pub fn one_of(&mut self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let raw = self.get(name)?.to_owned();
        let found = allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(raw.trim()))
            .copied();
        if found.is_none() {
            self.push(name, format!("must be one of {}", allowed.join(", ")));
        }
        found
    }

    /// A range start or end; for a plain-date end the instant is the next midnight and the
    /// bound is exclusive (returned flag).
    pub fn date(&mut self, name: &str, alias: &str, end: bool) -> Option<(DateTime<Utc>, bool)> {
        let (field, raw) = self.get_either(name, alias)?;
        let raw = raw.to_owned();
        if let Some(v) = parse_date(&raw, end) {
            Some(v)
        } else {
            self.push(field, "must be an RFC 3339 date-time or a YYYY-MM-DD date");
            None
        }
    }

    pub fn money(&mut self, name: &str) -> Option<Decimal> {
        let raw = self.get(name)?.to_owned();
        match Amount::parse(&raw) {
            Ok(a) => Some(a.value()),
            // Filters accept any non-negative money value, not only payable amounts.
            Err(MoneyError::TooSmall) => Some(Decimal::ZERO),
            Err(e) => {
                self.push(name, e.to_string());
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

fn leak_name(name: &str) -> &'static str {
    match name {
        "startDate" => "startDate",
        "fromDate" => "fromDate",
        "endDate" => "endDate",
        "toDate" => "toDate",
        _ => "query",
    }
}

/// RFC 3339 with offset, or `YYYY-MM-DD` in UTC (api.md §1.5). Returns the instant and whether
/// it is an exclusive end (plain-date end → next midnight).
pub(crate) fn parse_date(raw: &str, end: bool) -> Option<(DateTime<Utc>, bool)> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some((
            payplane_events::time::truncate(at.with_timezone(&Utc)),
            false,
        ));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let midnight = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?);
    if end {
        Some((midnight + Duration::days(1), true))
    } else {
        Some((midnight, false))
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
