//! Pure builder of a built-in `PostgresCluster`: superuser Secret, StatefulSet, headless and
//! client Services. A cluster of another provider has none here (a `cloudnative-pg` one has
//! its CloudNativePG `Cluster`, see [`super::cloudnative_pg`]). No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use serde_json::json;

use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::PostgresProvider;
use crate::meta::{Child, MetaError, Owner, secret_body};

/// Name of the generated superuser Secret.
pub fn superuser_secret(cluster: &str) -> String {
    format!("{cluster}-superuser")
}

/// Name of the client (read-write) Service.
pub fn rw_service(cluster: &str) -> String {
    format!("{cluster}-rw")
}

/// The children of `pg`, none unless it is built in; `superuser_password` is the existing or newly generated password.
pub fn build(pg: &PostgresCluster, superuser_password: &str) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(pg)?;
    if pg.spec.provider != PostgresProvider::Builtin {
        return Ok(Vec::new());
    }
    let name = owner.name().to_owned();
    let builtin = pg.spec.builtin.clone().unwrap_or_default();
    let labels = json!({"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": name});
    let storage = builtin
        .storage
        .clone()
        .unwrap_or_else(|| crate::crd::StorageSpec {
            size: "1Gi".into(),
            storage_class_name: None,
        });
    let secret = superuser_secret(&name);
    let mut claim = json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage.size}}}
    });
    if let Some(class) = &storage.storage_class_name {
        claim["spec"]["storageClassName"] = json!(class);
    }
    let mut container = json!({
        "name": "postgres",
        "image": builtin.image.as_deref().unwrap_or("postgres:16"),
        "env": [
            {"name": "POSTGRES_USER", "value": "postgres"},
            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}
        ],
        "ports": [{"name": "postgres", "containerPort": 5432}],
        "readinessProbe": {"exec": {"command": ["pg_isready", "-U", "postgres"]}, "periodSeconds": 5},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]
    });
    if let Some(r) = &builtin.resources {
        container["resources"] = serde_json::to_value(r).unwrap_or_default();
    }
    Ok(vec![
        owner.child::<Secret>(
            &secret,
            "postgres",
            secret_body(
                "Opaque",
                &BTreeMap::from([
                    ("username".to_owned(), "postgres".to_owned()),
                    ("password".to_owned(), superuser_password.to_owned()),
                ]),
            ),
        ),
        owner.child::<Service>(
            &format!("{name}-hl"),
            "postgres",
            json!({"spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "postgres", "port": 5432}]}}),
        ),
        owner.child::<Service>(
            &rw_service(&name),
            "postgres",
            json!({"spec": {"selector": labels, "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432}]}}),
        ),
        owner.child::<StatefulSet>(
            &name,
            "postgres",
            json!({"spec": {
                "serviceName": format!("{name}-hl"),
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {
                    "securityContext": crate::meta::POSTGRES_USER.pod_security_context(),
                    "containers": [container]
                }},
                "volumeClaimTemplates": [claim]
            }}),
        ),
    ])
}
