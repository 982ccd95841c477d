//! One transaction, whatever the database: the store's logic is written once against this
//! and runs on SQLite and PostgreSQL alike.

use crate::sql::{Dialect, Sql};
use async_trait::async_trait;
use scimd_core::store::{Conflict, Outage, StoreError};
use sqlx::Column as _;

/// A database failure, classified as the store needs it.
#[derive(Debug, Clone)]
pub enum DbError {
    /// A unique index refused the write.
    Unique,
    /// The transaction committed nothing and can be run again (`Conflict` says why).
    Retry(Conflict, String),
    /// The database cannot serve now (down, full, busy).
    Unavailable(Outage, String),
    /// This connection's server process was told to end (`pg_terminate_backend` by an
    /// administrator or a pooler, or a shutdown): the server may well serve a new one.
    Terminated(String),
    /// This connection failed (reset by the server, a pooler or a network device; closed
    /// mid-answer): a transaction on it committed nothing unless its `COMMIT` was sent.
    /// Whether the server serves a new one is for its health check to say.
    Lost(String),
    /// A value too large for an index entry (PostgreSQL's btree takes about 2.7 kB).
    TooLarge,
    Other(String),
}

impl DbError {
    /// The store-level error, naming the attribute a unique index protects.
    pub fn unique_on(self, attribute: &str) -> StoreError {
        match self {
            DbError::Unique => StoreError::Uniqueness(attribute.to_string()),
            other => other.into(),
        }
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique => StoreError::Backend("unexpected unique violation".into()),
            DbError::Retry(cause, why) => StoreError::Unavailable(Outage::Conflict(cause), why),
            DbError::Unavailable(outage, why) => StoreError::Unavailable(outage, why),
            DbError::Terminated(why) | DbError::Lost(why) => StoreError::Unavailable(Outage::Unreachable, why),
            DbError::TooLarge => StoreError::Rejected(scimd_proto::ScimError::invalid_value(
                "a value is too long for this server to index (userName, displayName, externalId, emails and \
                 member values must stay under about 2,000 bytes)",
            )),
            DbError::Other(why) => StoreError::Backend(why),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        let unavailable = |outage| DbError::Unavailable(outage, e.to_string());
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Unique,
            sqlx::Error::Database(db) => match db.code().as_deref().unwrap_or("") {
                "40001" => DbError::Retry(Conflict::Serialization, e.to_string()),
                "40P01" => DbError::Retry(Conflict::Deadlock, e.to_string()),
                // SQLite's busy and busy-snapshot.
                "5" | "517" => DbError::Retry(Conflict::Locked, e.to_string()),
                // admin_shutdown: this connection's backend was terminated; or it ended itself,
                // left idle inside a transaction too long (idle_in_transaction_session_timeout).
                "57P01" | "25P03" => DbError::Terminated(e.to_string()),
                // program_limit_exceeded: an index entry over the page limit.
                "54000" => DbError::TooLarge,
                // disk_full
                "53100" => unavailable(Outage::StorageFull),
                // too_many_connections; query_canceled (statement_timeout); lock_not_available
                "53300" | "57014" | "55P03" => unavailable(Outage::Busy),
                // connection exceptions; admin or crash shutdown, cannot connect now; a
                // read-only standby; out of memory or other resources.
                code if code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("53")
                    || code == "25006" =>
                {
                    unavailable(Outage::Unreachable)
                }
                _ => DbError::Other(e.to_string()),
            },
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => DbError::Lost(e.to_string()),
            sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => unavailable(Outage::Unreachable),
            sqlx::Error::PoolTimedOut => unavailable(Outage::Busy),
            _ => DbError::Other(e.to_string()),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// A column value, decoded without knowing its type in advance.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub struct Row(pub Vec<Cell>);

impl Row {
    pub fn int(&self, i: usize) -> DbResult<i64> {
        match self.0.get(i) {
            Some(Cell::Int(v)) => Ok(*v),
            other => Err(DbError::Other(format!("column {i}: expected an integer, got {other:?}"))),
        }
    }
    pub fn bool(&self, i: usize) -> DbResult<bool> {
        match self.0.get(i) {
            Some(Cell::Bool(v)) => Ok(*v),
            Some(Cell::Int(v)) => Ok(*v != 0),
            other => Err(DbError::Other(format!("column {i}: expected a boolean, got {other:?}"))),
        }
    }
    pub fn text(&self, i: usize) -> DbResult<String> {
        self.str(i).map(str::to_string)
    }
    /// Text without copying it.
    pub fn str(&self, i: usize) -> DbResult<&str> {
        match self.0.get(i) {
            Some(Cell::Text(v)) => Ok(v),
            other => Err(DbError::Other(format!("column {i}: expected text, got {other:?}"))),
        }
    }
    pub fn cell(&self, i: usize) -> &Cell {
        self.0.get(i).unwrap_or(&Cell::Null)
    }
    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Cell::Int(v)) => Some(*v),
            _ => None,
        }
    }
    pub fn opt_text(&self, i: usize) -> Option<String> {
        self.opt_str(i).map(str::to_string)
    }
    /// Text without copying it; None for NULL, another type or no such column (without
    /// the error `str` would describe).
    pub fn opt_str(&self, i: usize) -> Option<&str> {
        match self.0.get(i) {
            Some(Cell::Text(v)) => Some(v),
            _ => None,
        }
    }
}

