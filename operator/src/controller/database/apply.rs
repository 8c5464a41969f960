//! `apply` of a `Database`, the part that talks to the API server and PostgreSQL: reads its
//! PostgresCluster and the superuser Secret, observes and changes the roles and database,
//! and on deletion drops them (I/O: Kubernetes API, PostgreSQL).

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::super::credentials::{self, Logins, Rotation, Unready, own_secret};
use super::super::{Ctx, Error, Flow, Result, generate_password, secret_value};
use super::build;
use super::validate::Input;
use crate::crd::{AppService, Database, PostgresCluster};
use crate::external::postgres::check_ownership;
use crate::external::{PgObserved, PgTarget};

/// A reconcile of a Database, once its cluster is ready.
pub type Run<'a> = credentials::Run<'a, Database, Input, Server>;

/// The cluster's superuser connection and the client-facing host.
pub struct Server {
    /// Where the operator connects as superuser.
    pub target: PgTarget,
    /// The host clients use.
    pub host: String,
    /// The port clients use.
    pub port: i32,
}

impl Server {
    /// The connection the Secret describes for the active login of `rotation`.
    pub fn connection(&self, rotation: &Rotation) -> build::Connection {
        build::Connection {
            host: self.host.clone(),
            port: self.port,
            password: rotation.password.clone(),
            ssl_mode: self.target.ssl_mode.clone(),
        }
    }
}

/// The server of `db`'s PostgresCluster, once it is ready and names its endpoint.
pub async fn cluster(db: &Database, ctx: &Ctx, ns: &str) -> Result<Server, Unready> {
    let name = &db.spec.cluster_ref.name;
    let pg: PostgresCluster = credentials::ready_server(ctx, ns, name).await?;
    let status = pg.status.clone().unwrap_or_default();
    let (Some(endpoint), Some(secret), Some(key)) = (
        status.endpoint,
        status.superuser_secret_name,
        status.superuser_secret_key,
    ) else {
        let why = format!("PostgresCluster {name} has no endpoint yet");
        return Err(Unready::NotReady(why));
    };
    let Some(password) = secret_value(&ctx.client, ns, &secret, &key).await? else {
        let why = format!("Secret {secret} of PostgresCluster {name} not found");
        return Err(Unready::NotReady(why));
    };
    Ok(Server {
        target: PgTarget {
            host: endpoint.host.clone(),
            port: u16::try_from(endpoint.port).unwrap_or(5432),
            user: status.superuser.unwrap_or_else(|| "postgres".into()),
            password,
            ssl_mode: status.ssl_mode.clone(),
        },
        host: endpoint.host,
        port: endpoint.port,
    })
}

/// Reads the own Secret and the server's roles and database, decides the logins, and stops
/// (touching nothing) when any of them is another's.
pub async fn observe(run: &Run<'_>) -> Flow<(Logins, PgObserved)> {
    let (db, ctx, ns, input, server) = (run.obj, run.ctx, run.ns, run.input, run.server);
    let stored = own_secret(&ctx.client, ns, &input.secret, &input.uid, "user").await?;
    let (first, second) = &input.pair;
    let mut observed = ctx
        .externals
        .observe_database(
            &server.target,
            &[first.clone(), second.clone()],
            &db.spec.database_name,
        )
        .await
        .map_err(|e| credentials::unavailable(db, &e, ctx.resync))?;
    let recorded = db.status.as_ref().and_then(|s| s.credentials.clone());
    let logins = Logins::decide(db, recorded, input.pair.clone(), stored);
    if !logins.uses_second {
        observed.roles.remove(second);
    }
    check_ownership(&observed, &input.uid, first, logins.adopt)
        .map_err(|conflict| credentials::conflict(db, &conflict, ctx.resync))?;
    Ok((logins, observed))
}

/// Decides the credentials and makes the server hold them: the owner role, the database, its
/// extensions and the logins' passwords.
pub async fn ensure(run: &Run<'_>, (logins, observed): (&Logins, &PgObserved)) -> Flow<Rotation> {
    let (db, ctx, ns, input, server) = (run.obj, run.ctx, run.ns, run.input, run.server);
    let name = db.name_any();
    let uses = |a: &AppService| a.spec.database.as_ref().is_some_and(|d| d.ref_ == name);
    let rollout = credentials::rollout(&ctx.client, ns, &input.secret, logins, uses).await?;
    let usable = |role: &str| observed.roles.get(role).is_some_and(|r| r.login);
    let rotation = credentials::rotate(logins, usable, rollout, "login", generate_password);
    ctx.externals
        .ensure_database(&server.target, &build::plan(db, rotation.changes.clone()))
        .await
        .map_err(|e| credentials::unavailable(db, &e, ctx.resync))?;
    Ok(rotation)
}

/// On deletion: drops what the Database owns with `reclaimPolicy: Delete`, keeps it with
/// `Retain`; either way says so in an Event.
pub async fn cleanup(db: &Database, ctx: &Ctx, ns: &str) -> Result<Action> {
    let (database, owner) = (&db.spec.database_name, &db.spec.owner);
    let kept = format!("database {database} and role {owner}");
    let delete = async {
        match cluster(db, ctx, ns).await {
            Ok(server) => {
                let logins = [build::second_login(owner)];
                // Only what carries this resource's mark is dropped: a conflicting copy
                // drops nothing.
                ctx.externals
                    .drop_database(&server.target, &build::plan(db, Vec::new()), &logins)
                    .await
                    .map_err(|e| {
                        let what =
                            format!("database {database} of Database {ns}/{}", db.name_any());
                        Error::DropDatabase(what, Box::new(e))
                    })?;
                let note = format!(
                    "dropped database {database} and role {owner} where this Database owned them"
                );
                Ok(("Deleted", false, note))
            }
            Err(Unready::Failed(e)) => Err(e),
            // Without a cluster there is nothing to drop from; do not block deletion forever.
            Err(Unready::Missing | Unready::NotReady(_)) => {
                let cluster = &db.spec.cluster_ref.name;
                let note =
                    format!("cluster {cluster} unavailable; database {database} not dropped");
                Ok(("CleanupSkipped", true, note))
            }
        }
    };
    credentials::cleanup(ctx, (db, &db.spec.reclaim_policy), kept, delete).await
}
