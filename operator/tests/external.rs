//! The SQL and RabbitMQ parts against the real servers on this machine (operator.md test
//! layer 4), driven by the real Database and Queue controllers on the fake API server with
//! `external` providers pointed at loopback. Each test uses its own database names / vhost
//! and cleans up, so they run in parallel.
//! Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres) and RabbitMQ on 5672 with the
//! management plugin on 15672 (guest/guest).

use std::time::Duration;

use base64::Engine;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use payplane_operator::crd::{Database, Queue};
use payplane_operator::external::Externals;
use payplane_operator::sim::{Sim, condition, is_ready, path_of};
use serde_json::{Value, json};
use sqlx::Connection as _;

const NS: &str = "payments";
const TIMEOUT: Duration = Duration::from_secs(30);

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

fn secret_key(sim: &Sim, name: &str, key: &str) -> anyhow::Result<String> {
    let s = sim
        .fake
        .get("v1", "secrets", NS, name)
        .ok_or_else(|| anyhow::anyhow!("no secret {name}"))?;
    let b64 = s["data"][key]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no key {key} in {name}"))?;
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(b64)?,
    )?)
}

async fn pg() -> anyhow::Result<sqlx::PgConnection> {
    Ok(sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?)
}

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    let mut c = pg().await?;
    let n: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut c)
            .await?;
    Ok(n)
}

async fn role_exists(name: &str) -> anyhow::Result<bool> {
    let mut c = pg().await?;
    let n: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(name)
        .fetch_one(&mut c)
        .await?;
    Ok(n)
}

async fn drop_db(name: &str, role: &str) -> anyhow::Result<()> {
    let mut c = pg().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut c)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS \"{role}\""
    )))
    .execute(&mut c)
    .await?;
    Ok(())
}

fn external_postgres(sim: &Sim) -> anyhow::Result<()> {
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-admin", "namespace": NS},
        "data": {"password": ""}}))?;
    sim.create(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "PostgresCluster",
        "metadata": {"name": "local-pg", "namespace": NS},
        "spec": {"provider": "external", "external": {"host": "127.0.0.1", "port": 5432, "sslMode": "disable",
            "superuserSecretRef": {"name": "pg-admin", "key": "password"}, "user": "postgres"}}}))?;
    Ok(())
}

