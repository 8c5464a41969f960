//! The `Database` kind: a logical PostgreSQL database and its owner role. Pure data, no I/O.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{LocalRef, ReclaimPolicy};

super::kind! {
    kind: "Database",
    status: "DatabaseStatus",
    shortname: "pgdb",
    doc: "Database is a logical PostgreSQL database and its LOGIN owner role, created idempotently over SQL on a PostgresCluster; the operator writes a connection Secret with host, port, dbname, user, password and uri.",
    column: r#"{"name":"Database","type":"string","jsonPath":".spec.databaseName","priority":1}"#,
    /// A logical database with its owner role on a `PostgresCluster`.
    #[derive(Eq)]
    pub struct DatabaseSpec {
        /// The `PostgresCluster` that hosts the database.
        pub cluster_ref: LocalRef,
        /// Name of the database in PostgreSQL; immutable.
        #[schemars(pattern("^[a-z_][a-z0-9_]{0,62}$"))]
        #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "databaseName is immutable"}]))]
        pub database_name: String,
        /// Owner role, created with LOGIN and a generated password; immutable.
        #[schemars(pattern("^[a-z_][a-z0-9_]{0,62}$"))]
        #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "owner is immutable"}]))]
        pub owner: String,
        /// Extensions created in the database (`CREATE EXTENSION IF NOT EXISTS`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub extensions: Vec<Extension>,
        /// `Retain` (default) keeps the database and role when this resource is deleted; `Delete`
        /// drops them.
        #[serde(default)]
        pub reclaim_policy: ReclaimPolicy,
    }
}

/// A PostgreSQL extension name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct Extension(
    /// Extension name, e.g. `pgcrypto`.
    #[schemars(pattern("^[a-z_][a-z0-9_-]{0,62}$"))]
    pub String,
);

super::status! {
    /// Observed state of a Database.
    pub struct DatabaseStatus {
        /// `Ready` (and `Degraded` on SQL errors).
        conditions,
        /// The connection Secret (keys `host`, `port`, `dbname`, `user`, `password`, `uri`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret_name: Option<String>,
        /// The login the Secret holds and the state of a credential rotation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub credentials: Option<Credentials>,
    }
}

/// Which login (PostgreSQL role or RabbitMQ user) the Secret holds, and what a rotation
/// (annotation `payplane.dev/rotate-credentials`) waits for before it retires the old one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The login the Secret holds.
    pub active: String,
    /// The previous login, still accepted until every AppService using the Secret has
    /// rolled onto the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring: Option<String>,
    /// The last value of the `payplane.dev/rotate-credentials` annotation acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<String>,
    /// The pod-template `payplane.dev/secrets-checksum` of each using AppService's
    /// Deployment when the rotation began: it has rolled once that changed and the rollout
    /// finished.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rollout_from: BTreeMap<String, String>,
}

super::impl_has_conditions!(Database, logins);
