//! The CRDs: the committed `crds/*.yaml` must equal what the Rust types generate (run
//! `cargo run -p payplane-operator -- crd` after changing a type), and on a real API server
//! (`payplane-control-plane`) they install, every example applies with strict server-side
//! apply, and each CEL rule rejects a bad object with its message.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use payplane_operator::crd::{AppService, Platform, PostgresCluster};
use payplane_operator::testing::{apply_object, control_plane, repo};
use serde_json::{Value, json};

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

#[test]
fn committed_crds_match_the_types() -> anyhow::Result<()> {
    let rendered = payplane_operator::crd::render_all()?;
    assert_eq!(rendered.len(), 7);
    for (file, yaml) in &rendered {
        let committed = std::fs::read_to_string(crds_dir().join(file)).map_err(|e| {
            anyhow::anyhow!("crds/{file} is missing ({e}); run `payplane-operator crd`")
        })?;
        assert!(
            committed == *yaml,
            "crds/{file} drifted from the Rust types; run `cargo run -p payplane-operator -- crd`"
        );
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(crds_dir())?
        .filter_map(Result::ok)
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("yaml"))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = rendered.into_iter().map(|(f, _)| f).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "crds/ holds a file no type generates");
    Ok(())
}

#[test]
fn crds_carry_short_names_columns_and_validation_rules() -> anyhow::Result<()> {
    for crd in payplane_operator::crd::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let version = &crd.spec.versions[0];
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{name}: short name"
        );
        let columns: Vec<String> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        for col in ["Ready", "Reason", "Age"] {
            assert!(
                columns.iter().any(|c| c == col),
                "{name}: printer column {col}"
            );
        }
        let schema = serde_json::to_value(&version.schema)?;
        let conditions = schema
            .pointer("/openAPIV3Schema/properties/status/properties/conditions")
            .ok_or_else(|| anyhow::anyhow!("{name}: no status.conditions"))?;
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{name}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{name}"
        );
        let text = schema.to_string();
        assert!(
            text.contains("x-kubernetes-validations"),
            "{name}: CEL rules"
        );
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: status subresource"
        );
    }
    Ok(())
}

#[test]
fn chart_ships_the_same_crds() -> anyhow::Result<()> {
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/payplane/crds");
    for (file, yaml) in payplane_operator::crd::render_all()? {
        let shipped = std::fs::read_to_string(chart.join(&file))?;
        assert!(
            shipped == yaml,
            "charts/payplane/crds/{file} drifted; run `payplane-operator crd`"
        );
    }
    Ok(())
}

#[test]
fn chart_rbac_has_no_wildcards_and_covers_every_kind() -> anyhow::Result<()> {
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/payplane/templates");
    let rbac = std::fs::read_to_string(templates.join("rbac.yaml"))?;
    let rules: Vec<&str> = rbac
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        rules.iter().all(|l| !l.contains('*')),
        "RBAC must not use wildcards"
    );
    for kind in [
        "platforms",
        "appservices",
        "postgresclusters",
        "databases",
        "messagebrokers",
        "queues",
        "ingresscerts",
    ] {
        assert!(rbac.contains(&format!("{kind}/status")), "{kind}/status");
    }
    for needed in [
        "deployments",
        "statefulsets",
        "jobs",
        "secrets",
        "leases",
        "events",
        "ingresses",
    ] {
        assert!(rbac.contains(needed), "{needed}");
    }
    assert!(!rbac.contains("cluster-admin"));
    Ok(())
}

#[tokio::test]
async fn every_crd_is_installed_and_established_on_the_real_server() -> Result<()> {
    let cp = control_plane().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(cp.admin_client()?);
    for crd in payplane_operator::crd::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let served = crds.get(&name).await.with_context(|| name.clone())?;
        let conditions = served.status.and_then(|s| s.conditions).unwrap_or_default();
        for wanted in ["Established", "NamesAccepted"] {
            ensure!(
                conditions
                    .iter()
                    .any(|c| c.type_ == wanted && c.status == "True"),
                "{name}: {wanted} not True: {conditions:?}"
            );
        }
        // The server kept the schema as generated: no field was dropped on the way in.
        ensure!(
            served.spec.versions[0].schema == crd.spec.versions[0].schema,
            "{name}: the API server changed the schema"
        );
    }
    Ok(())
}

