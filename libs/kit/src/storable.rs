//! Free-form JSON that is about to be stored in a PostgreSQL `jsonb` column (payment metadata,
//! system config values): it must be small, shallow, free of NUL and made of numbers that come
//! back exactly as they went in. Pure functions, no I/O.
//!
//! Why numbers: `jsonb` keeps a number as an exact `numeric` and prints it back in plain
//! decimal form (`1e308` comes back as a 1 followed by 308 zeros). serde_json then has to
//! parse that text; for some magnitudes it answers "number out of range", and a row that
//! cannot be decoded breaks every read, list and worker that touches it. So a number is
//! accepted only when the plain decimal text PostgreSQL will print parses back to the very
//! same number and is at most [`MAX_NUMBER_CHARS`] long. Why NUL: `jsonb` refuses `\u0000`
//! in strings and keys ("unsupported Unicode escape sequence").

use serde_json::{Number, Value};

/// Longest plain-decimal text of a stored number (sign, digits and point). Enough for every
/// `i64`/`u64` and for any `f64` with a sensible exponent; `1e300` or `1e-300` are refused.
pub const MAX_NUMBER_CHARS: usize = 40;

/// Limits of one free-form JSON value.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Compact serialised size in bytes.
    pub max_bytes: usize,
    /// Nesting depth (an object or array counts one level).
    pub max_depth: usize,
}

/// Checks `value` against `limits` and the storage rules; the error is the message for the
/// field (the caller names the field).
pub fn check(value: &Value, limits: Limits) -> Result<(), String> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |b| b.len());
    if size > limits.max_bytes {
        return Err(format!(
            "must serialise to at most {} bytes",
            limits.max_bytes
        ));
    }
    if depth(value) > limits.max_depth {
        return Err(format!(
            "must not be nested deeper than {} levels",
            limits.max_depth
        ));
    }
    walk(value)
}

/// Nesting depth of a JSON value (an empty object counts 1, a scalar 0).
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn walk(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => no_nul(s),
        Value::Number(n) => storable_number(n),
        Value::Array(items) => items.iter().try_for_each(walk),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            no_nul(k)?;
            walk(v)
        }),
        Value::Null | Value::Bool(_) => Ok(()),
    }
}

fn no_nul(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        Err("must not contain the NUL character (\\u0000)".into())
    } else {
        Ok(())
    }
}

/// A number is storable when PostgreSQL's plain decimal form of it is short and reads back as
/// the same number.
fn storable_number(n: &Number) -> Result<(), String> {
    let refused = || {
        Err(format!(
            "number {n} cannot be stored exactly (at most {MAX_NUMBER_CHARS} characters in plain decimal form)"
        ))
    };
    let Some(plain) = plain_decimal(&n.to_string()) else {
        return refused();
    };
    if plain.len() > MAX_NUMBER_CHARS {
        return refused();
    }
    match serde_json::from_str::<Number>(&plain) {
        Ok(back) if same_number(n, &back) => Ok(()),
        _ => refused(),
    }
}

/// Integers compare as integers, everything else by its `f64` value (`1.0` and `1` are one
/// JSON number).
fn same_number(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        // Exactness is the point here: the bits must survive the trip.
        (Some(x), Some(y)) => x.is_finite() && x.to_bits() == y.to_bits(),
        _ => false,
    }
}

/// `1.5e3` → `1500.0`'s plain form `1500`, `1e-3` → `0.001`: the text PostgreSQL prints for a
/// `numeric` parsed from JSON. `None` for text that is not a JSON number.
pub fn plain_decimal(text: &str) -> Option<String> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", text),
    };
    let (mantissa, exp) = match rest.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.strip_prefix('+').unwrap_or(e).parse::<i64>().ok()?),
        None => return Some(text.to_owned()),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty()
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Guard the arithmetic below: such exponents never make a short number anyway.
    if exp.unsigned_abs() > 10_000 {
        return Some("0".repeat(10_001));
    }
    let digits = format!("{int_part}{frac_part}");
    let point = i64::try_from(int_part.len()).ok()? + exp;
    let body = if point <= 0 {
        let zeros = usize::try_from(-point).ok()?;
        format!("0.{}{digits}", "0".repeat(zeros))
    } else {
        let point = usize::try_from(point).ok()?;
        if point >= digits.len() {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    Some(format!("{sign}{}", strip_leading_zeros(&body)))
}

fn strip_leading_zeros(s: &str) -> &str {
    let trimmed = s.trim_start_matches('0');
    if trimmed.is_empty() || trimmed.starts_with('.') {
        // Keep one zero before the point (or the lone zero).
        &s[s.len() - trimmed.len() - 1..]
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        max_bytes: 16_384,
        max_depth: 10,
    };

    #[test]
    fn plain_decimal_expands_exponents_like_postgresql() {
        assert_eq!(plain_decimal("1.5e3").as_deref(), Some("1500"));
        assert_eq!(plain_decimal("1e-3").as_deref(), Some("0.001"));
        assert_eq!(plain_decimal("-2.25E+1").as_deref(), Some("-22.5"));
        assert_eq!(plain_decimal("12.5").as_deref(), Some("12.5"));
        assert_eq!(plain_decimal("0e0").as_deref(), Some("0"));
        assert_eq!(plain_decimal("1.0e0").as_deref(), Some("1.0"));
        assert_eq!(plain_decimal("x1e2"), None);
    }

    #[test]
    fn huge_and_tiny_numbers_are_refused() {
        let huge: Value = serde_json::from_str(r#"{"x":1.7976931348623157e308}"#).unwrap();
        assert!(
            check(&huge, LIMITS)
                .unwrap_err()
                .contains("cannot be stored")
        );
        assert!(check(&json!({"x": 1e-300}), LIMITS).is_err());
        assert!(check(&json!({"x": [1, {"y": 1e40}]}), LIMITS).is_err());
    }

    #[test]
    fn ordinary_numbers_are_accepted() {
        let ok = json!({"a": 1, "b": -0.5, "c": 12.75, "d": i64::MIN, "e": u64::MAX,
                        "f": 1.5e10, "g": 0.1, "h": 123_456.789, "i": 1e-7});
        assert_eq!(check(&ok, LIMITS), Ok(()));
    }

    #[test]
    fn nul_in_a_string_or_key_is_refused() {
        assert!(
            check(&json!({"k": "a\u{0}b"}), LIMITS)
                .unwrap_err()
                .contains("NUL")
        );
        assert!(check(&json!({"a\u{0}": 1}), LIMITS).is_err());
        assert!(check(&json!({"a": ["x", {"b": "\u{0}"}]}), LIMITS).is_err());
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let deep = (0..11).fold(json!(1), |acc, _| json!({ "a": acc }));
        assert!(check(&deep, LIMITS).unwrap_err().contains("nested"));
        let big = json!({ "a": "x".repeat(20_000) });
        assert!(check(&big, LIMITS).unwrap_err().contains("bytes"));
    }

    /// Every number accepted reads back unchanged from PostgreSQL's plain decimal text.
    #[test]
    fn accepted_numbers_round_trip_through_their_plain_form() {
        for x in [
            0.1_f64,
            1.0 / 3.0,
            9_007_199_254_740_993.0,
            2.5e-9,
            6.02e23,
            1e21,
        ] {
            let n = Number::from_f64(x).unwrap();
            if storable_number(&n).is_ok() {
                let back: f64 = plain_decimal(&n.to_string()).unwrap().parse().unwrap();
                assert_eq!(back.to_bits(), x.to_bits(), "{x}");
            }
        }
    }
}
