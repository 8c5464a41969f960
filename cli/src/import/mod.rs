//! `payplane import` (import.md): brings the databases of the system payplane replaces over —
//! users with their bcrypt hashes, devices, payments with their histories, audit trail, config
//! and profiles — keeping ids and timestamps. Rows are streamed from the source (never a whole
//! table in memory), checked by [`rules`], and written in batches with `ON CONFLICT DO
//! NOTHING`, each batch its own transaction: a second run imports nothing, and a run
//! interrupted anywhere resumes where the committed batches end.

pub mod progress;
pub mod report;
pub mod rules;
mod tables;
mod write;

use std::{collections::HashSet, time::Instant};

use futures::TryStreamExt;
use sqlx::PgPool;
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
    let ctx = Ctx {
        pools: &pools,
        progress,
        dry: options.dry_run,
    };
    let case_duplicates: HashSet<String> = sqlx::query_scalar(
        "SELECT lower(trim(email)) FROM users GROUP BY lower(trim(email)) HAVING count(*) > 1",
    )
    .fetch_all(&pools.src_auth)
    .await
    .map_err(read_err("users"))?
    .into_iter()
    .collect();
    let skipped_users = ctx
        .import(&mut tables::Users { case_duplicates }, &mut report)
        .await?;
    let skipped = &skipped_users;
    ctx.import(&mut tables::Devices { skipped }, &mut report)
        .await?;
    let skipped_payments = ctx
        .import(&mut tables::Payments { skipped }, &mut report)
        .await?;
    let mut history = tables::Transactions {
        skipped: &skipped_payments,
        previous: None,
    };
    ctx.import(&mut history, &mut report).await?;
    drop(skipped_payments);
    ctx.import(&mut tables::AuditLogs, &mut report).await?;
    ctx.import(&mut tables::SystemConfig, &mut report).await?;
    ctx.import(&mut tables::Profiles { skipped }, &mut report)
        .await?;
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

/// What every table's import shares: the pools, the progress display, dry or not.
struct Ctx<'a> {
    pools: &'a Pools,
    progress: &'a dyn Progress,
    dry: bool,
}

impl Ctx<'_> {
    /// Streams one source table through its rules into batches and writes them; returns the
    /// ids that were not imported (by a rule or refused by the target), for the tables that
    /// refer to them.
    async fn import<T: tables::Table>(
        &self,
        table: &mut T,
        report: &mut Report,
    ) -> Result<HashSet<Uuid>, ImportError> {
        let source = T::source(self.pools);
        let mut run = Run::start(T::NAME, source, self.progress, self.dry).await?;
        let mut skipped: HashSet<Uuid> = HashSet::new();
        let mut batch: Vec<T::Row> = Vec::with_capacity(BATCH_ROWS);
        let mut weight = 0usize;
        let mut rows = sqlx::query(T::SQL).fetch(source);
        while let Some(row) = rows.try_next().await.map_err(read_err(T::NAME))? {
            run.read();
            let raw = T::decode(&row).map_err(read_err(T::NAME))?;
            let id = T::id(&raw);
            match table.check(raw) {
                Ok(r) => {
                    weight += T::weight(&r);
                    batch.push(r);
                }
                Err(reason) => {
                    if let Ok(uuid) = Uuid::parse_str(id.trim()) {
                        skipped.insert(uuid);
                    }
                    run.skip(&id, reason);
                }
            }
            if batch.len() >= BATCH_ROWS || weight >= BATCH_BYTES {
                skipped.extend(self.write::<T>(&mut run, &batch).await?);
                batch.clear();
                weight = 0;
            }
        }
        skipped.extend(self.write::<T>(&mut run, &batch).await?);
        run.finish(report);
        Ok(skipped)
    }

    async fn write<T: tables::Table>(
        &self,
        run: &mut Run<'_>,
        batch: &[T::Row],
    ) -> Result<Vec<Uuid>, ImportError> {
        if batch.is_empty() {
            Ok(Vec::new())
        } else if run.dry {
            run.book_dry(batch.len());
            Ok(Vec::new())
        } else {
            T::write(self.pools, run, batch).await
        }
    }
}
