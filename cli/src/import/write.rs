//! The import's writes: one multi-row `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING
//! RETURNING id` per batch and table (a batch is one transaction), then which of the other ids
//! the target already holds, so the report tells "imported", "already there" and "refused by
//! the target" apart. Batches arrive non-empty and never in a dry run (`Ctx::write`).

use std::collections::HashSet;

use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{ImportError, Pools, Run, report::Report, rules, write_err};

/// The ids of `ids` that `table` holds; not asked when the whole batch went in.
async fn present(
    pool: &PgPool,
    table: &'static str,
    ids: &[Uuid],
    inserted: &HashSet<Uuid>,
) -> Result<HashSet<Uuid>, ImportError> {
    if inserted.len() == ids.len() {
        return Ok(HashSet::new());
    }
    let sql = format!("SELECT id FROM {table} WHERE id = ANY($1)");
    Ok(sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(pool)
        .await
        .map_err(write_err(table))?
        .into_iter()
        .collect())
}

/// SQLSTATE 23503: a row of the batch points at a row the target does not hold.
fn is_fk_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(sqlx::error::DatabaseError::code)
        .is_some_and(|c| c == "23503")
}

fn json_text(v: Option<&Value>) -> Option<String> {
    v.map(Value::to_string)
}

/// Users into auth, then the two read models (payments' and admin's directories) for every
/// user auth now holds from this batch. Returns the ids the target refused (an email another
/// payplane account already uses).
pub(super) async fn users(
    pools: &Pools,
    run: &mut Run<'_>,
    batch: &[rules::User],
) -> Result<Vec<Uuid>, ImportError> {
    let ids: Vec<Uuid> = batch.iter().map(|u| u.id).collect();
    let emails: Vec<&str> = batch.iter().map(|u| u.email.as_str()).collect();
    let hashes: Vec<&str> = batch.iter().map(|u| u.password_hash.as_str()).collect();
    let names: Vec<&str> = batch.iter().map(|u| u.name.as_str()).collect();
    let roles: Vec<&str> = batch.iter().map(|u| u.role.as_str()).collect();
    let verified: Vec<bool> = batch.iter().map(|u| u.email_verified).collect();
    let created: Vec<_> = batch.iter().map(|u| u.created_at).collect();
    let updated: Vec<_> = batch.iter().map(|u| u.updated_at).collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO users (id, email, password_hash, name, role, email_verified, \
           password_changed_at, created_at, updated_at) \
         SELECT id, email, hash, name, role, verified, updated_at, created_at, updated_at \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], \
                     $7::timestamptz[], $8::timestamptz[]) \
              AS t(id, email, hash, name, role, verified, created_at, updated_at) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&hashes)
    .bind(&names)
    .bind(&roles)
    .bind(&verified)
    .bind(&created)
    .bind(&updated)
    .fetch_all(&pools.auth)
    .await
    .map_err(write_err("users"))?
    .into_iter()
    .collect();
    let there = present(&pools.auth, "users", &ids, &inserted).await?;
    let refused = run.book(&ids, &inserted, &there, "email_taken");
    // The directories follow auth: payments resolves parties through its own, admin lists
    // users from its own (data.md §3.1, §5.1). Rebuilt here instead of replaying events.
    sqlx::query(
        "INSERT INTO users (id, email, name, role, is_active, source_updated_at, created_at, updated_at) \
         SELECT id, email, name, role, true, updated_at, created_at, updated_at \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) \
              AS t(id, email, name, role, created_at, updated_at) \
         WHERE id <> ALL($7) ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&names)
    .bind(&roles)
    .bind(&created)
    .bind(&updated)
    .bind(&refused)
    .execute(&pools.payments)
    .await
    .map_err(write_err("payments users directory"))?;
    sqlx::query(
        "INSERT INTO users (id, email, name, role, is_active, email_verified, created_at, updated_at) \
         SELECT id, email, name, role, true, verified, created_at, updated_at \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::timestamptz[], \
                     $7::timestamptz[]) AS t(id, email, name, role, verified, created_at, updated_at) \
         WHERE id <> ALL($8) ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&names)
    .bind(&roles)
    .bind(&verified)
    .bind(&created)
    .bind(&updated)
    .bind(&refused)
    .execute(&pools.admin)
    .await
    .map_err(write_err("admin users directory"))?;
    Ok(refused)
}

pub(super) async fn devices(
    pools: &Pools,
    run: &mut Run<'_>,
    batch: &[rules::Device],
) -> Result<(), ImportError> {
    let ids: Vec<Uuid> = batch.iter().map(|d| d.id).collect();
    let users: Vec<Uuid> = batch.iter().map(|d| d.user_id).collect();
    let device_ids: Vec<&str> = batch.iter().map(|d| d.device_id.as_str()).collect();
    let names: Vec<Option<&str>> = batch.iter().map(|d| d.device_name.as_deref()).collect();
    let types: Vec<Option<&str>> = batch.iter().map(|d| d.device_type.as_deref()).collect();
    let agents: Vec<Option<&str>> = batch.iter().map(|d| d.user_agent.as_deref()).collect();
    let created: Vec<_> = batch.iter().map(|d| d.created_at).collect();
    let active: Vec<_> = batch.iter().map(|d| d.last_active_at).collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO devices (id, user_id, device_id, device_name, device_type, user_agent, \
           created_at, last_active_at) \
         SELECT t.* FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
                     $6::text[], $7::timestamptz[], $8::timestamptz[]) \
              AS t(id, user_id, device_id, device_name, device_type, user_agent, created_at, last_active_at) \
         WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(&users)
    .bind(&device_ids)
    .bind(&names)
    .bind(&types)
    .bind(&agents)
    .bind(&created)
    .bind(&active)
    .fetch_all(&pools.auth)
    .await
    .map_err(write_err("devices"))?
    .into_iter()
    .collect();
    let there = present(&pools.auth, "devices", &ids, &inserted).await?;
    run.book(&ids, &inserted, &there, "user_missing_or_device_taken");
    Ok(())
}

