//! Pure builders for a `Queue`: the broker declarations (names and arguments from
//! `payplane_events::topology`, so they cannot drift from what the services declare), the
//! user's permission regexes (events.md §1.3) and the Secret with the user's `uri`. No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use payplane_events::topology::{
    self, ArgValue, BindingDecl, ConsumerQueue, Declarations, Permissions,
};

use kube::Resource;

use super::super::credentials::Rotation;
use crate::crd::Queue;
use crate::external::rabbitmq::{
    ArgumentChange, BrokerObserved, QueuePlan, UserChange, argument_changes, owner_tag,
    stale_bindings,
};
use crate::meta::{Child, MetaError, Owner, secret_body};

/// A spec that cannot be turned into declarations.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// A retry delay is not `<n>ms|s|m|h`.
    #[error("retryDelays: {0:?} is not a duration like 1s")]
    BadDelay(String),
}

/// Escapes a name for use inside a permission regex.
fn escape(name: &str) -> String {
    name.chars().fold(String::new(), |mut s, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            s.push('\\');
        }
        s.push(c);
        s
    })
}

/// Milliseconds of a duration like `500ms`, `1s`, `2m`, `1h`.
pub fn parse_delay_ms(d: &str) -> Result<i64, PlanError> {
    let err = || PlanError::BadDelay(d.to_owned());
    let (num, mult) = if let Some(n) = d.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = d.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = d.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = d.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        return Err(err());
    };
    num.parse::<i64>().map(|n| n * mult).map_err(|_| err())
}

/// Exchanges, queues and bindings the operator declares for `q`.
pub fn declarations(q: &Queue) -> Result<Declarations, PlanError> {
    let mut decls = if q.spec.publishes || q.spec.exclusive_queue_prefix.is_some() {
        topology::producer_declarations()
    } else {
        Declarations::default()
    };
    if let Some(name) = &q.spec.queue {
        let consumer = ConsumerQueue::custom(name.clone(), q.spec.user.clone(), &[]);
        let mut c = topology::consumer_declarations(&consumer);
        // Retry queues follow the spec's delays (the contract's 1 s, 2 s, 4 s by default).
        let template = c
            .queues
            .iter()
            .find(|d| d.name == consumer.retry_queue(1))
            .cloned();
        c.queues
            .retain(|d| !d.name.starts_with(&format!("{name}.retry.")));
        if let Some(template) = template {
            for (i, delay) in q.spec.retry_delays.iter().enumerate() {
                let mut d = template.clone();
                d.name = consumer.retry_queue(i + 1);
                for (k, v) in &mut d.arguments {
                    if *k == "x-message-ttl" {
                        *v = ArgValue::Int(parse_delay_ms(&delay.0)?);
                    }
                }
                c.queues.insert(c.queues.len() - 1, d);
            }
        }
        if !q.spec.dead_letter {
            let dlq = consumer.dlq();
            c.queues.retain(|d| d.name != dlq);
            c.bindings.retain(|b| b.queue != dlq);
            if let Some(main) = c.queues.first_mut() {
                main.arguments
                    .retain(|(k, _)| !k.starts_with("x-dead-letter") && *k != "x-delivery-limit");
            }
        }
        for key in &q.spec.bindings {
            c.bindings.push(BindingDecl {
                exchange: topology::EVENTS_EXCHANGE,
                queue: name.clone(),
                routing_key: key.clone(),
            });
        }
        decls.merge(c);
    }
    Ok(decls)
}

/// Permission regexes of the Queue's user: exactly its own resources (events.md §1.3).
pub fn permissions(q: &Queue) -> Permissions {
    let mut configure = Vec::new();
    let mut write = Vec::new();
    let mut read = Vec::new();
    if let Some(name) = &q.spec.queue {
        let own = format!("{}.*", escape(name));
        configure.extend(["events".to_owned(), r"events\.dlx".to_owned(), own.clone()]);
        write.extend([
            "events".to_owned(),
            r"events\.dlx".to_owned(),
            r"amq\.default".to_owned(),
            own.clone(),
        ]);
        read.extend(["events".to_owned(), r"events\.dlx".to_owned(), own]);
    } else if q.spec.publishes {
        configure.push("events".to_owned());
        write.push("events".to_owned());
    }
    if let Some(prefix) = &q.spec.exclusive_queue_prefix {
        let own = format!("{}.*", escape(prefix));
        for list in [&mut configure, &mut read] {
            if !list.iter().any(|x| x == "events") {
                list.push("events".to_owned());
            }
            list.push(own.clone());
        }
        if q.spec.publishes && !write.iter().any(|x| x == "events") {
            write.push("events".to_owned());
        }
        write.push(own);
    }
    let rx = |parts: Vec<String>| match parts.len() {
        0 => "^$".to_owned(),
        1 => format!("^{}$", parts[0]),
        _ => format!("^({})$", parts.join("|")),
    };
    Permissions {
        configure: rx(configure),
        write: rx(write),
        read: rx(read),
    }
}

