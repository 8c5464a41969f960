//! Pure builder of a `Platform`'s children: the six AppServices (five API components and the
//! web console), the PostgresCluster and four Databases, the MessageBroker and five Queues,
//! Redis, the IngressCert (with the Ingress to the gateway) and the generated JWT,
//! service-token and console session-key Secrets. No I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    EnvVar, EnvVarSource, ResourceRequirements, Secret, SecretKeySelector, Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use crate::crd::app_service::{Autoscaling, CacheRef, Migration, ObjectRef, SecretFile};
use crate::crd::database::Extension;
use crate::crd::ingress_cert::{Backend, HttpRouteSpec, IngressSpec};
use crate::crd::message_broker::{BrokerProvider, BuiltinBroker, OperatorBroker};
use crate::crd::platform::{ComponentOverride, Profile};
use crate::crd::postgres_cluster::{BuiltinPostgres, CloudNativePgPostgres, PostgresProvider};
use crate::crd::queue::Duration;
use crate::crd::{
    AppService, AppServiceSpec, Database, DatabaseSpec, IngressCert, IngressCertSpec, LocalRef,
    MessageBroker, MessageBrokerSpec, Platform, PostgresCluster, PostgresClusterSpec, Provider,
    Queue, QueueSpec, ReclaimPolicy, SecretKeyRef,
};
use crate::meta::{Child, MetaError, Owner, secret_body};

use super::security;

/// The components and their default listen ports (api.md §11), the web console last.
pub const COMPONENTS: [(&str, i32); 6] = [
    ("gateway", 3000),
    ("auth", 3001),
    ("payments", 3002),
    ("admin", 3003),
    ("profile", 3004),
    ("console", 3005),
];
/// The components that talk to RabbitMQ (the console only calls the gateway over HTTP).
pub const QUEUE_COMPONENTS: [&str; 5] = ["gateway", "auth", "payments", "admin", "profile"];
/// The services that own a database.
pub const SERVICES: [&str; 4] = ["auth", "payments", "admin", "profile"];

/// Generated secrets, read back from the cluster when they exist (so they are made once).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// Ed25519 PKCS#8 PEM signing key of the auth service.
    pub jwt_signing_key: String,
    /// Service token per component name.
    pub service_tokens: BTreeMap<String, String>,
    /// 32 random bytes, base64: seals the console's session cookie, the same on every replica.
    pub console_session_key: String,
}

/// Names of the children of platform `p`.
pub fn app_name(p: &str, component: &str) -> String {
    format!("{p}-{component}")
}
/// Name of a service's Database.
pub fn database_name(p: &str, service: &str) -> String {
    format!("{p}-{service}-db")
}
/// Name of a component's Queue.
pub fn queue_name(p: &str, component: &str) -> String {
    format!("{p}-{component}-events")
}

fn override_for<'a>(platform: &'a Platform, component: &str) -> Option<&'a ComponentOverride> {
    let c = platform.spec.components.as_ref()?;
    match component {
        "gateway" => c.gateway.as_ref(),
        "auth" => c.auth.as_ref(),
        "payments" => c.payments.as_ref(),
        "admin" => c.admin.as_ref(),
        "profile" => c.profile.as_ref(),
        _ => None,
    }
}

fn plain(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// The variable `name` read from `key` of the Secret `secret`.
pub(super) fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn resources(profile: Profile) -> ResourceRequirements {
    let q = |s: &str| Quantity(s.into());
    let (cpu, mem, limit) = match profile {
        Profile::Dev => ("50m", "64Mi", "256Mi"),
        Profile::Prod => ("200m", "256Mi", "512Mi"),
    };
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), q(cpu)),
            ("memory".into(), q(mem)),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), q(limit))])),
        ..ResourceRequirements::default()
    }
}

/// Volume of each CloudNativePG instance or RabbitMQ node the profile asks for.
fn provider_storage(profile: Profile) -> crate::crd::StorageSpec {
    crate::crd::StorageSpec {
        size: match profile {
            Profile::Dev => "1Gi",
            Profile::Prod => "10Gi",
        }
        .into(),
        storage_class_name: None,
    }
}

