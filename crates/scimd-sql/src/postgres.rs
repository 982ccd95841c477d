//! PostgreSQL: one pool shared by reads and writes; migrations run under PostgreSQL's
//! advisory lock, so replicas starting together do not race; row locks (`FOR UPDATE`)
//! serialise writers of the same resource across replicas.
//!
//! While the server cannot be reached, requests fail at once instead of each waiting for a
//! connection (`Health`): a watcher connection notices an outage within
//! `health_check` (as does any request that finds the server gone), and notices the server
//! back the same way; the pool then reconnects by itself.

use crate::conn::{Cell, DbError, DbResult, Permitted, Row, Tx};
use crate::pg_lease::{Lease, Lender};
use crate::replicas::{Replica, Replicas};
use crate::sql::Dialect;
use crate::sql::Sql;
use crate::store::{Pools, SqlStore};
use async_trait::async_trait;
use scimd_core::stats::{DbStats, Histogram, PoolUse, WAIT_BOUNDS};
use scimd_core::store::{Conflict, Outage, StoreError};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// Connections this process may hold. Across replicas, keep the sum under the
    /// server's `max_connections`.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// A statement running longer than this is cancelled by the server.
    pub statement_timeout: Duration,
    /// A statement waiting longer than this for a lock fails (`Outage::Busy`): a row held by
    /// a session that hung does not hold every writer of it for `statement_timeout`.
    pub lock_timeout: Duration,
    /// A session left inside a transaction, between statements, for longer than this is
    /// ended by the server, and its locks released (a process that hung mid-write). Keep it
    /// longer than a streamed answer's snapshot may stay open (the request timeout).
    pub idle_in_transaction_timeout: Duration,
    /// The schema scimd's tables live in (`search_path`); the user's default when None.
    pub schema: Option<String>,
    /// How often the server's reachability is checked (see `Health`).
    pub health_check: Duration,
    /// Hot standbys of this server that serve reads (`replicas`).
    pub read_urls: Vec<String>,
    /// A replica further behind the primary than this is not read from.
    pub max_replica_lag: Duration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            max_connections: 16,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(60),
            schema: None,
            health_check: Duration::from_millis(500),
            read_urls: vec![],
            max_replica_lag: Duration::from_secs(1),
        }
    }
}

pub struct PgPools {
    pool: PgPool,
    /// Lends the pool's connections to requests (see `pg_lease`).
    lender: Arc<Lender>,
    /// How long requests waited for a connection.
    wait: Arc<Histogram>,
    health: Arc<Health>,
    /// Snapshots open at once (see `Pools::snapshot`).
    snapshots: Arc<tokio::sync::Semaphore>,
    /// Hot standbys that serve reads, when configured.
    replicas: Option<Arc<Replicas>>,
    /// Dropping them stops the background upkeep (`pg_upkeep`) and the health watcher.
    _upkeep: Option<tokio::sync::oneshot::Sender<()>>,
    _watcher: tokio::sync::oneshot::Sender<()>,
}

/// Whether the server answers, as last seen by the watcher (`watch_health`).
struct Health {
    /// `None` when it does, else why not.
    state: tokio::sync::watch::Sender<Option<String>>,
    /// A request met the server unreachable: the watcher looks now, not at its next round.
    suspect: tokio::sync::Notify,
}

