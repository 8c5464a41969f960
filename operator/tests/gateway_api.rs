//! The Gateway API route on a real control plane with the real Gateway API v1.6.3 CRDs (from
//! their Go module): a Platform and a stand-alone IngressCert that name a Gateway converge with
//! an `HTTPRoute` the API server accepts (parentRef, hostnames, backend), the `ReferenceGrant`
//! a Gateway of another namespace needs for the certificate Secret, the listener's
//! `certificateRefs` entry in status — which a Gateway accepts as written — and switching back
//! to an Ingress removes them. A refusal written into the route's status (as a Gateway's
//! controller would) makes the IngressCert `RouteNotAccepted`. The operator never touches the
//! user's Gateway. No Gateway implementation runs here (no data plane without Docker): the kind
//! workflow covers traffic.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use payplane_control_plane::{GATEWAY_API, GoModuleFiles, eventually};
use payplane_operator::controller::ingress_cert::build::{
    http_route_resource, listener_certificate_ref, reference_grant_resource,
};
use payplane_operator::controller::platform::build as platform_build;
use payplane_operator::crd::{IngressCert, Platform};
use payplane_operator::external::Externals;
use payplane_operator::testing::{
    EXAMPLE_PLATFORM, Operator, TIMEOUT, all_ready, apply_object, control_plane,
    install_third_party_crds, not_ready_because, ready, ready_message,
};
use serde_json::{Value, json};

/// Envoy Gateway's `EnvoyProxy` CRD, at the version the kind workflow installs.
const ENVOY_GATEWAY: GoModuleFiles = GoModuleFiles {
    module: "github.com/envoyproxy/gateway",
    version: "v1.9.1",
    files: &[
        "charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_envoyproxies.yaml",
    ],
};

/// A GatewayClass no controller claims: the objects are stored and validated, nothing serves.
const CLASS: &str = "payplane-test";

async fn start(prefix: &str) -> Result<Operator> {
    install_third_party_crds(&[GATEWAY_API]).await?;
    let op = Operator::start(prefix, Externals::simulated()).await?;
    apply_object(
        &op.admin,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": CLASS},
            "spec": {"controllerName": "payplane.dev/test-no-controller"}
        }),
    )
    .await?;
    Ok(op)
}

/// The user's Gateway `public` in `ns`: plain HTTP and an HTTPS listener `https` that
/// terminates TLS with `certificate_ref`, both admitting routes of every namespace.
fn gateway(ns: &str, host: &str, certificate_ref: &Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "public", "namespace": ns},
        "spec": {
            "gatewayClassName": CLASS,
            "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 80,
                 "allowedRoutes": {"namespaces": {"from": "All"}}},
                {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": host,
                 "tls": {"mode": "Terminate", "certificateRefs": [certificate_ref]},
                 "allowedRoutes": {"namespaces": {"from": "All"}}},
            ],
        },
    })
}

