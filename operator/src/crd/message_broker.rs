//! The `MessageBroker` kind: a RabbitMQ server, built in or external. Pure data, no I/O.

use k8s_openapi::api::core::v1::ResourceRequirements;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{SecretKeyRef, StorageSpec};

super::kind! {
    kind: "MessageBroker",
    status: "MessageBrokerStatus",
    shortname: "mb",
    doc: "MessageBroker is a RabbitMQ server: provider builtin runs a StatefulSet (1 or 3 nodes, Kubernetes peer discovery, quorum queues) with Services, admin and Erlang-cookie Secrets; provider external points at an existing broker; provider rabbitmq-cluster-operator creates a RabbitmqCluster and uses its default-user Secret.",
    column: r#"{"name":"Provider","type":"string","jsonPath":".spec.provider","priority":1}"#,
    /// A RabbitMQ server that `Queue`s are declared on.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.provider != 'external' || has(self.external)", "message": "provider external needs the external block"},
        {"rule": "self.provider == oldSelf.provider", "message": "provider is immutable"}
    ]))]
    pub struct MessageBrokerSpec {
        /// `builtin` (a StatefulSet), `external` (an existing broker) or
        /// `rabbitmq-cluster-operator` (a `RabbitmqCluster`); immutable.
        #[serde(default)]
        pub provider: BrokerProvider,
        /// Settings of the built-in broker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub builtin: Option<BuiltinBroker>,
        /// Connection to an external broker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub external: Option<ExternalBroker>,
        /// Settings of the `RabbitmqCluster`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rabbitmq_cluster_operator: Option<OperatorBroker>,
    }
}

/// Who runs the RabbitMQ broker.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum BrokerProvider {
    /// A StatefulSet managed by the operator.
    #[default]
    #[serde(rename = "builtin")]
    Builtin,
    /// An existing broker outside the cluster.
    #[serde(rename = "external")]
    External,
    /// A `RabbitmqCluster` (`rabbitmq.com/v1beta1`) run by the RabbitMQ cluster operator, which
    /// must be installed.
    #[serde(rename = "rabbitmq-cluster-operator")]
    RabbitmqClusterOperator,
}

/// The `RabbitmqCluster` of provider `rabbitmq-cluster-operator`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct OperatorBroker {
    /// Nodes; 3 when absent. An odd number keeps a majority for quorum queues through the
    /// loss of a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<i32>,
    /// Broker image; the cluster operator's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Data volume of each node; 1Gi when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Requests and limits of each node's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// The built-in RabbitMQ StatefulSet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinBroker {
    /// Image of the broker (with the management plugin); `rabbitmq:3.13-management` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Number of nodes: 1, or 3 for a quorum cluster.
    #[serde(default = "default_replicas")]
    #[schemars(extend("enum" = [1, 3]))]
    pub replicas: i32,
    /// Data volume of each node; 1Gi when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Requests and limits of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_replicas() -> i32 {
    1
}

/// An existing RabbitMQ broker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExternalBroker {
    /// Secret key with an administrator's `amqp://user:password@host:port/` URI.
    pub amqp_url_secret_ref: SecretKeyRef,
    /// Base URL of the management HTTP API, e.g. `https://rmq.internal:15671`.
    #[schemars(pattern("^https?://"))]
    pub management_url: String,
}

super::status! {
    /// Observed state of a MessageBroker.
    pub struct MessageBrokerStatus {
        /// `Ready` and `Progressing`.
        conditions,
        /// `amqp://host:port` of the broker (no credentials).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub amqp_endpoint: Option<String>,
        /// Base URL of the management API.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub management_endpoint: Option<String>,
        /// Secret with the administrator's `username`, `password` and `uri` (for
        /// `rabbitmq-cluster-operator`: its default-user Secret, `connection_string` in place of
        /// `uri`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub admin_secret_name: Option<String>,
    }
}

super::impl_has_conditions!(MessageBroker);
