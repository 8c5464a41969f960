//! A route asked for on a cluster without the Gateway API CRDs, on a real control plane: this
//! test binary never installs them. The IngressCert says `GatewayApiMissing` and still issues
//! its certificate; the CRDs installed afterwards are picked up without restarting the operator
//! (the `gateway_api` binary covers the route itself).

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use payplane_control_plane::GATEWAY_API;
use payplane_operator::controller::ingress_cert::build::http_route_resource;
use payplane_operator::crd::IngressCert;
use payplane_operator::external::Externals;
use payplane_operator::testing::{
    Operator, install_third_party_crds, not_ready_because, ready, ready_message,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_without_the_gateway_api_crds_says_gateway_api_missing() -> Result<()> {
    let op = Operator::start("gwapi-missing", Externals::simulated()).await?;
    op.create("IngressCert", "shop", json!({
            "hosts": ["shop.localtest.me"], "secretName": "shop-tls", "issuer": "selfSigned",
            "httpRoute": {"parentRef": {"name": "public"}, "backend": {"serviceName": "shop", "port": 80}},
        })).await?;
    let missing = not_ready_because("GatewayApiMissing", &[]);
    let ic = op
        .wait_for::<IngressCert>("GatewayApiMissing", "shop", missing)
        .await?;
    let message = ready_message(&ic);
    ensure!(
        message.contains("gateway.networking.k8s.io") && message.contains("HTTPRoute"),
        "{message}"
    );
    // The certificate does not wait for the route.
    let secret = op.existing::<Secret>("shop-tls").await?;
    ensure!(secret.type_.as_deref() == Some("kubernetes.io/tls"));
    // Installed later: the operator retries on its own (every `WAIT`), no restart, no edit.
    install_third_party_crds(&[GATEWAY_API]).await?;
    op.wait_for::<IngressCert>("Ready once the CRDs exist", "shop", ready)
        .await?;
    let routes: Api<DynamicObject> =
        Api::namespaced_with(op.admin.clone(), op.ns(), &http_route_resource());
    ensure!(routes.get_opt("shop").await?.is_some(), "no HTTPRoute shop");
    op.stop().await
}
