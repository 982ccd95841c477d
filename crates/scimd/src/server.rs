//! Wiring: the store, the engine, the HTTP stack, first-start token, graceful shutdown.

use crate::config::Config;
use crate::events::Events;
use anyhow::{Context, Result, bail};
use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use scimd_admin::AdminService;
use scimd_admin::ops::{Directory, TenantUrls};
use scimd_axum::auth::BearerTokens;
use scimd_axum::{ScimConfig, ScimService};
use scimd_console::{Console, ConsoleParts};
use scimd_core::activity::ActivityLog;
use scimd_core::cursor::CursorKey;
use scimd_core::events::EventLog;
use scimd_core::schema_change::SchemaStore;
use scimd_core::streams::{KeyStore, StreamStore};
use scimd_core::tenants::{FoundData, Tenant, TenantState, TenantStore};
use scimd_core::token_cache::{CachedTenants, CachedTokens, TOKEN_CACHE_TTL, TokenCache};
use scimd_core::tokens::{Scope, TokenRequest, TokenStore, create_token};
use scimd_core::{Engine, Settings, Store, StoreError};
use scimd_events::keys::KeyRing;
use scimd_proto::value::now;
use scimd_proto::{FilterLimits, Registry};
use scimd_sql::{Durability, PostgresSettings, PostgresStore, SqliteSettings, SqliteStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

/// The store behind the contracts, and what is woken when it changes.
#[derive(Clone)]
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<dyn TokenStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub log: Arc<dyn EventLog>,
    pub streams: Arc<dyn StreamStore>,
    /// The ES256 keys, read once and shared by every part that signs or publishes them.
    pub keys: Arc<KeyRing>,
    /// Woken after every write of this process (the engine's), so events go out at once.
    pub changes: Arc<Notify>,
    /// The SCIM endpoints' metrics, counted by every router of this process.
    pub metrics: Arc<scimd_axum::metrics::Metrics>,
    pub activity: Arc<dyn ActivityLog>,
    /// Seals list cursors (RFC 9865); derived from the deployment secret the migrations
    /// made, so that every replica opens the cursors of the others.
    pub cursor_key: CursorKey,
    /// The schemas and resource types served: the built-in ones and the configured ones.
    pub registry: Arc<Registry>,
    pub schema_state: Arc<dyn SchemaStore>,
}

