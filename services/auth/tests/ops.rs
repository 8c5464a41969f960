//! The operator commands of auth against real PostgreSQL: seeding the demo accounts is
//! idempotent and resets them, even one whose email was edited (found by its fixed id).

use payplane_auth::{MIGRATOR, config::Argon2Params, ops, password::Hasher};
use payplane_db::testing::TestDatabase;

#[tokio::test]
async fn seeding_resets_a_demo_account_whose_email_was_changed() {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let hasher = Hasher::new(Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let first = ops::seed_users(&db.pool, &hasher).await.unwrap();
    assert!(first.iter().all(|(_, created)| *created));
    let admin_id = ops::DEMO_USERS[2].0;
    sqlx::query("UPDATE users SET email = '0@0.com', role = 'CUSTOMER' WHERE id = $1")
        .bind(admin_id)
        .execute(&db.pool)
        .await
        .unwrap();
    let again = ops::seed_users(&db.pool, &hasher).await.unwrap();
    let (admin, created) = again.iter().find(|(u, _)| u.id == admin_id).unwrap();
    assert!(!created);
    assert_eq!(admin.email, "admin@example.com");
    assert_eq!(admin.role.as_str(), "ADMIN");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 3);
}
