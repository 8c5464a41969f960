//! `payplane-console`: runs the web console (pages over the public API, through the gateway).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    payplane_kit::service::main::<payplane_console::Application>().await?;
    Ok(())
}
