//! `payplane plan` on a real control plane (issue 14): against the converged example Platform
//! it prints nothing and exits 0; after an edit of one replica count it prints that change —
//! on the Platform, and as the operator carries it into the gateway's AppService and
//! Deployment — and exits 2; an edit that drops the built-in Redis lists its three objects as
//! deletions; a new version shows the new images and migration Jobs. Once in-process (the library function the binary calls) and once through the
//! built binary with `--kubeconfig` and `--namespace`. The plan changes nothing.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use payplane_cli::plan::{self, Change, FieldChange, Plan};
use payplane_operator::crd::Platform;
use payplane_operator::testing::{
    EXAMPLE_PLATFORM, Operator, TIMEOUT, control_plane, converged_example,
};
use serde_json::{Value, json};

fn example() -> Result<Value> {
    Ok(plan::platform_document(
        "examples/platform.yaml",
        EXAMPLE_PLATFORM,
    )?)
}

/// Runs the built binary on `doc` (written to a file) and returns (status, stdout, stderr).
async fn binary(op: &Operator, doc: &Value, tag: &str) -> Result<(i32, String, String)> {
    let dir = std::env::temp_dir().join(format!("payplane-plan-{}-{tag}", op.ns()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("platform.yaml");
    // JSON is YAML: the file holds the Platform as the user edited it.
    std::fs::write(&file, serde_json::to_string_pretty(doc)?)?;
    let kubeconfig = control_plane().await?.kubeconfig_path().to_owned();
    let ns = op.ns().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_payplane"))
            .args(["plan", "-f"])
            .arg(&file)
            .args(["--namespace", &ns, "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
    })
    .await??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        output.status.code().context("killed by a signal")?,
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

fn replicas(path: &str, old: i64, new: i64) -> FieldChange {
    FieldChange {
        path: path.into(),
        old: Some(json!(old)),
        new: Some(json!(new)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_is_empty_when_converged_and_shows_exactly_an_edited_replica_count() -> Result<()> {
    let op = converged_example("plan").await?;
    let before = op
        .get::<Platform>("payplane")
        .await?
        .context("the Platform")?;

    // Converged: nothing to do, nothing said.
    let doc = example()?;
    let converged_plan = plan::plan(&op.admin, doc.clone(), op.ns(), None).await?;
    ensure!(
        converged_plan == Plan::default(),
        "a converged Platform planned changes:\n{}notes: {:?}",
        converged_plan.text(),
        converged_plan.notes
    );
    ensure!(converged_plan.text().is_empty() && converged_plan.exit_code() == 0);
    let (code, stdout, stderr) = binary(&op, &doc, "same").await?;
    ensure!(
        (code, stdout.as_str(), stderr.as_str()) == (0, "", ""),
        "binary on the converged Platform: exit {code}\n{stdout}{stderr}"
    );

    // One replica count edited: that change, where the operator carries it, and nothing else.
    let mut edited = doc.clone();
    edited["spec"]["components"]["gateway"]["replicas"] = json!(3);
    let p = plan::plan(&op.admin, edited.clone(), op.ns(), None).await?;
    let expected = vec![
        Change::Update {
            id: "Platform/payplane".into(),
            fields: vec![replicas("spec.components.gateway.replicas", 2, 3)],
        },
        Change::Update {
            id: "AppService/payplane-gateway".into(),
            fields: vec![replicas("spec.replicas", 2, 3)],
        },
        Change::Update {
            id: "Deployment/payplane-gateway".into(),
            fields: vec![replicas("spec.replicas", 2, 3)],
        },
    ];
    ensure!(
        p.changes == expected && p.notes.is_empty(),
        "plan after editing the gateway's replicas:\n{}notes: {:?}",
        p.text(),
        p.notes
    );
    ensure!(p.exit_code() == 2);
    let text = "~ change Platform/payplane\n    spec.components.gateway.replicas: 2 → 3\n\
                ~ change AppService/payplane-gateway\n    spec.replicas: 2 → 3\n\
                ~ change Deployment/payplane-gateway\n    spec.replicas: 2 → 3\n";
    ensure!(p.text() == text, "rendered:\n{}", p.text());
    let (code, stdout, stderr) = binary(&op, &edited, "replicas").await?;
    ensure!(
        code == 2 && stdout == text && stderr.is_empty(),
        "binary after the edit: exit {code}\n{stdout}{stderr}"
    );

    // Dropping the built-in Redis: its Secret, Service and StatefulSet are owned children the
    // build no longer makes; the AppServices now wait for a Secret that does not exist yet.
    let mut external = doc.clone();
    external["spec"]["cache"] = json!({"provider": "external", "external": {"urlSecretRef": {"name": "my-redis", "key": "url"}}});
    let p = plan::plan(&op.admin, external, op.ns(), None).await?;
    let deleted: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Delete { .. }))
        .map(Change::id)
        .collect();
    ensure!(
        deleted
            == [
                "Secret/payplane-redis",
                "Service/payplane-redis",
                "StatefulSet/payplane-redis",
                // The built-in Redis's access policy goes with it.
                "NetworkPolicy/payplane-redis-access"
            ],
        "deletions: {deleted:?}\n{}",
        p.text()
    );
    ensure!(
        p.changes
            .iter()
            .any(|c| c.id() == "AppService/payplane-gateway"),
        "the gateway's cache reference changes:\n{}",
        p.text()
    );
    ensure!(
        p.notes.len() == 5
            && p.notes
                .iter()
                .all(|n| n.contains("WaitingForSecret my-redis")),
        "the five AppServices that use the cache wait for it: {:?}",
        p.notes
    );

    // A new version: each AppService's image, each Deployment's container image, and for the
    // four services with a database a new migration Job replacing the old one.
    let mut upgraded = doc.clone();
    upgraded["spec"]["version"] = json!("0.2.0");
    let p = plan::plan(&op.admin, upgraded, op.ns(), None).await?;
    let of = |prefix: &'static str| -> Vec<&Change> {
        p.changes
            .iter()
            .filter(|c| c.id().starts_with(prefix))
            .collect()
    };
    let image_only = |c: &Change| match c {
        Change::Update { fields, .. } => {
            fields.len() == 1 && fields[0].path == "spec.template.spec.containers[name=app].image"
        }
        _ => false,
    };
    ensure!(
        of("Deployment/").len() == 6 && of("Deployment/").into_iter().all(image_only),
        "{}",
        p.text()
    );
    let jobs = of("Job/");
    ensure!(
        jobs.iter()
            .filter(|c| matches!(c, Change::Create { .. }))
            .count()
            == 4
            && jobs
                .iter()
                .filter(|c| matches!(c, Change::Delete { .. }))
                .count()
                == 4,
        "{}",
        p.text()
    );

    // A plan is a dry run: nothing was written.
    let after = op
        .get::<Platform>("payplane")
        .await?
        .context("the Platform")?;
    ensure!(before.metadata.resource_version == after.metadata.resource_version);
    let gateway = op
        .get::<Deployment>("payplane-gateway")
        .await?
        .context("the gateway Deployment")?;
    ensure!(gateway.spec.and_then(|s| s.replicas) == Some(2));
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_not_yet_applied_plans_every_child_as_a_creation_and_writes_nothing()
-> Result<()> {
    let cp = control_plane().await?;
    let ns = cp.namespace("plan-new").await?;
    let admin = cp.admin_client()?;
    let p = plan::plan(&admin, example()?, ns.name(), None).await?;
    let ids: Vec<&str> = p.changes.iter().map(Change::id).collect();
    ensure!(
        p.changes.iter().all(|c| matches!(c, Change::Create { .. })),
        "{}",
        p.text()
    );
    for id in [
        "Platform/payplane",
        "AppService/payplane-gateway",
        "AppService/payplane-console",
        "PostgresCluster/payplane-pg",
        "Queue/payplane-payments-events",
        "StatefulSet/payplane-redis",
        "Secret/payplane-jwt",
        "Secret/payplane-service-tokens",
    ] {
        ensure!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    ensure!(p.exit_code() == 2 && p.notes.is_empty());
    let platforms: kube::Api<Platform> = kube::Api::namespaced(admin, ns.name());
    ensure!(
        platforms.get_opt("payplane").await?.is_none(),
        "the plan created the Platform"
    );
    ns.delete(TIMEOUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_file_is_exit_one_with_a_one_line_message() -> Result<()> {
    let output = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_payplane"))
            .args(["plan", "-f", "/nonexistent/platform.yaml"])
            .output()
    })
    .await??;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(output.status.code() == Some(1), "exit {:?}", output.status);
    ensure!(output.stdout.is_empty());
    ensure!(
        stderr.lines().count() == 1 && stderr.starts_with("payplane plan: reading /nonexistent"),
        "{stderr}"
    );
    Ok(())
}
