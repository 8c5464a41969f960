//! The create and edit bodies of api.md §5.8–§5.9, validated into domain values. Pure: the
//! recipient is a [`Lookup`] the caller resolves.

use chrono::{DateTime, Duration, Utc};
use payplane_kit::{
    query::{DateBound, parse_date},
    storable,
    validate::Fields,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    DESCRIPTION, METADATA_LIMITS, TYPES,
    money::{Amount, Currency},
};
use crate::directory::Lookup;

/// A validated create or edit body.
/// `metadata` and `scheduledFor` are `Option<Option<_>>`: edits distinguish absent, `null`
/// and a value.
#[derive(Debug, Default)]
pub struct Input {
    pub payment_type: Option<&'static str>,
    pub amount: Option<Amount>,
    pub currency: Option<Currency>,
    pub description: Option<String>,
    pub recipient: Option<Lookup>,
    pub both_recipients: bool,
    /// Present in the body (`Some(None)` = `null`).
    pub metadata: Option<Option<Value>>,
    pub scheduled_for: Option<Option<DateTime<Utc>>>,
}

/// The members an edit may change; a body must name at least one (api.md §5.9).
pub const EDIT_FIELDS: [&str; 8] = [
    "amount",
    "currency",
    "description",
    "recipientId",
    "recipientEmail",
    "metadata",
    "type",
    "scheduledFor",
];

/// Reads a create (`create`) or edit body; errors go to `f`. `amount_text`: the `amount`
/// member as written (for the no-exponent rule).
pub fn read(
    body: &Map<String, Value>,
    amount_text: Option<&str>,
    create: bool,
    f: &mut Fields<'_>,
) -> Input {
    let mut input = Input {
        payment_type: f.one_of("type", create, &TYPES),
        ..Input::default()
    };
    match f.get("amount") {
        None if create => f.push("amount", "is required"),
        None => {}
        Some(v) => match money_value(v, amount_text) {
            Ok(a) => input.amount = Some(a),
            Err(msg) => f.push("amount", msg),
        },
    }
    match f.get("currency") {
        None => {}
        Some(Value::String(c)) => match Currency::parse(c) {
            Ok(c) => input.currency = Some(c),
            Err(e) => f.push("currency", e.to_string()),
        },
        Some(_) => f.push("currency", "must be a string"),
    }
    input.description = f.text("description", create, DESCRIPTION);
    read_recipient(&mut input, create, f);
    if let Some(v) = body.get("metadata") {
        input.metadata = read_metadata(v, f);
    }
    if let Some(v) = body.get("scheduledFor") {
        input.scheduled_for = read_schedule(v, Utc::now(), f);
    }
    input
}

fn read_recipient(input: &mut Input, create: bool, f: &mut Fields<'_>) {
    let rid = f.get("recipientId").map(|v| match v {
        Value::String(s) => Uuid::parse_str(s.trim()).map_err(|_| "must be a UUID"),
        _ => Err("must be a UUID string"),
    });
    let remail = f
        .present("recipientEmail")
        .then(|| f.email("recipientEmail", false));
    match (rid, remail) {
        (Some(_), Some(_)) => input.both_recipients = true,
        (Some(Ok(id)), None) => input.recipient = Some(Lookup::Id(id)),
        (Some(Err(msg)), None) => f.push("recipientId", msg),
        (None, Some(Some(email))) => input.recipient = Some(Lookup::Email(email)),
        (None, Some(None)) => {}
        (None, None) => {
            if create {
                f.push("recipientId", "is required (or recipientEmail)");
            }
        }
    }
}

#[expect(clippy::option_option, reason = "absent, null and a value")]
fn read_metadata(v: &Value, f: &mut Fields<'_>) -> Option<Option<Value>> {
    match v {
        Value::Null => Some(None),
        Value::Object(_) => match storable::check(v, METADATA_LIMITS) {
            Ok(()) => Some(Some(v.clone())),
            Err(msg) => {
                f.push("metadata", msg);
                None
            }
        },
        _ => {
            f.push("metadata", "must be an object or null");
            None
        }
    }
}

#[expect(clippy::option_option, reason = "absent, null and a value")]
fn read_schedule(
    v: &Value,
    now: DateTime<Utc>,
    f: &mut Fields<'_>,
) -> Option<Option<DateTime<Utc>>> {
    match v {
        Value::Null => return Some(None),
        Value::String(s) => match parse_date(s, false) {
            Some(DateBound { at, .. }) => {
                if at <= now {
                    f.push("scheduledFor", "must be in the future");
                } else if at > now + Duration::days(365) {
                    f.push("scheduledFor", "must be at most 365 days ahead");
                } else {
                    return Some(Some(at));
                }
            }
            None => f.push("scheduledFor", "must be an RFC 3339 timestamp"),
        },
        _ => f.push("scheduledFor", "must be a timestamp string"),
    }
    None
}

