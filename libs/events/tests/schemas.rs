//! The committed `data` schemas (events.md §7.6): they equal what the payload types generate
//! (drift test; `UPDATE_SCHEMAS=1` rewrites them), every catalog example validates against its
//! schema, and typical producer mistakes are refused with the field named.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::{collections::BTreeSet, fs};

use payplane_events::{
    ROUTING_KEYS,
    schema::{data_schema, render, routing_keys},
    testing::{schema_dir, schema_path, validate_data, validate_outbox},
};
use serde_json::{Value, json};

fn example(key: &str) -> Value {
    let path = format!("{}/examples-json/{key}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap()
}

/// Like the operator's CRD check: regenerate, compare with the committed text, and either fail
/// with what to run or (with `UPDATE_SCHEMAS=1`) write the new files.
#[test]
fn committed_schemas_match_the_payload_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    if update {
        fs::create_dir_all(schema_dir()).unwrap();
    }
    let mut stale = Vec::new();
    for key in routing_keys() {
        let expected = render(&data_schema(key).unwrap());
        let path = schema_path(key);
        let committed = fs::read_to_string(&path).ok();
        if committed.as_deref() == Some(expected.as_str()) {
            continue;
        }
        if update {
            fs::write(&path, &expected).unwrap();
        } else {
            stale.push(format!(
                "{} ({})",
                path.display(),
                if committed.is_some() {
                    "differs"
                } else {
                    "missing"
                }
            ));
        }
    }
    // A file without a routing key is a schema of an event nobody produces any more.
    let known: BTreeSet<String> = routing_keys().map(|k| format!("{k}.json")).collect();
    let extra: Vec<String> = fs::read_dir(schema_dir())
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !known.contains(name))
                .collect()
        })
        .unwrap_or_default();
    if update {
        for name in &extra {
            fs::remove_file(schema_dir().join(name)).unwrap();
        }
        return;
    }
    for name in extra {
        stale.push(format!(
            "{} (no such routing key)",
            schema_dir().join(name).display()
        ));
    }
    assert!(
        stale.is_empty(),
        "the committed event schemas are out of date with the payload types:\n  {}\n\
         regenerate them with `UPDATE_SCHEMAS=1 cargo test -p payplane-events --test schemas` \
         and commit the result",
        stale.join("\n  ")
    );
}

#[test]
fn every_example_validates_against_its_schema() {
    assert_eq!(routing_keys().count(), ROUTING_KEYS.len());
    for key in ROUTING_KEYS {
        if let Err(e) = validate_data(key, &example(key)) {
            panic!("{e}");
        }
    }
}

fn refused(key: &str, data: &Value) -> String {
    validate_data(key, data).expect_err("should be refused")
}

#[test]
fn a_missing_required_field_is_refused_by_name() {
    let mut data = example("auth.user.created");
    data.as_object_mut().unwrap().remove("userId");
    let e = refused("auth.user.created", &data);
    assert!(e.contains("missing properties 'userId'"), "{e}");
    // Present-but-null is how §3 spells "does not apply"; absent is not allowed.
    let mut data = example("payments.payment.completed");
    data.as_object_mut().unwrap().remove("scheduledFor");
    let e = refused("payments.payment.completed", &data);
    assert!(e.contains("'scheduledFor'"), "{e}");
}

#[test]
fn a_wrong_type_is_refused_at_the_field() {
    let mut data = example("payments.payment.created");
    data["amount"] = json!(1000);
    let e = refused("payments.payment.created", &data);
    assert!(e.contains("\"/amount\""), "{e}");
    assert!(e.contains("want string, but got number"), "{e}");
    let mut data = example("auth.user.login");
    data["sessionId"] = json!("not-a-uuid");
    let e = refused("auth.user.login", &data);
    assert!(e.contains("\"/sessionId\"") && e.contains("uuid"), "{e}");
}

#[test]
fn an_unknown_property_is_refused_by_name() {
    let mut data = example("profile.profile.updated");
    data["phone"] = json!("+1 555 0100");
    let e = refused("profile.profile.updated", &data);
    assert!(
        e.contains("additionalProperties 'phone' not allowed"),
        "{e}"
    );
}

#[test]
fn contract_formats_and_vocabularies_are_enforced() {
    let cases = [
        // Three fraction digits and `Z`, as time::format writes.
        (
            "auth.user.logout",
            "logoutAt",
            json!("2026-03-01T10:00:03Z"),
            "/logoutAt",
        ),
        (
            "auth.user.logout",
            "logoutAt",
            json!("2026-03-01T10:00:03.512+01:00"),
            "/logoutAt",
        ),
        (
            "payments.payment.created",
            "amount",
            json!("10.5"),
            "/amount",
        ),
        (
            "payments.payment.created",
            "currency",
            json!("eur"),
            "/currency",
        ),
        // Each payment event reports one status.
        (
            "payments.payment.completed",
            "status",
            json!("failed"),
            "/status",
        ),
        ("auth.user.created", "role", json!("customer"), "/role"),
        ("auth.session.revoked", "reason", json!("other"), "/reason"),
        (
            "auth.user.updated",
            "changedFields",
            json!([]),
            "/changedFields",
        ),
        (
            "auth.user.updated",
            "changedFields",
            json!(["is_active"]),
            "/changedFields/0",
        ),
        (
            "auth.user.updated",
            "previous",
            json!({"tokenVersion": 1}),
            "/previous/tokenVersion",
        ),
        (
            "payments.payment.updated",
            "previous",
            json!({"metadata": {}}),
            "/previous/metadata",
        ),
        ("admin.audit.created", "details", json!("text"), "/details"),
        (
            "admin.config.updated",
            "operation",
            json!("upserted"),
            "/operation",
        ),
        (
            "auth.user.password_changed",
            "revokedSessionCount",
            json!(-1),
            "/revokedSessionCount",
        ),
    ];
    for (key, field, value, location) in cases {
        let mut data = example(key);
        data[field] = value.clone();
        let e = refused(key, &data);
        assert!(
            e.contains(&format!("at \"{location}\"")),
            "{key} {field}={value}: {e}"
        );
    }
}

#[test]
fn an_unknown_routing_key_has_no_schema() {
    let e = validate_data("auth.user.renamed", &json!({})).unwrap_err();
    assert!(e.contains("no committed schema"), "{e}");
}

#[test]
fn an_outbox_check_validates_envelopes_and_names_keys_never_produced() {
    let row = |key: &str| {
        let envelope = json!({"type": key, "source": "admin", "data": example(key)});
        (key.to_owned(), envelope)
    };
    let rows = [
        row("admin.audit.created"),
        row("admin.audit.created"),
        row("admin.config.updated"),
    ];
    let seen = validate_outbox("admin", &rows).unwrap();
    assert_eq!(seen["admin.audit.created"], 2);
    let e = validate_outbox("admin", &rows[..1]).unwrap_err();
    assert!(e.contains("no outbox row for admin.config.updated"), "{e}");
    let mut wrong = row("admin.config.updated");
    wrong.1["source"] = json!("auth");
    wrong.1["data"]["operation"] = json!("renamed");
    let e = validate_outbox("admin", &[rows[0].clone(), wrong]).unwrap_err();
    assert!(e.starts_with("2 problem(s)"), "{e}");
    assert!(
        e.contains("source \"auth\"") && e.contains("at \"/operation\""),
        "{e}"
    );
}
