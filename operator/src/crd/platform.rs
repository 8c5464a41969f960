//! The `Platform` kind: the whole payments platform in one resource. Pure data, no I/O.

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ingress_cert::{CaIssuer, CertManagerIssuer, GatewayRef, Issuer};
use super::message_broker::{BrokerProvider, ExternalBroker};
use super::postgres_cluster::{ExternalPostgres, PostgresProvider};
use super::{Provider, SecretKeyRef, StorageSpec};

super::kind! {
    kind: "Platform",
    status: "PlatformStatus",
    shortname: "pp",
    doc: "Platform is the whole payplane payments platform: the operator creates the gateway, the auth, payments, admin and profile AppServices and the web console AppService, one PostgresCluster with a Database per service, a MessageBroker with a Queue per service, Redis, an IngressCert and the Ingress to the gateway, and aggregates their status.",
    column: r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    /// The payments platform: gateway, four services, their databases, the broker with the event
    /// topology, Redis and a TLS ingress.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.postgres) || self.postgres.provider != 'external' || has(self.postgres.external)", "message": "postgres.provider external needs postgres.external"},
        {"rule": "!has(self.broker) || self.broker.provider != 'external' || has(self.broker.external)", "message": "broker.provider external needs broker.external"},
        {"rule": "!has(self.cache) || self.cache.provider != 'external' || has(self.cache.external)", "message": "cache.provider external needs cache.external"},
        {"rule": "!has(self.tls) || self.tls.issuer != 'ca' || has(self.tls.ca)", "message": "tls.issuer ca needs tls.ca"},
        {"rule": "!has(self.tls) || self.tls.issuer != 'certManager' || has(self.tls.certManager)", "message": "tls.issuer certManager needs tls.certManager"},
        {"rule": "!has(self.psp) || self.psp.mode != 'external' || has(self.psp.webhookSecretsRef)", "message": "psp.mode external needs psp.webhookSecretsRef"},
        {"rule": "!(has(self.httpRoute) && has(self.ingressClassName))", "message": "httpRoute replaces the Ingress: drop ingressClassName"}
    ]))]
    pub struct PlatformSpec {
        /// Tag of every payplane image.
        #[schemars(length(min = 1))]
        pub version: String,
        /// Registry path of the images: `<imageRepository>/<component>:<version>`.
        #[serde(default = "default_repository")]
        pub image_repository: String,
        /// `dev` or `prod`: defaults for replicas, resources, storage and broker nodes.
        #[serde(default)]
        pub profile: Profile,
        /// Public host name of the gateway.
        #[schemars(pattern("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"))]
        pub domain: String,
        /// TLS of the public host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tls: Option<PlatformTls>,
        /// IngressClass of the public Ingress; the cluster default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ingress_class_name: Option<String>,
        /// Serve the public host through a Gateway API `HTTPRoute` attached to a Gateway you run,
        /// instead of an Ingress.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http_route: Option<PlatformHttpRoute>,
        /// The PostgreSQL server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub postgres: Option<PlatformPostgres>,
        /// The RabbitMQ broker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub broker: Option<PlatformBroker>,
        /// The Redis cache.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cache: Option<PlatformCache>,
        /// Per-component overrides.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub components: Option<Components>,
        /// Trusted proxies, metrics access and who may reach what (operator README, "Security").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub network: Option<PlatformNetwork>,
        /// The payment service provider; the `prod` profile needs `mode: external`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub psp: Option<PlatformPsp>,
    }
}

fn default_repository() -> String {
    "ghcr.io/payplane".into()
}

/// Size profile.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum Profile {
    /// One replica each, small requests, 1Gi volumes, one broker node.
    #[default]
    Dev,
    /// Two replicas with autoscaling, larger requests, three broker nodes.
    Prod,
}

/// TLS of the public host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlatformTls {
    /// `selfSigned`, `ca` or `certManager` (see IngressCert).
    #[serde(default)]
    pub issuer: Issuer,
    /// CA Secret for `issuer: ca`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaIssuer>,
    /// cert-manager issuer for `issuer: certManager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_manager: Option<CertManagerIssuer>,
}

