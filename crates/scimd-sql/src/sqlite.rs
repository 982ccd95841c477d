//! SQLite: WAL mode, one writer connection (SQLite has one writer at a time; queuing
//! in-process is cheaper than lock retries) and a few readers. Statements run inline on
//! the calling task: SQLite is an in-process library, and a point lookup takes
//! microseconds, far less than handing it to another thread and back.

use crate::conn::{Cell, DbError, DbResult, Permitted, Row, Tx};
use crate::sql::{Bind, Dialect, Sql};
use crate::store::{Pools, SqlStore};
use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, ToSql};
use scimd_core::stats::{DbStats, GROUP_BOUNDS, Histogram, PoolUse, WAIT_BOUNDS};
use scimd_core::store::{Conflict, Outage, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// SQLite text (or a blob) as a string. The checked conversion is the fast one for text
/// that is valid, which is all scimd writes; anything else is kept with replacement
/// characters.
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Durability of acknowledged writes (SQLite `synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a committed write survives a crash of scimd;
    /// the last commits before a power loss or OS crash may be lost.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it is acknowledged.
    Full,
}

#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub durability: Durability,
    /// Reader connections (writes always use one connection).
    pub readers: u32,
    pub busy_timeout: Duration,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        SqliteSettings { durability: Durability::Normal, readers: 4, busy_timeout: Duration::from_secs(5) }
    }
}

/// Below this much free space on the database's disk, the store reports storage full.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// scimd's own migrations, applied in order, each once.
const MIGRATIONS: &[(i64, &str)] = &[
    (20261122000001, include_str!("../migrations/sqlite/20261122000001_init.sql")),
    (20261122000002, include_str!("../migrations/sqlite/20261122000002_live_order.sql")),
    (20261122000003, include_str!("../migrations/sqlite/20261122000003_selective_first.sql")),
    (20261122000004, include_str!("../migrations/sqlite/20261122000004_live_counts.sql")),
    (20261201000001, include_str!("../migrations/sqlite/20261201000001_health.sql")),
    (20261201000002, include_str!("../migrations/sqlite/20261201000002_member_order.sql")),
    (20261201000003, include_str!("../migrations/sqlite/20261201000003_tenants.sql")),
    (20261201000004, include_str!("../migrations/sqlite/20261201000004_events.sql")),
    (20261201000005, include_str!("../migrations/sqlite/20261201000005_activity.sql")),
    (20261201000006, include_str!("../migrations/sqlite/20261201000006_console.sql")),
    (20261201000007, include_str!("../migrations/sqlite/20261201000007_activity_apart.sql")),
    (20261201000009, include_str!("../migrations/sqlite/20261201000009_server_secret.sql")),
    (20261201000011, include_str!("../migrations/sqlite/20261201000011_custom_types.sql")),
    (20261202000002, include_str!("../migrations/sqlite/20261202000002_deleted_tenants.sql")),
];

/// The activity log's own database (`{name}-activity.db` beside the data): every SCIM
/// request adds a row to it, and were those commits made to the data's file, each would
/// make every reader drop its page cache (SQLite's readers keep their caches only while the
/// file is unchanged), halving the speed of reads.
const ACTIVITY_MIGRATIONS: &[(i64, &str)] =
    &[(20261201000008, include_str!("../migrations/sqlite-activity/20261201000008_activity.sql"))];

/// The URL of the activity log's database beside the database at `url`.
fn activity_url(url: &str) -> Result<String, StoreError> {
    if url.contains(":memory:") {
        return Ok("sqlite::memory:".into());
    }
    let path = path_of(url)?;
    let stem = path.strip_suffix(".db").unwrap_or(&path);
    Ok(format!("sqlite://{stem}-activity.db"))
}

pub struct SqlitePools {
    write: Arc<Mutex<Connection>>,
    read: Vec<Arc<Mutex<Connection>>>,
    next: AtomicUsize,
    /// Group commit (see `GroupedTx`); None for an in-memory database, whose readers
    /// share the writer's connection and so cannot run beside an open transaction.
    group: Option<Arc<GroupCommit>>,
    /// The database file (None in memory) and the settings, to open snapshot connections.
    path: Option<String>,
    settings: SqliteSettings,
    /// Snapshots open at once (see `Pools::snapshot`).
    snapshots: Arc<tokio::sync::Semaphore>,
    /// Dropping it stops the checkpointer thread.
    _checkpointer: Option<std::sync::mpsc::Sender<()>>,
    /// How long requests waited for a reader, and for the writer.
    read_wait: Histogram,
    write_wait: Arc<Histogram>,
    /// The activity log's own database (see `ACTIVITY_MIGRATIONS`).
    activity: Option<Box<SqlitePools>>,
}

/// How often the checkpointer copies committed WAL pages into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// The writer checkpoints by itself past this many WAL pages (32 MiB). Under a steady
/// write load that is what lets the WAL start over (the checkpointer never sees it
/// idle); by then the checkpointer has copied all but the last few pages.
const WRITER_CHECKPOINT_PAGES: u32 = 8_192;
/// The WAL file is cut back to this size when it starts over.
const WAL_SIZE_LIMIT: i64 = 32 * 1024 * 1024;

/// Runs checkpoints on a thread and connection of its own. SQLite otherwise checkpoints
/// inside the commit that crosses 1,000 WAL pages, and that commit (with every write
/// queued behind it) waits for the copy and its fsync. A passive checkpoint blocks
/// neither readers nor the writer.
fn start_checkpointer(path: &str, settings: &SqliteSettings) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
    let conn = open(path, settings, false)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("scimd-checkpoint".into())
        .spawn(move || {
            // Ends when the pools are dropped (the sender with them).
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer will checkpoint instead");
                }
            }
        })
        .map_err(backend)?;
    Ok(stop)
}

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqlitePools>;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            match f.code {
                rusqlite::ErrorCode::ConstraintViolation
                    if matches!(
                        f.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    ) =>
                {
                    return DbError::Unique;
                }
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                    return DbError::Retry(Conflict::Locked, e.to_string());
                }
                rusqlite::ErrorCode::DiskFull => return DbError::Unavailable(Outage::StorageFull, e.to_string()),
                rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::FileLockingProtocolFailed
                | rusqlite::ErrorCode::OutOfMemory => {
                    return DbError::Unavailable(Outage::Unreachable, e.to_string());
                }
                _ => {}
            }
        }
        DbError::Other(e.to_string())
    }
}

/// The database file of a `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:` URL.
fn path_of(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| backend(format!("not a SQLite URL: {url}")))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() {
        return Err(backend("the SQLite URL names no file"));
    }
    Ok(path.to_string())
}

fn open(path: &str, settings: &SqliteSettings, memory: bool) -> Result<Connection, StoreError> {
    let conn = if memory {
        Connection::open_in_memory()
    } else {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }
    .map_err(backend)?;
    conn.busy_timeout(settings.busy_timeout).map_err(backend)?;
    let sync = match settings.durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = {}; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;",
        if memory { "MEMORY" } else { "WAL" }
    ))
    .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(256);
    // Plans that do not depend on bound values. Without this guarantee SQLite marks a
    // statement whose plan could use a bound value (`LIMIT ?`, for one) to be compiled again
    // whenever that parameter is bound, so every page of a list would be parsed and planned
    // anew; scimd's statements name their indexes' conditions literally and gain nothing
    // from value-dependent plans.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(backend)?;
    // SQLite's lower() folds ASCII only; this folds exactly as the in-memory evaluator does.
    conn.create_scalar_function(
        Dialect::Sqlite.fold_function(),
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Null => None,
                ValueRef::Text(t) | ValueRef::Blob(t) => Some(scimd_proto::value::fold_case(&text(t))),
                ValueRef::Integer(i) => Some(i.to_string()),
                ValueRef::Real(r) => Some(r.to_string()),
            })
        },
    )
    .map_err(backend)?;
    Ok(conn)
}

/// Applies the migrations not yet applied, each in a transaction of its own.
fn migrate(conn: &mut Connection, migrations: &[(i64, &str)]) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS scimd_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
    )
    .map_err(backend)?;
    // A database a newer scimd has migrated may hold what this version would misread.
    let newest: Option<i64> =
        conn.query_row("SELECT max(version) FROM scimd_migrations", [], |r| r.get(0)).map_err(backend)?;
    let known = migrations.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if let Some(newest) = newest.filter(|n| *n > known) {
        return Err(backend(format!(
            "the database was migrated by a newer scimd (migration {newest}; this version knows up to {known}): \
             run that version or a later one"
        )));
    }
    for (version, sql) in migrations {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        let done: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM scimd_migrations WHERE version = ?1)", [version], |r| r.get(0))
            .map_err(backend)?;
        if !done {
            tx.execute_batch(sql).map_err(|e| backend(format!("migration {version} failed: {e}")))?;
            tx.execute("INSERT INTO scimd_migrations (version, applied) VALUES (?1, datetime('now'))", [version])
                .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

/// Runs one statement on a connection; returns its rows.
fn run(conn: &Connection, sql: &Sql) -> DbResult<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let params: Vec<&dyn ToSql> = sql.binds.iter().map(bind_ref).collect();
    let columns = stmt.column_count();
    let mut rows = stmt.query(params.as_slice())?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut cells = Vec::with_capacity(columns);
        for i in 0..columns {
            cells.push(match r.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Text(v.to_string()),
                ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(text(t).into_owned()),
            });
        }
        out.push(Row(cells));
    }
    Ok(out)
}

fn execute(conn: &Connection, sql: &Sql) -> DbResult<u64> {
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let params: Vec<&dyn ToSql> = sql.binds.iter().map(bind_ref).collect();
    // Statements with RETURNING are run through `run`; this is for the others.
    Ok(stmt.execute(params.as_slice())? as u64)
}

fn bind_ref(b: &Bind) -> &dyn ToSql {
    match b {
        Bind::Text(s) => s,
        Bind::Int(i) => i,
        Bind::Float(f) => f,
        Bind::Bool(v) => v,
    }
}

/// A transaction-control statement, prepared once per connection (they run on every
/// request; parsing them each time showed in profiles).
fn control(conn: &Connection, statement: &str) -> DbResult<()> {
    conn.prepare_cached(statement)?.execute([])?;
    Ok(())
}

/// A transaction on one connection, held for its whole life.
struct SqliteTx {
    conn: OwnedMutexGuard<Connection>,
    open: bool,
}

impl SqliteTx {
    fn begin(conn: OwnedMutexGuard<Connection>, write: bool) -> DbResult<SqliteTx> {
        control(&conn, if write { "BEGIN IMMEDIATE" } else { "BEGIN" })?;
        Ok(SqliteTx { conn, open: true })
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            // Not committed (an error, or nothing to write): undo.
            let _ = control(&self.conn, "ROLLBACK");
        }
    }
}

#[async_trait]
impl Tx for SqliteTx {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn rows(&mut self, sql: Sql) -> DbResult<Vec<Row>> {
        run(&self.conn, &sql)
    }
    async fn exec(&mut self, sql: Sql) -> DbResult<u64> {
        execute(&self.conn, &sql)
    }
    async fn commit(mut self: Box<Self>) -> DbResult<()> {
        control(&self.conn, "COMMIT")?;
        self.open = false;
        Ok(())
    }
}

/// Group commit. SQLite has one writer, and most of a small write's cost is its commit:
/// appending every page it touched to the WAL. Writes that queue behind one another
/// therefore share a transaction: each runs inside a savepoint of its own (so it stays
/// all or nothing, and a failed one is undone alone), and the last writer in line commits
/// for the whole group. Nobody is answered before the COMMIT that holds its write has
/// succeeded, so an acknowledged write is as durable as with a commit per request; if that
/// COMMIT fails, every write of the group fails.
struct GroupCommit {
    writer: Arc<Mutex<Connection>>,
    /// Writers waiting for the connection: while there are some, a finished write leaves
    /// the transaction open for them.
    queued: AtomicUsize,
    /// Touched only while the writer connection is held.
    state: std::sync::Mutex<GroupState>,
    /// How long writes waited for the connection; how many each commit carried.
    wait: Arc<Histogram>,
    sizes: Histogram,
}

#[derive(Default)]
struct GroupState {
    /// A transaction is open on the writer connection.
    open: bool,
    /// Counts the groups finished, so a waiter can tell whether its own was.
    finished: u64,
    /// The writes in the open transaction, waiting for its COMMIT.
    waiting: Vec<tokio::sync::oneshot::Sender<DbResult<()>>>,
}

/// Snapshot connections open at once; a further streamed answer waits for one.
const SNAPSHOTS: usize = 16;

/// A group never holds more writes than this.
const GROUP_MAX: usize = 64;
/// A write that left its group to the next writer commits the group itself after this
/// long, should that writer have given up (a timed-out request) before taking over.
const GROUP_TAKEOVER: Duration = Duration::from_millis(5);

impl GroupCommit {
    fn state(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits the open transaction, if any, and tells its writes how it went. Only
    /// called with the writer connection held, so no write is half done in it.
    fn finish(&self, conn: &Connection) {
        let mut state = self.state();
        if !state.open {
            return;
        }
        let result = if state.waiting.is_empty() {
            control(conn, "ROLLBACK")
        } else {
            self.sizes.observe(state.waiting.len() as f64);
            control(conn, "COMMIT")
        };
        if result.is_err() {
            let _ = control(conn, "ROLLBACK");
        }
        state.open = false;
        state.finished += 1;
        for w in state.waiting.drain(..) {
            let _ = w.send(result.clone());
        }
    }
}

/// Counts a writer as queued until it has the connection (or gives up).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(n: &'a AtomicUsize) -> Queued<'a> {
        n.fetch_add(1, Ordering::SeqCst);
        Queued(n)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One write inside a group transaction: the transaction itself when it opened the group
/// (nobody else's write is in it yet), else a savepoint.
struct GroupedTx {
    group: Arc<GroupCommit>,
    /// Held until the write is released into the group (or undone).
    conn: Option<OwnedMutexGuard<Connection>>,
    first: bool,
}

impl GroupedTx {
    async fn begin(group: Arc<GroupCommit>) -> DbResult<GroupedTx> {
        let conn = {
            let _queued = Queued::enter(&group.queued);
            let asked = Instant::now();
            let conn = group.writer.clone().lock_owned().await;
            group.wait.observe_duration(asked.elapsed());
            conn
        };
        let first = {
            let mut state = group.state();
            let first = !state.open;
            if first {
                control(&conn, "BEGIN IMMEDIATE")?;
                state.open = true;
            }
            first
        };
        if !first {
            control(&conn, "SAVEPOINT request")?;
        }
        Ok(GroupedTx { group, conn: Some(conn), first })
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("the write is in progress")
    }
}

impl Drop for GroupedTx {
    fn drop(&mut self) {
        // Not committed (an error, or nothing to write): undo this write only.
        let Some(conn) = self.conn.take() else { return };
        if self.first {
            // Alone in the transaction: `finish` rolls it back whole.
            self.group.finish(&conn);
            return;
        }
        let _ = control(&conn, "ROLLBACK TO request");
        let _ = control(&conn, "RELEASE request");
        if self.group.queued.load(Ordering::SeqCst) == 0 {
            // Nobody to hand the group to: commit what the others wrote.
            self.group.finish(&conn);
        }
    }
}

#[async_trait]
impl Tx for GroupedTx {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn rows(&mut self, sql: Sql) -> DbResult<Vec<Row>> {
        run(self.conn(), &sql)
    }
    async fn exec(&mut self, sql: Sql) -> DbResult<u64> {
        execute(self.conn(), &sql)
    }
    async fn commit(mut self: Box<Self>) -> DbResult<()> {
        if !self.first {
            // On failure the write is undone by `Drop`, as any write that is not committed.
            control(self.conn(), "RELEASE request")?;
        }
        let conn = self.conn.take().expect("the write is in progress");
        let (done, outcome) = tokio::sync::oneshot::channel();
        let handed_over = {
            let mut state = self.group.state();
            state.waiting.push(done);
            let hand_over = self.group.queued.load(Ordering::SeqCst) > 0 && state.waiting.len() < GROUP_MAX;
            hand_over.then_some(state.finished)
        };
        match handed_over {
            None => self.group.finish(&conn),
            Some(generation) => {
                drop(conn);
                // Independent of this request's future, so a commit is never left to a
                // request that was cancelled.
                let group = self.group.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(GROUP_TAKEOVER).await;
                    if group.state().finished == generation {
                        let conn = group.writer.clone().lock_owned().await;
                        if group.state().finished == generation {
                            group.finish(&conn);
                        }
                    }
                });
            }
        }
        match outcome.await {
            Ok(result) => result,
            Err(_) => Err(DbError::Other("the group commit was abandoned".into())),
        }
    }
}

impl SqlitePools {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`, `sqlite:PATH` or
    /// `sqlite::memory:`): one writer connection and the readers.
    pub async fn connect(url: &str, settings: &SqliteSettings) -> Result<SqlitePools, StoreError> {
        let memory = url.contains(":memory:");
        let path = if memory { String::new() } else { path_of(url)? };
        let writer = open(&path, settings, memory)?;
        let checkpointer = if memory {
            None
        } else {
            writer.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES).map_err(backend)?;
            writer.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT).map_err(backend)?;
            Some(start_checkpointer(&path, settings)?)
        };
        let write = Arc::new(Mutex::new(writer));
        // An in-memory database exists per connection: readers must share the writer's.
        let read = if memory {
            vec![write.clone()]
        } else {
            (0..settings.readers.max(1))
                .map(|_| open(&path, settings, false).map(|c| Arc::new(Mutex::new(c))))
                .collect::<Result<_, _>>()?
        };
        let write_wait = Arc::new(Histogram::new(WAIT_BOUNDS));
        let group = (!memory).then(|| {
            Arc::new(GroupCommit {
                writer: write.clone(),
                queued: AtomicUsize::new(0),
                state: std::sync::Mutex::new(GroupState::default()),
                wait: write_wait.clone(),
                sizes: Histogram::new(GROUP_BOUNDS),
            })
        });
        Ok(SqlitePools {
            write,
            read,
            next: AtomicUsize::new(0),
            group,
            path: (!memory).then_some(path),
            settings: settings.clone(),
            snapshots: Arc::new(tokio::sync::Semaphore::new(SNAPSHOTS)),
            _checkpointer: checkpointer,
            read_wait: Histogram::new(WAIT_BOUNDS),
            write_wait,
            activity: None,
        })
    }

    async fn reader(&self) -> OwnedMutexGuard<Connection> {
        // Take a free reader if there is one; otherwise wait for the next in turn.
        for c in &self.read {
            if let Ok(g) = c.clone().try_lock_owned() {
                self.read_wait.observe(0.0);
                return g;
            }
        }
        let asked = Instant::now();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.read.len();
        let g = self.read[i].clone().lock_owned().await;
        self.read_wait.observe_duration(asked.elapsed());
        g
    }

    /// Runs `f` on the writer connection, outside scimd's transactions (e.g. for an
    /// application's own migrations).
    pub async fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut conn = self.write.lock().await;
        if let Some(group) = &self.group {
            group.finish(&conn);
        }
        f(&mut conn)
    }
}

