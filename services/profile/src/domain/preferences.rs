//! Preferences (api.md §7.1, §7.5): stored values are only the keys a user set, the defaults
//! are applied on read, and an update is merged key by key (notifications flag by flag). Pure.

use serde_json::{Map, Value, json};

use payplane_kit::{ApiError, error::FieldError};

pub const THEMES: [&str; 3] = ["light", "dark", "system"];
/// The canonical `language` form, after normalisation (api.md §7.1).
pub const LANGUAGE_PATTERN: &str = "^[a-z]{2}(-[A-Z]{2})?$";
/// The longest `timezone`.
pub const TIMEZONE_MAX: usize = 64;
pub const KEYS: [&str; 5] = ["theme", "language", "currency", "timezone", "notifications"];
pub const FLAGS: [&str; 3] = ["email", "push", "sms"];

/// The currency whitelist of api.md §1.6.
pub const CURRENCIES: [&str; 40] = [
    "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "CNY", "INR", "MXN", "BRL", "KRW", "SGD",
    "HKD", "NOK", "SEK", "DKK", "NZD", "ZAR", "RUB", "AED", "SAR", "THB", "MYR", "IDR", "PHP",
    "VND", "PLN", "CZK", "HUF", "ILS", "TRY", "TWD", "CLP", "COP", "PEN", "ARS", "EGP", "NGN",
    "KES",
];

/// The defaults of api.md §7.1.
pub fn defaults() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "theme": "system",
        "language": "en",
        "currency": "USD",
        "timezone": "UTC",
        "notifications": {"email": true, "push": true, "sms": false},
    }) else {
        return Map::new();
    };
    map
}

/// The complete preferences: stored values (only known keys, only valid flags) over the defaults.
pub fn effective(stored: &Value) -> Value {
    let mut out = defaults();
    let Some(stored) = stored.as_object() else {
        return Value::Object(out);
    };
    for key in ["theme", "language", "currency", "timezone"] {
        if let Some(v @ Value::String(_)) = stored.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let (Some(Value::Object(flags)), Some(Value::Object(target))) =
        (stored.get("notifications"), out.get_mut("notifications"))
    {
        for flag in FLAGS {
            if let Some(b @ Value::Bool(_)) = flags.get(flag) {
                target.insert(flag.to_owned(), b.clone());
            }
        }
    }
    Value::Object(out)
}

/// One requested change of a stored key: `None` = reset to the default (remove it).
type Change = Option<Value>;

/// A requested change of the notification flags.
#[derive(Debug, Clone, PartialEq)]
enum Notifications {
    /// `notifications: null`: every flag back to its default.
    Reset,
    /// The listed flags change; `None` resets that flag.
    Flags(Vec<(&'static str, Option<bool>)>),
}

/// A validated `PUT /api/profile/preferences` body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PreferencesUpdate {
    scalars: Vec<(&'static str, Change)>,
    notifications: Option<Notifications>,
}

/// `en-us` → `en-US`; the result must match `^[a-z]{2}(-[A-Z]{2})?$`.
pub fn normalize_language(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (lang, region) = match raw.split_once(['-', '_']) {
        Some((l, r)) => (l, Some(r)),
        None => (raw, None),
    };
    let two_letters = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic());
    if !two_letters(lang) || region.is_some_and(|r| !two_letters(r)) {
        return None;
    }
    // Only `-` is the contract's separator; `_` is not normalised into it.
    if raw.contains('_') {
        return None;
    }
    let mut out = lang.to_ascii_lowercase();
    if let Some(r) = region {
        out.push('-');
        out.push_str(&r.to_ascii_uppercase());
    }
    Some(out)
}

/// Every time-zone name [`normalize_timezone`] accepts, in its own spelling, `UTC` first.
pub fn timezones() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .filter_map(|name| normalize_timezone(name.as_str()))
        .filter(|name| name != "UTC")
        .collect();
    names.sort();
    names.dedup();
    names.insert(0, "UTC".into());
    names
}

/// An IANA time-zone name known to the tz database, or `UTC`, at most 64 characters; returns the
/// database's own spelling.
pub fn normalize_timezone(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.chars().count() > TIMEZONE_MAX || raw.chars().any(char::is_control) {
        return None;
    }
    if raw.eq_ignore_ascii_case("utc") {
        return Some("UTC".into());
    }
    let tz = jiff::tz::db().get(raw).ok()?;
    Some(tz.iana_name().unwrap_or(raw).to_owned())
}

fn parse_scalar(key: &'static str, value: &Value) -> Result<Value, String> {
    let Value::String(s) = value else {
        return Err("must be a string".into());
    };
    match key {
        "theme" => THEMES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(s.trim()))
            .map(|t| Value::String((*t).to_owned()))
            .ok_or_else(|| format!("must be one of {}", THEMES.join(", "))),
        "language" => normalize_language(s)
            .map(Value::String)
            .ok_or_else(|| "must be a language code like en or en-US".into()),
        "currency" => {
            let upper = s.trim().to_ascii_uppercase();
            if CURRENCIES.contains(&upper.as_str()) {
                Ok(Value::String(upper))
            } else {
                Err("must be a supported currency code".into())
            }
        }
        _ => normalize_timezone(s)
            .map(Value::String)
            .ok_or_else(|| "must be an IANA time zone name or UTC".into()),
    }
}