/// The public host through the Gateway API.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformHttpRoute {
    /// The Gateway (and listener) the `HTTPRoute` attaches to; its HTTPS listener serves the
    /// `<platform>-tls` Secret (see the IngressCert's `status.listenerCertificateRef`).
    pub parent_ref: GatewayRef,
}

/// The platform's PostgreSQL server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlatformPostgres {
    /// `builtin`, `external` or `cloudnative-pg`.
    #[serde(default)]
    pub provider: PostgresProvider,
    /// Volume of the built-in server (of each instance for `cloudnative-pg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Instances of a `cloudnative-pg` cluster; 1 for `dev`, 3 for `prod` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub instances: Option<i32>,
    /// The external server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalPostgres>,
}

/// The platform's RabbitMQ broker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlatformBroker {
    /// `builtin`, `external` or `rabbitmq-cluster-operator`.
    #[serde(default)]
    pub provider: BrokerProvider,
    /// Nodes of the built-in or `rabbitmq-cluster-operator` broker (1 or 3); 1 for `dev`, 3
    /// for `prod` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [1, 3]))]
    pub replicas: Option<i32>,
    /// The external broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalBroker>,
}

/// The platform's Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlatformCache {
    /// `builtin` (a single-replica StatefulSet without persistence) or `external`.
    #[serde(default)]
    pub provider: Provider,
    /// The external Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalCache>,
}

/// An existing Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalCache {
    /// Secret key holding the `redis://` URL.
    pub url_secret_ref: SecretKeyRef,
}

/// Per-component overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct Components {
    /// The gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<ComponentOverride>,
    /// The auth service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ComponentOverride>,
    /// The payments service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payments: Option<ComponentOverride>,
    /// The admin service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<ComponentOverride>,
    /// The profile service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ComponentOverride>,
}

/// Overrides of one component.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentOverride {
    /// Replicas instead of the profile's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Full image reference instead of `<imageRepository>/<component>:<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Requests and limits instead of the profile's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

super::status! {
    /// Observed state of a Platform.
    pub struct PlatformStatus {
        /// `Ready` (all components ready) and `Progressing`.
        conditions,
        /// Public URL of the gateway.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint: Option<String>,
        /// One line per child resource.
        #[serde(default)]
        pub components: Vec<ComponentStatus>,
    }
}

/// Readiness of one child resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ComponentStatus {
    /// Kind of the child.
    pub kind: String,
    /// Name of the child.
    pub name: String,
    /// Whether its `Ready` condition is `True` for its current generation.
    pub ready: bool,
    /// Reason of its `Ready` condition when not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Network trust and reachability of the platform's pods.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlatformNetwork {
    /// CIDRs of the cluster's pod network, where the gateway's pods run: the services and the
    /// console trust `X-Forwarded-For` from these (`TRUSTED_PROXIES`). Default: the private
    /// ranges `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` and `fc00::/7`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
    /// CIDRs of the proxies in front of the gateway (the ingress controller's pods, a load
    /// balancer): the gateway's `TRUSTED_PROXIES`. Default: the pod CIDRs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<String>>,
    /// Clients allowed to read the gateway's `/metrics` (`METRICS_ALLOWED_CIDRS`). Default: the
    /// pod CIDRs (in-cluster Prometheus); internet clients behind the ingress are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_allowed_cidrs: Option<Vec<String>>,
    /// Pods that scrape `/metrics` (Prometheus). Default: pods labelled
    /// `app.kubernetes.io/name: prometheus` in any namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_from: Option<Vec<NetworkPolicyPeer>>,
    /// Sources allowed to reach the gateway (the ingress controller); the gateway is the
    /// public entry point, so any source when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_from: Option<Vec<NetworkPolicyPeer>>,
}

/// The payment service provider of the payments service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlatformPsp {
    /// `simulator` (payments complete by themselves; development only) or `external`.
    #[serde(default)]
    pub mode: PspMode,
    /// Secret key holding the webhook signing secrets (`PSP_WEBHOOK_SECRETS`, one or two,
    /// comma-separated); required with `mode: external`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secrets_ref: Option<SecretKeyRef>,
}

/// `PSP_MODE` of the payments service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum PspMode {
    /// The built-in simulator.
    #[default]
    Simulator,
    /// A real provider, calling the signed webhook.
    External,
}

super::impl_has_conditions!(Platform);
