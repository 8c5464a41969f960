//! Provider `rabbitmq-cluster-operator`: the `RabbitmqCluster` (`rabbitmq.com/v1beta1`) a
//! `MessageBroker` stands for, and what its status means for ours. Pure, no I/O.
//!
//! The cluster operator creates the client Service `<name>` (AMQP 5672, management 15672) and
//! the default-user Secret `<name>-default-user` (`username`, `password`, `host`, `port` and
//! `connection_string`, an `amqp://user:password@host:port/` URI) and names both in
//! `status.defaultUser`; the Queue controller administers the broker as that user.

use serde_json::{Value, json};

use super::super::provider::{self, Provider, text};
use crate::crd::MessageBroker;
use crate::crd::message_broker::BrokerProvider;
use crate::meta::{Child, MetaError, Owner};

/// Key of the default-user Secret with the administrator's AMQP URI.
pub const CONNECTION_STRING: &str = "connection_string";
/// Nodes when `spec.rabbitmqClusterOperator.replicas` is absent: a quorum of three.
pub const DEFAULT_REPLICAS: i32 = 3;

/// The provider, for conditions and the kind of its object.
pub const PROVIDER: Provider = Provider {
    name: "rabbitmq-cluster-operator",
    crd: "rabbitmqclusters.rabbitmq.com",
    project: "the RabbitMQ cluster operator",
    kind: (
        "rabbitmq.com",
        "v1beta1",
        "RabbitmqCluster",
        "rabbitmqclusters",
    ),
};

/// The default-user Secret the cluster operator creates (`<cluster>-default-user`).
pub fn default_user_secret(cluster: &str) -> String {
    format!("{cluster}-default-user")
}

/// The RabbitmqCluster of `mb` (none unless its provider is `rabbitmq-cluster-operator`).
pub fn build(mb: &MessageBroker) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(mb)?;
    if mb.spec.provider != BrokerProvider::RabbitmqClusterOperator {
        return Ok(Vec::new());
    }
    let settings = mb
        .spec
        .rabbitmq_cluster_operator
        .clone()
        .unwrap_or_default();
    let storage = provider::storage(settings.storage);
    let mut persistence = json!({"storage": storage.size});
    if let Some(class) = storage.storage_class_name {
        persistence["storageClassName"] = json!(class);
    }
    let replicas = settings.replicas.unwrap_or(DEFAULT_REPLICAS).max(1);
    let spec = json!({"replicas": replicas, "persistence": persistence});
    let pod = ("image", settings.image, settings.resources);
    Ok(provider::child(&owner, (&PROVIDER, "rabbitmq"), spec, pod))
}

/// What a RabbitmqCluster's status says about serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `status.defaultUser.secretReference.name`.
    pub secret: Option<String>,
    /// Every node ready, the last reconcile succeeded, at the current generation, and the
    /// default user is published.
    pub ready: bool,
    /// Why not (or a summary), naming the RabbitmqCluster.
    pub message: String,
    /// `status.defaultUser.serviceReference.name`, else the cluster's name.
    pub service: String,
}

fn condition<'a>(cluster: &'a Value, type_: &str) -> Option<&'a Value> {
    cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
}

/// Reads the stored RabbitmqCluster `cluster` (with its status).
pub fn observe(cluster: &Value) -> Observed {
    let name = text(cluster, "/metadata/name").unwrap_or_default();
    let generation = cluster
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = cluster
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let secret = text(cluster, "/status/defaultUser/secretReference/name");
    let service =
        text(cluster, "/status/defaultUser/serviceReference/name").unwrap_or_else(|| name.clone());
    let blocking = ["AllReplicasReady", "ReconcileSuccess"]
        .into_iter()
        .find_map(|type_| match condition(cluster, type_) {
            Some(c) if c["status"] == "True" => None,
            Some(c) => Some(format!(
                "{type_} is {}{}",
                c["status"].as_str().unwrap_or("Unknown"),
                text(c, "/message")
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )),
            None => Some(format!("{type_} not reported")),
        });
    let problem = if cluster.get("status").is_none_or(Value::is_null) {
        Some("has no status yet (is the RabbitMQ cluster operator running?)".to_owned())
    } else if let Some(b) = blocking {
        Some(b)
    } else if observed.is_some() && observed < generation {
        Some(format!(
            "has not observed generation {} yet",
            generation.unwrap_or_default()
        ))
    } else if secret.is_none() {
        Some("has not published its default user yet".to_owned())
    } else {
        None
    };
    Observed {
        ready: problem.is_none(),
        message: match problem {
            Some(p) => format!("RabbitmqCluster {name} {p}"),
            None => format!("RabbitmqCluster {name}: all replicas ready"),
        },
        secret,
        service,
    }
}