/// How long the watcher waits for the server before taking it for unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl Health {
    fn new() -> Health {
        Health { state: tokio::sync::watch::Sender::new(None), suspect: tokio::sync::Notify::new() }
    }

    fn down(&self) -> Option<String> {
        self.state.borrow().clone()
    }

    /// Marks the server down for `why`; while it is down, the first cause stands.
    fn mark_down(&self, why: &str) {
        let changed = self.state.send_if_modified(|state| {
            let was_up = state.is_none();
            if was_up {
                *state = Some(why.to_string());
            }
            was_up
        });
        if changed {
            tracing::error!(cause = why, "PostgreSQL is unreachable; requests are answered 503 until it is back");
        }
    }

    fn mark_up(&self) {
        if self.state.send_if_modified(|state| state.take().is_some()) {
            tracing::info!("PostgreSQL is reachable again");
        }
    }

    /// Ready when the server is (or becomes) unreachable.
    async fn went_down(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Runs `op` unless the server is known to be down, giving up as soon as it is.
    async fn attempt<T>(&self, op: impl Future<Output = Result<T, DbError>>) -> Result<T, DbError> {
        if let Some(why) = self.down() {
            return Err(DbError::Unavailable(Outage::Unreachable, why));
        }
        tokio::select! {
            r = op => r,
            () = self.went_down() => Err(DbError::Unavailable(Outage::Unreachable, self.down().unwrap_or_default())),
        }
    }

    /// As `attempt`, for the first statement on a connection taken from a pool of `size`,
    /// one that changes nothing (a read, or `BEGIN`), made anew by `make`: when the
    /// connection turns out to have died while it sat in the pool (its backend terminated,
    /// or the connection reset; connections are not pinged when taken), it runs again on
    /// another, until one is live or every pooled one has been tried (each dead one is
    /// dropped when it comes back to the pool: its ping on release fails).
    async fn first_statement<T, F, Fut>(&self, size: u32, make: F) -> Result<T, DbError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let mut result = self.attempt(make()).await;
        for _ in 0..size {
            let Err(DbError::Terminated(why) | DbError::Lost(why)) = &result else { break };
            tracing::info!(cause = why, "a pooled PostgreSQL connection was terminated or lost; trying another");
            result = self.attempt(make()).await;
        }
        self.check(result)
    }

    /// Has the watcher look at the server now when `result` shows it unreachable. One
    /// connection's failure (a reset, a backend ended by the server) is not the server's:
    /// taking it for an outage answered every request 503 until the next round; the
    /// watcher's own connection, or a new one, gives the verdict, within a round trip when
    /// the server is really gone (connection refused or reset).
    fn check<T>(&self, result: Result<T, DbError>) -> Result<T, DbError> {
        if let Err(DbError::Unavailable(Outage::Unreachable, _) | DbError::Lost(_)) = &result
            && self.state.borrow().is_none()
        {
            self.suspect.notify_one();
        }
        result
    }
}

/// Checks the server every `every` on a connection of its own, and records what it finds.
async fn watch_health(
    options: PgConnectOptions,
    health: Arc<Health>,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut conn: Option<sqlx::PgConnection> = None;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
            _ = health.suspect.notified() => {}
        }
        // A probe that found no answer in time may have met a stall of this process
        // (stopped, swapped out: its timers fire as it resumes), not of the server: a second
        // one, on a new connection, decides.
        let mut verdict = tokio::time::timeout(PROBE_TIMEOUT, probe(&mut conn, &options)).await;
        if verdict.is_err() {
            conn = None;
            verdict = tokio::time::timeout(PROBE_TIMEOUT, probe(&mut conn, &options)).await;
        }
        let why = match verdict {
            Ok(Ok(())) => {
                health.mark_up();
                continue;
            }
            Ok(Err(e)) => format!("{e:?}"),
            Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
        };
        conn = None;
        health.mark_down(&why);
    }
}

/// One look at the server: `SELECT 1` on the watcher's connection, or on a new one.
async fn probe(conn: &mut Option<sqlx::PgConnection>, options: &PgConnectOptions) -> Result<(), DbError> {
    if let Some(c) = conn.as_mut() {
        if sqlx::query("SELECT 1").execute(c).await.is_ok() {
            return Ok(());
        }
        // Its own connection failing (its backend terminated, a reset) is not the server
        // gone: a new connection's answer is the verdict.
        *conn = None;
    }
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect_with(options).await?;
    sqlx::query("SELECT 1").execute(&mut c).await?;
    *conn = Some(c);
    Ok(())
}

/// A transaction whose failures feed `Health`.
struct PgTx {
    lease: Lease,
    health: Arc<Health>,
    /// A write's transaction id (`pg_current_xact_id`); none for reads.
    xid: Option<String>,
}

