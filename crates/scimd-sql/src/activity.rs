//! The activity log in SQL (`scimd_activity`): written in batches by the server's recorder,
//! read newest first with filters, pruned to a bounded history per tenant. On PostgreSQL it
//! is a table of the database; on SQLite a database file of its own (`Pools::activity`), so
//! that its stream of small commits never makes the readers of the data drop their page
//! caches, nor queues behind (or ahead of) SCIM writes.

use crate::conn::Row;
use crate::sql::{Bind, Sql};
use crate::store::{Pools, SqlStore, sql};
use async_trait::async_trait;
use scimd_core::activity::{Activity, ActivityLog, ActivityQuery, ActivitySummary, StatusFilter};
use scimd_core::store::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// The connections the log is read and written on.
fn log<P: Pools>(pools: &P) -> &dyn Pools {
    pools.activity().unwrap_or(pools)
}

/// Erases a tenant's records (the tenant is being erased).
pub(crate) async fn forget(log: &dyn Pools, tenant: &str) -> Result<()> {
    let mut tx = log.write().await?;
    let mut s = sql(tx.dialect());
    s.push("DELETE FROM scimd_activity WHERE tenant = ").bind_text(tenant);
    tx.exec(s).await?;
    tx.commit().await?;
    Ok(())
}

const COLUMNS: &str = "id, tenant, time, method, path, status, scim_type, detail, latency_us, resource_type, \
    resource_id, user_agent, client, request_id, request_body";

fn opt(s: &mut Sql, v: Option<&str>) {
    match v {
        Some(t) => s.bind_text(t),
        None => s.push("NULL"),
    };
}

fn decode(r: &Row) -> Result<(i64, Activity)> {
    Ok((
        r.int(0)?,
        Activity {
            tenant: r.text(1)?,
            time: r.text(2)?,
            method: r.text(3)?,
            path: r.text(4)?,
            status: u16::try_from(r.int(5)?).unwrap_or(0),
            scim_type: r.opt_text(6),
            detail: r.opt_text(7),
            latency_us: u64::try_from(r.int(8)?).unwrap_or(0),
            resource_type: r.opt_text(9),
            resource_id: r.opt_text(10),
            user_agent: r.opt_text(11),
            client: r.opt_text(12),
            request_id: r.opt_text(13),
            request_body: r.opt_text(14),
        },
    ))
}

