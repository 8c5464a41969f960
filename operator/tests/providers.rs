//! Providers `cloudnative-pg` and `rabbitmq-cluster-operator` on a real control plane, with
//! CloudNativePG's and the RabbitMQ cluster operator's real CRDs (from their Go modules), so
//! the objects the operator writes are validated by those projects' schemas. Neither project's
//! controller runs here: the test plays them, as they would, by creating the Secrets they
//! create and patching their objects' status subresource; the operator under test (as the
//! chart's ServiceAccount) reads that status into ours. PostgreSQL and RabbitMQ behind them
//! are simulated, as in `scenarios.rs`.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use anyhow::{Context as _, Result, bail, ensure};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use payplane_control_plane::{CLOUDNATIVE_PG, GATEWAY_API, RABBITMQ_CLUSTER_OPERATOR, eventually};
use payplane_operator::controller::message_broker::rabbitmq_operator;
use payplane_operator::controller::postgres_cluster::cloudnative_pg;
use payplane_operator::crd::{MessageBroker, Platform, PostgresCluster};
use payplane_operator::external::Externals;
use payplane_operator::testing::{
    Operator, TIMEOUT, all_ready, condition, install_third_party_crds, not_ready_because, ready,
    repo,
};
use serde_json::{Value, json};

/// The production example, with the one change a test cluster needs: a self-signed
/// certificate, since cert-manager is not installed here.
fn prod_platform() -> Result<Value> {
    let yaml = std::fs::read_to_string(repo().join("examples/platform-prod.yaml"))?;
    let mut platform: Value =
        serde_saphyr::from_str(&yaml).map_err(|e| anyhow::anyhow!("platform-prod.yaml: {e}"))?;
    ensure!(platform["spec"]["postgres"]["provider"] == "cloudnative-pg");
    ensure!(platform["spec"]["broker"]["provider"] == "rabbitmq-cluster-operator");
    platform["spec"]["tls"] = json!({"issuer": "selfSigned"});
    Ok(platform)
}

fn api(op: &Operator, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(op.admin.clone(), op.ns(), resource)
}

/// Patches the status subresource of `name` as that project's operator would, refusing
/// anything its schema does not know.
async fn set_status(
    op: &Operator,
    resource: &ApiResource,
    name: &str,
    status: Value,
) -> Result<()> {
    api(op, resource)
        .patch_status(
            name,
            &PatchParams::default().validation_strict(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .with_context(|| format!("patching the status of {} {name}", resource.kind))?;
    Ok(())
}

/// Waits until the provider's object exists and returns it as stored.
async fn provider_object(op: &Operator, resource: &ApiResource, name: &str) -> Result<Value> {
    let api = api(op, resource);
    let stored = eventually(TIMEOUT, &format!("{} {name}", resource.kind), || {
        let api = api.clone();
        async move {
            Ok(match api.get_opt(name).await? {
                Some(o) => Ok(o),
                None => Err("absent".to_owned()),
            })
        }
    })
    .await?;
    Ok(serde_json::to_value(stored)?)
}

/// `expected` is contained in `actual`: the server kept every field the operator wrote, so
/// none was unknown to that project's schema (unknown fields are dropped on the way in).
fn contained(expected: &Value, actual: &Value, path: &str) -> Result<()> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().try_for_each(|(k, v)| {
            let got = a
                .get(k)
                .with_context(|| format!("{path}.{k} was dropped by the server"))?;
            contained(v, got, &format!("{path}.{k}"))
        }),
        _ if expected == actual => Ok(()),
        _ => bail!("{path}: wrote {expected}, stored {actual}"),
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// CloudNativePG's status of a Cluster in `phase` with `ready` of 3 instances ready.
fn cnpg_status(phase: &str, ready: i32) -> Value {
    let healthy = phase == cloudnative_pg::HEALTHY;
    json!({
        "phase": phase,
        "instances": 3,
        "readyInstances": ready,
        "currentPrimary": "payplane-pg-1",
        "targetPrimary": "payplane-pg-1",
        "writeService": "payplane-pg-rw",
        "readService": "payplane-pg-r",
        "conditions": [{
            "type": "Ready",
            "status": if healthy { "True" } else { "False" },
            "reason": if healthy { "ClusterIsReady" } else { "ClusterIsNotReady" },
            "message": if healthy { "Cluster is Ready" } else { "Cluster Is Not Ready" },
            "lastTransitionTime": now(),
        }],
    })
}

/// The Secrets CloudNativePG creates for Cluster `payplane-pg` with `enableSuperuserAccess`.
async fn cnpg_secrets(op: &Operator) -> Result<()> {
    for (name, user, db) in [
        ("payplane-pg-superuser", "postgres", "*"),
        ("payplane-pg-app", "app", "app"),
    ] {
        op.apply(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": {"cnpg.io/cluster": "payplane-pg"}},
            "type": "kubernetes.io/basic-auth",
            "stringData": {"username": user, "user": user, "password": format!("{user}-pw"),
                "host": "payplane-pg-rw", "port": "5432", "dbname": db},
        }))
        .await?;
    }
    Ok(())
}

