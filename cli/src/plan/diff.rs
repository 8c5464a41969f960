//! The pure half of `payplane plan`: what differs between an object as stored and as the
//! server would store it after an apply, and the unified-style text that says so. No I/O.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Metadata the server writes on every write, so it differs between a stored object and a
/// dry-run of the same apply without anything having changed.
const VOLATILE_METADATA: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// One field that differs; `None` on a side where the field is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// Where, e.g. `spec.template.spec.containers[name=app].image`.
    pub path: String,
    /// The stored value.
    pub old: Option<Value>,
    /// The value after the apply.
    pub new: Option<Value>,
}

/// What would happen to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It does not exist and would be created.
    Create {
        /// `Kind/name`.
        id: String,
    },
    /// It exists and these fields would change.
    Update {
        /// `Kind/name`.
        id: String,
        /// The differing fields, in path order.
        fields: Vec<FieldChange>,
    },
    /// It is an owned child the new build no longer produces, and would be deleted.
    Delete {
        /// `Kind/name`.
        id: String,
    },
}

impl Change {
    /// `Kind/name` of the object.
    pub fn id(&self) -> &str {
        match self {
            Self::Create { id } | Self::Update { id, .. } | Self::Delete { id } => id,
        }
    }
}

/// `obj` without `status` and the metadata the server rewrites on every write.
pub fn normalize(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in VOLATILE_METADATA {
                meta.remove(key);
            }
        }
    }
    obj
}

/// The change from `live` (as stored, `None` when absent) to `planned` (what a dry-run apply
/// returned), or `None` when nothing but server bookkeeping differs.
pub fn compare(id: &str, live: Option<&Value>, planned: &Value) -> Option<Change> {
    let Some(live) = live else {
        return Some(Change::Create { id: id.to_owned() });
    };
    let mut fields = Vec::new();
    walk(
        &mut String::new(),
        Some(&normalize(live)),
        Some(&normalize(planned)),
        &mut fields,
    );
    (!fields.is_empty()).then(|| Change::Update {
        id: id.to_owned(),
        fields,
    })
}

/// Appends a map key to a path: bare when it is a plain identifier, quoted otherwise (label
/// and annotation keys carry dots and slashes).
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        let _ = write!(path, "[{}]", Value::String(key.to_owned()));
    }
}

/// The `name` of every element when all are objects with distinct string names (containers,
/// env, ports, volumes): such lists are compared by name, so that inserting one entry reads as
/// one addition rather than a shift of every later index.
fn names(items: &[Value]) -> Option<Vec<&str>> {
    let names: Vec<&str> = items
        .iter()
        .map(|v| v.get("name").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    let distinct: BTreeSet<&&str> = names.iter().collect();
    (distinct.len() == names.len()).then_some(names)
}

fn record(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    out.push(FieldChange {
        path: path.to_owned(),
        old: old.cloned(),
        new: new.cloned(),
    });
}

fn walk(path: &mut String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    let len = path.len();
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => walk_maps(path, a, b, out),
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            let scalars = a.iter().chain(b).all(|v| !v.is_object() && !v.is_array());
            if scalars {
                // A list of words (args, hosts) reads best whole.
                record(path, old, new, out);
            } else if let (Some(na), Some(nb)) = (names(a), names(b)) {
                let mut order: Vec<&str> = na.clone();
                order.extend(nb.iter().filter(|n| !na.contains(n)));
                for name in order {
                    let old = na.iter().position(|n| *n == name).map(|i| &a[i]);
                    let new = nb.iter().position(|n| *n == name).map(|i| &b[i]);
                    let _ = write!(path, "[name={name}]");
                    walk(path, old, new, out);
                    path.truncate(len);
                }
            } else {
                for i in 0..a.len().max(b.len()) {
                    let _ = write!(path, "[{i}]");
                    walk(path, a.get(i), b.get(i), out);
                    path.truncate(len);
                }
            }
        }
        _ => record(path, old, new, out),
    }
}

fn walk_maps(
    path: &mut String,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    out: &mut Vec<FieldChange>,
) {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let len = path.len();
    for key in keys {
        push_key(path, key);
        walk(path, a.get(key), b.get(key), out);
        path.truncate(len);
    }
}

/// Whether the values at `path` of a `Kind/name` object must not be printed: Secret data.
fn hidden(id: &str, path: &str) -> bool {
    id.starts_with("Secret/") && (path.starts_with("data") || path.starts_with("stringData"))
}

fn show(value: Option<&Value>, hide: bool) -> String {
    match value {
        None => "(none)".to_owned(),
        Some(_) if hide => "(hidden)".to_owned(),
        Some(v) => v.to_string(),
    }
}