/// The plan of `q` with nothing to change yet: declarations, permissions, both users.
pub fn plan(q: &Queue) -> Result<QueuePlan, PlanError> {
    Ok(QueuePlan {
        vhost: q.spec.vhost.clone(),
        uid: q.meta().uid.clone().unwrap_or_default(),
        users: vec![q.spec.user.clone(), second_user(&q.spec.user)],
        user_changes: Vec::new(),
        declarations: declarations(q)?,
        permissions: permissions(q),
        skip_queues: std::collections::BTreeSet::new(),
        remove_bindings: Vec::new(),
    })
}

/// The plan once the logins are decided: users of the pair without this Queue's tag are
/// adopted, the rotation's changes made, the active and the retiring user given the
/// permissions; queues whose arguments changed on the broker are skipped (returned, to report
/// them) and bindings the spec does not declare removed.
pub fn settle(
    mut plan: QueuePlan,
    observed: &BrokerObserved,
    rotation: &Rotation,
) -> (QueuePlan, Vec<ArgumentChange>) {
    let tag = owner_tag(&plan.uid);
    plan.user_changes = (observed.users.iter())
        .filter(|(_, info)| !info.tags.contains(&tag))
        .map(|(user, _)| UserChange::Adopt { name: user.clone() })
        .collect();
    (plan.user_changes).extend(rotation.changes.iter().cloned().map(UserChange::from));
    plan.users = std::iter::once(rotation.creds.active.clone())
        .chain(rotation.creds.retiring.clone())
        .collect();
    let changes = argument_changes(&plan.declarations, observed);
    plan.skip_queues = changes.iter().map(|c| c.queue.clone()).collect();
    plan.remove_bindings = stale_bindings(&plan.declarations, observed);
    (plan, changes)
}

/// Name of the Secret with the user's `uri`.
pub fn secret_name(q: &str) -> String {
    format!("{q}-amqp")
}

/// `amqp://user:password@host:port/<vhost, percent-encoded>`.
pub fn amqp_uri(user: &str, password: &str, host_port: &str, vhost: &str) -> String {
    format!(
        "amqp://{user}:{password}@{host_port}/{}",
        vhost.replace('%', "%25").replace('/', "%2f")
    )
}

/// The second user of the blue/green pair `<user>`, `<user>-b`.
pub fn second_user(user: &str) -> String {
    format!("{user}-b")
}

/// The Secret of `q` for the user's password and the broker's `host:port`.
pub fn build(q: &Queue, password: &str, host_port: &str) -> Result<Vec<Child>, MetaError> {
    build_for(q, &q.spec.user, password, host_port)
}

/// The Secret of `q` for `user` (after a rotation, `<user>-b`).
pub fn build_for(
    q: &Queue,
    user: &str,
    password: &str,
    host_port: &str,
) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(q)?;
    let data = BTreeMap::from([
        ("username".to_owned(), user.to_owned()),
        ("password".to_owned(), password.to_owned()),
        (
            "uri".to_owned(),
            amqp_uri(user, password, host_port, &q.spec.vhost),
        ),
    ]);
    Ok(vec![owner.child::<Secret>(
        &secret_name(owner.name()),
        &q.spec.user,
        secret_body("Opaque", &data),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::database::Credentials;
    use crate::external::LoginChange;
    use crate::external::rabbitmq::{Binding, UserInfo};
    use serde_json::json;

    #[test]
    fn settle_adopts_rotates_and_leaves_changed_queues_alone() {
        let spec = json!({"brokerRef": {"name": "rmq"}, "user": "pay", "queue": "pay.events",
            "bindings": ["auth.user.*"]});
        let q: Queue = crate::fixtures::stored("pay-events", spec);
        let plan = plan(&q).unwrap_or_else(|e| panic!("{e}"));
        let user = |tags: Vec<String>| UserInfo { tags };
        let observed = BrokerObserved {
            users: BTreeMap::from([
                ("pay".to_owned(), user(vec![])),
                ("pay-b".to_owned(), user(vec![owner_tag("uid-pay-events")])),
            ]),
            queue_arguments: BTreeMap::from([(
                "pay.events".to_owned(),
                serde_json::Map::from_iter([("x-queue-type".to_owned(), json!("classic"))]),
            )]),
            bindings: vec![Binding {
                source: "payplane.events".into(),
                queue: "pay.events".into(),
                routing_key: "old.key".into(),
                properties_key: "old.key".into(),
            }],
        };
        let rotation = Rotation {
            creds: Credentials {
                active: "pay-b".into(),
                retiring: Some("pay".into()),
                ..Credentials::default()
            },
            password: "pw".into(),
            changes: vec![LoginChange::Enable {
                name: "pay-b".into(),
                password: "pw".into(),
            }],
            rotating: None,
            started: true,
            finished: None,
        };
        let (settled, changed) = settle(plan, &observed, &rotation);
        assert_eq!(
            settled.user_changes,
            [
                UserChange::Adopt { name: "pay".into() },
                UserChange::Enable {
                    name: "pay-b".into(),
                    password: "pw".into()
                },
            ]
        );
        assert_eq!(settled.users, ["pay-b", "pay"]);
        assert!(changed.iter().any(|c| c.key == "x-queue-type"));
        assert!(settled.skip_queues.contains("pay.events"));
        assert_eq!(settled.remove_bindings.len(), 1);
        assert_eq!(settled.remove_bindings[0].routing_key, "old.key");
    }
}
