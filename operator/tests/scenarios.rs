//! Reconcile scenarios: the real controllers against the in-process fake API server
//! (operator.md test layer 3), with simulated PostgreSQL and RabbitMQ.

use std::fmt::Write;
use std::time::Duration;

use payplane_operator::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};
use payplane_operator::external::Externals;
use payplane_operator::sim::{Sim, condition, is_ready};
use serde_json::{Value, json};

const PLATFORM: &str = include_str!("../../examples/platform.yaml");
const NS: &str = "payments";
const TIMEOUT: Duration = Duration::from_secs(20);

fn all_ready(sim: &Sim) -> bool {
    let lists = [
        sim.list::<Platform>(NS),
        sim.list::<AppService>(NS),
        sim.list::<PostgresCluster>(NS),
        sim.list::<Database>(NS),
        sim.list::<MessageBroker>(NS),
        sim.list::<Queue>(NS),
        sim.list::<IngressCert>(NS),
    ];
    lists
        .iter()
        .all(|l| !l.is_empty() && l.iter().all(is_ready))
}

async fn converged_platform() -> anyhow::Result<Sim> {
    let sim = Sim::start(Externals::simulated()).await?;
    sim.apply_yaml(PLATFORM)?;
    assert!(
        sim.wait_until(TIMEOUT, true, all_ready).await,
        "platform did not converge: {}",
        dump(&sim)
    );
    Ok(sim)
}

