//! Reconciles `IngressCert`: keeps an operator-managed CA (selfSigned) or uses a given CA
//! Secret (ca) to issue the leaf into a `kubernetes.io/tls` Secret, renewing it at its
//! renewal time, or creates a cert-manager `Certificate` (certManager); plus the Ingress or
//! the Gateway API `HTTPRoute` (I/O: Kubernetes API).
//!
//! The pipeline: [`validate`] reads the validity and the issuer, [`apply`] resolves the CA and
//! the leaf, [`build`] makes the children, [`apply`] applies them, [`status`] reports.

pub mod apply;
pub mod build;
pub mod status;
pub mod validate;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};

use super::{Ctx, Flow, Report, Result, Shutdown, finish, namespace};
use crate::crd::IngressCert;

const KIND: &str = "IngressCert";

/// validate → build → apply → status.
async fn pipeline(ic: &IngressCert, ctx: &Ctx) -> Flow<Report> {
    let ns = namespace(ic)?;
    let input = validate::validate(ic)?;
    let resolved = apply::resolve(ic, ctx, &ns, &input).await?;
    let children = build::build(ic, &resolved)?;
    let (applied, gateway_api_missing) = apply::apply(ic, ctx, &ns, children).await?;
    let observed = status::Observed {
        applied: &applied,
        leaf: &resolved.leaf_annotations,
        gateway_api_missing,
    };
    Ok(status::status(ic, &observed, jiff::Timestamp::now()))
}

async fn reconcile(ic: Arc<IngressCert>, ctx: Arc<Ctx>) -> Result<Action> {
    finish(&ctx, ic.as_ref(), pipeline(&ic, &ctx).await).await
}

/// Runs the IngressCert controller until `shutdown`.
pub async fn controller(ctx: Arc<Ctx>, shutdown: impl Shutdown) {
    let ctrl = Controller::new(ctx.watched::<IngressCert>(), watcher::Config::default())
        .owns(ctx.watched::<Secret>(), super::managed())
        .graceful_shutdown_on(shutdown);
    super::run_controller(KIND, ctrl, reconcile, ctx).await;
}
