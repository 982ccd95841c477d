//! Settings: defaults, then `scimd.toml`, then `SCIMD_*` environment variables, then
//! command-line flags.

use anyhow::{Context, Result, bail};
use scimd_core::DeletePolicy;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// `sqlite://PATH` (embedded, the default) or `postgres://…`.
    pub database_url: String,
    /// PostgreSQL hot standbys of `database_url` that serve reads: one URL, a list, or
    /// several separated by commas (see the README's PostgreSQL section).
    #[serde(deserialize_with = "one_or_more", skip_serializing_if = "Vec::is_empty")]
    pub database_read_url: Vec<String>,
    /// Milliseconds a read replica may be behind the primary and still serve reads.
    pub max_replica_lag_ms: u64,
    /// Public URL of the SCIM root, used in `meta.location`; derived from requests if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Path the SCIM endpoints are served under.
    pub path_prefix: String,
    /// `retire`, `erase` or `deactivate`.
    pub delete_policy: String,
    /// `count` when a query gives none.
    pub default_page_size: u64,
    /// Largest page a query can ask for.
    pub max_page_size: u64,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most operations in one `/Bulk` request; 0 turns `/Bulk` off.
    pub bulk_max_operations: u64,
    /// How long a list cursor (RFC 9865) stays usable, in seconds.
    pub cursor_timeout_secs: u64,
    /// Longest filter in bytes.
    pub max_filter_length: usize,
    /// Time allowed for one request, in seconds.
    pub request_timeout_secs: u64,
    /// Time a client has to send a request's headers, in seconds (also how long an idle
    /// kept-alive connection stays open).
    pub header_read_timeout_secs: u64,
    /// Connections open at once; past it, a new one gets 503. 0: half the open-file limit,
    /// at most 4,096.
    pub max_connections: usize,
    /// On SIGTERM, how long requests in progress may take to finish, in seconds.
    pub shutdown_grace_secs: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter, e.g. `info` or `scimd=debug,info`.
    pub log_level: String,
    /// SQLite durability: `normal` (survives a crash of scimd) or `full` (also power loss).
    pub sqlite_synchronous: String,
    /// SQLite reader connections.
    pub sqlite_readers: u32,
    /// PostgreSQL: connections this process may hold (keep the sum over replicas under
    /// the server's `max_connections`).
    pub pg_max_connections: u32,
    /// PostgreSQL: connections kept open when idle.
    pub pg_min_connections: u32,
    /// PostgreSQL: seconds a request waits for a free connection before failing (503).
    pub pg_acquire_timeout_secs: u64,
    /// PostgreSQL: seconds after which the server cancels a statement.
    pub pg_statement_timeout_secs: u64,
    /// PostgreSQL: seconds `serve` waits on start for a server it cannot reach yet (starting,
    /// restarting, out of connection slots) before it gives up; 0: not at all.
    pub pg_start_wait_secs: u64,
    /// PostgreSQL: seconds a write waits for a row another session holds before it is
    /// answered 503 (`lock_timeout`; 0: no limit).
    pub pg_lock_timeout_secs: u64,
    /// PostgreSQL: seconds after which the server ends a scimd session left inside a
    /// transaction without a statement (`idle_in_transaction_session_timeout`): the locks of
    /// a process that hung mid-write are released. Longer than `request_timeout_secs`; 0:
    /// never.
    pub pg_idle_in_transaction_timeout_secs: u64,
    /// PostgreSQL: how often, in milliseconds, scimd checks that the server answers; while it
    /// does not, requests are answered 503 at once.
    pub pg_health_check_ms: u64,
    /// PostgreSQL: the schema scimd's tables live in (created if missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_schema: Option<String>,
    /// The tenant a new database starts with, and that `scimd token …` acts on without
    /// `--tenant`.
    pub tenant: String,
    /// Serve the admin API (`/admin/v1`).
    pub admin_api: bool,
    /// Serve the admin API on this address:port instead of `listen` (keep it off the public
    /// network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    /// Serve the web console at `/admin` (with the admin API, on its listener).
    pub console: bool,
    /// Hours a console session lasts after signing in.
    pub console_session_hours: u64,
    /// Published in ServiceProviderConfig.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// Requests per second allowed to each token (0: no limit).
    pub rate_limit_per_second: f64,
    /// Requests a token may send at once after being idle.
    pub rate_limit_burst: u32,
    /// The `iss` of the change events' SETs; the server's public root URL if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_issuer: Option<String>,
    /// Hours a push stream keeps retrying a failing receiver before it is marked failing
    /// (fractions allowed).
    pub event_retry_hours: f64,
    /// Seconds a push receiver has to answer one SET.
    pub event_push_timeout_secs: u64,
    /// Days change events are kept (longer while a stream has still to deliver them).
    pub event_retention_days: u64,
    /// Seconds a replica holds a push stream it delivers without renewing: when a replica
    /// dies, another takes its streams over after this.
    pub event_lease_secs: u64,
    /// Publish `securityEvents` (RFC 9967 §4) in ServiceProviderConfig. Off by default:
    /// client libraries that hold ServiceProviderConfig to RFC 7643's attributes refuse it.
    pub advertise_security_events: bool,
    /// Record every authenticated SCIM request in the activity log (off by default: it costs
    /// reads much of their speed on SQLite; see bench/README.md).
    pub activity_log: bool,
    /// Requests of each tenant the activity log keeps (the newest).
    pub activity_retention_requests: u32,
    /// Days the activity log keeps a request at most.
    pub activity_retention_days: u64,
    /// Schema files (RFC 7643 §6, §7 JSON): custom resource types and schema extensions.
    /// Paths or patterns with `*` in the file name, relative to this file's directory.
    #[serde(deserialize_with = "one_or_more", skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    /// Start even when the schemas would orphan stored data (an attribute removed or its type
    /// changed while resources hold it). For one start; then set it back.
    pub force_schema_change: bool,
    /// The directory relative schema paths start from: the configuration file's.
    #[serde(skip)]
    pub config_dir: std::path::PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://scimd.db".into(),
            database_read_url: vec![],
            max_replica_lag_ms: 1000,
            base_url: None,
            path_prefix: "/scim/v2".into(),
            delete_policy: "retire".into(),
            default_page_size: 100,
            max_page_size: 1000,
            bulk_max_operations: 1000,
            cursor_timeout_secs: 3600,
            max_body_bytes: 1024 * 1024,
            max_filter_length: 4096,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 0,
            shutdown_grace_secs: 30,
            log_format: "text".into(),
            log_level: "info".into(),
            sqlite_synchronous: "normal".into(),
            sqlite_readers: 4,
            pg_max_connections: 16,
            pg_min_connections: 1,
            pg_acquire_timeout_secs: 5,
            pg_statement_timeout_secs: 30,
            pg_lock_timeout_secs: 10,
            pg_start_wait_secs: 60,
            pg_idle_in_transaction_timeout_secs: 60,
            pg_health_check_ms: 500,
            pg_schema: None,
            tenant: "default".into(),
            admin_api: true,
            admin_listen: None,
            console: true,
            console_session_hours: 12,
            documentation_uri: None,
            rate_limit_per_second: 0.0,
            rate_limit_burst: 50,
            event_issuer: None,
            event_retry_hours: 24.0,
            event_push_timeout_secs: 10,
            event_retention_days: 7,
            event_lease_secs: 15,
            advertise_security_events: false,
            activity_log: false,
            activity_retention_requests: 10_000,
            activity_retention_days: 7,
            schemas: vec![],
            force_schema_change: false,
            config_dir: std::path::PathBuf::from("."),
        }
    }
}

