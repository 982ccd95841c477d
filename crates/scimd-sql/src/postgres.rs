//! PostgreSQL: one pool shared by reads and writes; migrations run under PostgreSQL's
//! advisory lock, so replicas starting together do not race; row locks (`FOR UPDATE`)
//! serialise writers of the same resource across replicas.

use crate::conn::{Row, Tx};
use crate::sql::Dialect;
use crate::sql::Sql;
use crate::store::{Pools, SqlStore};
use async_trait::async_trait;
use scimd_core::store::StoreError;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
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
    /// The schema scimd's tables live in (`search_path`); the user's default when None.
    pub schema: Option<String>,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            max_connections: 16,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            schema: None,
        }
    }
}

pub struct PgPools {
    pool: PgPool,
    /// Dropping it stops the statistics keeper (see `keep_statistics`).
    _statistics: Option<tokio::sync::oneshot::Sender<()>>,
}

/// scimd's own tables, whose planner statistics `keep_statistics` refreshes.
const OWN_TABLES: &str = "'scim_users', 'scim_groups', 'scim_members', 'scim_user_emails'";
/// How often the statistics keeper looks.
const STATISTICS_EVERY: Duration = Duration::from_secs(5);

/// Re-analyses scimd's tables once they have changed by half since their last analysis.
///
/// Without statistics PostgreSQL's planner takes a table for empty and may answer a lookup
/// by id by walking every row of the tenant. That is the state of every table during an
/// initial sync (analysed empty at start; autovacuum, where it is on, first looks a minute
/// later), the very moment an identity provider pushes tens of thousands of users. With
/// growth by half as the trigger, a table of any size is analysed a few times in its life.
async fn keep_statistics(pool: PgPool, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let stale = format!(
        "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() AND s.relname IN ({OWN_TABLES}) \
         AND s.n_mod_since_analyze > 500 + 0.5 * GREATEST(c.reltuples, 0)"
    );
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(STATISTICS_EVERY) => {}
        }
        if pool.is_closed() {
            return;
        }
        let tables: Vec<String> = match sqlx::query_scalar(sqlx::AssertSqlSafe(stale.as_str())).fetch_all(&pool).await {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(error = %e, "could not read table statistics");
                continue;
            }
        };
        for table in tables {
            // One of OWN_TABLES, as the query above only returns those.
            match sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}"))).execute(&pool).await {
                Ok(_) => tracing::debug!(table, "statistics refreshed"),
                Err(e) => tracing::warn!(table, error = %e, "ANALYZE failed"),
            }
        }
    }
}

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<PgPools>;

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl Pools for PgPools {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(self.pool.begin().await.map_err(backend)?))
    }
    async fn write(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(self.pool.begin().await.map_err(backend)?))
    }
    async fn read_one(&self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        Ok(crate::conn::fetch_all(&self.pool, sql).await?)
    }
}

impl PgPools {
    /// Connects to `url` (`postgres://…`).
    pub async fn connect(url: &str, settings: &PostgresSettings) -> Result<PgPools, StoreError> {
        if let Some(schema) = &settings.schema
            && (schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(StoreError::Backend(format!("invalid schema name '{schema}'")));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("scimd")
            .options([("statement_timeout", settings.statement_timeout.as_millis().to_string())]);
        let schema = settings.schema.clone();
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .min_connections(settings.min_connections)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    if let Some(schema) = schema {
                        // A plain identifier, checked above.
                        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(backend)?;
        Ok(PgPools { pool, _statistics: None })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
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
        tokio::spawn(keep_statistics(pools.pool.clone(), stopped));
        Ok(SqlStore { pools: PgPools { _statistics: Some(stop), ..pools } })
    }

    pub async fn close(&self) {
        self.pools.pool.close().await;
    }
}
