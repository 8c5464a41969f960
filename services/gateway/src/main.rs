//! `payplane-gateway`: runs the API gateway.

use anyhow::Context;
use payplane_gateway::{Application, Config};
use payplane_kit::config::Env;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = Config::from_env(&Env::from_process())?;
    // With GATEWAY_WORKERS > 1 every worker is a single-threaded loop (nginx's model): this
    // thread is worker 0 (plus the background tasks), the others get their own threads.
    let rt = if config.workers > 1 && config.tls.is_none() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let _telemetry = payplane_kit::telemetry::init_service("gateway")?;
        let app = Application::build(config)
            .await
            .context("starting the gateway")?;
        tracing::info!(addr = ?app.local_addr(), "gateway listening");
        app.run_until_stopped().await?;
        Ok(())
    })
}
