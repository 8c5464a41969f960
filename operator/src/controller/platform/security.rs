//! Pure security wiring of a Platform's children (issue 14): the `TRUSTED_PROXIES` and
//! `METRICS_ALLOWED_CIDRS` of each component, the per-pod service credentials of api.md §2.6,
//! the callers each AppService's NetworkPolicy admits, the policies of the built-in
//! PostgreSQL, RabbitMQ and Redis and the payments PSP wiring (its checks are in
//! `validate.rs`). No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

use super::build::{QUEUE_COMPONENTS, SERVICES, app_name, from_secret};
use crate::crd::message_broker::BrokerProvider;
use crate::crd::platform::PspMode;
use crate::crd::postgres_cluster::PostgresProvider;
use crate::crd::{Platform, Provider};

/// The pod network when the Platform names none: the private IPv4 ranges and IPv6 unique
/// local addresses, which hold the pod CIDR of kind, k3s, kubeadm and the managed clouds.
pub const DEFAULT_POD_CIDRS: [&str; 4] =
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

/// Each callee of `/internal/*` and the callers it accepts: the `caller.allow` lists of the
/// auth and payments services (api.md §2.6, §8).
pub const INTERNAL_CALLERS: [(&str, &[&str]); 2] = [
    ("auth", &["admin", "payments"]),
    ("payments", &["gateway", "admin"]),
];

/// Each component and the components that call it over HTTP: the `*_URL`s each one reads
/// (proxying, JWKS, health probes, `/internal/*`).
pub const HTTP_CALLERS: [(&str, &[&str]); 6] = [
    // Plus the public, through the ingress.
    ("gateway", &["console", "admin"]),
    // Every verifier loads the JWKS from auth; admin and payments call its internal API.
    ("auth", &["gateway", "admin", "payments", "profile"]),
    ("payments", &["gateway", "admin"]),
    ("admin", &["gateway"]),
    // Admin probes the health of every service.
    ("profile", &["gateway", "admin"]),
    ("console", &["gateway"]),
];

/// Labels of the operator's own pods (the chart's selector labels), in any namespace: it
/// creates roles and databases over SQL and users over the RabbitMQ management API.
const OPERATOR_POD: &str = "payplane-operator";

/// The pod network: where the gateway's (and the ingress controller's) pods run.
pub fn pod_cidrs(platform: &Platform) -> Vec<String> {
    match &platform.spec.network {
        Some(n) if !n.pod_cidrs.is_empty() => n.pod_cidrs.clone(),
        _ => DEFAULT_POD_CIDRS.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// `TRUSTED_PROXIES` of `component`: the gateway trusts the proxies in front of it, the
/// services and the console trust the gateway's pod range (api.md §3.2).
pub fn trusted_proxies(platform: &Platform, component: &str) -> String {
    let explicit = platform
        .spec
        .network
        .as_ref()
        .and_then(|n| n.trusted_proxies.clone())
        .filter(|l| !l.is_empty());
    match explicit {
        Some(list) if component == "gateway" => list.join(","),
        _ => pod_cidrs(platform).join(","),
    }
}

/// The gateway's `METRICS_ALLOWED_CIDRS`: never empty, so `/metrics` is never public.
pub fn metrics_allowed(platform: &Platform) -> String {
    platform
        .spec
        .network
        .as_ref()
        .and_then(|n| n.metrics_allowed_cidrs.clone())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| pod_cidrs(platform))
        .join(",")
}

/// The callers `callee` accepts on `/internal/*` (empty: it has no internal endpoints).
pub fn accepted_callers(callee: &str) -> &'static [&'static str] {
    INTERNAL_CALLERS
        .iter()
        .find(|(c, _)| *c == callee)
        .map_or(&[], |(_, callers)| callers)
}

/// Whether `component` calls some `/internal/*` endpoint (and so holds a token of its own).
pub fn is_caller(component: &str) -> bool {
    INTERNAL_CALLERS
        .iter()
        .any(|(_, callers)| callers.contains(&component))
}

