//! Reads from PostgreSQL hot standbys (`database_read_url`).
//!
//! A replica serves a read of a tenant's resources only when it is known to hold every
//! write this process has committed for that tenant, and is no further behind the primary
//! than `max_lag`; otherwise the read goes to the primary. What a replica holds is learnt
//! without touching the requests: every `POLL` a watcher notes the primary's WAL position
//! with the moment it read it, then asks the replica how far it has replayed; once the
//! replica has replayed past a noted position, it holds every commit made before that
//! moment (`fresh_as_of`). A write notes its tenant's commit moment (`Replicas::wrote`),
//! so a read that follows a client's own write (a `Location` follow-up, the GET by filter
//! Entra ID sends after a create) stays on the primary until a replica has that write.
//!
//! A replica that stops answering, or falls behind by more than `max_lag`, is skipped until
//! it answers and catches up again; a read that fails on a replica (it went away mid-way, a
//! query cancelled by a recovery conflict) runs again on the primary.

use crate::conn::Row;
use crate::pg_lease::Lender;
use crate::postgres::PgPools;
use crate::sql::{Dialect, Sql};
use crate::store::Pools;
use async_trait::async_trait;
use scimd_core::stats::{DbStats, ReplicaUse};
use scimd_core::store::StoreError;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a replica's position is compared with the primary's.
const POLL: Duration = Duration::from_millis(50);
/// How long the watcher waits for either server's answer.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// Noted primary positions kept while a replica is behind (about 50 s of polls).
const MAX_SAMPLES: usize = 1000;

/// The primary's WAL write position, in bytes. A commit that has returned is at or before it.
const PRIMARY_POSITION: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint";
/// How far a standby has replayed (a server that is no standby: its own position).
const REPLAYED_POSITION: &str = "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
     ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint";

/// One hot standby.
pub(crate) struct Replica {
    /// `host:port`, as the metrics name it.
    name: String,
    pools: PgPools,
    /// Every commit on the primary before this moment is on the replica; None while it
    /// does not answer.
    fresh_as_of: Mutex<Option<Instant>>,
    reads: AtomicU64,
    fallbacks: AtomicU64,
}

