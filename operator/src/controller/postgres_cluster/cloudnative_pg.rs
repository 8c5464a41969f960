//! Provider `cloudnative-pg`: the CloudNativePG `Cluster` (`postgresql.cnpg.io/v1`) a
//! `PostgresCluster` stands for, and what that Cluster's status means for ours. Pure, no I/O.
//!
//! CloudNativePG names what it creates after the Cluster: the read-write Service `<name>-rw`
//! and, with `enableSuperuserAccess`, the Secret `<name>-superuser` (`username`, `password`);
//! the `app` database's owner gets `<name>-app`. The Cluster takes the `PostgresCluster`'s
//! name, so those are the names the built-in server uses too, and the `Database` controller
//! reaches either through the same status fields.

use serde_json::{Value, json};

use super::super::provider::{self, Provider, text};
use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::PostgresProvider;
use crate::meta::{Child, MetaError, Owner};

/// The provider, for conditions and the kind of its object.
pub const PROVIDER: Provider = Provider {
    name: "cloudnative-pg",
    crd: "clusters.postgresql.cnpg.io",
    project: "CloudNativePG",
    kind: ("postgresql.cnpg.io", "v1", "Cluster", "clusters"),
};
/// `status.phase` of a Cluster that serves (CloudNativePG's `PhaseHealthy`).
pub const HEALTHY: &str = "Cluster in healthy state";
/// Instances when `spec.cloudnativePg.instances` is absent: a primary and two replicas, what
/// failover needs.
pub const DEFAULT_INSTANCES: i32 = 3;
/// The superuser CloudNativePG creates.
pub const SUPERUSER: &str = "postgres";

/// The Secret with the superuser's `password` (CloudNativePG's `<cluster>-superuser`).
pub fn superuser_secret(cluster: &str) -> String {
    format!("{cluster}-superuser")
}

/// The Secret of the bootstrap `app` owner (CloudNativePG's `<cluster>-app`).
pub fn app_secret(cluster: &str) -> String {
    format!("{cluster}-app")
}

/// The read-write Service (CloudNativePG's `<cluster>-rw`).
pub fn rw_service(cluster: &str) -> String {
    format!("{cluster}-rw")
}

/// Instances `pg` asks for.
pub fn instances(pg: &PostgresCluster) -> i32 {
    pg.spec
        .cloudnative_pg
        .as_ref()
        .and_then(|c| c.instances)
        .unwrap_or(DEFAULT_INSTANCES)
        .max(1)
}

/// The Cluster of `pg` (none unless its provider is `cloudnative-pg`).
pub fn build(pg: &PostgresCluster) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(pg)?;
    if pg.spec.provider != PostgresProvider::CloudNativePg {
        return Ok(Vec::new());
    }
    let settings = pg.spec.cloudnative_pg.clone().unwrap_or_default();
    let storage = provider::storage(settings.storage);
    let mut volume = json!({"size": storage.size});
    if let Some(class) = storage.storage_class_name {
        // CloudNativePG spells it `storageClass`.
        volume["storageClass"] = json!(class);
    }
    let spec = json!({
        "instances": instances(pg),
        // The Database controller creates each service's role and database as the
        // superuser; CloudNativePG makes no superuser Secret (and refuses remote superuser
        // logins) unless asked.
        "enableSuperuserAccess": true,
        "storage": volume,
    });
    let pod = ("imageName", settings.image_name, settings.resources);
    Ok(provider::child(&owner, (&PROVIDER, "postgres"), spec, pod))
}

/// What a Cluster's status says about serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The Cluster serves: healthy, with every instance ready.
    pub ready: bool,
    /// `status.instances`.
    pub instances: Option<i32>,
    /// Why not, naming the Cluster, its phase and its instances.
    pub message: String,
    /// `status.writeService`, else `<cluster>-rw`.
    pub write_service: String,
    /// `status.readyInstances`.
    pub ready_instances: Option<i32>,
    /// `status.currentPrimary`.
    pub current_primary: Option<String>,
}

