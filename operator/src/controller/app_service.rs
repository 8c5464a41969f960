//! Reconciles `AppService`: waits for its Database, Queues and Secrets (naming the blocker),
//! runs the migration Job with the new image before rolling the Deployment, keeps the old
//! pods when the migration fails, and rolls pods when a wired Secret changes (I/O:
//! Kubernetes API).

pub mod build;

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use serde_json::{Value, json};

use super::{Ctx, Result, apply_children, ids, invalid, namespace, prune, waiting, write_status};
use crate::conditions::{Cond, is_ready};
use crate::crd::app_service::MigrationPhase;
use crate::crd::{AppService, Database, Queue};
use crate::meta::{Owner, sha256_hex};

const KIND: &str = "AppService";
/// Label selector of the Secrets whose changes the controller watches.
pub const WATCHED_SECRETS: &str = "app.kubernetes.io/part-of=payplane";

/// Why the service cannot roll out yet.
pub struct Blocked {
    /// The condition reason.
    pub reason: &'static str,
    /// The condition message.
    pub message: String,
    /// Whether only a spec change can unblock it.
    pub invalid: bool,
}

/// Every Secret name the pods read, for waiting and for the rollout checksum.
fn referenced_secrets(app: &AppService) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(c) = &app.spec.cache {
        names.push(c.url_secret_ref.name.clone());
    }
    names.extend(app.spec.files.iter().map(|f| f.secret_name.clone()));
    for e in &app.spec.env {
        if let Some(r) = e
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
        {
            names.push(r.name.clone());
        }
    }
    names
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
        let db = Api::<Database>::namespaced(ctx.client.clone(), ns)
            .get_opt(&r.ref_)
            .await?;
        match db {
            None => {
                return Ok(Err(Blocked {
                    reason: "DatabaseNotFound",
                    message: format!("Database {} not found", r.ref_),
                    invalid: true,
                }));
            }
            Some(db) if !is_ready(&db) => {
                return Ok(Err(Blocked {
                    reason: "WaitingForDatabase",
                    message: format!("WaitingForDatabase {}", r.ref_),
                    invalid: false,
                }));
            }
            Some(db) => {
                let secret = db.status.and_then(|s| s.secret_name).unwrap_or_default();
                wired.push(secret.clone());
                resolved.database_secret = Some(secret);
            }
        }
    }
    for r in &app.spec.queues {
        let q = Api::<Queue>::namespaced(ctx.client.clone(), ns)
            .get_opt(&r.ref_)
            .await?;
        match q {
            None => {
                return Ok(Err(Blocked {
                    reason: "QueueNotFound",
                    message: format!("Queue {} not found", r.ref_),
                    invalid: true,
                }));
            }
            Some(q) if !is_ready(&q) => {
                return Ok(Err(Blocked {
                    reason: "WaitingForQueue",
                    message: format!("WaitingForQueue {}", r.ref_),
                    invalid: false,
                }));
            }
            Some(q) => {
                let secret = q.status.and_then(|s| s.secret_name).unwrap_or_default();
                wired.push(secret.clone());
                resolved.queue_secret.get_or_insert(secret);
            }
        }
    }
    wired.extend(referenced_secrets(app));
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut checksum_input = Vec::new();
    for name in wired.iter().collect::<BTreeSet<_>>() {
        let Some(secret) = secrets.get_opt(name).await? else {
            return Ok(Err(Blocked {
                reason: "WaitingForSecret",
                message: format!("WaitingForSecret {name}"),
                invalid: false,
            }));
        };
        if !app.spec.reloads.contains(name) {
            let data: std::collections::BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            checksum_input.push((name.clone(), data));
        }
    }
    resolved.secrets_checksum = sha256_hex(
        serde_json::to_string(&checksum_input)
            .unwrap_or_default()
            .as_bytes(),
    );
    Ok(Ok(resolved))
}

fn validate(app: &AppService) -> Option<String> {
    if app.spec.image.is_empty() {
        return Some("spec.image is empty".into());
    }
    if let Some(a) = &app.spec.autoscaling
        && a.min_replicas > a.max_replicas
    {
        return Some(format!(
            "autoscaling.minReplicas {} exceeds maxReplicas {}",
            a.min_replicas, a.max_replicas
        ));
    }
    None
}

