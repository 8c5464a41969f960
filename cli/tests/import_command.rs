//! The `payplane import` command line (import.md §2) against real PostgreSQL: a small source
//! with two accounts differing only in the case of their email, four fresh payplane databases
//! (the import applies the services' migrations itself), and the command's contract — JSON
//! lines when standard output is not a terminal, the `--report` file, exit 3 when rows were
//! skipped, 0 for a clean run, 4 when the target holds another source's data without `--merge`,
//! and `--dry-run` writing nothing.

use std::process::Command;

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

async fn create(name: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(&format!("{SERVER}/postgres")).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    Ok(format!("{SERVER}/{name}"))
}

async fn source(name: &str, emails: &[&str]) -> anyhow::Result<String> {
    let url = create(name).await?;
    let mut db = PgConnection::connect(&url).await?;
    sqlx::raw_sql(payplane_cli::import::SOURCE_SCHEMA)
        .execute(&mut db)
        .await?;
    for email in emails {
        sqlx::query(
            "INSERT INTO users VALUES ($1, $2, '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy', \
             'Someone', 'CUSTOMER', true, '2024-01-01', '2024-01-01')",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(*email)
        .execute(&mut db)
        .await?;
    }
    Ok(url)
}

struct Targets([String; 4]);

impl Targets {
    async fn fresh(tag: &str) -> anyhow::Result<Targets> {
        let mut urls = Vec::new();
        for service in ["auth", "payments", "admin", "profile"] {
            urls.push(create(&format!("cli_import_{service}_{tag}")).await?);
        }
        let [a, p, ad, pr]: [String; 4] = urls.try_into().map_err(|_| anyhow::anyhow!("4 urls"))?;
        Ok(Targets([a, p, ad, pr]))
    }

    fn import(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(env!("CARGO_BIN_EXE_payplane"))
            .arg("import")
            .args(args)
            .env("AUTH_DATABASE_URL", &self.0[0])
            .env("PAYMENTS_DATABASE_URL", &self.0[1])
            .env("ADMIN_DATABASE_URL", &self.0[2])
            .env("PROFILE_DATABASE_URL", &self.0[3])
            .output()
            .map_err(Into::into)
    }
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The command exited with `code`; otherwise the assertion shows its stderr.
fn exits_with(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_reports_skips_refuses_foreign_data_and_dry_runs() {
    let tag = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let src = source(
        &format!("cli_import_src_{tag}"),
        &["Ann@example.com", "ann@example.com", "bo@example.com"],
    )
    .await
    .unwrap();
    // A source without referential integrity: one payment whose sender exists nowhere, next
    // to a good one in the same batch.
    let mut db = PgConnection::connect(&src).await.unwrap();
    sqlx::raw_sql(
        "ALTER TABLE payments DROP CONSTRAINT payments_sender_id_fkey; \
         INSERT INTO payments (id, sender_id, recipient_id, amount, currency, status, type, \
           description, created_at, updated_at) \
         SELECT gen_random_uuid()::text, s, (SELECT id FROM users WHERE email = 'bo@example.com'), \
           10, 'USD', 'failed', 'instant', d, '2024-01-01', '2024-01-01' \
         FROM (VALUES (gen_random_uuid()::text, 'orphan'), \
                      ((SELECT id FROM users WHERE email = 'Ann@example.com'), 'skipped sender'), \
                      ((SELECT id FROM users WHERE email = 'bo@example.com'), 'to self')) v(s, d)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let targets = Targets::fresh(&tag).await.unwrap();
    let report_path = std::env::temp_dir().join(format!("import-report-{tag}.json"));

    let dry = targets.import(&["--source-db", &src, "--dry-run"]).unwrap();
    exits_with(&dry, 3);

    let first = targets
        .import(&[
            "--source-db",
            &src,
            "--report",
            report_path.to_str().unwrap(),
        ])
        .unwrap();
    exits_with(&first, 3);
    let per_table = lines(&first);
    let users = per_table
        .iter()
        .find(|l| l["table"] == "users")
        .expect("a JSON line for users");
    assert_eq!(
        users["imported"], 1,
        "the dry run wrote nothing before: {users}"
    );
    assert_eq!(users["skippedByReason"]["email_case_duplicate"], 2);
    let payments = per_table
        .iter()
        .find(|l| l["table"] == "payments")
        .expect("a JSON line for payments");
    assert_eq!(payments["read"], 3, "{payments}");
    assert_eq!(
        payments["skippedByReason"]["party_missing_or_psp_reference_taken"],
        1
    );
    assert_eq!(payments["skippedByReason"]["party_not_imported"], 1);
    assert_eq!(payments["skippedByReason"]["sender_is_recipient"], 1);
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(
        report["tables"][0]["skippedExamples"][0]["reason"],
        "email_case_duplicate"
    );

    // Another source into databases that now hold data: refused without --merge.
    let other = source(&format!("cli_import_other_{tag}"), &["cy@example.com"])
        .await
        .unwrap();
    let refused = targets.import(&["--source-db", &other]).unwrap();
    assert_eq!(refused.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--merge"));
    let merged = targets.import(&["--source-db", &other, "--merge"]).unwrap();
    exits_with(&merged, 0);

    let mut auth = PgConnection::connect(&targets.0[0]).await.unwrap();
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM users ORDER BY email")
        .fetch_all(&mut auth)
        .await
        .unwrap();
    assert_eq!(emails, ["bo@example.com", "cy@example.com"]);
    let _ = std::fs::remove_file(report_path);
}

/// A SIGKILLed import (after its users table, in the middle of payments) started again ends
/// with exactly the source's rows: committed batches are kept, the cut one rolled back and
/// written by the second run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_started_again_ends_with_every_row_once() {
    use std::io::{BufRead, BufReader};
    let tag = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let src = source(&format!("cli_import_kill_{tag}"), &[])
        .await
        .unwrap();
    let mut db = PgConnection::connect(&src).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO users SELECT md5('u' || n)::uuid::text, 'u' || n || '@kill.example', \
           '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy', 'U ' || n, 'CUSTOMER', \
           true, '2024-01-01', '2024-01-01' FROM generate_series(1, 2000) n; \
         INSERT INTO payments (id, sender_id, recipient_id, amount, currency, status, type, \
           description, created_at, updated_at) \
         SELECT md5('p' || n)::uuid::text, md5('u' || (1 + n % 2000))::uuid::text, \
           md5('u' || (1 + (n + 1) % 2000))::uuid::text, 12.5, 'USD', 'failed', 'instant', \
           'p' || n, '2024-01-01', '2024-01-01' FROM generate_series(1, 40000) n; \
         INSERT INTO payment_transactions SELECT md5('t' || n)::uuid::text, \
           md5('p' || n)::uuid::text, 'failed', NULL, NULL, NULL, '2024-01-01' \
           FROM generate_series(1, 40000) n;",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let targets = Targets::fresh(&format!("k{tag}")).await.unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_payplane"))
        .args(["import", "--source-db", &src])
        .env("AUTH_DATABASE_URL", &targets.0[0])
        .env("PAYMENTS_DATABASE_URL", &targets.0[1])
        .env("ADMIN_DATABASE_URL", &targets.0[2])
        .env("PROFILE_DATABASE_URL", &targets.0[3])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains(r#""table":"users""#) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let mut payments_db = PgConnection::connect(&targets.0[1]).await.unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let cut = count("SELECT count(*) FROM payments")
        .fetch_one(&mut payments_db)
        .await
        .unwrap();
    assert!(cut < 40_000, "killed before the payments were done ({cut})");

    let again = targets.import(&["--source-db", &src]).unwrap();
    exits_with(&again, 0);
    let users = lines(&again)
        .into_iter()
        .find(|l| l["table"] == "users")
        .unwrap();
    assert_eq!(users["alreadyPresent"], 2000, "{users}");
    for (sql, expected) in [
        ("SELECT count(*) FROM payments", 40_000),
        ("SELECT count(*) FROM payment_transactions", 40_000),
        ("SELECT count(DISTINCT id) FROM payments", 40_000),
    ] {
        let n = count(sql).fetch_one(&mut payments_db).await.unwrap();
        assert_eq!(n, expected, "{sql}");
    }
}
