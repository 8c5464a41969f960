//! `payplane-console`: runs the web console (pages over the public API, through the gateway).

use anyhow::Context;
use payplane_console::{Application, Config};
use payplane_kit::config::Env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Kept until exit: dropping it flushes the last exported spans.
    let _telemetry = payplane_kit::telemetry::init_service("console")?;
    let config = Config::from_env(&Env::from_process())?;
    let app = Application::build(config)
        .await
        .context("starting the console")?;
    tracing::info!(addr = ?app.local_addr(), "console listening");
    app.run_until_stopped().await?;
    Ok(())
}
