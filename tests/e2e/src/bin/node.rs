//! `payplane-e2e-node <service>`: runs one service from the environment (api.md §11), exactly
//! as its own binary does, so the end-to-end suite can start, kill and restart each one.

use anyhow::{Context, bail};
use payplane_kit::config::{Env, ServiceConfig as _};
use payplane_kit::service::Service as _;

macro_rules! run_service {
    ($krate:ident, $name:literal) => {{
        let config = $krate::Config::from_env(&Env::from_process())?;
        let app = $krate::Application::build(config)
            .await
            .context(concat!("starting ", $name))?;
        app.run_until_stopped().await?;
    }};
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Some(service) = std::env::args().nth(1) else {
        bail!("usage: payplane-e2e-node auth|payments|admin|profile|gateway|console");
    };
    let _telemetry = payplane_kit::telemetry::init_service(&service)?;
    match service.as_str() {
        "auth" => run_service!(payplane_auth, "auth"),
        "payments" => run_service!(payplane_payments, "payments"),
        "admin" => run_service!(payplane_admin, "admin"),
        "profile" => run_service!(payplane_profile, "profile"),
        "gateway" => run_service!(payplane_gateway, "gateway"),
        "console" => run_service!(payplane_console, "console"),
        other => bail!("unknown service {other:?}"),
    }
    Ok(())
}
