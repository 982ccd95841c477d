//! Tenants in SQL (`scimd_tenants`), and erasing one with everything it holds.

use crate::conn::{DbError, Row, Tx};
use crate::sql::Dialect;
use crate::store::{Pools, SqlStore, sql};
use async_trait::async_trait;
use scimd_core::store::StoreError;
use scimd_core::tenants::{FoundData, Tenant, TenantSettings, TenantState, TenantStats, TenantStore};

type Result<T> = std::result::Result<T, StoreError>;

const COLUMNS: &str = "slug, name, state, settings, created, last_request";

fn decode(r: &Row) -> Result<Tenant> {
    let corrupt =
        |what: &str| StoreError::Backend(format!("tenant {}: corrupt {what}", r.opt_text(0).unwrap_or_default()));
    Ok(Tenant {
        slug: r.text(0)?,
        name: r.text(1)?,
        state: TenantState::parse(r.str(2)?).ok_or_else(|| corrupt("state"))?,
        settings: serde_json::from_str(r.str(3)?).map_err(|_| corrupt("settings"))?,
        created: r.text(4)?,
        last_request: r.opt_text(5),
    })
}

fn settings_json(settings: &TenantSettings) -> Result<String> {
    serde_json::to_string(settings).map_err(|e| StoreError::Backend(e.to_string()))
}

/// The tables that hold a tenant's data, children first.
const TENANT_TABLES: &[&str] = &[
    "scim_members",
    "scim_user_emails",
    "scim_users",
    "scim_groups",
    "scim_unique_values",
    "scim_resources",
    "scim_tokens",
    "scimd_events",
    "scimd_streams",
];

/// Erases a deleted tenant's records from an activity log in a database of its own, after
/// the tenant's transaction: should that fail, its records go with the log's retention, and
/// the tenant is gone all the same.
async fn forget_activity(separate_log: Option<&dyn Pools>, slug: &str) {
    if let Some(log) = separate_log
        && let Err(e) = crate::activity::forget(log, slug).await
    {
        tracing::warn!(tenant = slug, error = %e, "could not erase the tenant's activity records");
    }
}

/// Deletes what the tenant `slug` holds in scimd's tables (its activity records too when
/// `with_activity`: the log is in the same database).
async fn erase_data(tx: &mut dyn Tx, slug: &str, with_activity: bool) -> Result<()> {
    let d = tx.dialect();
    let mut s = sql(d);
    s.push("DELETE FROM scimd_stream_acks WHERE stream_id IN (SELECT id FROM scimd_streams WHERE tenant = ");
    s.bind_text(slug).push(")");
    tx.exec(s).await?;
    let log_table = with_activity.then_some("scimd_activity");
    for table in TENANT_TABLES.iter().copied().chain(log_table) {
        let mut s = sql(d);
        s.push("DELETE FROM ").push(table).push(" WHERE tenant = ").bind_text(slug);
        tx.exec(s).await?;
    }
    if d == Dialect::Sqlite {
        // (PostgreSQL's are kept by trigger as the rows go.)
        let mut s = sql(d);
        s.push("DELETE FROM scim_live_counts WHERE tenant = ").bind_text(slug);
        tx.exec(s).await?;
    }
    Ok(())
}

