//! Reconciles `Database`: waits for its PostgresCluster, checks that the role and database
//! are its own (marked with its uid) or free, creates them over SQL, rotates the password
//! blue/green on request (`credentials.rs`), writes the connection Secret, reports SQL
//! errors as `Degraded`, and on deletion drops what it owns only with `reclaimPolicy:
//! Delete` (I/O: Kubernetes API, PostgreSQL).
//!
//! The pipeline: [`validate`] names the logins and the Secret, [`apply`] reads the cluster,
//! the Secret and the server and makes the server hold the role and database, [`build`]
//! makes the Secret, which [`apply`] writes, and [`status`] reports.

pub mod apply;
pub mod build;
pub mod status;
pub mod validate;

use kube::runtime::controller::Action;

use super::finalizer::Finalized;
use super::{Ctx, Flow, Report, Result, credentials};
use crate::crd::{Database, PostgresCluster};

impl Finalized for Database {
    const KIND: &'static str = "Database";
    /// Finalizer guarding the role and database in PostgreSQL.
    const FINALIZER: &'static str = "payplane.dev/database";
    type Server = PostgresCluster;

    /// validate → apply (the server) → build → apply (the Secret) → status.
    async fn pipeline(&self, ctx: &Ctx, ns: &str) -> Flow<Report> {
        let input = validate::validate(self);
        let server =
            (apply::cluster(self, ctx, ns).await).map_err(|u| credentials::unready(self, u))?;
        let run = apply::Run::new(self, (ctx, ns), &input, &server);
        let (logins, observed) = apply::observe(&run).await?;
        let rotation = apply::ensure(&run, (&logins, &observed)).await?;
        let children =
            build::build_for(self, &server.connection(&rotation), &rotation.creds.active)?;
        let started = rotation
            .started
            .then(|| status::ready(self, &input, &rotation, ctx.resync));
        let owner = (ns, input.uid.as_str());
        let rotated = status::rotated(&rotation);
        credentials::publish(ctx, self, owner, &children, started, rotated).await?;
        Ok(status::ready(self, &input, &rotation, ctx.resync))
    }

    fn server(&self) -> &str {
        &self.spec.cluster_ref.name
    }

    async fn cleanup(&self, ctx: &Ctx, ns: &str) -> Result<Action> {
        apply::cleanup(self, ctx, ns).await
    }
}
