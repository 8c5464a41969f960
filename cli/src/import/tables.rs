//! The seven source tables of import.md §1: for each, the query that streams it (JSON and
//! amounts as text, timestamps as UTC), how a row decodes, which rule checks it and which
//! writer stores it. The loop that drives them is `Ctx::import`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

use super::{ImportError, Pools, Run, rules, write};
use rules::Reason;

/// One source table.
pub(super) trait Table {
    const NAME: &'static str;
    const SQL: &'static str;
    type Raw;
    type Row;
    fn source(pools: &Pools) -> &PgPool;
    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error>;
    /// The id the report names a skipped row by.
    fn id(raw: &Self::Raw) -> String;
    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason>;
    /// Bytes a row adds to its batch, for tables whose rows can be megabytes.
    fn weight(_row: &Self::Row) -> usize {
        0
    }
    /// Writes a batch; returns the ids the target refused.
    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError>;
}

fn utc(row: &PgRow, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    row.try_get::<DateTime<Utc>, _>(col)
}

pub(super) struct Users {
    /// Lower-cased emails more than one source account uses.
    pub case_duplicates: HashSet<String>,
}

impl Table for Users {
    const NAME: &'static str = "users";
    const SQL: &'static str = "SELECT id::text AS id, email, password_hash, name, role::text AS role, \
         email_verified, created_at AT TIME ZONE 'UTC' AS created_at, \
         updated_at AT TIME ZONE 'UTC' AS updated_at FROM users";
    type Raw = rules::SourceUser;
    type Row = rules::User;

    fn source(pools: &Pools) -> &PgPool {
        &pools.src_auth
    }

    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error> {
        Ok(rules::SourceUser {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            name: row.try_get("name")?,
            role: row.try_get("role")?,
            email_verified: row.try_get("email_verified")?,
            created_at: utc(row, "created_at")?,
            updated_at: utc(row, "updated_at")?,
        })
    }

    fn id(raw: &Self::Raw) -> String {
        raw.id.clone()
    }

    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason> {
        rules::user(raw, &self.case_duplicates)
    }

    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        write::users(pools, run, batch).await
    }
}

pub(super) struct Devices<'a> {
    pub skipped: &'a HashSet<Uuid>,
}

impl Table for Devices<'_> {
    const NAME: &'static str = "devices";
    const SQL: &'static str = "SELECT id::text AS id, user_id::text AS user_id, device_id, \
         device_name, device_type, user_agent, created_at AT TIME ZONE 'UTC' AS created_at, \
         last_active_at AT TIME ZONE 'UTC' AS last_active_at FROM devices";
    type Raw = rules::SourceDevice;
    type Row = rules::Device;

    fn source(pools: &Pools) -> &PgPool {
        &pools.src_auth
    }

    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error> {
        Ok(rules::SourceDevice {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            device_id: row.try_get("device_id")?,
            device_name: row.try_get("device_name")?,
            device_type: row.try_get("device_type")?,
            user_agent: row.try_get("user_agent")?,
            created_at: utc(row, "created_at")?,
            last_active_at: utc(row, "last_active_at")?,
        })
    }

    fn id(raw: &Self::Raw) -> String {
        raw.id.clone()
    }

    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason> {
        rules::device(raw, self.skipped)
    }

    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        write::devices(pools, run, batch).await.map(|()| Vec::new())
    }
}

pub(super) struct Payments<'a> {
    pub skipped: &'a HashSet<Uuid>,
}

impl Table for Payments<'_> {
    const NAME: &'static str = "payments";
    const SQL: &'static str = "SELECT id::text AS id, sender_id::text AS sender_id, \
         recipient_id::text AS recipient_id, amount::text AS amount, currency::text AS currency, \
         status::text AS status, type::text AS kind, description, metadata::text AS metadata, \
         psp_transaction_id, psp_status, failure_reason, \
         completed_at AT TIME ZONE 'UTC' AS completed_at, \
         created_at AT TIME ZONE 'UTC' AS created_at, updated_at AT TIME ZONE 'UTC' AS updated_at \
         FROM payments";
    type Raw = rules::SourcePayment;
    type Row = rules::Payment;

    fn source(pools: &Pools) -> &PgPool {
        &pools.src_payments
    }

    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error> {
        Ok(rules::SourcePayment {
            id: row.try_get("id")?,
            sender_id: row.try_get("sender_id")?,
            recipient_id: row.try_get("recipient_id")?,
            amount: row.try_get("amount")?,
            currency: row.try_get("currency")?,
            status: row.try_get("status")?,
            kind: row.try_get("kind")?,
            description: row.try_get("description")?,
            metadata: row.try_get("metadata")?,
            psp_transaction_id: row.try_get("psp_transaction_id")?,
            psp_status: row.try_get("psp_status")?,
            failure_reason: row.try_get("failure_reason")?,
            completed_at: row.try_get("completed_at")?,
            created_at: utc(row, "created_at")?,
            updated_at: utc(row, "updated_at")?,
        })
    }

    fn id(raw: &Self::Raw) -> String {
        raw.id.clone()
    }

    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason> {
        rules::payment(raw, self.skipped)
    }

    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        write::payments(pools, run, batch).await
    }
}

/// Streamed in time order per payment, so each row knows the status before it.
pub(super) struct Transactions<'a> {
    pub skipped: &'a HashSet<Uuid>,
    /// The payment id and status of the row read before.
    pub previous: Option<(String, String)>,
}

