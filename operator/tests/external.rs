//! The SQL and RabbitMQ parts against the real servers on this machine (operator.md test
//! layer 4), driven by the real Database and Queue controllers on the real control plane
//! (`support/harness.rs`: as the chart's ServiceAccount) with `external` providers pointed at
//! loopback. Each test uses its own namespace, database names and vhost and cleans up, so they
//! run in parallel.
//! Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres) and RabbitMQ on 5672 with the
//! management plugin on 15672 (guest/guest).

use std::time::Duration;

use anyhow::ensure;
use kube::ResourceExt;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use payplane_control_plane::eventually;
use payplane_operator::controller::RESYNC;
use payplane_operator::crd::{Database, Queue};
use payplane_operator::external::Externals;
use payplane_operator::testing::{Operator, on_local_broker, ready};
use serde_json::{Value, json};
use sqlx::Connection as _;

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

async fn pg() -> anyhow::Result<sqlx::PgConnection> {
    Ok(sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?)
}

/// Publishes `body` to `queue` through the default exchange and waits for the broker's
/// confirmation.
async fn publish(ch: &lapin::Channel, queue: &str, body: &[u8]) -> anyhow::Result<()> {
    let (options, properties) = (BasicPublishOptions::default(), BasicProperties::default());
    ch.basic_publish("".into(), queue.into(), options, body, properties)
        .await?
        .await?;
    Ok(())
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

async fn external_postgres(op: &Operator) -> anyhow::Result<()> {
    op.apply(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-admin"},
        "data": {"password": ""}}),
    )
    .await?;
    op.apply(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "PostgresCluster",
        "metadata": {"name": "local-pg"},
        "spec": {"provider": "external", "external": {"host": "127.0.0.1", "port": 5432, "sslMode": "disable",
            "superuserSecretRef": {"name": "pg-admin", "key": "password"}, "user": "postgres"}}}))
        .await?;
    Ok(())
}

/// Starts the operator (`prefix`) on the local PostgreSQL and applies a Database with
/// `reclaim`, waiting until it is Ready: the operator, the Database, its database and role.
async fn ready_database(
    prefix: &str,
    reclaim: &str,
) -> anyhow::Result<(Operator, Database, String, String)> {
    let op = Operator::start(prefix, Externals::real()).await?;
    external_postgres(&op).await?;
    let id = unique();
    let (name, db, role) = (format!("db-{id}"), format!("t_{id}_db"), format!("t_{id}"));
    op.apply(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Database",
        "metadata": {"name": name},
        "spec": {"clusterRef": {"name": "local-pg"}, "databaseName": db, "owner": role, "reclaimPolicy": reclaim}}))
        .await?;
    let d = op
        .wait_for::<Database>("Database Ready", &name, ready)
        .await?;
    Ok((op, d, db, role))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_role_and_secret_are_created_and_dropped_with_delete() -> anyhow::Result<()> {
    let (op, d, db, role) = ready_database("pg-delete", "Delete").await?;
    let name = d.name_any();
    assert!(database_exists(&db).await? && role_exists(&role).await?);
    let secret = format!("{name}-credentials");
    for key in ["host", "port", "dbname", "user", "password"] {
        assert!(!op.secret_text(&secret, key).await?.is_empty(), "{key}");
    }
    assert_eq!(op.secret_text(&secret, "dbname").await?, db);
    // The generated credentials log in and own the database.
    let uri = op.secret_text(&secret, "uri").await?;
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
    let password = op.secret_text(&secret, "password").await?;
    op.patch::<Database>(&name, json!({"spec": {"extensions": []}}))
        .await?;
    op.wait_for::<Database>("generation 2 Ready", &name, |d| {
        ready(d)?;
        match d.and_then(|d| d.metadata.generation) {
            Some(2) => Ok(()),
            other => Err(format!("generation {other:?}")),
        }
    })
    .await?;
    assert_eq!(op.secret_text(&secret, "password").await?, password);
    // Delete drops them.
    op.delete::<Database>(&name).await?;
    assert!(!database_exists(&db).await?, "database still there");
    assert!(!role_exists(&role).await?, "role still there");
    op.stop().await?;
    drop_db(&db, &role).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_retained_database_keeps_it() -> anyhow::Result<()> {
    let (op, d, db, role) = ready_database("pg-retain", "Retain").await?;
    let name = d.name_any();
    assert_eq!(d.finalizers(), ["payplane.dev/database"]);
    op.delete::<Database>(&name).await?;
    assert!(database_exists(&db).await?, "Retain must keep the database");
    assert!(role_exists(&role).await?, "Retain must keep the role");
    // The retention is announced as an Event.
    assert!(op.has_event(None, "Retained").await?, "no Retained event");
    op.stop().await?;
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
    let (op, id, vhost) = on_local_broker("rmq-users", RESYNC).await?;
    for svc in ["pay", "adm"] {
        op.apply(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Queue",
            "metadata": {"name": format!("{svc}-events")},
            "spec": {"brokerRef": {"name": "local-rmq"}, "vhost": vhost, "user": format!("{svc}-{id}"),
                "publishes": true, "queue": format!("{svc}{id}.events"), "bindings": ["auth.user.*"],
                "reclaimPolicy": "Delete"}}))
            .await?;
    }
    for q in ["pay-events", "adm-events"] {
        op.wait_for::<Queue>("Queue Ready", q, ready).await?;
    }
    let uri = op.secret_text("pay-events-amqp", "uri").await?;
    assert!(
        uri.starts_with(&format!("amqp://pay-{id}:")) && uri.ends_with(&format!("/{vhost}")),
        "{uri}"
    );

    let conn = Connection::connect(&uri, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let own = format!("pay{id}.events");
    // Retry queues are published through the default exchange, which the user may write.
    publish(&ch, &own, b"hello").await?;
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

    // Delete removes the user and the empty queues — the quorum ones too (issue 13: RabbitMQ
    // refuses `if-empty` for them, and they were left behind).
    let queues = [own.clone(), format!("{own}.dlq"), format!("{own}.retry.1")];
    delete_once_counted(&op, "pay-events", &vhost, &own, 0).await?;
    assert_eq!(
        mgmt(reqwest::Method::GET, &format!("users/pay-{id}")).await?,
        reqwest::StatusCode::NOT_FOUND
    );
    for q in &queues {
        assert_eq!(
            mgmt(reqwest::Method::GET, &format!("queues/{vhost}/{q}")).await?,
            reqwest::StatusCode::NOT_FOUND,
            "queue {q} left behind"
        );
    }
    op.stop().await?;
    let _ = mgmt(reqwest::Method::DELETE, &format!("users/adm-{id}")).await;
    let _ = mgmt(reqwest::Method::DELETE, &format!("users/pay-{id}")).await;
    mgmt(reqwest::Method::DELETE, &format!("vhosts/{vhost}")).await?;
    Ok(())
}

