//! Database-level operator commands: seed, bootstrap-admin, migrate.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Args;
use payplane_auth::{config::Argon2Params, ops, password::Hasher};
use payplane_kit::config::Env;

/// Where the CLI finds each service database: `<SERVICE>_DATABASE_URL`, else the local
/// trust-auth server this machine runs.
pub fn database_url(env: &Env, service: &str) -> String {
    let var = format!("{}_DATABASE_URL", service.to_ascii_uppercase());
    env.string(
        &var,
        &format!("postgres://postgres@127.0.0.1:5432/{service}_db"),
    )
}

fn hasher(env: &Env) -> anyhow::Result<Hasher> {
    let params = Argon2Params {
        memory_kib: env.parse("ARGON2_MEMORY_KIB", 19_456)?,
        iterations: env.parse("ARGON2_ITERATIONS", 2)?,
        parallelism: env.parse("ARGON2_PARALLELISM", 1)?,
    };
    Ok(Hasher::new(params)?)
}

#[derive(Args)]
pub struct SeedArgs {
    /// Allow seeding when ENVIRONMENT=production.
    #[arg(long)]
    allow_production: bool,
}

/// Seeds all four databases (api.md §10).
pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let env = Env::from_process();
    if env.environment()?.is_production() && !args.allow_production {
        bail!("refusing to seed a production environment without --allow-production");
    }
    for (user, created) in seed_all(&env).await? {
        println!(
            "{} {} ({})",
            if created { "created" } else { "reset  " },
            user.email,
            user.role.as_str()
        );
    }
    Ok(())
}

async fn migrated_pool(
    env: &Env,
    service: &str,
    migrator: &sqlx::migrate::Migrator,
) -> anyhow::Result<sqlx::PgPool> {
    let url = database_url(env, service);
    payplane_db::ensure_database(&url)
        .await
        .with_context(|| format!("creating the {service} database"))?;
    let pool = payplane_db::connect(&url, 2).await?;
    payplane_db::migrate(&pool, migrator)
        .await
        .with_context(|| format!("migrating the {service} database"))?;
    Ok(pool)
}

/// The demo data of api.md §10 in every database: auth's users first (they decide the ids),
/// then the payments and admin directories, the demo payments and config, and the profiles.
/// Idempotent; emits only auth's `auth.user.created` for newly created users.
pub async fn seed_all(env: &Env) -> anyhow::Result<Vec<(payplane_auth::store::users::User, bool)>> {
    let auth = migrated_pool(env, "auth", &payplane_auth::MIGRATOR).await?;
    let users = ops::seed_users(&auth, &hasher(env)?)
        .await
        .context("seeding auth")?;
    let payments = migrated_pool(env, "payments", &payplane_payments::MIGRATOR).await?;
    let directory: Vec<_> = users
        .iter()
        .map(|(u, _)| (u.id, u.email.as_str(), u.name.as_str(), u.role.as_str()))
        .collect();
    payplane_payments::ops::seed_demo(&payments, &directory)
        .await
        .context("seeding payments")?;
    let admin = migrated_pool(env, "admin", &payplane_admin::MIGRATOR).await?;
    let snapshots: Vec<_> = users.iter().map(|(u, _)| u.snapshot()).collect();
    payplane_admin::seed::seed(&admin, &snapshots)
        .await
        .context("seeding admin")?;
    let profile = migrated_pool(env, "profile", &payplane_profile::MIGRATOR).await?;
    let owners: Vec<_> = users
        .iter()
        .map(|(u, _)| (u.id, u.email.as_str()))
        .collect();
    // Through the profile cache, so a profile cached before the reset is not served stale.
    let redis_url = env.string("REDIS_URL", "redis://127.0.0.1:6379");
    let redis = payplane_kit::service::cache::connect_redis(
        &redis_url,
        payplane_kit::service::cache::RedisTimeouts::SERVICE,
    )
    .await
    .with_context(|| format!("connecting to Redis at {redis_url}"))?;
    let cache = payplane_profile::cache::Cache::new(redis, env.string("CACHE_KEY_PREFIX", ""));
    payplane_profile::ops::seed_profiles(&profile, Some(&cache), &owners)
        .await
        .context("seeding profiles")?;
    for pool in [auth, payments, admin, profile] {
        pool.close().await;
    }
    Ok(users)
}

#[derive(Args)]
pub struct BootstrapArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
}

pub async fn bootstrap_admin(args: BootstrapArgs) -> anyhow::Result<()> {
    let env = Env::from_process();
    let password = if let Some(p) = env.opt("BOOTSTRAP_ADMIN_PASSWORD") {
        p
    } else {
        eprintln!("admin password (read from standard input):");
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    let url = database_url(&env, "auth");
    let pool = payplane_db::connect(&url, 2).await?;
    payplane_db::migrate(&pool, &payplane_auth::MIGRATOR).await?;
    let user =
        ops::bootstrap_admin(&pool, &hasher(&env)?, &args.email, &args.name, &password).await?;
    println!("created ADMIN {} ({})", user.email, user.id);
    Ok(())
}

#[derive(Args)]
pub struct MigrateArgs {
    /// Service whose database to migrate (auth).
    service: String,
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let env = Env::from_process();
    let migrator = match args.service.as_str() {
        "auth" => &payplane_auth::MIGRATOR,
        other => bail!("unknown service {other:?} (known: auth)"),
    };
    let url = database_url(&env, &args.service);
    payplane_db::ensure_database(&url).await?;
    let pool = payplane_db::connect(&url, 2).await?;
    payplane_db::migrate(&pool, migrator).await?;
    println!("{} migrations applied", args.service);
    Ok(())
}
