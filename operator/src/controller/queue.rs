//! Reconciles `Queue`: waits for its MessageBroker, checks that its user is its own (tagged
//! with its uid) or free, declares the service's topology (reporting queues whose arguments
//! changed instead of looping on PRECONDITION_FAILED, removing undeclared bindings), creates
//! its least-privilege user over the management API, rotates it blue/green on request
//! (`credentials.rs`), writes the Secret with `uri`, reports broker errors as `Degraded`, and
//! on deletion removes what it owns only with `reclaimPolicy: Delete` (I/O: Kubernetes API,
//! RabbitMQ management API).

pub mod build;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};

use std::collections::BTreeSet;

use super::credentials::{
    self, ADOPT, ROTATE, Step, annotation, pending, rollout_checksums, step, uses_second,
};
use super::finalizer::{Event as Finalizer, finalizer};
use super::message_broker::amqp_host_port;
use super::{Ctx, Result, apply_children, ids, invalid, namespace, prune, waiting, write_status};
use crate::conditions::{Cond, Observed, external_conditions, is_ready};
use crate::crd::database::Credentials;
use crate::crd::message_broker::BrokerProvider;
use crate::crd::{AppService, MessageBroker, Queue, ReclaimPolicy};
use crate::external::rabbitmq::{
    ArgumentChange, UserChange, argument_changes, check_ownership, owner_tag, stale_bindings,
};
use crate::external::{BrokerTarget, QueuePlan};

const KIND: &str = "Queue";
/// Finalizer guarding the broker user and queues.
pub const FINALIZER: &str = "payplane.dev/queue";

enum BrokerState {
    Missing,
    NotReady(String),
    Ready {
        target: BrokerTarget,
        host_port: String,
    },
}

async fn broker(q: &Queue, ctx: &Ctx, ns: &str) -> Result<BrokerState> {
    let name = &q.spec.broker_ref.name;
    let Some(mb) = Api::<MessageBroker>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
    else {
        return Ok(BrokerState::Missing);
    };
    if !is_ready(&mb) {
        return Ok(BrokerState::NotReady(format!(
            "MessageBroker {name} is not ready"
        )));
    }
    let status = mb.status.clone().unwrap_or_default();
    let key = match (&mb.spec.provider, &mb.spec.external) {
        (BrokerProvider::External, Some(ext)) => ext.amqp_url_secret_ref.key.clone(),
        // The cluster operator's default-user Secret has the URI under its own key.
        (BrokerProvider::RabbitmqClusterOperator, _) => {
            super::message_broker::rabbitmq_operator::CONNECTION_STRING.to_owned()
        }
        _ => "uri".to_owned(),
    };
    let (Some(secret), Some(management_url)) =
        (status.admin_secret_name, status.management_endpoint)
    else {
        return Ok(BrokerState::NotReady(format!(
            "MessageBroker {name} has no endpoints yet"
        )));
    };
    let Some((admin_user, admin_password, host_port)) =
        super::secret_value(&ctx.client, ns, &secret, &key)
            .await?
            .as_deref()
            .and_then(amqp_host_port)
    else {
        return Ok(BrokerState::NotReady(format!(
            "admin Secret {secret} of MessageBroker {name} not usable"
        )));
    };
    Ok(BrokerState::Ready {
        target: BrokerTarget {
            management_url,
            admin_user,
            admin_password,
        },
        host_port,
    })
}

/// The plan of `q` with nothing to change yet: declarations, permissions, both users.
fn plan(q: &Queue) -> std::result::Result<QueuePlan, build::PlanError> {
    Ok(QueuePlan {
        vhost: q.spec.vhost.clone(),
        uid: q.meta().uid.clone().unwrap_or_default(),
        users: vec![q.spec.user.clone(), build::second_user(&q.spec.user)],
        user_changes: Vec::new(),
        declarations: build::declarations(q)?,
        permissions: build::permissions(q),
        skip_queues: BTreeSet::new(),
        remove_bindings: Vec::new(),
    })
}

/// Writes the status with `conds`, keeping the Secret name and the credentials record.
async fn status(
    ctx: &Ctx,
    q: &Queue,
    conds: &[Cond],
    secret: Option<&str>,
    creds: Option<&Credentials>,
) -> Result<()> {
    let prev = q.status.clone().unwrap_or_default();
    let extra = credentials::status_extra(secret, creds, prev.secret_name, prev.credentials);
    write_status(ctx, q, conds, extra).await
}

/// `Ready=False`, `Degraded=True` with the broker's error, a Warning Event; retried.
async fn unavailable(ctx: &Ctx, q: &Queue, e: &crate::external::BrokerError) -> Result<Action> {
    let conds = external_conditions(&Observed::Unavailable {
        reason: "BrokerUnavailable",
        message: e.to_string(),
    });
    status(ctx, q, &conds, None, None).await?;
    Ok(Action::requeue(ctx.resync.min(super::WAIT)))
}

