//! `payplane import` (import.md): brings the databases of the system payplane replaces over —
//! users with their bcrypt hashes, devices, payments with their histories, audit trail, config
//! and profiles — keeping ids and timestamps. Rows are streamed from the source (never a whole
//! table in memory), checked by [`rules`], and written in batches with `ON CONFLICT DO
//! NOTHING`, each batch its own transaction: a second run imports nothing, and a run
//! interrupted anywhere resumes where the committed batches end.

pub mod progress;
pub mod report;
pub mod rules;
mod write;

use std::{collections::HashSet, time::Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

use self::{
    progress::Progress,
    report::{Report, TableReport},
};

/// The earlier system's schema (import.md §1) as one combined database, for tests and the bench.
pub const SOURCE_SCHEMA: &str = include_str!("source.sql");

/// Rows per written batch (profiles also flush at [`BATCH_BYTES`]: avatars are megabytes).
const BATCH_ROWS: usize = 5_000;
const BATCH_BYTES: usize = 8 << 20;

/// The four source databases (the same URL four times for the combined database).
#[derive(Debug, Clone)]
pub struct Sources {
    pub auth: String,
    pub payments: String,
    pub admin: String,
    pub profile: String,
}

impl Sources {
    pub fn combined(url: &str) -> Self {
        Sources {
            auth: url.to_owned(),
            payments: url.to_owned(),
            admin: url.to_owned(),
            profile: url.to_owned(),
        }
    }

    /// The identity recorded in `import_runs`: the addresses without credentials.
    fn key(&self) -> String {
        [&self.auth, &self.payments, &self.admin, &self.profile]
            .iter()
            .map(|u| without_credentials(u))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, rest))) => format!("{scheme}://{rest}"),
        _ => url.to_owned(),
    }
}

/// payplane's databases (the services' `*_DATABASE_URL`).
#[derive(Debug, Clone)]
pub struct Targets {
    pub auth: String,
    pub payments: String,
    pub admin: String,
    pub profile: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Read and check everything, write nothing.
    pub dry_run: bool,
    /// Import into databases that already hold data from elsewhere.
    pub merge: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("connecting to the {which} database")]
    Connect {
        which: &'static str,
        #[source]
        source: payplane_db::DbError,
    },
    #[error("connecting to the {which} database")]
    ConnectTarget {
        which: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the {which} database")]
    Migrate {
        which: &'static str,
        #[source]
        source: payplane_db::DbError,
    },
    #[error("reading source table {table}")]
    Read {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("writing {table}")]
    Write {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the payplane databases already hold {users} users and no import from this source; \
         rerun with --merge to import alongside them"
    )]
    ForeignData { users: i64 },
}

fn read_err(table: &'static str) -> impl Fn(sqlx::Error) -> ImportError {
    move |source| ImportError::Read { table, source }
}

fn write_err(table: &'static str) -> impl Fn(sqlx::Error) -> ImportError {
    move |source| ImportError::Write { table, source }
}

struct Pools {
    src_auth: PgPool,
    src_payments: PgPool,
    src_admin: PgPool,
    src_profile: PgPool,
    auth: PgPool,
    payments: PgPool,
    admin: PgPool,
    profile: PgPool,
}

async fn connect(which: &'static str, url: &str) -> Result<PgPool, ImportError> {
    payplane_db::connect(url, 4)
        .await
        .map_err(|source| ImportError::Connect { which, source })
}

/// A target pool whose commits do not wait for the WAL flush: a batch lost to a crash right
/// after its commit is simply imported again by the next run (every write is idempotent by
/// id), so the import need not pay a disk flush per batch.
async fn connect_target(which: &'static str, url: &str) -> Result<PgPool, ImportError> {
    let err = |source| ImportError::ConnectTarget { which, source };
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(err)?
        .options([("synchronous_commit", "off")]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(err)
}

impl Pools {
    async fn open(sources: &Sources, targets: &Targets) -> Result<Pools, ImportError> {
        Ok(Pools {
            src_auth: connect("source auth", &sources.auth).await?,
            src_payments: connect("source payments", &sources.payments).await?,
            src_admin: connect("source admin", &sources.admin).await?,
            src_profile: connect("source profile", &sources.profile).await?,
            auth: connect_target("auth", &targets.auth).await?,
            payments: connect_target("payments", &targets.payments).await?,
            admin: connect_target("admin", &targets.admin).await?,
            profile: connect_target("profile", &targets.profile).await?,
        })
    }

    /// The targets' schemas are the services' own migrations (the import's bookkeeping table
    /// among them), applied here so an import may run before the services' first start.
    async fn migrate(&self) -> Result<(), ImportError> {
        let all = [
            ("auth", &self.auth, &payplane_auth::MIGRATOR),
            ("payments", &self.payments, &payplane_payments::MIGRATOR),
            ("admin", &self.admin, &payplane_admin::MIGRATOR),
            ("profile", &self.profile, &payplane_profile::MIGRATOR),
        ];
        for (which, pool, migrator) in all {
            payplane_db::migrate(pool, migrator)
                .await
                .map_err(|source| ImportError::Migrate { which, source })?;
        }
        Ok(())
    }
}

/// One table's run: its report and what it reports to the progress display.
struct Run<'a> {
    report: TableReport,
    progress: &'a dyn Progress,
    /// A dry run: count, write nothing.
    dry: bool,
}