impl Backend {
    /// One SQL store behind every contract.
    fn of<S>(store: Arc<S>) -> Backend
    where
        S: Store + TokenStore + TenantStore + EventLog + StreamStore + KeyStore + ActivityLog + SchemaStore,
    {
        // Token lookups remembered for a moment (`token_cache`): one database round trip
        // less per request.
        let cache = TokenCache::new(TOKEN_CACHE_TTL);
        Backend {
            store: store.clone(),
            tokens: Arc::new(CachedTokens::new(store.clone(), cache.clone())),
            tenants: Arc::new(CachedTenants::new(store.clone(), cache)),
            log: store.clone(),
            streams: store.clone(),
            keys: Arc::new(KeyRing::new(store.clone())),
            activity: store.clone(),
            schema_state: store,
            registry: Arc::new(Registry::standard()),
            changes: Arc::new(Notify::new()),
            metrics: Default::default(),
            cursor_key: CursorKey::random(),
        }
    }
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

/// `open_store`, waiting up to `pg_start_wait_secs` for a PostgreSQL server that cannot be
/// reached yet: replicas started with (or before) their database, or while it restarts,
/// come up when it does instead of exiting. Each failure is logged with its cause; pauses
/// grow from a quarter second to five.
async fn open_store_when_reachable(config: &Config) -> Result<Backend> {
    let waits = crate::config::is_postgres_url(&config.database_url) && config.pg_start_wait_secs > 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.pg_start_wait_secs);
    let mut pause = Duration::from_millis(250);
    loop {
        let e = match open_store(config).await {
            Err(e) if waits => e,
            done => return done,
        };
        let Some(cause @ StoreError::Unavailable(..)) = e.downcast_ref::<StoreError>() else { return Err(e) };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            let secs = config.pg_start_wait_secs;
            return Err(e.context(format!("PostgreSQL could not be reached for {secs} s (pg_start_wait_secs)")));
        }
        tracing::warn!(cause = %cause, retry_in_ms = pause.as_millis() as u64, "waiting for PostgreSQL");
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

pub async fn open_store(config: &Config) -> Result<Backend> {
    let registry = crate::schemas::registry(config)?;
    let mut backend = open_database(config).await?;
    let now = scimd_proto::value::now();
    scimd_core::schema_change::check(&*backend.schema_state, &registry, config.force_schema_change, &now).await?;
    backend.registry = Arc::new(registry);
    let secret = backend.keys.derived_secret("cursor").await.context("reading the deployment secret")?;
    backend.cursor_key = CursorKey(secret);
    Ok(backend)
}

async fn open_database(config: &Config) -> Result<Backend> {
    let url = config.database_url.as_str();
    if url.starts_with("sqlite:") {
        let settings = SqliteSettings {
            durability: if config.sqlite_synchronous == "full" { Durability::Full } else { Durability::Normal },
            readers: config.sqlite_readers,
            ..SqliteSettings::default()
        };
        let store =
            Arc::new(SqliteStore::open(url, &settings).await.with_context(|| format!("opening {}", redact_url(url)))?);
        return Ok(Backend::of(store));
    }
    if crate::config::is_postgres_url(url) {
        let settings = PostgresSettings {
            max_connections: config.pg_max_connections,
            min_connections: config.pg_min_connections,
            acquire_timeout: Duration::from_secs(config.pg_acquire_timeout_secs),
            statement_timeout: Duration::from_secs(config.pg_statement_timeout_secs),
            lock_timeout: Duration::from_secs(config.pg_lock_timeout_secs),
            idle_in_transaction_timeout: Duration::from_secs(config.pg_idle_in_transaction_timeout_secs),
            schema: config.pg_schema.clone(),
            health_check: Duration::from_millis(config.pg_health_check_ms),
            read_urls: config.database_read_url.clone(),
            max_replica_lag: Duration::from_millis(config.max_replica_lag_ms),
        };
        let store = Arc::new(
            PostgresStore::open(url, &settings).await.with_context(|| format!("opening {}", redact_url(url)))?,
        );
        return Ok(Backend::of(store));
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
    let backend = open_store_when_reachable(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local = listener.local_addr()?;
    let admin_listener = match config.admin_listen.as_deref().filter(|_| config.admin_api) {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr} (admin)"))?)
        }
        None => None,
    };
    let urls = tenant_urls(&config, Some(local));
    let console_url = match admin_listener.as_ref().map(|l| l.local_addr()).transpose()? {
        Some(addr) => format!("http://{}{}", host_of(addr), scimd_console::ROOT),
        None => format!("{}{}", urls.0.root, scimd_console::ROOT),
    };
    first_start(&config, &backend, &urls, &console_url).await?;
    let app = build_app(&config, &backend, local)?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut workers = crate::upkeep::spawn(&config, &backend, &stopping);
    workers.push(Events::new(&config, &backend, &urls).spawn(&config, stopping.clone()));
    let admin = match admin_listener {
        Some(admin_listener) => {
            let addr = admin_listener.local_addr()?;
            tracing::info!(listen = %addr, "admin API and metrics on their own listener");
            let admin = common_layers(admin_app(&config, &backend, &urls, engine(&config, &backend)?));
            Some(tokio::spawn(crate::http::serve(admin_listener, admin, config.http(), stopped(stopping.clone()))))
        }
        None => None,
    };
    tracing::info!(listen = %local, scim = %urls.scim_root(), database = %redact_url(&config.database_url), "scimd serving");
    crate::http::serve(listener, app, config.http(), stopped(stopping)).await?;
    if let Some(admin) = admin {
        admin.await??;
    }
    for worker in workers {
        let _ = worker.await;
    }
    tracing::info!("scimd stopped");
    Ok(())
}

/// Where the SCIM endpoints are, as the world reaches them: the configured `base_url`
/// (with `path_prefix` at its end), else the address served (`local`, or `listen` for the
/// commands that serve nothing), with a wildcard address read as this host.
pub fn tenant_urls(config: &Config, local: Option<SocketAddr>) -> ScimUrls {
    let prefix = config.path_prefix.trim_end_matches('/').to_string();
    let root = match &config.base_url {
        Some(base) => {
            let base = base.trim_end_matches('/');
            base.strip_suffix(prefix.as_str()).unwrap_or(base).to_string()
        }
        None => {
            let addr = local.or_else(|| config.listen.parse().ok());
            match addr {
                Some(a) => format!("http://{}", host_of(a)),
                None => format!("http://{}", config.listen),
            }
        }
    };
    ScimUrls(TenantUrls { root, prefix })
}

/// How this host is reached at `a`: a wildcard address is read as this host.
fn host_of(a: SocketAddr) -> String {
    if a.ip().is_unspecified() { format!("localhost:{}", a.port()) } else { a.to_string() }
}

/// The public URLs of the SCIM endpoints: `/scim/v2` (the token's tenant) and
/// `/t/{tenant}/scim/v2`.
#[derive(Debug, Clone)]
pub struct ScimUrls(pub TenantUrls);

impl ScimUrls {
    pub fn scim_root(&self) -> String {
        format!("{}{}", self.0.root, self.0.prefix)
    }
    pub fn tenant(&self, slug: &str) -> String {
        self.0.scim_base(slug)
    }
}

/// The whole HTTP application: SCIM under `path_prefix` and under `/t/{tenant}` +
/// `path_prefix`, the admin API (unless it is off or has a listener of its own), health
/// endpoints, and the request-id, tracing and header-redaction layers.
pub fn build_app(config: &Config, backend: &Backend, local: SocketAddr) -> Result<Router> {
    let prefix = config.path_prefix.trim_end_matches('/').to_string();
    let engine = engine(config, backend)?;
    let urls = tenant_urls(config, Some(local));
    let events = Events::new(config, backend, &urls);
    let scim = ScimService::new(
        engine.clone(),
        Arc::new(BearerTokens::new(backend.tokens.clone(), backend.tenants.clone())),
        ScimConfig {
            base_url: config.base_url.clone(),
            max_body_bytes: config.max_body_bytes,
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            documentation_uri: config.documentation_uri.clone(),
            rate_limit: (config.rate_limit_per_second > 0.0).then_some(scimd_axum::limit::RateLimit {
                per_second: config.rate_limit_per_second,
                burst: config.rate_limit_burst,
            }),
            event_uris: match config.advertise_security_events {
                true => scimd_events::set::EVENT_URIS.iter().map(|u| u.to_string()).collect(),
                false => Vec::new(),
            },
        },
    )
    .with_metrics(backend.metrics.clone());
    let scim = if config.activity_log {
        scim.with_activity(scimd_axum::activity::ActivityRecorder::spawn(
            backend.activity.clone(),
            backend.metrics.clone(),
        ))
    } else {
        scim
    };
    // A configured base URL holds for `/scim/v2`; under a tenant's URL, its own.
    let tenant_base = config.base_url.as_ref().map(|_| urls.tenant("{tenant}"));
    let store = backend.store.clone();
    let mut app = Router::new()
        .nest(&format!("/t/{{tenant}}{prefix}"), scim.router_at(tenant_base))
        .nest(&prefix, scim.router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || ready(store.clone())))
        .merge(events.endpoints());
    if config.admin_api && config.admin_listen.is_none() {
        app = app.merge(admin_app(config, backend, &urls, engine.clone()));
    }
    let app = app.fallback(|| async {
        scimd_axum::error::error_response(&scimd_proto::ScimError::not_found("no such endpoint"))
    });
    Ok(common_layers(app))
}