impl Table for Transactions<'_> {
    const NAME: &'static str = "payment_transactions";
    const SQL: &'static str = "SELECT id::text AS id, payment_id::text AS payment_id, \
         status::text AS status, status_message, psp_transaction_id, metadata::text AS metadata, \
         created_at AT TIME ZONE 'UTC' AS created_at \
         FROM payment_transactions ORDER BY payment_id, created_at, id";
    type Raw = rules::SourceTransaction;
    type Row = rules::Transaction;

    fn source(pools: &Pools) -> &PgPool {
        &pools.src_payments
    }

    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error> {
        Ok(rules::SourceTransaction {
            id: row.try_get("id")?,
            payment_id: row.try_get("payment_id")?,
            status: row.try_get("status")?,
            status_message: row.try_get("status_message")?,
            psp_transaction_id: row.try_get("psp_transaction_id")?,
            metadata: row.try_get("metadata")?,
            created_at: utc(row, "created_at")?,
        })
    }

    fn id(raw: &Self::Raw) -> String {
        raw.id.clone()
    }

    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason> {
        let before = self
            .previous
            .take()
            .filter(|(payment, _)| *payment == raw.payment_id)
            .map(|(_, status)| status);
        self.previous = Some((raw.payment_id.clone(), raw.status.clone()));
        rules::transaction(raw, before.as_deref(), self.skipped)
    }

    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        write::transactions(pools, run, batch)
            .await
            .map(|()| Vec::new())
    }
}

pub(super) struct AuditLogs;

impl Table for AuditLogs {
    const NAME: &'static str = "audit_logs";
    const SQL: &'static str = "SELECT id::text AS id, user_id::text AS user_id, \
         action::text AS action, resource_type::text AS resource_type, \
         resource_id::text AS resource_id, details::text AS details, \
         ip_address::text AS ip_address, user_agent, created_at AT TIME ZONE 'UTC' AS created_at \
         FROM audit_logs";
    type Raw = rules::SourceAudit;
    type Row = rules::Audit;

    fn source(pools: &Pools) -> &PgPool {
        &pools.src_admin
    }

    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error> {
        Ok(rules::SourceAudit {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            action: row.try_get("action")?,
            resource_type: row.try_get("resource_type")?,
            resource_id: row.try_get("resource_id")?,
            details: row.try_get("details")?,
            ip_address: row.try_get("ip_address")?,
            user_agent: row.try_get("user_agent")?,
            created_at: utc(row, "created_at")?,
        })
    }

    fn id(raw: &Self::Raw) -> String {
        raw.id.clone()
    }

    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason> {
        rules::audit(raw)
    }

    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        write::audit(pools, run, batch).await.map(|()| Vec::new())
    }
}

pub(super) struct SystemConfig;

impl Table for SystemConfig {
    const NAME: &'static str = "system_config";
    const SQL: &'static str = "SELECT key, value::text AS value, description, \
         updated_by::text AS updated_by, updated_at AT TIME ZONE 'UTC' AS updated_at \
         FROM system_config";
    type Raw = rules::SourceConfig;
    type Row = rules::Config;

    fn source(pools: &Pools) -> &PgPool {
        &pools.src_admin
    }

    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error> {
        Ok(rules::SourceConfig {
            key: row.try_get("key")?,
            value: row.try_get("value")?,
            description: row.try_get("description")?,
            updated_at: utc(row, "updated_at")?,
            updated_by: row.try_get("updated_by")?,
        })
    }

    fn id(raw: &Self::Raw) -> String {
        raw.key.clone()
    }

    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason> {
        rules::config(raw)
    }

    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        write::config(pools, run, batch).await.map(|()| Vec::new())
    }
}

pub(super) struct Profiles<'a> {
    pub skipped: &'a HashSet<Uuid>,
}

impl Table for Profiles<'_> {
    const NAME: &'static str = "user_profiles";
    const SQL: &'static str = "SELECT id::text AS id, user_id::text AS user_id, avatar_url, \
         phone, address, bio, preferences::text AS preferences, \
         created_at AT TIME ZONE 'UTC' AS created_at, updated_at AT TIME ZONE 'UTC' AS updated_at \
         FROM user_profiles";
    type Raw = rules::SourceProfile;
    type Row = rules::Profile;

    fn source(pools: &Pools) -> &PgPool {
        &pools.src_profile
    }

    fn decode(row: &PgRow) -> Result<Self::Raw, sqlx::Error> {
        Ok(rules::SourceProfile {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            avatar_url: row.try_get("avatar_url")?,
            phone: row.try_get("phone")?,
            address: row.try_get("address")?,
            bio: row.try_get("bio")?,
            preferences: row.try_get("preferences")?,
            created_at: utc(row, "created_at")?,
            updated_at: utc(row, "updated_at")?,
        })
    }

    fn id(raw: &Self::Raw) -> String {
        raw.id.clone()
    }

    fn check(&mut self, raw: Self::Raw) -> Result<Self::Row, Reason> {
        rules::profile(raw, self.skipped)
    }

    /// Avatars are data URLs of up to 2.8 MB: a batch is also bounded in bytes.
    fn weight(row: &Self::Row) -> usize {
        row.avatar_url.as_ref().map_or(0, String::len) + 512
    }

    async fn write(
        pools: &Pools,
        run: &mut Run<'_>,
        batch: &[Self::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        write::profiles(pools, run, batch)
            .await
            .map(|()| Vec::new())
    }
}