#[async_trait]
impl Tx for PgTx {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn rows(&mut self, sql: Sql) -> DbResult<Vec<Row>> {
        let (lease, health) = (&mut self.lease, &self.health);
        let result = health.attempt(async { Ok(lease.rows(sql).await?) }).await;
        before_commit(health.check(result))
    }
    async fn exec(&mut self, sql: Sql) -> DbResult<u64> {
        let (lease, health) = (&mut self.lease, &self.health);
        let result = health.attempt(async { Ok(lease.exec(sql).await?) }).await;
        before_commit(health.check(result))
    }
    async fn commit(self: Box<Self>) -> DbResult<()> {
        let PgTx { mut lease, health, xid } = *self;
        let result = health.check(health.attempt(async { Ok(lease.commit().await?) }).await);
        let why = match result {
            Err(DbError::Terminated(why) | DbError::Lost(why) | DbError::Unavailable(Outage::Unreachable, why)) => why,
            other => return other,
        };
        // The connection ended with the commit's answer: whether the server made the write
        // durable before, it knows.
        let lender = lease.lender().clone();
        drop(lease);
        let Some(xid) = xid else {
            // A read-only transaction: nothing to commit, and what it read stands.
            return Ok(());
        };
        match outcome(&lender, &health, &xid).await {
            Some(true) => Ok(()),
            Some(false) => {
                Err(DbError::Retry(Conflict::Interrupted, format!("the transaction ended before its commit: {why}")))
            }
            None => Err(DbError::Unavailable(Outage::InDoubt, why)),
        }
    }
    async fn batch(&mut self, before: Vec<Sql>, last: Sql) -> DbResult<Vec<Row>> {
        self.rows(crate::conn::chained(before, last)).await
    }
}

/// How long the outcome of a commit whose answer was lost is waited for: the transaction
/// stays "in progress" until its backend has finished the commit, or noticed that its
/// client is gone and aborted it.
const OUTCOME_WAIT: Duration = Duration::from_secs(3);

/// What became of write transaction `xid`, on a new connection: committed (`Some(true)`),
/// not (`Some(false)`), or unknown (the server unreachable, or still busy with it after
/// `OUTCOME_WAIT`).
async fn outcome(lender: &Arc<Lender>, health: &Health, xid: &str) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + OUTCOME_WAIT;
    loop {
        let mut status = Sql::new(Dialect::Postgres);
        status.push("SELECT pg_xact_status(").bind_text(xid).push("::xid8)");
        // On a pooled connection: after a mass termination, on the first live one.
        let asked = health
            .first_statement(lender.max(), || async { Ok(lender.lease().await?.rows(status.clone()).await?) })
            .await;
        match asked.ok()?.first().map(|r| r.cell(0).clone()) {
            Some(Cell::Text(s)) if s == "committed" => return Some(true),
            Some(Cell::Text(s)) if s == "aborted" => return Some(false),
            Some(Cell::Text(s)) if s == "in progress" && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => return None,
        }
    }
}

/// The result of a statement of a transaction before its commit. A terminated backend or a
/// lost connection took the transaction with it, uncommitted: the whole write can run again
/// on another connection (`retry::retrying`; if the server is gone, that one fails to
/// connect and the outage is answered). Not so at the commit itself, whose outcome is then
/// unknown: that error stands.
fn before_commit<T>(result: DbResult<T>) -> DbResult<T> {
    result.map_err(|e| match e {
        DbError::Terminated(why) => {
            DbError::Retry(Conflict::Interrupted, format!("the transaction's connection was terminated: {why}"))
        }
        DbError::Lost(why) => {
            DbError::Retry(Conflict::Interrupted, format!("the transaction's connection was lost: {why}"))
        }
        other => other,
    })
}

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<PgPools>;

