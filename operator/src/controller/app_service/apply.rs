//! `apply` of an `AppService`, the part that talks to the API server: resolves its Database,
//! Queues and Secrets, reads the running Deployment and the migration Job, and applies the
//! children (I/O: Kubernetes API).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::ApiResource;

use super::super::{Ctx, Result, apply_children, get, ids, prune};
use super::status::{Blocked, job_phase, migrates};
use super::{build, validate};
use crate::conditions::is_ready;
use crate::crd::app_service::MigrationPhase;
use crate::crd::{AppService, Database, Queue};
use crate::meta::resources;
use crate::meta::{Child, sha256_hex};

/// The kinds of an AppService's children, which `prune` looks through; public for
/// `payplane plan`.
pub fn kinds() -> Vec<ApiResource> {
    let mut kinds = resources! {
        ServiceAccount, ConfigMap, Deployment, Job,
        Service, PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy
    };
    kinds.push(build::service_monitor_resource());
    kinds
}

/// Resolves the Database, Queues and Secrets; the first missing or unready one blocks.
/// Public for `payplane plan`.
pub async fn resolve(
    app: &AppService,
    ctx: &Ctx,
    ns: &str,
) -> Result<std::result::Result<build::Resolved, Blocked>> {
    let mut resolved = build::Resolved {
        service_monitor: ctx.service_monitor,
        ..build::Resolved::default()
    };
    let mut wired = Vec::new();
    if let Some(r) = &app.spec.database {
        let db = get::<Database>(&ctx.client, ns, &r.ref_).await?;
        match db {
            None => {
                return Ok(Err(Blocked::missing(
                    "DatabaseNotFound",
                    "Database",
                    &r.ref_,
                )));
            }
            Some(db) if !is_ready(&db) => {
                return Ok(Err(Blocked::waiting("WaitingForDatabase", &r.ref_)));
            }
            Some(db) => {
                let secret = db.status.and_then(|s| s.secret_name).unwrap_or_default();
                wired.push(secret.clone());
                resolved.database_secret = Some(secret);
            }
        }
    }
    for r in &app.spec.queues {
        match get::<Queue>(&ctx.client, ns, &r.ref_).await? {
            None => return Ok(Err(Blocked::missing("QueueNotFound", "Queue", &r.ref_))),
            Some(q) if !is_ready(&q) => {
                return Ok(Err(Blocked::waiting("WaitingForQueue", &r.ref_)));
            }
            Some(q) => {
                let secret = q.status.and_then(|s| s.secret_name).unwrap_or_default();
                wired.push(secret.clone());
                resolved.queue_secret.get_or_insert(secret);
            }
        }
    }
    wired.extend(validate::referenced_secrets(app));
    let mut checksum_input = Vec::new();
    for name in wired.iter().collect::<BTreeSet<_>>() {
        let Some(secret) = get::<Secret>(&ctx.client, ns, name).await? else {
            return Ok(Err(Blocked::waiting("WaitingForSecret", name)));
        };
        if !app.spec.reloads.contains(name) {
            let data: BTreeMap<String, Vec<u8>> = (secret.data.unwrap_or_default().into_iter())
                .map(|(k, v)| (k, v.0))
                .collect();
            checksum_input.push((name.clone(), data));
        }
    }
    let checksum_input = serde_json::to_string(&checksum_input).unwrap_or_default();
    resolved.secrets_checksum = sha256_hex(checksum_input.as_bytes());
    Ok(Ok(resolved))
}

/// The image the Deployment serves now and, when a migration must run first (a new image),
/// the phase of its Job `job` (`Running` until the Job exists).
pub async fn running(
    app: &AppService,
    ctx: &Ctx,
    ns: &str,
    job: Option<&str>,
) -> Result<(Option<String>, Option<MigrationPhase>)> {
    let existing = get::<Deployment>(&ctx.client, ns, &app.name_any()).await?;
    let serving = (existing.as_ref())
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    if !migrates(app, serving.as_deref()) {
        return Ok((serving, None));
    }
    let job = match job {
        Some(j) => get::<Job>(&ctx.client, ns, j).await?,
        None => None,
    };
    let phase = job.map_or(MigrationPhase::Running, |j| {
        job_phase(&serde_json::to_value(j).unwrap_or_default())
    });
    Ok((serving, Some(phase)))
}

/// Applies the children and prunes the rest, keeping the migration Job `job`.
pub async fn apply(
    ctx: &Ctx,
    (ns, uid): (&str, &str),
    children: &[Child],
    job: Option<&str>,
) -> Result<Vec<DynamicObject>> {
    let applied = apply_children(&ctx.client, ns, children).await?;
    let mut keep = ids(children);
    keep.extend(job.map(|j| format!("Job/{j}")));
    prune(&ctx.client, ns, uid, &kinds(), &keep).await?;
    Ok(applied)
}
