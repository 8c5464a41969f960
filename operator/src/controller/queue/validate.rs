//! `validate` of a `Queue` (pure): the broker plan of its spec (declarations and
//! permissions), or why there is none, and the names its reconcile works with.

use kube::{Resource, ResourceExt};

use super::super::InvalidSpec;
use super::build::{plan, second_user, secret_name};
use crate::crd::Queue;
use crate::external::QueuePlan;

/// What the rest of the pipeline reads of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The resource's uid, its tag on the broker.
    pub uid: String,
    /// The blue/green user pair: the user and `<user>-b`.
    pub pair: (String, String),
    /// The Secret with the `uri`.
    pub secret: String,
    /// The broker plan with nothing to change yet.
    pub plan: QueuePlan,
}

/// The input of `q`'s reconcile, or why its spec cannot be declared.
pub fn validate(q: &Queue) -> Result<Input, InvalidSpec> {
    Ok(Input {
        uid: q.meta().uid.clone().unwrap_or_default(),
        pair: (q.spec.user.clone(), second_user(&q.spec.user)),
        secret: secret_name(&q.name_any()),
        plan: plan(q).map_err(|e| InvalidSpec(e.to_string()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_valid_spec_gives_the_plan_and_a_bad_delay_is_refused() {
        let spec = |delays: &[&str]| {
            json!({"brokerRef": {"name": "rmq"}, "user": "pay", "publishes": true,
                "queue": "pay.events", "bindings": ["auth.user.*"], "retryDelays": delays})
        };
        let q: Queue = crate::fixtures::stored("pay-events", spec(&["1s"]));
        let input = validate(&q).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(input.pair, ("pay".into(), "pay-b".into()));
        assert_eq!(input.secret, "pay-events-amqp");
        assert_eq!(input.plan.uid, "uid-pay-events");
        assert_eq!(input.plan.users, ["pay", "pay-b"]);
        assert!(input.plan.user_changes.is_empty());
        let q: Queue = crate::fixtures::stored("pay-events", spec(&["soon"]));
        assert_eq!(
            validate(&q).map(|_| ()),
            Err(InvalidSpec(
                "retryDelays: \"soon\" is not a duration like 1s".into()
            ))
        );
    }
}
