//! Snapshot and property tests of every builder: the objects each kind produces, that
//! building twice is identical, and that every child carries the controller owner reference
//! and the payplane labels. Test-only, no I/O.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;

use super::app_service::build as app;
use super::database::build as db;
use super::ingress_cert::build as ic;
use super::message_broker::{build as mb, rabbitmq_operator};
use super::platform::build as platform;
use super::postgres_cluster::{build as pg, cloudnative_pg};
use super::queue::build as queue;
use crate::crd::platform::Profile;
use crate::crd::{
    AppService, Database, IngressCert, MessageBroker, Platform, PostgresCluster, Queue,
};
use crate::meta::{Child, OWNER_UID_LABEL};
use crate::tls::Pem;

fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
    match serde_saphyr::from_str(s) {
        Ok(v) => v,
        Err(e) => panic!("fixture does not parse: {e}"),
    }
}

fn stored<K: kube::Resource>(mut k: K) -> K {
    let name = k.meta().name.clone().unwrap_or_default();
    k.meta_mut().uid = Some(format!("uid-{name}"));
    k.meta_mut().generation = Some(1);
    k
}

fn objects(children: &[Child]) -> Vec<Value> {
    children.iter().map(|c| c.object.clone()).collect()
}

fn platform_resolved() -> platform::Resolved {
    platform::Resolved {
        jwt_signing_key: "-----BEGIN PRIVATE KEY-----\nfixture\n-----END PRIVATE KEY-----\n".into(),
        service_tokens: ["gateway", "auth", "payments", "admin", "profile", "console"]
            .iter()
            .map(|c| ((*c).to_owned(), format!("token-{c}")))
            .collect(),
        console_session_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
    }
}

fn app_resolved() -> app::Resolved {
    app::Resolved {
        database_secret: Some("payplane-payments-db-credentials".into()),
        queue_secret: Some("payplane-payments-events-amqp".into()),
        secrets_checksum: "c0ffee".into(),
        deploy_image: Some("ghcr.io/payplane/payments:0.1.0".into()),
        run_migration: true,
        service_monitor: true,
    }
}

fn ic_resolved() -> ic::Resolved {
    ic::Resolved {
        managed_ca: Some(Pem {
            cert: "CA-CERT".into(),
            key: "CA-KEY".into(),
        }),
        ca_cert: "CA-CERT".into(),
        leaf: Some(Pem {
            cert: "LEAF-CERT".into(),
            key: "LEAF-KEY".into(),
        }),
        leaf_annotations: BTreeMap::from([(
            ic::HOSTS.to_owned(),
            "payplane.localtest.me".to_owned(),
        )]),
    }
}

/// The objects of a multi-document example, as stored; none when it does not parse.
fn examples<K: serde::de::DeserializeOwned + kube::Resource>(text: &str) -> Vec<K> {
    let parsed: Vec<K> = serde_saphyr::from_multiple(text).unwrap_or_default();
    parsed.into_iter().map(stored).collect()
}

/// Every child of every kind built from the examples.
fn all_children() -> Vec<(&'static str, Vec<Child>)> {
    let result = (|| -> Result<Vec<(&'static str, Vec<Child>)>, crate::meta::MetaError> {
        let app_example: AppService =
            stored(yaml(include_str!("../../../examples/appservice.yaml")));
        let pgs: Vec<PostgresCluster> =
            examples(include_str!("../../../examples/postgrescluster.yaml"));
        let mbs: Vec<MessageBroker> =
            examples(include_str!("../../../examples/messagebroker.yaml"));
        let qs: Vec<Queue> = examples(include_str!("../../../examples/queue.yaml"));
        let ics: Vec<IngressCert> = examples(include_str!("../../../examples/ingresscert.yaml"));
        let database: Database = stored(yaml(include_str!("../../../examples/database.yaml")));
        let conn = db::Connection {
            host: "payplane-pg-rw.payments.svc".into(),
            port: 5432,
            password: "pw".into(),
            ssl_mode: None,
        };
        let mut out = vec![
            (
                "platform",
                platform::build(&Platform::example(), &platform_resolved())?,
            ),
            ("appservice", app::build(&app_example, &app_resolved())?),
            ("database", db::build(&database, &conn)?),
        ];
        // Each example has one provider: the builtin or the provider's operator builder
        // makes its children, the other none.
        for p in pgs {
            let mut children = pg::build(&p, "superpw")?;
            children.extend(cloudnative_pg::build(&p)?);
            out.push(("postgrescluster", children));
        }
        for m in mbs {
            let resolved = mb::Resolved {
                admin_password: "adminpw".into(),
                erlang_cookie: "cookie".into(),
            };
            let mut children = mb::build(&m, &resolved)?;
            children.extend(rabbitmq_operator::build(&m)?);
            out.push(("messagebroker", children));
        }
        for q in qs {
            out.push((
                "queue",
                queue::build(&q, "userpw", "payplane-rmq.payments.svc:5672")?,
            ));
        }
        for i in ics {
            out.push(("ingresscert", ic::build(&i, &ic_resolved())?));
        }
        Ok(out)
    })();
    match result {
        Ok(v) => v,
        Err(e) => panic!("building the examples failed: {e}"),
    }
}

