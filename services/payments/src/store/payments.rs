//! Payments and their transaction rows (data.md §3.2–§3.3). Reads join the directory for the
//! sender's and recipient's `{id, email, name}`.

use chrono::{DateTime, Utc};
use payplane_db::json::StoredJson;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use payplane_events::ActorType;

use super::{Ctx, StoreError};
use crate::domain::{money::Amount, status::PaymentStatus};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    #[sqlx(try_from = "Decimal")]
    pub amount: Amount,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    #[sqlx(rename = "type")]
    pub payment_type: String,
    pub description: String,
    #[sqlx(try_from = "StoredJson")]
    pub metadata: Option<Value>,
    pub psp_transaction_id: Option<String>,
    pub psp_status: Option<String>,
    pub failure_reason: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sender_email: String,
    pub sender_name: String,
    pub recipient_email: String,
    pub recipient_name: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TxRow {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub status: String,
    pub previous_status: Option<String>,
    pub status_message: Option<String>,
    pub psp_transaction_id: Option<String>,
    pub actor_id: Option<Uuid>,
    pub actor_type: String,
    #[sqlx(try_from = "StoredJson")]
    pub metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT p.id, p.sender_id, p.recipient_id, p.amount, p.currency, p.status, \
    p.type, p.description, p.metadata, p.psp_transaction_id, p.psp_status, p.failure_reason, \
    p.scheduled_for, p.completed_at, p.created_at, p.updated_at, \
    s.email AS sender_email, s.name AS sender_name, \
    r.email AS recipient_email, r.name AS recipient_name \
    FROM payments p JOIN users s ON s.id = p.sender_id JOIN users r ON r.id = p.recipient_id";

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<PaymentRow>, StoreError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE p.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .ctx("select payment")
}

/// Reads and locks the payment row for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<PaymentRow>, StoreError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE p.id = $1 FOR UPDATE OF p"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .ctx("lock payment")
}

/// Locks one payment matching `condition` that no other transaction holds (simulator).
pub async fn lock_next(
    conn: &mut PgConnection,
    condition: &str,
    delay_ms: i64,
) -> Result<Option<PaymentRow>, StoreError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE p.id = (SELECT id FROM payments WHERE {condition} \
         ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    )))
    .bind(delay_ms)
    .fetch_optional(conn)
    .await
    .ctx("lock next payment for the simulator")
}

#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    pub amount: Amount,
    pub currency: &'a str,
    pub payment_type: &'a str,
    pub description: &'a str,
    pub metadata: Option<&'a Value>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub idempotency_key: Option<&'a str>,
    /// The idempotency claim's generation (unique with sender and key).
    pub idempotency_since: Option<DateTime<Utc>>,
    pub status: PaymentStatus,
    pub psp_transaction_id: Option<&'a str>,
    pub psp_status: Option<&'a str>,
    pub completed_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

pub async fn insert(conn: &mut PgConnection, p: &NewPayment<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO payments (id, sender_id, recipient_id, amount, currency, status, type, \
           description, metadata, scheduled_for, idempotency_key, psp_transaction_id, psp_status, \
           completed_at, created_at, updated_at, idempotency_since) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)",
    )
    .bind(p.id)
    .bind(p.sender_id)
    .bind(p.recipient_id)
    .bind(p.amount.value())
    .bind(p.currency)
    .bind(p.status.as_str())
    .bind(p.payment_type)
    .bind(p.description)
    .bind(p.metadata)
    .bind(p.scheduled_for)
    .bind(p.idempotency_key)
    .bind(p.psp_transaction_id)
    .bind(p.psp_status)
    .bind(p.completed_at)
    .bind(p.now)
    .bind(p.idempotency_since)
    .execute(conn)
    .await
    .ctx("insert payment")?;
    Ok(())
}

/// The payment created under one generation of an idempotency key, if any.
pub async fn id_for_claim(
    conn: &mut PgConnection,
    sender: Uuid,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    sqlx::query_scalar(
        "SELECT id FROM payments \
         WHERE sender_id = $1 AND idempotency_key = $2 AND idempotency_since = $3",
    )
    .bind(sender)
    .bind(key)
    .bind(since)
    .fetch_optional(conn)
    .await
    .ctx("select payment by idempotency claim")
}

