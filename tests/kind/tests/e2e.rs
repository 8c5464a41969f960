//! End-to-end tests on a real kind cluster with the chart installed, Envoy Gateway serving the
//! Gateway `edge/public` (`tests/kind/gateway.yaml`) and `examples/platform.yaml` applied with
//! `tests/kind/platform-httproute.yaml` (see `.github/workflows/e2e-kind.yml`). Opt-in: the tests
//! are `#[ignore]` and also skip unless `PAYPLANE_KIND_E2E=1`, so `cargo test` never touches a
//! kube-context.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use payplane_operator::conditions::is_ready;
use payplane_operator::controller::platform::build::{COMPONENTS, app_name};
use payplane_operator::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};
use serde_json::Value;

const NS: &str = "payments";

fn enabled() -> bool {
    std::env::var("PAYPLANE_KIND_E2E").is_ok_and(|v| v == "1")
}

/// A client of the kind cluster, or `None` when the kind tests are not enabled (the test then
/// passes without touching a kube-context).
async fn cluster() -> anyhow::Result<Option<kube::Client>> {
    if !enabled() {
        return Ok(None);
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Ok(Some(kube::Client::try_default().await?))
}

/// Once the Platform is Ready, polls `GET https://payplane.localtest.me{path}` through the TLS
/// gateway on this host for up to 2 minutes until `check` accepts the answer (and passes at
/// once when the kind tests are not enabled).
async fn through_tls_gateway<F, Fut>(path: &str, check: F) -> anyhow::Result<()>
where
    F: Fn(reqwest::Result<reqwest::Response>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let Some(c) = cluster().await? else {
        return Ok(());
    };
    eventually(Duration::from_secs(900), || {
        let c = c.clone();
        async move { all_ready::<Platform>(&c).await }
    })
    .await?;
    // The certificate is signed by the operator-managed CA, which this host does not trust.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("payplane.localtest.me", "127.0.0.1:443".parse()?)
        .build()?;
    let url = format!("https://payplane.localtest.me{path}");
    eventually(Duration::from_secs(120), || {
        let (answer, check) = (http.get(&url).send(), &check);
        async move { Ok(check(answer.await).await) }
    })
    .await
}

/// Polls `check` every 5 s for up to `timeout`.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Result<(), String>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = check().await?;
        match last {
            Ok(()) => return Ok(()),
            Err(why) if Instant::now() > deadline => anyhow::bail!("timed out: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
}

async fn all_ready<K>(client: &kube::Client) -> anyhow::Result<Result<(), String>>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + payplane_operator::crd::HasConditions
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let list = Api::<K>::namespaced(client.clone(), NS)
        .list(&kube::api::ListParams::default())
        .await?;
    if list.items.is_empty() {
        return Ok(Err(format!("no {}", K::kind(&()))));
    }
    let not_ready: Vec<String> = list
        .items
        .iter()
        .filter(|o| !is_ready(*o))
        .map(|o| {
            format!(
                "{} {}",
                K::kind(&()),
                o.meta().name.clone().unwrap_or_default()
            )
        })
        .collect();
    Ok(if not_ready.is_empty() {
        Ok(())
    } else {
        Err(not_ready.join(", "))
    })
}

#[tokio::test]
#[ignore = "needs a kind cluster; run with PAYPLANE_KIND_E2E=1 cargo test -p payplane-kind-tests -- --ignored"]
async fn platform_and_every_child_become_ready() -> anyhow::Result<()> {
    let Some(c) = cluster().await? else {
        return Ok(());
    };
    eventually(Duration::from_secs(900), || {
        let c = c.clone();
        async move {
            for r in [
                all_ready::<PostgresCluster>(&c).await?,
                all_ready::<Database>(&c).await?,
                all_ready::<MessageBroker>(&c).await?,
                all_ready::<Queue>(&c).await?,
                all_ready::<IngressCert>(&c).await?,
                all_ready::<AppService>(&c).await?,
                all_ready::<Platform>(&c).await?,
            ] {
                if r.is_err() {
                    return Ok(r);
                }
            }
            Ok(Ok(()))
        }
    })
    .await?;
    let deployments = Api::<Deployment>::namespaced(c.clone(), NS);
    for (component, _) in COMPONENTS {
        let name = &app_name("payplane", component);
        let d = deployments.get(name).await?;
        let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
        assert!(available >= 1, "{name} has no available replica");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs a kind cluster; run with PAYPLANE_KIND_E2E=1 cargo test -p payplane-kind-tests -- --ignored"]
async fn gateway_answers_through_the_tls_gateway() -> anyhow::Result<()> {
    through_tls_gateway("/health/live", |answer| async move {
        match answer.map(|r| r.status().as_u16()) {
            // 502/503/504 come from Envoy when the payplane gateway does not answer.
            Ok(s) if ![502, 503, 504].contains(&s) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test]
#[ignore = "needs a kind cluster; run with PAYPLANE_KIND_E2E=1 cargo test -p payplane-kind-tests -- --ignored"]
async fn console_sign_in_page_through_the_tls_gateway() -> anyhow::Result<()> {
    // The gateway routes pages to the console AppService; the sign-in page is its HTML.
    through_tls_gateway("/signin", |answer| async move {
        let page = match answer {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            other => return Err(format!("{:?}", other.map(|r| r.status()))),
        };
        if page.contains("action=\"/signin\"") {
            Ok(())
        } else {
            Err("no sign-in form".to_owned())
        }
    })
    .await
}

fn gateway_api(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// `type` is `True` among `conditions`, or what they say instead.
fn holds(conditions: &Value, type_: &str) -> Result<(), String> {
    let found = conditions
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    match found {
        Some(c) if c["status"] == "True" => Ok(()),
        other => Err(format!("{type_}: {other:?}")),
    }
}

/// Envoy Gateway accepts the operator's HTTPRoute on the `https` listener and resolves its
/// backend; the listener resolves the certificate Secret of another namespace (through the
/// operator's ReferenceGrant) and is programmed.
#[tokio::test]
#[ignore = "needs a kind cluster; run with PAYPLANE_KIND_E2E=1 cargo test -p payplane-kind-tests -- --ignored"]
async fn envoy_gateway_accepts_the_route_and_resolves_the_certificate() -> anyhow::Result<()> {
    let Some(c) = cluster().await? else {
        return Ok(());
    };
    let routes: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), NS, &gateway_api("HTTPRoute", "httproutes"));
    let gateways: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), "edge", &gateway_api("Gateway", "gateways"));
    eventually(Duration::from_secs(600), || {
        let (routes, gateways) = (routes.clone(), gateways.clone());
        async move {
            let Some(route) = routes.get_opt("payplane-tls").await? else {
                return Ok(Err("no HTTPRoute payplane-tls".to_owned()));
            };
            let route = serde_json::to_value(route)?;
            let parent = route["status"]["parents"].as_array().and_then(|ps| {
                ps.iter().find(|p| {
                    p["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
                })
            });
            let Some(parent) = parent else {
                return Ok(Err(format!(
                    "no status from Envoy Gateway: {}",
                    route["status"]
                )));
            };
            if let Err(e) = holds(&parent["conditions"], "Accepted")
                .and_then(|()| holds(&parent["conditions"], "ResolvedRefs"))
            {
                return Ok(Err(format!("HTTPRoute {e}")));
            }
            let gateway = serde_json::to_value(gateways.get("public").await?)?;
            let listener = gateway["status"]["listeners"]
                .as_array()
                .and_then(|ls| ls.iter().find(|l| l["name"] == "https"))
                .cloned()
                .unwrap_or(Value::Null);
            Ok(holds(&listener["conditions"], "ResolvedRefs")
                .and_then(|()| holds(&listener["conditions"], "Programmed"))
                .map_err(|e| format!("listener https {e}")))
        }
    })
    .await
}
