//! `apply` of a `Queue`, the part that talks to the API server and RabbitMQ: reads its
//! MessageBroker and the admin Secret, observes and declares the topology and users over the
//! management API, and on deletion removes them (I/O: Kubernetes API, RabbitMQ management API).

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::super::credentials::{self, Logins, Rotation, Unready, own_secret};
use super::super::message_broker::{amqp_host_port, rabbitmq_operator};
use super::super::{Ctx, Error, Flow, Result, generate_password, secret_value};
use super::build;
use super::validate::Input;
use crate::crd::message_broker::BrokerProvider;
use crate::crd::{AppService, MessageBroker, Queue};
use crate::external::rabbitmq::{ArgumentChange, check_ownership};
use crate::external::{BrokerObserved, BrokerTarget};

/// A reconcile of a Queue, once its broker is ready.
pub type Run<'a> = credentials::Run<'a, Queue, Input, Broker>;

/// The broker's management API with an administrator, and the AMQP `host:port` clients use.
pub struct Broker {
    /// Where the operator administers the broker.
    pub target: BrokerTarget,
    /// The AMQP `host:port`.
    pub host_port: String,
}

/// The broker of `q`'s MessageBroker, once it is ready and its administrator is usable.
pub async fn broker(q: &Queue, ctx: &Ctx, ns: &str) -> Result<Broker, Unready> {
    let name = &q.spec.broker_ref.name;
    let mb: MessageBroker = credentials::ready_server(ctx, ns, name).await?;
    let status = mb.status.clone().unwrap_or_default();
    let key = match (&mb.spec.provider, &mb.spec.external) {
        (BrokerProvider::External, Some(ext)) => ext.amqp_url_secret_ref.key.clone(),
        // The cluster operator's default-user Secret has the URI under its own key.
        (BrokerProvider::RabbitmqClusterOperator, _) => {
            rabbitmq_operator::CONNECTION_STRING.to_owned()
        }
        _ => "uri".to_owned(),
    };
    let (Some(secret), Some(management_url)) =
        (status.admin_secret_name, status.management_endpoint)
    else {
        let why = format!("MessageBroker {name} has no endpoints yet");
        return Err(Unready::NotReady(why));
    };
    let uri = secret_value(&ctx.client, ns, &secret, &key).await?;
    let Some((admin_user, admin_password, host_port)) = uri.as_deref().and_then(amqp_host_port)
    else {
        let why = format!("admin Secret {secret} of MessageBroker {name} not usable");
        return Err(Unready::NotReady(why));
    };
    Ok(Broker {
        target: BrokerTarget {
            management_url,
            admin_user,
            admin_password,
        },
        host_port,
    })
}

/// Reads the own Secret and the broker's users, queues and bindings, decides the logins, and
/// stops (touching nothing) when a user is another's.
pub async fn observe(run: &Run<'_>) -> Flow<(Logins, BrokerObserved)> {
    let (q, ctx, ns, input, broker) = (run.obj, run.ctx, run.ns, run.input, run.server);
    let stored = own_secret(&ctx.client, ns, &input.secret, &input.uid, "username").await?;
    let plan = &input.plan;
    let mut observed = ctx
        .externals
        .observe_queue(
            &broker.target,
            &q.spec.vhost,
            &plan.users,
            &plan.declarations,
        )
        .await
        .map_err(|e| credentials::unavailable(q, &e, ctx.resync))?;
    let recorded = q.status.as_ref().and_then(|s| s.credentials.clone());
    let logins = Logins::decide(q, recorded, input.pair.clone(), stored);
    if !logins.uses_second {
        observed.users.remove(&input.pair.1);
    }
    check_ownership(&observed, &input.uid, logins.adopt)
        .map_err(|conflict| credentials::conflict(q, &conflict, ctx.resync))?;
    Ok((logins, observed))
}

/// Decides the credentials and makes the broker hold the topology, users and permissions;
/// returns the queues whose arguments changed (left as they are) and tells each binding it
/// removed in an Event.
pub async fn ensure(
    run: &Run<'_>,
    (logins, observed): (&Logins, &BrokerObserved),
) -> Flow<(Rotation, Vec<ArgumentChange>)> {
    let (q, ctx, ns, input, broker) = (run.obj, run.ctx, run.ns, run.input, run.server);
    let name = q.name_any();
    let uses = |a: &AppService| a.spec.queues.iter().any(|r| r.ref_ == name);
    let rollout = credentials::rollout(&ctx.client, ns, &input.secret, logins, uses).await?;
    let usable = |user: &str| observed.users.contains_key(user);
    let rotation = credentials::rotate(logins, usable, rollout, "user", generate_password);
    let (plan, changed) = build::settle(input.plan.clone(), observed, &rotation);
    ctx.externals
        .ensure_queue(&broker.target, &plan)
        .await
        .map_err(|e| credentials::unavailable(q, &e, ctx.resync))?;
    for b in &plan.remove_bindings {
        let note = format!(
            "removed the undeclared binding of {} to {} with {}",
            b.queue, b.source, b.routing_key
        );
        ctx.event(q, false, "BindingRemoved", note).await;
    }
    Ok((rotation, changed))
}

/// On deletion: removes what the Queue owns with `reclaimPolicy: Delete`, keeps it with
/// `Retain`; either way says so in an Event.
pub async fn cleanup(q: &Queue, ctx: &Ctx, ns: &str) -> Result<Action> {
    let user = &q.spec.user;
    let delete = async {
        let broker = match broker(q, ctx, ns).await {
            Err(Unready::Failed(e)) => return Err(e),
            found => found.ok(),
        };
        if let (Some(broker), Ok(plan)) = (broker, build::plan(q)) {
            // Only users carrying this resource's tag are deleted, and queues only when one
            // was: a conflicting copy deletes nothing.
            ctx.externals
                .delete_queue(&broker.target, &plan)
                .await
                .map_err(|e| {
                    let what = format!("broker user {user} of Queue {ns}/{}", q.name_any());
                    Error::DeleteQueue(what, Box::new(e))
                })?;
            let note = format!(
                "deleted broker user {user} and its empty queues where this Queue owned them"
            );
            Ok(("Deleted", false, note))
        } else {
            let broker = &q.spec.broker_ref.name;
            let note = format!("broker {broker} unavailable; user {user} not deleted");
            Ok(("CleanupSkipped", true, note))
        }
    };
    let kept = format!("broker user {user} and its queues");
    credentials::cleanup(ctx, (q, &q.spec.reclaim_policy), kept, delete).await
}
