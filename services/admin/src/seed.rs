//! The admin part of the `seed` command (api.md §10): the demo users upserted straight into
//! the read model (clearing any deletion mark) and the two demo config entries (created if
//! absent, `updatedBy` null). Does I/O on the admin database only.

use payplane_events::auth::UserSnapshot;
use sqlx::PgPool;

use crate::store::{Ctx, StoreError, config, users};

/// Seeds `admin_db`. `demo_users` are auth's users after its own seeding
/// (`payplane_auth::ops::seed_users(..)` → `user.snapshot()`).
pub async fn seed(pool: &PgPool, demo_users: &[UserSnapshot]) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.ctx("begin seed")?;
    for user in demo_users {
        users::seed_upsert(&mut tx, &users::UserState::from(user)).await?;
    }
    config::seed(&mut tx).await?;
    tx.commit().await.ctx("commit seed")?;
    Ok(())
}