/// The SCIM engine on the backend's store: the SCIM endpoints' and the console's.
pub fn engine(config: &Config, backend: &Backend) -> Result<Arc<Engine>> {
    let settings = Settings {
        delete_policy: config.delete_policy()?,
        default_page_size: config.default_page_size,
        max_page_size: config.max_page_size,
        filter_limits: FilterLimits { max_len: config.max_filter_length, ..FilterLimits::default() },
        bulk_max_operations: config.bulk_max_operations,
        cursor_key: backend.cursor_key.clone(),
        cursor_timeout: Duration::from_secs(config.cursor_timeout_secs),
    };
    Ok(Arc::new(
        Engine::new(backend.registry.clone(), backend.store.clone(), settings).with_changes(backend.changes.clone()),
    ))
}

/// The admin API at `/admin/v1`, the metrics, and the console at `/admin` (unless it is off).
pub fn admin_app(config: &Config, backend: &Backend, urls: &ScimUrls, engine: Arc<Engine>) -> Router {
    let dir = Directory { tenants: backend.tenants.clone(), tokens: backend.tokens.clone(), urls: urls.0.clone() };
    let streams = Events::new(config, backend, urls).streams();
    let admin = AdminService::new(dir.clone()).with_events(streams.clone()).with_activity(backend.activity.clone());
    let metrics = crate::metrics::router(backend, &admin.auth());
    let app = Router::new().nest("/admin/v1", admin.router()).merge(metrics);
    if !config.console {
        return app;
    }
    let console = Console::new(ConsoleParts {
        dir,
        engine,
        streams,
        activity: backend.activity.clone(),
        recording: config.activity_log,
        session_lifetime: Duration::from_secs(config.console_session_hours * 3_600),
    });
    app.merge(console.router())
}