impl<'a> Run<'a> {
    async fn start(
        name: &'static str,
        source: &PgPool,
        progress: &'a dyn Progress,
        dry_run: bool,
    ) -> Result<Run<'a>, ImportError> {
        let total: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {name}")))
                .fetch_one(source)
                .await
                .map_err(read_err(name))?;
        progress.start(name, u64::try_from(total).unwrap_or(0));
        Ok(Run {
            report: TableReport::new(name),
            progress,
            dry: dry_run,
        })
    }

    fn read(&mut self) {
        self.report.read += 1;
    }

    /// Books a written batch: `inserted` new rows, `present` already there, the rest skipped
    /// with `reason`. Returns the ids skipped.
    fn book(
        &mut self,
        ids: &[Uuid],
        inserted: &HashSet<Uuid>,
        present: &HashSet<Uuid>,
        reason: &str,
    ) -> Vec<Uuid> {
        let mut skipped = Vec::new();
        for id in ids {
            if inserted.contains(id) {
                self.report.imported += 1;
            } else if present.contains(id) {
                self.report.already_present += 1;
            } else {
                self.report.skip(&id.to_string(), reason);
                skipped.push(*id);
            }
        }
        self.progress.advance(&self.report.table, ids.len() as u64);
        skipped
    }

    /// A dry run books every valid row as one it would import.
    fn book_dry(&mut self, n: usize) {
        self.report.imported += n as u64;
        self.progress.advance(&self.report.table, n as u64);
    }

    fn skip(&mut self, id: &str, reason: &str) {
        self.report.skip(id, reason);
        self.progress.advance(&self.report.table, 1);
    }

    fn finish(self, report: &mut Report) {
        self.progress.finish(&self.report);
        report.rows_read += self.report.read;
        report.tables.push(self.report);
    }
}

fn utc(row: &PgRow, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    row.try_get::<DateTime<Utc>, _>(col)
}

/// Runs the import; the error is fatal (a connection, the source's shape, a write), skipped
/// rows are in the report.
pub async fn run(
    sources: &Sources,
    targets: &Targets,
    options: Options,
    progress: &dyn Progress,
) -> Result<Report, ImportError> {
    let started = Instant::now();
    let pools = Pools::open(sources, targets).await?;
    if !options.dry_run {
        pools.migrate().await?;
    }
    let source_key = sources.key();
    check_foreign(&pools, &source_key, options).await?;
    if !options.dry_run {
        sqlx::query("INSERT INTO import_runs (source) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&source_key)
            .execute(&pools.auth)
            .await
            .map_err(write_err("import_runs"))?;
    }
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let skipped_users = users(&pools, progress, options, &mut report).await?;
    devices(&pools, progress, options, &skipped_users, &mut report).await?;
    let skipped_payments = payments(&pools, progress, options, &skipped_users, &mut report).await?;
    transactions(&pools, progress, options, &skipped_payments, &mut report).await?;
    drop(skipped_payments);
    audit_logs(&pools, progress, options, &mut report).await?;
    system_config(&pools, progress, options, &mut report).await?;
    profiles(&pools, progress, options, &skipped_users, &mut report).await?;
    report.seconds = started.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate for people to read")]
    let rows = report.rows_read as f64;
    report.rows_per_second = rows / report.seconds.max(1e-9);
    if !options.dry_run {
        write::finish(&pools.auth, &pools.admin, &source_key, &report).await?;
    }
    Ok(report)
}

async fn check_foreign(
    pools: &Pools,
    source_key: &str,
    options: Options,
) -> Result<(), ImportError> {
    if options.merge {
        return Ok(());
    }
    // A dry run into databases the services never started on: no tables, nothing foreign.
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('users') IS NOT NULL")
        .fetch_one(&pools.auth)
        .await
        .map_err(read_err("target users"))?;
    if !migrated {
        return Ok(());
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pools.auth)
        .await
        .map_err(read_err("target users"))?;
    if users == 0 {
        return Ok(());
    }
    // A dry run into databases migrated before the import existed has no import_runs yet.
    let ours: Option<bool> =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM import_runs WHERE source = $1)")
            .bind(source_key)
            .fetch_one(&pools.auth)
            .await
            .ok();
    if ours == Some(true) {
        Ok(())
    } else {
        Err(ImportError::ForeignData { users })
    }
}