/// How often a rotation looks at the rollouts it waits for.
const ROTATION_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// The condition message for queues whose arguments changed, with the recreate path.
pub fn arguments_message(vhost: &str, changes: &[ArgumentChange]) -> String {
    let what: Vec<String> = changes.iter().map(ToString::to_string).collect();
    let queues: BTreeSet<&str> = changes.iter().map(|c| c.queue.as_str()).collect();
    format!(
        "{}; RabbitMQ cannot change the arguments of an existing queue (PRECONDITION_FAILED). \
         To recreate: stop its consumers, drain it, delete it on the broker (rabbitmqadmin \
         --vhost={vhost} delete queue name=<queue>) for {}; the operator declares it with \
         the new arguments at its next reconcile",
        what.join("; "),
        queues.into_iter().collect::<Vec<_>>().join(", ")
    )
}

#[expect(
    clippy::too_many_lines,
    reason = "reconcile steps still inline: the per-kind validate/build/apply/status pipeline (issue #17, open) splits it"
)]
async fn apply(q: Arc<Queue>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(q.as_ref())?;
    let name = q.name_any();
    let uid = q.meta().uid.clone().unwrap_or_default();
    let secret = build::secret_name(&name);
    let mut plan = match plan(&q) {
        Ok(p) => p,
        Err(e) => {
            status(ctx, &q, &invalid("InvalidSpec", e.to_string()), None, None).await?;
            return Ok(Action::await_change());
        }
    };
    let (target, host_port) = match broker(&q, ctx, &ns).await? {
        BrokerState::Missing => {
            let msg = format!("MessageBroker {} not found", q.spec.broker_ref.name);
            status(ctx, &q, &invalid("BrokerNotFound", msg), None, None).await?;
            return Ok(Action::await_change());
        }
        BrokerState::NotReady(msg) => {
            status(ctx, &q, &waiting("WaitingForBroker", msg), None, None).await?;
            return Ok(Action::requeue(super::WAIT));
        }
        BrokerState::Ready { target, host_port } => (target, host_port),
    };
    let first = q.spec.user.clone();
    let second = build::second_user(&first);
    let stored = credentials::own_secret(&ctx.client, &ns, &secret, &uid, "username").await?;
    let mut observed = match ctx
        .externals
        .observe_queue(&target, &q.spec.vhost, &plan.users, &plan.declarations)
        .await
    {
        Ok(o) => o,
        Err(e) => return unavailable(ctx, &q, &e).await,
    };
    let token = annotation(q.as_ref(), ROTATE);
    let recorded = q.status.as_ref().and_then(|s| s.credentials.clone());
    let next = step(recorded.as_ref(), token, (&first, &second));
    // The second login matters only once a rotation uses it: until then a resource whose
    // own name it is (another's `<name>_b`) is no conflict, and it is not touched.
    if !uses_second(
        recorded.as_ref(),
        &next,
        stored.as_ref().map(|(u, _)| u.as_str()),
        &second,
    ) {
        observed.users.remove(&second);
    }
    let adopt = annotation(q.as_ref(), ADOPT) == Some("true")
        || stored
            .as_ref()
            .is_some_and(|(user, _)| *user == first || *user == second);
    if let Err(conflict) = check_ownership(&observed, &uid, adopt) {
        // Nothing is touched: no password, no declaration, no Secret.
        let conds = external_conditions(&Observed::Conflict(conflict.to_string()));
        status(ctx, &q, &conds, None, None).await?;
        return Ok(Action::requeue(ctx.resync));
    }
    let tag = owner_tag(&uid);
    for (user, info) in &observed.users {
        if !info.tags.contains(&tag) {
            plan.user_changes
                .push(UserChange::Adopt { name: user.clone() });
        }
    }

    let mut creds = recorded.clone().unwrap_or_else(|| Credentials {
        active: stored
            .as_ref()
            .map(|(user, _)| user.clone())
            .filter(|u| *u == second)
            .unwrap_or_else(|| first.clone()),
        rotation: token.map(str::to_owned),
        ..Credentials::default()
    });
    // The password changes only when the user is new, the Secret was lost, or a rotation.
    let mut password = match &stored {
        Some((user, pw)) if *user == creds.active && observed.users.contains_key(user) => {
            pw.clone()
        }
        _ => {
            let pw = super::generate_password();
            plan.user_changes.push(UserChange::Enable {
                name: creds.active.clone(),
                password: pw.clone(),
            });
            pw
        }
    };
    let uses = |a: &AppService| a.spec.queues.iter().any(|r| r.ref_ == name);
    let mut rotating = None;
    let mut started = false;
    let mut finished = None;
    match next {
        Step::Steady => {}
        Step::Start { to } => {
            // Recorded before the Secret changes, so a rollout it causes is never missed.
            let from = rollout_checksums(&ctx.client, &ns, &secret, uses).await?;
            password = super::generate_password();
            plan.user_changes.push(UserChange::Enable {
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
                plan.user_changes
                    .push(UserChange::Disable { name: old.clone() });
                creds.retiring = None;
                creds.rollout_from.clear();
                finished = Some(old);
            } else {
                rotating = Some(waiting_message(left.iter()));
            }
        }
    }
    plan.users = std::iter::once(creds.active.clone())
        .chain(creds.retiring.clone())
        .collect();
    let changes = argument_changes(&plan.declarations, &observed);
    plan.skip_queues = changes.iter().map(|c| c.queue.clone()).collect();
    plan.remove_bindings = stale_bindings(&plan.declarations, &observed);
    if let Err(e) = ctx.externals.ensure_queue(&target, &plan).await {
        return unavailable(ctx, &q, &e).await;
    }
    for b in &plan.remove_bindings {
        let note = format!(
            "removed the undeclared binding of {} to {} with {}",
            b.queue, b.source, b.routing_key
        );
        ctx.event(q.as_ref(), false, "BindingRemoved", note).await;
    }
    let what = q.spec.queue.as_deref().map_or_else(
        || format!("user {}", creds.active),
        |queue| format!("queue {queue} for user {}", creds.active),
    );
    if started {
        let conds = external_conditions(&Observed::Ready {
            message: what.clone(),
            rotating: rotating.clone(),
        });
        status(ctx, &q, &conds, Some(&secret), Some(&creds)).await?;
    }
    let children = build::build_for(q.as_ref(), &creds.active, &password, &host_port)?;
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
        let note = format!("user {old} deleted; the Secret holds {}", creds.active);
        ctx.event(q.as_ref(), false, "CredentialsRotated", note)
            .await;
    }
    let (observed_now, requeue) = if changes.is_empty() {
        let requeue = if rotating.is_some() {
            ROTATION_POLL
        } else {
            ctx.resync
        };
        (
            Observed::Ready {
                message: what,
                rotating,
            },
            requeue,
        )
    } else {
        (
            Observed::ArgumentsChanged(arguments_message(&q.spec.vhost, &changes)),
            ctx.resync.min(super::WAIT),
        )
    };
    status(
        ctx,
        &q,
        &external_conditions(&observed_now),
        Some(&secret),
        Some(&creds),
    )
    .await?;
    Ok(Action::requeue(requeue))
}