/// Other projects' CRDs (CloudNativePG, the RabbitMQ cluster operator, the Gateway API) come
/// from their Go modules at pinned versions and are served by the real API server: a provider
/// test validates our objects against their real schemas.
#[tokio::test]
async fn third_party_crds_from_go_modules_are_served() -> Result<()> {
    use payplane_control_plane::{CLOUDNATIVE_PG, GATEWAY_API, RABBITMQ_CLUSTER_OPERATOR};
    payplane_operator::testing::install_third_party_crds(&[
        CLOUDNATIVE_PG,
        RABBITMQ_CLUSTER_OPERATOR,
        GATEWAY_API,
    ])
    .await?;
    let crds: Api<CustomResourceDefinition> = Api::all(control_plane().await?.admin_client()?);
    for name in [
        "clusters.postgresql.cnpg.io",
        "rabbitmqclusters.rabbitmq.com",
        "httproutes.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
    ] {
        crds.get(name).await.with_context(|| name.to_string())?;
    }
    Ok(())
}

/// `expected` is contained in `actual`: every field the user wrote is stored with the same
/// value (the server may add defaults, but must not drop or change anything).
fn contained(expected: &Value, actual: &Value, path: &str) -> Result<()> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let Some(got) = a.get(k) else {
                    bail!("{path}.{k} was dropped by the server");
                };
                contained(v, got, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .try_for_each(|(i, (e, a))| contained(e, a, &format!("{path}[{i}]"))),
        _ if expected == actual => Ok(()),
        _ => bail!("{path}: wrote {expected}, stored {actual}"),
    }
}

#[tokio::test]
async fn every_example_applies_with_strict_server_side_apply() -> Result<()> {
    let cp = control_plane().await?;
    let ns = cp.namespace("examples").await?;
    let admin = cp.admin_client()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    ensure!(files.len() >= 7, "examples/ has {} files", files.len());
    for file in files {
        let docs: Vec<Value> = serde_saphyr::from_multiple(&std::fs::read_to_string(&file)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for mut doc in docs.into_iter().filter(|d| !d.is_null()) {
            doc["metadata"]["namespace"] = json!(ns.name());
            let what = format!("{} {}", file.display(), doc["metadata"]["name"]);
            let stored = apply_object(&admin, doc.clone())
                .await
                .with_context(|| what.clone())?;
            contained(&doc["spec"], &stored["spec"], "spec").context(what)?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn autoscaling_cpu_target_is_spelled_as_in_the_hpa_api() -> Result<()> {
    let cp = control_plane().await?;
    let ns = cp.namespace("hpa-spelling").await?;
    let stored = apply_object(
        &cp.admin_client()?,
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "AppService",
            "metadata": {"name": "web", "namespace": ns.name()},
            "spec": {"image": "web:1", "autoscaling":
                {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 55}}}),
    )
    .await?;
    let app: AppService = serde_json::from_value(stored)?;
    let target = app
        .spec
        .autoscaling
        .map(|a| a.target_cpu_utilization_percentage);
    ensure!(target == Some(55), "stored target {target:?}");
    // What the schema said before is still read (objects written by older tooling).
    let old: AppService = serde_json::from_value(json!({
        "apiVersion": "payplane.dev/v1alpha1", "kind": "AppService", "metadata": {"name": "web"},
        "spec": {"image": "web:1", "autoscaling":
            {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilizationPercentage": 60}}}))?;
    ensure!(
        old.spec
            .autoscaling
            .map(|a| a.target_cpu_utilization_percentage)
            == Some(60)
    );
    Ok(())
}

#[tokio::test]
async fn explicit_null_is_accepted_for_nullable_enums() -> Result<()> {
    let cp = control_plane().await?;
    let ns = cp.namespace("null-enums").await?;
    let admin = cp.admin_client()?;
    let platform = apply_object(
        &admin,
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Platform",
            "metadata": {"name": "pp", "namespace": ns.name()},
            "spec": {"version": "0.1.0", "domain": "pay.example.com",
                "broker": {"provider": "builtin", "replicas": null},
                "postgres": {"provider": "external", "external": {"host": "db", "sslMode": null,
                    "superuserSecretRef": {"name": "pg", "key": "password"}}}}}),
    )
    .await?;
    let platform: Platform = serde_json::from_value(platform)?;
    let broker = platform.spec.broker.context("broker")?;
    ensure!(broker.replicas.is_none(), "{broker:?}");
    let cluster = apply_object(
        &admin,
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "PostgresCluster",
            "metadata": {"name": "pg", "namespace": ns.name()},
            "spec": {"provider": "external", "external": {"host": "db", "sslMode": null,
                "superuserSecretRef": {"name": "pg", "key": "password"}}}}),
    )
    .await?;
    let cluster: PostgresCluster = serde_json::from_value(cluster)?;
    ensure!(
        cluster
            .spec
            .external
            .context("external")?
            .ssl_mode
            .is_none()
    );
    // A plain create (what `kubectl create` and client-side apply send) as well.
    // (Untyped: a typed Platform would not serialize the null at all.)
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        admin,
        ns.name(),
        &kube::core::ApiResource::erase::<Platform>(&()),
    );
    let created = api
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Platform",
                "metadata": {"name": "created"},
                "spec": {"version": "0.1.0", "domain": "pay.example.com",
                    "broker": {"provider": "builtin", "replicas": null}}}),
            )?,
        )
        .await?;
    let created: Platform = serde_json::from_value(serde_json::to_value(created)?)?;
    ensure!(created.spec.broker.and_then(|b| b.replicas).is_none());
    Ok(())
}