/// The rules for the `type`/`scheduledFor` combination.
pub fn check_schedule(f: &mut Fields<'_>, ty: &str, scheduled: Option<DateTime<Utc>>) {
    match (ty, scheduled) {
        ("scheduled", None) => f.push("scheduledFor", "is required for scheduled payments"),
        ("instant", Some(_)) => f.push("scheduledFor", "is not allowed for instant payments"),
        _ => {}
    }
}

/// A money value from a JSON string or number (api.md §1.6). `written` is the member's text as
/// the client sent it: a number in exponent form (`1e3`) is refused, as the contract says,
/// though serde reads it as 1000.
pub fn money_value(v: &Value, written: Option<&str>) -> Result<Amount, String> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn errors(f: Fields<'_>) -> Vec<String> {
        match f.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e
                .details
                .and_then(|d| d.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|i| i["field"].as_str().unwrap_or_default().to_owned())
                .collect(),
        }
    }

    #[test]
    fn money_from_strings_and_plain_numbers_only() {
        assert_eq!(
            money_value(&json!("10.5"), None).map(|a| a.to_string()),
            Ok("10.50".into())
        );
        assert_eq!(
            money_value(&json!(12), Some("12")).map(|a| a.to_string()),
            Ok("12.00".into())
        );
        assert!(money_value(&json!(1000), Some("1e3")).is_err());
        assert!(money_value(&json!(true), None).is_err());
        assert!(money_value(&json!("0"), None).is_err());
    }

    #[test]
    fn create_requires_type_amount_description_and_a_recipient() {
        let body = obj(&json!({}));
        let mut f = Fields::new(&body);
        let _ = read(&body, None, true, &mut f);
        let fields = errors(f);
        for field in ["type", "amount", "description", "recipientId"] {
            assert!(fields.iter().any(|x| x == field), "{field}: {fields:?}");
        }
    }

    #[test]
    fn a_valid_create_body_reads_into_domain_values() {
        let rid = Uuid::new_v4();
        let body = obj(&json!({
            "type": "instant", "amount": "5", "currency": "eur", "description": "Tea",
            "recipientId": rid.to_string(), "metadata": {"a": 1}
        }));
        let mut f = Fields::new(&body);
        let input = read(&body, None, true, &mut f);
        assert!(errors(f).is_empty());
        assert_eq!(input.payment_type, Some("instant"));
        assert_eq!(input.amount.map(|a| a.to_string()).as_deref(), Some("5.00"));
        assert_eq!(input.currency.map(Currency::code), Some("EUR"));
        assert_eq!(input.recipient, Some(Lookup::Id(rid)));
        assert_eq!(input.metadata, Some(Some(json!({"a": 1}))));
        assert!(!input.both_recipients);
    }

    #[test]
    fn edits_distinguish_absent_and_null_and_flag_two_recipients() {
        let body = obj(&json!({
            "metadata": null, "scheduledFor": null,
            "recipientId": Uuid::new_v4().to_string(), "recipientEmail": "a@example.com"
        }));
        let mut f = Fields::new(&body);
        let input = read(&body, None, false, &mut f);
        assert!(errors(f).is_empty());
        assert_eq!(input.metadata, Some(None));
        assert_eq!(input.scheduled_for, Some(None));
        assert!(input.both_recipients);
        assert_eq!(input.amount, None);
    }

    #[test]
    fn schedule_window() {
        let now = Utc::now();
        let body = Map::new();
        let at = |d: Duration| json!(payplane_events::time::format(&(now + d)));
        let mut f = Fields::new(&body);
        assert!(read_schedule(&at(Duration::days(1)), now, &mut f).is_some());
        assert!(read_schedule(&at(Duration::days(-1)), now, &mut f).is_none());
        assert!(read_schedule(&at(Duration::days(366)), now, &mut f).is_none());
        assert!(read_schedule(&json!(5), now, &mut f).is_none());
        assert_eq!(read_schedule(&Value::Null, now, &mut f), Some(None));
        let mut f = Fields::new(&body);
        check_schedule(&mut f, "scheduled", None);
        assert_eq!(errors(f), ["scheduledFor"]);
        let mut f = Fields::new(&body);
        check_schedule(&mut f, "instant", Some(now));
        assert_eq!(errors(f), ["scheduledFor"]);
        let mut f = Fields::new(&body);
        check_schedule(&mut f, "recurring", None);
        assert!(errors(f).is_empty());
    }
}
