//! Ownership, honest status and credential rotation of `Database` and `Queue` (issue 14),
//! driven by the real controllers on the real control plane against real servers: the
//! machine's PostgreSQL (127.0.0.1:5432, trust) and RabbitMQ (5672, management on 15672,
//! guest/guest), and for stopping a server and refusing passwords a private PostgreSQL this
//! test starts (Debian's `initdb` and `pg_ctl`, password authentication on a free loopback
//! port in a temporary directory), so the shared one is never stopped. Each test uses its own
//! namespace, names and vhost.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::core::v1::Secret;
use payplane_control_plane::eventually;
use payplane_operator::crd::{AppService, Database, Queue};
use payplane_operator::external::Externals;
use payplane_operator::testing::{
    Operator, apply_local_broker, condition, not_ready_because, on_local_broker, ready,
    ready_message,
};
use serde_json::{Value, json};
use sqlx::Connection as _;

/// Databases and Queues re-check their servers this often here (300 s in production).
const RESYNC: Duration = Duration::from_secs(2);

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

async fn shared_pg() -> anyhow::Result<sqlx::PgConnection> {
    Ok(sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?)
}

/// The stored password hash of `role` (changes whenever the password is set, even to the
/// same text: SCRAM salts it).
async fn password_hash(role: &str) -> anyhow::Result<Option<String>> {
    let mut c = shared_pg().await?;
    Ok(
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(role)
            .fetch_one(&mut c)
            .await?,
    )
}

async fn exists(sql: &str, name: &str) -> anyhow::Result<bool> {
    let mut c = shared_pg().await?;
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(name)
        .fetch_one(&mut c)
        .await?)
}

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    exists(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        name,
    )
    .await
}

async fn role_exists(name: &str) -> anyhow::Result<bool> {
    exists(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
        name,
    )
    .await
}

async fn drop_shared(databases: &[&str], roles: &[&str]) -> anyhow::Result<()> {
    let mut c = shared_pg().await?;
    for db in databases {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .execute(&mut c)
        .await?;
    }
    for role in roles {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS \"{role}\""
        )))
        .execute(&mut c)
        .await?;
    }
    Ok(())
}

/// An `external` PostgresCluster `name` at `port` with superuser password `password`.
async fn external_postgres(
    op: &Operator,
    name: &str,
    port: u16,
    password: &str,
) -> anyhow::Result<()> {
    op.apply(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{name}-admin")},
        "stringData": {"password": password}}),
    )
    .await?;
    op.apply(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "PostgresCluster",
        "metadata": {"name": name},
        "spec": {"provider": "external", "external": {"host": "127.0.0.1", "port": port, "sslMode": "disable",
            "superuserSecretRef": {"name": format!("{name}-admin"), "key": "password"}, "user": "postgres"}}}))
        .await?;
    Ok(())
}

