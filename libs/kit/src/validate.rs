//! Field validation for JSON bodies with the contract's shared rules (api.md §1.5): strict
//! types, trimmed and NFC-normalised text, control characters refused, the email rule, and
//! every violation of a request reported together. Pure functions, no I/O.

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use crate::{ApiError, error::FieldError};

/// The longest email address (api.md §1.5).
pub const EMAIL_MAX: usize = 255;
/// The longest local part of an email address.
pub const EMAIL_LOCAL_MAX: usize = 64;
/// The longest domain of an email address.
pub const EMAIL_DOMAIN_MAX: usize = 253;
/// The device id / request id alphabet [`token_like`] accepts (api.md §1.2, §4.2).
pub const TOKEN_PATTERN: &str = "^[A-Za-z0-9._:-]+$";

/// Length bounds and line rules for a free-text field.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub min: usize,
    pub max: usize,
    /// Tab, CR and LF are allowed (description, address, bio, reason).
    pub multiline: bool,
}

impl Text {
    pub const fn len(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            multiline: false,
        }
    }

    pub const fn multiline(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            multiline: true,
        }
    }
}

/// Trims, NFC-normalises and refuses control characters. Returns the message on failure.
pub fn normalize_text(raw: &str, multiline: bool) -> Result<String, &'static str> {
    let text: String = raw.trim().nfc().collect();
    let bad = text.chars().any(|c| {
        (c.is_control() && !(multiline && matches!(c, '\t' | '\r' | '\n'))) || c == '\u{7f}'
    });
    if bad {
        Err("must not contain control characters")
    } else {
        Ok(text)
    }
}

/// Checks length in Unicode scalar values.
pub fn check_len(text: &str, min: usize, max: usize) -> Result<(), String> {
    let n = text.chars().count();
    if n < min {
        if min == 1 {
            Err("must not be empty".into())
        } else {
            Err(format!("must be at least {min} characters"))
        }
    } else if n > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

/// The email rule: returns the trimmed, lower-cased address.
pub fn email(raw: &str) -> Result<String, &'static str> {
    const MSG: &str = "must be a valid email address";
    let text = raw.trim();
    if text.is_empty()
        || text.chars().count() > EMAIL_MAX
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(MSG);
    }
    let mut parts = text.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(MSG);
    };
    let local_ok = (1..=EMAIL_LOCAL_MAX).contains(&local.chars().count());
    let domain_ok = (1..=EMAIL_DOMAIN_MAX).contains(&domain.len())
        && domain.contains('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local_ok && domain_ok {
        Ok(text.to_lowercase())
    } else {
        Err(MSG)
    }
}

/// The device id / request id alphabet `^[A-Za-z0-9._:-]+$` with a length range.
pub fn token_like(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `raw` (trimmed) matched case-insensitively against `allowed`, in its canonical spelling;
/// otherwise the message that lists what is allowed. Enum inputs of bodies and query strings
/// are read the same way (api.md §1.5).
pub fn one_of(raw: &str, allowed: &[&'static str]) -> Result<&'static str, String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(raw.trim()))
        .copied()
        .ok_or_else(|| format!("must be one of {}", allowed.join(", ")))
}

/// Accumulates violations while reading typed values out of a JSON object.
#[derive(Debug)]
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Self {
            obj,
            errors: Vec::new(),
        }
    }

    /// Present and not `null`.
    pub fn present(&self, name: &str) -> bool {
        self.obj.get(name).is_some_and(|v| !v.is_null())
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    fn raw_str(&mut self, name: &str, required: bool) -> Option<&'a str> {
        match self.get(name) {
            None => {
                if required {
                    self.push(name, "is required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.push(name, "must be a string");
                None
            }
        }
    }

    /// A free-text string: trimmed, NFC, no control characters, length-checked.
    pub fn text(&mut self, name: &str, required: bool, rule: Text) -> Option<String> {
        let raw = self.raw_str(name, required)?;
        match normalize_text(raw, rule.multiline) {
            Err(msg) => {
                self.push(name, msg);
                None
            }
            Ok(text) => match check_len(&text, rule.min, rule.max) {
                Err(msg) => {
                    self.push(name, msg);
                    None
                }
                Ok(()) => Some(text),
            },
        }
    }

    /// An optional free-text string where empty or whitespace-only means absent (a `reason`
    /// box that clients always send, api.md §5.10, §6.8).
    pub fn text_or_absent(&mut self, name: &str, rule: Text) -> Option<String> {
        if matches!(self.get(name), Some(Value::String(s)) if s.trim().is_empty()) {
            return None;
        }
        self.text(name, false, rule)
    }

    /// A secret string taken verbatim (passwords are not trimmed or normalised).
    pub fn secret(&mut self, name: &str, required: bool, min: usize, max: usize) -> Option<String> {
        let raw = self.raw_str(name, required)?;
        match check_len(raw, min, max) {
            Err(msg) => {
                self.push(name, msg);
                None
            }
            Ok(()) => Some(raw.to_owned()),
        }
    }

    pub fn email(&mut self, name: &str, required: bool) -> Option<String> {
        let raw = self.raw_str(name, required)?;
        match email(raw) {
            Ok(e) => Some(e),
            Err(msg) => {
                self.push(name, msg);
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &str, required: bool) -> Option<bool> {
        match self.get(name) {
            None => {
                if required {
                    self.push(name, "is required");
                }
                None
            }
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.push(name, "must be a boolean");
                None
            }
        }
    }

    /// An enum matched case-insensitively, returning the canonical spelling from `allowed`.
    pub fn one_of(
        &mut self,
        name: &str,
        required: bool,
        allowed: &[&'static str],
    ) -> Option<&'static str> {
        let raw = self.raw_str(name, required)?;
        one_of(raw, allowed).map_err(|m| self.push(name, m)).ok()
    }

    /// A string matching the `[A-Za-z0-9._:-]` alphabet, 1..=max long.
    pub fn token(&mut self, name: &str, required: bool, max: usize) -> Option<String> {
        let raw = self.raw_str(name, required)?;
        if token_like(raw, max) {
            Some(raw.to_owned())
        } else {
            self.push(
                name,
                format!("must be 1-{max} characters of letters, digits, '.', '_', ':' or '-'"),
            );
            None
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn email_rule() {
        assert_eq!(
            email("  Alice@Example.COM "),
            Ok("alice@example.com".into())
        );
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@b_c.com",
            "@b.com",
            "a@.com",
            "a@b..com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@b.com", "a".repeat(65))).is_err());
        assert!(email(&format!("{}@b.com", "a".repeat(64))).is_ok());
    }

    #[test]
    fn text_rules_and_collection() {
        let body = json!({"name": "  Ame\u{301}lie  ", "bio": "a\u{0}b", "flag": "true", "role": "vendor"});
        let obj = body.as_object().unwrap();
        let mut f = Fields::new(obj);
        assert_eq!(
            f.text("name", true, Text::len(1, 255)).as_deref(),
            Some("Amélie")
        );
        assert!(f.text("bio", false, Text::multiline(0, 10)).is_none());
        assert!(f.boolean("flag", false).is_none());
        assert_eq!(
            f.one_of("role", false, &["CUSTOMER", "VENDOR"]),
            Some("VENDOR")
        );
        assert!(f.text("missing", true, Text::len(1, 5)).is_none());
        let err = f.finish().unwrap_err();
        let fields: Vec<String> = err
            .details
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fields, ["bio", "flag", "missing"]);
    }
}
