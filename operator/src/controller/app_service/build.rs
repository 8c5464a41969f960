//! Pure builder of an `AppService`'s children: spec + resolved dependencies → ServiceAccount,
//! ConfigMap, Deployment, Service, migration Job, PodDisruptionBudget, HorizontalPodAutoscaler,
//! NetworkPolicy and (when the CRD exists) ServiceMonitor. No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{Value, json};

use crate::crd::AppService;
use crate::meta::{Child, MetaError, Owner, SECRETS_CHECKSUM, api_resource, sha256_hex};

/// What the controller found out before building.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// Connection Secret of the referenced Database (key `uri`).
    pub database_secret: Option<String>,
    /// Secret of the first referenced Queue (key `uri`).
    pub queue_secret: Option<String>,
    /// Checksum of the wired Secrets' data, minus those the service reloads itself.
    pub secrets_checksum: String,
    /// Image the Deployment runs; `None` while the first migration has not succeeded.
    pub deploy_image: Option<String>,
    /// Whether the migration Job for `spec.image` is wanted.
    pub run_migration: bool,
    /// Whether the ServiceMonitor CRD exists in the cluster.
    pub service_monitor: bool,
}

/// The container port's name.
const PORT_NAME: &str = "http";

fn selector(owner: &Owner) -> Value {
    json!({"app.kubernetes.io/name": owner.name(), "app.kubernetes.io/instance": owner.instance()})
}

/// Environment from Secrets: database, broker, cache, then the spec's own `valueFrom` entries.
fn secret_env(app: &AppService, resolved: &Resolved) -> Vec<Value> {
    let mut env = Vec::new();
    let from = |name: &str, secret: &str, key: &str| json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}});
    if let Some(s) = &resolved.database_secret {
        env.push(from("DATABASE_URL", s, "uri"));
    }
    if let Some(s) = &resolved.queue_secret {
        env.push(from("AMQP_URL", s, "uri"));
    }
    if let Some(c) = &app.spec.cache {
        env.push(from(
            "REDIS_URL",
            &c.url_secret_ref.name,
            &c.url_secret_ref.key,
        ));
    }
    for e in &app.spec.env {
        if e.value_from.is_some() {
            env.push(serde_json::to_value(e).unwrap_or(Value::Null));
        }
    }
    env
}

/// Plain settings, kept in the ConfigMap: `LISTEN_ADDR` and the spec's literal values.
pub fn config_data(app: &AppService) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([(
        "LISTEN_ADDR".to_owned(),
        format!("0.0.0.0:{}", app.spec.port),
    )]);
    for e in &app.spec.env {
        if e.value_from.is_none() {
            data.insert(e.name.clone(), e.value.clone().unwrap_or_default());
        }
    }
    data
}

fn pod_spec(
    app: &AppService,
    owner: &Owner,
    resolved: &Resolved,
    image: &str,
    args: &[String],
    job: bool,
) -> Value {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, f) in app.spec.files.iter().enumerate() {
        let vol = format!("secret-{i}");
        volumes.push(json!({"name": vol, "secret": {"secretName": f.secret_name}}));
        mounts.push(json!({"name": vol, "mountPath": f.mount_path, "readOnly": true}));
    }
    let probes = app.spec.probes.clone().unwrap_or_default();
    let mut container = json!({
        "name": if job { "migrate" } else { "app" },
        "image": image,
        "args": args,
        "envFrom": [{"configMapRef": {"name": format!("{}-config", owner.name())}}],
        "env": secret_env(app, resolved),
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]}
        }
    });
    if let Some(r) = &app.spec.resources {
        container["resources"] = serde_json::to_value(r).unwrap_or(Value::Null);
    }
    if !job {
        container["ports"] =
            json!([{"name": PORT_NAME, "containerPort": app.spec.port, "protocol": "TCP"}]);
        container["livenessProbe"] = json!({"httpGet": {"path": probes.liveness.as_deref().unwrap_or("/health/live"), "port": PORT_NAME}, "periodSeconds": 10});
        container["readinessProbe"] = json!({"httpGet": {"path": probes.readiness.as_deref().unwrap_or("/health/ready"), "port": PORT_NAME}, "periodSeconds": 5});
    }
    let mut spec = json!({
        "serviceAccountName": owner.name(),
        "automountServiceAccountToken": false,
        "securityContext": crate::meta::PAYPLANE_USER.pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    });
    if job {
        spec["restartPolicy"] = json!("Never");
    }
    spec
}

/// Name of the migration Job for the current spec: it changes with the image, arguments and
/// wiring, because a Job's template cannot be changed in place.
pub fn migration_job_name(app: &AppService, owner: &Owner, resolved: &Resolved) -> Option<String> {
    let migration = app.spec.migration.as_ref()?;
    let spec = pod_spec(app, owner, resolved, &app.spec.image, &migration.args, true);
    let hash = sha256_hex(spec.to_string().as_bytes());
    Some(format!("{}-migrate-{}", owner.name(), &hash[..10]))
}

/// Decides what rolls out (pure): with a migration and a new image (`serving` is not
/// `spec.image`) the Job runs with the new image first and the Deployment keeps `serving`
/// until the Job's `phase` is `Succeeded`; otherwise the Deployment runs `spec.image`.
pub fn roll(
    app: &AppService,
    resolved: &mut Resolved,
    serving: Option<&str>,
    phase: Option<crate::crd::app_service::MigrationPhase>,
) {
    let image = &app.spec.image;
    resolved.run_migration = phase.is_some();
    resolved.deploy_image = match phase {
        Some(p) if p != crate::crd::app_service::MigrationPhase::Succeeded => {
            serving.map(str::to_owned)
        }
        _ => Some(image.clone()),
    };
}

