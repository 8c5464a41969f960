//! The one timestamp format of the contract: ISO-8601 UTC with exactly three fraction digits and `Z`.

use std::borrow::Cow;

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// What [`format()`] writes, as a regular expression for the payload schemas.
pub const PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$";

/// Formats an instant as `2026-03-01T10:00:00.000Z`.
///
/// chrono's RFC 3339 writer, not a `format("%Y-…")` string: that one parses its format items
/// on every call, ~2 500 instructions against ~300 (counted with callgrind in the event bench,
/// where it ran once per envelope); every API timestamp goes through here too.
pub fn format(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Truncates to whole milliseconds, as every stored instant is (data.md §1).
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at)
}

/// `now()` truncated to milliseconds.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// Serde adapter for `DateTime<Utc>` fields.
pub mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<DateTime<Utc>>` fields (always present, `null` when absent).
pub mod millis_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&super::format(at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

/// The schema of a field serialized through [`millis`] (or, wrapped in `Option`, [`millis_opt`]):
/// `#[schemars(with = "time::Timestamp")]`. The field's own type (`DateTime<Utc>`) would not do:
/// the adapter, not chrono, decides the wire text, and the contract is stricter than RFC 3339
/// (UTC, exactly three fraction digits), hence the pattern next to `format`.
pub struct Timestamp;

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    // Inline, so that each field reads on its own and `Option` just adds `null` to the type.
    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "pattern": PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_with_three_fraction_digits() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        assert_eq!(format(&at), "2026-03-01T10:00:00.000Z");
        let at = at + TimeDelta::microseconds(512_345);
        assert_eq!(format(&truncate(at)), "2026-03-01T10:00:00.512Z");
        // Three digits even when the instant carries more precision, and leading zeros kept.
        let at =
            Utc.with_ymd_and_hms(987, 1, 2, 3, 4, 5).unwrap() + TimeDelta::nanoseconds(7_999_999);
        assert_eq!(format(&at), "0987-01-02T03:04:05.007Z");
        assert!(has_contract_shape(&format(&Utc::now())));
        assert!(!has_contract_shape("2026-03-01 10:00:00.000Z"));
        assert!(!has_contract_shape("2026-03-01T10:00:00.00Z"));
    }

    // PATTERN, checked by hand: the crate has no regex engine.
    fn has_contract_shape(s: &str) -> bool {
        // `0` stands for any digit; every other byte must match as is.
        const SHAPE: &[u8] = b"0000-00-00T00:00:00.000Z";
        s.len() == SHAPE.len()
            && s.bytes().zip(SHAPE).all(|(b, &want)| {
                if want == b'0' {
                    b.is_ascii_digit()
                } else {
                    b == want
                }
            })
    }
}