fn dump(sim: &Sim) -> String {
    let mut out = String::new();
    for l in [
        sim.list::<Platform>(NS),
        sim.list::<AppService>(NS),
        sim.list::<Database>(NS),
        sim.list::<Queue>(NS),
    ] {
        for o in l {
            let _ = write!(
                out,
                "\n{} {}: {:?}",
                o["kind"],
                o["metadata"]["name"],
                condition(&o, "Ready").map(|c| c["message"].clone())
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_creates_every_child_and_becomes_ready() -> anyhow::Result<()> {
    let sim = converged_platform().await?;
    assert_eq!(sim.list::<AppService>(NS).len(), 5);
    assert_eq!(sim.list::<Database>(NS).len(), 4);
    assert_eq!(sim.list::<Queue>(NS).len(), 5);
    assert_eq!(sim.list::<PostgresCluster>(NS).len(), 1);
    assert_eq!(sim.list::<MessageBroker>(NS).len(), 1);
    for name in [
        "payplane-gateway",
        "payplane-auth",
        "payplane-payments",
        "payplane-admin",
        "payplane-profile",
    ] {
        assert!(
            sim.fake.get("apps/v1", "deployments", NS, name).is_some(),
            "Deployment {name}"
        );
        assert!(
            sim.fake.get("v1", "services", NS, name).is_some(),
            "Service {name}"
        );
    }
    assert!(
        sim.fake
            .get("networking.k8s.io/v1", "ingresses", NS, "payplane-tls")
            .is_some()
    );
    assert!(
        sim.fake
            .get("apps/v1", "statefulsets", NS, "payplane-redis")
            .is_some()
    );
    let tls = sim
        .fake
        .get("v1", "secrets", NS, "payplane-tls")
        .ok_or_else(|| anyhow::anyhow!("no tls secret"))?;
    assert_eq!(tls["type"], "kubernetes.io/tls");
    let p = sim
        .get::<Platform>(NS, "payplane")
        .ok_or_else(|| anyhow::anyhow!("no platform"))?;
    assert_eq!(p["status"]["endpoint"], "https://payplane.localtest.me");
    assert!(
        p["status"]["components"]
            .as_array()
            .is_some_and(|c| c.len() >= 17)
    );
    // The payments Deployment is wired to its database and queue secrets, with a checksum.
    let d = sim
        .fake
        .get("apps/v1", "deployments", NS, "payplane-payments")
        .ok_or_else(|| anyhow::anyhow!("no deployment"))?;
    let env = d
        .pointer("/spec/template/spec/containers/0/env")
        .cloned()
        .unwrap_or(Value::Null)
        .to_string();
    assert!(
        env.contains("payplane-payments-db-credentials")
            && env.contains("payplane-payments-events-amqp"),
        "{env}"
    );
    assert!(
        d.pointer("/spec/template/metadata/annotations/payplane.dev~1secrets-checksum")
            .is_some()
    );
    sim.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_change_is_observed_with_a_new_generation() -> anyhow::Result<()> {
    let sim = converged_platform().await?;
    let (av, plural) = payplane_operator::sim::path_of::<AppService>();
    let before = sim
        .get::<AppService>(NS, "payplane-auth")
        .ok_or_else(|| anyhow::anyhow!("no app"))?;
    sim.fake.merge_patch(
        &av,
        &plural,
        NS,
        "payplane-auth",
        &json!({"metadata": {"labels": {"x": "y"}}}),
    )?;
    // A label is not a spec change: generation stays.
    let labelled = sim
        .get::<AppService>(NS, "payplane-auth")
        .ok_or_else(|| anyhow::anyhow!("no app"))?;
    assert_eq!(
        labelled["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    let (pav, pplural) = payplane_operator::sim::path_of::<Platform>();
    sim.fake.merge_patch(
        &pav,
        &pplural,
        NS,
        "payplane",
        &json!({"spec": {"version": "0.2.0"}}),
    )?;
    let ok = sim
        .wait_until(TIMEOUT, true, |s| {
            s.get::<Platform>(NS, "payplane")
                .is_some_and(|p| p["metadata"]["generation"] == 2 && is_ready(&p))
                && s.get::<AppService>(NS, "payplane-auth").is_some_and(|a| {
                    a["spec"]["image"] == "ghcr.io/payplane/auth:0.2.0"
                        && is_ready(&a)
                        && a["status"]["image"] == "ghcr.io/payplane/auth:0.2.0"
                })
        })
        .await;
    assert!(ok, "new version not rolled out: {}", dump(&sim));
    let app = sim
        .get::<AppService>(NS, "payplane-auth")
        .ok_or_else(|| anyhow::anyhow!("no app"))?;
    assert_eq!(
        app["metadata"]["generation"],
        before["metadata"]["generation"].as_i64().unwrap_or(0) + 1
    );
    assert_eq!(
        app["status"]["observedGeneration"],
        app["metadata"]["generation"]
    );
    assert_eq!(app["status"]["migration"]["phase"], "Succeeded");
    sim.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_migration_keeps_the_old_image_and_reports_degraded() -> anyhow::Result<()> {
    // A standalone AppService (a Platform would reassert the image of its own apps).
    let sim2 = Sim::start(Externals::simulated()).await?;
    let (av, plural) = payplane_operator::sim::path_of::<AppService>();
    standalone_app(&sim2)?;
    assert!(
        sim2.wait_until(TIMEOUT, true, |s| s
            .get::<AppService>(NS, "web")
            .is_some_and(|a| is_ready(&a)))
            .await
    );
    sim2.fake.merge_patch(
        &av,
        &plural,
        NS,
        "web",
        &json!({"spec": {"image": "web:2"}}),
    )?;
    // Wait for the migration Job of the new image, then fail it.
    let ok = sim2
        .wait_until(TIMEOUT, false, |s| {
            s.fake.list("batch/v1", "jobs", Some(NS)).iter().any(|j| {
                j.pointer("/spec/template/spec/containers/0/image") == Some(&json!("web:2"))
                    && j.pointer("/status").is_none()
            })
        })
        .await;
    assert!(ok, "no migration job for web:2");
    for j in sim2.fake.list("batch/v1", "jobs", Some(NS)) {
        if j.pointer("/spec/template/spec/containers/0/image") == Some(&json!("web:2")) {
            sim2.fake
                .fail_job(NS, j["metadata"]["name"].as_str().unwrap_or_default())?;
        }
    }
    let ok = sim2
        .wait_until(TIMEOUT, false, |s| {
            s.get::<AppService>(NS, "web").is_some_and(|a| {
                condition(&a, "Degraded")
                    .is_some_and(|c| c["status"] == "True" && c["reason"] == "MigrationFailed")
            })
        })
        .await;
    assert!(ok, "no Degraded/MigrationFailed");
    let d = sim2
        .fake
        .get("apps/v1", "deployments", NS, "web")
        .ok_or_else(|| anyhow::anyhow!("no deployment"))?;
    assert_eq!(
        d.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!("web:1")),
        "old pods keep serving"
    );
    let app = sim2
        .get::<AppService>(NS, "web")
        .ok_or_else(|| anyhow::anyhow!("no app"))?;
    assert_eq!(app["status"]["image"], "web:1");
    assert_eq!(app["status"]["migration"]["phase"], "Failed");
    assert_eq!(
        condition(&app, "Ready").map(|c| c["reason"].clone()),
        Some(json!("MigrationFailed"))
    );
    sim2.stop().await;
    Ok(())
}

fn standalone_app(sim: &Sim) -> anyhow::Result<()> {
    sim.create(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "web-env", "namespace": NS},
        "data": {"token": "c2VjcmV0"}
    }))?;
    sim.create(json!({
        "apiVersion": "payplane.dev/v1alpha1", "kind": "AppService",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"image": "web:1", "port": 3000, "migration": {"args": ["migrate"]},
                 "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-env", "key": "token"}}}]}
    }))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_secret_rolls_the_pods() -> anyhow::Result<()> {
    let sim = Sim::start(Externals::simulated()).await?;
    standalone_app(&sim)?;
    assert!(
        sim.wait_until(TIMEOUT, true, |s| s
            .get::<AppService>(NS, "web")
            .is_some_and(|a| is_ready(&a)))
            .await
    );
    let checksum = |s: &Sim| {
        s.fake
            .get("apps/v1", "deployments", NS, "web")
            .and_then(|d| {
                d.pointer("/spec/template/metadata/annotations/payplane.dev~1secrets-checksum")
                    .cloned()
            })
    };
    let before = checksum(&sim);
    assert!(before.is_some());
    sim.fake.merge_patch(
        "v1",
        "secrets",
        NS,
        "web-env",
        &json!({"data": {"token": "b3RoZXI="}}),
    )?;
    assert!(
        sim.wait_until(TIMEOUT, false, |s| checksum(s) != before)
            .await,
        "checksum did not change"
    );
    sim.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reference_sets_ready_false_with_the_reason() -> anyhow::Result<()> {
    let sim = Sim::start(Externals::simulated()).await?;
    sim.create(json!({
        "apiVersion": "payplane.dev/v1alpha1", "kind": "AppService",
        "metadata": {"name": "orphan", "namespace": NS},
        "spec": {"image": "orphan:1", "database": {"ref": "no-such-db"}}
    }))?;
    sim.create(json!({
        "apiVersion": "payplane.dev/v1alpha1", "kind": "Database",
        "metadata": {"name": "lost", "namespace": NS},
        "spec": {"clusterRef": {"name": "no-such-cluster"}, "databaseName": "lost_db", "owner": "lost"}
    }))?;
    let ok = sim
        .wait_until(TIMEOUT, true, |s| {
            let app = s
                .get::<AppService>(NS, "orphan")
                .and_then(|a| condition(&a, "Ready"));
            let db = s
                .get::<Database>(NS, "lost")
                .and_then(|d| condition(&d, "Ready"));
            app.is_some_and(|c| {
                c["status"] == "False"
                    && c["reason"] == "DatabaseNotFound"
                    && c["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("no-such-db"))
            }) && db.is_some_and(|c| c["status"] == "False" && c["reason"] == "ClusterNotFound")
        })
        .await;
    assert!(ok, "no Ready=False reason");
    assert!(
        sim.fake
            .get("apps/v1", "deployments", NS, "orphan")
            .is_none(),
        "nothing rolls out"
    );
    sim.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_controllers_do_not_hot_loop() -> anyhow::Result<()> {
    let sim = converged_platform().await?;
    // Let the last status writes and their watch events drain.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = sim.ctx.metrics.total_reconciles();
    let rv = sim.fake.resource_version();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = sim.ctx.metrics.total_reconciles();
    assert!(
        after - before <= 2,
        "{} reconciles while idle",
        after - before
    );
    assert_eq!(
        sim.fake.resource_version(),
        rv,
        "idle controllers wrote objects"
    );
    sim.stop().await;
    Ok(())
}