#[test]
fn snapshots_of_every_kind() {
    let mut by_kind: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (kind, children) in all_children() {
        by_kind.entry(kind).or_default().extend(objects(&children));
    }
    assert_eq!(by_kind.len(), 7);
    for (kind, objs) in by_kind {
        insta::assert_yaml_snapshot!(kind, objs);
    }
}

#[test]
fn queue_declarations_follow_the_contract() {
    let qs: Vec<Queue> = serde_saphyr::from_multiple(include_str!("../../../examples/queue.yaml"))
        .unwrap_or_default();
    let payments = &qs[0];
    let perms = queue::permissions(payments);
    let contract =
        payplane_events::topology::permissions(payplane_events::topology::Service::Payments);
    assert_eq!(perms, contract);
    let auth = queue::permissions(&qs[1]);
    assert_eq!(
        auth,
        payplane_events::topology::permissions(payplane_events::topology::Service::Auth)
    );
    let decls = queue::declarations(payments).unwrap_or_default();
    let contract = payplane_events::topology::consumer_declarations(
        &payplane_events::topology::PAYMENTS_EVENTS,
    );
    assert_eq!(
        decls.queues, contract.queues,
        "names and arguments come from the topology"
    );
    let mut gateway = payments.clone();
    gateway.spec.queue = None;
    gateway.spec.bindings.clear();
    gateway.spec.publishes = false;
    gateway.spec.exclusive_queue_prefix = Some("gateway.ws.".into());
    assert_eq!(
        queue::permissions(&gateway),
        payplane_events::topology::permissions(payplane_events::topology::Service::Gateway)
    );
}

fn check_invariants(owner_uid: &str, children: &[Child]) -> Result<(), TestCaseError> {
    for c in children {
        let meta = &c.object["metadata"];
        let refs = meta["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        prop_assert!(
            refs.iter()
                .any(|r| r["uid"] == owner_uid && r["controller"] == true),
            "{} has no controller owner reference",
            c.id()
        );
        for label in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/managed-by",
        ] {
            prop_assert!(
                meta["labels"][label].is_string(),
                "{} lacks {label}",
                c.id()
            );
        }
        prop_assert_eq!(
            &meta["labels"][OWNER_UID_LABEL],
            &Value::String(owner_uid.into())
        );
        prop_assert_eq!(&meta["labels"]["app.kubernetes.io/part-of"], "payplane");
        // Built-in kinds must deserialize into their k8s-openapi types.
        let typed_ok = match c.resource.kind.as_str() {
            "Deployment" => parses::<k8s_openapi::api::apps::v1::Deployment>(&c.object),
            "StatefulSet" => parses::<k8s_openapi::api::apps::v1::StatefulSet>(&c.object),
            "Job" => parses::<k8s_openapi::api::batch::v1::Job>(&c.object),
            "Service" => parses::<k8s_openapi::api::core::v1::Service>(&c.object),
            "Secret" => parses::<k8s_openapi::api::core::v1::Secret>(&c.object),
            "AppService" => parses::<AppService>(&c.object),
            "Queue" => parses::<Queue>(&c.object),
            "Database" => parses::<Database>(&c.object),
            _ => true,
        };
        prop_assert!(typed_ok, "{} does not deserialize into its type", c.id());
    }
    Ok(())
}

/// Whether `object` deserializes into `T`.
fn parses<T: serde::de::DeserializeOwned>(object: &Value) -> bool {
    serde_json::from_value::<T>(object.clone()).is_ok()
}

