//! Reconciles `PostgresCluster`: the built-in StatefulSet with its Services and superuser
//! Secret, the check of an external server's Secret, or a CloudNativePG `Cluster` whose status
//! and superuser Secret it reads; status carries the endpoint (I/O: Kubernetes API).
//!
//! The pipeline, run by [`super::provider::pipeline`] through this kind's [`ServerKind`] steps:
//! [`validate`] picks the provider, [`build`] (or [`cloudnative_pg`]) makes the children,
//! [`apply`] reads the Secrets and applies, [`status`] reports.

pub mod apply;
pub mod build;
pub mod cloudnative_pg;
pub mod status;
pub mod validate;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::Value;

use super::provider::{Input, Provider, ServerKind};
use super::{Ctx, Flow, InvalidSpec, Report, Result};
use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::ExternalPostgres;
use crate::meta::{Child, MetaError, resources};

impl ServerKind for PostgresCluster {
    const KIND: &'static str = "PostgresCluster";
    const PROVIDER: Provider = cloudnative_pg::PROVIDER;
    type External = ExternalPostgres;

    fn kinds() -> Vec<ApiResource> {
        resources! {Secret, Service, StatefulSet}
    }

    fn input(&self) -> Result<Input<'_, ExternalPostgres>, InvalidSpec> {
        validate::validate(self)
    }

    async fn external(&self, ctx: &Ctx, ns: &str, ext: &ExternalPostgres) -> Result<Report> {
        let found = apply::external_secret(ctx, ns, ext).await?;
        Ok(status::external(ext, found))
    }

    async fn builtin(&self, ctx: &Ctx, ns: &str) -> Flow<Vec<Child>> {
        let password = apply::superuser_password(ctx, ns, self).await?;
        Ok(build::build(self, &password)?)
    }

    fn builtin_status(&self, ns: &str, applied: &[DynamicObject]) -> Report {
        status::builtin(&self.name_any(), ns, applied)
    }

    fn operator(&self) -> Result<Vec<Child>, MetaError> {
        cloudnative_pg::build(self)
    }

    /// Ready once the Cluster is healthy with every instance and its superuser Secret exists.
    async fn operator_status(&self, ctx: &Ctx, ns: &str, stored: &Value) -> Result<Report> {
        let observed = cloudnative_pg::observe(stored, cloudnative_pg::instances(self));
        let secret = observed.ready && apply::cloudnative_pg_secret(ctx, ns, self).await?;
        Ok(status::cloudnative_pg(
            &self.name_any(),
            ns,
            observed,
            secret,
        ))
    }
}
