//! Idempotency records (data.md §3.4, api.md §5.8): claimed in a short transaction of their
//! own so a concurrent duplicate sees *in progress* at once; finished in the payment's
//! transaction; released after a 5xx.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Ctx, StoreError};

/// What the caller may do with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use (or an expired or abandoned record taken over): process the request.
    Owned,
    /// Finished earlier with the same request: replay this answer.
    Replay { status: u16, body: Vec<u8> },
    /// Same key, different request.
    Reused,
    /// Same request still running elsewhere.
    InProgress,
}

#[derive(Debug, sqlx::FromRow)]
struct Record {
    request_fingerprint: Vec<u8>,
    state: String,
    response_status: Option<i16>,
    response_body: Option<Vec<u8>>,
    expired: bool,
    abandoned: bool,
}

/// Claims `key` for `user`. A first use is one autocommitted insert (visible to a concurrent
/// duplicate at once); an existing record is examined and updated in a short transaction.
pub async fn claim(
    pool: &PgPool,
    user: Uuid,
    key: &str,
    method: &str,
    path: &str,
    fingerprint: &[u8],
) -> Result<Claim, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_method, request_path, \
           request_fingerprint, expires_at) \
         VALUES ($1, $2, $3, $4, $5, date_trunc('milliseconds', now()) + interval '24 hours') \
         ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(user)
    .bind(key)
    .bind(method)
    .bind(path)
    .bind(fingerprint)
    .execute(pool)
    .await
    .ctx("insert idempotency key")?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Owned);
    }
    let mut tx = pool.begin().await.ctx("begin idempotency claim")?;
    let claim = existing(&mut tx, user, key, method, path, fingerprint).await?;
    tx.commit().await.ctx("commit idempotency claim")?;
    Ok(claim)
}

async fn existing(
    conn: &mut PgConnection,
    user: Uuid,
    key: &str,
    method: &str,
    path: &str,
    fingerprint: &[u8],
) -> Result<Claim, StoreError> {
    let rec: Option<Record> = sqlx::query_as(
        "SELECT request_fingerprint, state, response_status, response_body, \
           expires_at <= now() AS expired, \
           (state = 'in_progress' AND locked_at < now() - interval '60 seconds') AS abandoned \
         FROM idempotency_keys WHERE user_id = $1 AND key = $2 FOR UPDATE",
    )
    .bind(user)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .ctx("lock idempotency key")?;
    let Some(rec) = rec else {
        // Deleted in between (a 5xx released it): the next attempt will insert.
        return Ok(Claim::InProgress);
    };
    if rec.expired {
        sqlx::query(
            "UPDATE idempotency_keys SET request_method = $3, request_path = $4, \
               request_fingerprint = $5, state = 'in_progress', response_status = NULL, \
               response_body = NULL, payment_id = NULL, \
               locked_at = date_trunc('milliseconds', now()), \
               created_at = date_trunc('milliseconds', now()), \
               expires_at = date_trunc('milliseconds', now()) + interval '24 hours' \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user)
        .bind(key)
        .bind(method)
        .bind(path)
        .bind(fingerprint)
        .execute(&mut *conn)
        .await
        .ctx("renew expired idempotency key")?;
        return Ok(Claim::Owned);
    }
    if rec.request_fingerprint != fingerprint {
        return Ok(Claim::Reused);
    }
    if rec.state == "completed" {
        return Ok(Claim::Replay {
            status: rec
                .response_status
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200),
            body: rec.response_body.unwrap_or_default(),
        });
    }
    if rec.abandoned {
        sqlx::query(
            "UPDATE idempotency_keys SET locked_at = date_trunc('milliseconds', now()) \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user)
        .bind(key)
        .execute(&mut *conn)
        .await
        .ctx("take over idempotency key")?;
        return Ok(Claim::Owned);
    }
    Ok(Claim::InProgress)
}

/// Stores the final answer (inside the payment's transaction for a 201).
pub async fn finish(
    conn: &mut PgConnection,
    user: Uuid,
    key: &str,
    status: u16,
    body: &[u8],
    payment_id: Option<Uuid>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'completed', response_status = $3, \
           response_body = $4, payment_id = $5 WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .bind(i16::try_from(status).unwrap_or(500))
    .bind(body)
    .bind(payment_id)
    .execute(conn)
    .await
    .ctx("finish idempotency key")?;
    Ok(())
}

/// Forgets an in-progress key after a 5xx so the client may retry.
pub async fn release(conn: &mut PgConnection, user: Uuid, key: &str) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_progress'",
    )
    .bind(user)
    .bind(key)
    .execute(conn)
    .await
    .ctx("release idempotency key")?;
    Ok(())
}

/// Housekeeping: records 1 h past expiry.
pub async fn delete_expired(conn: &mut PgConnection) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < now() - interval '1 hour'")
            .execute(conn)
            .await
            .ctx("delete expired idempotency keys")?
            .rows_affected(),
    )
}
