//! Reconcile scenarios on a real control plane (operator.md test layer 3): the real
//! controllers, in-process, as the chart's ServiceAccount, against kube-apiserver with the real
//! Deployment, ReplicaSet, StatefulSet, Job and garbage-collector controllers, the scheduler,
//! and kwok playing the kubelets. PostgreSQL and RabbitMQ are simulated (`tests/external.rs`
//! runs those against the real servers). Every test ends with [`Operator::stop`], which fails
//! on any 403 the operator got.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams};
use payplane_control_plane::{FAILING_IMAGE_SUFFIX, eventually};
use payplane_operator::controller::platform::build::{COMPONENTS, app_name};
use payplane_operator::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};
use payplane_operator::external::Externals;
use payplane_operator::testing::{
    Operator, TIMEOUT, apply_local_broker, condition, converged_example, not_ready_because, ready,
};
use serde_json::json;

/// The serving pods of the AppService `app` (not its migration Job's).
fn app_pods(app: &str) -> String {
    format!("app.kubernetes.io/name={app},!payplane.dev/job")
}

/// Images of the pods matching `selector` that are Running and Ready.
async fn running_pods(op: &Operator, selector: &str) -> Result<Vec<String>> {
    let pods = op
        .api::<Pod>()
        .list(&ListParams::default().labels(selector))
        .await?;
    Ok(pods
        .items
        .iter()
        .filter(|p| {
            let status = p.status.as_ref();
            p.metadata.deletion_timestamp.is_none()
                && status.and_then(|s| s.phase.as_deref()) == Some("Running")
                && status
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_converges_with_every_resource_ready_and_pods_running() -> Result<()> {
    let op = converged_example("converge").await?;
    ensure!(op.list::<AppService>().await?.len() == 6);
    ensure!(op.list::<Database>().await?.len() == 4);
    ensure!(op.list::<Queue>().await?.len() == 5);
    ensure!(op.list::<PostgresCluster>().await?.len() == 1);
    ensure!(op.list::<MessageBroker>().await?.len() == 1);
    for (component, _) in COMPONENTS {
        let name = &app_name("payplane", component);
        let d = op
            .get::<Deployment>(name)
            .await?
            .with_context(|| format!("Deployment {name}"))?;
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        // Pods made by the real ReplicaSet controller, scheduled, and Running through kwok.
        let pods = running_pods(&op, &app_pods(name)).await?;
        ensure!(
            i32::try_from(pods.len())? == want,
            "{name}: {} Running pods, want {want}; pods:\n{}",
            pods.len(),
            op.describe_pods().await?
        );
        ensure!(op.get::<Service>(name).await?.is_some(), "Service {name}");
    }
    for sts in ["payplane-redis"] {
        ensure!(op.get::<StatefulSet>(sts).await?.is_some(), "{sts}");
    }
    ensure!(op.get::<Ingress>("payplane-tls").await?.is_some());
    let tls = op.existing::<Secret>("payplane-tls").await?;
    ensure!(tls.type_.as_deref() == Some("kubernetes.io/tls"));
    let p = op.existing::<Platform>("payplane").await?;
    let status = p.status.context("no status")?;
    ensure!(status.endpoint.as_deref() == Some("https://payplane.localtest.me"));
    ensure!(status.components.len() >= 17, "{:?}", status.components);
    // The payments Deployment is wired to its database and queue secrets, with a checksum.
    let d = op.existing::<Deployment>("payplane-payments").await?;
    let template = d.spec.context("spec")?.template;
    let env = serde_json::to_string(&template.spec.context("pod spec")?.containers[0].env)?;
    ensure!(
        env.contains("payplane-payments-db-credentials")
            && env.contains("payplane-payments-events-amqp"),
        "{env}"
    );
    ensure!(
        template
            .metadata
            .and_then(|m| m.annotations)
            .is_some_and(|a| a.contains_key("payplane.dev/secrets-checksum"))
    );
    // Under the chart's RBAC nothing was forbidden: neither in a reconcile, a watch nor an
    // Event (what `stop` asserts), as the metrics a user scrapes show.
    let metrics = op.ctx.metrics.render();
    ensure!(!metrics.contains("Forbidden"), "{metrics}");
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_change_rolls_the_deployment_through_the_replicaset_controller() -> Result<()> {
    let op = converged_example("rollout").await?;
    let before = op.existing::<AppService>("payplane-auth").await?;
    // A label is not a spec change: the generation stays.
    let labelled: AppService = op
        .patch("payplane-auth", json!({"metadata": {"labels": {"x": "y"}}}))
        .await?;
    ensure!(labelled.metadata.generation == before.metadata.generation);
    let old_sets: Vec<String> = op
        .list::<ReplicaSet>()
        .await?
        .iter()
        .map(ResourceExt::name_any)
        .collect();

    op.patch::<Platform>("payplane", json!({"spec": {"version": "0.2.0"}}))
        .await?;
    let new_image = "ghcr.io/payplane/auth:0.2.0";
    let app = op
        .wait_for::<AppService>("auth on 0.2.0 and Ready", "payplane-auth", |a| {
            ready(a)?;
            let a = a.ok_or("absent")?;
            let serving = a.status.as_ref().and_then(|s| s.image.as_deref());
            if a.spec.image == new_image && serving == Some(new_image) {
                Ok(())
            } else {
                Err(format!("spec {}, serving {serving:?}", a.spec.image))
            }
        })
        .await?;
    ensure!(app.metadata.generation == before.metadata.generation.map(|g| g + 1));
    let migration = app.status.and_then(|s| s.migration).context("migration")?;
    ensure!(format!("{:?}", migration.phase) == "Succeeded");
    // The real Deployment controller made a new ReplicaSet; the old one is scaled to zero and
    // the pods that run are the new image's.
    eventually(TIMEOUT, "auth pods all on the new image", || async {
        let images = running_pods(&op, &app_pods("payplane-auth")).await?;
        Ok(
            if !images.is_empty() && images.iter().all(|i| i == new_image) {
                Ok(())
            } else {
                Err(format!("{images:?}"))
            },
        )
    })
    .await?;
    let sets = op.list::<ReplicaSet>().await?;
    let auth_sets: Vec<&ReplicaSet> = sets
        .iter()
        .filter(|rs| rs.name_any().starts_with("payplane-auth-"))
        .collect();
    ensure!(auth_sets.len() == 2, "{} auth ReplicaSets", auth_sets.len());
    for rs in auth_sets {
        let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let old = old_sets.contains(&rs.name_any());
        ensure!(
            (old && replicas == 0) || (!old && replicas > 0),
            "{}: old {old}, replicas {replicas}",
            rs.name_any()
        );
    }
    op.stop().await
}

async fn standalone_app(op: &Operator) -> Result<()> {
    op.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        // The label makes the controller watch it (a change then rolls the pods at once).
        "metadata": {"name": "web-env", "labels": {"app.kubernetes.io/part-of": "payplane"}},
        "data": {"token": "c2VjcmV0"}
    }))
    .await?;
    op.create("AppService", "web", json!({"image": "web:1", "port": 3000, "replicas": 2, "migration": {"args": ["migrate"]},
                 "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-env", "key": "token"}}}]})).await?;
    op.wait_for::<AppService>("web Ready", "web", ready).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_migration_keeps_the_old_image_and_reports_degraded() -> Result<()> {
    // A standalone AppService (a Platform would reassert the image of its own apps).
    let op = Operator::start("migration", Externals::simulated()).await?;
    standalone_app(&op).await?;
    // kwok fails the pod of a Job whose image ends in the suffix; the real Job controller
    // then marks the Job Failed.
    let broken = format!("web:2{FAILING_IMAGE_SUFFIX}");
    op.patch::<AppService>("web", json!({"spec": {"image": broken}}))
        .await?;
    let app = op
        .wait_for::<AppService>("Degraded/MigrationFailed", "web", |a| {
            let a = a.ok_or("absent")?;
            match condition(a, "Degraded") {
                Some(c) if c.status == "True" && c.reason == "MigrationFailed" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
    let status = app.status.clone().context("status")?;
    ensure!(status.image.as_deref() == Some("web:1"), "{status:?}");
    ensure!(format!("{:?}", status.migration.context("migration")?.phase) == "Failed");
    ensure!(condition(&app, "Ready").is_some_and(|c| c.reason == "MigrationFailed"));
    let d = op.existing::<Deployment>("web").await?;
    let image = d
        .spec
        .context("spec")?
        .template
        .spec
        .context("pod")?
        .containers[0]
        .image
        .clone();
    ensure!(
        image.as_deref() == Some("web:1"),
        "the old pods keep serving: {image:?}"
    );
    let pods = running_pods(&op, &app_pods("web")).await?;
    ensure!(
        pods == ["web:1", "web:1"],
        "{pods:?}\n{}",
        op.describe_pods().await?
    );
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_secret_rolls_the_pods() -> Result<()> {
    let op = Operator::start("secret", Externals::simulated()).await?;
    standalone_app(&op).await?;
    let checksum_of = |p: &Pod| {
        p.annotations()
            .get("payplane.dev/secrets-checksum")
            .cloned()
    };
    let serving = || async {
        Ok::<_, anyhow::Error>(
            op.api::<Pod>()
                .list(&ListParams::default().labels(&app_pods("web")))
                .await?
                .items,
        )
    };
    let pods_before: BTreeMap<String, Option<String>> = serving()
        .await?
        .iter()
        .map(|p| (p.name_any(), checksum_of(p)))
        .collect();
    ensure!(!pods_before.is_empty());
    op.patch::<Secret>("web-env", json!({"data": {"token": "b3RoZXI="}}))
        .await?;
    // New pods, with the new checksum, Running; the old ones gone.
    eventually(
        TIMEOUT,
        "pods replaced after the Secret changed",
        || async {
            let pods = serving().await?;
            let running = running_pods(&op, &app_pods("web")).await?;
            let fresh = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .all(|p| !pods_before.contains_key(&p.name_any()));
            let new_checksums = pods
                .iter()
                .all(|p| !pods_before.values().any(|c| *c == checksum_of(p)));
            Ok(if fresh && new_checksums && running.len() == 2 {
                Ok(())
            } else {
                Err(format!(
                    "running {}, pods:\n{}",
                    running.len(),
                    op.describe_pods().await?
                ))
            })
        },
    )
    .await?;
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_platform_removes_every_child_through_the_garbage_collector() -> Result<()> {
    let op = converged_example("delete").await?;
    ensure!(!op.list::<Deployment>().await?.is_empty());
    op.api::<Platform>()
        .delete("payplane", &DeleteParams::background())
        .await?;
    eventually(TIMEOUT, "every child gone", || async {
        let mut left = Vec::new();
        let mut count = |kind: &str, names: Vec<String>| {
            if !names.is_empty() {
                left.push(format!("{kind} {names:?}"));
            }
        };
        let names = |v: Vec<String>| v;
        count(
            "Platform",
            names(
                op.list::<Platform>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "AppService",
            names(
                op.list::<AppService>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "Database",
            names(
                op.list::<Database>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "Queue",
            names(
                op.list::<Queue>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "PostgresCluster",
            names(
                op.list::<PostgresCluster>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "MessageBroker",
            names(
                op.list::<MessageBroker>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "IngressCert",
            names(
                op.list::<IngressCert>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "Deployment",
            names(
                op.list::<Deployment>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "StatefulSet",
            names(
                op.list::<StatefulSet>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "Pod",
            names(
                op.list::<Pod>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "Service",
            names(
                op.list::<Service>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        count(
            "Ingress",
            names(
                op.list::<Ingress>()
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect(),
            ),
        );
        // Only what the operator made: the namespace's own token Secrets are not children.
        count(
            "Secret",
            op.list::<Secret>()
                .await?
                .iter()
                .filter(|s| {
                    s.labels()
                        .get("app.kubernetes.io/managed-by")
                        .map(String::as_str)
                        == Some("payplane-operator")
                })
                .map(ResourceExt::name_any)
                .collect(),
        );
        Ok(if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("; "))
        })
    })
    .await?;
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reference_sets_ready_false_with_the_reason() -> Result<()> {
    let op = Operator::start("invalid-ref", Externals::simulated()).await?;
    op.create(
        "AppService",
        "orphan",
        json!({"image": "orphan:1", "database": {"ref": "no-such-db"}}),
    )
    .await?;
    op.create("Database", "lost", json!({"clusterRef": {"name": "no-such-cluster"}, "databaseName": "lost_db", "owner": "lost"})).await?;
    let orphan = not_ready_because("DatabaseNotFound", &["no-such-db"]);
    op.wait_for::<AppService>("DatabaseNotFound", "orphan", orphan)
        .await?;
    let lost = not_ready_because("ClusterNotFound", &[]);
    op.wait_for::<Database>("ClusterNotFound", "lost", lost)
        .await?;
    ensure!(
        op.get::<Deployment>("orphan").await?.is_none(),
        "nothing rolls out"
    );
    op.stop().await
}

/// Resource versions of every payplane object and everything the operator applied.
async fn versions(op: &Operator) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut add = |kind: &str, items: Vec<(String, Option<String>)>| {
        for (name, rv) in items {
            out.insert(format!("{kind}/{name}"), rv.unwrap_or_default());
        }
    };
    macro_rules! of {
        ($k:ty) => {
            op.list::<$k>()
                .await?
                .iter()
                .map(|o| (o.name_any(), o.resource_version()))
                .collect()
        };
    }
    add("Platform", of!(Platform));
    add("AppService", of!(AppService));
    add("Database", of!(Database));
    add("Queue", of!(Queue));
    add("PostgresCluster", of!(PostgresCluster));
    add("MessageBroker", of!(MessageBroker));
    add("IngressCert", of!(IngressCert));
    add("Deployment", of!(Deployment));
    add("StatefulSet", of!(StatefulSet));
    add("Secret", of!(Secret));
    add("Service", of!(Service));
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_controllers_do_not_hot_loop() -> Result<()> {
    let op = converged_example("idle").await?;
    // Let the last status writes and their watch events drain.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = op.ctx.metrics.total_reconciles();
    let rv = versions(&op).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = op.ctx.metrics.total_reconciles();
    ensure!(
        after - before <= 2,
        "{} reconciles while idle",
        after - before
    );
    let now = versions(&op).await?;
    let changed: Vec<&String> = now
        .iter()
        .filter(|(k, v)| rv.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    ensure!(changed.is_empty(), "idle controllers wrote {changed:?}");
    op.stop().await
}

/// Issue 13: under the chart's RBAC (no `bind` verb) the broker's RoleBinding is admitted only
/// once its Role exists; applied together, the 3-node broker failed with "not found" until
/// backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_broker_is_ready_at_once_under_the_chart_rbac() -> Result<()> {
    let op = Operator::start("rmq3", Externals::simulated()).await?;
    op.create(
        "MessageBroker",
        "rmq3",
        json!({"provider": "builtin", "builtin": {"replicas": 3}}),
    )
    .await?;
    op.wait_for::<MessageBroker>("3-node broker Ready", "rmq3", ready)
        .await?;
    ensure!(
        running_pods(
            &op,
            "app.kubernetes.io/name=rabbitmq,app.kubernetes.io/instance=rmq3"
        )
        .await?
        .len()
            == 3
    );
    let errors = op.ctx.metrics.errors_with_reason("KubeApi");
    ensure!(
        errors == 0,
        "{errors} failed reconciles on the way:\n{}",
        op.ctx.metrics.render()
    );
    op.stop().await
}

/// Issue 13: the Queue controller's first finalizer patch was refused (422) on the real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_finalizer_is_added_without_an_error() -> Result<()> {
    let op = Operator::start("queue-finalizer", Externals::simulated()).await?;
    // Simulated externals: nothing is declared on this broker.
    apply_local_broker(&op, "rmq").await?;
    for svc in ["pay", "adm", "gw"] {
        let spec = if svc == "gw" {
            json!({"brokerRef": {"name": "rmq"}, "user": svc, "publishes": true,
                "exclusiveQueuePrefix": "gateway.ws."})
        } else {
            json!({"brokerRef": {"name": "rmq"}, "user": svc, "publishes": true,
                "queue": format!("{svc}.events"), "bindings": ["auth.user.*"]})
        };
        op.apply(
            json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Queue",
            "metadata": {"name": format!("{svc}-events")}, "spec": spec}),
        )
        .await?;
    }
    for svc in ["pay", "adm", "gw"] {
        let q = op
            .wait_for::<Queue>("Queue Ready", &format!("{svc}-events"), ready)
            .await?;
        ensure!(
            q.finalizers() == ["payplane.dev/queue"],
            "{:?}",
            q.finalizers()
        );
    }
    let metrics = op.ctx.metrics.render();
    ensure!(
        op.ctx.metrics.errors_with_reason("Finalizer") == 0
            && op.ctx.metrics.errors_with_reason("KubeApi") == 0,
        "{metrics}"
    );
    op.stop().await
}

/// The operator's own metrics say what the tests above rely on: a Forbidden answer is counted
/// under its own reason (so that `stop` can see it).
#[test]
fn forbidden_is_a_reason_of_its_own() {
    let metrics = payplane_operator::metrics::Metrics::default();
    metrics.api_error("watch", "Forbidden");
    assert_eq!(metrics.errors_with_reason("Forbidden"), 1);
    assert!(metrics.render().contains(r#"reason="Forbidden""#));
}