async fn users(
    pools: &Pools,
    progress: &dyn Progress,
    options: Options,
    report: &mut Report,
) -> Result<HashSet<Uuid>, ImportError> {
    const T: &str = "users";
    let mut run = Run::start(T, &pools.src_auth, progress, options.dry_run).await?;
    let case_duplicates: HashSet<String> = sqlx::query_scalar(
        "SELECT lower(trim(email)) FROM users GROUP BY lower(trim(email)) HAVING count(*) > 1",
    )
    .fetch_all(&pools.src_auth)
    .await
    .map_err(read_err(T))?
    .into_iter()
    .collect();
    let mut skipped: HashSet<Uuid> = HashSet::new();
    let mut batch: Vec<rules::User> = Vec::with_capacity(BATCH_ROWS);
    let mut rows = sqlx::query(
        "SELECT id::text AS id, email, password_hash, name, role::text AS role, email_verified, \
         created_at AT TIME ZONE 'UTC' AS created_at, updated_at AT TIME ZONE 'UTC' AS updated_at \
         FROM users",
    )
    .fetch(&pools.src_auth);
    while let Some(row) = rows.try_next().await.map_err(read_err(T))? {
        run.read();
        let raw = (|| -> Result<rules::SourceUser, sqlx::Error> {
            Ok(rules::SourceUser {
                id: row.try_get("id")?,
                email: row.try_get("email")?,
                password_hash: row.try_get("password_hash")?,
                name: row.try_get("name")?,
                role: row.try_get("role")?,
                email_verified: row.try_get("email_verified")?,
                created_at: utc(&row, "created_at")?,
                updated_at: utc(&row, "updated_at")?,
            })
        })()
        .map_err(read_err(T))?;
        let id = raw.id.clone();
        match rules::user(raw, &case_duplicates) {
            Ok(u) => batch.push(u),
            Err(reason) => {
                if let Ok(uuid) = Uuid::parse_str(id.trim()) {
                    skipped.insert(uuid);
                }
                run.skip(&id, reason);
            }
        }
        if batch.len() >= BATCH_ROWS {
            skipped.extend(write::users(pools, &mut run, &batch).await?);
            batch.clear();
        }
    }
    skipped.extend(write::users(pools, &mut run, &batch).await?);
    run.finish(report);
    Ok(skipped)
}

async fn devices(
    pools: &Pools,
    progress: &dyn Progress,
    options: Options,
    skipped_users: &HashSet<Uuid>,
    report: &mut Report,
) -> Result<(), ImportError> {
    const T: &str = "devices";
    let mut run = Run::start(T, &pools.src_auth, progress, options.dry_run).await?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut rows = sqlx::query(
        "SELECT id::text AS id, user_id::text AS user_id, device_id, device_name, device_type, \
         user_agent, created_at AT TIME ZONE 'UTC' AS created_at, \
         last_active_at AT TIME ZONE 'UTC' AS last_active_at FROM devices",
    )
    .fetch(&pools.src_auth);
    while let Some(row) = rows.try_next().await.map_err(read_err(T))? {
        run.read();
        let raw = (|| -> Result<rules::SourceDevice, sqlx::Error> {
            Ok(rules::SourceDevice {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                device_id: row.try_get("device_id")?,
                device_name: row.try_get("device_name")?,
                device_type: row.try_get("device_type")?,
                user_agent: row.try_get("user_agent")?,
                created_at: utc(&row, "created_at")?,
                last_active_at: utc(&row, "last_active_at")?,
            })
        })()
        .map_err(read_err(T))?;
        let id = raw.id.clone();
        match rules::device(raw, skipped_users) {
            Ok(d) => batch.push(d),
            Err(reason) => run.skip(&id, reason),
        }
        if batch.len() >= BATCH_ROWS {
            write::devices(pools, &mut run, &batch).await?;
            batch.clear();
        }
    }
    write::devices(pools, &mut run, &batch).await?;
    run.finish(report);
    Ok(())
}

