//! The `<n><unit>` duration form of the contract (`15m`, `7d`), used by config and `expiresIn`.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected a duration like 30s, 15m, 12h or 7d, got {0:?}")]
pub struct DurationError(pub String);

/// Parses `<n><unit>` with unit `s|m|h|d` and n > 0.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let err = || DurationError(text.to_owned());
    let unit_at = text.len().checked_sub(1).ok_or_else(err)?;
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(err()),
    };
    if n == 0 {
        return Err(err());
    }
    n.checked_mul(factor)
        .map(Duration::from_secs)
        .ok_or_else(err)
}

/// Formats with the largest unit that divides the duration exactly (`900s` → `15m`).
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, factor) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= factor && secs.is_multiple_of(factor) {
            return format!("{}{unit}", secs / factor);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(format(Duration::from_secs(900)), "15m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(86_400 * 30)), "30d");
        for bad in [
            "",
            "m",
            "15",
            "15x",
            "-1m",
            "0s",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
    }
}
