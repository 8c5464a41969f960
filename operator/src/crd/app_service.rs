//! The `AppService` kind: one payplane axum service and what it is wired to. Pure data, no I/O.

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

super::kind! {
    kind: "AppService",
    status: "AppServiceStatus",
    shortname: "app",
    doc: "AppService is one payplane HTTP service: the operator makes its ServiceAccount, ConfigMap, Deployment, Service, migration Job, PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy, and wires its database, queues, cache and secrets into the environment.",
    column: r#"{"name":"Image","type":"string","jsonPath":".status.image","priority":1}"#,
    /// One payplane service: its Deployment, Service, migration Job and the wiring of its
    /// database, queues, cache and secrets.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.autoscaling) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
         "message": "autoscaling.minReplicas must not exceed autoscaling.maxReplicas"},
        {"rule": "!has(self.reloads) || self.reloads.all(r, r != '')", "message": "reloads entries must be secret names"}
    ]))]
    pub struct AppServiceSpec {
        /// Container image of the service, e.g. `ghcr.io/payplane/payments:0.1.0`.
        #[schemars(length(min = 1))]
        pub image: String,
        /// Arguments passed to the image's entrypoint (`["serve"]`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub args: Vec<String>,
        /// Container port the service listens on; `LISTEN_ADDR` is set to `0.0.0.0:<port>` and the
        /// Service exposes it as port 80.
        #[serde(default = "default_port")]
        #[schemars(range(min = 1, max = 65535))]
        pub port: i32,
        /// Number of pods when autoscaling is not set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0))]
        pub replicas: Option<i32>,
        /// Migration run as a Job with the new image before each rollout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub migration: Option<Migration>,
        /// The `Database` whose connection Secret becomes `DATABASE_URL`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub database: Option<ObjectRef>,
        /// The `Queue`s of this service; the first one's Secret becomes `AMQP_URL`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub queues: Vec<ObjectRef>,
        /// The cache connection, becoming `REDIS_URL`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cache: Option<CacheRef>,
        /// Secrets mounted as files (JWT keys, TLS).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub files: Vec<SecretFile>,
        /// Extra environment variables; `valueFrom.secretKeyRef` secrets are waited for and
        /// included in the rollout checksum.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub env: Vec<EnvVar>,
        /// CPU and memory requests and limits of the service container.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourceRequirements>,
        /// Horizontal autoscaling on CPU; replaces `replicas` when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub autoscaling: Option<Autoscaling>,
        /// HTTP paths of the probes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub probes: Option<Probes>,
        /// Names of Secrets the service re-reads itself: a change to them does not roll the pods.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub reloads: Vec<String>,
        /// Sources the NetworkPolicy lets reach the port; any source when absent, none when empty.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allow_from: Option<Vec<NetworkPolicyPeer>>,
    }
}

fn default_port() -> i32 {
    8080
}

/// The migration Job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct Migration {
    /// Arguments of the migration container (same image as the service), e.g. `["migrate"]`.
    #[schemars(length(min = 1))]
    pub args: Vec<String>,
}

/// A reference to a payplane object by name in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ObjectRef {
    /// Name of the referenced object.
    #[serde(rename = "ref")]
    #[schemars(length(min = 1))]
    pub ref_: String,
}

/// Where the cache URL comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheRef {
    /// Secret key holding the `redis://` URL.
    pub url_secret_ref: SecretKeyRef,
}

/// A Secret mounted as files.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretFile {
    /// Name of the Secret; every key becomes a file.
    pub secret_name: String,
    /// Directory in the container where the files appear.
    #[schemars(pattern("^/"))]
    pub mount_path: String,
}

/// CPU-based horizontal autoscaling.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Lower bound of replicas.
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Upper bound of replicas.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Average CPU utilisation the autoscaler aims for, in percent of the request.
    // Spelled as in the HorizontalPodAutoscaler v1 API, which is what users copy; camelCase of
    // the Rust name (`targetCpu...`) was the schema's spelling before and is still read.
    #[serde(
        default = "default_cpu_target",
        rename = "targetCPUUtilizationPercentage",
        alias = "targetCpuUtilizationPercentage"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

fn default_cpu_target() -> i32 {
    70
}

/// HTTP paths of the liveness and readiness probes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
pub struct Probes {
    /// Liveness path; `/health/live` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<String>,
    /// Readiness path; `/health/ready` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<String>,
}

super::status! {
    /// Observed state of an AppService.
    pub struct AppServiceStatus {
        /// `Ready`, `Progressing` and `Degraded`.
        conditions,
        /// The image the Deployment actually runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<String>,
        /// The migration for the desired image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub migration: Option<MigrationStatus>,
        /// Pods passing their readiness probe.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_replicas: Option<i32>,
    }
}

/// Progress of the migration Job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct MigrationStatus {
    /// Image the migration runs.
    pub image: String,
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: MigrationPhase,
}

/// Phase of a migration Job.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MigrationPhase {
    /// Waiting for dependencies.
    Pending,
    /// The Job runs.
    Running,
    /// The Job finished successfully.
    Succeeded,
    /// The Job failed; the old pods keep serving.
    Failed,
}

super::impl_has_conditions!(AppService);
