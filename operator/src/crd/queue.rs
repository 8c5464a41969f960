//! The `Queue` kind: one service's slice of the event topology and its broker user. Pure data,
//! no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{LocalRef, ReclaimPolicy};

super::kind! {
    kind: "Queue",
    status: "QueueStatus",
    shortname: "q",
    doc: "Queue is one service's slice of the event topology (events.md section 1): the shared exchanges, the service's queue with bindings, retry and dead-letter queues, and a least-privilege broker user whose amqp URI the operator writes into a Secret.",
    column: r#"{"name":"Queue","type":"string","jsonPath":".spec.queue","priority":1}"#,
    /// A service's exchanges, queue, bindings, retry and dead-letter queues and its broker user.
    #[derive(Eq)]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.bindings) || size(self.bindings) == 0 || has(self.queue)", "message": "bindings need a queue"},
        {"rule": "has(self.queue) == has(oldSelf.queue)", "message": "queue cannot be added or removed"},
        {"rule": "self.publishes || has(self.queue) || has(self.exclusiveQueuePrefix)", "message": "a Queue must publish, consume or own exclusive queues"}
    ]))]
    pub struct QueueSpec {
        /// The `MessageBroker` to declare on.
        pub broker_ref: LocalRef,
        /// Virtual host; `/` when absent.
        #[serde(default = "default_vhost")]
        pub vhost: String,
        /// Name of the service's own broker user; immutable.
        #[schemars(pattern("^[a-z][a-z0-9_.-]{0,62}$"))]
        #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "user is immutable"}]))]
        pub user: String,
        /// Whether the user may publish to the `events` exchange.
        #[serde(default)]
        pub publishes: bool,
        /// The consuming queue (`payments.events`); immutable. Absent for publish-only services.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern("^[a-z][a-z0-9_.-]{0,200}$"))]
        #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "queue is immutable"}]))]
        pub queue: Option<String>,
        /// Routing keys bound on the `events` exchange (`auth.user.*`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub bindings: Vec<String>,
        /// Delays of the retry queues `<queue>.retry.<n>`, as durations (`1s`).
        #[serde(default = "default_retry_delays")]
        #[schemars(extend("maxItems" = 10))]
        pub retry_delays: Vec<Duration>,
        /// Whether `<queue>.dlq` on `events.dlx` receives dead letters.
        #[serde(default = "default_true")]
        pub dead_letter: bool,
        /// Prefix of per-replica exclusive queues the user may create (`gateway.ws.`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub exclusive_queue_prefix: Option<String>,
        /// `Retain` (default) keeps the user and queues on deletion; `Delete` removes the user and
        /// the queues that are empty.
        #[serde(default)]
        pub reclaim_policy: ReclaimPolicy,
    }
}

/// A duration such as `1s`, `500ms` or `2m`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct Duration(
    /// Duration text.
    #[schemars(pattern("^[0-9]+(ms|s|m|h)$"))]
    pub String,
);

fn default_vhost() -> String {
    "/".into()
}

fn default_true() -> bool {
    true
}

fn default_retry_delays() -> Vec<Duration> {
    ["1s", "2s", "4s"]
        .into_iter()
        .map(|d| Duration(d.into()))
        .collect()
}

super::status! {
    /// Observed state of a Queue.
    pub struct QueueStatus {
        /// `Ready` (and `Degraded` on broker errors).
        conditions,
        /// The Secret with `uri` (the service's `AMQP_URL`), `username` and `password`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret_name: Option<String>,
        /// The user the Secret holds and the state of a credential rotation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub credentials: Option<super::database::Credentials>,
    }
}

super::impl_has_conditions!(Queue, logins);
