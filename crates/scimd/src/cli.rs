//! The management commands: `scimd tenant …`, `scimd token …`, `scimd admin-token …`,
//! `scimd stream …`.
//!
//! Their output is an interface: scripts parse it. Values a script wants come on lines of
//! their own (`SCIM base URL: …`, `Bearer token: …`), tables have a header line and one row
//! per item with columns separated by two or more spaces, and messages for people go to
//! stderr.

use crate::config::Config;
use crate::events::Events;
use crate::server::{ensure_tenant, open_store, tenant_urls};
use anyhow::{Result, bail};
use scimd_admin::ops::{Directory, OpError};
use scimd_core::streams::{Alg, Delivery, Format};
use scimd_core::tenants::TenantState;
use scimd_core::tokens::TokenInfo;
use scimd_events::manage::{Start, StreamError, StreamRequest};

/// `scimd tenant …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TenantAction {
    /// Create a tenant and print its SCIM base URL and first token (shown once).
    Create {
        /// 1 to 63 lower-case letters, digits and '-': the tenant's URL is /t/SLUG/scim/v2.
        slug: String,
        /// A display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants with their counts and last SCIM request.
    List,
    /// Refuse the tenant's tokens until it is enabled again; its data stays.
    Disable { slug: String },
    /// Accept the tenant's tokens again.
    Enable { slug: String },
    /// Erase the tenant: its users, groups, tokens and settings.
    Delete {
        slug: String,
        /// Confirms the erasure (it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
}

/// `scimd token …`: a tenant's SCIM tokens.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenAction {
    /// Create a token and print its secret (shown once; only its hash is stored).
    Create {
        /// The tenant (default: the configured `tenant`, 'default').
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value = "api")]
        name: String,
        /// A lifetime such as 90d, 12h, 2w or 30m; without it the token does not expire.
        #[arg(long, value_name = "LIFETIME")]
        expires_in: Option<String>,
    },
    /// List a tenant's tokens (never their secrets), with when each was last used.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by id; every replica refuses it within a second.
    Revoke {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `scimd admin-token …`: tokens for the admin API.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminTokenAction {
    /// Create an admin token and print its secret (shown once).
    Create {
        #[arg(long, default_value = "admin")]
        name: String,
        #[arg(long, value_name = "LIFETIME")]
        expires_in: Option<String>,
    },
    /// List admin tokens.
    List,
    /// Revoke an admin token by id.
    Revoke { id: String },
}

/// `scimd stream …`: a tenant's event streams.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum StreamAction {
    /// Create a stream and print its id, and its secret and poll token (shown once).
    Create {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value = "events")]
        name: String,
        /// Push the events to this URL (RFC 8935); without it, the receiver polls (RFC 8936).
        #[arg(long, value_name = "URL")]
        push: Option<String>,
        /// The Authorization header value the push receiver wants, e.g. "Bearer …".
        #[arg(long)]
        authorization: Option<String>,
        /// The SETs' aud (default: the receiver's URL, or the poll URL).
        #[arg(long)]
        audience: Option<String>,
        /// `full` (the data) or `notice` (what changed, not the values).
        #[arg(long, default_value = "full")]
        format: String,
        /// Event types wanted, e.g. `create,deactivate` (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// HS256 (the stream's own secret) or ES256 (the server's keys, /events/jwks.json).
        #[arg(long, default_value = "HS256")]
        alg: String,
        /// `now`, `beginning`, or a sequence number to start after.
        #[arg(long, default_value = "now")]
        from: String,
    },
    /// List a tenant's streams with their delivery state.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Stop delivering; the stream keeps its place.
    Pause {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Deliver again from where the stream stopped (also a failing one).
    Resume {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Deliver again from `--from` (`beginning`, `now` or a sequence number).
    Replay {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        from: String,
    },
    /// Give an HS256 stream a new secret and print it (shown once).
    RotateSecret {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Delete a stream.
    Delete {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// The stores, on a database that has its first tenant (as `scimd serve` would make it), so
/// that `scimd token create` works before the first start, as it always has.
async fn directory(config: &Config) -> Result<Directory> {
    let backend = open_store(config).await?;
    ensure_tenant(config, &backend).await?;
    let urls = tenant_urls(config, None).0;
    Ok(Directory { tenants: backend.tenants, tokens: backend.tokens, urls })
}

/// Turns an operation's failure into the message a person reads.
fn fail(e: OpError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn tenant(config: &Config, action: TenantAction) -> Result<()> {
    let dir = directory(config).await?;
    match action {
        TenantAction::Create { slug, name } => {
            let created = dir.create_tenant(&slug, name.as_deref(), Default::default()).await.map_err(fail)?;
            eprintln!("created tenant '{}'; the token is shown once, only its hash is stored", created.tenant.slug);
            println!("SCIM base URL: {}", created.scim_base_url);
            println!("Bearer token: {}", created.token.secret);
        }
        TenantAction::List => {
            let mut rows = vec![row(["SLUG", "NAME", "STATE", "USERS", "GROUPS", "LAST REQUEST"])];
            for t in dir.tenants().await.map_err(fail)? {
                let (_, stats) = dir.stats(&t.slug).await.map_err(fail)?;
                rows.push(row([
                    &t.slug,
                    &t.name,
                    t.state.as_str(),
                    &stats.users.to_string(),
                    &stats.groups.to_string(),
                    t.last_request.as_deref().unwrap_or("never"),
                ]));
            }
            print_table(&rows);
        }
        TenantAction::Disable { slug } => {
            dir.update_tenant(&slug, None, Some(TenantState::Disabled), None).await.map_err(fail)?;
            println!("disabled tenant '{slug}'");
        }
        TenantAction::Enable { slug } => {
            dir.update_tenant(&slug, None, Some(TenantState::Active), None).await.map_err(fail)?;
            println!("enabled tenant '{slug}'");
        }
        TenantAction::Delete { slug, yes } => {
            if !yes {
                bail!("deleting tenant '{slug}' erases all its users, groups and tokens; add --yes to confirm");
            }
            dir.delete_tenant(&slug).await.map_err(fail)?;
            println!("deleted tenant '{slug}'");
        }
    }
    Ok(())
}

pub async fn token(config: &Config, action: TokenAction) -> Result<()> {
    let dir = directory(config).await?;
    let or_default = |t: Option<String>| t.unwrap_or_else(|| config.tenant.clone());
    match action {
        TokenAction::Create { tenant, name, expires_in } => {
            let tenant = or_default(tenant);
            let t = dir.create_token(&tenant, &name, expires_in.as_deref()).await.map_err(fail)?;
            eprintln!("created token {} ({}) for tenant '{tenant}'; the secret is shown once:", t.info.id, t.info.name);
            println!("{}", t.secret);
        }
        TokenAction::List { tenant } => print_tokens(&dir.tokens(&or_default(tenant)).await.map_err(fail)?),
        TokenAction::Revoke { id, tenant } => {
            dir.revoke_token(&or_default(tenant), &id).await.map_err(fail)?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}

pub async fn admin_token(config: &Config, action: AdminTokenAction) -> Result<()> {
    let dir = directory(config).await?;
    match action {
        AdminTokenAction::Create { name, expires_in } => {
            let t = dir.create_admin_token(&name, expires_in.as_deref()).await.map_err(fail)?;
            eprintln!("created admin token {} ({}); the secret is shown once:", t.info.id, t.info.name);
            println!("{}", t.secret);
        }
        AdminTokenAction::List => print_tokens(&dir.admin_tokens().await.map_err(fail)?),
        AdminTokenAction::Revoke { id } => {
            dir.revoke_admin_token(&id).await.map_err(fail)?;
            println!("revoked admin token {id}");
        }
    }
    Ok(())
}

pub async fn stream(config: &Config, action: StreamAction) -> Result<()> {
    let backend = open_store(config).await?;
    ensure_tenant(config, &backend).await?;
    let streams = Events::new(config, &backend, &tenant_urls(config, None)).streams();
    let or_default = |t: Option<String>| t.unwrap_or_else(|| config.tenant.clone());
    let fail = |e: StreamError| anyhow::anyhow!("{e}");
    let start = |text: &str| {
        Start::parse(text).ok_or_else(|| anyhow::anyhow!("--from is now, beginning or a sequence number, not '{text}'"))
    };
    match action {
        StreamAction::Create { tenant, name, push, authorization, audience, format, events, alg, from } => {
            let tenant = or_default(tenant);
            let req = StreamRequest {
                name: Some(name),
                delivery: Some(if push.is_some() { Delivery::Push } else { Delivery::Poll }),
                endpoint: push,
                authorization,
                audience,
                format: Some(Format::parse(&format).ok_or_else(|| anyhow::anyhow!("--format is full or notice"))?),
                event_types: events,
                alg: Some(Alg::parse(&alg).ok_or_else(|| anyhow::anyhow!("--alg is HS256 or ES256"))?),
                from: start(&from)?,
            };
            let c = streams.create(&tenant, req).await.map_err(fail)?;
            eprintln!("created stream '{}' for tenant '{tenant}'; secrets are shown once", c.stream.name);
            println!("Stream id: {}", c.stream.id);
            if let Some(secret) = &c.secret {
                println!("Signing secret: {secret}");
            }
            if let Some(token) = &c.poll_token {
                println!("Poll URL: {}", streams.poll_url(&c.stream.id));
                println!("Poll token: {token}");
            }
        }
        StreamAction::List { tenant } => {
            let mut rows = vec![row(["ID", "NAME", "DELIVERY", "STATE", "CURSOR", "BACKLOG", "LAST ERROR"])];
            for s in streams.list(&or_default(tenant)).await.map_err(fail)? {
                let backlog = streams.backlog(&s).await.map_err(fail)?;
                rows.push(row([
                    &s.id,
                    &s.name,
                    s.delivery.as_str(),
                    s.state.as_str(),
                    &s.cursor.to_string(),
                    &backlog.to_string(),
                    s.delivery_state.last_error.as_deref().unwrap_or("-"),
                ]));
            }
            print_table(&rows);
        }
        StreamAction::Pause { id, tenant } => {
            streams.pause(&or_default(tenant), &id).await.map_err(fail)?;
            println!("paused stream {id}");
        }
        StreamAction::Resume { id, tenant } => {
            streams.resume(&or_default(tenant), &id).await.map_err(fail)?;
            println!("resumed stream {id}");
        }
        StreamAction::Replay { id, tenant, from } => {
            let s = streams.replay(&or_default(tenant), &id, start(&from)?).await.map_err(fail)?;
            println!("stream {id} delivers again after sequence number {}", s.cursor);
        }
        StreamAction::RotateSecret { id, tenant } => {
            let secret = streams.rotate_secret(&or_default(tenant), &id).await.map_err(fail)?;
            eprintln!("stream {id} has a new secret; it is shown once:");
            println!("{secret}");
        }
        StreamAction::Delete { id, tenant } => {
            streams.delete(&or_default(tenant), &id).await.map_err(fail)?;
            println!("deleted stream {id}");
        }
    }
    Ok(())
}

fn print_tokens(tokens: &[TokenInfo]) {
    let mut rows = vec![row(["ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "STATUS"])];
    for t in tokens {
        let status = t.revoked.as_ref().map(|r| format!("revoked {r}")).unwrap_or_else(|| "active".into());
        rows.push(row([
            &t.id,
            &t.name,
            &t.created,
            t.expires.as_deref().unwrap_or("never"),
            t.last_used.as_deref().unwrap_or("never"),
            &status,
        ]));
    }
    print_table(&rows);
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    // One space between words, so that two spaces always separate columns.
    cells.iter().map(|c| c.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

/// Columns padded to their widest cell, two spaces apart.
fn print_table(rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..columns).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        println!("{}", line.trim_end());
    }
}