#[async_trait]
impl<P: Pools> ActivityLog for SqlStore<P> {
    async fn record_activity(&self, batch: &[Activity]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = log(&self.pools).write().await?;
        for chunk in batch.chunks(50) {
            let mut s = sql(tx.dialect());
            s.push(
                "INSERT INTO scimd_activity (tenant, time, method, path, status, scim_type, detail, latency_us, \
                 resource_type, resource_id, user_agent, client, request_id, request_body) VALUES ",
            );
            for (i, a) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.push("(").bind_text(a.tenant.as_str()).push(", ").bind_text(a.time.as_str()).push(", ");
                s.bind_text(a.method.as_str()).push(", ").bind_text(a.path.as_str()).push(", ");
                s.bind(Bind::Int(i64::from(a.status))).push(", ");
                opt(&mut s, a.scim_type.as_deref());
                s.push(", ");
                opt(&mut s, a.detail.as_deref());
                s.push(", ").bind(Bind::Int(i64::try_from(a.latency_us).unwrap_or(i64::MAX))).push(", ");
                for v in [&a.resource_type, &a.resource_id, &a.user_agent, &a.client, &a.request_id] {
                    opt(&mut s, v.as_deref());
                    s.push(", ");
                }
                opt(&mut s, a.request_body.as_deref());
                s.push(")");
            }
            tx.exec(s).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn activity(&self, tenant: &str, q: &ActivityQuery) -> Result<Vec<(i64, Activity)>> {
        let log = log(&self.pools);
        let mut s = sql(log.dialect());
        s.push("SELECT ").push(COLUMNS).push(" FROM scimd_activity WHERE tenant = ").bind_text(tenant);
        match q.status {
            Some(StatusFilter::Class(class)) => {
                let low = i64::from(class) * 100;
                s.push(" AND status >= ").bind(Bind::Int(low)).push(" AND status < ").bind(Bind::Int(low + 100));
            }
            Some(StatusFilter::Failed) => {
                s.push(" AND status >= 400");
            }
            None => {}
        }
        if let Some(id) = &q.resource_id {
            s.push(" AND resource_id = ").bind_text(id.as_str());
        }
        if let Some(t) = &q.since {
            s.push(" AND time >= ").bind_text(t.as_str());
        }
        if let Some(t) = &q.until {
            s.push(" AND time < ").bind_text(t.as_str());
        }
        if let Some(id) = q.before {
            s.push(" AND id < ").bind(Bind::Int(id));
        }
        s.push(" ORDER BY id DESC LIMIT ").bind(Bind::Int(i64::from(q.limit.clamp(1, 1000))));
        log.read_one(s).await?.iter().map(decode).collect()
    }

    async fn activity_summary(&self, tenant: &str, since: &str) -> Result<ActivitySummary> {
        let log = log(&self.pools);
        let mut s = sql(log.dialect());
        s.push("SELECT COUNT(*), COUNT(CASE WHEN status >= 400 THEN 1 END) FROM scimd_activity WHERE tenant = ");
        s.bind_text(tenant).push(" AND time >= ").bind_text(since);
        let rows = log.read_one(s).await?;
        let count = |i| rows.first().and_then(|r| r.opt_int(i)).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        Ok(ActivitySummary { requests: count(0), failed: count(1) })
    }

    async fn prune_activity(&self, keep: u32, before: &str) -> Result<u64> {
        let log = log(&self.pools);
        let d = log.dialect();
        // The tenants are the log's own: it may live apart from the tenants' table.
        let mut s = sql(d);
        s.push("SELECT DISTINCT tenant FROM scimd_activity");
        let tenants: Vec<String> = log.read_one(s).await?.iter().filter_map(|r| r.opt_text(0)).collect();
        let mut n = 0;
        for tenant in tenants {
            // Everything up to the newest record that is too old, or that is past the
            // newest `keep` (records are numbered in the order they came).
            let mut s = sql(d);
            s.push("SELECT MAX(id) FROM (SELECT id FROM scimd_activity WHERE tenant = ").bind_text(tenant.as_str());
            s.push(" AND time < ").bind_text(before).push(" UNION ALL SELECT id FROM (SELECT id FROM scimd_activity");
            s.push(" WHERE tenant = ").bind_text(tenant.as_str()).push(" ORDER BY id DESC LIMIT 1 OFFSET ");
            s.bind(Bind::Int(i64::from(keep))).push(") k) o");
            let Some(last) = log.read_one(s).await?.first().and_then(|r| r.opt_int(0)) else { continue };
            n += delete_up_to(log, &tenant, last).await?;
        }
        Ok(n)
    }
}

/// Records of one tenant deleted in one transaction, at most: a long history goes in
/// several, so that the log's writer is never held for long.
const PRUNE_CHUNK: i64 = 5_000;

/// Deletes a tenant's records up to `last`, oldest first, a chunk at a time.
async fn delete_up_to(log: &dyn Pools, tenant: &str, last: i64) -> Result<u64> {
    let mut n = 0;
    loop {
        let mut tx = log.write().await?;
        let mut s = sql(tx.dialect());
        s.push("DELETE FROM scimd_activity WHERE id IN (SELECT id FROM scimd_activity WHERE tenant = ");
        s.bind_text(tenant).push(" AND id <= ").bind(Bind::Int(last)).push(" ORDER BY id LIMIT ");
        s.bind(Bind::Int(PRUNE_CHUNK)).push(")");
        let gone = tx.exec(s).await?;
        tx.commit().await?;
        n += gone;
        if gone < PRUNE_CHUNK as u64 {
            return Ok(n);
        }
    }
}
