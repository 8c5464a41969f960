//! Test support (feature `testing`): validating an event's `data` against the schema committed
//! for its routing key in `libs/events/schemas/`, as producers' tests do with the rows they put
//! into their outbox (events.md §7.6). The committed file is what consumers see, and the drift
//! test keeps it equal to what the types generate, so this checks producer against contract.

use std::{collections::BTreeMap, path::PathBuf};

use boon::{Compiler, ErrorKind, Schemas, ValidationError};
use serde_json::Value;

/// Where the committed schemas live (this crate's `schemas/` folder).
pub fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// The committed schema file of `routing_key`.
pub fn schema_path(routing_key: &str) -> PathBuf {
    schema_dir().join(format!("{routing_key}.json"))
}

/// Validates `data` against the committed schema of `routing_key`. The error lists every
/// failing location with its reason (for example `at "/amount": want string, but got number`,
/// or `at "": missing properties 'userId'`), so a failing producer test names the field.
pub fn validate_data(routing_key: &str, data: &Value) -> Result<(), String> {
    let path = schema_path(routing_key);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no committed schema for {routing_key} at {} ({e}); \
             run `UPDATE_SCHEMAS=1 cargo test -p payplane-events --test schemas`",
            path.display()
        )
    })?;
    let schema: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    // Draft 2020-12 treats `format` as an annotation only; the contract means it (uuid,
    // date-time), so assert it.
    compiler.enable_format_assertions();
    let url = format!("urn:payplane:events:{routing_key}");
    compiler
        .add_resource(&url, schema)
        .map_err(|e| format!("schema of {routing_key}: {e}"))?;
    let index = compiler
        .compile(&url, &mut schemas)
        .map_err(|e| format!("schema of {routing_key} does not compile: {e:#}"))?;
    schemas.validate(data, index).map_err(|error| {
        let mut lines = Vec::new();
        leaves(&error, None, &mut lines);
        format!(
            "{routing_key} data does not match its schema:\n  {}\ndata: {data}",
            lines.join("\n  ")
        )
    })
}

/// Checks a producer's outbox: every `(routing_key, envelope)` row must be an envelope of
/// `source` whose `type` is its routing key and whose `data` validates ([`validate_data`]), and
/// every routing key of the catalog that `source` produces (`<source>.…`) must occur at least
/// once, so a producer test notices an event it no longer drives. Returns how often each
/// routing key occurred; the error lists every problem found.
pub fn validate_outbox(
    source: &str,
    rows: &[(String, Value)],
) -> Result<BTreeMap<String, usize>, String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, envelope) in rows {
        *seen.entry(key.clone()).or_default() += 1;
        if envelope["type"] != key.as_str() || envelope["source"] != source {
            problems.push(format!(
                "{key}: envelope type {} / source {} (want {key} / {source})",
                envelope["type"], envelope["source"]
            ));
        }
        if let Err(e) = validate_data(key, &envelope["data"]) {
            problems.push(e);
        }
    }
    let prefix = format!("{source}.");
    let missing: Vec<&str> = crate::schema::routing_keys()
        .filter(|k| k.starts_with(&prefix) && !seen.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "no outbox row for {} (seen: {seen:?})",
            missing.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(seen)
    } else {
        Err(format!(
            "{} problem(s) in {} outbox row(s) of {source}:\n{}",
            problems.len(),
            rows.len(),
            problems.join("\n")
        ))
    }
}

/// The innermost errors (the ones that say what is wrong, rather than "validation failed").
/// boon validates a property *name* (`propertyNames`) as a value of its own, so that error and
/// its causes carry no useful instance location; `name_at` replaces it with the property's.
fn leaves(error: &ValidationError<'_, '_>, name_at: Option<&str>, out: &mut Vec<String>) {
    let location = match (&error.kind, name_at) {
        (ErrorKind::PropertyName { prop }, _) => property_location(error.schema_url, prop),
        (_, Some(at)) => at.to_owned(),
        (_, None) => error.instance_location.to_string(),
    };
    if error.causes.is_empty() {
        out.push(format!("at {location:?}: {}", error.kind));
    }
    let name_at = match &error.kind {
        ErrorKind::PropertyName { .. } => Some(location.as_str()),
        _ => name_at,
    };
    for cause in &error.causes {
        leaves(cause, name_at, out);
    }
}

/// Where a property named `prop` sits, from the location of the schema that checked its name:
/// `…#/properties/previous` → `/previous/prop`. Our schemas reach every `propertyNames` through
/// `properties` alone; anything else is reported with the schema location.
fn property_location(schema_url: &str, prop: &str) -> String {
    let pointer = schema_url.split_once('#').map_or("", |(_, f)| f);
    let segments: Vec<&str> = pointer.split('/').skip(1).collect();
    if segments.len().is_multiple_of(2) && segments.chunks(2).all(|pair| pair[0] == "properties") {
        let mut location = String::new();
        for pair in segments.chunks(2) {
            location.push('/');
            location.push_str(pair[1]);
        }
        location.push('/');
        location.push_str(prop);
        location
    } else {
        format!("property name {prop:?} checked by {schema_url}")
    }
}
