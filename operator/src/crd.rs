//! The custom resources of `payplane.dev/v1alpha1`, one module per kind, and the types they
//! share (conditions, secret references, storage). Pure data, no I/O.

pub mod app_service;
pub mod database;
pub mod ingress_cert;
pub mod message_broker;
pub mod platform;
pub mod postgres_cluster;
pub mod queue;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use app_service::{AppService, AppServiceSpec, AppServiceStatus};
pub use database::{Database, DatabaseSpec, DatabaseStatus};
pub use ingress_cert::{IngressCert, IngressCertSpec, IngressCertStatus};
pub use message_broker::{MessageBroker, MessageBrokerSpec, MessageBrokerStatus};
pub use platform::{Platform, PlatformSpec, PlatformStatus};
pub use postgres_cluster::{PostgresCluster, PostgresClusterSpec, PostgresClusterStatus};
pub use queue::{Queue, QueueSpec, QueueStatus};

/// The API group of every payplane kind.
pub const GROUP: &str = "payplane.dev";

/// One observation about a resource, as in `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Kind of condition: `Ready`, `Progressing` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason for the last transition (`WaitingForDatabase`, `MigrationFailed`).
    pub reason: String,
    /// Human-readable detail, naming the blocking object when there is one.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` this condition was computed from.
    pub observed_generation: i64,
}

/// A key inside a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key inside the Secret's data.
    pub key: String,
}

/// A reference to another object of the implied kind in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
pub struct LocalRef {
    /// Name of the referenced object.
    pub name: String,
}

/// Persistent storage of a built-in server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Requested size of the volume (a Kubernetes quantity such as `1Gi`).
    #[schemars(extend("pattern" = "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub size: String,
    /// StorageClass of the volume claim; the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// Whether a server runs inside the cluster (built in) or is provided from outside.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum Provider {
    /// A StatefulSet managed by the operator.
    #[default]
    Builtin,
    /// An existing server outside the cluster.
    External,
}

/// What happens to external data (databases, roles, queues, users) when the resource is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum ReclaimPolicy {
    /// Keep the data; an Event says so.
    #[default]
    Retain,
    /// Drop the data with the resource.
    Delete,
}

/// Common view of every payplane kind's status, for the shared reconcile machinery.
pub trait HasConditions {
    /// The conditions currently recorded in `.status`.
    fn conditions(&self) -> &[Condition];
    /// `.status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
}

/// The status of a kind that keeps logins on a server (`Database`, `Queue`), for the shared
/// credentials reports.
pub trait RecordsLogins {
    /// `.status.secretName` and `.status.credentials`.
    fn recorded(&self) -> (Option<String>, Option<database::Credentials>);
}

/// Implements [`HasConditions`] for a kind whose status has `conditions` and `observedGeneration`
/// and, with `logins`, [`RecordsLogins`] for one whose status also has `secretName` and
/// `credentials`. A macro because the status types differ and a generic cannot name their
/// fields.
macro_rules! impl_has_conditions {
    ($kind:ty, logins) => {
        $crate::crd::impl_has_conditions!($kind);
        impl $crate::crd::RecordsLogins for $kind {
            fn recorded(&self) -> (Option<String>, Option<$crate::crd::database::Credentials>) {
                let status = self.status.clone().unwrap_or_default();
                (status.secret_name, status.credentials)
            }
        }
    };
    ($kind:ty) => {
        impl $crate::crd::HasConditions for $kind {
            fn conditions(&self) -> &[$crate::crd::Condition] {
                self.status
                    .as_ref()
                    .map_or(&[], |s| s.conditions.as_slice())
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
        }
    };
}
pub(crate) use impl_has_conditions;

/// Declares the spec of a payplane kind (`$spec`, derived as a `CustomResource` with
/// camelCase fields) under the `#[kube]` attributes every kind shares: group `payplane.dev`,
/// version `v1alpha1`, namespaced, its `kind`, `status`, `shortname` and `doc`, and the
/// printer columns `Ready`, `Reason`, the kind's own `column`, `Message` and `Age`.
///
/// A macro because derive attributes are read as written: `#[kube(...)]` cannot name a
/// constant or take a value from a function, so the shared part can only be shared by
/// writing the attribute out.
macro_rules! kind {
    (
        kind: $kind:tt,
        status: $status:tt,
        shortname: $short:tt,
        doc: $doc:tt,
        column: $column:tt,
        $(#[$attr:meta])*
        pub struct $spec:ident $fields:tt
    ) => {
        #[derive(
            ::kube::CustomResource,
            ::serde::Serialize,
            ::serde::Deserialize,
            Clone,
            Debug,
            PartialEq,
            ::schemars::JsonSchema
        )]
        #[kube(
            group = "payplane.dev",
            version = "v1alpha1",
            kind = $kind,
            namespaced,
            status = $status,
            shortname = $short,
            doc = $doc,
            printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
            printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
            printcolumn = $column,
            printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message","priority":1}"#,
            printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
        )]
        #[serde(rename_all = "camelCase")]
        $(#[$attr])*
        pub struct $spec $fields
    };
}
pub(crate) use kind;