fn address(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// What a failed first connection means, and what to do about it.
fn explain_connect_error(options: &PgConnectOptions, e: &sqlx::Error) -> String {
    let at = address(options);
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "cannot connect to PostgreSQL at {at}: connection refused. Is the server running and listening on \
             that address and port?"
        ),
        sqlx::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
            format!("cannot connect to PostgreSQL: the host in {at} is unknown ({io})")
        }
        sqlx::Error::Io(io) => format!("cannot connect to PostgreSQL at {at}: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS to PostgreSQL at {at} failed: {tls} (see sslmode in the URL)"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01") => format!(
                "PostgreSQL at {at} refused the password for user '{user}': check the user and password in the \
                 database URL"
            ),
            Some("28000") => format!(
                "PostgreSQL at {at} does not let user '{user}' connect to '{database}' from here ({}): see its \
                 pg_hba.conf",
                db.message()
            ),
            Some("3D000") => format!(
                "PostgreSQL at {at} has no database '{database}': create it (createdb {database}) or name another \
                 in the URL"
            ),
            _ => format!("PostgreSQL at {at} refused the connection: {}", db.message()),
        },
        other => format!("cannot connect to PostgreSQL at {at}: {other}"),
    }
}

/// The connection options of a URL; `application_name` is `scimd` unless the URL names one.
fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
    Ok(match options.get_application_name() {
        Some(_) => options,
        None => options.application_name("scimd"),
    })
}

/// Whether a failed first connection may succeed later by itself: the server starting,
/// shutting down or out of connection slots, the network or the host's name not there yet.
/// Not a refused password or a missing database, which need the URL or the server changed.
fn may_pass(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            // connection exceptions; cannot_connect_now and shutdowns; too_many_connections
            matches!(db.code().as_deref(), Some(c) if c.starts_with("08") || c.starts_with("57P") || c == "53300")
        }
        _ => false,
    }
}

/// One connection first, on its own: a pool that cannot connect only says it timed out,
/// where this says what failed. A failure that may pass is `Unavailable`, the rest `Backend`.
async fn first_connection(options: &PgConnectOptions, timeout: Duration) -> Result<(), StoreError> {
    match tokio::time::timeout(timeout, <sqlx::PgConnection as sqlx::Connection>::connect_with(options)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if may_pass(&e) => {
            Err(StoreError::Unavailable(Outage::Unreachable, explain_connect_error(options, &e)))
        }
        Ok(Err(e)) => Err(StoreError::Backend(explain_connect_error(options, &e))),
        Err(_) => Err(StoreError::Unavailable(
            Outage::Unreachable,
            format!(
                "PostgreSQL at {} did not answer within {timeout:?}: check the host and port in the database URL, \
             and that no firewall drops the connection",
                address(options),
            ),
        )),
    }
}

/// Creates `schema` (a plain identifier) if missing. Under a transaction-scoped advisory
/// lock: two processes starting together would otherwise race in `CREATE SCHEMA IF NOT
/// EXISTS`, and the loser fails on the catalogue's unique index.
async fn create_schema(options: &PgConnectOptions, schema: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(options).await.map_err(backend)?;
    let mut tx = conn.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('scimd: create schema'))")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    conn.close().await.map_err(backend)
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl PgPools {
    /// A connection, once the server is known to answer; how long it took is recorded.
    async fn lease<T, F, Fut>(&self, first: F) -> Result<T, StoreError>
    where
        F: Fn(Lease) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let asked = std::time::Instant::now();
        let result = self
            .health
            .first_statement(self.lender.max(), || async {
                let lease = self.lender.lease().await?;
                Ok(first(lease).await?)
            })
            .await?;
        self.wait.observe_duration(asked.elapsed());
        Ok(result)
    }

    /// A transaction opened by `how`.
    async fn begin(&self, how: Begin) -> Result<Box<dyn Tx>, StoreError> {
        let (lease, rows) = self
            .lease(|mut lease| async move {
                let rows = lease.begin(how.statement()).await?;
                Ok((lease, rows))
            })
            .await?;
        let xid = match how {
            Begin::Write => rows.first().and_then(|r| r.opt_text(0)),
            Begin::Read | Begin::Snapshot => None,
        };
        Ok(Box::new(PgTx { lease, health: self.health.clone(), xid }))
    }
}

