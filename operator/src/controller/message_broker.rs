//! Reconciles `MessageBroker`: the built-in RabbitMQ StatefulSet with Services, config and
//! generated Secrets, the check of an external broker's Secret, or a `RabbitmqCluster` whose
//! status and default-user Secret it reads; status carries the endpoints (I/O: Kubernetes API).
//!
//! The pipeline, run by [`super::provider::pipeline`] through this kind's [`ServerKind`] steps:
//! [`validate`] picks the provider, [`build`] (or [`rabbitmq_operator`]) makes the children,
//! [`apply`] reads the Secrets and applies, [`status`] reports.

pub mod apply;
pub mod build;
pub mod rabbitmq_operator;
pub mod status;
pub mod validate;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::Value;

use super::provider::{Input, Provider, ServerKind};
use super::{Ctx, Flow, InvalidSpec, Report, Result};
use crate::crd::MessageBroker;
use crate::crd::message_broker::ExternalBroker;
use crate::meta::{Child, MetaError, resources};
pub use validate::amqp_host_port;

impl ServerKind for MessageBroker {
    const KIND: &'static str = "MessageBroker";
    const PROVIDER: Provider = rabbitmq_operator::PROVIDER;
    type External = ExternalBroker;

    fn kinds() -> Vec<ApiResource> {
        resources! {Secret, ConfigMap, Service, StatefulSet, ServiceAccount, Role, RoleBinding}
    }

    fn input(&self) -> Result<Input<'_, ExternalBroker>, InvalidSpec> {
        validate::validate(self)
    }

    async fn external(&self, ctx: &Ctx, ns: &str, ext: &ExternalBroker) -> Result<Report> {
        let uri = apply::external_uri(ctx, ns, ext).await?;
        Ok(status::external(ext, uri.as_deref()))
    }

    async fn builtin(&self, ctx: &Ctx, ns: &str) -> Flow<Vec<Child>> {
        let resolved = apply::resolve(ctx, ns, &self.name_any()).await?;
        Ok(build::build(self, &resolved)?)
    }

    fn builtin_status(&self, ns: &str, applied: &[DynamicObject]) -> Report {
        status::builtin(&self.name_any(), ns, applied)
    }

    fn operator(&self) -> Result<Vec<Child>, MetaError> {
        rabbitmq_operator::build(self)
    }

    /// Ready once every node is ready and the default-user Secret has the connection string
    /// the Queue controller administers the broker with.
    async fn operator_status(&self, ctx: &Ctx, ns: &str, stored: &Value) -> Result<Report> {
        let observed = rabbitmq_operator::observe(stored);
        let usable = apply::default_user_usable(ctx, ns, &observed).await?;
        Ok(status::rabbitmq_operator(ns, observed, usable))
    }
}