#[async_trait]
impl Pools for SqlitePools {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(SqliteTx::begin(self.reader().await, false)?))
    }
    async fn write(&self) -> Result<Box<dyn Tx>, StoreError> {
        match &self.group {
            Some(group) => Ok(Box::new(GroupedTx::begin(group.clone()).await?)),
            None => {
                let asked = Instant::now();
                let conn = self.write.clone().lock_owned().await;
                self.write_wait.observe_duration(asked.elapsed());
                Ok(Box::new(SqliteTx::begin(conn, true)?))
            }
        }
    }
    fn activity(&self) -> Option<&dyn Pools> {
        self.activity.as_deref().map(|p| p as &dyn Pools)
    }
    fn stats(&self) -> DbStats {
        // A connection whose lock is held is in use (probed without waiting).
        let busy = |c: &Arc<Mutex<Connection>>| u64::from(c.try_lock().is_err());
        DbStats {
            pools: vec![
                PoolUse {
                    pool: "read".into(),
                    size: self.read.len() as u64,
                    in_use: self.read.iter().map(busy).sum(),
                    max: self.read.len() as u64,
                    wait: self.read_wait.snapshot(),
                },
                PoolUse {
                    pool: "write".into(),
                    size: 1,
                    in_use: busy(&self.write),
                    max: 1,
                    wait: self.write_wait.snapshot(),
                },
            ],
            group_commit: self.group.as_ref().map(|g| g.sizes.snapshot()),
            ..DbStats::default()
        }
    }
    async fn read_one(&self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        let conn = self.reader().await;
        Ok(run(&conn, &sql)?)
    }
    /// On a connection opened for it (a few hundred microseconds), so that a slow client
    /// holds no reader the other requests need. (In memory, on the shared connection.)
    fn storage_full(&self) -> bool {
        let Some(path) = &self.path else { return false };
        let dir = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty());
        match rustix::fs::statvfs(dir.unwrap_or(std::path::Path::new("."))) {
            Ok(st) => st.f_bavail.saturating_mul(st.f_frsize) < MIN_FREE_BYTES,
            Err(_) => false,
        }
    }

    async fn snapshot(&self) -> Result<Box<dyn Tx>, StoreError> {
        let permit = self.snapshots.clone().acquire_owned().await.map_err(backend)?;
        let conn = match &self.path {
            Some(path) => Arc::new(Mutex::new(open(path, &self.settings, false)?)).lock_owned().await,
            None => self.reader().await,
        };
        Ok(Box::new(Permitted { tx: Box::new(SqliteTx::begin(conn, false)?), _permit: permit }))
    }
}

