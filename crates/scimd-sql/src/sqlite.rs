//! SQLite: WAL mode, one writer connection (SQLite has one writer at a time; queuing
//! in-process is cheaper than lock retries), a pool of readers, `scim_fold` registered on
//! every connection.

use crate::conn::Tx;
use crate::sql::Dialect;
use crate::store::{Pools, SqlStore};
use async_trait::async_trait;
use scimd_core::store::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

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

pub struct SqlitePools {
    read: SqlitePool,
    write: SqlitePool,
}

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqlitePools>;

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl Pools for SqlitePools {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(self.read.begin().await.map_err(backend)?))
    }
    async fn write(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(self.write.begin().await.map_err(backend)?))
    }
}

impl SqlitePools {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`, `sqlite:PATH` or
    /// `sqlite::memory:`): one writer connection and the readers.
    pub async fn connect(url: &str, settings: &SqliteSettings) -> Result<SqlitePools, StoreError> {
        let memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(if memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
            .synchronous(match settings.durability {
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            })
            .foreign_keys(true)
            .busy_timeout(settings.busy_timeout)
            .statement_cache_capacity(256);
        let pool = |max: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        let mut handle = conn.lock_handle().await?;
                        crate::fold::register(handle.as_raw_handle())
                            .map_err(|e| sqlx::Error::Configuration(e.into()))?;
                        Ok(())
                    })
                })
                .connect_with(options.clone())
        };
        let write = pool(1).await.map_err(backend)?;
        // An in-memory database exists per connection: readers must share the writer's.
        let read = if memory { write.clone() } else { pool(settings.readers.max(1)).await.map_err(backend)? };
        Ok(SqlitePools { read, write })
    }

    /// The writer pool (one connection), e.g. for an application's own migrations.
    pub fn writer(&self) -> &SqlitePool {
        &self.write
    }
}

impl SqlStore<SqlitePools> {
    /// Opens the database at `url` and applies scimd's migrations.
    pub async fn open(url: &str, settings: &SqliteSettings) -> Result<SqliteStore, StoreError> {
        let pools = SqlitePools::connect(url, settings).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pools.write)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        Ok(SqlStore { pools })
    }

    /// SQLite's own consistency check (`PRAGMA integrity_check`): "ok" when sound.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let row = sqlx::query("PRAGMA integrity_check").fetch_one(&self.pools.read).await.map_err(backend)?;
        row.try_get::<String, _>(0).map_err(backend)
    }

    pub async fn close(&self) {
        self.pools.write.close().await;
        self.pools.read.close().await;
    }
}
