//! `payplane import` (issue: import) against the whole platform: the test writes the earlier
//! system's combined database (import.md §1, every listed quirk), imports it into the running
//! platform's databases and checks the result through the public API — old passwords log in
//! and are upgraded to Argon2id, payments keep their histories, the profile keeps a 2.5 MB
//! avatar, the audit trail and config arrive — and that a run interrupted after its first
//! table and started again ends the same, and a second run imports nothing.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::{
    collections::HashSet,
    path::Path,
    sync::{Arc, Mutex},
};

use payplane_cli::import::{
    self, ImportError, Options, Sources, Targets,
    progress::{Progress, Quiet},
    report::{Report, TableReport},
};
use payplane_e2e::{Api, Platform, client::transaction_statuses};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const NODE: &str = env!("CARGO_BIN_EXE_payplane-e2e-node");
const OLD_PASSWORD: &str = "Old-System-Pass1!";

/// The ids the test checks afterwards.
struct Source {
    url: String,
    alice: Uuid,
    bob: Uuid,
    paid: Uuid,
    reversed: Uuid,
}

async fn exec(conn: &mut PgConnection, sql: &str, binds: &[&str]) -> anyhow::Result<()> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

async fn write_source(run: &str) -> anyhow::Result<Source> {
    let name = format!("import_src_{run}");
    let mut admin = PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let mut db = PgConnection::connect(&url).await?;
    sqlx::raw_sql(import::SOURCE_SCHEMA)
        .execute(&mut db)
        .await?;
    let hash = bcrypt::hash(OLD_PASSWORD, 10)?;
    let (alice, bob, carol) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (dup1, dup2) = (Uuid::new_v4(), Uuid::new_v4());
    let t = "2024-02-01 09:30:00.123";
    let users = [
        (
            alice,
            format!("Alice.{run}@Example.com"),
            "Alice Old",
            "CUSTOMER",
        ),
        (
            bob,
            format!("bob.{run}@example.com"),
            "Bob Vendor",
            "VENDOR",
        ),
        (
            carol,
            format!("carol.{run}@example.com"),
            "Carol Gone",
            "CUSTOMER",
        ),
        // Emails not normalised in case: two accounts the earlier system saw as different.
        (
            dup1,
            format!("Dup.{run}@example.com"),
            "Dup One",
            "CUSTOMER",
        ),
        (
            dup2,
            format!("dup.{run}@example.com"),
            "Dup Two",
            "CUSTOMER",
        ),
    ];
    for (id, email, name, role) in &users {
        exec(
            &mut db,
            "INSERT INTO users VALUES ($1, $2, $3, $4, $5::\"Role\", true, $6::timestamp, $6::timestamp)",
            &[&id.to_string(), email, &hash, name, role, t],
        )
        .await?;
    }
    exec(
        &mut db,
        "INSERT INTO refresh_tokens VALUES ($1, $2, 'tok', 'fam', NULL, false, '2030-01-01', $3::timestamp, NULL)",
        &[&Uuid::new_v4().to_string(), &alice.to_string(), t],
    )
    .await?;
    exec(
        &mut db,
        "INSERT INTO devices VALUES ($1, $2, $3, 'Chrome on Linux', 'browser', 'Mozilla/5.0', $4::timestamp, $4::timestamp)",
        &[&Uuid::new_v4().to_string(), &alice.to_string(), &format!("alice-laptop-{run}"), t],
    )
    .await?;
    let paid = Uuid::new_v4();
    let reversed = Uuid::new_v4();
    let no_recipient = Uuid::new_v4();
    let huge = Uuid::new_v4();
    let from_dup = Uuid::new_v4();
    let payment = "INSERT INTO payments VALUES ($1, $2, $3, $4::numeric, $5, $6::\"PaymentStatus\", \
        'instant', $7, $8::jsonb, $9, NULL, NULL, $10::timestamp, $11::timestamp, $11::timestamp)";
    let psp = format!("psp_{run}");
    // (id, sender, recipient, amount, currency, status, description, metadata, psp id, completed)
    let rows = [
        // Completed, INR for a user of any country, no description.
        (
            paid,
            alice,
            Some(bob),
            "100.00",
            "INR",
            "completed",
            None,
            Some(r#"{"order": 42, "tags": ["a", "b"]}"#),
            Some(&psp),
            Some("2024-02-01 09:31:00.000"),
        ),
        // An admin moved it from completed to failed: payplane would refuse that.
        (
            reversed,
            alice,
            Some(bob),
            "5.50",
            "USD",
            "failed",
            Some("Reversed by an admin"),
            None,
            None,
            None,
        ),
        // The recipient was deleted (SET NULL).
        (
            no_recipient,
            alice,
            None,
            "1.00",
            "USD",
            "failed",
            Some("to a deleted account"),
            None,
            None,
            None,
        ),
        // Metadata PostgreSQL holds but payplane would refuse (issue #18's number).
        (
            huge,
            alice,
            Some(carol),
            "2.00",
            "USD",
            "pending",
            Some("huge number"),
            Some(r#"{"x": 1.7976931348623157e308}"#),
            None,
            None,
        ),
        // Sent by one of the case-duplicate accounts.
        (
            from_dup,
            dup1,
            Some(bob),
            "3.00",
            "USD",
            "pending",
            Some("from a duplicate"),
            None,
            None,
            None,
        ),
    ];
    for (
        id,
        sender,
        recipient,
        amount,
        currency,
        status,
        description,
        metadata,
        psp_id,
        completed,
    ) in rows
    {
        sqlx::query(payment)
            .bind(id.to_string())
            .bind(sender.to_string())
            .bind(recipient.map(|r| r.to_string()))
            .bind(amount)
            .bind(currency)
            .bind(status)
            .bind(description)
            .bind(metadata)
            .bind(psp_id)
            .bind(completed)
            .bind(t)
            .execute(&mut db)
            .await?;
    }
    let history = [
        (paid, "pending", "2024-02-01 09:30:00.123"),
        (paid, "processing", "2024-02-01 09:30:30.000"),
        (paid, "completed", "2024-02-01 09:31:00.000"),
        (reversed, "pending", "2024-02-01 09:30:00.123"),
        (reversed, "completed", "2024-02-01 09:35:00.000"),
        (reversed, "failed", "2024-02-02 10:00:00.000"),
        (huge, "pending", "2024-02-01 09:30:00.123"),
    ];
    for (payment, status, at) in history {
        exec(
            &mut db,
            "INSERT INTO payment_transactions VALUES ($1, $2, $3::\"PaymentStatus\", NULL, NULL, NULL, $4::timestamp)",
            &[&Uuid::new_v4().to_string(), &payment.to_string(), status, at],
        )
        .await?;
    }
    exec(
        &mut db,
        "INSERT INTO audit_logs VALUES ($1, $2, 'user.login', 'User', $2, '{\"method\": \"password\"}', '203.0.113.7', 'Mozilla/5.0', $3::timestamp)",
        &[&Uuid::new_v4().to_string(), &alice.to_string(), t],
    )
    .await?;
    exec(
        &mut db,
        "INSERT INTO system_config VALUES ($1, '{\"amount\": \"5000.00\"}', 'Daily limit', $2::timestamp, NULL)",
        &[&format!("import.daily-limit.{run}"), t],
    )
    .await?;
    // A 2.5 MB avatar data URL (valid base64), free-shaped preferences, a formatted phone.
    let avatar = format!("data:image/png;base64,{}", "iVBO".repeat(625_000));
    exec(
        &mut db,
        "INSERT INTO user_profiles VALUES ($1, $2, $3, '+91 98765 43210', NULL, 'Imported bio', \
         '{\"theme\": \"dark\", \"legacy\": {\"sidebar\": [1, 2]}}', $4::timestamp, $4::timestamp)",
        &[&Uuid::new_v4().to_string(), &alice.to_string(), &avatar, t],
    )
    .await?;
    Ok(Source {
        url,
        alice,
        bob,
        paid,
        reversed,
    })
}

fn targets(platform: &Platform) -> Targets {
    let db = |s: &str| platform.database(s).unwrap_or_default();
    Targets {
        auth: db("auth"),
        payments: db("payments"),
        admin: db("admin"),
        profile: db("profile"),
    }
}

/// Stops the import (its future is dropped, the open transaction rolls back, as on a kill)
/// once the `users` table is done.
struct StopAfterUsers(Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>);

impl Progress for StopAfterUsers {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, report: &TableReport) {
        if report.table == "users"
            && let Some(tx) = self.0.lock().ok().and_then(|mut g| g.take())
        {
            let _ = tx.send(());
        }
    }
}

fn table<'a>(report: &'a Report, name: &str) -> &'a TableReport {
    report
        .table(name)
        .unwrap_or_else(|| panic!("no {name} in the report"))
}