/// The rules that replace the `enum` of nullable fields still refuse a value off the list
/// (one message per field type: the broker's node count and libpq's `sslmode`).
#[tokio::test]
async fn cel_nullable_enum_refuses_other_ssl_modes() -> Result<()> {
    let with = |mode: &str| {
        json!({"provider": "external", "external": {"host": "db", "sslMode": mode,
            "superuserSecretRef": {"name": "pg", "key": "password"}}})
    };
    rejected_on_create(
        "PostgresCluster",
        with("verify-full"),
        with("sometimes"),
        r#"must be one of "disable", "prefer", "require", "verify-ca", "verify-full""#,
    )
    .await?;
    rejected_on_create(
        "Platform",
        platform(json!({"postgres": with("require")})),
        platform(json!({"postgres": with("sometimes")})),
        r#"must be one of "disable", "prefer", "require", "verify-ca", "verify-full""#,
    )
    .await
}

/// A valid object of `kind` with `spec`, applied into a fresh namespace.
fn object(kind: &str, ns: &str, spec: Value) -> Value {
    let mut object = json!({"apiVersion": "payplane.dev/v1alpha1", "kind": kind,
        "metadata": {"name": "x", "namespace": ns}});
    object["spec"] = spec;
    object
}

/// Applying `spec` as a new object fails with the CEL rule's `message`, while `valid` (the
/// same kind without the mistake) is accepted.
async fn rejected_on_create(kind: &str, valid: Value, bad: Value, message: &str) -> Result<()> {
    let accepted = "the valid object must be accepted";
    rejected(kind, (valid, accepted), (bad, Some("bad")), message).await
}

/// Creating `spec` works; applying `update` over it fails with the CEL rule's `message`.
async fn rejected_on_update(kind: &str, spec: Value, update: Value, message: &str) -> Result<()> {
    let accepted = "the first version must be accepted";
    rejected(kind, (spec, accepted), (update, None), message).await
}

/// Applies `first`, which must be accepted (else the error says `accepted`), then `second`
/// (renamed to `name` when given: a new object), which the CEL rule's `message` must refuse.
async fn rejected(
    kind: &str,
    (first, accepted): (Value, &'static str),
    (second, name): (Value, Option<&str>),
    message: &str,
) -> Result<()> {
    let cp = control_plane().await?;
    let ns = cp.namespace(&format!("cel-{kind}")).await?;
    let admin = cp.admin_client()?;
    apply_object(&admin, object(kind, ns.name(), first))
        .await
        .context(accepted)?;
    let mut second = object(kind, ns.name(), second);
    if let Some(name) = name {
        second["metadata"]["name"] = json!(name);
    }
    expect_rejection(apply_object(&admin, second).await, message)
}

fn expect_rejection(result: Result<Value>, message: &str) -> Result<()> {
    let Err(e) = result else {
        bail!("accepted; expected the rule {message:?} to reject it");
    };
    let status = e
        .chain()
        .find_map(|c| match c.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(s)) => Some((s.code, s.message.clone())),
            _ => None,
        });
    let Some((code, text)) = status else {
        bail!("not an API answer: {e:#}");
    };
    ensure!(code == 422, "HTTP {code}: {text}");
    ensure!(
        text.contains(message),
        "rejected, but not by {message:?}: {text}"
    );
    Ok(())
}

fn app(extra: Value) -> Value {
    let mut spec = json!({"image": "web:1"});
    if let (Some(s), Value::Object(e)) = (spec.as_object_mut(), extra) {
        s.extend(e);
    }
    spec
}