/// Declares the status of a payplane kind: `observedGeneration` and `conditions` (documented
/// by the doc comment before `conditions`, which differs per kind), then the kind's own
/// fields. A macro because the shared fields must stay fields of each status (a flattened
/// struct would share one description of the conditions, and the CRDs would change).
macro_rules! status {
    (
        $(#[$attr:meta])*
        pub struct $status:ident {
            $(#[$conditions:meta])*
            conditions,
            $($fields:tt)*
        }
    ) => {
        $(#[$attr])*
        #[derive(
            ::serde::Serialize,
            ::serde::Deserialize,
            Clone,
            Debug,
            PartialEq,
            Eq,
            ::schemars::JsonSchema,
            Default
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $status {
            /// The `metadata.generation` the status describes.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub observed_generation: Option<i64>,
            $(#[$conditions])*
            #[serde(default)]
            #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
            pub conditions: Vec<$crate::crd::Condition>,
            $($fields)*
        }
    };
}
pub(crate) use status;

/// Every CRD of the operator, in a stable order (for `crd` output and the drift test).
pub fn all()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    let mut crds = vec![
        AppService::crd(),
        Database::crd(),
        IngressCert::crd(),
        MessageBroker::crd(),
        Platform::crd(),
        PostgresCluster::crd(),
        Queue::crd(),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                allow_null_in_nullable_enums(schema);
            }
        }
    }
    crds
}

/// Turns the `enum` of every `nullable` property into an equivalent CEL rule, so that an
/// explicit `null` ("use the default", as a user or a Helm value writes it) is accepted.
///
/// schemars marks an `Option` field `nullable: true`, but kube-apiserver (v1.36) checks an
/// explicit `null` against the `enum` and refuses it (`Unsupported value: null: supported
/// values: "1", "3"`) — even with `null` added to the list; without `nullable`, server-side
/// apply refuses it as the wrong type. CEL rules are not run on a `null` value, so
/// `self in [1, 3]` keeps the check for every other value, with a message naming the values.
fn allow_null_in_nullable_enums(
    schema: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
    };
    if schema.nullable == Some(true)
        && let Some(values) = schema.enum_.take()
    {
        let list = values
            .iter()
            .map(|v| v.0.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        schema
            .x_kubernetes_validations
            .get_or_insert_with(Vec::new)
            .push(ValidationRule {
                rule: format!("self in [{list}]"),
                message: Some(format!("must be one of {list}")),
                ..ValidationRule::default()
            });
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        allow_null_in_nullable_enums(child);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => allow_null_in_nullable_enums(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => {
            items.iter_mut().for_each(allow_null_in_nullable_enums);
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        allow_null_in_nullable_enums(extra);
    }
    for group in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of]
        .into_iter()
        .flatten()
    {
        group.iter_mut().for_each(allow_null_in_nullable_enums);
    }
}

/// The file name and YAML of each CRD, as committed under `crds/`.
pub fn render_all() -> Result<Vec<(String, String)>, serde_saphyr::SerializeError> {
    all()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            serde_saphyr::to_string(&crd).map(|y| (name, y))
        })
        .collect()
}