impl Replica {
    fn fresh_as_of(&self) -> Option<Instant> {
        *self.fresh_as_of.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_fresh(&self, to: Option<Instant>) {
        let mut fresh = self.fresh_as_of.lock().unwrap_or_else(|e| e.into_inner());
        match (fresh.is_some(), to.is_some()) {
            (true, false) => {
                tracing::warn!(replica = %self.name, "read replica unavailable; its reads go to the primary")
            }
            (false, true) => tracing::info!(replica = %self.name, "read replica in use"),
            _ => {}
        }
        *fresh = to;
    }

    /// Counts a read's outcome; a failure takes the replica out of use until the watcher
    /// sees it answer again.
    fn outcome<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match &result {
            Ok(_) => {
                self.reads.fetch_add(1, Ordering::Relaxed);
            }
            Err(StoreError::Unavailable(..)) => {
                self.set_fresh(None);
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        result
    }
}

/// A replica reads like any pool, and refuses writes.
#[async_trait]
impl Pools for Replica {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn read(&self) -> Result<Box<dyn crate::conn::Tx>, StoreError> {
        self.outcome(self.pools.read().await)
    }
    async fn write(&self) -> Result<Box<dyn crate::conn::Tx>, StoreError> {
        Err(StoreError::Backend("a read replica takes no writes".into()))
    }
    async fn read_one(&self, sql: Sql) -> Result<Vec<Row>, StoreError> {
        self.outcome(self.pools.read_one(sql).await)
    }
    async fn snapshot(&self) -> Result<Box<dyn crate::conn::Tx>, StoreError> {
        self.outcome(self.pools.snapshot().await)
    }
}

/// The replicas of one primary, and which tenants' writes they may not hold yet.
pub(crate) struct Replicas {
    members: Vec<Arc<Replica>>,
    next: AtomicUsize,
    max_lag: Duration,
    /// When this process last committed a write of each tenant.
    writes: Mutex<HashMap<String, Instant>>,
    /// Dropping them stops the watchers.
    _watchers: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// Tenants' write moments kept before old ones are forgotten (an entry older than
/// `max_lag` decides nothing: a replica in use is fresher than that).
const WRITES_KEPT: usize = 4096;

impl Replicas {
    /// Starts watching the replicas' positions against `primary` (their pools connect
    /// lazily: one that is down at start is used once it answers).
    pub(crate) fn start(primary: Arc<Lender>, replicas: Vec<(String, PgPools)>, max_lag: Duration) -> Replicas {
        let mut watchers = Vec::new();
        let members: Vec<Arc<Replica>> = replicas
            .into_iter()
            .map(|(name, pools)| {
                let replica = Arc::new(Replica {
                    name,
                    pools,
                    fresh_as_of: Mutex::new(None),
                    reads: AtomicU64::new(0),
                    fallbacks: AtomicU64::new(0),
                });
                let (stop, stopped) = tokio::sync::oneshot::channel();
                tokio::spawn(watch(primary.clone(), replica.clone(), stopped));
                watchers.push(stop);
                replica
            })
            .collect();
        Replicas {
            members,
            next: AtomicUsize::new(0),
            max_lag,
            writes: Mutex::new(HashMap::new()),
            _watchers: watchers,
        }
    }

    /// A replica that holds every write of `tenant` this process made and is within
    /// `max_lag` of the primary, taken in turns; None: read from the primary.
    pub(crate) fn choose(&self, tenant: &str) -> Option<&Replica> {
        let now = Instant::now();
        let written = self.writes.lock().unwrap_or_else(|e| e.into_inner()).get(tenant).copied();
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &*self.members[(start + i) % n]).find(|r| {
            r.pools.reachable()
                && r.fresh_as_of().is_some_and(|fresh| {
                    now.saturating_duration_since(fresh) <= self.max_lag && written.is_none_or(|w| w < fresh)
                })
        })
    }

    /// Notes that a write of `tenant` has committed (or may have).
    pub(crate) fn wrote(&self, tenant: &str) {
        let now = Instant::now();
        let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        if writes.len() >= WRITES_KEPT && !writes.contains_key(tenant) {
            writes.retain(|_, at| now.saturating_duration_since(*at) <= self.max_lag);
        }
        writes.insert(tenant.to_string(), now);
    }

    pub(crate) fn stats(&self, into: &mut DbStats) {
        let now = Instant::now();
        for r in &self.members {
            let mut pool = r.pools.stats().pools;
            for p in &mut pool {
                p.pool = format!("replica {}", r.name);
            }
            into.pools.extend(pool);
            into.replicas.push(ReplicaUse {
                replica: r.name.clone(),
                lag_seconds: r.fresh_as_of().map(|f| now.saturating_duration_since(f).as_secs_f64()),
                reads: r.reads.load(Ordering::Relaxed),
                fallbacks: r.fallbacks.load(Ordering::Relaxed),
            });
        }
    }
}

/// Compares the replica's replayed position with the primary's every `POLL`.
async fn watch(primary: Arc<Lender>, replica: Arc<Replica>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    // The primary's positions not yet replayed, oldest first, with when they were read.
    let mut noted: VecDeque<(Instant, i64)> = VecDeque::new();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let at = Instant::now();
        let position = tokio::time::timeout(POLL_TIMEOUT, async {
            sqlx::query_scalar::<_, i64>(PRIMARY_POSITION).fetch_one(&mut *primary.pooled().await?).await
        })
        .await;
        let Ok(Ok(position)) = position else {
            // The primary does not answer: nothing can be learnt now, and its own health
            // check answers requests.
            continue;
        };
        if noted.len() == MAX_SAMPLES {
            noted.pop_front();
        }
        noted.push_back((at, position));
        let replayed = tokio::time::timeout(POLL_TIMEOUT, async {
            let mut conn = replica.pools.lender().pooled().await?;
            sqlx::query_scalar::<_, Option<i64>>(REPLAYED_POSITION).fetch_one(&mut *conn).await
        })
        .await;
        match replayed {
            Ok(Ok(Some(replayed))) => {
                let mut fresh = None;
                while let Some(&(when, pos)) = noted.front() {
                    if pos > replayed {
                        break;
                    }
                    fresh = Some(when);
                    noted.pop_front();
                }
                // Behind every noted position: what it held before still holds.
                if let Some(f) = fresh {
                    replica.set_fresh(Some(f));
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                noted.clear();
                replica.set_fresh(None);
            }
        }
    }
}