fn database(sim: &Sim, id: &str, reclaim: &str) -> anyhow::Result<(String, String)> {
    let (db, role) = (format!("t_{id}_db"), format!("t_{id}"));
    sim.create(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Database",
        "metadata": {"name": format!("db-{id}"), "namespace": NS},
        "spec": {"clusterRef": {"name": "local-pg"}, "databaseName": db, "owner": role, "reclaimPolicy": reclaim}}))?;
    Ok((db, role))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_role_and_secret_are_created_and_dropped_with_delete() -> anyhow::Result<()> {
    let sim = Sim::start(Externals::real()).await?;
    external_postgres(&sim)?;
    let id = unique();
    let (db, role) = database(&sim, &id, "Delete")?;
    let name = format!("db-{id}");
    let ready = sim
        .wait_until(TIMEOUT, false, |s| {
            s.get::<Database>(NS, &name).is_some_and(|d| is_ready(&d))
        })
        .await;
    let obj = sim.get::<Database>(NS, &name);
    assert!(
        ready,
        "Database not ready: {:?}",
        obj.as_ref().and_then(|d| condition(d, "Ready"))
    );
    assert!(database_exists(&db).await? && role_exists(&role).await?);
    let secret = format!("{name}-credentials");
    for key in ["host", "port", "dbname", "user", "password"] {
        assert!(!secret_key(&sim, &secret, key)?.is_empty(), "{key}");
    }
    assert_eq!(secret_key(&sim, &secret, "dbname")?, db);
    // The generated credentials log in and own the database.
    let uri = secret_key(&sim, &secret, "uri")?;
    let mut conn = sqlx::PgConnection::connect(&uri).await?;
    let who: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(who, role);
    sqlx::raw_sql("CREATE TABLE owned_here (id int)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    // Reconciling again is idempotent (same password in the secret).
    let password = secret_key(&sim, &secret, "password")?;
    let (av, plural) = path_of::<Database>();
    sim.fake.merge_patch(
        &av,
        &plural,
        NS,
        &name,
        &json!({"spec": {"extensions": []}}),
    )?;
    assert!(
        sim.wait_until(TIMEOUT, false, |s| s
            .get::<Database>(NS, &name)
            .is_some_and(|d| d["metadata"]["generation"] == 2 && is_ready(&d)))
            .await
    );
    assert_eq!(secret_key(&sim, &secret, "password")?, password);
    // Delete drops them.
    sim.fake.delete(&av, &plural, NS, &name)?;
    assert!(
        sim.wait_until(TIMEOUT, false, |s| s.get::<Database>(NS, &name).is_none())
            .await,
        "finalizer not released"
    );
    assert!(!database_exists(&db).await?, "database still there");
    assert!(!role_exists(&role).await?, "role still there");
    sim.stop().await;
    drop_db(&db, &role).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_retained_database_keeps_it() -> anyhow::Result<()> {
    let sim = Sim::start(Externals::real()).await?;
    external_postgres(&sim)?;
    let id = unique();
    let (db, role) = database(&sim, &id, "Retain")?;
    let name = format!("db-{id}");
    assert!(
        sim.wait_until(TIMEOUT, false, |s| s
            .get::<Database>(NS, &name)
            .is_some_and(|d| is_ready(&d)))
            .await
    );
    let d = sim.get::<Database>(NS, &name).unwrap_or(Value::Null);
    assert_eq!(
        d["metadata"]["finalizers"],
        json!(["payplane.dev/database"])
    );
    let (av, plural) = path_of::<Database>();
    sim.fake.delete(&av, &plural, NS, &name)?;
    assert!(
        sim.wait_until(TIMEOUT, false, |s| s.get::<Database>(NS, &name).is_none())
            .await,
        "finalizer not released"
    );
    assert!(database_exists(&db).await?, "Retain must keep the database");
    assert!(role_exists(&role).await?, "Retain must keep the role");
    // The retention is announced as an Event.
    let events = sim.fake.list("events.k8s.io/v1", "events", Some(NS));
    assert!(
        events.iter().any(|e| e["reason"] == "Retained"),
        "no Retained event"
    );
    sim.stop().await;
    drop_db(&db, &role).await
}

async fn mgmt(method: reqwest::Method, path: &str) -> anyhow::Result<reqwest::StatusCode> {
    let resp = reqwest::Client::new()
        .request(method, format!("http://127.0.0.1:15672/api/{path}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await?;
    Ok(resp.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_user_consumes_its_own_queue_and_is_refused_on_another() -> anyhow::Result<()> {
    let sim = Sim::start(Externals::real()).await?;
    let id = unique();
    let vhost = format!("test-{id}");
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rmq-admin", "namespace": NS},
        "data": {"uri": base64::engine::general_purpose::STANDARD.encode("amqp://guest:guest@127.0.0.1:5672/")}}))?;
    sim.create(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "MessageBroker",
        "metadata": {"name": "local-rmq", "namespace": NS},
        "spec": {"provider": "external", "external": {"amqpUrlSecretRef": {"name": "rmq-admin", "key": "uri"},
            "managementUrl": "http://127.0.0.1:15672"}}}))?;
    for svc in ["pay", "adm"] {
        sim.create(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Queue",
            "metadata": {"name": format!("{svc}-events"), "namespace": NS},
            "spec": {"brokerRef": {"name": "local-rmq"}, "vhost": vhost, "user": format!("{svc}-{id}"),
                "publishes": true, "queue": format!("{svc}{id}.events"), "bindings": ["auth.user.*"],
                "reclaimPolicy": "Delete"}}))?;
    }
    let ok = sim
        .wait_until(TIMEOUT, false, |s| {
            ["pay-events", "adm-events"]
                .iter()
                .all(|q| s.get::<Queue>(NS, q).is_some_and(|o| is_ready(&o)))
        })
        .await;
    assert!(
        ok,
        "queues not ready: {:?}",
        sim.get::<Queue>(NS, "pay-events")
            .and_then(|q| condition(&q, "Ready"))
    );
    let uri = secret_key(&sim, "pay-events-amqp", "uri")?;
    assert!(
        uri.starts_with(&format!("amqp://pay-{id}:")) && uri.ends_with(&format!("/{vhost}")),
        "{uri}"
    );

    let conn = Connection::connect(&uri, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let own = format!("pay{id}.events");
    // Retry queues are published through the default exchange, which the user may write.
    ch.basic_publish(
        "".into(),
        own.as_str().into(),
        BasicPublishOptions::default(),
        b"hello",
        BasicProperties::default(),
    )
    .await?
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = ch
        .basic_get(own.as_str().into(), BasicGetOptions { no_ack: true })
        .await?;
    assert_eq!(
        got.map(|m| m.delivery.data),
        Some(b"hello".to_vec()),
        "own queue is consumable"
    );
    let other = format!("adm{id}.events");
    let refused = ch
        .basic_get(other.as_str().into(), BasicGetOptions { no_ack: true })
        .await;
    let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("ACCESS_REFUSED") || err.contains("access"),
        "other service's queue must be refused: {err:?}"
    );
    let _ = conn.close(200, "done".into()).await;

    // Delete removes the users (queues are empty).
    let (av, plural) = path_of::<Queue>();
    sim.fake.delete(&av, &plural, NS, "pay-events")?;
    assert!(
        sim.wait_until(TIMEOUT, false, |s| s
            .get::<Queue>(NS, "pay-events")
            .is_none())
            .await
    );
    assert_eq!(
        mgmt(reqwest::Method::GET, &format!("users/pay-{id}")).await?,
        reqwest::StatusCode::NOT_FOUND
    );
    sim.stop().await;
    let _ = mgmt(reqwest::Method::DELETE, &format!("users/adm-{id}")).await;
    let _ = mgmt(reqwest::Method::DELETE, &format!("users/pay-{id}")).await;
    mgmt(reqwest::Method::DELETE, &format!("vhosts/{vhost}")).await?;
    Ok(())
}
