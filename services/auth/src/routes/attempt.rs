//! The password-attempt throttle of api.md §4.3 as login and password change both apply it
//! under the throttle row lock: the gate checked again, a wrong password counted. Does I/O
//! (the throttle row, in the caller's transaction).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use payplane_events::time;
use payplane_kit::ApiError;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::{
    error,
    lockout::{self, Failure, Gate},
    store::{
        StoreError,
        throttle::{self, Throttle},
    },
};

/// The 429 of a closed gate (api.md §4.3), or `None` when the gate is open.
pub fn gate_refusal(gate: Gate) -> Option<ApiError> {
    match gate {
        Gate::Open => None,
        Gate::Locked { until, wait } => {
            Some(error::account_locked(wait, Some(time::format(&until))))
        }
        Gate::Backoff { wait } => Some(error::account_locked(wait, None)),
    }
}

/// A first look at the gate of `key`, without a lock: a locked account is refused before it
/// costs a hash. The gate is checked again under the row lock ([`lock_open`]).
pub async fn peek(conn: &mut PgConnection, key: &[u8]) -> Result<Gate, ApiError> {
    let mut state = throttle::get(conn, key).await?.unwrap_or_default();
    let now = time::now();
    lockout::apply_memory_reset(&mut state, now);
    Ok(lockout::gate(&state, now))
}

/// Locks the throttle row of `key` and checks its gate again (it may have closed while the
/// caller hashed): open, the transaction and the row; closed, the refusal `refused` makes of
/// it, after committing the memory reset the row may have had.
pub async fn lock_open<'c>(
    mut tx: Transaction<'c, Postgres>,
    key: &[u8],
    now: DateTime<Utc>,
    refused: impl FnOnce(Gate) -> Option<ApiError>,
) -> Result<(Transaction<'c, Postgres>, Throttle), ApiError> {
    let mut state = throttle::lock(&mut tx, key).await?;
    if lockout::apply_memory_reset(&mut state, now) {
        throttle::save(&mut tx, key, &state, None).await?;
    }
    if let Some(err) = refused(lockout::gate(&state, now)) {
        tx.commit()
            .await
            .map_err(StoreError::at("commit throttle"))?;
        return Err(err);
    }
    Ok((tx, state))
}

/// Counts a wrong password on the locked row of `key` from `ip` and commits it (`what`
/// names the commit); what the caller answers depends on the outcome.
pub async fn count_failure(
    mut tx: Transaction<'_, Postgres>,
    key: &[u8],
    mut state: Throttle,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
    what: &'static str,
) -> Result<Failure, ApiError> {
    let outcome = lockout::record_failure(&mut state, now);
    throttle::save(&mut tx, key, &state, ip).await?;
    tx.commit().await.map_err(StoreError::at(what))?;
    Ok(outcome)
}