/// Requests and limits of each CloudNativePG instance or RabbitMQ node: memory limit equal to
/// the request, since both size their caches from it (PostgreSQL's `shared_buffers`, RabbitMQ's
/// memory high watermark) and should not be OOM-killed for using what they were promised.
fn provider_resources(profile: Profile) -> ResourceRequirements {
    let q = |s: &str| Quantity(s.into());
    let (cpu, mem) = match profile {
        Profile::Dev => ("100m", "512Mi"),
        Profile::Prod => ("500m", "2Gi"),
    };
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), q(cpu)),
            ("memory".into(), q(mem)),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), q(mem))])),
        ..ResourceRequirements::default()
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "a builder writes one object tree top to bottom, in the order of the YAML it produces"
)]
fn app_service(platform: &Platform, owner: &Owner, component: &str, port: i32) -> AppService {
    let p = owner.name();
    let spec = &platform.spec;
    let ov = override_for(platform, component);
    let mut env = vec![
        plain(
            "ENVIRONMENT",
            if spec.profile == Profile::Prod {
                "production"
            } else {
                "development"
            },
        ),
        plain("RUST_LOG", "info"),
    ];
    for (other, _) in COMPONENTS {
        env.push(plain(
            &format!("{}_URL", other.to_uppercase()),
            format!("http://{}", app_name(p, other)),
        ));
    }
    // Only its own token and the callers it accepts, never another caller's (api.md §2.6).
    env.extend(security::credential_env(p, component));
    env.extend(security::security_env(platform, component));
    let mut files = Vec::new();
    if component == "auth" {
        env.push(plain("AUTH_SIGNING_KEYS", "/etc/payplane/jwt/signing.pem"));
        files.push(SecretFile {
            secret_name: format!("{p}-jwt"),
            mount_path: "/etc/payplane/jwt".into(),
        });
    }
    if component == "console" {
        // The origin browsers use; https makes the session cookie `Secure` and `__Host-`.
        env.push(plain("PUBLIC_BASE_URL", format!("https://{}", spec.domain)));
        env.push(from_secret(
            "CONSOLE_SESSION_KEY",
            &format!("{p}-console"),
            "session-key",
        ));
    }
    if component == "gateway" {
        env.push(plain("PUBLIC_BASE_URL", format!("https://{}", spec.domain)));
        env.push(plain(
            "CORS_ALLOWED_ORIGINS",
            format!("https://{}", spec.domain),
        ));
    }
    if let Some(o) = ov {
        env.extend(o.env.iter().cloned());
    }
    let cache_ref = match spec.cache.as_ref() {
        Some(c) if c.provider == Provider::External => {
            c.external.as_ref().map(|e| e.url_secret_ref.clone())
        }
        _ => Some(SecretKeyRef {
            name: format!("{p}-redis"),
            key: "url".into(),
        }),
    };
    let is_service = !matches!(component, "gateway" | "console");
    let uses_broker = component != "console";
    let replicas = ov.and_then(|o| o.replicas).unwrap_or(match spec.profile {
        Profile::Dev => 1,
        Profile::Prod => 2,
    });
    AppService {
        metadata: owner.child_meta(app_name(p, component), component),
        spec: AppServiceSpec {
            image: ov.and_then(|o| o.image.clone()).unwrap_or_else(|| {
                format!("{}/{component}:{}", spec.image_repository, spec.version)
            }),
            args: vec!["serve".into()],
            port,
            replicas: Some(replicas),
            migration: is_service.then(|| Migration {
                args: vec!["migrate".into()],
            }),
            database: is_service.then(|| ObjectRef {
                ref_: database_name(p, component),
            }),
            queues: if uses_broker {
                vec![ObjectRef {
                    ref_: queue_name(p, component),
                }]
            } else {
                vec![]
            },
            // The console keeps no state of its own (sessions live in the sealed cookie).
            cache: cache_ref
                .filter(|_| uses_broker)
                .map(|r| CacheRef { url_secret_ref: r }),
            files,
            env,
            resources: Some(
                ov.and_then(|o| o.resources.clone())
                    .unwrap_or_else(|| resources(spec.profile)),
            ),
            autoscaling: (spec.profile == Profile::Prod).then(|| Autoscaling {
                min_replicas: replicas,
                max_replicas: replicas.max(1) * 3,
                target_cpu_utilization_percentage: 70,
            }),
            probes: None,
            reloads: vec![],
            allow_from: security::allow_from(platform, p, component),
        },
        status: None,
    }
}

