//! Idempotency records (data.md §3.4, api.md §5.8): claimed in a short transaction of their
//! own so a concurrent duplicate sees *in progress* at once; finished in the payment's
//! transaction; released after a 5xx. Every claim carries a fresh token: finishing and
//! releasing are conditional on it, so a request whose claim was taken over (stuck for 60 s)
//! can no longer complete, and a payment carries its claim's generation under a unique index.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, postgres::PgArguments, query::QueryScalar};
use uuid::Uuid;

use super::{Ctx, StoreError};

/// What the caller may do with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use (or an expired or abandoned record taken over): process the request.
    Owned(Owner),
    /// Finished earlier with the same request: replay this answer.
    Replay { status: u16, body: Vec<u8> },
    /// Same key, different request.
    Reused,
    /// Same request still running elsewhere.
    InProgress,
}

/// Proof of the current claim on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Changes with every claim, takeover included; finish/release must present it.
    pub token: Uuid,
    /// The key record's generation (renewed only when an expired key is used again): stored
    /// on the payment, unique with the sender and the key.
    pub since: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct Record {
    created_at: DateTime<Utc>,
    request_fingerprint: Vec<u8>,
    state: String,
    response_status: Option<i16>,
    response_body: Option<Vec<u8>>,
    expired: bool,
    abandoned: bool,
}

/// The request a key is claimed for, as the claim statements bind it (`$1`–`$5`).
struct Request<'a> {
    user: Uuid,
    key: &'a str,
    method: &'a str,
    path: &'a str,
    fingerprint: &'a [u8],
}

impl<'a> Request<'a> {
    /// A statement that claims the key for this request with `token` (`$6`) and returns the
    /// key record's generation.
    fn claim(
        &self,
        sql: &'static str,
        token: Uuid,
    ) -> QueryScalar<'a, Postgres, DateTime<Utc>, PgArguments> {
        sqlx::query_scalar(sql)
            .bind(self.user)
            .bind(self.key)
            .bind(self.method)
            .bind(self.path)
            .bind(self.fingerprint)
            .bind(token)
    }
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
    let req = Request {
        user,
        key,
        method,
        path,
        fingerprint,
    };
    let token = Uuid::new_v4();
    let inserted = req
        .claim(
            "INSERT INTO idempotency_keys (user_id, key, request_method, request_path, \
               request_fingerprint, claim_token, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, date_trunc('milliseconds', now()) + interval '24 hours') \
             ON CONFLICT (user_id, key) DO NOTHING RETURNING created_at",
            token,
        )
        .fetch_optional(pool)
        .await
        .ctx("insert idempotency key")?;
    if let Some(since) = inserted {
        return Ok(Claim::Owned(Owner { token, since }));
    }
    let mut tx = pool.begin().await.ctx("begin idempotency claim")?;
    let claim = existing(&mut tx, &req).await?;
    tx.commit().await.ctx("commit idempotency claim")?;
    Ok(claim)
}

async fn existing(conn: &mut PgConnection, req: &Request<'_>) -> Result<Claim, StoreError> {
    let rec: Option<Record> = sqlx::query_as(
        "SELECT created_at, request_fingerprint, state, response_status, response_body, \
           expires_at <= now() AS expired, \
           (state = 'in_progress' AND locked_at < now() - interval '60 seconds') AS abandoned \
         FROM idempotency_keys WHERE user_id = $1 AND key = $2 FOR UPDATE",
    )
    .bind(req.user)
    .bind(req.key)
    .fetch_optional(&mut *conn)
    .await
    .ctx("lock idempotency key")?;
    let Some(rec) = rec else {
        // Deleted in between (a 5xx released it): the next attempt will insert.
        return Ok(Claim::InProgress);
    };
    let token = Uuid::new_v4();
    if rec.expired {
        let since = req
            .claim(
                "UPDATE idempotency_keys SET request_method = $3, request_path = $4, \
                   request_fingerprint = $5, state = 'in_progress', response_status = NULL, \
                   response_body = NULL, payment_id = NULL, claim_token = $6, \
                   locked_at = date_trunc('milliseconds', now()), \
                   created_at = date_trunc('milliseconds', now()), \
                   expires_at = date_trunc('milliseconds', now()) + interval '24 hours' \
                 WHERE user_id = $1 AND key = $2 RETURNING created_at",
                token,
            )
            .fetch_one(&mut *conn)
            .await
            .ctx("renew expired idempotency key")?;
        return Ok(Claim::Owned(Owner { token, since }));
    }
    if rec.request_fingerprint != req.fingerprint {
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
        // A new token: the stuck request, if it ever wakes up, can no longer finish.
        sqlx::query(
            "UPDATE idempotency_keys SET locked_at = date_trunc('milliseconds', now()), \
               claim_token = $3 WHERE user_id = $1 AND key = $2",
        )
        .bind(req.user)
        .bind(req.key)
        .bind(token)
        .execute(&mut *conn)
        .await
        .ctx("take over idempotency key")?;
        return Ok(Claim::Owned(Owner {
            token,
            since: rec.created_at,
        }));
    }
    Ok(Claim::InProgress)
}

/// Stores the final answer (inside the payment's transaction for a 201) if the claim is still
/// `owner`'s; `false` when it was taken over (the caller must not commit its effects).
pub async fn finish(
    conn: &mut PgConnection,
    user: Uuid,
    key: &str,
    owner: &Owner,
    status: u16,
    body: &[u8],
    payment_id: Option<Uuid>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET state = 'completed', response_status = $3, \
           response_body = $4, payment_id = $5 \
         WHERE user_id = $1 AND key = $2 AND claim_token = $6 AND state = 'in_progress'",
    )
    .bind(user)
    .bind(key)
    .bind(i16::try_from(status).unwrap_or(500))
    .bind(body)
    .bind(payment_id)
    .bind(owner.token)
    .execute(conn)
    .await
    .ctx("finish idempotency key")?
    .rows_affected();
    Ok(done == 1)
}

/// Forgets an unfinished claim after a 5xx so the client may retry, if it is still `owner`'s.
pub async fn release(
    conn: &mut PgConnection,
    user: Uuid,
    key: &str,
    owner: &Owner,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE user_id = $1 AND key = $2 AND state = 'in_progress' AND claim_token = $3",
    )
    .bind(user)
    .bind(key)
    .bind(owner.token)
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