/// Returns the ids the target refused (a party it does not hold, a PSP reference another
/// payment has), so their transactions are reported too.
pub(super) async fn payments(
    pools: &Pools,
    run: &mut Run<'_>,
    batch: &[rules::Payment],
) -> Result<Vec<Uuid>, ImportError> {
    let ids: Vec<Uuid> = batch.iter().map(|p| p.id).collect();
    let senders: Vec<Uuid> = batch.iter().map(|p| p.sender_id).collect();
    let recipients: Vec<Uuid> = batch.iter().map(|p| p.recipient_id).collect();
    let amounts: Vec<&str> = batch.iter().map(|p| p.amount.as_str()).collect();
    let currencies: Vec<&str> = batch.iter().map(|p| p.currency.as_str()).collect();
    let statuses: Vec<&str> = batch.iter().map(|p| p.status.as_str()).collect();
    let kinds: Vec<&str> = batch.iter().map(|p| p.kind.as_str()).collect();
    let descriptions: Vec<&str> = batch.iter().map(|p| p.description.as_str()).collect();
    let metadata: Vec<Option<String>> = batch
        .iter()
        .map(|p| json_text(p.metadata.as_ref()))
        .collect();
    let psp_ids: Vec<Option<&str>> = batch
        .iter()
        .map(|p| p.psp_transaction_id.as_deref())
        .collect();
    let psp_statuses: Vec<Option<&str>> = batch.iter().map(|p| p.psp_status.as_deref()).collect();
    let reasons: Vec<Option<&str>> = batch.iter().map(|p| p.failure_reason.as_deref()).collect();
    let completed: Vec<_> = batch.iter().map(|p| p.completed_at).collect();
    let created: Vec<_> = batch.iter().map(|p| p.created_at).collect();
    let updated: Vec<_> = batch.iter().map(|p| p.updated_at).collect();
    let insert = |guard: &str| {
        sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments (id, sender_id, recipient_id, amount, currency, status, type, \
           description, metadata, psp_transaction_id, psp_status, failure_reason, completed_at, \
           created_at, updated_at) \
         SELECT t.id, t.sender_id, t.recipient_id, t.amount::numeric, t.currency, t.status, t.kind, \
           t.description, t.metadata::jsonb, t.psp_id, t.psp_status, t.reason, t.completed_at, \
           t.created_at, t.updated_at \
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                     $13::timestamptz[], $14::timestamptz[], $15::timestamptz[]) \
              AS t(id, sender_id, recipient_id, amount, currency, status, kind, description, \
                   metadata, psp_id, psp_status, reason, completed_at, created_at, updated_at) \
         {guard} ON CONFLICT DO NOTHING RETURNING id"
        )))
    .bind(&ids)
    .bind(&senders)
    .bind(&recipients)
    .bind(&amounts)
    .bind(&currencies)
    .bind(&statuses)
    .bind(&kinds)
    .bind(&descriptions)
    .bind(&metadata)
    .bind(&psp_ids)
    .bind(&psp_statuses)
    .bind(&reasons)
    .bind(&completed)
    .bind(&created)
    .bind(&updated)
    .fetch_all(&pools.payments)
    };
    // Parties are known to be there (skipped users never reach a batch), so the FK checks
    // alone guard the insert; only a source with orphans pays for the filtered retry.
    let inserted: HashSet<Uuid> = match insert("").await {
        Err(e) if is_fk_violation(&e) => {
            insert(
                "WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = t.sender_id) \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.id = t.recipient_id)",
            )
            .await
        }
        other => other,
    }
    .map_err(write_err("payments"))?
    .into_iter()
    .collect();
    let there = present(&pools.payments, "payments", &ids, &inserted).await?;
    Ok(run.book(
        &ids,
        &inserted,
        &there,
        "party_missing_or_psp_reference_taken",
    ))
}

