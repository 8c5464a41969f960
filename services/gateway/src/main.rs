//! `payplane-gateway`: runs the API gateway.

use payplane_gateway::Application;
use payplane_kit::{config::Env, service::Service as _};

/// mimalloc instead of glibc malloc: malloc/free were a fifth of the instructions of a proxied
/// request; see the README's gateway section for the measured difference.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Read first: the worker count sizes the runtime the gateway runs on.
    let config = Application::config(&Env::from_process())?;
    let rt = payplane_gateway::app::main_runtime(config.workers, config.tls.is_some())?;
    rt.block_on(payplane_kit::service::main_with::<Application>(config))?;
    Ok(())
}
