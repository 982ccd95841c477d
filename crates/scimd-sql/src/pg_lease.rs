//! PostgreSQL connections lent to requests and taken back without a round trip.
//!
//! sqlx's pool tests every connection that comes back to it (an empty round trip, `Sync`,
//! whatever the connection went through): for a read by id that is one round trip in two,
//! for a write one in four or five. It does so because it cannot know how the connection was
//! left. A `Lease` knows: it runs every statement itself, so a connection whose last
//! statement ended in an answer from the server, outside a transaction, is known good and
//! goes to the `Lender`'s shelf, where the next request takes it untested. Anything else
//! goes back to sqlx as before: a connection abandoned in the middle of a statement (its
//! request cancelled) or that failed other than by the server's refusal is tested there and
//! closed if broken; one left inside a transaction is rolled back first.
//!
//! The shelf holds connections of the sqlx pool, which keeps counting them: the pool's size
//! bound, connection set-up and statistics stay its own. A connection on the shelf for
//! `KEEP_FOR` or more goes back to the pool (and is tested by it as it comes back). A
//! request that finds the shelf empty waits both for the pool and for a connection coming
//! back, which is handed to it untested: with more requests than connections, the saving
//! holds. Background work takes its connections from the pool (`Lender::pooled`); while it
//! waits, connections go back to the pool, so that requests cannot starve it.

use crate::conn::{Row, bind_all, decode};
use crate::sql::Sql;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgDatabaseError, PgSeverity};
use sqlx::{AssertSqlSafe, PgPool, Postgres};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a connection stays on the shelf; after that it goes back to the pool, which
/// tests it as it comes back: its server may have ended it meanwhile.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(1);

/// How long a connection left inside a transaction has for its `ROLLBACK`.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Lender {
    pool: PgPool,
    shelf: Mutex<Shelf>,
}

struct Shelf {
    /// Known-good connections, the most recently returned last.
    idle: Vec<(PoolConnection<Postgres>, Instant)>,
    /// Requests waiting for a connection, first come first served: a known-good one coming
    /// back goes to the first still waiting, as it is (each also waits for the pool).
    requests: VecDeque<oneshot::Sender<PoolConnection<Postgres>>>,
    /// Background work waiting for the pool itself: while there is any, connections go
    /// back to the pool, so that requests cannot keep every connection from it.
    background: usize,
}