impl PreferencesUpdate {
    /// Validates a body, reporting every violation together (api.md §1.5). Unknown keys are
    /// ignored.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let mut update = PreferencesUpdate::default();
        for key in ["theme", "language", "currency", "timezone"] {
            match body.get(key) {
                None => {}
                Some(Value::Null) => update.scalars.push((key, None)),
                Some(v) => match parse_scalar(key, v) {
                    Ok(v) => update.scalars.push((key, Some(v))),
                    Err(msg) => errors.push(FieldError::new(key, msg)),
                },
            }
        }
        match body.get("notifications") {
            None => {}
            Some(Value::Null) => update.notifications = Some(Notifications::Reset),
            Some(Value::Object(flags)) => {
                let mut changes = Vec::new();
                for flag in FLAGS {
                    match flags.get(flag) {
                        None => {}
                        Some(Value::Null) => changes.push((flag, None)),
                        Some(Value::Bool(b)) => changes.push((flag, Some(*b))),
                        Some(_) => errors.push(FieldError::new(
                            format!("notifications.{flag}"),
                            "must be a boolean",
                        )),
                    }
                }
                update.notifications = Some(Notifications::Flags(changes));
            }
            Some(_) => errors.push(FieldError::new(
                "notifications",
                "must be an object of email, push and sms flags",
            )),
        }
        if errors.is_empty() {
            Ok(update)
        } else {
            Err(ApiError::validation(errors))
        }
    }

    /// Applies the update to the stored object; returns the new stored object and the keys whose
    /// stored value changed (in the contract's key order).
    pub fn apply(&self, stored: &Value) -> (Value, Vec<&'static str>) {
        let before = clean(stored);
        let mut after = before.clone();
        for (key, change) in &self.scalars {
            match change {
                None => after.remove(*key),
                Some(v) => after.insert((*key).to_owned(), v.clone()),
            };
        }
        match &self.notifications {
            None => {}
            Some(Notifications::Reset) => {
                after.remove("notifications");
            }
            Some(Notifications::Flags(changes)) => {
                let mut flags = after
                    .get("notifications")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (flag, value) in changes {
                    match value {
                        None => flags.remove(*flag),
                        Some(b) => flags.insert((*flag).to_owned(), Value::Bool(*b)),
                    };
                }
                if flags.is_empty() {
                    after.remove("notifications");
                } else {
                    after.insert("notifications".into(), Value::Object(flags));
                }
            }
        }
        let changed = KEYS
            .into_iter()
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        (Value::Object(after), changed)
    }
}