impl SqlStore<SqlitePools> {
    /// Opens the database at `url` and applies scimd's migrations.
    pub async fn open(url: &str, settings: &SqliteSettings) -> Result<SqliteStore, StoreError> {
        let mut pools = SqlitePools::connect(url, settings).await?;
        pools.with_writer(|c| migrate(c, MIGRATIONS)).await?;
        let log = SqlitePools::connect(&activity_url(url)?, &SqliteSettings { readers: 1, ..settings.clone() }).await?;
        log.with_writer(|c| migrate(c, ACTIVITY_MIGRATIONS)).await?;
        pools.activity = Some(Box::new(log));
        Ok(SqlStore::new(pools))
    }

    /// Writes a consistent copy of the database to a new file at `path` (`VACUUM INTO`): one
    /// snapshot, taken while writes go on, compacted. The file must not exist yet.
    pub async fn backup(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if path.exists() {
            return Err(StoreError::Backend(format!("{} exists already; name a new file", path.display())));
        }
        let target = path.to_str().ok_or_else(|| StoreError::Backend("the backup path is not UTF-8".into()))?;
        let conn = self.pools.reader().await;
        conn.execute("VACUUM INTO ?1", [target]).map_err(backend)?;
        Ok(())
    }

    /// SQLite's own consistency check (`PRAGMA integrity_check`): "ok" when sound.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let conn = self.pools.reader().await;
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(backend)
    }

    pub async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_migrated_by_a_newer_version_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        let newer = [(1, "CREATE TABLE a (x INTEGER)"), (2, "CREATE TABLE b (x INTEGER)")];
        migrate(&mut conn, &newer).unwrap();
        migrate(&mut conn, &newer).unwrap();
        let err = migrate(&mut conn, &newer[..1]).unwrap_err().to_string();
        assert!(err.contains("migration 2") && err.contains("up to 1"), "{err}");
    }
}