/// Deletes the Queue `name` once the broker counts `messages` in `queue` (its statistics lag a
/// few seconds behind publishing and consuming; a user deleting would see the same count), and
/// waits until its finalizer has run.
async fn delete_once_counted(
    op: &Operator,
    name: &str,
    vhost: &str,
    queue: &str,
    messages: u64,
) -> anyhow::Result<()> {
    eventually(
        Duration::from_secs(30),
        &format!("the broker to count {messages} messages in {queue}"),
        || async {
            Ok(match queue_messages(vhost, queue).await? {
                Some(n) if n == messages => Ok(()),
                other => Err(format!("{other:?} messages")),
            })
        },
    )
    .await?;
    op.delete::<Queue>(name).await
}

/// A queue's message count as the management API reports it (`None` before its first
/// statistics).
async fn queue_messages(vhost: &str, queue: &str) -> anyhow::Result<Option<u64>> {
    let body: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:15672/api/queues/{vhost}/{queue}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await?
        .json()
        .await?;
    Ok(body.get("messages").and_then(Value::as_u64))
}

/// Applies Queue `<name>-events` (user `<name>-<id>`, queue `<name><id>.events`, reclaimed on
/// delete, plus `extra` spec fields), waits until it is Ready and returns the queue's name.
async fn ready_queue(
    op: &Operator,
    name: &str,
    id: &str,
    vhost: &str,
    extra: Value,
) -> anyhow::Result<String> {
    let queue = format!("{name}{id}.events");
    let mut spec = json!({"brokerRef": {"name": "local-rmq"}, "vhost": vhost,
        "user": format!("{name}-{id}"), "queue": queue, "reclaimPolicy": "Delete"});
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    let object = format!("{name}-events");
    op.apply(
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Queue",
        "metadata": {"name": object}, "spec": spec}),
    )
    .await?;
    op.wait_for::<Queue>("Queue Ready", &object, ready).await?;
    Ok(queue)
}

/// A non-empty quorum queue stays when its Queue is deleted with `reclaimPolicy: Delete`: its
/// messages are data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_queue_keeps_a_quorum_queue_with_messages() -> anyhow::Result<()> {
    let (op, id, vhost) = on_local_broker("rmq-keep", RESYNC).await?;
    let own = ready_queue(&op, "keep", &id, &vhost, json!({})).await?;
    let conn = Connection::connect(
        &format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        ConnectionProperties::default(),
    )
    .await?;
    let ch = conn.create_channel().await?;
    publish(&ch, &own, b"keep me").await?;
    let _ = conn.close(200, "done".into()).await;
    delete_once_counted(&op, "keep-events", &vhost, &own, 1).await?;
    ensure!(
        queue_messages(&vhost, &own).await? == Some(1),
        "the quorum queue with its message must stay"
    );
    op.stop().await?;
    mgmt(reqwest::Method::DELETE, &format!("vhosts/{vhost}")).await?;
    Ok(())
}

/// A Queue deleted as soon as it is Ready, before the broker has statistics for its quorum
/// queues: the first clean-up is refused part-way (an empty queue cannot be told from one that
/// has no statistics yet) and retried, and the retry still removes every queue and the user.
/// Users used to be deleted first, so the retry no longer found a user it owned, took the
/// Queue for a conflicting copy and left the rest of the queues behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_deleted_before_its_statistics_still_removes_every_queue() -> anyhow::Result<()> {
    let (op, id, vhost) = on_local_broker("rmq-early", RESYNC).await?;
    let own = ready_queue(
        &op,
        "early",
        &id,
        &vhost,
        json!({"bindings": ["auth.user.*"]}),
    )
    .await?;
    op.delete::<Queue>("early-events").await?;
    assert_eq!(
        mgmt(reqwest::Method::GET, &format!("users/early-{id}")).await?,
        reqwest::StatusCode::NOT_FOUND
    );
    for q in [own.clone(), format!("{own}.dlq"), format!("{own}.retry.1")] {
        assert_eq!(
            mgmt(reqwest::Method::GET, &format!("queues/{vhost}/{q}")).await?,
            reqwest::StatusCode::NOT_FOUND,
            "queue {q} left behind"
        );
    }
    op.stop().await?;
    mgmt(reqwest::Method::DELETE, &format!("vhosts/{vhost}")).await?;
    Ok(())
}