/// Request ids, request spans, the redaction of credentials in them, and `Connection: close`
/// on answers that leave a request body unread.
fn common_layers(app: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    // One stack, outermost first (see scimd-axum: one layer wraps each route once).
    app.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
            .layer(SetRequestIdLayer::new(request_id.clone(), SequentialIds::new()))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::new(request_id))
            // Every route's answer says whether the connection survives it (the SCIM
            // routers watch their own for embedders; one watch serves both).
            .layer(axum::middleware::from_fn(scimd_axum::unread::close_if_body_unread)),
    )
}

/// How long `/readyz` waits for the store before answering "not ready".
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// `/readyz`: 200 when the database answers and writes work, else 503 saying why, within
/// `READY_TIMEOUT` whatever the database does.
async fn ready(store: Arc<dyn Store>) -> axum::response::Response {
    let (what, why) = match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready").into_response(),
        Ok(Err(StoreError::Unavailable(outage, why))) => (outage.to_string(), why),
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
        // `<prefix>-<n in hex>`, written without `format!` (every request makes one).
        let mut id = String::with_capacity(self.prefix.len() + 17);
        id.push_str(&self.prefix);
        id.push('-');
        let digits = (u64::BITS - n.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            id.push(char::from(b"0123456789abcdef"[((n >> (i * 4)) & 0xf) as usize]));
        }
        axum::http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// The configured tenant (`tenant`, 'default') on a database without tenants. (A database
/// from before tenants has its tenants already: the migration made them.)
pub async fn ensure_tenant(config: &Config, backend: &Backend) -> Result<()> {
    if backend.tenants.tenant(&config.tenant).await?.is_none() && backend.tenants.tenants().await?.is_empty() {
        let tenant = Tenant {
            slug: config.tenant.clone(),
            name: config.tenant.clone(),
            state: TenantState::Active,
            settings: Default::default(),
            created: now(),
            last_request: None,
        };
        // The data a database holds already, if any, is this tenant's: one written before
        // tenants were data, or loaded with SQL.
        match backend.tenants.create_tenant(&tenant, FoundData::Keep).await {
            // Another replica starting at the same moment made it.
            Ok(()) | Err(scimd_core::StoreError::Uniqueness(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// On a new database: the configured tenant and its first token, `SCIMD_BOOTSTRAP_TOKEN` or
/// a new random one, printed once with the URL to give the identity provider; and, when the
/// console is served, where it is and a first admin token to sign in with. An upgraded
/// database already has its tenants and tokens.
async fn first_start(config: &Config, backend: &Backend, urls: &ScimUrls, console_url: &str) -> Result<()> {
    ensure_tenant(config, backend).await?;
    // A tenant the operator has deleted stays deleted; one with tokens (even revoked ones)
    // has been set up.
    if backend.tenants.tenant(&config.tenant).await?.is_none()
        || !backend.tokens.list_tokens(Scope::Scim, &config.tenant).await?.is_empty()
    {
        return Ok(());
    }
    let bootstrap = std::env::var("SCIMD_BOOTSTRAP_TOKEN").ok().filter(|t| !t.trim().is_empty());
    let from_env = bootstrap.is_some();
    let req = TokenRequest {
        scope: Scope::Scim,
        tenant: &config.tenant,
        name: if from_env { "bootstrap" } else { "initial" },
        secret: bootstrap,
        expires: None,
    };
    let token = create_token(backend.tokens.as_ref(), req, &now()).await?;
    let console = config.admin_api && config.console;
    if from_env {
        eprintln!("scimd: registered SCIMD_BOOTSTRAP_TOKEN as token {} (only its hash is stored)", token.info.id);
        if console {
            eprintln!("scimd: the console is at {console_url}; sign in with a token from `scimd admin-token create`");
        }
        return Ok(());
    }
    // The first admin token, only while there is none: the console needs one to sign in.
    let admin = match console && backend.tokens.list_tokens(Scope::Admin, "").await?.is_empty() {
        true => {
            let req = TokenRequest { scope: Scope::Admin, tenant: "", name: "initial", secret: None, expires: None };
            Some(create_token(backend.tokens.as_ref(), req, &now()).await?)
        }
        false => None,
    };
    println!();
    println!("  scimd created an API token. It is shown once; only its hash is stored.");
    println!();
    println!("    SCIM base URL:  {}", urls.scim_root());
    println!("    Bearer token:   {}", token.secret);
    println!();
    println!("  Give both to your identity provider (Entra ID: Tenant URL and Secret Token;");
    println!("  Okta: SCIM connector base URL and API token). Manage tokens with `scimd token`,");
    println!("  more tenants with `scimd tenant create`.");
    println!();
    if let Some(admin) = admin {
        println!("  Open the console and sign in with this admin token (also shown once; it opens the");
        println!("  admin API too, so keep it to operators):");
        println!();
        println!("    Console:        {console_url}");
        println!("    Admin token:    {}", admin.secret);
        println!();
    } else if console {
        println!("  The console is at {console_url}; sign in with an admin token.");
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

#[cfg(test)]
mod tests {
    use super::{SequentialIds, redact_url};
    use tower_http::request_id::MakeRequestId;

    /// Request ids are the process's prefix and a counter in hex, as `{:x}` writes it.
    #[test]
    fn request_ids_count_in_hex() {
        let mut ids = SequentialIds::new();
        let request = axum::http::Request::new(());
        for n in [0u64, 1, 9, 10, 15, 16, 255, 256, 0xdead_beef, u64::MAX] {
            ids.next.store(n, std::sync::atomic::Ordering::Relaxed);
            let id = ids.make_request_id(&request).unwrap();
            assert_eq!(id.header_value().to_str().unwrap(), format!("{}-{n:x}", ids.prefix));
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://scimd:s3cret@db:5432/scimd"), "postgres://scimd:***@db:5432/scimd");
        assert_eq!(redact_url("postgres://scimd@db/scimd"), "postgres://scimd@db/scimd");
        assert_eq!(redact_url("sqlite://scimd.db"), "sqlite://scimd.db");
    }
}