/// The NetworkPolicy's ingress rules: the port from `allowFrom`'s sources, from any source
/// when absent. An empty `from` would admit every source, so an empty `allowFrom` is no rule.
fn ingress_rules(app: &AppService) -> Value {
    let port = json!([{"port": PORT_NAME, "protocol": "TCP"}]);
    match &app.spec.allow_from {
        None => json!([{"ports": port}]),
        Some(peers) if peers.is_empty() => json!([]),
        Some(peers) => json!([{"from": peers, "ports": port}]),
    }
}

/// The children of `app` for `resolved`.
pub fn build(app: &AppService, resolved: &Resolved) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(app)?;
    let name = owner.name().to_owned();
    let component = name.as_str();
    let mut children = Vec::new();

    children.push(owner.child::<ServiceAccount>(
        &name,
        component,
        json!({"automountServiceAccountToken": false}),
    ));
    let data = config_data(app);
    let config_checksum = sha256_hex(serde_json::to_string(&data).unwrap_or_default().as_bytes());
    children.push(owner.child::<ConfigMap>(
        &format!("{name}-config"),
        component,
        json!({"data": data}),
    ));

    if let Some(image) = &resolved.deploy_image {
        let mut labels = owner.labels(component);
        labels.remove(crate::meta::OWNER_UID_LABEL);
        let mut spec = json!({
            "selector": {"matchLabels": selector(&owner)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        SECRETS_CHECKSUM: resolved.secrets_checksum,
                        "payplane.dev/config-checksum": config_checksum,
                    }
                },
                "spec": pod_spec(app, &owner, resolved, image, &app.spec.args, false),
            }
        });
        if app.spec.autoscaling.is_none() {
            spec["replicas"] = json!(app.spec.replicas.unwrap_or(1));
        }
        children.push(owner.child::<Deployment>(&name, component, json!({"spec": spec})));
    }

    if resolved.run_migration
        && let (Some(migration), Some(job_name)) = (
            &app.spec.migration,
            migration_job_name(app, &owner, resolved),
        )
    {
        {
            children.push(owner.child::<Job>(
                &job_name,
                component,
                json!({"spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 600,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": component, "payplane.dev/job": "migration"}},
                        "spec": pod_spec(app, &owner, resolved, &app.spec.image, &migration.args, true),
                    }
                }}),
            ));
        }
    }

    children.push(owner.child::<Service>(
        &name,
        component,
        json!({"spec": {
            "selector": selector(&owner),
            "ports": [{"name": "http", "port": 80, "targetPort": PORT_NAME, "protocol": "TCP"}],
        }}),
    ));

    children.extend(guards(app, &owner, resolved));
    Ok(children)
}

/// What keeps `app` available, scaled and fenced: PodDisruptionBudget, HorizontalPodAutoscaler,
/// NetworkPolicy and ServiceMonitor.
fn guards(app: &AppService, owner: &Owner, resolved: &Resolved) -> Vec<Child> {
    let name = owner.name();
    let component = name;
    let mut children = Vec::new();
    let replicas = app.spec.replicas.unwrap_or(1);
    if app.spec.autoscaling.is_some() || replicas > 1 {
        children.push(owner.child::<PodDisruptionBudget>(
            name,
            component,
            json!({"spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(owner)}}}),
        ));
    }
    if let Some(a) = &app.spec.autoscaling {
        children.push(owner.child::<HorizontalPodAutoscaler>(
            name,
            component,
            json!({"spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": a.target_cpu_utilization_percentage}}}],
            }}),
        ));
    }
    // Only the service port is reachable; egress stays open (databases, broker, DNS).
    children.push(owner.child::<NetworkPolicy>(
        name,
        component,
        json!({"spec": {
            "podSelector": {"matchLabels": selector(owner)},
            "policyTypes": ["Ingress"],
            "ingress": ingress_rules(app),
        }}),
    ));
    if resolved.service_monitor {
        children.push(owner.child_of(
            service_monitor_resource(),
            name,
            component,
            json!({"spec": {
                "selector": {"matchLabels": selector(owner)},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
            }}),
        ));
    }
    children
}

/// The prometheus-operator `ServiceMonitor` type.
pub fn service_monitor_resource() -> kube::core::ApiResource {
    api_resource(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
        "servicemonitors",
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;

    fn policy(app: &AppService) -> Value {
        build(app, &Resolved::default())
            .expect("build")
            .into_iter()
            .find(|c| c.resource.kind == "NetworkPolicy")
            .map(|c| c.object["spec"]["ingress"].clone())
            .expect("NetworkPolicy")
    }

    #[test]
    fn allow_from_restricts_the_port_to_the_named_sources() {
        let mut app = AppService::test("web");
        assert_eq!(
            policy(&app),
            json!([{"ports": [{"port": "http", "protocol": "TCP"}]}])
        );
        let peer = NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some([("app.kubernetes.io/name".to_owned(), "gw".to_owned())].into()),
                match_expressions: None,
            }),
            ..NetworkPolicyPeer::default()
        };
        app.spec.allow_from = Some(vec![peer]);
        assert_eq!(
            policy(&app),
            json!([{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gw"}}}],
                    "ports": [{"port": "http", "protocol": "TCP"}]}])
        );
        // Empty: nothing may connect (an empty `from` would admit everyone).
        app.spec.allow_from = Some(vec![]);
        assert_eq!(policy(&app), json!([]));
    }
}