impl Lender {
    /// Starts lending `pool`'s connections; a task gives those shelved too long back to it.
    pub(crate) fn new(pool: PgPool) -> Arc<Lender> {
        let shelf = Shelf { idle: Vec::new(), requests: VecDeque::new(), background: 0 };
        let lender = Arc::new(Lender { pool, shelf: Mutex::new(shelf) });
        let weak = Arc::downgrade(&lender);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEEP_FOR).await;
                let Some(lender) = weak.upgrade() else { return };
                // Outside the lock: returning to the pool spawns its test.
                let stale = lender.lock().stale();
                drop(stale);
            }
        });
        lender
    }

    /// A connection for a request: the last one shelved, else the first of those that come
    /// back or one from the pool, whichever is first.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease, sqlx::Error> {
        let conn = match self.take_shelved() {
            Ok(conn) => conn,
            Err(handed) => tokio::select! {
                // A sender dropped unused (the lender cleared) leaves the pool to answer.
                Ok(conn) = handed => conn,
                acquired = self.pool.acquire() => acquired?,
            },
        };
        Ok(Lease { conn: Some(conn), lender: self.clone(), unsettled: false, in_transaction: false })
    }

    /// The last connection shelved; if there is none, the caller's place in the queue of
    /// requests, under the same lock (a connection coming back after this finds it).
    fn take_shelved(&self) -> Result<PoolConnection<Postgres>, oneshot::Receiver<PoolConnection<Postgres>>> {
        let mut shelf = self.lock();
        let stale = shelf.stale();
        let taken = match shelf.idle.pop() {
            Some((conn, _)) => Ok(conn),
            None => {
                // Those that got a connection from the pool instead leave their place behind.
                shelf.requests.retain(|waiter| !waiter.is_closed());
                let (waiter, handed) = oneshot::channel();
                shelf.requests.push_back(waiter);
                Err(handed)
            }
        };
        drop(shelf);
        // Outside the lock: returning to the pool spawns its test.
        drop(stale);
        taken
    }

    /// A connection straight from the pool, for work outside requests (upkeep, replicas'
    /// positions), tested by the pool when it comes back.
    pub(crate) async fn pooled(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        /// Uncounts the waiter however the wait ends (cancelled included).
        struct Waiting<'a>(&'a Lender);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.lock().background -= 1;
            }
        }
        self.lock().background += 1;
        let _waiting = Waiting(self);
        self.pool.acquire().await
    }

    /// The most connections the pool opens.
    pub(crate) fn max(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Connections on the shelf.
    pub(crate) fn shelved(&self) -> usize {
        self.lock().idle.len()
    }

    /// Gives every shelved connection back to the pool (before the pool closes: it waits
    /// for all of its connections).
    pub(crate) fn clear(&self) {
        let mut shelf = self.lock();
        let idle = std::mem::take(&mut shelf.idle);
        // The requests waiting are left to the pool's answer.
        shelf.requests.clear();
        drop(shelf);
        drop(idle);
    }

    /// Hands a known-good connection to the first request waiting, else shelves it.
    fn shelve(&self, mut conn: PoolConnection<Postgres>) {
        let mut shelf = self.lock();
        if shelf.background > 0 || self.pool.is_closed() {
            drop(shelf);
            return drop(conn);
        }
        while let Some(waiter) = shelf.requests.pop_front() {
            match waiter.send(conn) {
                Ok(()) => return,
                // That request was served by the pool meanwhile, or gave up.
                Err(back) => conn = back,
            }
        }
        shelf.idle.push((conn, Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shelf> {
        // The shelf is valid whatever a panicking holder did to it.
        self.shelf.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Shelf {
    /// Takes out the connections shelved for `KEEP_FOR` or more (the oldest are at the
    /// bottom), to be dropped once the lock is released: they go back to the pool.
    fn stale(&mut self) -> Vec<(PoolConnection<Postgres>, Instant)> {
        let now = Instant::now();
        let fresh =
            self.idle.iter().position(|(_, since)| now.duration_since(*since) < KEEP_FOR).unwrap_or(self.idle.len());
        self.idle.drain(..fresh).collect()
    }
}

/// One connection, lent to one request.
pub(crate) struct Lease {
    conn: Option<PoolConnection<Postgres>>,
    lender: Arc<Lender>,
    /// A statement was sent whose answer was not read to the end (cancelled), or the
    /// connection failed: what the next statement would read is unknown.
    unsettled: bool,
    /// `BEGIN` was run and neither `COMMIT` nor `ROLLBACK` since.
    in_transaction: bool,
}

impl Lease {
    /// Runs `sql` and gives its rows.
    pub(crate) async fn rows(&mut self, sql: Sql) -> Result<Vec<Row>, sqlx::Error> {
        let q = bind_all!(sqlx::query(AssertSqlSafe(sql.text)), sql.binds);
        self.unsettled = true;
        let result = q.fetch_all(&mut **self.conn()).await;
        self.settle(result).map(|rows| rows.iter().map(decode).collect())
    }

    /// Runs `sql` and gives the number of rows it changed.
    pub(crate) async fn exec(&mut self, sql: Sql) -> Result<u64, sqlx::Error> {
        let q = bind_all!(sqlx::query(AssertSqlSafe(sql.text)), sql.binds);
        self.unsettled = true;
        let result = q.execute(&mut **self.conn()).await;
        self.settle(result).map(|done| done.rows_affected())
    }

    /// Opens a transaction with `statement` (`BEGIN`, with options if any, and possibly a
    /// query of its own after it, whose rows are given: one round trip).
    pub(crate) async fn begin(&mut self, statement: &'static str) -> Result<Vec<Row>, sqlx::Error> {
        let rows = self.simple(statement).await?;
        self.in_transaction = true;
        Ok(rows)
    }

    pub(crate) fn lender(&self) -> &Arc<Lender> {
        &self.lender
    }

    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.simple("COMMIT").await?;
        self.in_transaction = false;
        Ok(())
    }

    /// Runs `statement` (one or more, without parameters) by the simple protocol; gives
    /// the rows of those that return any.
    async fn simple(&mut self, statement: &'static str) -> Result<Vec<Row>, sqlx::Error> {
        self.unsettled = true;
        let result = sqlx::raw_sql(statement).fetch_all(&mut **self.conn()).await;
        self.settle(result).map(|rows| rows.iter().map(decode).collect())
    }

    fn conn(&mut self) -> &mut PoolConnection<Postgres> {
        self.conn.as_mut().expect("a lease holds its connection until dropped")
    }

    /// The server's refusal of a statement (a unique violation, a timeout, a conflict)
    /// leaves the connection in a known state; any other failure, or an error that ended
    /// the session (`FATAL`: its backend terminated), does not.
    fn settle<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        self.unsettled = match &result {
            Ok(_) => false,
            Err(sqlx::Error::Database(e)) => e
                .try_downcast_ref::<PgDatabaseError>()
                .is_none_or(|e| matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
            Err(_) => true,
        };
        result
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        match (self.unsettled, self.in_transaction) {
            (false, false) => self.lender.shelve(conn),
            // sqlx's pool reads what is left of the answer, or closes the connection.
            (true, false) => drop(conn),
            // Whatever the statement did, closing the connection ends its transaction.
            (true, true) => conn.close_on_drop(),
            // Left inside a transaction (a failed write, a request cancelled between
            // statements): its locks must go now, not when the connection is next used.
            (false, true) => {
                let lender = self.lender.clone();
                tokio::spawn(async move {
                    let rollback = sqlx::raw_sql("ROLLBACK").execute(&mut *conn);
                    match tokio::time::timeout(ROLLBACK_TIMEOUT, rollback).await {
                        Ok(Ok(_)) => lender.shelve(conn),
                        _ => conn.close_on_drop(),
                    }
                });
            }
        }
    }
}