/// The cluster operator's default-user Secret of RabbitmqCluster `payplane-rmq` in `ns`.
async fn rabbitmq_secret(op: &Operator) -> Result<()> {
    let host = format!("payplane-rmq.{}.svc", op.ns());
    let (user, password) = (
        "default_user_AbCdEf0123456789-_",
        "Zx9_Yw8-Vu7Ts6Rq5Po4Nm3L",
    );
    op.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "payplane-rmq-default-user"},
        "type": "Opaque",
        "stringData": {"username": user, "password": password, "host": host, "port": "5672",
            "provider": "rabbitmq", "type": "rabbitmq",
            "default_user.conf": format!("default_user = {user}\ndefault_pass = {password}\n"),
            "connection_string": format!("amqp://{user}:{password}@{host}:5672/")},
    }))
    .await?;
    Ok(())
}

/// The cluster operator's status of a RabbitmqCluster at `generation`, all replicas ready or not.
fn rabbitmq_status(op: &Operator, generation: i64, replicas_ready: bool) -> Value {
    let cond = |type_: &str, ok: bool, reason: &str| {
        json!({"type": type_, "status": if ok { "True" } else { "False" }, "reason": reason,
               "message": if ok { "" } else { "1/3 Pods ready" }, "lastTransitionTime": now()})
    };
    json!({
        "observedGeneration": generation,
        "conditions": [
            cond("AllReplicasReady", replicas_ready, if replicas_ready { "AllPodsAreReady" } else { "NotAllPodsReady" }),
            cond("ClusterAvailable", true, "AtLeastOneEndpointAvailable"),
            cond("NoWarnings", true, "NoWarnings"),
            cond("ReconcileSuccess", true, "Success"),
        ],
        "defaultUser": {
            "secretReference": {"name": "payplane-rmq-default-user", "namespace": op.ns(),
                "keys": {"username": "username", "password": "password"}},
            "serviceReference": {"name": "payplane-rmq", "namespace": op.ns()},
        },
        "binding": {"name": "payplane-rmq-default-user"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudnative_pg_and_rabbitmq_operator_platform_converges() -> Result<()> {
    install_third_party_crds(&[CLOUDNATIVE_PG, RABBITMQ_CLUSTER_OPERATOR, GATEWAY_API]).await?;
    let op = Operator::start("providers", Externals::simulated()).await?;
    // What the example's comment asks to create first.
    op.apply(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "psp-webhook"},
        "stringData": {"secrets": "whsec-test"}}),
    )
    .await?;
    op.apply(prod_platform()?).await?;
    let (cnpg, rmq) = (
        cloudnative_pg::PROVIDER.resource(),
        rabbitmq_operator::PROVIDER.resource(),
    );
    // Their operators' status reports, as the test plays them.
    let set_pg = |status| set_status(&op, &cnpg, "payplane-pg", status);
    let set_rmq = |status| set_status(&op, &rmq, "payplane-rmq", status);

    // The operator's objects were accepted by CloudNativePG's and the cluster operator's own
    // schemas, every field kept: what the builders make from the PostgresCluster and
    // MessageBroker the Platform made.
    let cluster = provider_object(&op, &cnpg, "payplane-pg").await?;
    let pg = op.existing::<PostgresCluster>("payplane-pg").await?;
    let built = cloudnative_pg::build(&pg)?;
    contained(&built[0].object["spec"], &cluster["spec"], "Cluster.spec")?;
    ensure!(cluster["spec"]["instances"] == 3, "{}", cluster["spec"]);
    ensure!(cluster["spec"]["storage"]["size"] == "20Gi");
    ensure!(cluster["spec"]["enableSuperuserAccess"] == true);
    ensure!(cluster["spec"]["resources"]["requests"]["memory"] == "2Gi");
    let rabbit = provider_object(&op, &rmq, "payplane-rmq").await?;
    let mb = op.existing::<MessageBroker>("payplane-rmq").await?;
    let built = rabbitmq_operator::build(&mb)?;
    contained(
        &built[0].object["spec"],
        &rabbit["spec"],
        "RabbitmqCluster.spec",
    )?;
    ensure!(rabbit["spec"]["replicas"] == 3, "{}", rabbit["spec"]);
    ensure!(rabbit["spec"]["persistence"]["storage"] == "10Gi");

    // Before their operators report anything, ours say what they wait for.
    op.wait_for::<PostgresCluster>(
        "PostgresCluster waits for CloudNativePG",
        "payplane-pg",
        not_ready_because("ProviderNotReady", &["no status yet"]),
    )
    .await?;

    // CloudNativePG sets up the primary, then reports the cluster healthy with its Secrets.
    set_pg(cnpg_status("Setting up primary", 0)).await?;
    let phase = not_ready_because("", &["Setting up primary, 0/3 instances ready"]);
    op.wait_for::<PostgresCluster>("PostgresCluster mirrors the phase", "payplane-pg", phase)
        .await?;
    cnpg_secrets(&op).await?;
    set_pg(cnpg_status(cloudnative_pg::HEALTHY, 3)).await?;
    let pg = op
        .wait_for::<PostgresCluster>("PostgresCluster Ready", "payplane-pg", ready)
        .await?;
    let status = pg.status.context("status")?;
    let endpoint = status.endpoint.context("endpoint")?;
    ensure!(endpoint.host == format!("payplane-pg-rw.{}.svc", op.ns()) && endpoint.port == 5432);
    ensure!(status.superuser_secret_name.as_deref() == Some("payplane-pg-superuser"));
    ensure!(status.ssl_mode.as_deref() == Some("require"));
    ensure!(
        status.ready_instances == Some(3)
            && status.current_primary.as_deref() == Some("payplane-pg-1")
    );

    // The cluster operator brings up the nodes and publishes its default user.
    rabbitmq_secret(&op).await?;
    let generation = rabbit["metadata"]["generation"].as_i64().unwrap_or(1);
    set_rmq(rabbitmq_status(&op, generation, false)).await?;
    let nodes = not_ready_because("", &["AllReplicasReady is False: 1/3 Pods ready"]);
    op.wait_for::<MessageBroker>("MessageBroker waits for the nodes", "payplane-rmq", nodes)
        .await?;
    set_rmq(rabbitmq_status(&op, generation, true)).await?;
    let mb = op
        .wait_for::<MessageBroker>("MessageBroker Ready", "payplane-rmq", ready)
        .await?;
    let status = mb.status.context("status")?;
    ensure!(status.admin_secret_name.as_deref() == Some("payplane-rmq-default-user"));
    ensure!(
        status.management_endpoint.as_deref()
            == Some(format!("http://payplane-rmq.{}.svc:15672", op.ns()).as_str())
    );

    // Everything converges on top: Databases through the superuser Secret, Queues through the
    // default user, and the Platform.
    all_ready(&op).await?;
    let uri = op
        .secret_text("payplane-payments-db-credentials", "uri")
        .await?;
    ensure!(
        uri.contains(&format!(
            "@payplane-pg-rw.{}.svc:5432/payments_db?sslmode=require",
            op.ns()
        )),
        "{uri}"
    );
    let amqp = op
        .secret_text("payplane-payments-events-amqp", "uri")
        .await?;
    ensure!(
        amqp.contains(&format!("@payplane-rmq.{}.svc:5672", op.ns())),
        "{amqp}"
    );

    // A failover, as CloudNativePG reports it, takes the PostgresCluster and the Platform out
    // of Ready until the cluster is healthy again.
    let mut failing = cnpg_status("Failing over", 2);
    failing["phaseReason"] = json!("Failing over from payplane-pg-1 to payplane-pg-2");
    set_pg(failing).await?;
    let failover = not_ready_because("", &["PostgresCluster payplane-pg"]);
    op.wait_for::<Platform>(
        "Platform not Ready during the failover",
        "payplane",
        failover,
    )
    .await?;
    let pg = op.existing::<PostgresCluster>("payplane-pg").await?;
    let c = condition(&pg, "Ready").context("Ready")?;
    ensure!(
        c.reason == "ProviderNotReady" && c.message.contains("Failing over"),
        "{c:?}"
    );
    let mut healthy = cnpg_status(cloudnative_pg::HEALTHY, 3);
    healthy["currentPrimary"] = json!("payplane-pg-2");
    set_pg(healthy).await?;
    op.wait_for::<Platform>("Platform Ready after the failover", "payplane", ready)
        .await?;
    let pg = op.existing::<PostgresCluster>("payplane-pg").await?;
    ensure!(pg.status.and_then(|s| s.current_primary).as_deref() == Some("payplane-pg-2"));
    op.stop().await
}