async fn database(
    op: &Operator,
    name: &str,
    cluster: &str,
    db: &str,
    owner: &str,
) -> anyhow::Result<()> {
    op.apply(json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Database",
        "metadata": {"name": name},
        "spec": {"clusterRef": {"name": cluster}, "databaseName": db, "owner": owner, "reclaimPolicy": "Delete"}}))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_database_gets_conflict_and_leaves_the_original_alone() -> anyhow::Result<()>
{
    let op = Operator::start_with_resync("pg-conflict", Externals::real(), RESYNC).await?;
    external_postgres(&op, "local-pg", 5432, "").await?;
    let id = unique();
    let (db, role) = (format!("o_{id}_db"), format!("o_{id}"));
    database(&op, "original", "local-pg", &db, &role).await?;
    op.wait_for::<Database>("original Ready", "original", ready)
        .await?;
    let hash = password_hash(&role).await?;
    ensure!(hash.is_some(), "the owner has a password");
    let secret = op.secret_text("original-credentials", "password").await?;
    let postgres_hash = password_hash("postgres").await?;

    // Same owner role; same database name with a fresh role; the superuser.
    database(
        &op,
        "same-owner",
        "local-pg",
        &format!("o_{id}_other"),
        &role,
    )
    .await?;
    database(&op, "same-db", "local-pg", &db, &format!("o_{id}_c")).await?;
    database(
        &op,
        "superuser",
        "local-pg",
        &format!("o_{id}_su"),
        "postgres",
    )
    .await?;
    for name in ["same-owner", "same-db", "superuser"] {
        let d = op
            .wait_for::<Database>("Conflict", name, not_ready_because("Conflict", &[]))
            .await?;
        let message = condition(&d, "Ready").map(|c| c.message.clone());
        eprintln!("{name}: {message:?}");
        ensure!(
            op.get::<Secret>(&format!("{name}-credentials"))
                .await?
                .is_none(),
            "{name} wrote a Secret"
        );
    }
    ensure!(
        !role_exists(&format!("o_{id}_c")).await?,
        "a conflicting Database created its role"
    );
    ensure!(!database_exists(&format!("o_{id}_other")).await?);
    ensure!(!database_exists(&format!("o_{id}_su")).await?);

    // A Database whose owner is the original's idle second login `<owner>_b` is no conflict
    // for either: the second login counts only once a rotation uses it.
    database(
        &op,
        "neighbour",
        "local-pg",
        &format!("o_{id}_n"),
        &format!("{role}_b"),
    )
    .await?;
    op.wait_for::<Database>("neighbour Ready", "neighbour", ready)
        .await?;

    // Several resyncs later nothing was reset, the original's nor the superuser's.
    tokio::time::sleep(RESYNC * 4).await;
    ensure!(
        password_hash(&role).await? == hash,
        "the original's password changed"
    );
    ensure!(
        password_hash("postgres").await? == postgres_hash,
        "the superuser's password changed"
    );
    ensure!(op.secret_text("original-credentials", "password").await? == secret);
    let d = op
        .wait_for::<Database>("original still Ready", "original", ready)
        .await?;
    ensure!(condition(&d, "Degraded").is_some_and(|c| c.status == "False"));

    // PUBLIC has no CONNECT: another login role is refused; the owner's Secret connects.
    let other = format!("o_{id}_x");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE \"{other}\" LOGIN"
    )))
    .execute(&mut shared_pg().await?)
    .await?;
    let refused =
        sqlx::PgConnection::connect(&format!("postgres://{other}@127.0.0.1:5432/{db}")).await;
    let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        err.contains("permission denied for database"),
        "another role must not connect: {err:?}"
    );
    let uri = op.secret_text("original-credentials", "uri").await?;
    sqlx::PgConnection::connect(&uri).await?.close().await?;

    // Deleting the copies (reclaimPolicy Delete) drops nothing of the original's.
    for name in ["same-owner", "same-db", "superuser", "neighbour"] {
        op.delete::<Database>(name).await?;
    }
    ensure!(
        database_exists(&db).await?,
        "the original's database was dropped"
    );
    ensure!(role_exists(&role).await?, "the original's role was dropped");
    ensure!(role_exists("postgres").await?);
    ensure!(password_hash(&role).await? == hash);

    op.delete::<Database>("original").await?;
    ensure!(!database_exists(&db).await?, "Delete drops what it owns");
    op.stop().await?;
    drop_shared(&[&db], &[&role, &other]).await
}

/// A PostgreSQL server of this test's own: `initdb` in a temporary directory, password
/// (SCRAM) authentication over TCP on a free loopback port, started and stopped with `pg_ctl`.
struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
}

