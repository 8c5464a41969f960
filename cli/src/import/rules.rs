//! The import's row rules (import.md §2 "Validation"): each source row either becomes the row
//! payplane stores, unchanged in meaning, or is refused with a stable reason the report counts.
//! Pure, no I/O.
#![expect(
    clippy::implicit_hasher,
    reason = "the skipped-id sets are the import's own, always with std's hasher"
)]

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use payplane_kit::{storable, validate};
use payplane_payments::domain::{
    self as payment_rules,
    money::{Amount, Currency},
};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Why a row was not imported: the report's key.
pub type Reason = &'static str;

/// A source `users` row as read.
#[derive(Debug, Clone)]
pub struct SourceUser {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: String,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user as auth and the two directories store it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: String,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ROLES: [&str; 3] = ["ADMIN", "CUSTOMER", "VENDOR"];

/// Whether a stored hash is one auth can verify: bcrypt (upgraded at the next login) or an
/// Argon2id PHC string.
pub fn supported_hash(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$argon2id$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

/// `case_duplicates` holds the lower-cased emails that more than one source account uses:
/// neither is imported (which one is the real owner is not ours to guess).
pub fn user(raw: SourceUser, case_duplicates: &HashSet<String>) -> Result<User, Reason> {
    let id = Uuid::parse_str(raw.id.trim()).map_err(|_| "id_not_uuid")?;
    let email = validate::email(&raw.email).map_err(|_| "email_invalid")?;
    if case_duplicates.contains(&email) {
        return Err("email_case_duplicate");
    }
    if !supported_hash(&raw.password_hash) {
        return Err("password_hash_unsupported");
    }
    let name = validate::normalize_text(&raw.name, false).map_err(|_| "name_invalid")?;
    validate::check_len(&name, 1, 255).map_err(|_| "name_invalid")?;
    let role = raw.role.trim().to_ascii_uppercase();
    if !ROLES.contains(&role.as_str()) {
        return Err("role_invalid");
    }
    Ok(User {
        id,
        email,
        password_hash: raw.password_hash,
        name,
        role,
        email_verified: raw.email_verified,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
    })
}

/// A source `devices` row as read.
#[derive(Debug, Clone)]
pub struct SourceDevice {
    pub id: String,
    pub user_id: String,
    pub device_id: String,
    pub device_name: Option<String>,
    pub device_type: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_id: String,
    pub device_name: Option<String>,
    pub device_type: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
}

const DEVICE_TYPES: [&str; 4] = ["browser", "mobile", "desktop", "other"];

pub fn device(raw: SourceDevice, skipped_users: &HashSet<Uuid>) -> Result<Device, Reason> {
    let id = Uuid::parse_str(raw.id.trim()).map_err(|_| "id_not_uuid")?;
    let user_id = Uuid::parse_str(raw.user_id.trim()).map_err(|_| "user_id_not_uuid")?;
    if skipped_users.contains(&user_id) {
        return Err("user_not_imported");
    }
    if !validate::token_like(&raw.device_id, 128) {
        return Err("device_id_invalid");
    }
    let device_name = optional_text(raw.device_name, 100).map_err(|()| "device_name_invalid")?;
    let device_type = match raw.device_type.map(|t| t.trim().to_ascii_lowercase()) {
        Some(t) if DEVICE_TYPES.contains(&t.as_str()) => Some(t),
        Some(t) if t.is_empty() => None,
        Some(_) => return Err("device_type_invalid"),
        None => None,
    };
    let user_agent = optional_text(raw.user_agent, 512).map_err(|()| "user_agent_invalid")?;
    Ok(Device {
        id,
        user_id,
        device_id: raw.device_id,
        device_name,
        device_type,
        user_agent,
        created_at: raw.created_at,
        last_active_at: raw.last_active_at,
    })
}

/// A source `payments` row as read (amount and JSON as text, so nothing is lost in decoding).
#[derive(Debug, Clone)]
pub struct SourcePayment {
    pub id: String,
    pub sender_id: String,
    pub recipient_id: Option<String>,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub kind: String,
    pub description: Option<String>,
    pub metadata: Option<String>,
    pub psp_transaction_id: Option<String>,
    pub psp_status: Option<String>,
    pub failure_reason: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Payment {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    /// Two fraction digits, as [`Amount`] prints it.
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub kind: String,
    pub description: String,
    pub metadata: Option<Value>,
    pub psp_transaction_id: Option<String>,
    pub psp_status: Option<String>,
    pub failure_reason: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn payment(raw: SourcePayment, skipped_users: &HashSet<Uuid>) -> Result<Payment, Reason> {
    let id = Uuid::parse_str(raw.id.trim()).map_err(|_| "id_not_uuid")?;
    let sender_id = Uuid::parse_str(raw.sender_id.trim()).map_err(|_| "sender_id_not_uuid")?;
    // The source nulls the recipient when that account is deleted; payplane keeps every
    // payment's recipient (api.md §5.1 "always set"), so there is nothing true to store.
    let recipient = raw.recipient_id.ok_or("recipient_missing")?;
    let recipient_id = Uuid::parse_str(recipient.trim()).map_err(|_| "recipient_id_not_uuid")?;
    if sender_id == recipient_id {
        return Err("sender_is_recipient");
    }
    if skipped_users.contains(&sender_id) || skipped_users.contains(&recipient_id) {
        return Err("party_not_imported");
    }
    let amount = Amount::parse(raw.amount.trim()).map_err(|_| "amount_invalid")?;
    // Exact codes only: an upper-casing here would be a silent change of the source data.
    let currency = Currency::parse(&raw.currency)
        .ok()
        .filter(|c| c.code() == raw.currency)
        .ok_or("currency_unsupported")?;
    let status = raw.status.trim().to_owned();
    if !payment_rules::STATUSES.contains(&status.as_str()) {
        return Err("status_invalid");
    }
    let kind = raw.kind.trim().to_owned();
    if !payment_rules::TYPES.contains(&kind.as_str()) {
        return Err("type_invalid");
    }
    // payplane needs the moment a scheduled payment may start; the source never stored one.
    if kind == "scheduled" {
        return Err("scheduled_without_date");
    }
    if (status == "completed") != raw.completed_at.is_some() {
        return Err("completed_at_inconsistent");
    }
    // import.md: a missing description becomes "" (the API's 1..500 applies to new input).
    let description = match raw.description {
        None => String::new(),
        Some(d) => {
            let text = validate::normalize_text(&d, true).map_err(|_| "description_invalid")?;
            validate::check_len(&text, 0, 500).map_err(|_| "description_invalid")?;
            text
        }
    };
    let metadata = match raw.metadata {
        None => None,
        Some(text) => match json(&text).map_err(|()| "metadata_invalid")? {
            Value::Null => None,
            v @ Value::Object(_) => {
                storable::check(&v, payment_rules::METADATA_LIMITS)
                    .map_err(|_| "metadata_invalid")?;
                Some(v)
            }
            _ => return Err("metadata_invalid"),
        },
    };
    let failure_reason =
        optional_text(raw.failure_reason, 1000).map_err(|()| "failure_reason_invalid")?;
    Ok(Payment {
        id,
        sender_id,
        recipient_id,
        amount: amount.to_string(),
        currency: currency.code().to_owned(),
        status,
        kind,
        description,
        metadata,
        psp_transaction_id: raw.psp_transaction_id,
        psp_status: raw.psp_status,
        failure_reason,
        completed_at: raw.completed_at,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
    })
}

/// A source `payment_transactions` row as read.
#[derive(Debug, Clone)]
pub struct SourceTransaction {
    pub id: String,
    pub payment_id: String,
    pub status: String,
    pub status_message: Option<String>,
    pub psp_transaction_id: Option<String>,
    pub metadata: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub status: String,
    pub previous_status: Option<String>,
    pub status_message: Option<String>,
    pub psp_transaction_id: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
}

/// `previous` is the status of the payment's transaction before this one in time order: the
/// history is kept as it happened, even where payplane would have refused the transition.
pub fn transaction(
    raw: SourceTransaction,
    previous: Option<&str>,
    skipped_payments: &HashSet<Uuid>,
) -> Result<Transaction, Reason> {
    let id = Uuid::parse_str(raw.id.trim()).map_err(|_| "id_not_uuid")?;
    let payment_id = Uuid::parse_str(raw.payment_id.trim()).map_err(|_| "payment_id_not_uuid")?;
    if skipped_payments.contains(&payment_id) {
        return Err("payment_not_imported");
    }
    let status = raw.status.trim().to_owned();
    if !payment_rules::STATUSES.contains(&status.as_str()) {
        return Err("status_invalid");
    }
    let status_message =
        optional_text(raw.status_message, 1000).map_err(|()| "status_message_invalid")?;
    let metadata = match raw.metadata {
        None => None,
        Some(text) => {
            let v = json(&text).map_err(|()| "metadata_invalid")?;
            storable::check(&v, payment_rules::METADATA_LIMITS).map_err(|_| "metadata_invalid")?;
            Some(v)
        }
    };
    Ok(Transaction {
        id,
        payment_id,
        status,
        previous_status: previous
            .filter(|p| payment_rules::STATUSES.contains(p))
            .map(str::to_owned),
        status_message,
        psp_transaction_id: raw.psp_transaction_id,
        metadata,
        created_at: raw.created_at,
    })
}

/// A source `audit_logs` row as read.
#[derive(Debug, Clone)]
pub struct SourceAudit {
    pub id: String,
    pub user_id: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub details: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Audit {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub details: Option<Value>,
    pub ip_address: Option<ipnet::IpNet>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

const RESOURCE_TYPES: [&str; 5] = ["user", "payment", "system_config", "session", "profile"];

/// The source's own action vocabulary (`user.login`, `Payment Created`) in payplane's
/// `^[A-Z_]{1,64}$`: letters upper-cased, every other run of characters one `_`.
pub fn action(source: &str) -> Option<String> {
    let mut out = String::with_capacity(source.len());
    for c in source.trim().chars() {
        if c.is_ascii_alphabetic() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_');
    (!out.is_empty() && out.len() <= 64).then(|| out.to_owned())
}

/// What the target cannot hold as a column (an action spelled otherwise, a resource type or
/// address payplane does not know) is kept in `details` under `source*` keys, so the trail
/// still says exactly what the source said.
pub fn audit(raw: SourceAudit) -> Result<Audit, Reason> {
    let id = Uuid::parse_str(raw.id.trim()).map_err(|_| "id_not_uuid")?;
    let user_id = match raw.user_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => Some(Uuid::parse_str(u).map_err(|_| "user_id_not_uuid")?),
    };
    let mapped = action(&raw.action).ok_or("action_invalid")?;
    let mut details = match raw.details {
        None => Map::new(),
        Some(text) => match json(&text).map_err(|()| "details_invalid")? {
            Value::Null => Map::new(),
            Value::Object(m) => m,
            _ => return Err("details_invalid"),
        },
    };
    if mapped != raw.action {
        details.insert("sourceAction".into(), Value::String(raw.action.clone()));
    }
    let resource_type = match raw.resource_type.map(|t| t.trim().to_owned()) {
        None => None,
        Some(t) if t.is_empty() => None,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            if RESOURCE_TYPES.contains(&lower.as_str()) {
                Some(lower)
            } else {
                details.insert("sourceResourceType".into(), Value::String(t));
                None
            }
        }
    };
    let resource_id = optional_text(raw.resource_id, 255).map_err(|()| "resource_id_invalid")?;
    let ip_address = match raw.ip_address.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            if let Ok(ip) = text.parse::<std::net::IpAddr>() {
                Some(ipnet::IpNet::from(ip))
            } else {
                details.insert("sourceIpAddress".into(), Value::String(text.to_owned()));
                None
            }
        }
    };
    let user_agent = optional_text(raw.user_agent, 512).map_err(|()| "user_agent_invalid")?;
    let details = (!details.is_empty()).then_some(Value::Object(details));
    if let Some(d) = &details {
        storable::check(d, payplane_admin::domain::CONFIG_VALUE_LIMITS)
            .map_err(|_| "details_invalid")?;
    }
    Ok(Audit {
        id,
        user_id,
        action: mapped,
        resource_type,
        resource_id,
        details,
        ip_address,
        user_agent,
        created_at: raw.created_at,
    })
}

/// A source `system_config` row as read.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub key: String,
    pub value: Value,
    pub description: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<Uuid>,
}

/// `^[a-z0-9]+([._-][a-z0-9]+)*$`, at most 128 characters (data.md §5).
pub fn config_key(key: &str) -> bool {
    key.len() <= 128
        && !key.is_empty()
        && key.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

pub fn config(raw: SourceConfig) -> Result<Config, Reason> {
    if !config_key(&raw.key) {
        return Err("key_invalid");
    }
    let value = json(&raw.value).map_err(|()| "value_invalid")?;
    storable::check(&value, payplane_admin::domain::CONFIG_VALUE_LIMITS)
        .map_err(|_| "value_invalid")?;
    let description = optional_text(raw.description, 500).map_err(|()| "description_invalid")?;
    let updated_by = match raw.updated_by.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => Some(Uuid::parse_str(u).map_err(|_| "updated_by_not_uuid")?),
    };
    Ok(Config {
        key: raw.key,
        value,
        description,
        updated_at: raw.updated_at,
        updated_by,
    })
}

/// A source `user_profiles` row as read.
#[derive(Debug, Clone)]
pub struct SourceProfile {
    pub id: String,
    pub user_id: String,
    pub avatar_url: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub bio: Option<String>,
    pub preferences: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub id: Uuid,
    pub user_id: Uuid,
    pub avatar_url: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub bio: Option<String>,
    pub preferences: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Preferences of free shape are kept as they are when storable: the profile service reads
/// the keys it knows and ignores the rest (api.md §7).
pub fn profile(raw: SourceProfile, skipped_users: &HashSet<Uuid>) -> Result<Profile, Reason> {
    use payplane_profile::domain::edit;
    let id = Uuid::parse_str(raw.id.trim()).map_err(|_| "id_not_uuid")?;
    let user_id = Uuid::parse_str(raw.user_id.trim()).map_err(|_| "user_id_not_uuid")?;
    if skipped_users.contains(&user_id) {
        return Err("user_not_imported");
    }
    let avatar_url = match raw.avatar_url.filter(|a| !a.trim().is_empty()) {
        None => None,
        Some(a) => {
            edit::check_avatar(&a).map_err(|_| "avatar_url_invalid")?;
            Some(a)
        }
    };
    let phone = match raw
        .phone
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => {
            edit::check_phone(&p).map_err(|_| "phone_invalid")?;
            Some(p)
        }
    };
    let address = optional_text_range(raw.address, 1, 500).map_err(|()| "address_invalid")?;
    let bio = optional_text_range(raw.bio, 0, 1000).map_err(|()| "bio_invalid")?;
    let preferences = match raw.preferences {
        None => Value::Object(Map::new()),
        Some(text) => match json(&text).map_err(|()| "preferences_invalid")? {
            Value::Null => Value::Object(Map::new()),
            v @ Value::Object(_) => {
                storable::check(&v, payplane_admin::domain::CONFIG_VALUE_LIMITS)
                    .map_err(|_| "preferences_invalid")?;
                v
            }
            _ => return Err("preferences_invalid"),
        },
    };
    Ok(Profile {
        id,
        user_id,
        avatar_url,
        phone,
        address,
        bio,
        preferences,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
    })
}

/// JSON text from a source `jsonb` column; read as text because a number PostgreSQL holds may
/// not decode (api.md §1.6, issue #18), which must be a reported row, not a failed import.
fn json(text: &str) -> Result<Value, ()> {
    serde_json::from_str(text).map_err(|_| ())
}

fn optional_text(raw: Option<String>, max: usize) -> Result<Option<String>, ()> {
    optional_text_range(raw, 0, max)
}

/// Absent or blank is `None`; otherwise the normalised text within `min..=max` characters.
fn optional_text_range(raw: Option<String>, min: usize, max: usize) -> Result<Option<String>, ()> {
    match raw {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => {
            let text = validate::normalize_text(&t, true).map_err(|_| ())?;
            validate::check_len(&text, min, max).map_err(|_| ())?;
            Ok(Some(text))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-03-01T10:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn source_user(email: &str) -> SourceUser {
        SourceUser {
            id: Uuid::new_v4().to_string(),
            email: email.into(),
            password_hash: "$2b$10$abcdefghijklmnopqrstuu5s3w3QpQk0nS3aM1Ck3Y9xq5Qe7o3S".into(),
            name: "Ada Lovelace".into(),
            role: "CUSTOMER".into(),
            email_verified: true,
            created_at: at(),
            updated_at: at(),
        }
    }

    fn source_payment(sender: Uuid, recipient: Option<Uuid>) -> SourcePayment {
        SourcePayment {
            id: Uuid::new_v4().to_string(),
            sender_id: sender.to_string(),
            recipient_id: recipient.map(|r| r.to_string()),
            amount: "12.50".into(),
            currency: "INR".into(),
            status: "pending".into(),
            kind: "instant".into(),
            description: None,
            metadata: Some(r#"{"order":1}"#.into()),
            psp_transaction_id: None,
            psp_status: None,
            failure_reason: None,
            completed_at: None,
            created_at: at(),
            updated_at: at(),
        }
    }

    #[test]
    fn users_keep_their_hash_and_lose_only_the_case_of_their_email() {
        let u = user(source_user("Ada@Example.COM"), &HashSet::new()).unwrap();
        assert_eq!(u.email, "ada@example.com");
        assert!(u.password_hash.starts_with("$2b$10$"));
        let dups: HashSet<String> = ["ada@example.com".to_owned()].into();
        assert_eq!(
            user(source_user("ADA@example.com"), &dups).unwrap_err(),
            "email_case_duplicate"
        );
        let mut md5 = source_user("b@example.com");
        md5.password_hash = "5f4dcc3b5aa765d61d8327deb882cf99".into();
        assert_eq!(
            user(md5, &HashSet::new()).unwrap_err(),
            "password_hash_unsupported"
        );
    }

    #[test]
    fn payments_follow_payplane_rules_or_name_the_reason() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let p = payment(source_payment(a, Some(b)), &HashSet::new()).unwrap();
        assert_eq!((p.amount.as_str(), p.description.as_str()), ("12.50", ""));
        assert_eq!(
            payment(source_payment(a, None), &HashSet::new()).unwrap_err(),
            "recipient_missing"
        );
        let mut huge = source_payment(a, Some(b));
        huge.metadata = Some(r#"{"x":1.7976931348623157e308}"#.into());
        assert_eq!(
            payment(huge, &HashSet::new()).unwrap_err(),
            "metadata_invalid"
        );
        let mut nul = source_payment(a, Some(b));
        nul.metadata = Some(r#"{"k":"a\u0000b"}"#.into());
        assert_eq!(
            payment(nul, &HashSet::new()).unwrap_err(),
            "metadata_invalid"
        );
        let mut done = source_payment(a, Some(b));
        done.status = "completed".into();
        assert_eq!(
            payment(done.clone(), &HashSet::new()).unwrap_err(),
            "completed_at_inconsistent"
        );
        done.completed_at = Some(at());
        assert!(payment(done, &HashSet::new()).is_ok());
        let mut lower = source_payment(a, Some(b));
        lower.currency = "usd".into();
        assert_eq!(
            payment(lower, &HashSet::new()).unwrap_err(),
            "currency_unsupported"
        );
        let skipped: HashSet<Uuid> = [b].into();
        assert_eq!(
            payment(source_payment(a, Some(b)), &skipped).unwrap_err(),
            "party_not_imported"
        );
    }

    #[test]
    fn audit_actions_map_to_payplane_vocabulary_keeping_the_source_spelling() {
        assert_eq!(action("user.login").as_deref(), Some("USER_LOGIN"));
        assert_eq!(
            action("Payment Created!").as_deref(),
            Some("PAYMENT_CREATED")
        );
        assert_eq!(action("..."), None);
        let a = audit(SourceAudit {
            id: Uuid::new_v4().to_string(),
            user_id: None,
            action: "user.login".into(),
            resource_type: Some("Invoice".into()),
            resource_id: None,
            details: Some(r#"{"a":1}"#.into()),
            ip_address: Some("not-an-ip".into()),
            user_agent: None,
            created_at: at(),
        })
        .unwrap();
        assert_eq!(a.action, "USER_LOGIN");
        assert_eq!(a.resource_type, None);
        let d = a.details.unwrap();
        assert_eq!(d["sourceAction"], "user.login");
        assert_eq!(d["sourceResourceType"], "Invoice");
        assert_eq!(d["sourceIpAddress"], "not-an-ip");
        assert_eq!(d["a"], 1);
    }

    #[test]
    fn config_keys_follow_the_data_rule() {
        assert!(config_key("payments.max-amount"));
        assert!(!config_key("Payments.Max"));
        assert!(!config_key("a..b"));
        assert!(!config_key(""));
    }
}
