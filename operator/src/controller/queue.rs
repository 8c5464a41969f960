//! Reconciles `Queue`: waits for its MessageBroker, checks that its user is its own (tagged
//! with its uid) or free, declares the service's topology (reporting queues whose arguments
//! changed instead of looping on PRECONDITION_FAILED, removing undeclared bindings), creates
//! its least-privilege user over the management API, rotates it blue/green on request
//! (`credentials.rs`), writes the Secret with `uri`, reports broker errors as `Degraded`, and
//! on deletion removes what it owns only with `reclaimPolicy: Delete` (I/O: Kubernetes API,
//! RabbitMQ management API).
//!
//! The pipeline: [`validate`] turns the spec into the broker plan, [`apply`] reads the
//! broker, the Secret and the broker's users and makes the broker hold the topology and
//! users, [`build`] makes the Secret, which [`apply`] writes, and [`status`] reports.

pub mod apply;
pub mod build;
pub mod status;
pub mod validate;

use kube::runtime::controller::Action;

use super::finalizer::Finalized;
use super::{Ctx, Flow, Report, Result, credentials};
use crate::crd::{MessageBroker, Queue};

impl Finalized for Queue {
    const KIND: &'static str = "Queue";
    /// Finalizer guarding the broker user and queues.
    const FINALIZER: &'static str = "payplane.dev/queue";
    type Server = MessageBroker;

    /// validate → apply (the broker) → build → apply (the Secret) → status.
    async fn pipeline(&self, ctx: &Ctx, ns: &str) -> Flow<Report> {
        let input = validate::validate(self).map_err(|e| status::invalid_spec(self, &e))?;
        let broker =
            (apply::broker(self, ctx, ns).await).map_err(|u| credentials::unready(self, u))?;
        let run = apply::Run::new(self, (ctx, ns), &input, &broker);
        let (logins, observed) = apply::observe(&run).await?;
        let (rotation, changed) = apply::ensure(&run, (&logins, &observed)).await?;
        let active = &rotation.creds.active;
        let children = build::build_for(self, active, &rotation.password, &broker.host_port)?;
        let started =
            (rotation.started).then(|| status::ready(self, &input, &rotation, ctx.resync));
        let owner = (ns, input.uid.as_str());
        let rotated = status::rotated(&rotation);
        credentials::publish(ctx, self, owner, &children, started, rotated).await?;
        Ok(status::settled(
            self, &input, &rotation, &changed, ctx.resync,
        ))
    }

    fn server(&self) -> &str {
        &self.spec.broker_ref.name
    }

    async fn cleanup(&self, ctx: &Ctx, ns: &str) -> Result<Action> {
        apply::cleanup(self, ctx, ns).await
    }
}
