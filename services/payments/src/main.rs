//! `payplane-payments`: runs the payments service, or applies its migrations (`migrate`).

use anyhow::Context;
use payplane_kit::config::Env;
use payplane_payments::{Application, Config, MIGRATOR};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _telemetry = payplane_kit::telemetry::init_service("payments")?;
    let config = Config::from_env(&Env::from_process())?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        let pool = payplane_db::connect(&config.database_url, 1).await?;
        payplane_db::migrate(&pool, &MIGRATOR).await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let app = Application::build(config)
        .await
        .context("starting the payments service")?;
    tracing::info!(addr = ?app.local_addr(), "payments service listening");
    app.run_until_stopped().await?;
    Ok(())
}
