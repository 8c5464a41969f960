//! Reconciles `Database`: waits for its PostgresCluster, checks that the role and database
//! are its own (marked with its uid) or free, creates them over SQL, rotates the password
//! blue/green on request (`credentials.rs`), writes the connection Secret, reports SQL
//! errors as `Degraded`, and on deletion drops what it owns only with `reclaimPolicy:
//! Delete` (I/O: Kubernetes API, PostgreSQL).

pub mod build;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};

use super::credentials::{
    self, ADOPT, ROTATE, Step, annotation, pending, rollout_checksums, step, uses_second,
};
use super::finalizer::{Event as Finalizer, finalizer};
use super::{Ctx, Result, apply_children, ids, namespace, prune, waiting, write_status};
use crate::conditions::{Cond, Observed, external_conditions, is_ready};
use crate::crd::database::Credentials;
use crate::crd::{AppService, Database, PostgresCluster, ReclaimPolicy};
use crate::external::postgres::check_ownership;
use crate::external::{DbPlan, LoginChange, PgTarget};

const KIND: &str = "Database";
/// Finalizer guarding the role and database in PostgreSQL.
pub const FINALIZER: &str = "payplane.dev/database";

/// The cluster's superuser connection and the client-facing host, once the cluster is ready.
enum ClusterState {
    Missing,
    NotReady(String),
    Ready {
        target: PgTarget,
        host: String,
        port: i32,
    },
}

async fn cluster(db: &Database, ctx: &Ctx, ns: &str) -> Result<ClusterState> {
    let name = &db.spec.cluster_ref.name;
    let Some(pg) = Api::<PostgresCluster>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
    else {
        return Ok(ClusterState::Missing);
    };
    if !is_ready(&pg) {
        return Ok(ClusterState::NotReady(format!(
            "PostgresCluster {name} is not ready"
        )));
    }
    let status = pg.status.clone().unwrap_or_default();
    let (Some(endpoint), Some(secret), Some(key)) = (
        status.endpoint,
        status.superuser_secret_name,
        status.superuser_secret_key,
    ) else {
        return Ok(ClusterState::NotReady(format!(
            "PostgresCluster {name} has no endpoint yet"
        )));
    };
    let Some(password) = super::secret_value(&ctx.client, ns, &secret, &key).await? else {
        return Ok(ClusterState::NotReady(format!(
            "Secret {secret} of PostgresCluster {name} not found"
        )));
    };
    let port = u16::try_from(endpoint.port).unwrap_or(5432);
    Ok(ClusterState::Ready {
        target: PgTarget {
            host: endpoint.host.clone(),
            port,
            user: status.superuser.unwrap_or_else(|| "postgres".into()),
            password,
            ssl_mode: status.ssl_mode.clone(),
        },
        host: endpoint.host,
        port: endpoint.port,
    })
}

fn plan(db: &Database, logins: Vec<LoginChange>) -> DbPlan {
    DbPlan {
        database: db.spec.database_name.clone(),
        owner: db.spec.owner.clone(),
        uid: db.meta().uid.clone().unwrap_or_default(),
        logins,
        extensions: db.spec.extensions.iter().map(|e| e.0.clone()).collect(),
    }
}

/// Writes the status with `conds`, keeping the Secret name and the credentials record.
async fn status(
    ctx: &Ctx,
    db: &Database,
    conds: &[Cond],
    secret: Option<&str>,
    creds: Option<&Credentials>,
) -> Result<()> {
    let prev = db.status.clone().unwrap_or_default();
    let extra = credentials::status_extra(secret, creds, prev.secret_name, prev.credentials);
    write_status(ctx, db, conds, extra).await
}

