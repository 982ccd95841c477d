//! Wiring: the store, the engine, the HTTP stack, first-start token, graceful shutdown.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use scimd_axum::auth::BearerTokens;
use scimd_axum::{ScimConfig, ScimService};
use scimd_core::tokens::{TokenStore, create_token};
use scimd_core::{Engine, Settings, Store};
use scimd_proto::value::format_datetime;
use scimd_proto::{FilterLimits, Registry};
use scimd_sql::{Durability, PostgresSettings, PostgresStore, SqliteSettings, SqliteStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

/// `scimd token …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenAction {
    /// Create a token and print its secret (shown once; only its hash is stored).
    Create {
        #[arg(long, default_value = "api")]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; it stops working on the next request.
    Revoke { id: String },
}

/// The store behind both contracts.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<dyn TokenStore>,
}

/// A database URL with any password hidden, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme && url[scheme + 3..at].contains(':') => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

pub async fn open_store(config: &Config) -> Result<Backend> {
    let url = config.database_url.as_str();
    if url.starts_with("sqlite:") {
        let settings = SqliteSettings {
            durability: if config.sqlite_synchronous == "full" { Durability::Full } else { Durability::Normal },
            readers: config.sqlite_readers,
            ..SqliteSettings::default()
        };
        let store =
            Arc::new(SqliteStore::open(url, &settings).await.with_context(|| format!("opening {}", redact_url(url)))?);
        return Ok(Backend { store: store.clone(), tokens: store });
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let settings = PostgresSettings {
            max_connections: config.pg_max_connections,
            min_connections: config.pg_min_connections,
            acquire_timeout: Duration::from_secs(config.pg_acquire_timeout_secs),
            statement_timeout: Duration::from_secs(config.pg_statement_timeout_secs),
            schema: config.pg_schema.clone(),
            health_check: Duration::from_millis(config.pg_health_check_ms),
        };
        let store = Arc::new(
            PostgresStore::open(url, &settings).await.with_context(|| format!("opening {}", redact_url(url)))?,
        );
        return Ok(Backend { store: store.clone(), tokens: store });
    }
    bail!("unsupported database URL '{}': use sqlite://PATH or postgres://…", redact_url(url))
}

/// `scimd backup FILE`.
pub async fn backup(config: &Config, file: &std::path::Path) -> Result<()> {
    let url = config.database_url.as_str();
    if !url.starts_with("sqlite:") {
        bail!("scimd backup copies SQLite databases; back PostgreSQL up with pg_dump (see the README)");
    }
    let store = SqliteStore::open(url, &SqliteSettings::default())
        .await
        .with_context(|| format!("opening {}", redact_url(url)))?;
    store.backup(file).await.with_context(|| format!("writing {}", file.display()))?;
    println!("wrote a copy of {} to {}", redact_url(url), file.display());
    Ok(())
}

fn now() -> String {
    format_datetime(time::OffsetDateTime::now_utc())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    scimd_axum::panic::log_panics();
}

pub async fn serve(config: Config) -> Result<()> {
    init_logging(&config);
    let backend = open_store(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local = listener.local_addr()?;
    let public = config
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}{}", config.path_prefix.trim_end_matches('/')));
    first_start_token(&config, backend.tokens.as_ref(), &public).await?;
    let app = build_app(&config, &backend)?;
    tracing::info!(listen = %local, scim = %public, database = %redact_url(&config.database_url), "scimd serving");
    crate::http::serve(listener, app, config.http(), shutdown_signal()).await?;
    tracing::info!("scimd stopped");
    Ok(())
}

/// The whole HTTP application: SCIM under the configured prefix, health endpoints, and
/// the request-id, tracing and header-redaction layers.
pub fn build_app(config: &Config, backend: &Backend) -> Result<Router> {
    let prefix = config.path_prefix.trim_end_matches('/').to_string();
    let settings = Settings {
        delete_policy: config.delete_policy()?,
        default_page_size: config.default_page_size,
        max_page_size: config.max_page_size,
        filter_limits: FilterLimits { max_len: config.max_filter_length, ..FilterLimits::default() },
    };
    let engine = Arc::new(Engine::new(Arc::new(Registry::standard()), backend.store.clone(), settings));
    let scim = ScimService::new(
        engine,
        Arc::new(BearerTokens::new(backend.tokens.clone())),
        ScimConfig {
            base_url: config.base_url.clone(),
            max_body_bytes: config.max_body_bytes,
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            documentation_uri: config.documentation_uri.clone(),
            rate_limit: (config.rate_limit_per_second > 0.0).then_some(scimd_axum::limit::RateLimit {
                per_second: config.rate_limit_per_second,
                burst: config.rate_limit_burst,
            }),
        },
    );
    let store = backend.store.clone();
    let request_id = HeaderName::from_static("x-request-id");
    Ok(Router::new()
        .nest(&prefix, scim.router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || ready(store.clone())))
        .fallback(|| async {
            scimd_axum::error::error_response(&scimd_proto::ScimError::not_found("no such endpoint"))
        })
        // One stack, outermost first (see scimd-axum: one layer wraps each route once).
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
                .layer(SetRequestIdLayer::new(request_id.clone(), SequentialIds::new()))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(request_id)),
        ))
}

