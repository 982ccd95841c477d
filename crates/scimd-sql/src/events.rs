//! The event log in SQL (`scimd_events`): appended inside each write's transaction, read in
//! sequence order.
//!
//! On SQLite writes are serialised, so a row's number is its commit order and is the
//! sequence. On PostgreSQL transactions commit in any order, so a row's id is not: an event
//! gets its sequence after it has committed (`sequence`), from a sequencer that numbers
//! what it can see after the highest number already given, so a reader that has passed
//! sequence N never finds an event numbered below N later.

use crate::conn::{Row, Tx};
use crate::sql::{Bind, Dialect, Sql};
use crate::store::{Pools, sql};
use scimd_core::events::{LoggedEvent, MemberDelta, NewEvent};
use scimd_core::store::StoreError;
use scimd_proto::value::json_text;
use std::collections::HashSet;

type Result<T> = std::result::Result<T, StoreError>;

/// Appends one write's events, with one transaction id for them all.
pub(crate) async fn append(tx: &mut dyn Tx, tenant: &str, events: &[NewEvent], now: &str) -> Result<()> {
    for s in statements(tx.dialect(), tenant, events, now, None) {
        tx.exec(s).await?;
    }
    Ok(())
}

/// The statements that append one write's events (none for none), to run on their own or
/// in a batch with the write (`Tx::batch`); only where `guard` (an SQL condition) holds,
/// when given.
pub(crate) fn statements(
    dialect: Dialect,
    tenant: &str,
    events: &[NewEvent],
    now: &str,
    guard: Option<&str>,
) -> Vec<Sql> {
    if events.is_empty() {
        return vec![];
    }
    let txn = uuid::Uuid::now_v7().simple().to_string();
    events
        .chunks(100)
        .map(|chunk| {
            let mut s = sql(dialect);
            s.push("INSERT INTO scimd_events (tenant, txn, time, resource_type, resource_id, payload) ");
            // Guarded: the rows are selected from their VALUES where the condition holds.
            s.push(if guard.is_some() { "SELECT * FROM (VALUES " } else { "VALUES " });
            for (i, e) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.push("(").bind_text(tenant).push(", ").bind_text(txn.as_str()).push(", ").bind_text(now);
                s.push(", ").bind_text(e.resource_type.as_str()).push(", ").bind_text(e.resource_id.as_str());
                s.push(", ").bind_text(json_text(&e.payload));
                if s.dialect == Dialect::Postgres {
                    s.push("::jsonb");
                }
                s.push(")");
            }
            if let Some(guard) = guard {
                s.push(") v WHERE ").push(guard);
            }
            s
        })
        .collect()
}

/// A membership delta as several changes of one write build it: a member added then
/// removed (or the reverse) is no change to report, though rows changed (and so the
/// version).
#[derive(Default)]
pub(crate) struct Delta {
    added: Vec<(String, String)>,
    removed: Vec<String>,
    /// Those of `added` and `removed` that still count.
    added_now: HashSet<String>,
    removed_now: HashSet<String>,
    pub(crate) rows_changed: bool,
}

impl Delta {
    /// Members inserted: (id, type).
    pub(crate) fn added(&mut self, ids: Vec<(String, String)>) {
        self.rows_changed |= !ids.is_empty();
        for (id, kind) in ids {
            if !self.removed_now.remove(&id) {
                self.added_now.insert(id.clone());
                self.added.push((id, kind));
            }
        }
    }

    /// Members deleted.
    pub(crate) fn removed(&mut self, ids: Vec<String>) {
        self.rows_changed |= !ids.is_empty();
        for id in ids {
            if !self.added_now.remove(&id) {
                self.removed_now.insert(id.clone());
                self.removed.push(id);
            }
        }
    }

    /// The net change, in the order members were given.
    pub(crate) fn net(self) -> MemberDelta {
        let (added_now, removed_now) = (self.added_now, self.removed_now);
        MemberDelta {
            added: self.added.into_iter().filter(|(id, _)| added_now.contains(id)).collect(),
            removed: self.removed.into_iter().filter(|id| removed_now.contains(id)).collect(),
        }
    }
}

/// A key for PostgreSQL's advisory lock that lets one sequencer run at a time.
const SEQUENCER_LOCK: i64 = 0x5c1d_e7e4;

/// PostgreSQL: numbers the committed events not numbered yet; returns how many. Nothing to
/// do on SQLite.
///
/// Runs take turns (an advisory lock), and each one's statement sees every commit before
/// it, including the numbers the previous run gave. Within a run, events go in the order
/// they were inserted: two writes to the same resource are serialised by its row lock,
/// and the second inserts its events only after the first has committed, so one
/// resource's events keep their order.
pub(crate) async fn sequence<P: Pools>(pools: &P) -> Result<u64> {
    if pools.dialect() != Dialect::Postgres {
        return Ok(0);
    }
    let mut probe = sql(Dialect::Postgres);
    probe.push("SELECT 1 FROM scimd_events WHERE seq IS NULL LIMIT 1");
    if pools.read_one(probe).await?.is_empty() {
        return Ok(0);
    }
    let mut tx = pools.write().await?;
    let mut lock = sql(Dialect::Postgres);
    lock.push("SELECT pg_advisory_xact_lock(").bind(Bind::Int(SEQUENCER_LOCK)).push(")");
    tx.rows(lock).await?;
    let mut s = sql(Dialect::Postgres);
    s.push(
        "WITH ready AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM scimd_events \
         WHERE seq IS NULL ORDER BY id LIMIT 10000), \
         base AS (SELECT COALESCE(MAX(seq), 0) AS b FROM scimd_events) \
         UPDATE scimd_events e SET seq = base.b + ready.n FROM ready, base WHERE e.id = ready.id",
    );
    let n = tx.exec(s).await?;
    tx.commit().await?;
    Ok(n)
}