#[expect(
    clippy::too_many_lines,
    reason = "reconcile steps still inline: the per-kind validate/build/apply/status pipeline (issue #17, open) splits it"
)]
async fn apply(db: Arc<Database>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(db.as_ref())?;
    let name = db.name_any();
    let uid = db.meta().uid.clone().unwrap_or_default();
    let (target, host, port) = match cluster(&db, ctx, &ns).await? {
        ClusterState::Missing => {
            let msg = format!("PostgresCluster {} not found", db.spec.cluster_ref.name);
            status(
                ctx,
                &db,
                &super::invalid("ClusterNotFound", msg),
                None,
                None,
            )
            .await?;
            return Ok(Action::await_change());
        }
        ClusterState::NotReady(msg) => {
            status(ctx, &db, &waiting("WaitingForCluster", msg), None, None).await?;
            return Ok(Action::requeue(super::WAIT));
        }
        ClusterState::Ready { target, host, port } => (target, host, port),
    };
    let owner = db.spec.owner.clone();
    let second = build::second_login(&owner);
    let secret = build::secret_name(&name);
    let stored = credentials::own_secret(&ctx.client, &ns, &secret, &uid, "user").await?;
    let mut observed = match ctx
        .externals
        .observe_database(
            &target,
            &[owner.clone(), second.clone()],
            &db.spec.database_name,
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return unavailable(ctx, &db, &e).await,
    };
    let token = annotation(db.as_ref(), ROTATE);
    let recorded = db.status.as_ref().and_then(|s| s.credentials.clone());
    let next = step(recorded.as_ref(), token, (&owner, &second));
    // The second login matters only once a rotation uses it: until then a resource whose
    // own name it is (another's `<name>_b`) is no conflict, and it is not touched.
    if !uses_second(
        recorded.as_ref(),
        &next,
        stored.as_ref().map(|(u, _)| u.as_str()),
        &second,
    ) {
        observed.roles.remove(&second);
    }
    let adopt = annotation(db.as_ref(), ADOPT) == Some("true")
        || stored
            .as_ref()
            .is_some_and(|(user, _)| *user == owner || *user == second);
    if let Err(conflict) = check_ownership(&observed, &uid, &owner, adopt) {
        // Nothing is touched: no password, no database, no Secret.
        let conds = external_conditions(&Observed::Conflict(conflict.to_string()));
        status(ctx, &db, &conds, None, None).await?;
        return Ok(Action::requeue(ctx.resync));
    }

    let mut creds = recorded.clone().unwrap_or_else(|| Credentials {
        active: stored
            .as_ref()
            .map(|(user, _)| user.clone())
            .filter(|u| *u == second)
            .unwrap_or_else(|| owner.clone()),
        rotation: token.map(str::to_owned),
        ..Credentials::default()
    });
    let mut logins = Vec::new();
    // The password changes only when the role is new, the Secret was lost, or a rotation.
    let active_usable = observed.roles.get(&creds.active).is_some_and(|r| r.login);
    let mut password = match &stored {
        Some((user, pw)) if *user == creds.active && active_usable => pw.clone(),
        _ => {
            let pw = super::generate_password();
            logins.push(LoginChange::Enable {
                name: creds.active.clone(),
                password: pw.clone(),
            });
            pw
        }
    };
    let uses = |a: &AppService| a.spec.database.as_ref().is_some_and(|d| d.ref_ == name);
    let mut rotating = None;
    let mut started = false;
    let mut finished = None;
    match next {
        Step::Steady => {}
        Step::Start { to } => {
            // Recorded before the Secret changes, so a rollout it causes is never missed.
            let from = rollout_checksums(&ctx.client, &ns, &secret, uses).await?;
            password = super::generate_password();
            logins.push(LoginChange::Enable {
                name: to.clone(),
                password: password.clone(),
            });
            rotating = Some(waiting_message(from.keys()));
            creds = Credentials {
                retiring: Some(creds.active.clone()),
                active: to,
                rotation: token.map(str::to_owned),
                rollout_from: from,
            };
            started = true;
        }
        Step::Retiring { old } => {
            let left = pending(&ctx.client, &ns, &creds.rollout_from).await?;
            if left.is_empty() {
                logins.push(LoginChange::Disable { name: old.clone() });
                creds.retiring = None;
                creds.rollout_from.clear();
                finished = Some(old);
            } else {
                rotating = Some(waiting_message(left.iter()));
            }
        }
    }
    if let Err(e) = ctx
        .externals
        .ensure_database(&target, &plan(&db, logins))
        .await
    {
        return unavailable(ctx, &db, &e).await;
    }
    let message = format!(
        "database {} owned by {}, login {}",
        db.spec.database_name, db.spec.owner, creds.active
    );
    if started {
        let conds = external_conditions(&Observed::Ready {
            message: message.clone(),
            rotating: rotating.clone(),
        });
        status(ctx, &db, &conds, Some(&secret), Some(&creds)).await?;
    }
    let children = build::build_for(
        db.as_ref(),
        &build::Connection {
            host,
            port,
            password,
            ssl_mode: target.ssl_mode.clone(),
        },
        &creds.active,
    )?;
    apply_children(&ctx.client, &ns, &children).await?;
    prune(
        &ctx.client,
        &ns,
        &uid,
        &[ApiResource::erase::<Secret>(&())],
        &ids(&children),
    )
    .await?;
    if let Some(old) = finished {
        let note = format!("login {old} disabled; the Secret holds {}", creds.active);
        ctx.event(db.as_ref(), false, "CredentialsRotated", note)
            .await;
    }
    let requeue = if rotating.is_some() {
        ROTATION_POLL
    } else {
        ctx.resync
    };
    let conds = external_conditions(&Observed::Ready { message, rotating });
    status(ctx, &db, &conds, Some(&secret), Some(&creds)).await?;
    Ok(Action::requeue(requeue))
}