impl PrivatePostgres {
    fn start() -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL from Debian's packages (.ci/setup)")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("payplane-pg-{}", unique()));
        std::fs::create_dir_all(&dir)?;
        let password = format!("su{}", unique());
        std::fs::write(dir.join("pw"), &password)?;
        // initdb refuses to run as root: the server runs as the postgres user then.
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir))?;
        let pg = Self {
            dir,
            bin,
            port,
            password,
        };
        pg.as_owner(&["initdb", "-D"], &[&pg.data()])
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pg.dir.join("pw").display()))
            .status()
            .context("initdb")?
            .success()
            .then_some(())
            .context("initdb failed")?;
        pg.start_server()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    /// `program args paths` as the postgres user when this runs as root.
    fn as_owner(&self, program_args: &[&str], paths: &[&Path]) -> Command {
        let program = self.bin.join(program_args[0]);
        let mut cmd = if Self::is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(&program_args[1..])
            .args(paths)
            .stdout(Stdio::null());
        cmd
    }

    fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.display()
        );
        run(self
            .as_owner(&["pg_ctl", "-w", "-D"], &[&self.data()])
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-o", &options, "start"]))
    }

    fn stop_server(&self) -> anyhow::Result<()> {
        run(self
            .as_owner(&["pg_ctl", "-w", "-D"], &[&self.data()])
            .args(["-m", "fast", "stop"]))
    }

    fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!("postgres://{user}:{password}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop_server();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_is_degraded_within_a_resync_and_ready_after() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start()?;
    let op = Operator::start_with_resync("pg-down", Externals::real(), RESYNC).await?;
    external_postgres(&op, "private-pg", pg.port, &pg.password).await?;
    database(&op, "app", "private-pg", "app_db", "app").await?;
    op.wait_for::<Database>("Ready", "app", ready).await?;
    let password = op.secret_text("app-credentials", "password").await?;

    pg.stop_server()?;
    let stopped = std::time::Instant::now();
    let d = op
        .wait_for::<Database>(
            "Degraded",
            "app",
            not_ready_because("PostgresUnavailable", &[]),
        )
        .await?;
    let took = stopped.elapsed();
    eprintln!("Degraded {took:?} after the server stopped");
    ensure!(
        took <= RESYNC * 2 + Duration::from_secs(2),
        "Degraded only after {took:?}"
    );
    let degraded = condition(&d, "Degraded").context("no Degraded")?;
    ensure!(degraded.status == "True", "{degraded:?}");
    ensure!(degraded.message.contains("connecting to"), "{degraded:?}");
    // The Event is published after the status is written, by a call of its own.
    eventually(
        Duration::from_secs(30),
        "a Warning Event PostgresUnavailable",
        || async {
            Ok(
                if op.has_event(Some("Warning"), "PostgresUnavailable").await? {
                    Ok(())
                } else {
                    Err("no such Event yet".to_owned())
                },
            )
        },
    )
    .await?;

    pg.start_server()?;
    let d = op.wait_for::<Database>("Ready again", "app", ready).await?;
    ensure!(condition(&d, "Degraded").is_some_and(|c| c.status == "False"));
    ensure!(
        op.secret_text("app-credentials", "password").await? == password,
        "the outage changed the password"
    );
    let uri = pg.url("app", &password, "app_db");
    sqlx::PgConnection::connect(&uri).await?.close().await?;
    op.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_keeps_the_old_password_until_the_pods_rolled() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start()?;
    let op = Operator::start_with_resync("pg-rotate", Externals::real(), RESYNC).await?;
    external_postgres(&op, "private-pg", pg.port, &pg.password).await?;
    database(&op, "pay", "private-pg", "pay_db", "pay").await?;
    let app = |cpu: &str| {
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "AppService",
            "metadata": {"name": "pay"},
            "spec": {"image": "payplane/pay:1", "port": 8080, "replicas": 1,
                "database": {"ref": "pay"},
                "resources": {"requests": {"cpu": cpu}}}})
    };
    op.apply(app("10m")).await?;
    op.wait_for::<AppService>("AppService Ready", "pay", ready)
        .await?;
    let old_uri = op.secret_text("pay-credentials", "uri").await?;
    ensure!(op.secret_text("pay-credentials", "user").await? == "pay");
    // The test client: a connection opened with the old password, and new ones.
    let mut client = sqlx::PgConnection::connect(&old_uri).await?;
    sqlx::raw_sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        .execute(&mut client)
        .await?;

    // Hold the rollout: the new pods cannot be scheduled (the old one keeps serving).
    op.apply(app("100000")).await?;
    op.patch::<Database>(
        "pay",
        json!({"metadata": {"annotations": {"payplane.dev/rotate-credentials": "1"}}}),
    )
    .await?;
    eventually(
        Duration::from_secs(60),
        "the Secret to hold pay_b",
        || async {
            Ok(
                match op.secret_text("pay-credentials", "user").await?.as_str() {
                    "pay_b" => Ok(()),
                    other => Err(other.to_owned()),
                },
            )
        },
    )
    .await?;
    let new_uri = op.secret_text("pay-credentials", "uri").await?;
    ensure!(new_uri != old_uri);
    // The new login sees the owner's data.
    let mut fresh = sqlx::PgConnection::connect(&new_uri).await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut fresh)
        .await?;
    ensure!(n == 1);
    fresh.close().await?;
    // While the pods have not rolled, the old password still logs in, for several resyncs.
    tokio::time::sleep(RESYNC * 3).await;
    sqlx::PgConnection::connect(&old_uri)
        .await
        .context("the old password before the rollout")?
        .close()
        .await?;
    sqlx::query("SELECT 1").execute(&mut client).await?;
    let d = op.existing::<Database>("pay").await?;
    let creds = d
        .status
        .and_then(|s| s.credentials)
        .context("no credentials")?;
    ensure!(creds.retiring.as_deref() == Some("pay"), "{creds:?}");
    ensure!(creds.rollout_from.contains_key("pay"), "{creds:?}");

    // The pods roll onto the new Secret; then the old password is refused.
    op.apply(app("10m")).await?;
    op.wait_for::<Database>("the old login retired", "pay", |d| {
        let creds = d
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.credentials.clone());
        match creds {
            Some(c) if c.retiring.is_none() && c.active == "pay_b" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    let refused = sqlx::PgConnection::connect(&old_uri).await;
    let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        err.contains("password authentication failed") || err.contains("not permitted to log in"),
        "the old password must be refused: {err:?}"
    );
    sqlx::PgConnection::connect(&new_uri).await?.close().await?;
    ensure!(
        op.has_event(None, "CredentialsRotated").await?,
        "no CredentialsRotated event"
    );
    op.stop().await
}