async fn get_dynamic(
    op: &Operator,
    ns: &str,
    resource: &ApiResource,
    name: &str,
) -> Result<Option<Value>> {
    let api: Api<DynamicObject> = Api::namespaced_with(op.admin.clone(), ns, resource);
    Ok(api
        .get_opt(name)
        .await?
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
}

/// The `HTTPRoute` `name` in `ns`, which must exist.
async fn http_route(op: &Operator, ns: &str, name: &str) -> Result<Value> {
    let route = get_dynamic(op, ns, &http_route_resource(), name).await?;
    route.with_context(|| format!("no HTTPRoute {name}"))
}

async fn wait_dynamic_gone(op: &Operator, resource: &ApiResource, name: &str) -> Result<()> {
    eventually(
        TIMEOUT,
        &format!("{} {name} gone", resource.kind),
        || async {
            Ok(match get_dynamic(op, op.ns(), resource, name).await? {
                None => Ok(()),
                Some(_) => Err("still there".to_owned()),
            })
        },
    )
    .await
}

/// Every field of the stored Gateway the operator could have changed, and who manages it.
fn gateway_fingerprint(gw: &Value) -> (Value, Value, Vec<String>) {
    let managers = gw["metadata"]["managedFields"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|f| f["manager"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (
        gw["metadata"]["resourceVersion"].clone(),
        gw["spec"].clone(),
        managers,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_routes_its_domain_through_the_named_gateway_and_back_to_an_ingress() -> Result<()>
{
    let op = start("gwapi-platform").await?;
    let ns = op.ns().to_owned();
    // The Gateway lives in a namespace of its own, run by someone else.
    let edge = control_plane().await?.namespace("gwapi-edge").await?;
    let mut platform: Value = serde_saphyr::from_str(EXAMPLE_PLATFORM)?;
    let spec = platform["spec"].as_object_mut().context("spec")?;
    spec.remove("ingressClassName");
    spec.insert(
        "httpRoute".into(),
        json!({"parentRef": {"name": "public", "namespace": edge.name(), "sectionName": "https"}}),
    );
    op.apply(platform).await?;
    all_ready(&op).await?;

    let route = http_route(&op, &ns, "payplane-tls").await?;
    let parent = &route["spec"]["parentRefs"][0];
    ensure!(
        parent["name"] == "public"
            && parent["namespace"] == edge.name()
            && parent["sectionName"] == "https"
            && parent["kind"] == "Gateway"
            && parent["group"] == "gateway.networking.k8s.io",
        "parentRef as stored: {parent}"
    );
    ensure!(
        route["spec"]["hostnames"] == json!(["payplane.localtest.me"]),
        "{route}"
    );
    let rule = &route["spec"]["rules"][0];
    ensure!(
        rule["backendRefs"][0]["name"] == "payplane-gateway"
            && rule["backendRefs"][0]["port"] == 80
            && rule["matches"][0]["path"] == json!({"type": "PathPrefix", "value": "/"}),
        "rule as stored: {rule}"
    );
    ensure!(
        op.get::<Ingress>("payplane-tls").await?.is_none(),
        "no Ingress next to the route"
    );
    let grant = get_dynamic(
        &op,
        &ns,
        &reference_grant_resource(),
        "payplane-tls-gateway-tls",
    )
    .await?
    .context("no ReferenceGrant for the Gateway's namespace")?;
    ensure!(
        grant["spec"]["from"]
            == json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": edge.name()}])
            && grant["spec"]["to"]
                == json!([{"group": "", "kind": "Secret", "name": "payplane-tls"}]),
        "{grant}"
    );

    // Status says what the listener must reference; a Gateway written with it is accepted.
    let ic = op.existing::<IngressCert>("payplane-tls").await?;
    let cert_ref = ic
        .status
        .as_ref()
        .and_then(|s| s.listener_certificate_ref.clone())
        .context("no status.listenerCertificateRef")?;
    ensure!(
        cert_ref.name == "payplane-tls" && cert_ref.namespace == ns && cert_ref.kind == "Secret"
    );
    let message = ready_message(&ic);
    ensure!(
        message.contains("tls.certificateRefs") && message.contains("ReferenceGrant"),
        "{message}"
    );
    ensure!(
        op.get::<Secret>("payplane-tls")
            .await?
            .and_then(|s| s.type_)
            .as_deref()
            == Some("kubernetes.io/tls")
    );
    let stored_gateway = apply_object(
        &op.admin,
        gateway(
            edge.name(),
            "payplane.localtest.me",
            &serde_json::to_value(&cert_ref)?,
        ),
    )
    .await?;
    ensure!(
        stored_gateway["spec"]["listeners"][1]["tls"]["certificateRefs"][0]["name"]
            == "payplane-tls",
        "{stored_gateway}"
    );
    let before = gateway_fingerprint(&stored_gateway);

    // Back to an Ingress: the route and the grant go, the Ingress comes.
    op.patch::<Platform>(
        "payplane",
        json!({"spec": {"httpRoute": null, "ingressClassName": "nginx"}}),
    )
    .await?;
    op.wait_for::<Ingress>("the Ingress is back", "payplane-tls", |i| {
        i.map(|_| ()).ok_or_else(|| "absent".to_owned())
    })
    .await?;
    wait_dynamic_gone(&op, &http_route_resource(), "payplane-tls").await?;
    wait_dynamic_gone(&op, &reference_grant_resource(), "payplane-tls-gateway-tls").await?;
    let ic = op
        .wait_for::<IngressCert>("Ready without a route", "payplane-tls", |ic| {
            ready(ic)?;
            match ic.and_then(|ic| ic.status.as_ref()) {
                Some(s) if s.listener_certificate_ref.is_none() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
    ensure!(ic.spec.http_route.is_none() && ic.spec.ingress.is_some());

    // The user's Gateway is exactly as its owner wrote it: the operator never changed it.
    let api: Api<DynamicObject> = Api::namespaced_with(
        op.admin.clone(),
        edge.name(),
        &ApiResource {
            group: "gateway.networking.k8s.io".into(),
            version: "v1".into(),
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "Gateway".into(),
            plural: "gateways".into(),
        },
    );
    let after = gateway_fingerprint(&serde_json::to_value(api.get("public").await?)?);
    ensure!(before == after, "Gateway changed: {before:?} → {after:?}");
    ensure!(
        !after
            .2
            .iter()
            .any(|m| m == payplane_operator::meta::MANAGER),
        "the operator manages fields of the Gateway: {:?}",
        after.2
    );
    op.stop().await
}

/// Writes the verdict of the Gateway's controller on the route `shop`, as that controller
/// would: `Accepted` is `accepted`, with `reason`.
async fn judge_route(routes: &Api<DynamicObject>, accepted: &str, reason: &str) -> Result<()> {
    let verdict = json!({"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"},
        "controllerName": "payplane.dev/test-no-controller",
        "conditions": [{"type": "Accepted", "status": accepted, "reason": reason,
            "message": "listener https does not admit this namespace",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }]}});
    let params = kube::api::PatchParams::default();
    routes
        .patch_status("shop", &params, &kube::api::Patch::Merge(verdict))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_ingresscert_routes_through_a_gateway_of_its_own_namespace() -> Result<()> {
    let op = start("gwapi-icert").await?;
    let ns = op.ns().to_owned();
    let backend = json!({"serviceName": "shop", "port": 8080});
    let cert = |route: Value| {
        json!({
            "apiVersion": "payplane.dev/v1alpha1", "kind": "IngressCert",
            "metadata": {"name": "shop"},
            "spec": {"hosts": ["shop.localtest.me", "api.shop.localtest.me"], "secretName": "shop-tls", "issuer": "selfSigned", "httpRoute": route},
        })
    };
    // An Ingress and a route at once is refused by the API server (CEL), not half-applied.
    let mut both = cert(json!({"parentRef": {"name": "public"}, "backend": backend}));
    both["spec"]["ingress"] = json!({"backend": backend});
    let refused = op.apply(both).await;
    ensure!(
        refused
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("exclude each other")),
        "{refused:?}"
    );

    op.apply(cert(
        json!({"parentRef": {"name": "public"}, "backend": backend}),
    ))
    .await?;
    let ic = op.wait_for::<IngressCert>("Ready", "shop", ready).await?;
    let route = http_route(&op, &ns, "shop").await?;
    let parent = &route["spec"]["parentRefs"][0];
    ensure!(
        parent["name"] == "public"
            && parent.get("namespace").is_none()
            && parent.get("sectionName").is_none(),
        "{parent}"
    );
    ensure!(
        route["spec"]["hostnames"] == json!(["shop.localtest.me", "api.shop.localtest.me"])
            && route["spec"]["rules"][0]["backendRefs"][0]["name"] == "shop"
            && route["spec"]["rules"][0]["backendRefs"][0]["port"] == 8080,
        "{route}"
    );
    ensure!(
        get_dynamic(&op, &ns, &reference_grant_resource(), "shop-gateway-tls")
            .await?
            .is_none(),
        "a Gateway of the same namespace needs no grant"
    );
    let cert_ref = ic
        .status
        .and_then(|s| s.listener_certificate_ref)
        .context("no listenerCertificateRef")?;
    apply_object(
        &op.admin,
        gateway(&ns, "shop.localtest.me", &serde_json::to_value(&cert_ref)?),
    )
    .await?;

    // The Gateway's controller (played here by the admin) refuses the route: Ready=False with
    // its words, picked up by the operator's re-read (it does not watch routes); accepted
    // again, Ready again.
    let routes: Api<DynamicObject> =
        Api::namespaced_with(op.admin.clone(), &ns, &http_route_resource());
    judge_route(&routes, "False", "NotAllowedByListeners").await?;
    let texts = &["NotAllowedByListeners", "does not admit this namespace"];
    let refused = not_ready_because("RouteNotAccepted", texts);
    op.wait_for::<IngressCert>("RouteNotAccepted", "shop", refused)
        .await?;
    judge_route(&routes, "True", "Accepted").await?;
    op.wait_for::<IngressCert>("Ready once accepted", "shop", ready)
        .await?;

    // Switched to an Ingress with a class: the route goes.
    op.patch::<IngressCert>(
        "shop",
        json!({"spec": {"httpRoute": null, "ingress": {"className": "internal", "backend": backend}}}),
    )
    .await?;
    wait_dynamic_gone(&op, &http_route_resource(), "shop").await?;
    let ingress = op
        .wait_for::<Ingress>("Ingress shop", "shop", |i| {
            i.map(|_| ()).ok_or_else(|| "absent".to_owned())
        })
        .await?;
    ensure!(ingress.spec.and_then(|s| s.ingress_class_name).as_deref() == Some("internal"));
    op.wait_for::<IngressCert>("Ready with the Ingress", "shop", ready)
        .await?;
    op.stop().await
}

/// The kind workflow's manifests (which only run where Docker is) against the real schemas:
/// `tests/kind/gateway.yaml` (EnvoyProxy, GatewayClass, Gateway) is accepted with strict
/// validation, the example Platform with `tests/kind/platform-httproute.yaml` merged in is a
/// valid Platform, and the Gateway's listener references exactly the Secret that Platform's
/// IngressCert reports (and grants to the Gateway's namespace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_gateway_manifests_match_the_real_schemas_and_the_operator() -> Result<()> {
    install_third_party_crds(&[GATEWAY_API, ENVOY_GATEWAY]).await?;
    let cp = control_plane().await?;
    let admin = cp.admin_client()?;
    // Helm creates Envoy Gateway's namespace in the cluster.
    apply_object(
        &admin,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "envoy-gateway-system"}}),
    )
    .await?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(include_str!("../../tests/kind/gateway.yaml"))?;
    let mut gateway = Value::Null;
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let stored = apply_object(&admin, doc).await?;
        if stored["kind"] == "Gateway" {
            gateway = stored;
        }
    }
    let listener = &gateway["spec"]["listeners"][0];
    ensure!(listener["name"] == "https", "{gateway}");

    let ns = cp.namespace("kind-platform").await?;
    let mut platform: Value = serde_saphyr::from_str(EXAMPLE_PLATFORM)?;
    let patch: Value =
        serde_saphyr::from_str(include_str!("../../tests/kind/platform-httproute.yaml"))?;
    json_patch::merge(&mut platform, &patch);
    let example_ns = platform["metadata"]["namespace"].clone();
    platform["metadata"]["namespace"] = json!(ns.name());
    let stored = apply_object(&admin, platform.clone()).await?;
    ensure!(
        stored["spec"]["httpRoute"]["parentRef"]
            == json!({"name": "public", "namespace": gateway["metadata"]["namespace"], "sectionName": "https"})
            && stored["spec"].get("ingressClassName").is_none(),
        "{stored}"
    );

    // What the operator builds for that Platform in the example's namespace (`payments`).
    platform["metadata"]["namespace"] = example_ns;
    let mut typed: Platform = serde_json::from_value(platform)?;
    typed.metadata.uid = Some("uid-payplane".into());
    let children = platform_build::build(&typed, &platform_build::Resolved::default())?;
    let ic: IngressCert = children
        .iter()
        .find(|c| c.resource.kind == "IngressCert")
        .map(|c| serde_json::from_value(c.object.clone()))
        .context("no IngressCert")??;
    let mut ic = ic;
    ic.metadata.uid = Some("uid-payplane-tls".into());
    let wanted = listener_certificate_ref(&ic).context("no listener certificate ref")?;
    ensure!(
        listener["tls"]["certificateRefs"] == json!([wanted]),
        "the kind Gateway references {}, the operator issues {wanted:?}",
        listener["tls"]["certificateRefs"]
    );
    let grant = payplane_operator::controller::ingress_cert::build::build(
        &ic,
        &payplane_operator::controller::ingress_cert::build::Resolved::default(),
    )?
    .into_iter()
    .find(|c| c.resource.kind == "ReferenceGrant")
    .context("no ReferenceGrant for the kind Gateway")?;
    ensure!(
        grant.object["spec"]["from"][0]["namespace"] == gateway["metadata"]["namespace"],
        "{}",
        grant.object
    );
    Ok(())
}