fn database(name: &str, owner: &str) -> Value {
    json!({"clusterRef": {"name": "pg"}, "databaseName": name, "owner": owner})
}

fn cert(extra: Value) -> Value {
    let mut spec = json!({"hosts": ["pay.example.com"], "secretName": "tls"});
    if let (Some(s), Value::Object(e)) = (spec.as_object_mut(), extra) {
        s.extend(e);
    }
    spec
}

fn external_broker() -> Value {
    json!({"provider": "external", "external": {
        "amqpUrlSecretRef": {"name": "rmq", "key": "uri"}, "managementUrl": "http://rmq:15672"}})
}

fn platform(extra: Value) -> Value {
    let mut spec = json!({"version": "0.1.0", "domain": "pay.example.com"});
    if let (Some(s), Value::Object(e)) = (spec.as_object_mut(), extra) {
        s.extend(e);
    }
    spec
}

fn external_postgres() -> Value {
    json!({"provider": "external", "external": {"host": "db",
        "superuserSecretRef": {"name": "pg", "key": "password"}}})
}

fn queue(extra: Value) -> Value {
    let mut spec = json!({"brokerRef": {"name": "rmq"}, "user": "svc"});
    if let (Some(s), Value::Object(e)) = (spec.as_object_mut(), extra) {
        s.extend(e);
    }
    spec
}

/// One test per CEL rule: `rejected_on_create` or `rejected_on_update` with the kind, the
/// accepted spec, the refused one and the rule's message.
macro_rules! cel_tests {
    ($($name:ident: $check:ident($kind:literal, $ok:expr, $bad:expr, $message:literal);)*) => {$(
        #[tokio::test]
        async fn $name() -> Result<()> {
            $check($kind, $ok, $bad, $message).await
        }
    )*};
}