/// How long `/readyz` waits for the store before answering "not ready".
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// `/readyz`: 200 when the database answers and writes work, else 503 saying why, within
/// `READY_TIMEOUT` whatever the database does.
async fn ready(store: Arc<dyn Store>) -> axum::response::Response {
    let (what, why) = match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready").into_response(),
        Ok(Err(scimd_core::StoreError::Unavailable(outage, why))) => (outage.to_string(), why),
        Ok(Err(e)) => ("database error".to_string(), e.to_string()),
        Err(_) => ("database unreachable".to_string(), format!("no answer within {READY_TIMEOUT:?}")),
    };
    // The cause is logged; the answer, often public, names only the kind of trouble.
    tracing::warn!(cause = %why, "not ready: {what}");
    (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {what}")).into_response()
}

/// Request ids for requests that bring none: a random prefix per process and a counter,
/// unique across replicas and restarts without a random number per request.
#[derive(Clone)]
struct SequentialIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl SequentialIds {
    fn new() -> SequentialIds {
        let prefix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        SequentialIds { prefix: prefix.into(), next: Arc::new(AtomicU64::new(1)) }
    }
}

impl MakeRequestId for SequentialIds {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n:x}", self.prefix)).ok().map(RequestId::new)
    }
}

/// On a database with no token yet, registers `SCIMD_BOOTSTRAP_TOKEN` or a new random
/// token, and prints it once with the URL to give the identity provider.
async fn first_start_token(config: &Config, tokens: &dyn TokenStore, public: &str) -> Result<()> {
    if !tokens.list_tokens(&config.tenant).await?.is_empty() {
        return Ok(());
    }
    let bootstrap = std::env::var("SCIMD_BOOTSTRAP_TOKEN").ok().filter(|t| !t.trim().is_empty());
    let from_env = bootstrap.is_some();
    let token =
        create_token(tokens, &config.tenant, if from_env { "bootstrap" } else { "initial" }, bootstrap, &now()).await?;
    if from_env {
        eprintln!("scimd: registered SCIMD_BOOTSTRAP_TOKEN as token {} (only its hash is stored)", token.info.id);
    } else {
        println!();
        println!("  scimd created an API token. It is shown once; only its hash is stored.");
        println!();
        println!("    SCIM base URL:  {public}");
        println!("    Bearer token:   {}", token.secret);
        println!();
        println!("  Give both to your identity provider (Entra ID: Tenant URL and Secret Token;");
        println!("  Okta: SCIM connector base URL and API token). Manage tokens with `scimd token`.");
        println!();
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: no new connections; finishing requests in progress");
}

pub async fn token_command(config: &Config, action: TokenAction) -> Result<()> {
    let backend = open_store(config).await?;
    let tokens = backend.tokens.as_ref();
    match action {
        TokenAction::Create { name } => {
            let t = create_token(tokens, &config.tenant, &name, None, &now()).await?;
            eprintln!("created token {} ({}); the secret is shown once:", t.info.id, t.info.name);
            println!("{}", t.secret);
        }
        TokenAction::List => {
            println!("{:<14} {:<20} {:<28} STATUS", "ID", "NAME", "CREATED");
            for t in tokens.list_tokens(&config.tenant).await? {
                let status = t.revoked.map(|r| format!("revoked {r}")).unwrap_or_else(|| "active".into());
                println!("{:<14} {:<20} {:<28} {status}", t.id, t.name, t.created);
            }
        }
        TokenAction::Revoke { id } => {
            if tokens.revoke_token(&config.tenant, &id, &now()).await? {
                println!("revoked token {id}");
            } else {
                bail!("no active token with id {id}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://scimd:s3cret@db:5432/scimd"), "postgres://scimd:***@db:5432/scimd");
        assert_eq!(redact_url("postgres://scimd@db/scimd"), "postgres://scimd@db/scimd");
        assert_eq!(redact_url("sqlite://scimd.db"), "sqlite://scimd.db");
    }
}