async fn login(
    api: &Api,
    email: &str,
    password: &str,
) -> anyhow::Result<payplane_e2e::client::Reply> {
    api.post(
        "/api/auth/login",
        None,
        &json!({"email": email, "password": password, "deviceId": "import-test"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earlier_system_is_imported_with_passwords_history_profiles_and_audit() {
    let (platform, api) = Platform::start_default(Path::new(NODE)).await.unwrap();
    let run = platform.run_id.to_ascii_lowercase();
    let src = write_source(&run).await.unwrap();
    let sources = Sources::combined(&src.url);
    let targets = targets(&platform);
    let alice_email = format!("alice.{run}@example.com");

    // The platform already holds its bootstrap admin: refused without --merge.
    let refused = import::run(&sources, &targets, Options::default(), &Quiet).await;
    assert!(
        matches!(refused, Err(ImportError::ForeignData { users: 1.. })),
        "{refused:?}"
    );

    // A dry run reports and writes nothing.
    let merge = Options {
        dry_run: false,
        merge: true,
    };
    let dry = import::run(
        &sources,
        &targets,
        Options {
            dry_run: true,
            merge: true,
        },
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(table(&dry, "users").imported, 3, "{dry:?}");
    assert_eq!(
        login(&api, &alice_email, OLD_PASSWORD)
            .await
            .unwrap()
            .status,
        401
    );

    // Interrupted after the users table, then run again.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stopper = StopAfterUsers(Arc::new(Mutex::new(Some(tx))));
    tokio::select! {
        r = import::run(&sources, &targets, merge, &stopper) => panic!("not interrupted: {r:?}"),
        _ = rx => {}
    }
    let mut payments_db = PgConnection::connect(&targets.payments).await.unwrap();
    let half: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&mut payments_db)
        .await
        .unwrap();
    assert_eq!(half, 0, "the interrupted run stopped before payments");
    let report = import::run(&sources, &targets, merge, &Quiet)
        .await
        .unwrap();
    println!("{}", report.summary());
    let users = table(&report, "users");
    assert_eq!(users.read, 5);
    assert_eq!(users.already_present, 3, "imported by the interrupted run");
    assert_eq!(
        users.skipped_by_reason.get("email_case_duplicate"),
        Some(&2)
    );
    let payments = table(&report, "payments");
    assert_eq!(payments.imported, 2);
    let reasons: HashSet<&str> = payments
        .skipped_by_reason
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        reasons,
        HashSet::from([
            "recipient_missing",
            "metadata_invalid",
            "party_not_imported"
        ])
    );
    assert_eq!(table(&report, "payment_transactions").imported, 6);
    assert_eq!(
        table(&report, "payment_transactions")
            .skipped_by_reason
            .get("payment_not_imported"),
        Some(&1)
    );
    assert_eq!(table(&report, "devices").imported, 1);
    assert_eq!(table(&report, "audit_logs").imported, 1);
    assert_eq!(table(&report, "system_config").imported, 1);
    assert_eq!(table(&report, "user_profiles").imported, 1);
    assert_eq!(report.exit_code(), 3, "rows were skipped");

    // The old password logs in once and is Argon2id afterwards.
    let mut auth_db = PgConnection::connect(&targets.auth).await.unwrap();
    let hash_of = |id: Uuid| {
        sqlx::query_scalar::<_, String>("SELECT password_hash FROM users WHERE id = $1").bind(id)
    };
    assert!(
        hash_of(src.alice)
            .fetch_one(&mut auth_db)
            .await
            .unwrap()
            .starts_with("$2b$")
    );
    let reply = login(&api, &alice_email, OLD_PASSWORD).await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(
        hash_of(src.alice)
            .fetch_one(&mut auth_db)
            .await
            .unwrap()
            .starts_with("$argon2id$"),
        "upgraded in the login's transaction"
    );
    assert_eq!(
        login(&api, &alice_email, "wrong-Passw0rd!")
            .await
            .unwrap()
            .status,
        401
    );
    // And again, now against the Argon2id hash (same device: this session replaces the first).
    let again = login(&api, &alice_email, OLD_PASSWORD).await.unwrap();
    assert_eq!(again.status, 200);
    let token = again.data()["accessToken"].as_str().unwrap().to_owned();

    // Payments with their histories, through the API.
    let paid = api
        .get(&format!("/api/payments/{}", src.paid), &token)
        .await
        .unwrap();
    assert_eq!(paid.status, 200, "{:?}", paid.body);
    let p = paid.data();
    assert_eq!(
        (p["amount"].as_str(), p["currency"].as_str()),
        (Some("100.00"), Some("INR"))
    );
    assert_eq!(p["description"], "");
    assert_eq!(p["status"], "completed");
    assert_eq!(p["recipient"]["id"], src.bob.to_string());
    assert_eq!(p["metadata"]["order"], 42);
    assert_eq!(p["createdAt"], "2024-02-01T09:30:00.123Z");
    assert_eq!(
        transaction_statuses(p),
        ["pending", "processing", "completed"]
    );
    let reversed = api
        .get(&format!("/api/payments/{}", src.reversed), &token)
        .await
        .unwrap();
    assert_eq!(reversed.data()["status"], "failed", "final status as is");
    assert_eq!(
        reversed.data()["transactions"].as_array().map(Vec::len),
        Some(3)
    );
    let list = api.get("/api/payments", &token).await.unwrap();
    assert_eq!(list.status, 200);

    // The profile with its 2.5 MB avatar and free-shaped preferences.
    let profile = api.get("/api/profile", &token).await.unwrap();
    assert_eq!(profile.status, 200, "{:?}", profile.body);
    let avatar = profile.data()["avatarUrl"].as_str().unwrap_or_default();
    assert_eq!(avatar.len(), "data:image/png;base64,".len() + 2_500_000);
    assert_eq!(profile.data()["preferences"]["theme"], "dark");

    // Audit trail and config, as an admin sees them.
    let admin = api
        .login(&platform.admin_email, "import-admin")
        .await
        .unwrap();
    let audit = api
        .get("/api/admin/audit-logs?limit=100", &admin.access_token)
        .await
        .unwrap();
    let entries: Vec<&Value> = audit.data()["data"].as_array().unwrap().iter().collect();
    let login_entry = entries
        .iter()
        .find(|e| e["action"] == "USER_LOGIN" && e["timestamp"] == "2024-02-01T09:30:00.123Z")
        .unwrap_or_else(|| {
            let logins: Vec<&&Value> = entries
                .iter()
                .filter(|e| e["action"] == "USER_LOGIN")
                .collect();
            panic!("the imported USER_LOGIN entry is missing: {logins:?}")
        });
    assert_eq!(login_entry["details"]["sourceAction"], "user.login");
    assert_eq!(login_entry["ipAddress"], "203.0.113.7");
    assert!(entries.iter().any(|e| e["action"] == "DATA_IMPORTED"));
    let config = api
        .get(
            &format!("/api/admin/config/import.daily-limit.{run}"),
            &admin.access_token,
        )
        .await
        .unwrap();
    assert_eq!(
        config.data()["value"]["amount"],
        "5000.00",
        "{:?}",
        config.body
    );
    let imported_user = api
        .get(
            &format!("/api/admin/users/{}", src.alice),
            &admin.access_token,
        )
        .await
        .unwrap();
    assert_eq!(imported_user.status, 200, "admin's directory rebuilt");

    // A second run imports nothing.
    let again = import::run(&sources, &targets, merge, &Quiet)
        .await
        .unwrap();
    assert_eq!(again.imported(), 0, "{}", again.summary());
    assert_eq!(table(&again, "payments").already_present, 2);
}