/// The columns `decode` reads (the payload as text on either database).
fn columns(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "seq, tenant, txn, time, resource_type, resource_id, payload",
        Dialect::Postgres => "seq, tenant, txn, time, resource_type, resource_id, payload::text",
    }
}

fn decode(r: &Row) -> Result<LoggedEvent> {
    let text = r.text(6)?;
    let payload =
        serde_json::from_str(&text).map_err(|e| StoreError::Backend(format!("corrupt event payload: {e}")))?;
    Ok(LoggedEvent {
        seq: r.int(0)?,
        tenant: r.text(1)?,
        txn: r.text(2)?,
        time: r.text(3)?,
        resource_type: r.text(4)?,
        resource_id: r.text(5)?,
        payload,
    })
}

/// A tenant's events after `after`, oldest first.
pub(crate) async fn after<P: Pools>(pools: &P, tenant: &str, after: i64, limit: u32) -> Result<Vec<LoggedEvent>> {
    sequence(pools).await?;
    let d = pools.dialect();
    let mut s = sql(d);
    s.push("SELECT ").push(columns(d)).push(" FROM scimd_events WHERE tenant = ").bind_text(tenant);
    s.push(" AND seq > ").bind(Bind::Int(after)).push(" ORDER BY seq LIMIT ").bind(Bind::Int(i64::from(limit)));
    pools.read_one(s).await?.iter().map(decode).collect()
}

/// The newest sequence number of a tenant's events (0 if none).
pub(crate) async fn last<P: Pools>(pools: &P, tenant: &str) -> Result<i64> {
    sequence(pools).await?;
    let mut s = sql(pools.dialect());
    s.push("SELECT COALESCE(MAX(seq), 0) FROM scimd_events WHERE tenant = ").bind_text(tenant);
    let rows = pools.read_one(s).await?;
    Ok(rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0))
}

/// How many of a tenant's events come after `after`.
pub(crate) async fn count<P: Pools>(pools: &P, tenant: &str, after: i64) -> Result<u64> {
    sequence(pools).await?;
    let mut s = sql(pools.dialect());
    s.push("SELECT COUNT(*) FROM scimd_events WHERE tenant = ").bind_text(tenant).push(" AND seq > ");
    s.bind(Bind::Int(after));
    let rows = pools.read_one(s).await?;
    Ok(rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0).max(0) as u64)
}

/// Removes events recorded before `before`; with `streams`, only those every stream of
/// their tenant has received.
pub(crate) async fn prune<P: Pools>(pools: &P, before: &str, streams: bool) -> Result<u64> {
    let mut tx = pools.write().await?;
    let mut s = sql(tx.dialect());
    s.push("DELETE FROM scimd_events WHERE time < ").bind_text(before).push(" AND seq IS NOT NULL");
    if streams {
        s.push(
            " AND seq <= COALESCE((SELECT MIN(k.cursor) FROM scimd_streams k WHERE k.tenant = scimd_events.tenant), seq)",
        );
    }
    let n = tx.exec(s).await?;
    tx.commit().await?;
    Ok(n)
}

/// The log's table for an application's database (the mapped mode), created if missing.
pub(crate) fn mapped_table(d: Dialect) -> Sql {
    let mut s = sql(d);
    s.push(match d {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS scimd_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, \
             txn TEXT NOT NULL, time TEXT NOT NULL, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, \
             payload TEXT NOT NULL)"
        }
        Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS scimd_events (id BIGSERIAL PRIMARY KEY, \
             seq BIGINT UNIQUE, tenant TEXT NOT NULL, \
             txn TEXT NOT NULL, time TEXT NOT NULL, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, \
             payload JSONB NOT NULL)"
        }
    });
    s
}

/// The log's indexes in an application's database.
pub(crate) fn mapped_indexes(d: Dialect) -> Vec<Sql> {
    let mut out = Vec::new();
    let mut push = |text: &str| {
        let mut s = sql(d);
        s.push(text);
        out.push(s);
    };
    push("CREATE INDEX IF NOT EXISTS scimd_events_tenant ON scimd_events (tenant, seq)");
    push("CREATE INDEX IF NOT EXISTS scimd_events_time ON scimd_events (time)");
    if d == Dialect::Postgres {
        push("CREATE INDEX IF NOT EXISTS scimd_events_unsequenced ON scimd_events (id) WHERE seq IS NULL");
    }
    out
}