async fn mgmt(method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://127.0.0.1:15672/api/{path}"))
        .basic_auth("guest", Some("guest"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    ensure!(
        status.is_success() || status.as_u16() == 404,
        "{path}: {status} {text}"
    );
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The end of a Queue test: stops the operator and removes `users` and `vhost` from the
/// broker.
async fn finish_on_broker(op: Operator, users: &[&str], vhost: &str) -> anyhow::Result<()> {
    op.stop().await?;
    for user in users {
        let _ = mgmt(reqwest::Method::DELETE, &format!("users/{user}"), None).await;
    }
    mgmt(reqwest::Method::DELETE, &format!("vhosts/{vhost}"), None).await?;
    Ok(())
}

async fn queue(op: &Operator, name: &str, spec: Value) -> anyhow::Result<()> {
    let mut spec = spec;
    spec["brokerRef"] = json!({"name": "local-rmq"});
    spec["reclaimPolicy"] = json!("Delete");
    op.apply(
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "Queue",
        "metadata": {"name": name}, "spec": spec}),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_queue_gets_conflict_and_the_original_password_is_unchanged()
-> anyhow::Result<()> {
    let (op, id, vhost) = on_local_broker("rmq-conflict", RESYNC).await?;
    let (user, own) = (format!("u-{id}"), format!("o{id}.events"));
    queue(
        &op,
        "original",
        json!({"vhost": vhost, "user": user, "queue": own}),
    )
    .await?;
    op.wait_for::<Queue>("original Ready", "original", ready)
        .await?;
    let hash =
        mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?["password_hash"].clone();
    ensure!(hash.is_string(), "{hash}");
    queue(
        &op,
        "copy",
        json!({"vhost": vhost, "user": user, "queue": format!("c{id}.events")}),
    )
    .await?;
    queue(
        &op,
        "guest",
        json!({"vhost": vhost, "user": "guest", "publishes": true}),
    )
    .await?;
    for name in ["copy", "guest"] {
        op.wait_for::<Queue>("Conflict", name, not_ready_because("Conflict", &[]))
            .await?;
        ensure!(
            op.get::<Secret>(&format!("{name}-amqp")).await?.is_none(),
            "{name} wrote a Secret"
        );
    }
    // Nothing of the copy was declared.
    let copy = mgmt(
        reqwest::Method::GET,
        &format!("queues/{vhost}/c{id}.events"),
        None,
    )
    .await?;
    ensure!(
        copy.get("name").is_none(),
        "the copy declared its queue: {copy}"
    );
    // Several resyncs: no password reset, by the copy or by the original.
    tokio::time::sleep(RESYNC * 4).await;
    let now = mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?;
    ensure!(
        now["password_hash"] == hash,
        "the original's password changed"
    );
    // Deleting the copy (reclaimPolicy Delete) removes neither the user nor the queue.
    op.delete::<Queue>("copy").await?;
    let now = mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?;
    ensure!(
        now["password_hash"] == hash,
        "the copy's deletion touched the user"
    );
    let q = mgmt(reqwest::Method::GET, &format!("queues/{vhost}/{own}"), None).await?;
    ensure!(q["name"] == json!(own), "the original's queue is gone: {q}");
    let uri = op.secret_text("original-amqp", "uri").await?;
    let conn = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()).await?;
    let _ = conn.close(200, "done".into()).await;
    finish_on_broker(op, &[&user], &vhost).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_queue_arguments_say_so_and_recreating_the_queue_recovers() -> anyhow::Result<()> {
    let (op, id, vhost) = on_local_broker("rmq-args", RESYNC).await?;
    let own = format!("a{id}.events");
    queue(
        &op,
        "args",
        json!({"vhost": vhost, "user": format!("a-{id}"), "queue": own}),
    )
    .await?;
    op.wait_for::<Queue>("Ready", "args", ready).await?;
    op.patch::<Queue>("args", json!({"spec": {"retryDelays": ["5s", "2s", "4s"]}}))
        .await?;
    let q = op
        .wait_for::<Queue>(
            "QueueArgumentsChanged",
            "args",
            not_ready_because("QueueArgumentsChanged", &[]),
        )
        .await?;
    let message = ready_message(&q);
    eprintln!("{message}");
    let retry = format!("{own}.retry.1");
    ensure!(
        message.contains(&format!(
            "queue {retry} has x-message-ttl=1000 on the broker, the spec wants 5000"
        )),
        "{message}"
    );
    ensure!(message.contains("delete it on the broker"), "{message}");
    ensure!(condition(&q, "Degraded").is_some_and(|c| c.status == "True"));
    // The documented recreate path: delete the (drained) queue; the operator redeclares it.
    mgmt(
        reqwest::Method::DELETE,
        &format!("queues/{vhost}/{retry}"),
        None,
    )
    .await?;
    op.wait_for::<Queue>("Ready again", "args", ready).await?;
    let declared = mgmt(
        reqwest::Method::GET,
        &format!("queues/{vhost}/{retry}"),
        None,
    )
    .await?;
    ensure!(
        declared["arguments"]["x-message-ttl"] == json!(5000),
        "{declared}"
    );
    finish_on_broker(op, &[&format!("a-{id}")], &vhost).await
}

/// The routing keys bound on `events` to `queue`.
async fn bound_keys(vhost: &str, queue: &str) -> anyhow::Result<Vec<String>> {
    let list = mgmt(
        reqwest::Method::GET,
        &format!("queues/{vhost}/{queue}/bindings"),
        None,
    )
    .await?;
    let mut keys: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["source"] == "events")
        .filter_map(|b| b["routing_key"].as_str().map(str::to_owned))
        .collect();
    keys.sort();
    Ok(keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_bindings_are_removed() -> anyhow::Result<()> {
    let (op, id, vhost) = on_local_broker("rmq-bindings", RESYNC).await?;
    let own = format!("b{id}.events");
    queue(
        &op,
        "bind",
        json!({"vhost": vhost, "user": format!("b-{id}"), "queue": own,
            "bindings": ["auth.user.*", "payments.#"]}),
    )
    .await?;
    op.wait_for::<Queue>("Ready", "bind", ready).await?;
    ensure!(bound_keys(&vhost, &own).await? == ["auth.user.*", "payments.#"]);
    // One binding leaves the spec; one is added by hand on the broker.
    mgmt(
        reqwest::Method::POST,
        &format!("bindings/{vhost}/e/events/q/{own}"),
        Some(json!({"routing_key": "admin.#", "arguments": {}})),
    )
    .await?;
    op.patch::<Queue>("bind", json!({"spec": {"bindings": ["auth.user.*"]}}))
        .await?;
    eventually(
        Duration::from_secs(60),
        "only the declared binding",
        || async {
            let keys = bound_keys(&vhost, &own).await?;
            Ok(if keys == ["auth.user.*"] {
                Ok(())
            } else {
                Err(format!("{keys:?}"))
            })
        },
    )
    .await?;
    finish_on_broker(op, &[&format!("b-{id}")], &vhost).await
}

/// The password of a Queue's user is set once: the hash stays across resyncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_password_is_stable_across_resyncs() -> anyhow::Result<()> {
    let (op, id, vhost) = on_local_broker("rmq-stable", RESYNC).await?;
    let user = format!("s-{id}");
    queue(
        &op,
        "stable",
        json!({"vhost": vhost, "user": user, "publishes": true}),
    )
    .await?;
    op.wait_for::<Queue>("Ready", "stable", ready).await?;
    let before = op.ctx.metrics.total_reconciles();
    let hash =
        mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?["password_hash"].clone();
    tokio::time::sleep(RESYNC * 4).await;
    ensure!(
        op.ctx.metrics.total_reconciles() >= before + 3,
        "no resync happened"
    );
    let now = mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?;
    ensure!(
        now["password_hash"] == hash,
        "the password was reset on a resync"
    );
    finish_on_broker(op, &[&user], &vhost).await
}

/// Whether `uri` logs in to RabbitMQ (the error when it does not).
async fn amqp_login(uri: &str) -> Result<(), String> {
    match lapin::Connection::connect(uri, lapin::ConnectionProperties::default()).await {
        Ok(conn) => {
            let _ = conn.close(200, "done".into()).await;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_rotation_deletes_the_old_user_only_after_the_pods_rolled() -> anyhow::Result<()> {
    let (op, id, vhost) = on_local_broker("rmq-rotate", RESYNC).await?;
    let user = format!("r-{id}");
    queue(
        &op,
        "rot",
        json!({"vhost": vhost, "user": user, "queue": format!("r{id}.events")}),
    )
    .await?;
    let app = |cpu: &str| {
        json!({"apiVersion": "payplane.dev/v1alpha1", "kind": "AppService",
            "metadata": {"name": "consumer"},
            "spec": {"image": "payplane/consumer:1", "port": 8080, "replicas": 1,
                "queues": [{"ref": "rot"}],
                "resources": {"requests": {"cpu": cpu}}}})
    };
    op.apply(app("10m")).await?;
    op.wait_for::<AppService>("AppService Ready", "consumer", ready)
        .await?;
    let old_uri = op.secret_text("rot-amqp", "uri").await?;
    amqp_login(&old_uri).await.map_err(anyhow::Error::msg)?;
    op.apply(app("100000")).await?;
    op.patch::<Queue>(
        "rot",
        json!({"metadata": {"annotations": {"payplane.dev/rotate-credentials": "a"}}}),
    )
    .await?;
    let second = format!("{user}-b");
    eventually(
        Duration::from_secs(60),
        "the Secret to hold the second user",
        || async {
            let now = op.secret_text("rot-amqp", "username").await?;
            Ok(if now == second { Ok(()) } else { Err(now) })
        },
    )
    .await?;
    let new_uri = op.secret_text("rot-amqp", "uri").await?;
    amqp_login(&new_uri).await.map_err(anyhow::Error::msg)?;
    tokio::time::sleep(RESYNC * 3).await;
    amqp_login(&old_uri)
        .await
        .map_err(|e| anyhow::anyhow!("the old password before the rollout: {e}"))?;

    op.apply(app("10m")).await?;
    op.wait_for::<Queue>("the old user retired", "rot", |q| {
        match q
            .and_then(|q| q.status.as_ref())
            .and_then(|s| s.credentials.clone())
        {
            Some(c) if c.retiring.is_none() && c.active == second => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    let err = amqp_login(&old_uri).await.err().unwrap_or_default();
    ensure!(
        err.contains("ACCESS_REFUSED") || err.contains("auth"),
        "the old password must be refused: {err:?}"
    );
    amqp_login(&new_uri).await.map_err(anyhow::Error::msg)?;
    finish_on_broker(op, &[&second], &vhost).await
}

/// What an operator before ownership marks made (no comment, no tag, but the resource's own
/// Secret) is adopted on the next resync without a password change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmarked_objects_of_the_resources_own_secret_are_adopted() -> anyhow::Result<()> {
    let op = Operator::start_with_resync("adopt", Externals::real(), RESYNC).await?;
    external_postgres(&op, "local-pg", 5432, "").await?;
    apply_local_broker(&op, "local-rmq").await?;
    let id = unique();
    let (db, role) = (format!("l_{id}_db"), format!("l_{id}"));
    database(&op, "legacy", "local-pg", &db, &role).await?;
    let (vhost, user) = (format!("test-{id}"), format!("l-{id}"));
    queue(
        &op,
        "legacy",
        json!({"vhost": vhost, "user": user, "publishes": true}),
    )
    .await?;
    op.wait_for::<Database>("Ready", "legacy", ready).await?;
    op.wait_for::<Queue>("Ready", "legacy", ready).await?;
    let hash = password_hash(&role).await?;
    let u = mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?;
    let user_hash = u["password_hash"].clone();

    // Remove the marks, as if an older operator had made them.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "COMMENT ON ROLE \"{role}\" IS NULL; COMMENT ON DATABASE \"{db}\" IS NULL"
    )))
    .execute(&mut shared_pg().await?)
    .await?;
    mgmt(
        reqwest::Method::PUT,
        &format!("users/{user}"),
        Some(json!({"password_hash": user_hash, "hashing_algorithm": u["hashing_algorithm"], "tags": ""})),
    )
    .await?;
    eventually(Duration::from_secs(30), "the marks back", || async {
        let mut c = shared_pg().await?;
        let comment: Option<String> = sqlx::query_scalar(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
        )
        .bind(&role)
        .fetch_one(&mut c)
        .await?;
        let tags =
            mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?["tags"].clone();
        let tagged = tags.as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t.as_str().is_some_and(|t| t.starts_with("payplane-owner-")))
        });
        Ok(if comment.is_some() && tagged {
            Ok(())
        } else {
            Err(format!("comment {comment:?}, tags {tags}"))
        })
    })
    .await?;
    ensure!(
        password_hash(&role).await? == hash,
        "adoption changed the role's password"
    );
    let now = mgmt(reqwest::Method::GET, &format!("users/{user}"), None).await?;
    ensure!(
        now["password_hash"] == user_hash,
        "adoption changed the user's password"
    );
    op.wait_for::<Database>("Ready", "legacy", ready).await?;
    op.wait_for::<Queue>("Ready", "legacy", ready).await?;
    op.stop().await?;
    drop_shared(&[&db], &[&role]).await?;
    let _ = mgmt(reqwest::Method::DELETE, &format!("users/{user}"), None).await;
    mgmt(reqwest::Method::DELETE, &format!("vhosts/{vhost}"), None).await?;
    Ok(())
}