/// The kinds of transaction, as they are opened.
#[derive(Debug, Clone, Copy)]
enum Begin {
    Read,
    /// Repeatable read: one snapshot for every statement.
    Snapshot,
    /// Its transaction id is taken at once (a write is given one anyway), in the same round
    /// trip: if the answer to its `COMMIT` is lost, the server says what became of it.
    Write,
}

impl Begin {
    fn statement(self) -> &'static str {
        match self {
            Begin::Read => "BEGIN READ ONLY",
            Begin::Snapshot => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            Begin::Write => "BEGIN; SELECT pg_current_xact_id()::text",
        }
    }
}

#[async_trait]
impl Pools for PgPools {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        self.begin(Begin::Read).await
    }
    async fn write(&self) -> Result<Box<dyn Tx>, StoreError> {
        self.begin(Begin::Write).await
    }
    fn stats(&self) -> DbStats {
        let size = u64::from(self.pool.size());
        let idle = (self.pool.num_idle() + self.lender.shelved()) as u64;
        let wait = self.wait.snapshot();
        let pool = PoolUse {
            pool: "postgres".into(),
            size,
            in_use: size.saturating_sub(idle),
            max: u64::from(self.lender.max()),
            wait,
        };
        let mut stats = DbStats { pools: vec![pool], ..DbStats::default() };
        if let Some(replicas) = &self.replicas {
            replicas.stats(&mut stats);
        }
        stats
    }
    fn replica(&self, tenant: &str) -> Option<&dyn Pools> {
        self.replicas.as_ref()?.choose(tenant).map(|r: &Replica| r as &dyn Pools)
    }
    fn wrote(&self, tenant: &str) {
        if let Some(replicas) = &self.replicas {
            replicas.wrote(tenant);
        }
    }
    /// A REPEATABLE READ transaction, at most a quarter of the pool at once.
    async fn snapshot(&self) -> Result<Box<dyn Tx>, StoreError> {
        let permit = self.snapshots.clone().acquire_owned().await.map_err(|e| StoreError::Backend(e.to_string()))?;
        let tx = self.begin(Begin::Snapshot).await?;
        Ok(Box::new(Permitted { tx, _permit: permit }))
    }
    async fn read_one(&self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        self.lease(|mut lease| {
            let sql = sql.clone();
            async move { lease.rows(sql).await }
        })
        .await
    }
}

/// Whether a pool's server takes writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Primary,
    /// A hot standby: read-only, and allowed to be down when scimd starts.
    Replica,
}

impl PgPools {
    /// Connects to `url` (`postgres://…`).
    pub async fn connect(url: &str, settings: &PostgresSettings) -> Result<PgPools, StoreError> {
        PgPools::connect_as(url, settings, Role::Primary).await
    }

