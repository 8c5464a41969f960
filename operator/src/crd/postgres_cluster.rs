//! The `PostgresCluster` kind: a PostgreSQL server, built in or external. Pure data, no I/O.

use k8s_openapi::api::core::v1::ResourceRequirements;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{SecretKeyRef, StorageSpec};

super::kind! {
    kind: "PostgresCluster",
    status: "PostgresClusterStatus",
    shortname: "pgc",
    doc: "PostgresCluster is a PostgreSQL server: provider builtin runs a StatefulSet with headless and client Services and a generated superuser Secret; provider external points at an existing server; provider cloudnative-pg creates a CloudNativePG Cluster and reads its status and Secrets.",
    column: r#"{"name":"Provider","type":"string","jsonPath":".spec.provider","priority":1}"#,
    /// A PostgreSQL server that `Database`s live on.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.provider != 'external' || has(self.external)", "message": "provider external needs the external block"},
        {"rule": "self.provider == oldSelf.provider", "message": "provider is immutable"}
    ]))]
    pub struct PostgresClusterSpec {
        /// `builtin` (a StatefulSet), `external` (an existing server) or `cloudnative-pg` (a
        /// CloudNativePG `Cluster`); immutable.
        #[serde(default)]
        pub provider: PostgresProvider,
        /// Settings of the built-in server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub builtin: Option<BuiltinPostgres>,
        /// Connection to an external server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub external: Option<ExternalPostgres>,
        /// Settings of the CloudNativePG `Cluster`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cloudnative_pg: Option<CloudNativePgPostgres>,
    }
}

/// Who runs the PostgreSQL server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum PostgresProvider {
    /// A single-instance StatefulSet managed by the operator (dev and small installs).
    #[default]
    #[serde(rename = "builtin")]
    Builtin,
    /// An existing server outside the cluster.
    #[serde(rename = "external")]
    External,
    /// A CloudNativePG `Cluster` (failover, backups, upgrades by CloudNativePG, which must be
    /// installed).
    #[serde(rename = "cloudnative-pg")]
    CloudNativePg,
}

/// The CloudNativePG `Cluster` (`postgresql.cnpg.io/v1`) of provider `cloudnative-pg`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CloudNativePgPostgres {
    /// PostgreSQL instances: one primary, the rest streaming replicas; 3 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub instances: Option<i32>,
    /// Operand image (`imageName`); CloudNativePG's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// Data volume of each instance; 1Gi in the default StorageClass when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Requests and limits of each instance's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// The built-in PostgreSQL StatefulSet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinPostgres {
    /// Image of the server; `postgres:16` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Data volume; 1Gi in the default StorageClass when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Requests and limits of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// An existing PostgreSQL server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExternalPostgres {
    /// Host name or address.
    #[schemars(length(min = 1))]
    pub host: String,
    /// TCP port.
    #[serde(default = "default_pg_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// libpq `sslmode` used by the operator and written into connection URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["disable", "prefer", "require", "verify-ca", "verify-full"]))]
    pub ssl_mode: Option<String>,
    /// Secret key with the superuser's password.
    pub superuser_secret_ref: SecretKeyRef,
    /// Superuser name; `postgres` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

fn default_pg_port() -> i32 {
    5432
}

/// Where clients reach the server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
pub struct Endpoint {
    /// Host name.
    pub host: String,
    /// TCP port.
    pub port: i32,
}

super::status! {
    /// Observed state of a PostgresCluster.
    pub struct PostgresClusterStatus {
        /// `Ready` and `Progressing`.
        conditions,
        /// Read-write endpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint: Option<Endpoint>,
        /// Secret holding the superuser password (key in `superuserSecretKey`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub superuser_secret_name: Option<String>,
        /// Key of the password inside `superuserSecretName`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub superuser_secret_key: Option<String>,
        /// Superuser name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub superuser: Option<String>,
        /// libpq `sslmode` for connections to this server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ssl_mode: Option<String>,
        /// Instances the provider runs (`cloudnative-pg`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub instances: Option<i32>,
        /// Instances ready (`cloudnative-pg`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_instances: Option<i32>,
        /// Pod of the current primary (`cloudnative-pg`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub current_primary: Option<String>,
    }
}

super::impl_has_conditions!(PostgresCluster);
