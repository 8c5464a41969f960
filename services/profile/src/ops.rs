//! Operator commands on the profile database: the demo profiles of the `seed` command
//! (api.md §10). Used by the `payplane` CLI after auth's `seed_users`. Seeding emits no events.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    cache::Cache,
    store::{Ctx, StoreError},
};

/// One demo profile of api.md §10, by the demo account's email.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoProfile {
    pub email: &'static str,
    pub phone: &'static str,
    pub address: Option<&'static str>,
    pub bio: Option<&'static str>,
    /// Stored preferences (only what differs from the defaults).
    pub preferences: Value,
}

/// The demo profiles of api.md §10.
pub fn demo_profiles() -> [DemoProfile; 3] {
    [
        DemoProfile {
            email: "admin@example.com",
            phone: "+1234567890",
            address: Some("123 Admin Street"),
            bio: Some("System Administrator"),
            preferences: json!({"theme": "dark"}),
        },
        DemoProfile {
            email: "customer@example.com",
            phone: "+1234567891",
            address: None,
            bio: None,
            preferences: json!({"theme": "light"}),
        },
        DemoProfile {
            email: "vendor@example.com",
            phone: "+1234567892",
            address: Some("456 Vendor Avenue"),
            bio: None,
            preferences: json!({"theme": "light",
                                "notifications": {"email": false, "push": false, "sms": false}}),
        },
    ]
}

/// Creates or resets the demo profiles of the given auth users (`(id, email)`; other emails are
/// skipped), clearing any deletion mark so a re-created demo user gets its profile. Rows that
/// already hold the demo values are left untouched, so running it twice equals running it once.
/// Returns how many profiles were written. With a cache, their versions are bumped after commit.
pub async fn seed_profiles(
    pool: &PgPool,
    cache: Option<&Cache>,
    users: &[(Uuid, &str)],
) -> Result<usize, StoreError> {
    let demo = demo_profiles();
    let mut tx = pool.begin().await.ctx("begin profile seed")?;
    let mut written = Vec::new();
    for (user_id, email) in users {
        let Some(p) = demo.iter().find(|d| d.email.eq_ignore_ascii_case(email)) else {
            continue;
        };
        sqlx::query("DELETE FROM deleted_users WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .ctx("clear deletion mark")?;
        let changed = sqlx::query(
            "INSERT INTO user_profiles (id, user_id, phone, address, bio, avatar_url, preferences) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6) \
             ON CONFLICT (user_id) DO UPDATE SET phone = EXCLUDED.phone, address = EXCLUDED.address, \
               bio = EXCLUDED.bio, avatar_url = NULL, preferences = EXCLUDED.preferences, \
               updated_at = date_trunc('milliseconds', now()) \
             WHERE (user_profiles.phone, user_profiles.address, user_profiles.bio, \
                    user_profiles.avatar_url, user_profiles.preferences) \
               IS DISTINCT FROM (EXCLUDED.phone, EXCLUDED.address, EXCLUDED.bio, NULL::text, \
                                 EXCLUDED.preferences)",
        )
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(p.phone)
        .bind(p.address)
        .bind(p.bio)
        .bind(&p.preferences)
        .execute(&mut *tx)
        .await
        .ctx("seed profile")?
        .rows_affected();
        if changed > 0 {
            written.push(*user_id);
        }
    }
    tx.commit().await.ctx("commit profile seed")?;
    if let Some(cache) = cache {
        for user_id in &written {
            cache.bump(*user_id).await;
        }
    }
    Ok(written.len())
}