    async fn connect_as(url: &str, settings: &PostgresSettings, role: Role) -> Result<PgPools, StoreError> {
        if let Some(schema) = &settings.schema
            && (schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(StoreError::Backend(format!("invalid schema name '{schema}'")));
        }
        let millis = |d: Duration| d.as_millis().to_string();
        let options = connect_options(url)?.options([
            ("statement_timeout", millis(settings.statement_timeout)),
            ("lock_timeout", millis(settings.lock_timeout)),
            ("idle_in_transaction_session_timeout", millis(settings.idle_in_transaction_timeout)),
        ]);
        if role == Role::Primary {
            first_connection(&options, settings.acquire_timeout).await?;
            if let Some(schema) = &settings.schema {
                create_schema(&options, schema).await?;
            }
        }
        let schema = settings.schema.clone();
        let watched = options.clone();
        let pool = PgPoolOptions::new()
            // By default the pool pings every connection it hands out: a round trip of its
            // own before every statement. A connection is tested when it comes back to the
            // pool instead (see `pg_lease`); one that died after that fails its first
            // statement, which `Health::first_statement` runs again on another. (A ping
            // here would also make a request that stops waiting, served by a connection
            // handed back meanwhile, cost the pool the connection it was pinging.)
            .test_before_acquire(false)
            .max_connections(settings.max_connections.max(1))
            .min_connections(if role == Role::Primary { settings.min_connections } else { 0 })
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    if let Some(schema) = schema {
                        // A plain identifier, checked above; made by `create_schema`.
                        sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            });
        let pool = match role {
            Role::Primary => pool.connect_with(options).await.map_err(backend)?,
            // Connections are made when first needed: a replica that is down at start is
            // used once it answers.
            Role::Replica => pool.connect_lazy_with(options),
        };
        let health = Arc::new(Health::new());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(watch_health(
            watched,
            health.clone(),
            settings.health_check.max(Duration::from_millis(50)),
            stopped,
        ));
        let snapshots = Arc::new(tokio::sync::Semaphore::new((settings.max_connections as usize / 4).max(1)));
        Ok(PgPools {
            lender: Lender::new(pool.clone()),
            pool,
            wait: Arc::new(Histogram::new(WAIT_BOUNDS)),
            health,
            snapshots,
            replicas: None,
            _upkeep: None,
            _watcher: stop,
        })
    }

    /// Connects to the read replicas of `settings` and starts following their positions.
    async fn with_replicas(self, settings: &PostgresSettings) -> Result<PgPools, StoreError> {
        if settings.read_urls.is_empty() {
            return Ok(self);
        }
        let mut replicas = Vec::new();
        for url in &settings.read_urls {
            let pools = PgPools::connect_as(url, settings, Role::Replica).await?;
            replicas.push((address(&connect_options(url)?), pools));
        }
        let replicas = Replicas::start(self.lender.clone(), replicas, settings.max_replica_lag);
        Ok(PgPools { replicas: Some(Arc::new(replicas)), ..self })
    }

    /// Whether the server answered the last health check.
    pub(crate) fn reachable(&self) -> bool {
        self.health.down().is_none()
    }

    pub(crate) fn lender(&self) -> &Arc<Lender> {
        &self.lender
    }
}

impl SqlStore<PgPools> {
    /// Connects to `url` and applies scimd's migrations under an advisory lock.
    pub async fn open(url: &str, settings: &PostgresSettings) -> Result<PostgresStore, StoreError> {
        let pools = PgPools::connect(url, settings).await?;
        // sqlx takes a PostgreSQL advisory lock around migrations.
        sqlx::migrate!("./migrations/postgres")
            .run(&pools.pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        // Fresh statistics for the planner: without them (a new or bulk-loaded database,
        // autovacuum off) PostgreSQL may scan a tenant's rows for a lookup by id.
        sqlx::query("ANALYZE scim_users, scim_groups, scim_members, scim_user_emails, scim_tokens")
            .execute(&pools.pool)
            .await
            .map_err(backend)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(crate::pg_upkeep::run(pools.lender.clone(), stopped));
        let pools = PgPools { _upkeep: Some(stop), ..pools }.with_replicas(settings).await?;
        Ok(SqlStore::new(pools))
    }

    pub async fn close(&self) {
        self.pools.lender.clear();
        self.pools.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request that meets the server down fails with the outage's cause, and the
    /// cause stays the one first seen (each failure used to wrap it once more, so that
    /// during an outage under load the message grew without bound).
    #[tokio::test]
    async fn an_outage_keeps_its_first_cause() {
        let health = Health::new();
        health.mark_down("connection refused");
        for _ in 0..64 {
            let r: Result<(), DbError> = health.first_statement(4, || async { Ok(()) }).await;
            assert!(
                matches!(r, Err(DbError::Unavailable(Outage::Unreachable, ref why)) if why == "connection refused")
            );
            let failed: Result<(), DbError> = Err(DbError::Unavailable(Outage::Unreachable, "reset by peer".into()));
            assert!(health.check(failed).is_err());
            health.mark_down("reset by peer");
        }
        assert_eq!(health.down().as_deref(), Some("connection refused"));
        health.mark_up();
        assert_eq!(health.down(), None);
        let r: Result<u8, DbError> = health.first_statement(4, || async { Ok(7) }).await;
        assert_eq!(r.unwrap(), 7, "up again, statements run");
    }
}