/// Name of the Secret with `component`'s credentials; its pods reference no other.
pub fn credentials_secret(p: &str, component: &str) -> String {
    format!("{p}-{component}-service-token")
}

/// Data of `component`'s credential Secret: `token`, its own secret when it calls others, and
/// `internal`, the `name=secret` pairs of the callers it accepts when it is a callee.
pub fn credentials_data(
    component: &str,
    tokens: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    if is_caller(component)
        && let Some(own) = tokens.get(component)
    {
        data.insert("token".to_owned(), own.clone());
    }
    let accepted = accepted_callers(component);
    if !accepted.is_empty() {
        let pairs = accepted
            .iter()
            .filter_map(|c| tokens.get(*c).map(|t| format!("{c}={t}")))
            .collect::<Vec<_>>()
            .join(",");
        data.insert("internal".to_owned(), pairs);
    }
    data
}

fn plain_env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    }
}

/// `SERVICE_TOKEN` and `INTERNAL_SERVICE_TOKENS` of `component`, each only where it is used.
pub fn credential_env(p: &str, component: &str) -> Vec<EnvVar> {
    let secret = credentials_secret(p, component);
    let mut env = Vec::new();
    if is_caller(component) {
        env.push(from_secret("SERVICE_TOKEN", &secret, "token"));
    }
    if !accepted_callers(component).is_empty() {
        env.push(from_secret("INTERNAL_SERVICE_TOKENS", &secret, "internal"));
    }
    env
}

/// The trust, metrics and PSP settings of `component`.
pub fn security_env(platform: &Platform, component: &str) -> Vec<EnvVar> {
    let mut env = vec![plain_env(
        "TRUSTED_PROXIES",
        trusted_proxies(platform, component),
    )];
    if component == "gateway" {
        env.push(plain_env(
            "METRICS_ALLOWED_CIDRS",
            metrics_allowed(platform),
        ));
    }
    if component == "payments" {
        let psp = platform.spec.psp.clone().unwrap_or_default();
        let mode = match psp.mode {
            PspMode::Simulator => "simulator",
            PspMode::External => "external",
        };
        env.push(plain_env("PSP_MODE", mode.to_owned()));
        if let Some(r) = psp.webhook_secrets_ref {
            env.push(from_secret("PSP_WEBHOOK_SECRETS", &r.name, &r.key));
        }
    }
    env
}

fn pods(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        match_expressions: None,
    }
}

/// The pods of the AppService `component` of platform `p` (its migration Job's too), in the
/// platform's namespace.
pub fn app_peer(p: &str, component: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(pods(&[("app.kubernetes.io/name", &app_name(p, component))])),
        ..NetworkPolicyPeer::default()
    }
}

/// Pods with `app.kubernetes.io/name: name` in any namespace.
fn anywhere(name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector::default()),
        pod_selector: Some(pods(&[("app.kubernetes.io/name", name)])),
        ip_block: None,
    }
}

/// The scrapers of `/metrics`.
pub fn metrics_peers(platform: &Platform) -> Vec<NetworkPolicyPeer> {
    platform
        .spec
        .network
        .as_ref()
        .and_then(|n| n.metrics_from.clone())
        .unwrap_or_else(|| vec![anywhere("prometheus")])
}

/// The sources `component`'s NetworkPolicy admits: its HTTP callers and the scrapers; for
/// the gateway any source unless `network.gatewayFrom` names the ingress controller.
pub fn allow_from(platform: &Platform, p: &str, component: &str) -> Option<Vec<NetworkPolicyPeer>> {
    let callers = HTTP_CALLERS
        .iter()
        .find(|(c, _)| *c == component)
        .map_or(&[][..], |(_, callers)| callers);
    let mut peers: Vec<NetworkPolicyPeer> = callers.iter().map(|c| app_peer(p, c)).collect();
    peers.extend(metrics_peers(platform));
    if component == "gateway" {
        let public = platform
            .spec
            .network
            .as_ref()
            .and_then(|n| n.gateway_from.clone())?;
        peers.extend(public);
    }
    Some(peers)
}

