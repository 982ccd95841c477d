//! What a store reports about its database connections, for the metrics: each pool's size
//! and connections in use, how long requests waited for a connection, (SQLite) how many
//! writes each group commit carried, and the transactions run again after a conflict.
//! Counted with atomics, so that measuring costs a request nothing it would notice.

use crate::store::Conflict;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram of values against fixed upper bounds, updated without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bound: observations at most that bound (cumulative, as Prometheus counts).
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum, in millionths (of seconds, or of whatever unit is observed).
    sum_micros: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound, observations at most that)
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            if v <= *bound {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((v.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self.bounds.iter().zip(&self.counts).map(|(b, n)| (*b, n.load(Ordering::Relaxed))).collect(),
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Bounds for the time spent waiting for a connection, in seconds.
pub const WAIT_BOUNDS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];
/// Bounds for the writes one SQLite group commit carries.
pub const GROUP_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// One pool of connections.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolUse {
    /// `read`, `write` (SQLite), `postgres`, or `replica HOST:PORT` (a PostgreSQL read replica).
    pub pool: String,
    /// Connections open.
    pub size: u64,
    /// Of those, in use by a request now.
    pub in_use: u64,
    /// The most the pool opens.
    pub max: u64,
    /// How long requests waited for a connection.
    pub wait: HistogramSnapshot,
}

/// A store's connections at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbStats {
    pub pools: Vec<PoolUse>,
    /// SQLite: how many writes each group commit carried.
    pub group_commit: Option<HistogramSnapshot>,
    /// PostgreSQL: the read replicas.
    pub replicas: Vec<ReplicaUse>,
    /// Transactions run again (`ConflictCounts`), by cause's label.
    pub conflicts: Vec<(&'static str, u64)>,
}

/// How often a store's transactions committed nothing and were run again (a few times,
/// then answered 503), by cause: deadlocks here mean writers take rows in orders that
/// cross.
#[derive(Debug, Default)]
pub struct ConflictCounts {
    counts: [AtomicU64; Conflict::ALL.len()],
}

impl ConflictCounts {
    pub fn count(&self, cause: Conflict) {
        self.counts[cause as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Conflict::ALL.iter().map(|c| (c.label(), self.counts[*c as usize].load(Ordering::Relaxed))).collect()
    }
}

/// One PostgreSQL read replica.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaUse {
    /// `host:port`.
    pub replica: String,
    /// How far behind the primary it is known to be; None while it does not answer.
    pub lag_seconds: Option<f64>,
    /// Reads it has served.
    pub reads: u64,
    /// Reads it failed that went to the primary instead.
    pub fallbacks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::new(GROUP_BOUNDS);
        for v in [1.0, 3.0, 3.0, 64.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.sum, 71.0);
        let at = |b: f64| s.buckets.iter().find(|(bound, _)| *bound == b).unwrap().1;
        assert_eq!((at(1.0), at(2.0), at(4.0), at(32.0), at(64.0)), (1, 1, 3, 3, 4));
    }
}
