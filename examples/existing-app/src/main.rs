//! `existing-app`: the application, with SCIM mounted at `/scim/v2`.
//!
//! Environment: `APP_LISTEN` (address:port, default 127.0.0.1:3000), `APP_DATABASE_URL`
//! (`sqlite://PATH` or `postgres://…`, default `sqlite://existing-app.db`), `APP_SCIM_TOKEN`
//! (the bearer token the identity provider sends; required).

use anyhow::{Context, Result};

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let listen = std::env::var("APP_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let database_url = std::env::var("APP_DATABASE_URL").unwrap_or_else(|_| "sqlite://existing-app.db".into());
    let token =
        std::env::var("APP_SCIM_TOKEN").context("set APP_SCIM_TOKEN to the token your identity provider will send")?;
    let (router, _db) = existing_app::app(&database_url, &token).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, "existing-app serving; SCIM at /scim/v2");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