/// Writes every column an edit or a status change may touch (the row is locked by the caller).
pub async fn save(conn: &mut PgConnection, p: &PaymentRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE payments SET recipient_id = $2, amount = $3, currency = $4, status = $5, \
           type = $6, description = $7, metadata = $8, psp_transaction_id = $9, psp_status = $10, \
           failure_reason = $11, scheduled_for = $12, completed_at = $13, updated_at = $14 \
         WHERE id = $1",
    )
    .bind(p.id)
    .bind(p.recipient_id)
    .bind(p.amount.value())
    .bind(&p.currency)
    .bind(p.status.as_str())
    .bind(&p.payment_type)
    .bind(&p.description)
    .bind(&p.metadata)
    .bind(&p.psp_transaction_id)
    .bind(&p.psp_status)
    .bind(&p.failure_reason)
    .bind(p.scheduled_for)
    .bind(p.completed_at)
    .bind(p.updated_at)
    .execute(conn)
    .await
    .ctx("update payment")?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewTx<'a> {
    pub payment_id: Uuid,
    pub status: PaymentStatus,
    pub previous_status: Option<PaymentStatus>,
    pub status_message: &'a str,
    pub psp_transaction_id: Option<&'a str>,
    pub actor_id: Option<Uuid>,
    pub actor_type: ActorType,
    pub metadata: Option<Value>,
    pub at: DateTime<Utc>,
}

impl NewTx<'_> {
    /// The first Transaction row of every payment: `pending`, "Payment created", by whoever
    /// created it.
    pub fn created(
        payment_id: Uuid,
        actor_id: Option<Uuid>,
        actor_type: ActorType,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            payment_id,
            status: PaymentStatus::Pending,
            previous_status: None,
            status_message: "Payment created",
            psp_transaction_id: None,
            actor_id,
            actor_type,
            metadata: None,
            at,
        }
    }
}

/// Appends a Transaction row and returns it as stored.
pub async fn insert_tx(conn: &mut PgConnection, t: &NewTx<'_>) -> Result<TxRow, StoreError> {
    let id = Uuid::new_v4();
    let status = t.status.as_str();
    let previous_status = t.previous_status.map(PaymentStatus::as_str);
    let actor_type = actor_type_str(t.actor_type);
    sqlx::query(
        "INSERT INTO payment_transactions (id, payment_id, status, previous_status, \
           status_message, psp_transaction_id, actor_id, actor_type, metadata, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(t.payment_id)
    .bind(status)
    .bind(previous_status)
    .bind(t.status_message)
    .bind(t.psp_transaction_id)
    .bind(t.actor_id)
    .bind(actor_type)
    .bind(&t.metadata)
    .bind(t.at)
    .execute(conn)
    .await
    .ctx("insert payment transaction")?;
    Ok(TxRow {
        id,
        payment_id: t.payment_id,
        status: status.to_owned(),
        previous_status: previous_status.map(str::to_owned),
        status_message: Some(t.status_message.to_owned()),
        psp_transaction_id: t.psp_transaction_id.map(str::to_owned),
        actor_id: t.actor_id,
        actor_type: actor_type.to_owned(),
        metadata: t.metadata.clone(),
        created_at: t.at,
    })
}

/// The stored spelling of an actor type.
pub fn actor_type_str(kind: ActorType) -> &'static str {
    match kind {
        ActorType::User => "user",
        ActorType::Admin => "admin",
        ActorType::System => "system",
        ActorType::Psp => "psp",
    }
}

pub async fn transactions(conn: &mut PgConnection, id: Uuid) -> Result<Vec<TxRow>, StoreError> {
    sqlx::query_as(
        "SELECT id, payment_id, status, previous_status, status_message, psp_transaction_id, \
           actor_id, actor_type, metadata, created_at \
         FROM payment_transactions WHERE payment_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(conn)
    .await
    .ctx("select payment transactions")
}

/// Filters of `GET /api/payments` after validation (api.md §5.4).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `None` = every payment (ADMIN).
    pub party: Option<Uuid>,
    pub status: Option<&'static str>,
    pub payment_type: Option<&'static str>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive when `end_exclusive`.
    pub to: Option<DateTime<Utc>>,
    pub end_exclusive: bool,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    pub sort: &'static str,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &ListFilter) {
    qb.push(" WHERE true");
    if let Some(party) = f.party {
        qb.push(" AND (p.sender_id = ")
            .push_bind(party)
            .push(" OR p.recipient_id = ")
            .push_bind(party)
            .push(")");
    }
    if let Some(s) = f.status {
        qb.push(" AND p.status = ").push_bind(s);
    }
    if let Some(t) = f.payment_type {
        qb.push(" AND p.type = ").push_bind(t);
    }
    if let Some(from) = f.from {
        qb.push(" AND p.created_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(if f.end_exclusive {
            " AND p.created_at < "
        } else {
            " AND p.created_at <= "
        })
        .push_bind(to);
    }
    if let Some(min) = f.min_amount {
        qb.push(" AND p.amount >= ").push_bind(min);
    }
    if let Some(max) = f.max_amount {
        qb.push(" AND p.amount <= ").push_bind(max);
    }
}

