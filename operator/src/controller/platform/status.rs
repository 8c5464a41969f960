//! `status` of a `Platform` (pure): the readiness of each applied component, aggregated.

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::super::{RESYNC, Report};
use crate::conditions::{current_status, statefulset_ready};
use crate::crd::Platform;

/// Ready and reason of an applied payplane child, from its status as returned by apply.
fn child_readiness(obj: &DynamicObject) -> (bool, Option<String>) {
    let ready = (obj
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array))
    .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    let is_ready = current_status(obj).is_some() && ready.is_some_and(|c| c["status"] == "True");
    let reason = ready.and_then(|c| c.get("reason").and_then(Value::as_str));
    (
        is_ready,
        (!is_ready).then(|| reason.unwrap_or("Pending").to_owned()),
    )
}

/// The report of `p` from its applied children: each component (not the Secrets, Services and
/// NetworkPolicies) with its readiness, ready once all are.
pub fn status(p: &Platform, applied: &[DynamicObject]) -> Report {
    let mut components = Vec::new();
    let mut not_ready = Vec::new();
    for obj in applied {
        let kind = (obj.types.as_ref())
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        let (ready, reason) = match kind.as_str() {
            "StatefulSet" => {
                let r = statefulset_ready(obj);
                (r, (!r).then(|| "StatefulSetNotReady".to_owned()))
            }
            "Secret" | "Service" | "NetworkPolicy" => continue,
            _ => child_readiness(obj),
        };
        if !ready {
            not_ready.push(format!("{kind} {}", obj.name_any()));
        }
        components
            .push(json!({"kind": kind, "name": obj.name_any(), "ready": ready, "reason": reason}));
    }
    let count = components.len();
    let extra = json!({"endpoint": format!("https://{}", p.spec.domain), "components": components});
    if not_ready.is_empty() {
        Report::ready(&format!("{count} components ready"), extra, RESYNC)
    } else {
        let msg = format!("waiting for {}", not_ready.join(", "));
        Report::waiting("ComponentsNotReady", msg, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::WAIT;
    use super::*;
    use kube::runtime::controller::Action;

    fn child(kind: &str, name: &str, generation: i64, ready: &str) -> DynamicObject {
        let object = json!({"apiVersion": "payplane.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "generation": generation},
            "status": {"observedGeneration": 1, "readyReplicas": 1,
                "conditions": [{"type": "Ready", "status": ready, "reason": "WaitingForCluster"}]}});
        serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn components_are_aggregated_skipping_plain_objects() {
        let p = Platform::example();
        let applied = [
            child("Database", "db", 1, "True"),
            child("Secret", "jwt", 1, "False"),
            child("StatefulSet", "redis", 1, ""),
        ];
        let r = status(&p, &applied);
        assert_eq!(r.conds[0].message, "2 components ready");
        assert_eq!(r.action, Action::requeue(RESYNC));
        assert_eq!(r.extra["components"].as_array().map(Vec::len), Some(2));
        let applied = [
            ("Database", "db", 1, "False"),
            ("Queue", "q", 2, "True"),
            ("StatefulSet", "redis", 2, ""),
        ]
        .map(|(kind, name, generation, ready)| child(kind, name, generation, ready));
        let r = status(&p, &applied);
        assert_eq!(r.conds[0].reason, "ComponentsNotReady");
        assert_eq!(
            r.conds[0].message,
            "waiting for Database db, Queue q, StatefulSet redis"
        );
        assert_eq!(r.action, Action::requeue(WAIT));
        let reasons: Vec<&Value> = (r.extra["components"].as_array().into_iter().flatten())
            .map(|c| &c["reason"])
            .collect();
        assert_eq!(
            reasons,
            [
                &json!("WaitingForCluster"),
                &json!("WaitingForCluster"),
                &json!("StatefulSetNotReady")
            ]
        );
    }
}