pub(super) async fn transactions(
    pools: &Pools,
    run: &mut Run<'_>,
    batch: &[rules::Transaction],
) -> Result<(), ImportError> {
    let ids: Vec<Uuid> = batch.iter().map(|t| t.id).collect();
    let payments: Vec<Uuid> = batch.iter().map(|t| t.payment_id).collect();
    let statuses: Vec<&str> = batch.iter().map(|t| t.status.as_str()).collect();
    let previous: Vec<Option<&str>> = batch.iter().map(|t| t.previous_status.as_deref()).collect();
    let messages: Vec<Option<&str>> = batch.iter().map(|t| t.status_message.as_deref()).collect();
    let psp_ids: Vec<Option<&str>> = batch
        .iter()
        .map(|t| t.psp_transaction_id.as_deref())
        .collect();
    let metadata: Vec<Option<String>> = batch
        .iter()
        .map(|t| json_text(t.metadata.as_ref()))
        .collect();
    let created: Vec<_> = batch.iter().map(|t| t.created_at).collect();
    // Who made a source status change is not recorded there: `system` says "not a user of
    // payplane", the honest actor for history that predates it.
    let insert = |guard: &str| {
        sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payment_transactions (id, payment_id, status, previous_status, status_message, \
           psp_transaction_id, actor_type, metadata, created_at) \
         SELECT t.id, t.payment_id, t.status, t.previous, t.message, t.psp_id, 'system', \
           t.metadata::jsonb, t.created_at \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::timestamptz[]) \
              AS t(id, payment_id, status, previous, message, psp_id, metadata, created_at) \
         {guard} ON CONFLICT DO NOTHING RETURNING id"
        )))
    .bind(&ids)
    .bind(&payments)
    .bind(&statuses)
    .bind(&previous)
    .bind(&messages)
    .bind(&psp_ids)
    .bind(&metadata)
    .bind(&created)
    .fetch_all(&pools.payments)
    };
    let inserted: HashSet<Uuid> = match insert("").await {
        Err(e) if is_fk_violation(&e) => {
            insert("WHERE EXISTS (SELECT 1 FROM payments p WHERE p.id = t.payment_id)").await
        }
        other => other,
    }
    .map_err(write_err("payment_transactions"))?
    .into_iter()
    .collect();
    let there = present(&pools.payments, "payment_transactions", &ids, &inserted).await?;
    run.book(&ids, &inserted, &there, "payment_missing");
    Ok(())
}