cel_tests! {
    cel_nullable_enum_refuses_other_broker_replicas: rejected_on_create("Platform", platform(json!({"broker": {"replicas": 3}})), platform(json!({"broker": {"replicas": 2}})), "must be one of 1, 3");
    cel_app_service_min_replicas_not_above_max: rejected_on_create("AppService", app(json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 2}})), app(json!({"autoscaling": {"minReplicas": 3, "maxReplicas": 2}})), "autoscaling.minReplicas must not exceed autoscaling.maxReplicas");
    cel_app_service_reloads_are_secret_names: rejected_on_create("AppService", app(json!({"reloads": ["jwt"]})), app(json!({"reloads": ["jwt", ""]})), "reloads entries must be secret names");
    cel_database_name_is_immutable: rejected_on_update("Database", database("app_db", "app"), database("other_db", "app"), "databaseName is immutable");
    cel_database_owner_is_immutable: rejected_on_update("Database", database("app_db", "app"), database("app_db", "someone"), "owner is immutable");
    cel_ingress_cert_ca_issuer_needs_ca: rejected_on_create("IngressCert", cert(json!({"issuer": "ca", "ca": {"secretRef": {"name": "my-ca"}}})), cert(json!({"issuer": "ca"})), "issuer ca needs the ca block");
    cel_ingress_cert_cert_manager_issuer_needs_cert_manager: rejected_on_create("IngressCert", cert(json!({"issuer": "certManager", "certManager": {"issuerRef": {"kind": "ClusterIssuer", "name": "le"}}})), cert(json!({"issuer": "certManager"})), "issuer certManager needs the certManager block");
    cel_ingress_cert_ingress_and_http_route_exclude_each_other: rejected_on_create("IngressCert", cert(json!({"httpRoute": {"parentRef": {"name": "public"}, "backend": json!({"serviceName": "web", "port": 80})}})), cert(json!({"httpRoute": {"parentRef": {"name": "public"}, "backend": json!({"serviceName": "web", "port": 80})}, "ingress": {"backend": json!({"serviceName": "web", "port": 80})}})), "ingress and httpRoute exclude each other: route the hosts one way");
    cel_message_broker_external_needs_external: rejected_on_create("MessageBroker", external_broker(), json!({"provider": "external"}), "provider external needs the external block");
    cel_message_broker_provider_is_immutable: rejected_on_update("MessageBroker", json!({"provider": "builtin"}), external_broker(), "provider is immutable");
    cel_platform_external_postgres_needs_external: rejected_on_create("Platform", platform(json!({"postgres": {"provider": "external", "external": {"host": "db", "superuserSecretRef": {"name": "pg", "key": "password"}}}})), platform(json!({"postgres": {"provider": "external"}})), "postgres.provider external needs postgres.external");
    cel_platform_external_broker_needs_external: rejected_on_create("Platform", platform(json!({"broker": external_broker()})), platform(json!({"broker": {"provider": "external"}})), "broker.provider external needs broker.external");
    cel_platform_external_cache_needs_external: rejected_on_create("Platform", platform(json!({"cache": {"provider": "external", "external": {"urlSecretRef": {"name": "redis", "key": "url"}}}})), platform(json!({"cache": {"provider": "external"}})), "cache.provider external needs cache.external");
    cel_platform_external_psp_needs_webhook_secrets: rejected_on_create("Platform", platform(json!({"psp": {"mode": "external", "webhookSecretsRef": {"name": "psp", "key": "webhook-secrets"}}})), platform(json!({"psp": {"mode": "external"}})), "psp.mode external needs psp.webhookSecretsRef");
    cel_platform_ca_issuer_needs_ca: rejected_on_create("Platform", platform(json!({"tls": {"issuer": "ca", "ca": {"secretRef": {"name": "my-ca"}}}})), platform(json!({"tls": {"issuer": "ca"}})), "tls.issuer ca needs tls.ca");
    cel_platform_cert_manager_issuer_needs_cert_manager: rejected_on_create("Platform", platform(json!({"tls": {"issuer": "certManager", "certManager": {"issuerRef": {"kind": "Issuer", "name": "le"}}}})), platform(json!({"tls": {"issuer": "certManager"}})), "tls.issuer certManager needs tls.certManager");
    cel_platform_http_route_replaces_the_ingress_class: rejected_on_create("Platform", platform(json!({"httpRoute": json!({"parentRef": {"name": "public", "namespace": "edge"}})})), platform(json!({"httpRoute": json!({"parentRef": {"name": "public", "namespace": "edge"}}), "ingressClassName": "nginx"})), "httpRoute replaces the Ingress: drop ingressClassName");
    cel_postgres_cluster_external_needs_external: rejected_on_create("PostgresCluster", external_postgres(), json!({"provider": "external"}), "provider external needs the external block");
    cel_postgres_cluster_provider_is_immutable: rejected_on_update("PostgresCluster", json!({"provider": "builtin"}), external_postgres(), "provider is immutable");
    cel_queue_name_is_immutable: rejected_on_update("Queue", queue(json!({"queue": "svc.events"})), queue(json!({"queue": "other.events"})), "queue is immutable");
    cel_queue_user_is_immutable: rejected_on_update("Queue", queue(json!({"publishes": true})), json!({"brokerRef": {"name": "rmq"}, "user": "someone", "publishes": true}), "user is immutable");
    cel_queue_bindings_need_a_queue: rejected_on_create("Queue", queue(json!({"queue": "svc.events", "bindings": ["auth.user.*"]})), queue(json!({"publishes": true, "bindings": ["auth.user.*"]})), "bindings need a queue");
    cel_queue_cannot_gain_or_lose_its_queue: rejected_on_update("Queue", queue(json!({"publishes": true})), queue(json!({"publishes": true, "queue": "svc.events"})), "queue cannot be added or removed");
    cel_queue_must_publish_consume_or_own_exclusive_queues: rejected_on_create("Queue", queue(json!({"publishes": true})), queue(json!({})), "a Queue must publish, consume or own exclusive queues");
}

/// Every CEL rule of the CRDs has its test above: a rule added without one fails here.
#[test]
fn every_cel_rule_has_a_test() -> Result<()> {
    let tests = include_str!("crds.rs");
    let mut rules = Vec::new();
    for crd in payplane_operator::crd::all() {
        collect_messages(&serde_json::to_value(&crd.spec.versions)?, &mut rules);
    }
    ensure!(rules.len() == 26, "{} rules: {rules:?}", rules.len());
    for message in rules {
        ensure!(
            tests.contains(&format!("\"{message}\""))
                || tests.contains(&format!("r#\"{message}\"#")),
            "no test for the CEL rule {message:?}"
        );
    }
    Ok(())
}

fn collect_messages(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(rules)) = m.get("x-kubernetes-validations") {
                out.extend(
                    rules
                        .iter()
                        .filter_map(|r| r["message"].as_str().map(str::to_owned)),
                );
            }
            m.values().for_each(|v| collect_messages(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_messages(v, out)),
        _ => {}
    }
}