fn queue(owner: &Owner, component: &str, broker: &str) -> Queue {
    let p = owner.name();
    let consumer = payplane_events::topology::CONSUMER_QUEUES
        .iter()
        .find(|q| q.owner == component);
    Queue {
        metadata: owner.child_meta(queue_name(p, component), component),
        spec: QueueSpec {
            broker_ref: LocalRef {
                name: broker.into(),
            },
            vhost: "/".into(),
            user: component.into(),
            publishes: component != "gateway",
            queue: consumer.map(|q| q.name.to_string()),
            bindings: consumer
                .map(|q| q.bindings.iter().map(|b| (*b).to_owned()).collect())
                .unwrap_or_default(),
            retry_delays: payplane_events::topology::RETRY_DELAYS_MS
                .iter()
                .map(|ms| Duration(format!("{}s", ms / 1000)))
                .collect(),
            dead_letter: true,
            exclusive_queue_prefix: (component == "gateway").then(|| "gateway.ws.".to_owned()),
            reclaim_policy: ReclaimPolicy::Retain,
        },
        status: None,
    }
}

/// The children of `platform` for `resolved`.
#[expect(
    clippy::too_many_lines,
    reason = "a builder writes one object tree top to bottom, in the order of the YAML it produces"
)]
pub fn build(platform: &Platform, resolved: &Resolved) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(platform)?;
    let p = owner.name().to_owned();
    let spec = &platform.spec;
    let mut children = Vec::new();

    for (component, port) in COMPONENTS {
        children.push(Child::typed(&app_service(
            platform, &owner, component, port,
        ))?);
    }

    let pg_name = format!("{p}-pg");
    let pg = spec.postgres.clone().unwrap_or_default();
    children.push(Child::typed(&PostgresCluster {
        metadata: owner.child_meta(&pg_name, "postgres"),
        spec: PostgresClusterSpec {
            provider: pg.provider,
            builtin: (pg.provider == PostgresProvider::Builtin).then(|| BuiltinPostgres {
                image: None,
                storage: pg.storage.clone(),
                resources: None,
            }),
            external: pg.external.clone(),
            cloudnative_pg: (pg.provider == PostgresProvider::CloudNativePg).then(|| {
                CloudNativePgPostgres {
                    instances: Some(pg.instances.unwrap_or(match spec.profile {
                        Profile::Dev => 1,
                        Profile::Prod => 3,
                    })),
                    image_name: None,
                    storage: Some(
                        pg.storage
                            .clone()
                            .unwrap_or_else(|| provider_storage(spec.profile)),
                    ),
                    resources: Some(provider_resources(spec.profile)),
                }
            }),
        },
        status: None,
    })?);
    for service in SERVICES {
        children.push(Child::typed(&Database {
            metadata: owner.child_meta(database_name(&p, service), service),
            spec: DatabaseSpec {
                cluster_ref: LocalRef {
                    name: pg_name.clone(),
                },
                database_name: format!("{service}_db"),
                owner: service.into(),
                extensions: vec![Extension("pgcrypto".into())],
                reclaim_policy: ReclaimPolicy::Retain,
            },
            status: None,
        })?);
    }

    let mb_name = format!("{p}-rmq");
    let broker = spec.broker.clone().unwrap_or_default();
    children.push(Child::typed(&MessageBroker {
        metadata: owner.child_meta(&mb_name, "rabbitmq"),
        spec: MessageBrokerSpec {
            provider: broker.provider,
            rabbitmq_cluster_operator: (broker.provider == BrokerProvider::RabbitmqClusterOperator)
                .then(|| OperatorBroker {
                    replicas: Some(broker.replicas.unwrap_or(match spec.profile {
                        Profile::Dev => 1,
                        Profile::Prod => 3,
                    })),
                    image: None,
                    storage: Some(provider_storage(spec.profile)),
                    resources: Some(provider_resources(spec.profile)),
                }),
            builtin: (broker.provider == BrokerProvider::Builtin).then(|| BuiltinBroker {
                image: None,
                replicas: broker.replicas.unwrap_or(match spec.profile {
                    Profile::Dev => 1,
                    Profile::Prod => 3,
                }),
                storage: None,
                resources: None,
            }),
            external: broker.external.clone(),
        },
        status: None,
    })?);
    for component in QUEUE_COMPONENTS {
        children.push(Child::typed(&queue(&owner, component, &mb_name))?);
    }

    let cache_builtin = spec
        .cache
        .as_ref()
        .is_none_or(|c| c.provider == Provider::Builtin);
    if cache_builtin {
        let redis = format!("{p}-redis");
        let labels = json!({"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": p});
        children.push(owner.child::<Secret>(
            &redis,
            "redis",
            secret_body(
                "Opaque",
                &BTreeMap::from([("url".to_owned(), format!("redis://{redis}:6379"))]),
            ),
        ));
        children.push(owner.child::<Service>(
            &redis,
            "redis",
            json!({"spec": {"selector": labels, "ports": [{"name": "redis", "port": 6379, "targetPort": 6379}]}}),
        ));
        // Redis holds only rebuildable state (rate limits, revocation markers, read cache):
        // no persistence, one replica.
        children.push(owner.child::<StatefulSet>(
            &redis,
            "redis",
            json!({"spec": {
                "serviceName": redis,
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": crate::meta::REDIS_USER.pod_security_context(),
                        "containers": [{
                        "name": "redis",
                        "image": "redis:7-alpine",
                        "args": ["--save", "", "--appendonly", "no"],
                        "ports": [{"name": "redis", "containerPort": 6379}],
                        "readinessProbe": {"tcpSocket": {"port": 6379}},
                        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
                    }]}
                }
            }}),
        ));
    }

    let tls = spec.tls.clone().unwrap_or_default();
    children.push(Child::typed(&IngressCert {
        metadata: owner.child_meta(format!("{p}-tls"), "ingress"),
        spec: IngressCertSpec {
            hosts: vec![spec.domain.clone()],
            issuer: tls.issuer,
            ca: tls.ca.clone(),
            cert_manager: tls.cert_manager.clone(),
            duration: None,
            renew_before: None,
            secret_name: format!("{p}-tls"),
            // The public host goes through an HTTPRoute when a Gateway is named, else an Ingress.
            ingress: spec.http_route.is_none().then(|| IngressSpec {
                class_name: spec.ingress_class_name.clone(),
                backend: public_backend(&p),
            }),
            http_route: spec.http_route.as_ref().map(|r| HttpRouteSpec {
                parent_ref: r.parent_ref.clone(),
                backend: public_backend(&p),
            }),
        },
        status: None,
    })?);

    children.push(owner.child::<Secret>(
        &format!("{p}-jwt"),
        "auth",
        secret_body(
            "Opaque",
            &BTreeMap::from([("signing.pem".to_owned(), resolved.jwt_signing_key.clone())]),
        ),
    ));
    children.push(owner.child::<Secret>(
        &format!("{p}-console"),
        "console",
        secret_body(
            "Opaque",
            &BTreeMap::from([(
                "session-key".to_owned(),
                resolved.console_session_key.clone(),
            )]),
        ),
    ));
    // The store of generated tokens; no pod reads it, each reads its own credential Secret.
    children.push(owner.child::<Secret>(
        &format!("{p}-service-tokens"),
        "platform",
        secret_body("Opaque", &resolved.service_tokens),
    ));
    for (component, _) in COMPONENTS {
        let data = security::credentials_data(component, &resolved.service_tokens);
        if !data.is_empty() {
            children.push(owner.child::<Secret>(
                &security::credentials_secret(&p, component),
                component,
                secret_body("Opaque", &data),
            ));
        }
    }
    for policy in security::backing_policies(platform, &p) {
        children.push(owner.child::<NetworkPolicy>(&policy.name, policy.component, policy.body));
    }
    Ok(children)
}

/// The gateway Service's port that the public Ingress or HTTPRoute sends traffic to.
fn public_backend(platform: &str) -> Backend {
    Backend {
        service_name: app_name(platform, "gateway"),
        port: 80,
    }
}