/// An open transaction.
#[async_trait]
pub trait Tx: Send {
    fn dialect(&self) -> Dialect;
    async fn rows(&mut self, sql: Sql) -> DbResult<Vec<Row>>;
    async fn exec(&mut self, sql: Sql) -> DbResult<u64>;
    async fn commit(self: Box<Self>) -> DbResult<()>;

    async fn row(&mut self, sql: Sql) -> DbResult<Option<Row>> {
        Ok(self.rows(sql).await?.into_iter().next())
    }

    /// Runs `before`, then `last`, and gives `last`'s rows. The statements must not depend
    /// on one another: none reads what another writes, and no two write the same row
    /// (`last` may have a `WITH` of its own). PostgreSQL runs them all as one statement (the
    /// others as data-modifying `WITH` clauses of `last`: one round trip instead of
    /// several); elsewhere they run one after the other.
    async fn batch(&mut self, before: Vec<Sql>, last: Sql) -> DbResult<Vec<Row>> {
        for s in before {
            self.exec(s).await?;
        }
        self.rows(last).await
    }
}

/// `before` as data-modifying `WITH` clauses of `last` (see `Tx::batch`).
pub fn chained(before: Vec<Sql>, mut last: Sql) -> Sql {
    if before.is_empty() {
        return last;
    }
    let mut s = last.fork();
    for (i, b) in before.into_iter().enumerate() {
        s.push(if i == 0 { "WITH " } else { ", " }).push(&format!("w{i} AS (")).append(b).push(")");
    }
    // A last statement with a `WITH` of its own continues the list.
    match last.text.strip_prefix("WITH ") {
        Some(rest) => {
            last.text = rest.to_string();
            s.push(", ")
        }
        None => s.push(" "),
    };
    s.append(last);
    s
}

/// A transaction that holds a permit for as long as it lives: long reads (a streamed
/// answer) are bounded in number, so that they never take every connection.
pub struct Permitted {
    pub tx: Box<dyn Tx>,
    pub _permit: tokio::sync::OwnedSemaphorePermit,
}

#[async_trait]
impl Tx for Permitted {
    fn dialect(&self) -> Dialect {
        self.tx.dialect()
    }
    async fn rows(&mut self, sql: Sql) -> DbResult<Vec<Row>> {
        self.tx.rows(sql).await
    }
    async fn exec(&mut self, sql: Sql) -> DbResult<u64> {
        self.tx.exec(sql).await
    }
    async fn commit(self: Box<Self>) -> DbResult<()> {
        self.tx.commit().await
    }
    async fn batch(&mut self, before: Vec<Sql>, last: Sql) -> DbResult<Vec<Row>> {
        self.tx.batch(before, last).await
    }
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                $crate::sql::Bind::Text(s) => q.bind(s),
                $crate::sql::Bind::Int(i) => q.bind(i),
                $crate::sql::Bind::Float(f) => q.bind(f),
                $crate::sql::Bind::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

pub(crate) fn decode<R: sqlx::Row>(row: &R) -> Row
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    // Chosen by the column's type: a `try_get` of the wrong type builds an error with a
    // formatted message, and trying each type in turn did that for every text cell of every
    // row (five times a row of a list page).
    let cells = (0..row.len())
        .map(|i| {
            let ty = row.column(i).type_info();
            let cell = if <i64 as sqlx::Type<R::Database>>::compatible(ty) {
                row.try_get::<Option<i64>, _>(i).map(|v| v.map_or(Cell::Null, Cell::Int))
            } else if <String as sqlx::Type<R::Database>>::compatible(ty) {
                row.try_get::<Option<String>, _>(i).map(|v| v.map_or(Cell::Null, Cell::Text))
            } else {
                row.try_get::<Option<bool>, _>(i).map(|v| v.map_or(Cell::Null, Cell::Bool))
            };
            cell.unwrap_or(Cell::Null)
        })
        .collect();
    Row(cells)
}