fn arb_app() -> impl Strategy<Value = AppService> {
    (
        "[a-z][a-z0-9-]{0,20}",
        "[a-z]{1,8}(:[0-9]\\.[0-9])?",
        1i32..65535,
        proptest::option::of(0i32..10),
        any::<bool>(),
        proptest::option::of("[a-z]{1,10}"),
        proptest::collection::vec("[a-z]{1,10}", 0..3),
        proptest::option::of((1i32..5, 5i32..20)),
        proptest::collection::vec(("[A-Z_]{1,10}", "[a-z0-9]{0,10}"), 0..4),
    )
        .prop_map(
            |(name, image, port, replicas, migration, database, queues, autoscaling, env)| {
                let mut a = AppService::test(&name);
                a.spec.image = image;
                a.spec.port = port;
                a.spec.replicas = replicas;
                if migration {
                    a = a.with_migration();
                }
                if let Some(d) = database {
                    a = a.with_database(&d);
                }
                for q in queues {
                    a = a.with_queue(&q);
                }
                if let Some((min, max)) = autoscaling {
                    a = a.with_autoscaling(min, max);
                }
                a.spec.env = env
                    .into_iter()
                    .map(|(n, v)| k8s_openapi::api::core::v1::EnvVar {
                        name: n,
                        value: Some(v),
                        value_from: None,
                    })
                    .collect();
                a
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn app_service_builds_identically_with_owner_and_labels(
        app in arb_app(),
        checksum in "[a-f0-9]{8}",
        run_migration in any::<bool>(),
        has_deployment in any::<bool>(),
    ) {
        let resolved = app::Resolved {
            database_secret: app.spec.database.as_ref().map(|d| format!("{}-credentials", d.ref_)),
            queue_secret: app.spec.queues.first().map(|q| format!("{}-amqp", q.ref_)),
            secrets_checksum: checksum,
            deploy_image: has_deployment.then(|| app.spec.image.clone()),
            run_migration,
            service_monitor: false,
        };
        let first = app::build(&app, &resolved).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let second = app::build(&app, &resolved).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&first, &second);
        let uid = app.metadata.uid.clone().unwrap_or_default();
        check_invariants(&uid, &first)?;
        prop_assert_eq!(first.iter().any(|c| c.resource.kind == "Deployment"), has_deployment);
        prop_assert_eq!(first.iter().any(|c| c.resource.kind == "Job"), run_migration && app.spec.migration.is_some());
    }

    #[test]
    fn platform_builds_identically_with_owner_and_labels(
        version in "[0-9]\\.[0-9]\\.[0-9]",
        prod in any::<bool>(),
        domain in "[a-z]{1,10}\\.example\\.com",
        replicas in proptest::option::of(0i32..5),
    ) {
        let mut p = Platform::example();
        p.spec.version = version.clone();
        p.spec.profile = if prod { Profile::Prod } else { Profile::Dev };
        p.spec.domain = domain;
        if let Some(c) = p.spec.components.as_mut().and_then(|c| c.gateway.as_mut()) {
            c.replicas = replicas;
        }
        let first = platform::build(&p, &platform_resolved()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let second = platform::build(&p, &platform_resolved()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&first, &second);
        check_invariants("uid-payplane", &first)?;
        let apps: Vec<_> = first.iter().filter(|c| c.resource.kind == "AppService").collect();
        prop_assert_eq!(apps.len(), 6);
        let suffix = format!(":{version}");
        for a in apps {
            prop_assert!(a.object["spec"]["image"].as_str().is_some_and(|i| i.ends_with(&suffix)));
        }
    }
}

#[test]
fn every_example_child_has_owner_and_labels() {
    for (kind, children) in all_children() {
        let owner = children
            .first()
            .and_then(|c| c.object["metadata"]["ownerReferences"][0]["uid"].as_str())
            .unwrap_or_default()
            .to_owned();
        if let Err(e) = check_invariants(&owner, &children) {
            panic!("{kind}: {e}");
        }
    }
}

/// Issue 13: `runAsNonRoot` without a numeric `runAsUser` makes the kubelet check the image's
/// user, and it refuses a named one ("non-numeric user"): every pod the operator builds names
/// its user and group by number, and that user is not root.
#[test]
fn every_pod_runs_as_a_numeric_non_root_user() {
    let mut templates = 0;
    for (kind, children) in all_children() {
        for child in children {
            let Some(pod) = child.object.pointer("/spec/template/spec") else {
                continue;
            };
            templates += 1;
            let context = &pod["securityContext"];
            let what = format!("{kind}: {} {}", child.resource.kind, child.name);
            assert_eq!(context["runAsNonRoot"], true, "{what}");
            for field in ["runAsUser", "runAsGroup"] {
                assert!(
                    context[field].as_i64().is_some_and(|id| id > 0),
                    "{what}: {field} = {}",
                    context[field]
                );
            }
        }
    }
    // The example AppService's Deployment and the StatefulSets of PostgreSQL, RabbitMQ and
    // Redis (the Platform's services are AppServices, built by the same code).
    assert!(templates >= 5, "{templates} pod templates");
}
