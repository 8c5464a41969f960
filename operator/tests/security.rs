//! Security wiring on a real control plane (issue 14): the gateway started with the environment
//! the operator rendered into its Deployment keys its rate limits on the client behind the
//! trusted proxy and ignores an untrusted peer's `X-Forwarded-For`; each pod's Secrets hold no
//! other caller's credential; the NetworkPolicies admit only the real callers; the `prod`
//! profile refuses a payments service without an external PSP.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use payplane_control_plane::eventually;
use payplane_kit::config::ServiceConfig as _;
use payplane_operator::crd::{AppService, Platform};
use payplane_operator::external::Externals;
use payplane_operator::testing::{EXAMPLE_PLATFORM, Operator, TIMEOUT, condition, env_value};
use serde_json::{Value, json};

const COMPONENTS: [&str; 6] = ["gateway", "auth", "payments", "admin", "profile", "console"];
/// The stand-in for the ingress controller's pod range: loopback's second address, so that
/// a client bound to 127.0.0.1 is an untrusted peer of the same gateway.
const PROXY: &str = "127.0.0.2";

/// The example Platform in the `prod` profile with a real PSP and the proxy range trusted.
fn production_platform() -> Result<Value> {
    let mut p: Value = serde_saphyr::from_str(EXAMPLE_PLATFORM)?;
    p["spec"]["profile"] = json!("prod");
    p["spec"]["psp"] =
        json!({"mode": "external", "webhookSecretsRef": {"name": "psp", "key": "webhook-secrets"}});
    p["spec"]["network"] = json!({"trustedProxies": [format!("{PROXY}/32")]});
    // The example's simulator override is what production refuses.
    p["spec"]["components"]["payments"] = json!({"replicas": 2});
    Ok(p)
}

async fn start_platform(prefix: &str) -> Result<Operator> {
    let op = Operator::start(prefix, Externals::simulated()).await?;
    op.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "psp", "labels": {"app.kubernetes.io/part-of": "payplane"}},
        "stringData": {"webhook-secrets": "whsec-one"}
    }))
    .await?;
    op.apply(production_platform()?).await?;
    Ok(op)
}

async fn deployment(op: &Operator, name: &str) -> Result<Deployment> {
    eventually(TIMEOUT, &format!("Deployment {name}"), || async {
        Ok(match op.get::<Deployment>(name).await? {
            Some(d) => Ok(d),
            None => Err("absent".to_owned()),
        })
    })
    .await
}

fn pod_spec(d: &Deployment) -> Result<PodSpec> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .context("pod template")
}

async fn secret_data(op: &Operator, name: &str) -> Result<BTreeMap<String, String>> {
    let s = op
        .get::<Secret>(name)
        .await?
        .with_context(|| format!("Secret {name}"))?;
    Ok(s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect())
}

/// The environment of the first container as the kubelet would assemble it: `envFrom`
/// ConfigMaps, then `env` literals and Secret keys.
async fn rendered_env(op: &Operator, pod: &PodSpec) -> Result<BTreeMap<String, String>> {
    let container = pod.containers.first().context("container")?;
    let mut env = BTreeMap::new();
    for from in container.env_from.iter().flatten() {
        if let Some(cm) = &from.config_map_ref {
            let cm = op
                .get::<ConfigMap>(&cm.name)
                .await?
                .with_context(|| format!("ConfigMap {}", cm.name))?;
            env.extend(cm.data.unwrap_or_default());
        }
    }
    for e in container.env.iter().flatten() {
        let value = match (
            &e.value,
            e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref()),
        ) {
            (Some(v), _) => v.clone(),
            (None, Some(r)) => secret_data(op, &r.name)
                .await?
                .remove(&r.key)
                .with_context(|| format!("{}: key {} of {}", e.name, r.key, r.name))?,
            (None, None) => String::new(),
        };
        env.insert(e.name.clone(), value);
    }
    Ok(env)
}

