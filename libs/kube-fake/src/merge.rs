//! The merge rules of server-side apply for a single field manager: fields the manager applied
//! last time and omits now are removed, everything it applies now is merged in (objects
//! recursively, lists and scalars replaced). Pure, no I/O.

use serde_json::{Map, Value};

/// Removes from `live` every field present in `previous` (what this manager applied last
/// time) that `current` (what it applies now) no longer contains.
fn remove_dropped(
    live: &mut Map<String, Value>,
    previous: &Map<String, Value>,
    current: &Map<String, Value>,
) {
    for (key, prev_value) in previous {
        match current.get(key) {
            None => {
                live.remove(key);
            }
            Some(Value::Object(cur)) => {
                if let (Some(Value::Object(live_child)), Value::Object(prev_child)) =
                    (live.get_mut(key), prev_value)
                {
                    remove_dropped(live_child, prev_child, cur);
                }
            }
            Some(_) => {}
        }
    }
}

/// Merges `applied` into `live`: objects recursively, everything else replaced.
fn merge_in(live: &mut Map<String, Value>, applied: &Map<String, Value>) {
    for (key, value) in applied {
        match (live.get_mut(key), value) {
            (Some(Value::Object(live_child)), Value::Object(applied_child)) => {
                merge_in(live_child, applied_child);
            }
            _ => {
                live.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The object that results from `manager` applying `applied` over `live`, given what the same
/// manager applied before (`previous`).
pub fn server_side_apply(live: &Value, previous: Option<&Value>, applied: &Value) -> Value {
    let mut out = match live {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let empty = Map::new();
    let applied_map = applied.as_object().unwrap_or(&empty);
    if let Some(Value::Object(prev)) = previous {
        remove_dropped(&mut out, prev, applied_map);
    }
    merge_in(&mut out, applied_map);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dropped_fields_are_removed_and_foreign_fields_kept() {
        let live = json!({"spec": {"a": 1, "b": 2, "c": 3}, "metadata": {"labels": {"x": "1", "other": "y"}}});
        let previous = json!({"spec": {"a": 1, "b": 2}, "metadata": {"labels": {"x": "1"}}});
        let applied = json!({"spec": {"a": 5}, "metadata": {"labels": {}}});
        let out = server_side_apply(&live, Some(&previous), &applied);
        assert_eq!(
            out,
            json!({"spec": {"a": 5, "c": 3}, "metadata": {"labels": {"other": "y"}}})
        );
    }

    #[test]
    fn lists_are_replaced_whole() {
        let live = json!({"spec": {"items": [1, 2, 3]}});
        let out = server_side_apply(&live, None, &json!({"spec": {"items": [4]}}));
        assert_eq!(out, json!({"spec": {"items": [4]}}));
    }
}