fn waiting_message<'a>(apps: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = apps.map(String::as_str).collect();
    if names.is_empty() {
        "retiring the old user".to_owned()
    } else {
        format!(
            "waiting for {} to roll onto the new credentials",
            names.join(", ")
        )
    }
}

async fn cleanup(q: Arc<Queue>, ctx: &Ctx) -> Result<Action> {
    let ns = namespace(q.as_ref())?;
    match q.spec.reclaim_policy {
        ReclaimPolicy::Retain => {
            ctx.event(
                q.as_ref(),
                false,
                "Retained",
                format!(
                    "kept broker user {} and its queues (reclaimPolicy Retain)",
                    q.spec.user
                ),
            )
            .await;
        }
        ReclaimPolicy::Delete => match (broker(&q, ctx, &ns).await?, plan(&q)) {
            (BrokerState::Ready { target, .. }, Ok(plan)) => {
                // Only users carrying this resource's tag are deleted, and queues only
                // when one was: a conflicting copy deletes nothing.
                ctx.externals.delete_queue(&target, &plan).await?;
                ctx.event(
                    q.as_ref(),
                    false,
                    "Deleted",
                    format!(
                        "deleted broker user {} and its empty queues where this Queue owned them",
                        q.spec.user
                    ),
                )
                .await;
            }
            _ => {
                ctx.event(
                    q.as_ref(),
                    true,
                    "CleanupSkipped",
                    format!(
                        "broker {} unavailable; user {} not deleted",
                        q.spec.broker_ref.name, q.spec.user
                    ),
                )
                .await;
            }
        },
    }
    Ok(Action::await_change())
}

async fn reconcile(q: Arc<Queue>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = namespace(q.as_ref())?;
    let api: Api<Queue> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, q, |event| async {
        match event {
            Finalizer::Apply(q) => apply(q, &ctx).await,
            Finalizer::Cleanup(q) => cleanup(q, &ctx).await,
        }
    })
    .await
}

/// Runs the Queue controller until `shutdown`.
pub async fn controller(
    ctx: Arc<Ctx>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctrl = Controller::new(ctx.watched::<Queue>(), watcher::Config::default());
    let by_reference = super::referrers(ctrl.store(), |q: &Queue| q.spec.broker_ref.name.as_str());
    let ctrl = ctrl
        .owns(ctx.watched::<Secret>(), super::managed())
        .watches(
            ctx.watched::<MessageBroker>(),
            watcher::Config::default(),
            by_reference,
        )
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