/// Environment variables and the settings they set.
const ENV: &[(&str, &str)] = &[
    ("SCIMD_LISTEN", "listen"),
    ("SCIMD_DATABASE_URL", "database_url"),
    ("SCIMD_DATABASE_READ_URL", "database_read_url"),
    ("SCIMD_MAX_REPLICA_LAG_MS", "max_replica_lag_ms"),
    ("SCIMD_BASE_URL", "base_url"),
    ("SCIMD_PATH_PREFIX", "path_prefix"),
    ("SCIMD_DELETE_POLICY", "delete_policy"),
    ("SCIMD_DEFAULT_PAGE_SIZE", "default_page_size"),
    ("SCIMD_MAX_PAGE_SIZE", "max_page_size"),
    ("SCIMD_BULK_MAX_OPERATIONS", "bulk_max_operations"),
    ("SCIMD_CURSOR_TIMEOUT_SECS", "cursor_timeout_secs"),
    ("SCIMD_MAX_BODY_BYTES", "max_body_bytes"),
    ("SCIMD_MAX_FILTER_LENGTH", "max_filter_length"),
    ("SCIMD_REQUEST_TIMEOUT_SECS", "request_timeout_secs"),
    ("SCIMD_HEADER_READ_TIMEOUT_SECS", "header_read_timeout_secs"),
    ("SCIMD_MAX_CONNECTIONS", "max_connections"),
    ("SCIMD_SHUTDOWN_GRACE_SECS", "shutdown_grace_secs"),
    ("SCIMD_LOG_FORMAT", "log_format"),
    ("SCIMD_LOG_LEVEL", "log_level"),
    ("SCIMD_SQLITE_SYNCHRONOUS", "sqlite_synchronous"),
    ("SCIMD_SQLITE_READERS", "sqlite_readers"),
    ("SCIMD_PG_MAX_CONNECTIONS", "pg_max_connections"),
    ("SCIMD_PG_MIN_CONNECTIONS", "pg_min_connections"),
    ("SCIMD_PG_ACQUIRE_TIMEOUT_SECS", "pg_acquire_timeout_secs"),
    ("SCIMD_PG_STATEMENT_TIMEOUT_SECS", "pg_statement_timeout_secs"),
    ("SCIMD_PG_LOCK_TIMEOUT_SECS", "pg_lock_timeout_secs"),
    ("SCIMD_PG_START_WAIT_SECS", "pg_start_wait_secs"),
    ("SCIMD_PG_IDLE_IN_TRANSACTION_TIMEOUT_SECS", "pg_idle_in_transaction_timeout_secs"),
    ("SCIMD_PG_HEALTH_CHECK_MS", "pg_health_check_ms"),
    ("SCIMD_PG_SCHEMA", "pg_schema"),
    ("SCIMD_TENANT", "tenant"),
    ("SCIMD_ADMIN_API", "admin_api"),
    ("SCIMD_ADMIN_LISTEN", "admin_listen"),
    ("SCIMD_CONSOLE", "console"),
    ("SCIMD_CONSOLE_SESSION_HOURS", "console_session_hours"),
    ("SCIMD_DOCUMENTATION_URI", "documentation_uri"),
    ("SCIMD_RATE_LIMIT_PER_SECOND", "rate_limit_per_second"),
    ("SCIMD_RATE_LIMIT_BURST", "rate_limit_burst"),
    ("SCIMD_EVENT_ISSUER", "event_issuer"),
    ("SCIMD_EVENT_RETRY_HOURS", "event_retry_hours"),
    ("SCIMD_EVENT_PUSH_TIMEOUT_SECS", "event_push_timeout_secs"),
    ("SCIMD_EVENT_RETENTION_DAYS", "event_retention_days"),
    ("SCIMD_EVENT_LEASE_SECS", "event_lease_secs"),
    ("SCIMD_ADVERTISE_SECURITY_EVENTS", "advertise_security_events"),
    ("SCIMD_ACTIVITY_LOG", "activity_log"),
    ("SCIMD_ACTIVITY_RETENTION_REQUESTS", "activity_retention_requests"),
    ("SCIMD_ACTIVITY_RETENTION_DAYS", "activity_retention_days"),
    ("SCIMD_SCHEMAS", "schemas"),
    ("SCIMD_FORCE_SCHEMA_CHANGE", "force_schema_change"),
];

