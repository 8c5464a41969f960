//! The systems outside Kubernetes the operator manages: PostgreSQL roles and databases (SQL)
//! and RabbitMQ topology and users (management HTTP API). [`Externals::Simulated`] records
//! the same operations in memory for scenario tests and the bench, where no server runs.

pub mod postgres;
pub mod rabbitmq;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

pub use postgres::{DbPlan, PgTarget, SqlError};
pub use rabbitmq::{BrokerError, BrokerTarget, QueuePlan};

/// What the simulated backend has been asked to create.
#[derive(Debug, Default)]
pub struct SimulatedState {
    /// `host:port/database` of every database created and not dropped.
    pub databases: BTreeSet<String>,
    /// `vhost/user` of every broker user created and not deleted.
    pub broker_users: BTreeSet<String>,
    /// Number of SQL ensure calls, to see that no-op reconciles still converge.
    pub sql_calls: u64,
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
                });
                Ok(())
            }
        }
    }

    /// Drops the database and role of `plan`.
    pub async fn drop_database(&self, target: &PgTarget, plan: &DbPlan) -> Result<(), SqlError> {
        match self {
            Self::Real(_) => postgres::drop_database(target, plan).await,
            Self::Simulated(s) => {
                Self::with_sim(s, |s| {
                    s.databases.remove(&format!(
                        "{}:{}/{}",
                        target.host, target.port, plan.database
                    ))
                });
                Ok(())
            }
        }
    }

    /// Declares the topology of `plan` and creates its user with its permissions.
    pub async fn ensure_queue(
        &self,
        target: &BrokerTarget,
        plan: &QueuePlan,
    ) -> Result<(), BrokerError> {
        match self {
            Self::Real(http) => rabbitmq::ensure(http, target, plan).await,
            Self::Simulated(s) => {
                Self::with_sim(s, |s| {
                    s.broker_users
                        .insert(format!("{}/{}", plan.vhost, plan.user))
                });
                Ok(())
            }
        }
    }

    /// Deletes the user of `plan` and its queues that are empty.
    pub async fn delete_queue(
        &self,
        target: &BrokerTarget,
        plan: &QueuePlan,
    ) -> Result<(), BrokerError> {
        match self {
            Self::Real(http) => rabbitmq::delete(http, target, plan).await,
            Self::Simulated(s) => {
                Self::with_sim(s, |s| {
                    s.broker_users
                        .remove(&format!("{}/{}", plan.vhost, plan.user))
                });
                Ok(())
            }
        }
    }
}