/// The stored object restricted to known keys and valid value types (older rows or manual edits
/// cannot leak unknown keys into comparisons).
fn clean(stored: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(stored) = stored.as_object() else {
        return out;
    };
    for key in ["theme", "language", "currency", "timezone"] {
        if let Some(v @ Value::String(_)) = stored.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(Value::Object(flags)) = stored.get("notifications") {
        let kept: Map<String, Value> = FLAGS
            .iter()
            .filter_map(|f| match flags.get(*f) {
                Some(b @ Value::Bool(_)) => Some(((*f).to_owned(), b.clone())),
                _ => None,
            })
            .collect();
        if !kept.is_empty() {
            out.insert("notifications".into(), Value::Object(kept));
        }
    }
    out
}

#[cfg(test)]
mod tests {

    use super::*;

    fn obj(v: &Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_fill_what_is_not_stored() {
        let eff = effective(&json!({"theme": "dark", "notifications": {"sms": true}, "junk": 1}));
        assert_eq!(
            eff,
            json!({"theme": "dark", "language": "en", "currency": "USD", "timezone": "UTC",
                   "notifications": {"email": true, "push": true, "sms": true}})
        );
    }

    #[test]
    fn notifications_merge_flag_by_flag_and_null_resets() {
        let stored = json!({"notifications": {"email": false, "push": false}, "theme": "dark"});
        let u = PreferencesUpdate::parse(&obj(&json!({"notifications": {"sms": true}}))).unwrap();
        let (after, changed) = u.apply(&stored);
        assert_eq!(
            after,
            json!({"theme": "dark", "notifications": {"email": false, "push": false, "sms": true}})
        );
        assert_eq!(changed, ["notifications"]);
        let u = PreferencesUpdate::parse(&obj(&json!({"notifications": {"email": null}}))).unwrap();
        let (after, _) = u.apply(&stored);
        assert_eq!(after["notifications"], json!({"push": false}));
        let u =
            PreferencesUpdate::parse(&obj(&json!({"notifications": null, "theme": null}))).unwrap();
        let (after, changed) = u.apply(&stored);
        assert_eq!(after, json!({}));
        assert_eq!(changed, ["theme", "notifications"]);
    }

    #[test]
    fn same_values_change_nothing() {
        let stored = json!({"theme": "dark"});
        let u =
            PreferencesUpdate::parse(&obj(&json!({"theme": "DARK", "language": null}))).unwrap();
        let (after, changed) = u.apply(&stored);
        assert_eq!(after, stored);
        assert!(changed.is_empty());
    }

    #[test]
    fn normalisation_and_rules() {
        assert_eq!(normalize_language("en-us").as_deref(), Some("en-US"));
        assert_eq!(normalize_language("FR").as_deref(), Some("fr"));
        for bad in ["e", "eng", "en-USA", "en_US", "e1", "en-", ""] {
            assert_eq!(normalize_language(bad), None, "{bad}");
        }
        assert_eq!(normalize_timezone("utc").as_deref(), Some("UTC"));
        assert_eq!(
            normalize_timezone("Europe/Berlin").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            normalize_timezone("america/new_york").as_deref(),
            Some("America/New_York"),
            "the database's own spelling is stored"
        );
        assert_eq!(normalize_timezone("Mars/Olympus"), None);
        assert_eq!(normalize_timezone("../../etc/passwd"), None);
        assert_eq!(normalize_timezone(&"A".repeat(65)), None);
        let err = PreferencesUpdate::parse(&obj(&json!({
            "theme": "neon", "language": 5, "currency": "XXX", "timezone": "Nowhere",
            "notifications": {"email": "yes"}
        })))
        .unwrap_err();
        let fields: Vec<&str> = err
            .details
            .as_ref()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "theme",
                "language",
                "currency",
                "timezone",
                "notifications.email"
            ]
        );
    }
}