/// Whether a database URL names PostgreSQL (`postgres://…` or `postgresql://…`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// A list of URLs given as a TOML array, or as one string of URLs separated by commas
/// (as an environment variable gives them).
fn one_or_more<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        One(String),
        More(Vec<String>),
    }
    let urls = match Urls::deserialize(d)? {
        Urls::One(s) => s.split(',').map(str::to_string).collect(),
        Urls::More(v) => v,
    };
    Ok(urls.into_iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect())
}

impl Config {
    /// Loads the file (if any) and applies the environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                text.parse::<toml::Table>().with_context(|| format!("parsing {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
        for (var, key) in ENV {
            if let Ok(value) = std::env::var(var) {
                // Keep the type of the setting: numbers stay numbers.
                let typed = match defaults.get(*key) {
                    Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match value.trim() {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        _ => bail!("{var} must be true or false, not '{value}'"),
                    }),
                    Some(toml::Value::Integer(_)) => toml::Value::Integer(
                        value.trim().parse().with_context(|| format!("{var} must be a whole number"))?,
                    ),
                    Some(toml::Value::Float(_)) => {
                        toml::Value::Float(value.trim().parse().with_context(|| format!("{var} must be a number"))?)
                    }
                    _ => toml::Value::String(value),
                };
                table.insert((*key).to_string(), typed);
            }
        }
        let mut config: Config = toml::Value::Table(table).try_into().context("invalid configuration")?;
        if let Some(dir) = file.and_then(Path::parent).filter(|d| !d.as_os_str().is_empty()) {
            config.config_dir = dir.to_path_buf();
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        self.delete_policy()?;
        // A streamed answer keeps its snapshot's transaction open, idle between batches, for
        // up to the request's time: the server must not end it first.
        if crate::config::is_postgres_url(&self.database_url)
            && self.pg_idle_in_transaction_timeout_secs != 0
            && self.pg_idle_in_transaction_timeout_secs <= self.request_timeout_secs
        {
            bail!(
                "pg_idle_in_transaction_timeout_secs ({}) must be longer than request_timeout_secs ({})",
                self.pg_idle_in_transaction_timeout_secs,
                self.request_timeout_secs
            );
        }
        if self.cursor_timeout_secs == 0 {
            bail!("cursor_timeout_secs must be at least 1 (it is 0)");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("log_format must be 'text' or 'json'");
        }
        if !matches!(self.sqlite_synchronous.as_str(), "normal" | "full") {
            bail!("sqlite_synchronous must be 'normal' or 'full'");
        }
        if self.max_page_size == 0 {
            bail!("max_page_size must be at least 1 (it is 0)");
        }
        if self.default_page_size > self.max_page_size {
            bail!(
                "default_page_size ({}) is larger than max_page_size ({}): lower default_page_size \
                 (SCIMD_DEFAULT_PAGE_SIZE) to {} or less, or raise max_page_size",
                self.default_page_size,
                self.max_page_size,
                self.max_page_size
            );
        }
        if !(self.rate_limit_per_second >= 0.0 && self.rate_limit_per_second.is_finite()) {
            bail!("rate_limit_per_second must be 0 (no limit) or a positive number");
        }
        if !(self.event_retry_hours > 0.0 && self.event_retry_hours <= 24.0 * 365.0) {
            bail!("event_retry_hours must be more than 0 and at most a year (8760)");
        }
        if self.activity_retention_days == 0 || self.activity_retention_requests == 0 {
            bail!(
                "activity_retention_days and activity_retention_requests must be at least 1 (activity_log = false turns the log off)"
            );
        }
        if !(1..=24 * 30).contains(&self.console_session_hours) {
            bail!("console_session_hours must be from 1 to 720 (30 days)");
        }
        if self.event_retention_days == 0 {
            bail!("event_retention_days must be at least 1");
        }
        if self.event_push_timeout_secs == 0 {
            bail!("event_push_timeout_secs must be at least 1");
        }
        if self.event_lease_secs <= self.event_push_timeout_secs {
            bail!(
                "event_lease_secs ({}) must be longer than event_push_timeout_secs ({}): a lease must outlast \
                 one delivery attempt",
                self.event_lease_secs,
                self.event_push_timeout_secs
            );
        }
        if !self.database_read_url.is_empty() && !is_postgres_url(&self.database_url) {
            bail!("database_read_url names PostgreSQL read replicas: database_url must be PostgreSQL too");
        }
        if let Some(bad) = self.database_read_url.iter().find(|u| !is_postgres_url(u)) {
            bail!("database_read_url: '{}' is not a postgres:// URL", crate::server::redact_url(bad));
        }
        if !self.path_prefix.starts_with('/') {
            bail!("path_prefix must start with '/'");
        }
        Ok(())
    }

    /// The HTTP server's connection limits.
    pub fn http(&self) -> crate::http::HttpSettings {
        crate::http::HttpSettings {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs.max(1)),
            max_connections: match self.max_connections {
                0 => crate::http::default_max_connections(),
                n => n,
            },
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_secs),
        }
    }

    pub fn delete_policy(&self) -> Result<DeletePolicy> {
        DeletePolicy::parse(&self.delete_policy)
            .with_context(|| format!("delete_policy must be retire, erase or deactivate, not '{}'", self.delete_policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_urls_are_one_a_list_or_several_separated_by_commas() {
        let urls = |toml_text: &str| toml::from_str::<Config>(toml_text).unwrap().database_read_url;
        assert_eq!(urls(r#"database_read_url = "postgres://r1/db""#), ["postgres://r1/db"]);
        assert_eq!(
            urls(r#"database_read_url = ["postgres://r1/db", "postgres://r2/db"]"#),
            ["postgres://r1/db", "postgres://r2/db"]
        );
        // As SCIMD_DATABASE_READ_URL gives them.
        assert_eq!(
            urls(r#"database_read_url = "postgres://r1/db, postgres://r2/db,""#),
            ["postgres://r1/db", "postgres://r2/db"]
        );
        assert!(urls("").is_empty());
    }

    #[test]
    fn read_replicas_need_postgresql() {
        let config = |primary: &str, replica: &str| Config {
            database_url: primary.into(),
            database_read_url: vec![replica.into()],
            ..Config::default()
        };
        let err = config("sqlite://scimd.db", "postgres://r/db").check().unwrap_err().to_string();
        assert!(err.contains("database_url must be PostgreSQL"), "{err}");
        let err = config("postgres://p/db", "mysql://u:secret@r/db").check().unwrap_err().to_string();
        assert!(err.contains("is not a postgres:// URL") && !err.contains("secret"), "{err}");
        assert!(config("postgres://p/db", "postgresql://r/db").check().is_ok());
    }
}
