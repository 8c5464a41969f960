//! `payplane import`: the command line of the import (import.md §2); the work is in the
//! library's `import` module.

use std::{io::IsTerminal, path::PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use payplane_cli::import::{self, Options, Sources, Targets, progress};
use payplane_kit::config::Env;

use crate::ops::database_url;

#[derive(Args)]
pub struct ImportArgs {
    /// The earlier system's combined database (instead of the four below).
    #[arg(long, conflicts_with_all = ["auth_db", "payments_db", "admin_db", "profile_db"])]
    source_db: Option<String>,
    #[arg(long, requires_all = ["payments_db", "admin_db", "profile_db"])]
    auth_db: Option<String>,
    #[arg(long)]
    payments_db: Option<String>,
    #[arg(long)]
    admin_db: Option<String>,
    #[arg(long)]
    profile_db: Option<String>,
    /// Read and check everything, print the report, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import even though the payplane databases hold data from elsewhere.
    #[arg(long)]
    merge: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Exit code when the target holds foreign data and `--merge` was not given.
const EXIT_REFUSED: i32 = 4;

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let sources = match (args.source_db, args.auth_db) {
        (Some(url), _) => Sources::combined(&url),
        (None, Some(auth)) => Sources {
            auth,
            payments: args.payments_db.context("--payments-db")?,
            admin: args.admin_db.context("--admin-db")?,
            profile: args.profile_db.context("--profile-db")?,
        },
        (None, None) => bail!(
            "name the source: --source-db URL, or --auth-db, --payments-db, --admin-db and --profile-db"
        ),
    };
    let env = Env::from_process();
    let targets = Targets {
        auth: database_url(&env, "auth"),
        payments: database_url(&env, "payments"),
        admin: database_url(&env, "admin"),
        profile: database_url(&env, "profile"),
    };
    let options = Options {
        dry_run: args.dry_run,
        merge: args.merge,
    };
    let terminal = std::io::stderr().is_terminal();
    let bars = progress::Bars::default();
    let lines = progress::JsonLines;
    let shown: &dyn progress::Progress = if terminal { &bars } else { &lines };
    let report = match import::run(&sources, &targets, options, shown).await {
        Ok(r) => r,
        Err(e @ import::ImportError::ForeignData { .. }) => {
            eprintln!("payplane import: {e}");
            std::process::exit(EXIT_REFUSED);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if terminal {
        eprintln!("{}", report.summary());
    } else {
        println!("{}", serde_json::to_string(&report)?);
    }
    let code = report.exit_code();
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