/// How often a rotation looks at the rollouts it waits for.
const ROTATION_POLL: std::time::Duration = std::time::Duration::from_secs(2);

fn waiting_message<'a>(apps: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = apps.map(String::as_str).collect();
    if names.is_empty() {
        "retiring the old login".to_owned()
    } else {
        format!(
            "waiting for {} to roll onto the new credentials",
            names.join(", ")
        )
    }
}

/// `Ready=False`, `Degraded=True` with the SQL error, a Warning Event; retried with backoff.
async fn unavailable(ctx: &Ctx, db: &Database, e: &crate::external::SqlError) -> Result<Action> {
    let conds = external_conditions(&Observed::Unavailable {
        reason: "PostgresUnavailable",
        message: e.to_string(),
    });
    status(ctx, db, &conds, None, None).await?;
    Ok(Action::requeue(ctx.resync.min(super::WAIT)))
}

async fn cleanup(db: Arc<Database>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(db.as_ref())?;
    match db.spec.reclaim_policy {
        ReclaimPolicy::Retain => {
            let note = format!(
                "kept database {} and role {} (reclaimPolicy Retain)",
                db.spec.database_name, db.spec.owner
            );
            ctx.event(db.as_ref(), false, "Retained", note).await;
        }
        ReclaimPolicy::Delete => match cluster(&db, ctx, &ns).await? {
            ClusterState::Ready { target, .. } => {
                let logins = [build::second_login(&db.spec.owner)];
                // Only what carries this resource's mark is dropped: a conflicting copy
                // drops nothing.
                ctx.externals
                    .drop_database(&target, &plan(&db, Vec::new()), &logins)
                    .await?;
                let note = format!(
                    "dropped database {} and role {} where this Database owned them",
                    db.spec.database_name, db.spec.owner
                );
                ctx.event(db.as_ref(), false, "Deleted", note).await;
            }
            // Without a cluster there is nothing to drop from; do not block deletion forever.
            ClusterState::Missing | ClusterState::NotReady(_) => {
                let note = format!(
                    "cluster {} unavailable; database {} not dropped",
                    db.spec.cluster_ref.name, db.spec.database_name
                );
                ctx.event(db.as_ref(), true, "CleanupSkipped", note).await;
            }
        },
    }
    Ok(Action::await_change())
}

async fn reconcile(db: Arc<Database>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(db.as_ref())?;
    let api: Api<Database> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, db, |event| async {
        match event {
            Finalizer::Apply(db) => apply(db, &ctx).await,
            Finalizer::Cleanup(db) => cleanup(db, &ctx).await,
        }
    })
    .await
}

/// Runs the Database controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<Database>(), watcher::Config::default());
    let by_reference = super::referrers(ctrl.store(), |db: &Database| {
        db.spec.cluster_ref.name.as_str()
    });
    let ctrl = ctrl
        .owns(ctx.watched::<Secret>(), super::managed())
        .watches(
            ctx.watched::<PostgresCluster>(),
            watcher::Config::default(),
            by_reference,
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