/// One NetworkPolicy of a built-in backing service: its name, component and body.
pub struct BackingPolicy {
    pub name: String,
    pub component: &'static str,
    pub body: Value,
}

fn policy(selector: &Value, ingress: &Value) -> Value {
    json!({"spec": {
        "podSelector": {"matchLabels": selector},
        "policyTypes": ["Ingress"],
        "ingress": ingress,
    }})
}

/// The NetworkPolicies of the built-in PostgreSQL, RabbitMQ and Redis: only their users (the
/// services, their migration Jobs and the operator) reach them. External servers are the
/// user's to fence.
pub fn backing_policies(platform: &Platform, p: &str) -> Vec<BackingPolicy> {
    let spec = &platform.spec;
    let builtin = |provider: Option<Provider>| provider.is_none_or(|v| v == Provider::Builtin);
    let peers = |components: &[&str], operator: bool| {
        let mut v: Vec<Value> = components
            .iter()
            .map(|c| serde_json::to_value(app_peer(p, c)).unwrap_or(Value::Null))
            .collect();
        if operator {
            v.push(serde_json::to_value(anywhere(OPERATOR_POD)).unwrap_or(Value::Null));
        }
        v
    };
    let mut out = Vec::new();
    // CloudNativePG's and the RabbitMQ cluster operator's pods are fenced by those projects'
    // own rules (replication, their operators' status probes), not by these.
    if spec
        .postgres
        .as_ref()
        .is_none_or(|x| x.provider == PostgresProvider::Builtin)
    {
        let pg = format!("{p}-pg");
        out.push(BackingPolicy {
            name: format!("{p}-postgres-access"),
            component: "postgres",
            body: policy(
                &json!({"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": pg}),
                &json!([{"from": peers(&SERVICES, true), "ports": [{"port": 5432, "protocol": "TCP"}]}]),
            ),
        });
    }
    if spec
        .broker
        .as_ref()
        .is_none_or(|x| x.provider == BrokerProvider::Builtin)
    {
        let rmq = format!("{p}-rmq");
        let nodes =
            json!({"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/instance": rmq});
        out.push(BackingPolicy {
            name: format!("{p}-rabbitmq-access"),
            component: "rabbitmq",
            body: policy(
                &nodes,
                &json!([
                    {"from": peers(&QUEUE_COMPONENTS, false), "ports": [{"port": 5672, "protocol": "TCP"}]},
                    {"from": peers(&[], true), "ports": [{"port": 5672, "protocol": "TCP"}, {"port": 15672, "protocol": "TCP"}]},
                    // Clustering between the broker's own nodes (epmd, distribution, CLI).
                    {"from": [{"podSelector": {"matchLabels": nodes}}]}
                ]),
            ),
        });
    }
    if builtin(spec.cache.as_ref().map(|x| x.provider)) {
        out.push(BackingPolicy {
            name: format!("{p}-redis-access"),
            component: "redis",
            body: policy(
                &json!({"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": p}),
                &json!([{"from": peers(&QUEUE_COMPONENTS, false), "ports": [{"port": 6379, "protocol": "TCP"}]}]),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::platform::PlatformNetwork;

    fn tokens() -> BTreeMap<String, String> {
        ["gateway", "auth", "payments", "admin", "profile", "console"]
            .iter()
            .map(|c| ((*c).to_owned(), format!("tok-{c}")))
            .collect()
    }

    #[test]
    fn each_credential_secret_holds_its_own_token_and_only_the_callers_it_accepts() {
        let t = tokens();
        let data = |c| credentials_data(c, &t);
        assert_eq!(
            data("gateway"),
            BTreeMap::from([("token".to_owned(), "tok-gateway".to_owned())])
        );
        assert_eq!(
            data("auth"),
            BTreeMap::from([(
                "internal".to_owned(),
                "admin=tok-admin,payments=tok-payments".to_owned()
            )])
        );
        assert_eq!(
            data("payments"),
            BTreeMap::from([
                (
                    "internal".to_owned(),
                    "gateway=tok-gateway,admin=tok-admin".to_owned()
                ),
                ("token".to_owned(), "tok-payments".to_owned()),
            ])
        );
        assert_eq!(
            data("admin"),
            BTreeMap::from([("token".to_owned(), "tok-admin".to_owned())])
        );
        assert!(data("profile").is_empty());
        assert!(data("console").is_empty());
        // The gateway and profile, the internet-facing pods, never hold admin's secret.
        for c in ["gateway", "profile", "console"] {
            assert!(
                !data(c).values().any(|v| v.contains("tok-admin")),
                "{c}: {:?}",
                data(c)
            );
        }
    }

    #[test]
    fn credential_env_references_only_the_components_own_secret() {
        for c in ["gateway", "auth", "payments", "admin", "profile", "console"] {
            let env = credential_env("pp", c);
            for e in &env {
                let r = e
                    .value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .expect("secret ref");
                assert_eq!(r.name, format!("pp-{c}-service-token"));
                assert!(credentials_data(c, &tokens()).contains_key(&r.key), "{c}");
            }
            let names: Vec<_> = env.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(
                names.contains(&"SERVICE_TOKEN"),
                ["gateway", "admin", "payments"].contains(&c),
                "{c}"
            );
            assert_eq!(
                names.contains(&"INTERNAL_SERVICE_TOKENS"),
                ["auth", "payments"].contains(&c),
                "{c}"
            );
        }
    }

    #[test]
    fn trusted_proxies_default_to_the_pod_network_and_the_gateway_takes_the_explicit_list() {
        let mut p = Platform::example();
        assert_eq!(
            trusted_proxies(&p, "gateway"),
            "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
        );
        assert_eq!(metrics_allowed(&p), trusted_proxies(&p, "auth"));
        p.spec.network = Some(PlatformNetwork {
            pod_cidrs: vec!["10.244.0.0/16".into()],
            trusted_proxies: Some(vec!["10.96.5.0/24".into(), "2001:db8::/64".into()]),
            metrics_allowed_cidrs: Some(vec!["10.244.7.0/24".into()]),
            ..PlatformNetwork::default()
        });
        assert_eq!(trusted_proxies(&p, "gateway"), "10.96.5.0/24,2001:db8::/64");
        for c in ["auth", "payments", "admin", "profile", "console"] {
            assert_eq!(trusted_proxies(&p, c), "10.244.0.0/16", "{c}");
        }
        assert_eq!(metrics_allowed(&p), "10.244.7.0/24");
        let env = security_env(&p, "gateway");
        assert!(env.iter().any(|e| e.name == "METRICS_ALLOWED_CIDRS"));
        assert!(
            !security_env(&p, "auth")
                .iter()
                .any(|e| e.name == "METRICS_ALLOWED_CIDRS")
        );
    }

    #[test]
    fn payments_gets_the_psp_mode_and_webhook_secret() {
        let p = Platform::prod_with_psp();
        let env = security_env(&p, "payments");
        assert!(
            env.iter()
                .any(|e| e.name == "PSP_MODE" && e.value.as_deref() == Some("external"))
        );
        assert!(env.iter().any(|e| {
            e.name == "PSP_WEBHOOK_SECRETS"
                && e.value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .is_some_and(|r| r.name == "psp" && r.key == "webhook")
        }));
        let dev = security_env(&Platform::example(), "payments");
        assert!(
            dev.iter()
                .any(|e| e.name == "PSP_MODE" && e.value.as_deref() == Some("simulator"))
        );
    }

    fn names(peers: &[NetworkPolicyPeer]) -> Vec<String> {
        peers
            .iter()
            .filter_map(|p| p.pod_selector.as_ref())
            .filter_map(|s| s.match_labels.as_ref())
            .filter_map(|l| l.get("app.kubernetes.io/name").cloned())
            .collect()
    }

    #[test]
    fn each_service_admits_only_its_real_callers_and_prometheus() {
        let p = Platform::example();
        let from = |c| names(&allow_from(&p, "pp", c).expect("restricted"));
        assert_eq!(
            from("auth"),
            [
                "pp-gateway",
                "pp-admin",
                "pp-payments",
                "pp-profile",
                "prometheus"
            ]
        );
        assert_eq!(from("payments"), ["pp-gateway", "pp-admin", "prometheus"]);
        assert_eq!(from("admin"), ["pp-gateway", "prometheus"]);
        assert_eq!(from("profile"), ["pp-gateway", "pp-admin", "prometheus"]);
        assert_eq!(from("console"), ["pp-gateway", "prometheus"]);
        // The public entry point stays open unless the ingress controller is named.
        assert_eq!(allow_from(&p, "pp", "gateway"), None);
        let mut q = Platform::example();
        q.spec.network = Some(PlatformNetwork {
            gateway_from: Some(vec![anywhere("ingress-nginx")]),
            ..PlatformNetwork::default()
        });
        assert_eq!(
            names(&allow_from(&q, "pp", "gateway").expect("restricted")),
            ["pp-console", "pp-admin", "prometheus", "ingress-nginx"]
        );
    }

    #[test]
    fn backing_services_admit_only_their_users() {
        let p = Platform::example();
        let policies = backing_policies(&p, "pp");
        let by_name = |n: &str| {
            policies
                .iter()
                .find(|x| x.name == n)
                .map(|x| x.body.clone())
                .expect(n)
        };
        let from_names = |rule: &Value| -> Vec<String> {
            rule["from"]
                .as_array()
                .expect("from")
                .iter()
                .filter_map(|p| p["podSelector"]["matchLabels"]["app.kubernetes.io/name"].as_str())
                .map(str::to_owned)
                .collect()
        };
        let pg = by_name("pp-postgres-access");
        assert_eq!(
            pg["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"],
            "pp-pg"
        );
        assert_eq!(
            from_names(&pg["spec"]["ingress"][0]),
            [
                "pp-auth",
                "pp-payments",
                "pp-admin",
                "pp-profile",
                "payplane-operator"
            ]
        );
        let rmq = by_name("pp-rabbitmq-access");
        assert_eq!(
            from_names(&rmq["spec"]["ingress"][0]),
            [
                "pp-gateway",
                "pp-auth",
                "pp-payments",
                "pp-admin",
                "pp-profile"
            ]
        );
        assert_eq!(
            from_names(&rmq["spec"]["ingress"][1]),
            ["payplane-operator"]
        );
        assert_eq!(from_names(&rmq["spec"]["ingress"][2]), ["rabbitmq"]);
        let redis = by_name("pp-redis-access");
        assert_eq!(
            from_names(&redis["spec"]["ingress"][0]),
            [
                "pp-gateway",
                "pp-auth",
                "pp-payments",
                "pp-admin",
                "pp-profile"
            ]
        );
        // No rule is an empty `from` (which would admit every source).
        for x in &policies {
            for rule in x.body["spec"]["ingress"].as_array().expect("ingress") {
                assert!(
                    !rule["from"].as_array().expect("from").is_empty(),
                    "{}",
                    x.name
                );
            }
        }
    }

    #[test]
    fn external_backing_services_get_no_policy() {
        let mut p = Platform::example();
        p.spec.postgres = Some(crate::crd::platform::PlatformPostgres {
            provider: PostgresProvider::External,
            ..Default::default()
        });
        let names: Vec<_> = backing_policies(&p, "pp")
            .into_iter()
            .map(|x| x.name)
            .collect();
        assert_eq!(names, ["pp-rabbitmq-access", "pp-redis-access"]);
    }
}
