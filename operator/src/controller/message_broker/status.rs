//! `status` of a `MessageBroker` (pure): ready or waiting, with the endpoints and the
//! administrator Secret the Queues connect with.

use kube::api::DynamicObject;
use serde_json::json;

use super::super::provider::NOT_READY;
use super::super::{RESYNC, Report};
use super::{amqp_host_port, build, rabbitmq_operator};
use crate::crd::message_broker::ExternalBroker;

/// An external broker: ready once its Secret holds an administrator URI (`uri`).
pub fn external(ext: &ExternalBroker, uri: Option<&str>) -> Report {
    let r = &ext.amqp_url_secret_ref;
    let Some(uri) = uri else {
        let why = format!("Secret {} with key {} not found", r.name, r.key);
        return Report::waiting("WaitingForSecret", why, json!({}));
    };
    let Some((_, _, host_port)) = amqp_host_port(uri) else {
        let why = format!(
            "Secret {} key {} is not an amqp://user:password@host URI",
            r.name, r.key
        );
        return Report::invalid("InvalidSecret", why);
    };
    let extra = json!({
        "amqpEndpoint": format!("amqp://{host_port}"),
        "managementEndpoint": ext.management_url,
        "adminSecretName": r.name,
    });
    Report::ready(&format!("external broker {host_port}"), extra, RESYNC)
}

/// The built-in broker `name` in `ns`: ready once its StatefulSet is.
pub fn builtin(name: &str, ns: &str, applied: &[DynamicObject]) -> Report {
    let extra = json!({
        "amqpEndpoint": format!("amqp://{name}.{ns}.svc:5672"),
        "managementEndpoint": format!("http://{name}.{ns}.svc:15672"),
        "adminSecretName": build::admin_secret(name),
    });
    Report::statefulset(applied, name, "broker running", extra)
}

/// A RabbitmqCluster: ready once every node is and its default-user Secret has a usable
/// connection string (`usable`).
pub fn rabbitmq_operator(ns: &str, observed: rabbitmq_operator::Observed, usable: bool) -> Report {
    let extra = rabbitmq_operator::status_fields(ns, &observed);
    let Some(secret) = observed.secret.as_deref().filter(|_| observed.ready) else {
        return Report::waiting(NOT_READY, observed.message, extra);
    };
    if !usable {
        let key = rabbitmq_operator::CONNECTION_STRING;
        let why = format!("default-user Secret {secret} has no usable {key} yet");
        return Report::waiting("WaitingForSecret", why, extra);
    }
    Report::ready(&observed.message, extra, RESYNC)
}

#[cfg(test)]
mod tests {
    use super::super::super::WAIT;
    use super::*;
    use kube::runtime::controller::Action;

    #[test]
    fn external_needs_a_usable_uri() {
        let ext: ExternalBroker = serde_json::from_value(json!({
            "amqpUrlSecretRef": {"name": "admin", "key": "uri"}, "managementUrl": "https://rmq:15671",
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let r = external(&ext, Some("amqp://a:b@rmq.example/"));
        assert_eq!(
            r.readiness(),
            (true, "Ready", "external broker rmq.example:5672")
        );
        assert_eq!(r.extra["amqpEndpoint"], "amqp://rmq.example:5672");
        assert_eq!(r.action, Action::requeue(RESYNC));
        let r = external(&ext, None);
        assert_eq!(
            r.readiness(),
            (
                false,
                "WaitingForSecret",
                "Secret admin with key uri not found"
            )
        );
        assert_eq!(r.action, Action::requeue(WAIT));
        let r = external(&ext, Some("http://rmq"));
        assert_eq!(r.readiness().1, "InvalidSecret");
        assert_eq!(r.action, Action::await_change());
    }

    #[test]
    fn builtin_waits_for_its_statefulset() {
        let r = builtin("rmq", "payments", &[]);
        assert_eq!(
            r.readiness(),
            (false, "StatefulSetNotReady", "StatefulSet rmq is not ready")
        );
        assert_eq!(r.extra["adminSecretName"], "rmq-admin");
        assert_eq!(
            r.extra["managementEndpoint"],
            "http://rmq.payments.svc:15672"
        );
    }

    #[test]
    fn the_operator_broker_needs_nodes_then_the_secret() {
        let cluster = json!({"metadata": {"name": "rmq", "generation": 1}, "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "AllReplicasReady", "status": "True"},
                {"type": "ReconcileSuccess", "status": "True"}],
            "defaultUser": {"secretReference": {"name": "rmq-default-user"}}}});
        let observed = || rabbitmq_operator::observe(&cluster);
        assert!(rabbitmq_operator("ns", observed(), true).readiness().0);
        let r = rabbitmq_operator("ns", observed(), false);
        assert_eq!(r.readiness().1, "WaitingForSecret");
        let r = rabbitmq_operator("ns", rabbitmq_operator::observe(&json!({})), true);
        assert_eq!(r.readiness().1, NOT_READY);
    }
}