/// Every Secret the pod reads: `env` keys, `envFrom` and volumes.
fn referenced_secrets(pod: &PodSpec) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for c in &pod.containers {
        for e in c.env.iter().flatten() {
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                names.insert(r.name.clone());
            }
        }
        for f in c.env_from.iter().flatten() {
            if let Some(s) = &f.secret_ref {
                names.insert(s.name.clone());
            }
        }
    }
    for v in pod.volumes.iter().flatten() {
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            names.insert(name);
        }
    }
    names
}

/// An upstream that answers 200 to everything (the gateway needs somewhere to forward).
async fn upstream() -> Result<String> {
    let app = axum::Router::new().fallback(|| async { axum::Json(json!({"success": true})) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

async fn login(client: &reqwest::Client, gw: &str, xff: &str) -> Result<u16> {
    Ok(client
        .post(format!("{gw}/api/auth/login"))
        .header("x-forwarded-for", xff)
        .json(&json!({"email": "a@example.com", "password": "x"}))
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_rate_limit_is_keyed_on_the_client_behind_the_rendered_trusted_proxy() -> Result<()>
{
    let op = start_platform("security-gw").await?;
    let gateway = deployment(&op, "payplane-gateway").await?;
    let env = rendered_env(&op, &pod_spec(&gateway)?).await?;
    ensure!(
        env.get("TRUSTED_PROXIES").map(String::as_str) == Some("127.0.0.2/32"),
        "{env:?}"
    );
    ensure!(env.get("ENVIRONMENT").map(String::as_str) == Some("production"));
    // /metrics is never public: the default is the pod network.
    ensure!(
        env.get("METRICS_ALLOWED_CIDRS").map(String::as_str)
            == Some("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"),
        "{env:?}"
    );
    // The services and the console trust the gateway's pod range, not only loopback.
    for c in ["auth", "payments", "admin", "profile", "console"] {
        let app = op.existing::<AppService>(&format!("payplane-{c}")).await?;
        let trusted = env_value(&app, "TRUSTED_PROXIES");
        ensure!(
            trusted.as_deref() == Some("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"),
            "{c}: {trusted:?}"
        );
    }

    // The real gateway, configured from that environment (production: SERVICE_TOKEN is
    // required and comes from the gateway's own credential Secret). Only what points at
    // cluster addresses is redirected to this machine.
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut config =
        payplane_gateway::Config::from_env(&payplane_kit::config::Env::from_pairs(pairs))?;
    ensure!(config.environment.is_production());
    ensure!(config.rate_limits.enabled && config.rate_limits.auth.burst == 5);
    let up = upstream().await?;
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.upstreams = payplane_gateway::config::UPSTREAMS
        .iter()
        .map(|n| (*n, up.clone()))
        .collect();
    config.console_url = up.clone();
    config.redis_url = "redis://127.0.0.1:6379".into();
    config.events_enabled = false;
    config.upstream.ready_poll = std::time::Duration::ZERO;
    config.rate_limits.key_prefix = format!("{}:", op.ns());
    let gw = payplane_gateway::testing::TestGateway::spawn(config).await?;

    let via_proxy = reqwest::Client::builder()
        .local_address(PROXY.parse::<IpAddr>()?)
        .build()?;
    let direct = reqwest::Client::builder()
        .local_address("127.0.0.1".parse::<IpAddr>()?)
        .build()?;
    let base = gw.base_url.clone();
    // Client A through the proxy uses up its auth bucket (burst 5)...
    for i in 0..5 {
        let s = login(&via_proxy, &base, "198.51.100.1").await?;
        ensure!(s == 200, "client A login {i}: {s}");
    }
    let s = login(&via_proxy, &base, "198.51.100.1").await?;
    ensure!(s == 429, "client A over its burst: {s}");
    // ...and client B behind the same proxy still has its own.
    for i in 0..5 {
        let s = login(&via_proxy, &base, "198.51.100.2").await?;
        ensure!(s == 200, "client B login {i}: {s}");
    }
    // An untrusted peer claiming to be B, then rotating the header, is keyed on its own
    // address: a fresh bucket, and the header does not buy it more attempts.
    for i in 0..5 {
        let s = login(&direct, &base, &format!("198.51.100.{}", 10 + i)).await?;
        ensure!(s == 200, "untrusted peer login {i}: {s}");
    }
    let s = login(&direct, &base, "198.51.100.99").await?;
    ensure!(
        s == 429,
        "untrusted peer over its burst despite a new header: {s}"
    );
    gw.stop().await;
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pod_reads_no_other_callers_credential_and_policies_admit_only_real_callers()
-> Result<()> {
    let op = start_platform("security-pods").await?;
    let store = eventually(TIMEOUT, "the token store", || async {
        Ok(match op.get::<Secret>("payplane-service-tokens").await? {
            Some(_) => Ok(()),
            None => Err("absent".to_owned()),
        })
    })
    .await;
    store?;
    let tokens = secret_data(&op, "payplane-service-tokens").await?;
    ensure!(tokens.len() == COMPONENTS.len(), "{tokens:?}");
    // Whose tokens each pod may hold: its own when it calls, its accepted callers' when it is
    // called (api.md §2.6).
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("gateway", &["gateway"][..]),
        ("auth", &["admin", "payments"][..]),
        ("payments", &["payments", "gateway", "admin"][..]),
        ("admin", &["admin"][..]),
        ("profile", &[][..]),
        ("console", &[][..]),
    ]);
    for c in COMPONENTS {
        let d = deployment(&op, &format!("payplane-{c}")).await?;
        let pod = pod_spec(&d)?;
        let mut seen = BTreeSet::new();
        for name in referenced_secrets(&pod) {
            ensure!(
                name != "payplane-service-tokens",
                "{c} reads the token store"
            );
            for value in secret_data(&op, &name).await?.values() {
                for (owner, token) in &tokens {
                    if value.contains(token.as_str()) {
                        seen.insert(owner.clone());
                    }
                }
            }
        }
        let want: BTreeSet<String> = allowed[c].iter().map(|s| (*s).to_owned()).collect();
        ensure!(
            seen == want,
            "{c} holds the tokens of {seen:?}, wants {want:?}"
        );
        // The service itself accepts that environment in production (its required settings
        // present) and trusts the gateway's pod range.
        let env = rendered_env(&op, &pod).await?;
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let env = payplane_kit::config::Env::from_pairs(pairs);
        let trusted = match c {
            "gateway" => payplane_gateway::Config::from_env(&env)?.trusted_proxies,
            "auth" => {
                payplane_auth::Config::from_env(&env)?
                    .common
                    .trusted_proxies
            }
            "payments" => {
                let config = payplane_payments::Config::from_env(&env)?;
                ensure!(
                    config.psp_mode == payplane_payments::config::PspMode::External
                        && config
                            .webhook_secrets
                            .iter()
                            .map(secrecy::ExposeSecret::expose_secret)
                            .eq(["whsec-one"]),
                    "{config:?}"
                );
                config.common.trusted_proxies
            }
            "admin" => {
                payplane_admin::Config::from_env(&env)?
                    .common
                    .trusted_proxies
            }
            "profile" => {
                payplane_profile::Config::from_env(&env)?
                    .common
                    .trusted_proxies
            }
            _ => payplane_console::Config::from_env(&env)?.trusted_proxies,
        };
        let trusted: Vec<String> = trusted.iter().map(ToString::to_string).collect();
        let want = if c == "gateway" {
            vec!["127.0.0.2/32"]
        } else {
            vec!["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        };
        ensure!(trusted == want, "{c}: {trusted:?}");
    }

    // NetworkPolicies as the control plane stores them.
    let sources = |np: &NetworkPolicy, rule: usize| -> Vec<String> {
        np.spec
            .as_ref()
            .and_then(|s| s.ingress.as_ref())
            .and_then(|r| r.get(rule))
            .and_then(|r| r.from.clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                p.pod_selector
                    .as_ref()?
                    .match_labels
                    .as_ref()?
                    .get("app.kubernetes.io/name")
                    .cloned()
            })
            .collect()
    };
    let policy = |name: String| {
        let op = &op;
        async move {
            eventually(TIMEOUT, &format!("NetworkPolicy {name}"), || async {
                Ok(match op.get::<NetworkPolicy>(&name).await? {
                    Some(np) => Ok(np),
                    None => Err("absent".to_owned()),
                })
            })
            .await
        }
    };
    let expect: [(&str, &[&str]); 5] = [
        (
            "auth",
            &[
                "payplane-gateway",
                "payplane-admin",
                "payplane-payments",
                "payplane-profile",
                "prometheus",
            ],
        ),
        (
            "payments",
            &["payplane-gateway", "payplane-admin", "prometheus"],
        ),
        ("admin", &["payplane-gateway", "prometheus"]),
        (
            "profile",
            &["payplane-gateway", "payplane-admin", "prometheus"],
        ),
        ("console", &["payplane-gateway", "prometheus"]),
    ];
    for (c, want) in expect {
        let np = policy(format!("payplane-{c}")).await?;
        ensure!(sources(&np, 0) == want, "{c}: {:?}", sources(&np, 0));
    }
    // The gateway is the public entry point.
    let gw = policy("payplane-gateway".into()).await?;
    ensure!(sources(&gw, 0).is_empty(), "{gw:?}");
    let services = [
        "payplane-auth",
        "payplane-payments",
        "payplane-admin",
        "payplane-profile",
    ];
    let brokers = [
        "payplane-gateway",
        "payplane-auth",
        "payplane-payments",
        "payplane-admin",
        "payplane-profile",
    ];
    let pg = policy("payplane-postgres-access".into()).await?;
    ensure!(sources(&pg, 0) == [&services[..], &["payplane-operator"]].concat());
    let rmq = policy("payplane-rabbitmq-access".into()).await?;
    ensure!(sources(&rmq, 0) == brokers && sources(&rmq, 1) == ["payplane-operator"]);
    let redis = policy("payplane-redis-access".into()).await?;
    ensure!(sources(&redis, 0) == brokers);
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_payments_without_an_external_psp() -> Result<()> {
    let op = Operator::start("security-psp", Externals::simulated()).await?;
    let mut p = production_platform()?;
    p["spec"].as_object_mut().context("spec")?.remove("psp");
    op.apply(p).await?;
    let platform = op
        .wait_for::<Platform>("InvalidSpec", "payplane", |p| {
            let p = p.ok_or("absent")?;
            match condition(p, "Ready") {
                Some(c) if c.reason == "InvalidSpec" && c.message.contains("spec.psp") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
    ensure!(condition(&platform, "Ready").is_some_and(|c| c.status == "False"));
    if !op.list::<AppService>().await?.is_empty() {
        bail!("a refused Platform created AppServices");
    }
    // With the provider configured the same Platform is accepted.
    op.patch::<Platform>(
        "payplane",
        json!({"spec": {"psp": {"mode": "external", "webhookSecretsRef": {"name": "psp", "key": "webhook-secrets"}}}}),
    )
    .await?;
    eventually(TIMEOUT, "the payments AppService", || async {
        Ok(match op.get::<AppService>("payplane-payments").await? {
            Some(a) => {
                let mode = env_value(&a, "PSP_MODE");
                if mode.as_deref() == Some("external") {
                    Ok(())
                } else {
                    Err(format!("{mode:?}"))
                }
            }
            None => Err("absent".to_owned()),
        })
    })
    .await?;
    op.stop().await
}
