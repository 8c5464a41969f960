//! Validation of `PUT /api/profile` bodies (api.md §7.3): only fields present change, `""` or
//! `null` clears, `phone`/`phoneNumber` are one field. Pure.

use base64::{Engine, engine::general_purpose::STANDARD};
use payplane_kit::{
    ApiError,
    error::FieldError,
    validate::{Text, check_len, normalize_text},
};
use serde_json::{Map, Value};

/// The longest http(s) avatar URL.
pub const MAX_URL: usize = 2048;
/// The longest avatar data URL: a 2 MiB image in base64 plus its `data:` prefix (api.md §7,
/// changelog review 2 — the limit existing clients were built for).
pub const MAX_DATA_URL: usize = 2_796_220;
const IMAGE_TYPES: [&str; 4] = ["png", "jpeg", "gif", "webp"];
/// The phone length range (api.md §7.3).
pub const PHONE_MIN: usize = 10;
pub const PHONE_MAX: usize = 20;
/// [`check_phone`]'s alphabet for the OpenAPI document, first and last character not a space
/// (the value is trimmed before it is measured).
pub const PHONE_PATTERN: &str = r"^\+?[0-9().\-/]([0-9 ().\-/]*[0-9().\-/])?$";
/// `address`: 1..500 characters, multi-line; empty clears it.
pub const ADDRESS: Text = Text::multiline(1, 500);
/// `bio`: 0..1000 characters, multi-line.
pub const BIO: Text = Text::multiline(0, 1000);
/// [`check_avatar`]'s http(s) form for the OpenAPI document (a plain host and path: every
/// value it admits parses as an absolute URI).
pub const AVATAR_URL_PATTERN: &str =
    r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(/[A-Za-z0-9._~/-]*)?$";
/// [`check_avatar`]'s data-URL form for the OpenAPI document: an image type and canonical,
/// padded base64 (what the decoder accepts).
pub const AVATAR_DATA_PATTERN: &str = r"^data:image/(png|jpeg|gif|webp);base64,(([A-Za-z0-9+/]{4})+|([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=))$";

/// One requested field change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(String),
    /// `""` or `null`: the field becomes null.
    Clear,
}

impl Change {
    /// The stored value after the change.
    pub fn into_value(self) -> Option<String> {
        match self {
            Change::Set(v) => Some(v),
            Change::Clear => None,
        }
    }
}

/// A validated profile edit; `None` = field absent, leave it as it is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProfileEdit {
    pub phone: Option<Change>,
    pub address: Option<Change>,
    pub bio: Option<Change>,
    pub avatar_url: Option<Change>,
}

/// The phone rule: 10..20 characters of `^\+?[0-9\s().\-/]+$`.
pub fn check_phone(text: &str) -> Result<(), &'static str> {
    let n = text.chars().count();
    let body = text.strip_prefix('+').unwrap_or(text);
    let alphabet = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace() || "().-/".contains(c));
    if !(PHONE_MIN..=PHONE_MAX).contains(&n) || !alphabet {
        Err("must be 10-20 characters of digits, spaces and ( ) . - /, optionally starting with +")
    } else {
        Ok(())
    }
}

/// The avatar rule: an absolute http(s) URL of at most 2048 characters, or an image data URL of
/// at most 2 MiB whose data is valid base64.
pub fn check_avatar(text: &str) -> Result<(), &'static str> {
    const DATA_MSG: &str = "must be a data:image/(png|jpeg|gif|webp);base64 URL of at most 2796220 characters with valid base64 data";
    const URL_MSG: &str =
        "must be an absolute http or https URL of at most 2048 characters, or an image data URL";
    let n = text.chars().count();
    let lower_prefix: String = text
        .chars()
        .take(11)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower_prefix.starts_with("data:") {
        if n > MAX_DATA_URL {
            return Err(DATA_MSG);
        }
        let Some(rest) = text.get(5..) else {
            return Err(DATA_MSG);
        };
        let Some((media, data)) = rest.split_once(',') else {
            return Err(DATA_MSG);
        };
        let Some(kind) = media
            .strip_prefix("image/")
            .and_then(|m| m.strip_suffix(";base64"))
        else {
            return Err(DATA_MSG);
        };
        if !IMAGE_TYPES.contains(&kind) || data.is_empty() || STANDARD.decode(data).is_err() {
            return Err(DATA_MSG);
        }
        return Ok(());
    }
    if n > MAX_URL {
        return Err(URL_MSG);
    }
    let Ok(uri) = text.parse::<http::Uri>() else {
        return Err(URL_MSG);
    };
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let host_ok = uri.host().is_some_and(|h| !h.is_empty());
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err(URL_MSG)
    }
}