pub(super) async fn audit(
    pools: &Pools,
    run: &mut Run<'_>,
    batch: &[rules::Audit],
) -> Result<(), ImportError> {
    let ids: Vec<Uuid> = batch.iter().map(|a| a.id).collect();
    let users: Vec<Option<Uuid>> = batch.iter().map(|a| a.user_id).collect();
    let actions: Vec<&str> = batch.iter().map(|a| a.action.as_str()).collect();
    let types: Vec<Option<&str>> = batch.iter().map(|a| a.resource_type.as_deref()).collect();
    let resources: Vec<Option<&str>> = batch.iter().map(|a| a.resource_id.as_deref()).collect();
    let details: Vec<Option<String>> = batch
        .iter()
        .map(|a| json_text(a.details.as_ref()))
        .collect();
    let ips: Vec<Option<String>> = batch
        .iter()
        .map(|a| a.ip_address.map(|ip| ip.addr().to_string()))
        .collect();
    let agents: Vec<Option<&str>> = batch.iter().map(|a| a.user_agent.as_deref()).collect();
    let created: Vec<_> = batch.iter().map(|a| a.created_at).collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, details, \
           ip_address, user_agent, created_at) \
         SELECT t.id, t.user_id, t.action, t.rtype, t.rid, t.details::jsonb, t.ip::inet, t.ua, \
           t.created_at \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::timestamptz[]) \
              AS t(id, user_id, action, rtype, rid, details, ip, ua, created_at) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(&users)
    .bind(&actions)
    .bind(&types)
    .bind(&resources)
    .bind(&details)
    .bind(&ips)
    .bind(&agents)
    .bind(&created)
    .fetch_all(&pools.admin)
    .await
    .map_err(write_err("audit_logs"))?
    .into_iter()
    .collect();
    let there = present(&pools.admin, "audit_logs", &ids, &inserted).await?;
    run.book(&ids, &inserted, &there, "refused_by_target");
    Ok(())
}

/// Config keys payplane already has keep payplane's value (reported as already there).
pub(super) async fn config(
    pools: &Pools,
    run: &mut Run<'_>,
    batch: &[rules::Config],
) -> Result<(), ImportError> {
    for entry in batch {
        let inserted = sqlx::query(
            "INSERT INTO system_config (key, value, description, updated_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&entry.key)
        .bind(&entry.value)
        .bind(entry.description.as_deref())
        .bind(entry.updated_by)
        .bind(entry.updated_at)
        .execute(&pools.admin)
        .await
        .map_err(write_err("system_config"))?
        .rows_affected();
        if inserted == 1 {
            run.report.imported += 1;
        } else {
            run.report.already_present += 1;
        }
        run.progress.advance(&run.report.table, 1);
    }
    Ok(())
}

pub(super) async fn profiles(
    pools: &Pools,
    run: &mut Run<'_>,
    batch: &[rules::Profile],
) -> Result<(), ImportError> {
    let ids: Vec<Uuid> = batch.iter().map(|p| p.id).collect();
    let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO user_profiles (id, user_id, avatar_url, phone, address, bio, preferences, \
         created_at, updated_at) ",
    );
    insert.push_values(batch, |mut row, p| {
        row.push_bind(p.id)
            .push_bind(p.user_id)
            .push_bind(p.avatar_url.as_deref())
            .push_bind(p.phone.as_deref())
            .push_bind(p.address.as_deref())
            .push_bind(p.bio.as_deref())
            .push_bind(&p.preferences)
            .push_bind(p.created_at)
            .push_bind(p.updated_at);
    });
    insert.push(" ON CONFLICT DO NOTHING RETURNING id");
    let inserted: HashSet<Uuid> = insert
        .build_query_scalar::<Uuid>()
        .fetch_all(&pools.profile)
        .await
        .map_err(write_err("user_profiles"))?
        .into_iter()
        .collect();
    let there = present(&pools.profile, "user_profiles", &ids, &inserted).await?;
    run.book(&ids, &inserted, &there, "profile_of_user_exists");
    Ok(())
}

/// The run's audit entry (import.md: one "data imported" entry with the counts, no replayed
/// events) and its bookkeeping row.
pub(super) async fn finish(
    auth: &PgPool,
    admin: &PgPool,
    source_key: &str,
    report: &Report,
) -> Result<(), ImportError> {
    let counts: serde_json::Map<String, Value> = report
        .tables
        .iter()
        .map(|t| {
            (
                t.table.clone(),
                json!({ "read": t.read, "imported": t.imported,
                        "alreadyPresent": t.already_present, "skipped": t.skipped }),
            )
        })
        .collect();
    if report.imported() > 0 {
        sqlx::query(
            "INSERT INTO audit_logs (id, action, resource_type, details) \
             VALUES ($1, 'DATA_IMPORTED', NULL, $2)",
        )
        .bind(Uuid::new_v4())
        .bind(json!({ "source": source_key, "tables": counts }))
        .execute(admin)
        .await
        .map_err(write_err("audit_logs"))?;
    }
    let summary = serde_json::to_value(report).unwrap_or(Value::Null);
    sqlx::query(
        "UPDATE import_runs SET finished_at = date_trunc('milliseconds', now()), report = $2 \
         WHERE source = $1",
    )
    .bind(source_key)
    .bind(summary)
    .execute(auth)
    .await
    .map_err(write_err("import_runs"))?;
    Ok(())
}
