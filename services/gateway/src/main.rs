//! `payplane-gateway`: runs the API gateway.

use anyhow::Context;
use payplane_gateway::{Application, Config};
use payplane_kit::config::Env;

/// mimalloc instead of glibc malloc: malloc/free were a fifth of the instructions of a proxied
/// request; see the README's gateway section for the measured difference.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = Config::from_env(&Env::from_process())?;
    let rt = payplane_gateway::app::main_runtime(config.workers, config.tls.is_some())?;
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