async fn payments(
    pools: &Pools,
    progress: &dyn Progress,
    options: Options,
    skipped_users: &HashSet<Uuid>,
    report: &mut Report,
) -> Result<HashSet<Uuid>, ImportError> {
    const T: &str = "payments";
    let mut run = Run::start(T, &pools.src_payments, progress, options.dry_run).await?;
    let mut skipped: HashSet<Uuid> = HashSet::new();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut rows = sqlx::query(
        "SELECT id::text AS id, sender_id::text AS sender_id, recipient_id::text AS recipient_id, \
         amount::text AS amount, currency::text AS currency, status::text AS status, \
         type::text AS kind, description, metadata::text AS metadata, psp_transaction_id, \
         psp_status, failure_reason, completed_at AT TIME ZONE 'UTC' AS completed_at, \
         created_at AT TIME ZONE 'UTC' AS created_at, updated_at AT TIME ZONE 'UTC' AS updated_at \
         FROM payments",
    )
    .fetch(&pools.src_payments);
    while let Some(row) = rows.try_next().await.map_err(read_err(T))? {
        run.read();
        let raw = (|| -> Result<rules::SourcePayment, sqlx::Error> {
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
                created_at: utc(&row, "created_at")?,
                updated_at: utc(&row, "updated_at")?,
            })
        })()
        .map_err(read_err(T))?;
        let id = raw.id.clone();
        match rules::payment(raw, skipped_users) {
            Ok(p) => batch.push(p),
            Err(reason) => {
                if let Ok(uuid) = Uuid::parse_str(id.trim()) {
                    skipped.insert(uuid);
                }
                run.skip(&id, reason);
            }
        }
        if batch.len() >= BATCH_ROWS {
            skipped.extend(write::payments(pools, &mut run, &batch).await?);
            batch.clear();
        }
    }
    skipped.extend(write::payments(pools, &mut run, &batch).await?);
    run.finish(report);
    Ok(skipped)
}

async fn transactions(
    pools: &Pools,
    progress: &dyn Progress,
    options: Options,
    skipped_payments: &HashSet<Uuid>,
    report: &mut Report,
) -> Result<(), ImportError> {
    const T: &str = "payment_transactions";
    let mut run = Run::start(T, &pools.src_payments, progress, options.dry_run).await?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    // In time order per payment, so each row knows the status before it.
    let mut rows = sqlx::query(
        "SELECT id::text AS id, payment_id::text AS payment_id, status::text AS status, \
         status_message, psp_transaction_id, metadata::text AS metadata, \
         created_at AT TIME ZONE 'UTC' AS created_at \
         FROM payment_transactions ORDER BY payment_id, created_at, id",
    )
    .fetch(&pools.src_payments);
    let mut previous: Option<(String, String)> = None;
    while let Some(row) = rows.try_next().await.map_err(read_err(T))? {
        run.read();
        let raw = (|| -> Result<rules::SourceTransaction, sqlx::Error> {
            Ok(rules::SourceTransaction {
                id: row.try_get("id")?,
                payment_id: row.try_get("payment_id")?,
                status: row.try_get("status")?,
                status_message: row.try_get("status_message")?,
                psp_transaction_id: row.try_get("psp_transaction_id")?,
                metadata: row.try_get("metadata")?,
                created_at: utc(&row, "created_at")?,
            })
        })()
        .map_err(read_err(T))?;
        let id = raw.id.clone();
        let before = previous
            .as_ref()
            .filter(|(payment, _)| *payment == raw.payment_id)
            .map(|(_, status)| status.clone());
        previous = Some((raw.payment_id.clone(), raw.status.clone()));
        match rules::transaction(raw, before.as_deref(), skipped_payments) {
            Ok(t) => batch.push(t),
            Err(reason) => run.skip(&id, reason),
        }
        if batch.len() >= BATCH_ROWS {
            write::transactions(pools, &mut run, &batch).await?;
            batch.clear();
        }
    }
    write::transactions(pools, &mut run, &batch).await?;
    run.finish(report);
    Ok(())
}