#[async_trait]
impl<P: Pools> TenantStore for SqlStore<P> {
    async fn create_tenant(&self, t: &Tenant, found: FoundData) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("INSERT INTO scimd_tenants (").push(COLUMNS).push(") VALUES (").bind_text(t.slug.as_str());
        s.push(", ").bind_text(t.name.as_str()).push(", ").bind_text(t.state.as_str()).push(", ");
        s.bind_text(settings_json(&t.settings)?).push(", ").bind_text(t.created.as_str()).push(", NULL)");
        tx.exec(s).await.map_err(|e| e.unique_on("slug"))?;
        let mut s = sql(tx.dialect());
        s.push("DELETE FROM scimd_deleted_tenants WHERE slug = ").bind_text(t.slug.as_str());
        let erase = found == FoundData::Erase || tx.exec(s).await? > 0;
        if erase {
            erase_data(&mut *tx, &t.slug, self.pools.activity().is_none()).await?;
        }
        tx.commit().await?;
        if erase {
            // No request of the new tenant's can have been recorded yet: it has no token.
            forget_activity(self.pools.activity(), &t.slug).await;
        }
        Ok(())
    }

    async fn tenant(&self, slug: &str) -> Result<Option<Tenant>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(COLUMNS).push(" FROM scimd_tenants WHERE slug = ").bind_text(slug);
        self.pools.read_one(s).await?.first().map(decode).transpose()
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(COLUMNS).push(" FROM scimd_tenants ORDER BY slug");
        self.pools.read_one(s).await?.iter().map(decode).collect()
    }

    async fn update_tenant(
        &self,
        slug: &str,
        name: Option<&str>,
        state: Option<TenantState>,
        settings: Option<&TenantSettings>,
    ) -> Result<Option<Tenant>> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE scimd_tenants SET slug = slug");
        if let Some(name) = name {
            s.push(", name = ").bind_text(name);
        }
        if let Some(state) = state {
            s.push(", state = ").bind_text(state.as_str());
        }
        if let Some(settings) = settings {
            s.push(", settings = ").bind_text(settings_json(settings)?);
        }
        s.push(" WHERE slug = ").bind_text(slug).push(" RETURNING ").push(COLUMNS);
        let row = tx.row(s).await?;
        tx.commit().await?;
        row.as_ref().map(decode).transpose()
    }

    async fn delete_tenant(&self, slug: &str, now: &str) -> Result<bool> {
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        let separate_log = self.pools.activity();
        erase_data(&mut *tx, slug, separate_log.is_none()).await?;
        let mut s = sql(d);
        s.push("DELETE FROM scimd_tenants WHERE slug = ").bind_text(slug);
        let n = tx.exec(s).await?;
        if n > 0 {
            let mut s = sql(d);
            s.push("INSERT INTO scimd_deleted_tenants (slug, deleted) VALUES (").bind_text(slug);
            s.push(", ").bind_text(now).push(") ON CONFLICT (slug) DO UPDATE SET deleted = excluded.deleted");
            tx.exec(s).await?;
        }
        tx.commit().await?;
        forget_activity(separate_log, slug).await;
        Ok(n > 0)
    }

    async fn sweep_deleted(&self, before: &str) -> Result<u64> {
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        let separate_log = self.pools.activity();
        let mut s = sql(d);
        s.push("DELETE FROM scimd_deleted_tenants WHERE deleted < ").bind_text(before).push(" RETURNING slug");
        let slugs = tx.rows(s).await?.iter().map(|r| r.text(0)).collect::<std::result::Result<Vec<_>, _>>()?;
        for slug in &slugs {
            erase_data(&mut *tx, slug, separate_log.is_none()).await?;
        }
        tx.commit().await?;
        for slug in &slugs {
            forget_activity(separate_log, slug).await;
        }
        Ok(slugs.len() as u64)
    }

    async fn tenant_stats(&self, slug: &str) -> Result<TenantStats> {
        let d = self.pools.dialect();
        let active = match d {
            Dialect::Sqlite => "active IS NULL OR active <> 0",
            Dialect::Postgres => "active IS NOT FALSE",
        };
        let mut s = sql(d);
        s.push("SELECT (SELECT COUNT(*) FROM scim_users WHERE tenant = ").bind_text(slug);
        s.push(" AND retired IS NULL), (SELECT COUNT(*) FROM scim_users WHERE tenant = ").bind_text(slug);
        s.push(" AND retired IS NULL AND (").push(active).push(")), (SELECT COUNT(*) FROM scim_groups WHERE tenant = ");
        s.bind_text(slug).push(" AND retired IS NULL)");
        let rows = self.pools.read_one(s).await?;
        let r = rows.first().ok_or_else(|| StoreError::Backend("no counts".into()))?;
        let n = |i: usize| -> std::result::Result<u64, DbError> { Ok(r.int(i)?.max(0) as u64) };
        Ok(TenantStats { users: n(0)?, active_users: n(1)?, groups: n(2)? })
    }

    async fn touch_tenant(&self, slug: &str, now: &str) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE scimd_tenants SET last_request = ").bind_text(now).push(" WHERE slug = ").bind_text(slug);
        tx.exec(s).await?;
        tx.commit().await?;
        Ok(())
    }
}
