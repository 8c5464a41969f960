//! The JSON Schema (draft 2020-12) of every event's `data` (events.md §7.6), generated from the
//! payload types with schemars' *serialize* contract, so it describes exactly what
//! `serde_json::to_value` writes: the camelCase names, every field present and required (§3:
//! fields are never omitted, `null` when they do not apply), enums as their wire strings.
//!
//! The schemas are committed as `libs/events/schemas/<routing key>.json`; a test in this crate
//! fails when a committed file differs from what [`data_schema`] generates (`UPDATE_SCHEMAS=1`
//! rewrites them), and producers validate their outbox rows against the committed files (feature
//! `testing`).

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Map, Value};

use crate::{Event, admin, auth, payments, profile};

/// The dialect every schema declares in `$schema`.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Placed in every schema so that nobody edits a generated file by hand.
const COMMENT: &str = "Generated from the payplane-events payload types; do not edit. \
    Regenerate with `UPDATE_SCHEMAS=1 cargo test -p payplane-events --test schemas`.";

/// A routing key and the function generating its schema.
type Generator = (&'static str, fn() -> Value);

/// Every routing key with its schema generator, in the order of [`crate::ROUTING_KEYS`].
const GENERATORS: [Generator; 16] = [
    entry::<auth::UserCreated>(),
    entry::<auth::UserUpdated>(),
    entry::<auth::UserDeleted>(),
    entry::<auth::UserLogin>(),
    entry::<auth::UserLogout>(),
    entry::<auth::PasswordChanged>(),
    entry::<auth::SessionRevoked>(),
    entry::<payments::PaymentCreated>(),
    entry::<payments::PaymentUpdated>(),
    entry::<payments::PaymentProcessing>(),
    entry::<payments::PaymentCompleted>(),
    entry::<payments::PaymentFailed>(),
    entry::<payments::PaymentCancelled>(),
    entry::<admin::AuditCreated>(),
    entry::<admin::ConfigUpdated>(),
    entry::<profile::ProfileUpdated>(),
];

// Keyed by the type's own `ROUTING_KEY`, so a schema cannot be filed under the wrong key.
const fn entry<E: Event + JsonSchema>() -> Generator {
    (E::ROUTING_KEY, generate::<E>)
}

/// Every routing key that has a `data` schema: all of [`crate::ROUTING_KEYS`].
pub fn routing_keys() -> impl Iterator<Item = &'static str> {
    GENERATORS.iter().map(|(key, _)| *key)
}

/// The JSON Schema of `data` for `routing_key`, or `None` for a key outside the catalog.
pub fn data_schema(routing_key: &str) -> Option<Value> {
    GENERATORS
        .iter()
        .find(|(key, _)| *key == routing_key)
        .map(|(_, generate)| generate())
}

/// The text committed for `schema`: pretty-printed, keys sorted at every level, newline at the
/// end. Sorting here (rather than relying on `serde_json::Map`'s order) keeps the files stable
/// even if some crate in the build turns on serde_json's `preserve_order`.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(schema)).unwrap_or_default();
    text.push('\n');
    text
}

fn generate<E: Event + JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<E>().to_value();
    if let Value::Object(root) = &mut schema {
        root.insert("$schema".into(), DIALECT.into());
        // The routing key names the schema for non-Rust readers; the type's doc comment,
        // if any, stays as the description.
        root.insert("title".into(), E::ROUTING_KEY.into());
        root.insert("$comment".into(), COMMENT.into());
    }
    sorted(&schema)
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&map[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ROUTING_KEYS;

    #[test]
    fn every_routing_key_has_a_schema_in_catalog_order() {
        assert_eq!(routing_keys().collect::<Vec<_>>(), ROUTING_KEYS);
        assert!(data_schema("auth.user.nope").is_none());
    }

    #[test]
    fn schemas_are_closed_and_require_every_property() {
        for key in ROUTING_KEYS {
            let schema = data_schema(key).unwrap();
            assert_eq!(schema["$schema"], DIALECT, "{key}");
            assert_eq!(schema["title"], key);
            assert_eq!(schema["type"], "object", "{key}");
            assert_eq!(schema["additionalProperties"], false, "{key}");
            let properties: Vec<&String> =
                schema["properties"].as_object().unwrap().keys().collect();
            let mut required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            required.sort_unstable();
            assert_eq!(required, properties, "{key}: every field is always present");
        }
    }

    #[test]
    fn wire_spellings_come_out_of_the_serde_attributes() {
        let created = data_schema(auth::USER_CREATED).unwrap();
        let props = &created["properties"];
        assert!(props.get("isActive").is_some() && props.get("is_active").is_none());
        assert_eq!(props["createdAt"]["type"], "string");
        assert_eq!(props["createdAt"]["format"], "date-time");
        assert_eq!(props["actorId"]["type"], json_types(&["string", "null"]));
        let completed = data_schema(payments::PAYMENT_COMPLETED).unwrap();
        let props = &completed["properties"];
        assert!(props.get("type").is_some() && props.get("paymentType").is_none());
        assert_eq!(props["status"]["const"], "completed");
        assert_eq!(
            props["completedAt"]["type"],
            json_types(&["string", "null"])
        );
        let revoked = data_schema(auth::SESSION_REVOKED).unwrap();
        let reasons = revoked["$defs"]["RevokeReason"]["enum"].as_array().unwrap();
        assert!(reasons.contains(&"token_reuse".into()));
        assert!(!reasons.contains(&"other".into()), "a consumer-only value");
    }

    fn json_types(types: &[&str]) -> Value {
        Value::Array(types.iter().map(|t| Value::from(*t)).collect())
    }
}
