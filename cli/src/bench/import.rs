//! `payplane bench import`: generates the earlier system's combined database on this machine
//! (by default 100,000 users and 1,000,000 payments with 3 transactions each, all by SQL on the
//! server), imports it into four fresh payplane databases, and prints
//! `import: <n> rows/s, <m> MiB peak, <s> s total` last. Peak is this process's high-water
//! resident set (VmHWM): flat when rows are streamed, whatever the source size.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use payplane_cli::import::{self, Options, SOURCE_SCHEMA, Sources, Targets, progress};
use sqlx::{Connection, PgConnection};

#[derive(Args)]
pub struct ImportBenchArgs {
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    #[arg(long, default_value_t = 1_000_000)]
    payments: u32,
    /// The server the databases are created on (trust auth, as `.ci/setup` configures it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
}

/// One bcrypt hash (cost 10, the earlier system's default) shared by every generated user: the
/// import copies hashes, it never computes one.
const HASH: &str = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

fn generate_sql(users: u32, payments: u32) -> String {
    format!(
        "INSERT INTO users SELECT md5('u' || n)::uuid::text, 'user' || n || '@bench.example', \
           '{HASH}', 'Bench User ' || n, CASE WHEN n % 10 = 0 THEN 'VENDOR' ELSE 'CUSTOMER' END::\"Role\", \
           true, timestamp '2024-01-01' + n * interval '1 second', timestamp '2024-01-01' + n * interval '1 second' \
         FROM generate_series(1, {users}) n;
         INSERT INTO payments SELECT md5('p' || n)::uuid::text, md5('u' || (1 + n % {users}))::uuid::text, \
           md5('u' || (1 + (n + 1) % {users}))::uuid::text, (1 + n % 5000) + 0.25, \
           CASE WHEN n % 3 = 0 THEN 'INR' ELSE 'USD' END, 'completed', 'instant', \
           CASE WHEN n % 4 = 0 THEN NULL ELSE 'Invoice ' || n END, \
           CASE WHEN n % 2 = 0 THEN jsonb_build_object('order', n, 'tags', jsonb_build_array('a', 'b')) END, \
           'psp_' || n, 'succeeded', NULL, timestamp '2024-02-01' + n * interval '1 second' + interval '2 seconds', \
           timestamp '2024-02-01' + n * interval '1 second', timestamp '2024-02-01' + n * interval '1 second' \
         FROM generate_series(1, {payments}) n;
         INSERT INTO payment_transactions SELECT md5('t' || n || '-' || s)::uuid::text, md5('p' || n)::uuid::text, \
           (ARRAY['pending', 'processing', 'completed'])[s]::\"PaymentStatus\", NULL, NULL, NULL, \
           timestamp '2024-02-01' + n * interval '1 second' + s * interval '1 second' \
         FROM generate_series(1, {payments}) n, generate_series(1, 3) s;
         ANALYZE;"
    )
}

/// This process's peak resident set in MiB (Linux `VmHWM`).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

pub async fn run(args: ImportBenchArgs) -> anyhow::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let server = args.server.trim_end_matches('/').to_owned();
    let names: Vec<String> = ["src", "auth", "payments", "admin", "profile"]
        .iter()
        .map(|n| format!("bench_import_{n}_{tag}"))
        .collect();
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .context("connecting to PostgreSQL (run `.ci/setup servers` first)")?;
    for name in &names {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await?;
    }
    let url = |i: usize| format!("{server}/{}", names[i]);
    let result = async {
        let generated = Instant::now();
        let mut src = PgConnection::connect(&url(0)).await?;
        sqlx::raw_sql(SOURCE_SCHEMA).execute(&mut src).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(generate_sql(args.users, args.payments)))
            .execute(&mut src)
            .await?;
        src.close().await?;
        println!(
            "source: {} users, {} payments, {} transactions generated in {:.1} s",
            args.users,
            args.payments,
            u64::from(args.payments) * 3,
            generated.elapsed().as_secs_f64()
        );
        let targets = Targets {
            auth: url(1),
            payments: url(2),
            admin: url(3),
            profile: url(4),
        };
        let started = Instant::now();
        let report = import::run(
            &Sources::combined(&url(0)),
            &targets,
            Options::default(),
            &progress::JsonLines,
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(report.skipped() == 0, "rows skipped: {}", report.summary());
        println!("{}", report.summary());
        println!(
            "import: {:.0} rows/s, {:.0} MiB peak, {seconds:.1} s total",
            report.rows_per_second,
            peak_mib()
        );
        anyhow::Ok(())
    }
    .await;
    for name in &names {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
    result
}
