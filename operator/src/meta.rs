//! Names, labels and owner references shared by every builder, and the [`Child`] type a
//! builder returns. Pure, no I/O.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::core::ApiResource;
use serde::Serialize;
use serde_json::Value;

/// The one field manager of every server-side apply.
pub const MANAGER: &str = "payplane-operator";
/// Label on every child naming its controller owner's uid, used to find orphans.
pub const OWNER_UID_LABEL: &str = "payplane.dev/owner-uid";
/// Pod-template annotation with the checksum of the wired Secrets.
pub const SECRETS_CHECKSUM: &str = "payplane.dev/secrets-checksum";

/// The user of every payplane image: distroless `nonroot` (the Dockerfile's `USER`).
pub const PAYPLANE_USER: RunAs = RunAs::new(65532, 65532);
/// The `postgres` user of the official PostgreSQL image (Debian).
pub const POSTGRES_USER: RunAs = RunAs::new(999, 999);
/// The `rabbitmq` user of the official RabbitMQ image.
pub const RABBITMQ_USER: RunAs = RunAs::new(999, 999);
/// The `redis` user of the official `redis:*-alpine` image (its group is 1000 on Alpine).
pub const REDIS_USER: RunAs = RunAs::new(999, 1000);

/// The numeric identity a pod runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// `runAsUser`.
    pub user: i64,
    /// `runAsGroup`, also `fsGroup` so that volumes are writable.
    pub group: i64,
}

impl RunAs {
    /// `user:group`.
    pub const fn new(user: i64, group: i64) -> Self {
        Self { user, group }
    }

    /// A pod `securityContext` that runs as this identity.
    ///
    /// The numbers are explicit because `runAsNonRoot` alone makes the kubelet check the
    /// image's user, and it refuses a non-numeric one ("non-numeric user") even when it is
    /// not root.
    pub fn pod_security_context(self) -> Value {
        serde_json::json!({
            "runAsNonRoot": true,
            "runAsUser": self.user,
            "runAsGroup": self.group,
            "fsGroup": self.group,
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    }
}

/// Errors of building child objects.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The owner has no uid yet (it was never stored by the API server).
    #[error("{kind} {name} has no metadata.uid")]
    MissingUid {
        /// Kind of the owner.
        kind: String,
        /// Name of the owner.
        name: String,
    },
    /// A typed object did not serialise.
    #[error("serialising {kind} {name}: {source}")]
    Serialize {
        /// Kind of the child.
        kind: String,
        /// Name of the child.
        name: String,
        /// Cause.
        source: serde_json::Error,
    },
}

/// The object that owns (controls) the children being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    api_version: String,
    kind: String,
    name: String,
    namespace: String,
    uid: String,
    instance: String,
}

impl Owner {
    /// The owner description of a stored object.
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> Result<Self, MetaError> {
        let meta = obj.meta();
        let name = meta.name.clone().unwrap_or_default();
        let uid = meta.uid.clone().ok_or_else(|| MetaError::MissingUid {
            kind: K::kind(&()).into_owned(),
            name: name.clone(),
        })?;
        let instance = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/instance"))
            .cloned()
            .unwrap_or_else(|| name.clone());
        Ok(Self {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            name,
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid,
            instance,
        })
    }

    /// Name of the owner.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Namespace of the owner (and of every child).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The owner's uid.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The `app.kubernetes.io/instance` its children carry.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The controller owner reference children carry.
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// The payplane labels of a child that belongs to `component`.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), component.to_owned()),
            (
                "app.kubernetes.io/instance".to_owned(),
                self.instance.clone(),
            ),
            (
                "app.kubernetes.io/part-of".to_owned(),
                "payplane".to_owned(),
            ),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                MANAGER.to_owned(),
            ),
            (OWNER_UID_LABEL.to_owned(), self.uid.clone()),
        ])
    }

    /// Metadata of a child: name, namespace, labels and the controller owner reference.
    pub fn child_meta(&self, name: impl Into<String>, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component)),
            owner_references: Some(vec![self.owner_reference()]),
            ..ObjectMeta::default()
        }
    }
}

/// One desired child object, ready for server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    /// Its type (group, version, kind, plural).
    pub resource: ApiResource,
    /// Its name.
    pub name: String,
    /// The full object with `apiVersion` and `kind`.
    pub object: Value,
}

impl Child {
    /// A child from a typed object (k8s-openapi or payplane kinds).
    pub fn typed<K: Resource<DynamicType = ()> + Serialize>(obj: &K) -> Result<Self, MetaError> {
        let resource = ApiResource::erase::<K>(&());
        let name = obj.meta().name.clone().unwrap_or_default();
        let mut object = serde_json::to_value(obj).map_err(|source| MetaError::Serialize {
            kind: resource.kind.clone(),
            name: name.clone(),
            source,
        })?;
        if let Some(m) = object.as_object_mut() {
            m.insert(
                "apiVersion".into(),
                Value::String(resource.api_version.clone()),
            );
            m.insert("kind".into(), Value::String(resource.kind.clone()));
            m.remove("status");
        }
        Ok(Self {
            resource,
            name,
            object,
        })
    }

    /// A child of a kind this crate has no type for (cert-manager `Certificate`).
    pub fn dynamic(resource: ApiResource, object: Value) -> Self {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Self {
            resource,
            name,
            object,
        }
    }

    /// `Kind/name`, for messages and snapshots.
    pub fn id(&self) -> String {
        format!("{}/{}", self.resource.kind, self.name)
    }
}

/// The `ApiResource` of each listed (statically typed) kind, in order: the kinds a controller
/// prunes. A macro, since the list is of types.
macro_rules! resources {
    ($($kind:ty),* $(,)?) => {
        vec![$(kube::core::ApiResource::erase::<$kind>(&())),*]
    };
}
pub(crate) use resources;

/// An `ApiResource` for a kind outside k8s-openapi.
pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub use payplane_kit::digest::{hex, sha256_hex};

/// A test-only uid-bearing metadata, so builders can be tested without an API server.
#[cfg(test)]
pub fn test_meta(name: &str, uid: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("payments".into()),
        uid: Some(uid.into()),
        generation: Some(1),
        ..ObjectMeta::default()
    }
}

impl Owner {
    /// [`Owner::child_meta`] as JSON, for builders that write objects as JSON.
    pub fn meta_json(&self, name: &str, component: &str) -> Value {
        serde_json::to_value(self.child_meta(name, component)).unwrap_or(Value::Null)
    }

    /// A child of type `K` from a JSON body: `apiVersion`, `kind` and metadata are filled in.
    pub fn child<K: Resource<DynamicType = ()>>(
        &self,
        name: &str,
        component: &str,
        body: Value,
    ) -> Child {
        self.child_of(ApiResource::erase::<K>(&()), name, component, body)
    }

    /// Like [`Owner::child`] for a type given as an `ApiResource`.
    pub fn child_of(
        &self,
        resource: ApiResource,
        name: &str,
        component: &str,
        mut body: Value,
    ) -> Child {
        if let Some(m) = body.as_object_mut() {
            m.insert(
                "apiVersion".into(),
                Value::String(resource.api_version.clone()),
            );
            m.insert("kind".into(), Value::String(resource.kind.clone()));
            m.insert("metadata".into(), self.meta_json(name, component));
        }
        Child {
            resource,
            name: name.to_owned(),
            object: body,
        }
    }
}

/// A Secret body (`type` and base64 `data`) from plain string values.
pub fn secret_body(type_: &str, data: &BTreeMap<String, String>) -> Value {
    use base64::Engine;
    let encoded: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    serde_json::json!({"type": type_, "data": encoded})
}