async fn audit_logs(
    pools: &Pools,
    progress: &dyn Progress,
    options: Options,
    report: &mut Report,
) -> Result<(), ImportError> {
    const T: &str = "audit_logs";
    let mut run = Run::start(T, &pools.src_admin, progress, options.dry_run).await?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut rows = sqlx::query(
        "SELECT id::text AS id, user_id::text AS user_id, action::text AS action, \
         resource_type::text AS resource_type, resource_id::text AS resource_id, \
         details::text AS details, ip_address::text AS ip_address, user_agent, \
         created_at AT TIME ZONE 'UTC' AS created_at FROM audit_logs",
    )
    .fetch(&pools.src_admin);
    while let Some(row) = rows.try_next().await.map_err(read_err(T))? {
        run.read();
        let raw = (|| -> Result<rules::SourceAudit, sqlx::Error> {
            Ok(rules::SourceAudit {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                action: row.try_get("action")?,
                resource_type: row.try_get("resource_type")?,
                resource_id: row.try_get("resource_id")?,
                details: row.try_get("details")?,
                ip_address: row.try_get("ip_address")?,
                user_agent: row.try_get("user_agent")?,
                created_at: utc(&row, "created_at")?,
            })
        })()
        .map_err(read_err(T))?;
        let id = raw.id.clone();
        match rules::audit(raw) {
            Ok(a) => batch.push(a),
            Err(reason) => run.skip(&id, reason),
        }
        if batch.len() >= BATCH_ROWS {
            write::audit(pools, &mut run, &batch).await?;
            batch.clear();
        }
    }
    write::audit(pools, &mut run, &batch).await?;
    run.finish(report);
    Ok(())
}

async fn system_config(
    pools: &Pools,
    progress: &dyn Progress,
    options: Options,
    report: &mut Report,
) -> Result<(), ImportError> {
    const T: &str = "system_config";
    let mut run = Run::start(T, &pools.src_admin, progress, options.dry_run).await?;
    let mut batch = Vec::new();
    let mut rows = sqlx::query(
        "SELECT key, value::text AS value, description, updated_by::text AS updated_by, \
         updated_at AT TIME ZONE 'UTC' AS updated_at FROM system_config",
    )
    .fetch(&pools.src_admin);
    while let Some(row) = rows.try_next().await.map_err(read_err(T))? {
        run.read();
        let raw = (|| -> Result<rules::SourceConfig, sqlx::Error> {
            Ok(rules::SourceConfig {
                key: row.try_get("key")?,
                value: row.try_get("value")?,
                description: row.try_get("description")?,
                updated_at: utc(&row, "updated_at")?,
                updated_by: row.try_get("updated_by")?,
            })
        })()
        .map_err(read_err(T))?;
        let key = raw.key.clone();
        match rules::config(raw) {
            Ok(c) => batch.push(c),
            Err(reason) => run.skip(&key, reason),
        }
    }
    write::config(pools, &mut run, &batch).await?;
    run.finish(report);
    Ok(())
}

async fn profiles(
    pools: &Pools,
    progress: &dyn Progress,
    options: Options,
    skipped_users: &HashSet<Uuid>,
    report: &mut Report,
) -> Result<(), ImportError> {
    const T: &str = "user_profiles";
    let mut run = Run::start(T, &pools.src_profile, progress, options.dry_run).await?;
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    let mut rows = sqlx::query(
        "SELECT id::text AS id, user_id::text AS user_id, avatar_url, phone, address, bio, \
         preferences::text AS preferences, created_at AT TIME ZONE 'UTC' AS created_at, \
         updated_at AT TIME ZONE 'UTC' AS updated_at FROM user_profiles",
    )
    .fetch(&pools.src_profile);
    while let Some(row) = rows.try_next().await.map_err(read_err(T))? {
        run.read();
        let raw = (|| -> Result<rules::SourceProfile, sqlx::Error> {
            Ok(rules::SourceProfile {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                avatar_url: row.try_get("avatar_url")?,
                phone: row.try_get("phone")?,
                address: row.try_get("address")?,
                bio: row.try_get("bio")?,
                preferences: row.try_get("preferences")?,
                created_at: utc(&row, "created_at")?,
                updated_at: utc(&row, "updated_at")?,
            })
        })()
        .map_err(read_err(T))?;
        let id = raw.id.clone();
        match rules::profile(raw, skipped_users) {
            Ok(p) => {
                bytes += p.avatar_url.as_ref().map_or(0, String::len) + 512;
                batch.push(p);
            }
            Err(reason) => run.skip(&id, reason),
        }
        if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
            write::profiles(pools, &mut run, &batch).await?;
            batch.clear();
            bytes = 0;
        }
    }
    write::profiles(pools, &mut run, &batch).await?;
    run.finish(report);
    Ok(())
}