fn job_phase(job: &Value) -> MigrationPhase {
    let conds = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = |t: &str| {
        conds
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    if has("Complete") {
        MigrationPhase::Succeeded
    } else if has("Failed") {
        MigrationPhase::Failed
    } else {
        MigrationPhase::Running
    }
}

/// Whether the Deployment runs `image` with every replica of its generation available.
fn deployment_available(d: &DynamicObject, image: &str) -> (bool, i64) {
    let status = d.data.get("status").cloned().unwrap_or(Value::Null);
    let ready = status
        .get("readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.get("observedGeneration").and_then(Value::as_i64);
    let want = d
        .data
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .or_else(|| status.get("replicas").and_then(Value::as_i64))
        .unwrap_or(1);
    let available = status
        .get("availableReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let updated = status
        .get("updatedReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let runs = d
        .data
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        == Some(image);
    (
        runs && observed == Some(generation) && available >= want && updated >= want,
        ready,
    )
}

#[expect(
    clippy::too_many_lines,
    reason = "reconcile steps still inline: the per-kind validate/build/apply/status pipeline (issue #17, open) splits it"
)]
async fn reconcile(app: Arc<AppService>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(app.as_ref())?;
    let name = app.name_any();
    let owner = Owner::of(app.as_ref())?;
    if let Some(msg) = validate(&app) {
        write_status(&ctx, app.as_ref(), &invalid("InvalidSpec", msg), json!({})).await?;
        return Ok(Action::await_change());
    }
    let mut resolved = match resolve(&app, &ctx, &ns).await? {
        Ok(r) => r,
        Err(b) => {
            let conds = if b.invalid {
                invalid(b.reason, b.message)
            } else {
                waiting(b.reason, b.message)
            };
            write_status(&ctx, app.as_ref(), &conds, json!({})).await?;
            return Ok(if b.invalid {
                Action::await_change()
            } else {
                Action::requeue(super::WAIT)
            });
        }
    };

    let existing = Api::<Deployment>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let serving = existing
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    let image = app.spec.image.clone();
    let mut migration: Option<MigrationPhase> = None;
    let job_name = build::migration_job_name(&app, &owner, &resolved);
    if app.spec.migration.is_some() && serving.as_deref() != Some(image.as_str()) {
        // The Job runs with the new image first; the Deployment keeps the old one meanwhile.
        resolved.run_migration = true;
        let job = match &job_name {
            Some(j) => {
                Api::<Job>::namespaced(ctx.client.clone(), &ns)
                    .get_opt(j)
                    .await?
            }
            None => None,
        };
        let phase = job.map_or(MigrationPhase::Running, |j| {
            job_phase(&serde_json::to_value(j).unwrap_or(Value::Null))
        });
        resolved.deploy_image = if phase == MigrationPhase::Succeeded {
            Some(image.clone())
        } else {
            serving.clone()
        };
        migration = Some(phase);
    } else {
        resolved.deploy_image = Some(image.clone());
    }

    let children = build::build(&app, &resolved)?;
    let applied = apply_children(&ctx.client, &ns, &children).await?;
    let mut keep = ids(&children);
    if let Some(j) = &job_name {
        keep.insert(format!("Job/{j}"));
    }
    prune(&ctx.client, &ns, owner.uid(), &kinds(), &keep).await?;

    let deployment = applied
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "Deployment"));
    let (available, ready_replicas) =
        deployment.map_or((false, 0), |d| deployment_available(d, &image));
    let serving_now = deployment
        .and_then(|d| d.data.pointer("/spec/template/spec/containers/0/image"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Once the new image serves, its migration is reported as succeeded.
    let shown = migration.or_else(|| {
        app.spec
            .migration
            .as_ref()
            .map(|_| MigrationPhase::Succeeded)
    });
    let migration_status = shown.map(|phase| json!({"image": image, "phase": phase}));
    let extra = json!({
        "image": serving_now,
        "readyReplicas": ready_replicas,
        "migration": migration_status,
    });
    let (conds, requeue) = match migration {
        Some(MigrationPhase::Failed) => {
            let job = job_name.clone().unwrap_or_default();
            let msg = format!(
                "migration Job {job} failed; {} keeps serving",
                serving.as_deref().unwrap_or("nothing")
            );
            (
                vec![
                    Cond::no("Ready", "MigrationFailed", msg.clone()),
                    Cond::no("Progressing", "MigrationFailed", msg.clone()),
                    Cond::yes("Degraded", "MigrationFailed", msg),
                ],
                super::RESYNC,
            )
        }
        Some(MigrationPhase::Running | MigrationPhase::Pending) => {
            let msg = format!(
                "migration Job {} runs with {image}",
                job_name.clone().unwrap_or_default()
            );
            (
                vec![
                    Cond::no("Ready", "MigrationRunning", msg.clone()),
                    Cond::yes("Progressing", "MigrationRunning", msg),
                    Cond::no("Degraded", "AsExpected", ""),
                ],
                super::WAIT,
            )
        }
        _ if available => (
            vec![
                Cond::yes(
                    "Ready",
                    "Available",
                    format!("{ready_replicas} replicas of {image} available"),
                ),
                Cond::no("Progressing", "Available", ""),
                Cond::no("Degraded", "AsExpected", ""),
            ],
            super::RESYNC,
        ),
        _ => (
            vec![
                Cond::no(
                    "Ready",
                    "RollingOut",
                    format!("Deployment {name} is rolling out {image}"),
                ),
                Cond::yes(
                    "Progressing",
                    "RollingOut",
                    format!("Deployment {name} is rolling out {image}"),
                ),
                Cond::no("Degraded", "AsExpected", ""),
            ],
            super::WAIT,
        ),
    };
    write_status(&ctx, app.as_ref(), &conds, extra).await?;
    Ok(Action::requeue(requeue))
}

/// The kinds of an AppService's children, which [`prune`] looks through; public for
/// `payplane plan`.
pub fn kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<Job>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<PodDisruptionBudget>(&()),
        ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        ApiResource::erase::<NetworkPolicy>(&()),
        build::service_monitor_resource(),
    ]
}

