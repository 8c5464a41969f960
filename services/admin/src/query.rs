//! Query-string rules of api.md §1.5–§1.6 for the list endpoints: empty values are absent, a
//! parameter repeated with different values is refused, pagination bounds, case-insensitive
//! enums, and date ranges (RFC 3339 or a plain UTC date). Pure; violations are collected.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use payplane_kit::{ApiError, error::FieldError};
use uuid::Uuid;

/// The parameters of one request, with the violations found while reading them.
#[derive(Debug, Default)]
pub struct Query {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); invalid UTF-8 is replaced.
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut q = Query::default();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k), decode(v));
            if v.is_empty() {
                continue;
            }
            match q.values.get(&k) {
                Some(existing) if *existing != v => {
                    if !q.errors.iter().any(|e| e.field == k) {
                        q.errors.push(FieldError::new(
                            k.clone(),
                            "must not be repeated with different values",
                        ));
                    }
                }
                _ => {
                    q.values.insert(k, v);
                }
            }
        }
        q
    }

    fn push(&mut self, field: &str, message: impl Into<String>) {
        if !self.errors.iter().any(|e| e.field == field) {
            self.errors.push(FieldError::new(field, message));
        }
    }

    /// The raw value, if present and not already refused.
    pub fn get(&self, name: &str) -> Option<&str> {
        if self.errors.iter().any(|e| e.field == name) {
            return None;
        }
        self.values.get(name).map(String::as_str)
    }

    /// An integer in `min..=max`, or `default` when absent.
    pub fn int(&mut self, name: &str, default: i64, min: i64, max: i64) -> i64 {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            Ok(_) if max == i64::MAX => {
                self.push(name, format!("must be an integer of at least {min}"));
                default
            }
            _ => {
                self.push(name, format!("must be an integer between {min} and {max}"));
                default
            }
        }
    }

    /// `page` (≥ 1) and `limit` (1..=100, default given).
    pub fn pagination(&mut self, default_limit: i64) -> Page {
        let page = self.int("page", 1, 1, i64::MAX);
        let limit = self.int("limit", default_limit, 1, crate::domain::LIST_LIMIT_MAX);
        Page { page, limit }
    }

    /// One of `allowed`, matched case-insensitively, in its canonical spelling.
    pub fn one_of(&mut self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let raw = self.get(name)?;
        let found = allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(raw.trim()))
            .copied();
        if found.is_none() {
            self.push(name, format!("must be one of {}", allowed.join(", ")));
        }
        found
    }

    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.get(name)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.push(name, "must be true or false");
                None
            }
        }
    }

    pub fn uuid(&mut self, name: &str) -> Option<Uuid> {
        let raw = self.get(name)?;
        let parsed = Uuid::parse_str(raw.trim()).ok();
        if parsed.is_none() {
            self.push(name, "must be a UUID");
        }
        parsed
    }

    /// Free text: trimmed, NFC, no control characters, length in `min..=max`.
    pub fn text(&mut self, name: &str, min: usize, max: usize) -> Option<String> {
        let raw = self.get(name)?.to_owned();
        let checked = payplane_kit::validate::normalize_text(&raw, false)
            .map_err(str::to_owned)
            .and_then(|t| payplane_kit::validate::check_len(&t, min, max).map(|()| t));
        match checked {
            Ok(t) => Some(t),
            Err(msg) => {
                self.push(name, msg);
                None
            }
        }
    }

    /// A range bound: RFC 3339 with offset, or `YYYY-MM-DD` in UTC (as an end, the whole day).
    pub fn date(&mut self, name: &str, end: bool) -> Option<DateTime<Utc>> {
        let raw = self.get(name)?.trim().to_owned();
        if let Ok(at) = DateTime::parse_from_rfc3339(&raw) {
            return Some(at.with_timezone(&Utc));
        }
        if let Ok(day) = NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
            && raw.len() == 10
        {
            let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
            return if end {
                start.map(|s| s + TimeDelta::days(1))
            } else {
                start
            };
        }
        self.push(
            name,
            "must be an RFC 3339 date-time with offset or a date YYYY-MM-DD",
        );
        None
    }

    /// A start/end pair as `[from, to)`: an RFC 3339 end is inclusive, a plain-date end covers
    /// its whole day. A start after the end is refused on the start parameter.
    pub fn range(
        &mut self,
        start: &str,
        end: &str,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let from = self.date(start, false);
        let plain_end = self.get(end).is_some_and(|v| v.trim().len() == 10);
        let to = self.date(end, true).map(|t| {
            if plain_end {
                t
            } else {
                t + TimeDelta::milliseconds(1)
            }
        });
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            self.push(start, format!("must not be after {end}"));
        }
        (from, to)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// Requested page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub limit: i64,
}

impl Page {
    pub fn offset(self) -> i64 {
        (self.page - 1).saturating_mul(self.limit)
    }

    /// The `pagination` object of api.md §1.6.
    pub fn describe(self, total: i64) -> serde_json::Value {
        let pages = if total == 0 {
            0
        } else {
            (total + self.limit - 1) / self.limit
        };
        serde_json::json!({ "page": self.page, "limit": self.limit, "total": total, "totalPages": pages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(q: Query) -> Vec<String> {
        q.finish()
            .err()
            .and_then(|e| e.details)
            .and_then(|d| d.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|d| d["field"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn empty_values_are_absent_and_repeats_must_agree() {
        let mut q = Query::parse(Some("role=&page=2&page=2&search=a%20b+c&x=1&x=2"));
        assert_eq!(q.one_of("role", &["ADMIN"]), None);
        assert_eq!(q.pagination(10), Page { page: 2, limit: 10 });
        assert_eq!(q.text("search", 1, 255).as_deref(), Some("a b c"));
        assert_eq!(fields(q), ["x"]);
    }

    #[test]
    fn pagination_bounds() {
        for bad in ["page=0", "limit=0", "limit=101", "page=abc", "limit=1.5"] {
            let mut q = Query::parse(Some(bad));
            q.pagination(20);
            assert_eq!(fields(q).len(), 1, "{bad}");
        }
        assert_eq!(Page { page: 3, limit: 20 }.offset(), 40);
        assert_eq!(Page { page: 1, limit: 20 }.describe(57)["totalPages"], 3);
        assert_eq!(Page { page: 1, limit: 20 }.describe(0)["totalPages"], 0);
    }

    #[test]
    fn dates_and_ranges() {
        let mut q = Query::parse(Some("startDate=2026-03-01&endDate=2026-03-01"));
        let (from, to) = q.range("startDate", "endDate");
        assert_eq!(from.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(to.unwrap().to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert!(q.finish().is_ok());
        let mut q = Query::parse(Some("startDate=2026-03-02&endDate=2026-03-01"));
        q.range("startDate", "endDate");
        assert_eq!(fields(q), ["startDate"]);
        let mut q = Query::parse(Some(
            "startDate=2026-03-01T12:00:00%2B02:00&endDate=2026-03-01T10:00:00Z",
        ));
        let (from, to) = q.range("startDate", "endDate");
        assert!(from.unwrap() < to.unwrap());
        assert!(q.finish().is_ok());
        let mut q = Query::parse(Some("startDate=yesterday"));
        q.range("startDate", "endDate");
        assert_eq!(fields(q), ["startDate"]);
    }
}