/// The unified-style text of `changes`: `+ create`, `~ change` with one indented
/// `path: old → new` line per field, `- delete`. Secret values are never printed. Empty when
/// there is nothing to do.
pub fn render(changes: &[Change]) -> String {
    let mut out = String::new();
    for change in changes {
        match change {
            Change::Create { id } => {
                let _ = writeln!(out, "+ create {id}");
            }
            Change::Delete { id } => {
                let _ = writeln!(out, "- delete {id}");
            }
            Change::Update { id, fields } => {
                let _ = writeln!(out, "~ change {id}");
                for f in fields {
                    let hide = hidden(id, &f.path);
                    let _ = writeln!(
                        out,
                        "    {}: {} → {}",
                        f.path,
                        show(f.old.as_ref(), hide),
                        show(f.new.as_ref(), hide)
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "payplane-gateway", "namespace": "payments",
                "labels": {"app.kubernetes.io/name": "gateway"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "image": image, "args": ["serve"],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
            ]}}},
        })
    }

    #[test]
    fn server_bookkeeping_and_status_are_no_change() {
        let mut live = deployment(2, "gw:1");
        live["metadata"]["resourceVersion"] = json!("41");
        live["metadata"]["generation"] = json!(3);
        live["metadata"]["uid"] = json!("u-1");
        live["metadata"]["creationTimestamp"] = json!("2026-12-06T10:00:00Z");
        live["metadata"]["managedFields"] = json!([{"manager": "payplane-operator"}]);
        live["status"] = json!({"readyReplicas": 2});
        let mut planned = deployment(2, "gw:1");
        planned["metadata"]["resourceVersion"] = json!("42");
        planned["metadata"]["generation"] = json!(4);
        assert_eq!(
            compare("Deployment/payplane-gateway", Some(&live), &planned),
            None
        );
    }

    #[test]
    fn a_replica_count_is_the_one_changed_path() {
        let change = compare(
            "Deployment/payplane-gateway",
            Some(&deployment(2, "gw:1")),
            &deployment(3, "gw:1"),
        );
        assert_eq!(
            change,
            Some(Change::Update {
                id: "Deployment/payplane-gateway".into(),
                fields: vec![FieldChange {
                    path: "spec.replicas".into(),
                    old: Some(json!(2)),
                    new: Some(json!(3)),
                }],
            })
        );
        assert_eq!(
            render(&[change.expect("a change")]),
            "~ change Deployment/payplane-gateway\n    spec.replicas: 2 → 3\n"
        );
    }

    #[test]
    fn named_list_entries_are_addressed_by_name() {
        let live = deployment(2, "gw:1");
        let mut planned = deployment(2, "gw:2");
        planned["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "C", "value": "3"}, {"name": "A", "value": "1"}, {"name": "B", "value": "9"}]);
        planned["metadata"]["labels"]["payplane.dev/x"] = json!("y");
        let Some(Change::Update { fields, .. }) =
            compare("Deployment/payplane-gateway", Some(&live), &planned)
        else {
            panic!("expected an update");
        };
        let lines: Vec<String> = fields
            .iter()
            .map(|f| {
                format!(
                    "{} {} {}",
                    f.path,
                    show(f.old.as_ref(), false),
                    show(f.new.as_ref(), false)
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                r#"metadata.labels["payplane.dev/x"] (none) "y""#,
                r#"spec.template.spec.containers[name=app].env[name=B].value "2" "9""#,
                r#"spec.template.spec.containers[name=app].env[name=C] (none) {"name":"C","value":"3"}"#,
                r#"spec.template.spec.containers[name=app].image "gw:1" "gw:2""#,
            ]
        );
    }

    #[test]
    fn scalar_lists_change_whole_and_unnamed_lists_by_index() {
        let mut live = deployment(1, "x");
        let mut planned = deployment(1, "x");
        planned["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["serve", "--v"]);
        live["spec"]["rules"] = json!([{"port": 1}, {"port": 2}]);
        planned["spec"]["rules"] = json!([{"port": 1}]);
        let Some(Change::Update { fields, .. }) = compare("Deployment/d", Some(&live), &planned)
        else {
            panic!("expected an update");
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].path, "spec.rules[1]");
        assert_eq!(fields[0].new, None);
        assert_eq!(
            fields[1].path,
            "spec.template.spec.containers[name=app].args"
        );
        assert_eq!(fields[1].new, Some(json!(["serve", "--v"])));
    }

    #[test]
    fn secret_values_are_hidden_and_create_delete_are_one_line() {
        let live = json!({"kind": "Secret", "metadata": {"name": "p-jwt"}, "data": {"k": "b2xk"}});
        let planned =
            json!({"kind": "Secret", "metadata": {"name": "p-jwt"}, "data": {"k": "bmV3"}});
        let mut changes: Vec<Change> = compare("Secret/p-jwt", Some(&live), &planned)
            .into_iter()
            .collect();
        changes.extend(compare("Service/p-redis", None, &planned));
        changes.push(Change::Delete {
            id: "Job/p-auth-migrate-0123456789".into(),
        });
        let text = render(&changes);
        assert_eq!(
            text,
            "~ change Secret/p-jwt\n    data.k: (hidden) → (hidden)\n\
             + create Service/p-redis\n\
             - delete Job/p-auth-migrate-0123456789\n"
        );
        assert!(!text.contains("bmV3") && !text.contains("b2xk"));
        assert_eq!(render(&[]), "");
    }
}
