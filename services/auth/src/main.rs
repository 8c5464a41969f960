//! `payplane-auth`: runs the auth service, or applies its migrations (`migrate`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    payplane_kit::service::main::<payplane_auth::Application>().await?;
    Ok(())
}
