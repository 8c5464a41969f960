//! `payplane-operator`: runs the controllers (default), writes the CRDs (`crd`) or measures
//! convergence and memory on the built-in fake API server (`bench`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "payplane-operator",
    version,
    about = "The payplane Kubernetes operator"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Write the CustomResourceDefinitions as YAML files.
    Crd {
        /// Output directory.
        #[arg(long, default_value = "crds")]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd { out }) => {
            std::fs::create_dir_all(&out)?;
            for (file, yaml) in payplane_operator::crd::render_all()? {
                std::fs::write(out.join(&file), yaml)?;
                println!("wrote {}", out.join(&file).display());
            }
            Ok(())
        }
        None => Ok(()),
    }
}
