//! The activity log in SQL (`scimd_activity`): written in batches by the server's recorder,
//! read newest first with filters, pruned to a bounded history per tenant.

use crate::conn::Row;
use crate::sql::{Bind, Sql};
use crate::store::{Pools, SqlStore, sql};
use async_trait::async_trait;
use scimd_core::activity::{Activity, ActivityLog, ActivityQuery, ActivitySummary};
use scimd_core::store::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

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
        let mut tx = self.pools.write().await?;
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
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(COLUMNS).push(" FROM scimd_activity WHERE tenant = ").bind_text(tenant);
        if let Some(class) = q.status_class {
            let low = i64::from(class) * 100;
            s.push(" AND status >= ").bind(Bind::Int(low)).push(" AND status < ").bind(Bind::Int(low + 100));
        }
        if q.failed {
            s.push(" AND status >= 400");
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
        self.pools.read_one(s).await?.iter().map(decode).collect()
    }

    async fn activity_summary(&self, tenant: &str, since: &str) -> Result<ActivitySummary> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT COUNT(*), COUNT(CASE WHEN status >= 400 THEN 1 END) FROM scimd_activity WHERE tenant = ");
        s.bind_text(tenant).push(" AND time >= ").bind_text(since);
        let rows = self.pools.read_one(s).await?;
        let count = |i| rows.first().and_then(|r| r.opt_int(i)).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        Ok(ActivitySummary { requests: count(0), failed: count(1) })
    }

    async fn prune_activity(&self, keep: u32, before: &str) -> Result<u64> {
        let d = self.pools.dialect();
        let mut tx = self.pools.write().await?;
        let mut s = sql(d);
        s.push("DELETE FROM scimd_activity WHERE time < ").bind_text(before);
        let mut n = tx.exec(s).await?;
        tx.commit().await?;
        // Each tenant's newest `keep`: found by index, one tenant at a time, so that no
        // statement holds the writer long.
        let mut s = sql(d);
        s.push("SELECT slug FROM scimd_tenants");
        let tenants: Vec<String> = self.pools.read_one(s).await?.iter().filter_map(|r| r.opt_text(0)).collect();
        for tenant in tenants {
            let mut s = sql(d);
            s.push("SELECT id FROM scimd_activity WHERE tenant = ").bind_text(tenant.as_str());
            s.push(" ORDER BY id DESC LIMIT 1 OFFSET ").bind(Bind::Int(i64::from(keep)));
            let Some(oldest_kept) = self.pools.read_one(s).await?.first().and_then(|r| r.opt_int(0)) else { continue };
            let mut tx = self.pools.write().await?;
            let mut s = sql(d);
            s.push("DELETE FROM scimd_activity WHERE tenant = ").bind_text(tenant.as_str());
            s.push(" AND id <= ").bind(Bind::Int(oldest_kept));
            n += tx.exec(s).await?;
            tx.commit().await?;
        }
        Ok(n)
    }
}
