//! `status` of a `Queue` (pure): the conditions of what its reconcile found, with the Secret
//! name and the credentials record beside them.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::runtime::controller::Action;

use super::super::credentials::{self, KeepsLogins, Reasons, Rotation};
use super::super::{InvalidSpec, Report, WAIT};
use super::validate::Input;
use crate::conditions::{Observed, external_conditions};
use crate::crd::Queue;
use crate::external::rabbitmq::ArgumentChange;

impl KeepsLogins for Queue {
    const REASONS: Reasons = ("BrokerNotFound", "WaitingForBroker", "BrokerUnavailable");
}

/// The spec cannot be declared.
pub fn invalid_spec(q: &Queue, e: &InvalidSpec) -> Report {
    Report::invalid("InvalidSpec", e.to_string()).with_extra(credentials::fields(q, None, None))
}

/// The topology is declared and the Secret holds the active user.
pub fn ready(q: &Queue, input: &Input, rotation: &Rotation, resync: Duration) -> Report {
    let active = &rotation.creds.active;
    let message = q.spec.queue.as_deref().map_or_else(
        || format!("user {active}"),
        |queue| format!("queue {queue} for user {active}"),
    );
    credentials::ready((q, &input.secret), message, rotation, resync)
}

/// The end of a reconcile: [`ready`], unless existing queues have other arguments than the
/// spec asks for (`changed`): then `Degraded`, with the way to recreate them.
pub fn settled(
    q: &Queue,
    input: &Input,
    rotation: &Rotation,
    changed: &[ArgumentChange],
    resync: Duration,
) -> Report {
    if changed.is_empty() {
        return ready(q, input, rotation, resync);
    }
    let observed = Observed::ArgumentsChanged(arguments_message(&q.spec.vhost, changed));
    let fields = credentials::fields(q, Some(&input.secret), Some(&rotation.creds));
    Report::new(
        external_conditions(&observed),
        fields,
        Action::requeue(resync.min(WAIT)),
    )
}

/// The note of the Event of a finished rotation.
pub fn rotated(rotation: &Rotation) -> Option<String> {
    let active = &rotation.creds.active;
    (rotation.finished.as_ref()).map(|old| format!("user {old} deleted; the Secret holds {active}"))
}

/// The condition message for queues whose arguments changed, with the recreate path.
pub fn arguments_message(vhost: &str, changes: &[ArgumentChange]) -> String {
    let what: Vec<String> = changes.iter().map(ToString::to_string).collect();
    let queues: BTreeSet<&str> = changes.iter().map(|c| c.queue.as_str()).collect();
    format!(
        "{}; RabbitMQ cannot change the arguments of an existing queue (PRECONDITION_FAILED). \
         To recreate: stop its consumers, drain it, delete it on the broker (rabbitmqadmin \
         --vhost={vhost} delete queue name=<queue>) for {}; the operator declares it with \
         the new arguments at its next reconcile",
        what.join("; "),
        queues.into_iter().collect::<Vec<_>>().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::database::Credentials;
    use serde_json::json;

    fn queue() -> Queue {
        let spec = json!({"brokerRef": {"name": "rmq"}, "user": "pay", "queue": "pay.events"});
        let mut q: Queue = crate::fixtures::stored("pay-events", spec);
        q.status = serde_json::from_value(json!({"secretName": "old-amqp"})).ok();
        q
    }

    fn rotation(rotating: Option<&str>) -> Rotation {
        Rotation {
            creds: Credentials {
                active: "pay-b".into(),
                ..Credentials::default()
            },
            password: "pw".into(),
            changes: Vec::new(),
            rotating: rotating.map(Into::into),
            started: false,
            finished: Some("pay".into()),
        }
    }

    #[test]
    fn reports_before_the_broker_keep_the_previous_fields() {
        let (q, bad) = (queue(), InvalidSpec("retryDelays: x".into()));
        let invalid = (
            invalid_spec(&q, &bad),
            "InvalidSpec",
            Action::await_change(),
        );
        let reasons = ("BrokerNotFound", "WaitingForBroker", "BrokerUnavailable");
        assert_eq!(Queue::REASONS, reasons);
        let kept = json!({"secretName": "old-amqp"});
        credentials::check_reports_before_the_server(&q, [invalid], &kept);
    }

    #[test]
    fn settled_is_ready_unless_arguments_changed() {
        let (q, resync) = (queue(), Duration::from_secs(300));
        let input = super::super::validate::validate(&q).unwrap_or_else(|e| panic!("{e}"));
        let r = settled(&q, &input, &rotation(None), &[], resync);
        assert!(r.cond("Ready").status);
        assert_eq!(r.cond("Ready").message, "queue pay.events for user pay-b");
        assert_eq!(r.extra["secretName"], "pay-events-amqp");
        assert_eq!(r.action, Action::requeue(resync));
        let r = settled(&q, &input, &rotation(Some("waiting for pay")), &[], resync);
        assert_eq!(r.cond("Progressing").reason, "RotatingCredentials");
        assert_eq!(r.action, Action::requeue(credentials::ROTATION_POLL));
        let changed = [ArgumentChange {
            queue: "pay.events".into(),
            key: "x-queue-type".into(),
            broker: Some(json!("classic")),
            wanted: Some(json!("quorum")),
        }];
        let r = settled(&q, &input, &rotation(None), &changed, resync);
        assert_eq!(r.cond("Ready").reason, "QueueArgumentsChanged");
        assert!(r.cond("Degraded").status);
        assert!(r.cond("Ready").message.contains("--vhost=/ delete queue"));
        assert_eq!(r.action, Action::requeue(WAIT));
        assert_eq!(
            rotated(&rotation(None)).as_deref(),
            Some("user pay deleted; the Secret holds pay-b")
        );
    }
}