/// Runs the AppService controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<AppService>(), watcher::Config::default());
    let (s1, s2, s3) = (ctrl.store(), ctrl.store(), ctrl.store());
    let ctrl = ctrl
        .owns(ctx.watched::<Deployment>(), super::managed())
        .owns(ctx.watched::<Job>(), super::managed())
        .watches(
            ctx.watched::<Database>(),
            watcher::Config::default(),
            move |db| {
                let (ns, name) = (db.namespace(), db.name_any());
                s1.state()
                    .into_iter()
                    .filter(|a| {
                        a.namespace() == ns
                            && a.spec.database.as_ref().is_some_and(|d| d.ref_ == name)
                    })
                    .map(|a| ObjectRef::from_obj(a.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            ctx.watched::<Queue>(),
            watcher::Config::default(),
            move |q| {
                let (ns, name) = (q.namespace(), q.name_any());
                s2.state()
                    .into_iter()
                    .filter(|a| a.namespace() == ns && a.spec.queues.iter().any(|r| r.ref_ == name))
                    .map(|a| ObjectRef::from_obj(a.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        // Any Secret an app reads (its own or the user's) can change its rollout checksum.
        // Only Secrets labelled `app.kubernetes.io/part-of=payplane` are watched (every one
        // the operator makes, and the user's that should roll pods at once); a change to
        // another one is picked up by the periodic resync.
        .watches(
            ctx.watched::<Secret>(),
            watcher::Config::default().labels(WATCHED_SECRETS),
            move |s| {
                let (ns, name) = (s.namespace(), s.name_any());
                s3.state()
                    .into_iter()
                    .filter(|a| {
                        a.namespace() == ns
                            && (referenced_secrets(a).contains(&name)
                                || a.status.as_ref().is_some_and(|_| {
                                    name.ends_with("-credentials") || name.ends_with("-amqp")
                                }))
                    })
                    .map(|a| ObjectRef::from_obj(a.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