/// One page and the total count.
pub async fn list(
    conn: &mut PgConnection,
    f: &ListFilter,
) -> Result<(Vec<PaymentRow>, i64), StoreError> {
    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM payments p");
    push_filters(&mut count, f);
    let total: i64 = count
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .ctx("count payments")?;
    let mut qb = QueryBuilder::<Postgres>::new(SELECT);
    push_filters(&mut qb, f);
    let dir = if f.descending { "DESC" } else { "ASC" };
    let column = match f.sort {
        "amount" => "p.amount",
        "status" => "p.status",
        _ => "p.created_at",
    };
    qb.push(format!(" ORDER BY {column} {dir}, p.id {dir} LIMIT "))
        .push_bind(f.limit)
        .push(" OFFSET ")
        .push_bind(f.offset);
    let rows = qb
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .ctx("list payments")?;
    Ok((rows, total))
}

/// Per (status, type, currency) counts and sums in a period (reports, statistics).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Aggregate {
    pub status: String,
    #[sqlx(rename = "type")]
    pub payment_type: String,
    pub currency: String,
    pub count: i64,
    pub amount: Decimal,
}

pub async fn aggregate(
    conn: &mut PgConnection,
    party: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to_exclusive: Option<DateTime<Utc>>,
) -> Result<Vec<Aggregate>, StoreError> {
    sqlx::query_as(
        "SELECT status, type, currency::text AS currency, count(*) AS count, sum(amount) AS amount \
         FROM payments \
         WHERE ($1::uuid IS NULL OR sender_id = $1 OR recipient_id = $1) \
           AND ($2::timestamptz IS NULL OR created_at >= $2) \
           AND ($3::timestamptz IS NULL OR created_at < $3) \
         GROUP BY status, type, currency",
    )
    .bind(party)
    .bind(from)
    .bind(to_exclusive)
    .fetch_all(conn)
    .await
    .ctx("aggregate payments")
}

/// Pending payments the user sends or receives, locked (account deletion cancels them).
pub async fn lock_pending_of_user(
    conn: &mut PgConnection,
    user: Uuid,
) -> Result<Vec<PaymentRow>, StoreError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE p.status = 'pending' AND (p.sender_id = $1 OR p.recipient_id = $1) \
         ORDER BY p.created_at, p.id FOR UPDATE OF p"
    )))
    .bind(user)
    .fetch_all(conn)
    .await
    .ctx("lock pending payments of a user")
}

/// The payment other than `except` that holds the PSP reference `psp_transaction_id`, if any.
pub async fn psp_reference_holder(
    conn: &mut PgConnection,
    psp_transaction_id: &str,
    except: Uuid,
) -> Result<Option<Uuid>, StoreError> {
    sqlx::query_scalar("SELECT id FROM payments WHERE psp_transaction_id = $1 AND id <> $2")
        .bind(psp_transaction_id)
        .bind(except)
        .fetch_optional(conn)
        .await
        .ctx("check psp transaction id")
}

/// Sum of completed amounts per currency, ordered by currency; with `last_24h`, of the
/// payments completed in the last 24 hours.
pub async fn completed_volume(
    conn: &mut PgConnection,
    last_24h: bool,
) -> Result<Vec<(String, Decimal)>, StoreError> {
    let sql = if last_24h {
        "SELECT currency::text, sum(amount) FROM payments \
         WHERE completed_at >= now() - interval '24 hours' GROUP BY currency ORDER BY currency"
    } else {
        "SELECT currency::text, sum(amount) FROM payments WHERE status = 'completed' \
         GROUP BY currency ORDER BY currency"
    };
    sqlx::query_as(sql).fetch_all(conn).await.ctx(if last_24h {
        "last 24h volume"
    } else {
        "completed volume"
    })
}

/// Payments created, completed and failed in the last 24 hours.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Last24h {
    pub created: i64,
    pub completed: i64,
    pub failed: i64,
}

pub async fn last_24h(conn: &mut PgConnection) -> Result<Last24h, StoreError> {
    sqlx::query_as(
        "SELECT \
           count(*) FILTER (WHERE created_at >= now() - interval '24 hours') AS created, \
           count(*) FILTER (WHERE completed_at >= now() - interval '24 hours') AS completed, \
           count(*) FILTER (WHERE status = 'failed' AND updated_at >= now() - interval '24 hours') AS failed \
         FROM payments",
    )
    .fetch_one(conn)
    .await
    .ctx("last 24h counts")
}
