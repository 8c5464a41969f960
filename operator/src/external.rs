//! The systems outside Kubernetes the operator manages: PostgreSQL roles and databases (SQL)
//! and RabbitMQ topology and users (management HTTP API). [`Externals::Simulated`] records
//! the same operations in memory for scenario tests and the bench, where no server runs.

pub mod postgres;
pub mod rabbitmq;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

pub use postgres::{DbPlan, LoginChange, PgObserved, PgTarget, SqlError};
pub use rabbitmq::{BrokerError, BrokerObserved, BrokerTarget, QueuePlan};

/// What the simulated backend has been asked to create.
#[derive(Debug, Default)]
pub struct SimulatedState {
    /// `host:port/database` of every database created and not dropped.
    pub databases: BTreeSet<String>,
    /// `vhost/user` of every broker user created and not deleted.
    pub broker_users: BTreeSet<String>,
    /// Number of SQL ensure calls, to see that no-op reconciles still converge.
    pub sql_calls: u64,
    /// Roles by `host:port/role`, as PostgreSQL would report them.
    pub roles: BTreeMap<String, postgres::RoleInfo>,
    /// Ownership tags of broker users by `vhost/user` (`vhost` of the Queue that made them).
    pub user_tags: BTreeMap<String, Vec<String>>,
}

/// Real servers, or an in-memory stand-in.
#[derive(Clone)]
pub enum Externals {
    /// PostgreSQL over sqlx, RabbitMQ over its management API.
    Real(reqwest::Client),
    /// In-memory: records what would be done.
    Simulated(Arc<Mutex<SimulatedState>>),
}

impl Externals {
    /// Real backends with a shared HTTP client.
    pub fn real() -> Self {
        Self::Real(reqwest::Client::new())
    }

    /// A fresh in-memory backend.
    pub fn simulated() -> Self {
        Self::Simulated(Arc::default())
    }

    fn with_sim<T>(state: &Mutex<SimulatedState>, f: impl FnOnce(&mut SimulatedState) -> T) -> T {
        f(&mut state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Creates the role and database of `plan` if missing, and sets the role's password.
    pub async fn ensure_database(&self, target: &PgTarget, plan: &DbPlan) -> Result<(), SqlError> {
        match self {
            Self::Real(_) => postgres::ensure_database(target, plan).await,
            Self::Simulated(s) => {
                Self::with_sim(s, |s| {
                    s.sql_calls += 1;
                    s.databases
                        .insert(format!("{}:{}/{}", target.host, target.port, plan.database));
                    let key = |role: &str| format!("{}:{}/{role}", target.host, target.port);
                    let comment = Some(postgres::marker(&plan.uid));
                    s.roles
                        .entry(key(&plan.owner))
                        .or_insert_with(|| postgres::RoleInfo {
                            superuser: false,
                            login: false,
                            comment: comment.clone(),
                        });
                    for change in &plan.logins {
                        let (name, login) = match change {
                            LoginChange::Enable { name, .. } => (name, true),
                            LoginChange::Disable { name } => (name, false),
                        };
                        s.roles.insert(
                            key(name),
                            postgres::RoleInfo {
                                superuser: false,
                                login,
                                comment: comment.clone(),
                            },
                        );
                    }
                });
                Ok(())
            }
        }
    }

    /// The roles `roles` and the database `database` with their ownership marks.
    pub async fn observe_database(
        &self,
        target: &PgTarget,
        roles: &[String],
        database: &str,
    ) -> Result<PgObserved, SqlError> {
        match self {
            Self::Real(_) => postgres::observe(target, roles, database).await,
            Self::Simulated(s) => Ok(Self::with_sim(s, |s| PgObserved {
                roles: roles
                    .iter()
                    .filter_map(|r| {
                        s.roles
                            .get(&format!("{}:{}/{r}", target.host, target.port))
                            .map(|info| (r.clone(), info.clone()))
                    })
                    .collect(),
                // The simulation keeps no database marks; the roles decide ownership.
                database: None,
            })),
        }
    }

    /// Drops the database and roles of `plan` (the owner and `logins`) that carry its mark.
    pub async fn drop_database(
        &self,
        target: &PgTarget,
        plan: &DbPlan,
        logins: &[String],
    ) -> Result<(), SqlError> {
        match self {
            Self::Real(_) => postgres::drop_database(target, plan, logins).await,
            Self::Simulated(s) => {
                Self::with_sim(s, |s| {
                    s.databases.remove(&format!(
                        "{}:{}/{}",
                        target.host, target.port, plan.database
                    ));
                    for role in logins.iter().chain([&plan.owner]) {
                        s.roles
                            .remove(&format!("{}:{}/{role}", target.host, target.port));
                    }
                });
                Ok(())
            }
        }
    }

    /// The users, the declared queues' arguments and their bindings on the broker.
    pub async fn observe_queue(
        &self,
        target: &BrokerTarget,
        vhost: &str,
        users: &[String],
        decls: &payplane_events::topology::Declarations,
    ) -> Result<BrokerObserved, BrokerError> {
        match self {
            Self::Real(http) => rabbitmq::observe(http, target, vhost, users, decls).await,
            Self::Simulated(s) => Ok(Self::with_sim(s, |s| BrokerObserved {
                users: users
                    .iter()
                    .filter_map(|u| {
                        s.user_tags
                            .get(&format!("{vhost}/{u}"))
                            .map(|tags| (u.clone(), rabbitmq::UserInfo { tags: tags.clone() }))
                    })
                    .collect(),
                ..BrokerObserved::default()
            })),
        }
    }

    /// Declares the topology of `plan`, applies its user changes and sets permissions.
    pub async fn ensure_queue(
        &self,
        target: &BrokerTarget,
        plan: &QueuePlan,
    ) -> Result<(), BrokerError> {
        match self {
            Self::Real(http) => rabbitmq::ensure(http, target, plan).await,
            Self::Simulated(s) => {
                Self::with_sim(s, |s| {
                    for change in &plan.user_changes {
                        match change {
                            rabbitmq::UserChange::Enable { name, .. }
                            | rabbitmq::UserChange::Adopt { name } => {
                                let key = format!("{}/{name}", plan.vhost);
                                s.broker_users.insert(key.clone());
                                s.user_tags
                                    .insert(key, vec![rabbitmq::owner_tag(&plan.uid)]);
                            }
                            rabbitmq::UserChange::Disable { name } => {
                                let key = format!("{}/{name}", plan.vhost);
                                s.broker_users.remove(&key);
                                s.user_tags.remove(&key);
                            }
                        }
                    }
                });
                Ok(())
            }
        }
    }

    /// Deletes the users of `plan` it owns and its queues that are empty.
    pub async fn delete_queue(
        &self,
        target: &BrokerTarget,
        plan: &QueuePlan,
    ) -> Result<(), BrokerError> {
        match self {
            Self::Real(http) => rabbitmq::delete(http, target, plan).await,
            Self::Simulated(s) => {
                Self::with_sim(s, |s| {
                    for user in &plan.users {
                        let key = format!("{}/{user}", plan.vhost);
                        s.broker_users.remove(&key);
                        s.user_tags.remove(&key);
                    }
                });
                Ok(())
            }
        }
    }
}