/// Reads one optional text field: absent → `None`; `null`, or empty after trimming → clear;
/// otherwise normalised and checked by `rule`.
fn field(
    body: &Map<String, Value>,
    name: &str,
    multiline: bool,
    errors: &mut Vec<FieldError>,
    rule: impl Fn(&str) -> Result<(), String>,
) -> Option<Change> {
    let value = body.get(name)?;
    let raw = match value {
        Value::Null => return Some(Change::Clear),
        Value::String(s) => s,
        _ => {
            errors.push(FieldError::new(name, "must be a string"));
            return None;
        }
    };
    if raw.trim().is_empty() {
        return Some(Change::Clear);
    }
    match normalize_text(raw, multiline)
        .map_err(str::to_owned)
        .and_then(|t| rule(&t).map(|()| t))
    {
        Ok(text) => Some(Change::Set(text)),
        Err(msg) => {
            errors.push(FieldError::new(name, msg));
            None
        }
    }
}

/// The avatar is only trimmed: NFC over a 2 MiB data URL is wasted work and URLs are ASCII.
fn avatar(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Change> {
    let value = body.get("avatarUrl")?;
    let raw = match value {
        Value::Null => return Some(Change::Clear),
        Value::String(s) => s.trim(),
        _ => {
            errors.push(FieldError::new("avatarUrl", "must be a string"));
            return None;
        }
    };
    if raw.is_empty() {
        return Some(Change::Clear);
    }
    if raw.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "avatarUrl",
            "must not contain control characters",
        ));
        return None;
    }
    match check_avatar(raw) {
        Ok(()) => Some(Change::Set(raw.to_owned())),
        Err(msg) => {
            errors.push(FieldError::new("avatarUrl", msg));
            None
        }
    }
}

impl ProfileEdit {
    /// Validates a body, reporting every violation together (api.md §1.5).
    pub fn parse(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let phone_rule = |t: &str| check_phone(t).map_err(str::to_owned);
        let phone = field(body, "phone", false, &mut errors, phone_rule);
        let phone_number = field(body, "phoneNumber", false, &mut errors, phone_rule);
        let phone = match (phone, phone_number) {
            (Some(a), Some(b)) if a != b => {
                errors.push(FieldError::new(
                    "phone",
                    "phone and phoneNumber must not differ",
                ));
                None
            }
            (a, b) => a.or(b),
        };
        let address = field(body, "address", true, &mut errors, |t| {
            check_len(t, ADDRESS.min, ADDRESS.max)
        });
        let bio = field(body, "bio", true, &mut errors, |t| {
            check_len(t, BIO.min, BIO.max)
        });
        let avatar_url = avatar(body, &mut errors);
        if errors.is_empty() {
            Ok(Self {
                phone,
                address,
                bio,
                avatar_url,
            })
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;

    fn parse(v: &Value) -> Result<ProfileEdit, ApiError> {
        ProfileEdit::parse(v.as_object().unwrap())
    }

    #[test]
    fn phone_aliases_and_clearing() {
        let e = parse(&json!({"phoneNumber": " +1 555 010 0000 "})).unwrap();
        assert_eq!(e.phone, Some(Change::Set("+1 555 010 0000".into())));
        let e = parse(&json!({"phone": "", "bio": null})).unwrap();
        assert_eq!(
            (e.phone, e.bio, e.address),
            (Some(Change::Clear), Some(Change::Clear), None)
        );
        let e = parse(&json!({"phone": "1234567890", "phoneNumber": "1234567890"})).unwrap();
        assert_eq!(e.phone, Some(Change::Set("1234567890".into())));
        assert!(parse(&json!({"phone": "1234567890", "phoneNumber": "1234567891"})).is_err());
        assert!(parse(&json!({"phone": null, "phoneNumber": "  "})).is_ok());
    }

    #[test]
    fn phone_rule() {
        for ok in [
            "1234567890",
            "+1 (555) 010-0000",
            "12.34.56/78-90",
            "+1234567890123456789",
        ] {
            assert!(check_phone(ok).is_ok(), "{ok}");
        }
        for bad in [
            "123456789",
            "+123456789012345678901",
            "12345abcde",
            "++1234567890",
            "+",
        ] {
            assert!(check_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn avatar_rule() {
        assert!(check_avatar("https://example.com/a.png").is_ok());
        assert!(check_avatar("HTTP://example.com").is_ok());
        assert!(check_avatar("data:image/png;base64,iVBORw0KGgo=").is_ok());
        for bad in [
            "ftp://example.com/a.png",
            "/relative/a.png",
            "example.com/a.png",
            "https://",
            "data:image/svg+xml;base64,PHN2Zz4=",
            "data:image/png;base64,not base64!",
            "data:image/png;base64,",
            "data:image/png,iVBORw0KGgo=",
            "data:text/plain;base64,aGk=",
        ] {
            assert!(check_avatar(bad).is_err(), "{bad}");
        }
        assert!(check_avatar(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }
}