fn int(v: &Value, pointer: &str) -> Option<i32> {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

/// Reads the stored Cluster `cluster` (with its status) against the `want` instances asked for.
pub fn observe(cluster: &Value, want: i32) -> Observed {
    let name = text(cluster, "/metadata/name").unwrap_or_default();
    let instances = int(cluster, "/status/instances");
    let ready_instances = int(cluster, "/status/readyInstances");
    let phase = text(cluster, "/status/phase");
    let ready_cond = cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    let counted = ready_instances.unwrap_or(0);
    let ready = phase.as_deref() == Some(HEALTHY)
        && counted >= want
        && ready_cond.is_none_or(|c| c["status"] == "True");
    let message = match &phase {
        _ if ready => format!("CloudNativePG Cluster {name}: {counted}/{want} instances ready"),
        None => format!(
            "CloudNativePG Cluster {name} has no status yet (is the CloudNativePG operator running?)"
        ),
        Some(p) => {
            let reason = text(cluster, "/status/phaseReason")
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!("CloudNativePG Cluster {name}: {p}{reason}, {counted}/{want} instances ready")
        }
    };
    Observed {
        ready,
        message,
        instances,
        ready_instances,
        current_primary: text(cluster, "/status/currentPrimary"),
        write_service: text(cluster, "/status/writeService").unwrap_or_else(|| rw_service(&name)),
    }
}

/// Our status fields for a Cluster in namespace `ns`: the read-write endpoint, the superuser
/// Secret, and CloudNativePG's TLS (it always serves TLS with its own CA, hence `require`,
/// not `verify-full`).
pub fn status_fields(cluster: &str, ns: &str, observed: &Observed) -> Value {
    json!({
        "endpoint": {"host": format!("{}.{ns}.svc", observed.write_service), "port": 5432},
        "superuserSecretName": superuser_secret(cluster),
        "superuserSecretKey": "password",
        "superuser": SUPERUSER,
        "sslMode": "require",
        "instances": observed.instances,
        "readyInstances": observed.ready_instances,
        "currentPrimary": observed.current_primary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::postgres_cluster::CloudNativePgPostgres;

    fn pg(settings: Option<&CloudNativePgPostgres>) -> PostgresCluster {
        let spec = json!({"provider": "cloudnative-pg", "cloudnativePg": settings});
        crate::fixtures::stored("payplane-pg", spec)
    }

    #[test]
    fn cluster_carries_instances_storage_resources_and_superuser_access() {
        let settings: CloudNativePgPostgres = serde_json::from_value(json!({
            "storage": {"size": "20Gi", "storageClassName": "fast"},
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4"
        }))
        .unwrap();
        let children = build(&pg(Some(&settings))).unwrap();
        let (id, api_version) = ("Cluster/payplane-pg", "postgresql.cnpg.io/v1");
        let spec = provider::only_child(&children, id, api_version, "uid-payplane-pg");
        insta::assert_yaml_snapshot!(spec, @r#"
        enableSuperuserAccess: true
        imageName: "ghcr.io/cloudnative-pg/postgresql:16.4"
        instances: 3
        resources:
          requests:
            cpu: 500m
            memory: 1Gi
        storage:
          size: 20Gi
          storageClass: fast
        "#);
    }

    #[test]
    fn defaults_are_three_instances_of_1gi() {
        let children = build(&pg(None)).unwrap();
        assert_eq!(children[0].object["spec"]["instances"], 3);
        assert_eq!(
            children[0].object["spec"]["storage"],
            json!({"size": "1Gi"})
        );
        assert!(children[0].object["spec"].get("resources").is_none());
    }

    #[test]
    fn other_providers_get_no_cluster() {
        let mut p = pg(None);
        p.spec.provider = PostgresProvider::Builtin;
        assert!(build(&p).unwrap().is_empty());
    }

    fn stored(status: Value) -> Value {
        let mut cluster = json!({"metadata": {"name": "payplane-pg"}});
        cluster["status"] = status;
        cluster
    }

    #[test]
    fn healthy_with_every_instance_ready_is_ready() {
        let o = observe(
            &stored(
                json!({"phase": HEALTHY, "instances": 3, "readyInstances": 3,
                "currentPrimary": "payplane-pg-1", "writeService": "payplane-pg-rw",
                "conditions": [{"type": "Ready", "status": "True"}]}),
            ),
            3,
        );
        assert!(o.ready, "{o:?}");
        assert_eq!(o.current_primary.as_deref(), Some("payplane-pg-1"));
        let fields = status_fields("payplane-pg", "payments", &o);
        assert_eq!(fields["endpoint"]["host"], "payplane-pg-rw.payments.svc");
        assert_eq!(fields["superuserSecretName"], "payplane-pg-superuser");
        assert_eq!(fields["sslMode"], "require");
        assert_eq!(fields["readyInstances"], 3);
    }

    #[test]
    fn not_ready_while_setting_up_failing_over_or_short_of_instances() {
        let none = observe(&stored(Value::Null), 3);
        assert!(!none.ready);
        assert!(none.message.contains("no status yet"), "{}", none.message);
        let setting_up = observe(
            &stored(json!({"phase": "Setting up primary", "readyInstances": 0})),
            3,
        );
        assert!(!setting_up.ready);
        assert_eq!(
            setting_up.message,
            "CloudNativePG Cluster payplane-pg: Setting up primary, 0/3 instances ready"
        );
        let short = observe(&stored(json!({"phase": HEALTHY, "readyInstances": 2})), 3);
        assert!(!short.ready);
        let failing = observe(
            &stored(
                json!({"phase": "Failing over", "phaseReason": "primary lost", "readyInstances": 3}),
            ),
            3,
        );
        assert!(failing.message.contains("Failing over (primary lost)"));
        let cond_false = observe(
            &stored(json!({"phase": HEALTHY, "readyInstances": 3,
                "conditions": [{"type": "Ready", "status": "False"}]})),
            3,
        );
        assert!(!cond_false.ready);
        assert_eq!(cond_false.write_service, "payplane-pg-rw");
    }
}
