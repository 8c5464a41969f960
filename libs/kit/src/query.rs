//! The query-string rules of api.md §1.5–§1.6, once for every list endpoint: empty values are
//! absent, a parameter repeated with different values is refused, unknown parameters are
//! ignored, integers within bounds, case-insensitive enums, dates as RFC 3339 or a plain UTC
//! date, and pagination. Pure; every violation is collected and answered together as one 400.

use std::{collections::HashMap, ops::RangeInclusive};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;

use crate::{ApiError, error::FieldError};

/// The parameters of one request, with the violations found while reading them.
#[derive(Debug, Default)]
pub struct QueryParams {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

/// One end of a date range as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateBound {
    /// The instant: an RFC 3339 value (to the millisecond, as stored), or midnight UTC of a
    /// plain date — of the next day when it ends a range, so the whole day is covered.
    pub at: DateTime<Utc>,
    /// Written as `YYYY-MM-DD`.
    pub plain_date: bool,
}

impl DateBound {
    /// As the exclusive end of a range: a date-time end is inclusive, so one millisecond later.
    pub fn exclusive_end(self) -> DateTime<Utc> {
        if self.plain_date {
            self.at
        } else {
            self.at + TimeDelta::milliseconds(1)
        }
    }
}

/// RFC 3339 with an offset, or `YYYY-MM-DD` in UTC (as an `end`, the next midnight).
pub fn parse_date(raw: &str, end: bool) -> Option<DateBound> {
    let raw = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(DateBound {
            at: payplane_events::time::truncate(at.with_timezone(&Utc)),
            plain_date: false,
        });
    }
    if raw.len() != 10 {
        return None;
    }
    let midnight = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?
        .and_utc();
    Some(DateBound {
        at: if end {
            midnight + TimeDelta::days(1)
        } else {
            midnight
        },
        plain_date: true,
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); invalid UTF-8 is replaced,
/// so a mangled value fails its own check instead of the whole request.
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

impl QueryParams {
    /// Parses a raw query string (axum's `RawQuery`).
    pub fn parse(raw: Option<&str>) -> Self {
        let mut q = QueryParams::default();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k), decode(v));
            if v.is_empty() {
                continue;
            }
            match q.values.get(&k) {
                Some(existing) if *existing != v => {
                    q.push(&k, "must not be repeated with different values");
                }
                Some(_) => {}
                None => {
                    q.values.insert(k, v);
                }
            }
        }
        q
    }

    /// Records a violation; one per parameter (a refused parameter is not checked again).
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
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

    /// The first of `names` present (a canonical name, then its aliases), with the name the
    /// client used, so an error names what they sent.
    pub fn get_any<'n>(&self, names: &[&'n str]) -> Option<(&'n str, &str)> {
        names
            .iter()
            .find_map(|name| self.get(name).map(|value| (*name, value)))
    }

    /// An integer within `range`, or `default` when absent.
    pub fn int(&mut self, name: &str, range: RangeInclusive<i64>, default: i64) -> i64 {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.trim().parse::<i64>() {
            Ok(n) if range.contains(&n) => n,
            _ if *range.end() == i64::MAX => {
                let message = format!("must be an integer of at least {}", range.start());
                self.push(name, message);
                default
            }
            _ => {
                let message = format!(
                    "must be an integer between {} and {}",
                    range.start(),
                    range.end()
                );
                self.push(name, message);
                default
            }
        }
    }

    /// `page` (≥ 1) and `limit` (1..=`max_limit`, `default_limit` when absent).
    pub fn pagination(&mut self, default_limit: i64, max_limit: i64) -> Page {
        let page = self.int("page", 1..=i64::MAX, 1);
        let limit = self.int("limit", 1..=max_limit, default_limit);
        Page { page, limit }
    }

    /// One of `allowed`, matched case-insensitively, in its canonical spelling.
    pub fn one_of(&mut self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let found = crate::validate::one_of(self.get(name)?, allowed);
        found.map_err(|m| self.push(name, m)).ok()
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

    /// An email address (api.md §1.4: trimmed, lower-cased). A required one that is absent is
    /// refused with the same message as an invalid one.
    pub fn email(&mut self, name: &str, required: bool) -> Option<String> {
        let raw = self.get(name).or(required.then_some(""))?;
        match crate::validate::email(raw) {
            Ok(email) => Some(email),
            Err(msg) => {
                self.push(name, msg);
                None
            }
        }
    }

    /// Free text: trimmed, NFC, no control characters, length in `min..=max` characters.
    pub fn text(&mut self, name: &str, min: usize, max: usize) -> Option<String> {
        let raw = self.get(name)?.to_owned();
        let checked = crate::validate::normalize_text(&raw, false)
            .map_err(str::to_owned)
            .and_then(|t| crate::validate::check_len(&t, min, max).map(|()| t));
        match checked {
            Ok(t) => Some(t),
            Err(msg) => {
                self.push(name, msg);
                None
            }
        }
    }

    /// A range bound under the first of `names` present (see [`parse_date`]).
    pub fn date(&mut self, names: &[&str], end: bool) -> Option<DateBound> {
        let (name, raw) = self.get_any(names)?;
        let parsed = parse_date(raw, end);
        if parsed.is_none() {
            self.push(
                name,
                "must be an RFC 3339 date-time with offset or a date YYYY-MM-DD",
            );
        }
        parsed
    }

    /// A start/end pair as `[from, to)`: a date-time end is inclusive, a plain-date end covers
    /// its whole day. A start after the end is refused on the start parameter.
    pub fn range(
        &mut self,
        start: &[&str],
        end: &[&str],
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let from = self.date(start, false).map(|b| b.at);
        let to = self.date(end, true).map(DateBound::exclusive_end);
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            let sent = self.get_any(start).map_or("startDate", |(name, _)| name);
            let message = format!("must not be after {}", end.first().unwrap_or(&"the end"));
            self.push(sent, message);
        }
        (from, to)
    }

    /// 400 `VALIDATION_ERROR` with every violation, or `Ok`.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// A requested page.
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

    fn fields(q: QueryParams) -> Vec<String> {
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
        let mut q = QueryParams::parse(Some("role=&page=2&page=2&search=a%20b+c&x=1&x=2"));
        assert_eq!(q.one_of("role", &["ADMIN"]), None);
        assert_eq!(q.pagination(10, 100), Page { page: 2, limit: 10 });
        assert_eq!(q.text("search", 1, 255).as_deref(), Some("a b c"));
        assert_eq!(q.get("x"), None, "a refused parameter is not read");
        assert_eq!(fields(q), ["x"]);
    }

    #[test]
    fn emails_are_lower_cased_and_a_required_absent_one_is_refused() {
        let mut q = QueryParams::parse(Some("email=Ann%40Example.COM&bad=nope"));
        assert_eq!(q.email("email", true).as_deref(), Some("ann@example.com"));
        assert_eq!(q.email("other", false), None);
        assert_eq!(q.email("bad", false), None);
        assert_eq!(q.email("missing", true), None);
        assert_eq!(fields(q), ["bad", "missing"]);
    }

    #[test]
    fn enums_are_case_insensitive_and_answer_the_canonical_spelling() {
        let mut q = QueryParams::parse(Some("status=completed&order=sideways&isActive=yes"));
        assert_eq!(
            q.one_of("status", &["PENDING", "COMPLETED"]),
            Some("COMPLETED")
        );
        assert_eq!(q.one_of("order", &["asc", "desc"]), None);
        assert_eq!(q.boolean("isActive"), None);
        assert_eq!(fields(q), ["order", "isActive"]);
    }

    #[test]
    fn pagination_bounds() {
        for bad in [
            "page=0",
            "limit=0",
            "limit=101",
            "page=abc",
            "limit=1.5",
            "page=%FF",
        ] {
            let mut q = QueryParams::parse(Some(bad));
            q.pagination(20, 100);
            assert_eq!(fields(q).len(), 1, "{bad}");
        }
        assert_eq!(Page { page: 3, limit: 20 }.offset(), 40);
        assert_eq!(
            Page {
                page: i64::MAX,
                limit: 20
            }
            .offset(),
            i64::MAX
        );
        assert_eq!(Page { page: 1, limit: 20 }.describe(57)["totalPages"], 3);
        assert_eq!(Page { page: 1, limit: 20 }.describe(0)["totalPages"], 0);
    }

    #[test]
    fn dates_and_ranges() {
        let mut q = QueryParams::parse(Some("startDate=2026-03-01&endDate=2026-03-01"));
        let (from, to) = q.range(&["startDate"], &["endDate"]);
        assert_eq!(from.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(to.unwrap().to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert!(q.finish().is_ok());
        let mut q = QueryParams::parse(Some("startDate=2026-03-02&endDate=2026-03-01"));
        q.range(&["startDate"], &["endDate"]);
        assert_eq!(fields(q), ["startDate"]);
        // A date-time end is inclusive: the same instant on both ends is one millisecond.
        let mut q = QueryParams::parse(Some(
            "startDate=2026-03-01T12:00:00%2B02:00&endDate=2026-03-01T10:00:00Z",
        ));
        let (from, to) = q.range(&["startDate"], &["endDate"]);
        assert_eq!(to.unwrap() - from.unwrap(), TimeDelta::milliseconds(1));
        assert!(q.finish().is_ok());
        let mut q = QueryParams::parse(Some("startDate=yesterday&endDate=2026-3-1"));
        q.range(&["startDate"], &["endDate"]);
        assert_eq!(fields(q), ["startDate", "endDate"]);
    }

    #[test]
    fn aliases_are_read_and_errors_name_what_the_client_sent() {
        let mut q = QueryParams::parse(Some("fromDate=2026-03-05&toDate=2026-03-01"));
        let (from, _) = q.range(&["startDate", "fromDate"], &["endDate", "toDate"]);
        assert!(from.is_some());
        assert_eq!(fields(q), ["fromDate"]);
        let mut q = QueryParams::parse(Some("toDate=soon"));
        assert_eq!(q.date(&["endDate", "toDate"], true), None);
        assert_eq!(fields(q), ["toDate"]);
    }
}