/// Our status fields for a RabbitmqCluster in namespace `ns`.
pub fn status_fields(ns: &str, observed: &Observed) -> Value {
    let host = format!("{}.{ns}.svc", observed.service);
    json!({
        "amqpEndpoint": format!("amqp://{host}:5672"),
        "managementEndpoint": format!("http://{host}:15672"),
        "adminSecretName": observed.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::message_broker::OperatorBroker;

    fn mb(settings: Option<&OperatorBroker>) -> MessageBroker {
        let spec =
            json!({"provider": "rabbitmq-cluster-operator", "rabbitmqClusterOperator": settings});
        crate::fixtures::stored("payplane-rmq", spec)
    }

    #[test]
    fn rabbitmq_cluster_carries_replicas_persistence_and_resources() {
        let settings: OperatorBroker = serde_json::from_value(json!({
            "replicas": 3,
            "image": "rabbitmq:3.13-management",
            "storage": {"size": "10Gi", "storageClassName": "fast"},
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
        }))
        .unwrap();
        let children = build(&mb(Some(&settings))).unwrap();
        let (id, api_version) = ("RabbitmqCluster/payplane-rmq", "rabbitmq.com/v1beta1");
        let spec = provider::only_child(&children, id, api_version, "uid-payplane-rmq");
        insta::assert_yaml_snapshot!(spec, @r#"
        image: "rabbitmq:3.13-management"
        persistence:
          storage: 10Gi
          storageClassName: fast
        replicas: 3
        resources:
          limits:
            memory: 1Gi
          requests:
            cpu: 500m
            memory: 1Gi
        "#);
    }

    #[test]
    fn defaults_are_three_nodes_of_1gi() {
        let mut builtin = mb(None);
        builtin.spec.provider = BrokerProvider::Builtin;
        assert!(build(&builtin).unwrap().is_empty());
        let children = build(&mb(None)).unwrap();
        assert_eq!(children[0].object["spec"]["replicas"], 3);
        assert_eq!(
            children[0].object["spec"]["persistence"],
            json!({"storage": "1Gi"})
        );
    }

    fn stored(generation: i64, status: Value) -> Value {
        let mut cluster = json!({"metadata": {"name": "payplane-rmq", "generation": generation}});
        cluster["status"] = status;
        cluster
    }

    fn healthy(observed: i64) -> Value {
        json!({
            "observedGeneration": observed,
            "conditions": [
                {"type": "AllReplicasReady", "status": "True"},
                {"type": "ClusterAvailable", "status": "True"},
                {"type": "NoWarnings", "status": "True"},
                {"type": "ReconcileSuccess", "status": "True"}
            ],
            "defaultUser": {
                "secretReference": {"name": "payplane-rmq-default-user", "namespace": "payments",
                    "keys": {"username": "username", "password": "password"}},
                "serviceReference": {"name": "payplane-rmq", "namespace": "payments"}
            }
        })
    }

    #[test]
    fn all_replicas_ready_with_a_default_user_is_ready() {
        let o = observe(&stored(2, healthy(2)));
        assert!(o.ready, "{o:?}");
        let fields = status_fields("payments", &o);
        assert_eq!(fields["adminSecretName"], "payplane-rmq-default-user");
        assert_eq!(
            fields["amqpEndpoint"],
            "amqp://payplane-rmq.payments.svc:5672"
        );
        assert_eq!(
            fields["managementEndpoint"],
            "http://payplane-rmq.payments.svc:15672"
        );
    }

    #[test]
    fn not_ready_without_status_replicas_generation_or_user() {
        let none = observe(&stored(1, Value::Null));
        assert!(!none.ready);
        assert!(none.message.contains("no status yet"), "{}", none.message);

        let mut replicas = healthy(1);
        replicas["conditions"][0] =
            json!({"type": "AllReplicasReady", "status": "False", "message": "1/3 pods ready"});
        let o = observe(&stored(1, replicas));
        assert_eq!(
            o.message,
            "RabbitmqCluster payplane-rmq AllReplicasReady is False: 1/3 pods ready"
        );

        let stale = observe(&stored(2, healthy(1)));
        assert!(!stale.ready);
        assert!(stale.message.contains("generation 2"), "{}", stale.message);

        let mut no_user = healthy(1);
        no_user["defaultUser"] = Value::Null;
        let o = observe(&stored(1, no_user));
        assert!(!o.ready);
        assert!(o.message.contains("default user"), "{}", o.message);
    }
}
