//! `payplane`: operational commands — the local dev runner, demo seed, first admin,
//! migrations, dead-letter tools, the import, `plan` and benchmarks.

mod bench;
mod dev;
mod dlq;
mod import_cmd;
mod ops;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "payplane", version, about = "payplane operations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform locally in the foreground (auth on :3001) against local PostgreSQL and Redis.
    Dev(dev::DevArgs),
    /// Write the demo data (api.md §10). Refused in production without --allow-production.
    Seed(ops::SeedArgs),
    /// Create the first ADMIN; the password comes from BOOTSTRAP_ADMIN_PASSWORD or standard input.
    BootstrapAdmin(ops::BootstrapArgs),
    /// Apply a service's migrations to its database.
    Migrate(ops::MigrateArgs),
    /// Dead-letter queue tools.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Bring over the databases of the system payplane replaces (import.md); exit 3 when rows
    /// were skipped, 4 when the target holds other data and --merge was not given.
    Import(import_cmd::ImportArgs),
    /// Print what the operator would create, change or delete for a Platform file against the
    /// current cluster, changing nothing; exit 0 no changes, 2 changes, 1 error.
    #[command(long_about = payplane_cli::plan::LONG_ABOUT)]
    Plan(payplane_cli::plan::PlanArgs),
    /// Benchmarks that print a one-line summary last.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Seed(args) => ops::seed(args).await,
        Command::BootstrapAdmin(args) => ops::bootstrap_admin(args).await,
        Command::Migrate(args) => ops::migrate(args).await,
        Command::Dlq(cmd) => dlq::run(cmd).await,
        Command::Import(args) => import_cmd::run(args).await,
        Command::Plan(args) => std::process::exit(payplane_cli::plan::run(args).await),
        Command::Bench(cmd) => bench::run(cmd).await,
    }
}
