//! `scimd`: the standalone SCIM 2.0 server.

use anyhow::Result;

// Many short-lived allocations per request (JSON documents): mimalloc serves them faster
// than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use scimd::{cli, config, server};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "scimd", version, about = "A SCIM 2.0 service provider")]
struct Cli {
    /// Configuration file (TOML). Defaults to ./scimd.toml when it exists.
    #[arg(long, global = true, env = "SCIMD_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… (overrides the file and SCIMD_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address:port to listen on (overrides the file and SCIMD_LISTEN).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Write a consistent copy of a SQLite database to a new file, while scimd runs.
    /// (On PostgreSQL, use pg_dump.)
    Backup {
        /// The file to write (must not exist).
        file: PathBuf,
    },
    /// Manage tenants: one per customer whose identity provider pushes users and groups.
    Tenant {
        #[command(subcommand)]
        action: cli::TenantAction,
    },
    /// Manage a tenant's SCIM tokens.
    Token {
        #[command(subcommand)]
        action: cli::TokenAction,
    },
    /// Manage the admin API's tokens.
    AdminToken {
        #[command(subcommand)]
        action: cli::AdminTokenAction,
    },
    /// Manage a tenant's change-event streams (push to a URL, or polled by a receiver).
    Stream {
        #[command(subcommand)]
        action: cli::StreamAction,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let file = cli.config.clone().or_else(|| {
        let default = PathBuf::from("scimd.toml");
        default.exists().then_some(default)
    });
    let mut config = config::Config::load(file.as_deref())?;
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { listen } => {
                if let Some(l) = listen {
                    config.listen = l;
                }
                server::serve(config).await
            }
            Command::Migrate => {
                server::open_store(&config).await?;
                println!("migrations applied to {}", server::redact_url(&config.database_url));
                Ok(())
            }
            Command::Backup { file } => server::backup(&config, &file).await,
            Command::Tenant { action } => cli::tenant(&config, action).await,
            Command::Token { action } => cli::token(&config, action).await,
            Command::AdminToken { action } => cli::admin_token(&config, action).await,
            Command::Stream { action } => cli::stream(&config, action).await,
        }
    })
}
