//! Tokens in SQL: SCIM tokens (per tenant) in `scim_tokens`, admin tokens in
//! `scimd_admin_tokens`, console sessions (per admin token) in `scimd_console_sessions`.
//! Only hashes are stored.

use crate::conn::{DbError, Row};
use crate::sql::Sql;
use crate::store::{Pools, SqlStore, sql};
use async_trait::async_trait;
use scimd_core::store::StoreError;
use scimd_core::tokens::{Found, Scope, TokenInfo, TokenStore};

type Result<T> = std::result::Result<T, StoreError>;

fn table(scope: Scope) -> &'static str {
    match scope {
        Scope::Scim => "scim_tokens",
        Scope::Admin => "scimd_admin_tokens",
        Scope::Console => "scimd_console_sessions",
    }
}

/// The column naming whose a token is (`TokenInfo::tenant`), if the scope has one.
fn owner(scope: Scope) -> Option<&'static str> {
    match scope {
        Scope::Scim => Some("tenant"),
        Scope::Admin => None,
        Scope::Console => Some("admin_token"),
    }
}

/// The columns `decode` reads, in its order (`k` is the token table).
fn columns(scope: Scope) -> String {
    let owner = owner(scope).map_or("''".to_string(), |c| format!("k.{c}"));
    format!("k.id, {owner}, k.name, k.created, k.expires, k.last_used, k.revoked, k.hash")
}

fn decode(scope: Scope, r: &Row) -> std::result::Result<TokenInfo, DbError> {
    Ok(TokenInfo {
        id: r.text(0)?,
        scope,
        tenant: r.text(1)?,
        name: r.text(2)?,
        created: r.text(3)?,
        expires: r.opt_text(4),
        last_used: r.opt_text(5),
        revoked: r.opt_text(6),
    })
}

/// `… WHERE id = ?` for a token of this scope (and, SCIM, of this tenant).
fn whose(s: &mut Sql, scope: Scope, tenant: &str, id: &str) {
    s.push(" WHERE id = ").bind_text(id);
    if scope == Scope::Scim {
        s.push(" AND tenant = ").bind_text(tenant);
    }
}

/// `k` may be used at `now`: not revoked, not expired.
fn usable(s: &mut Sql, k: &str, now: &str) {
    s.push(" AND ").push(k).push(".revoked IS NULL AND (").push(k).push(".expires IS NULL OR ").push(k);
    s.push(".expires > ").bind_text(now).push(")");
}

#[async_trait]
impl<P: Pools> TokenStore for SqlStore<P> {
    async fn insert_token(&self, info: &TokenInfo, hash: &str) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("INSERT INTO ").push(table(info.scope)).push(" (id, ");
        if let Some(owner) = owner(info.scope) {
            s.push(owner).push(", ");
        }
        s.push("name, hash, created, expires) VALUES (").bind_text(info.id.as_str()).push(", ");
        if owner(info.scope).is_some() {
            s.bind_text(info.tenant.as_str()).push(", ");
        }
        s.bind_text(info.name.as_str()).push(", ").bind_text(hash).push(", ").bind_text(info.created.as_str());
        s.push(", ");
        match &info.expires {
            Some(e) => s.bind_text(e.as_str()),
            None => s.push("NULL"),
        };
        s.push(")");
        tx.exec(s).await.map_err(|e| e.unique_on("token"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_active_token(&self, scope: Scope, hash: &str, now: &str) -> Result<Option<Found>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(&columns(scope));
        match scope {
            // A disabled (or erased) tenant's tokens open nothing; its settings come along.
            Scope::Scim => s
                .push(", n.settings FROM scim_tokens k")
                .push(" JOIN scimd_tenants n ON n.slug = k.tenant AND n.state = 'active'"),
            Scope::Admin => s.push(", '{}' FROM scimd_admin_tokens k"),
            // A session lasts only as long as the admin token that opened it.
            Scope::Console => {
                s.push(", '{}' FROM scimd_console_sessions k JOIN scimd_admin_tokens a ON a.id = k.admin_token");
                usable(&mut s, "a", now);
                &mut s
            }
        };
        s.push(" WHERE k.hash = ").bind_text(hash);
        usable(&mut s, "k", now);
        let Some(r) = self.pools.read_one(s).await?.into_iter().next() else { return Ok(None) };
        let info = decode(scope, &r)?;
        let settings = serde_json::from_str(r.str(8)?)
            .map_err(|_| StoreError::Backend(format!("tenant {}: corrupt settings", info.tenant)))?;
        Ok(Some(Found { hash: r.text(7)?, info, settings }))
    }

    async fn list_tokens(&self, scope: Scope, tenant: &str) -> Result<Vec<TokenInfo>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(&columns(scope)).push(" FROM ").push(table(scope)).push(" k");
        if let Some(owner) = owner(scope) {
            s.push(" WHERE k.").push(owner).push(" = ").bind_text(tenant);
        }
        s.push(" ORDER BY k.created, k.id");
        let rows = self.pools.read_one(s).await?;
        rows.iter().map(|r| decode(scope, r).map_err(Into::into)).collect()
    }

    async fn revoke_token(&self, scope: Scope, tenant: &str, id: &str, now: &str) -> Result<bool> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE ").push(table(scope)).push(" SET revoked = ").bind_text(now);
        whose(&mut s, scope, tenant, id);
        s.push(" AND revoked IS NULL");
        let n = tx.exec(s).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn touch_token(&self, scope: Scope, id: &str, now: &str) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE ")
            .push(table(scope))
            .push(" SET last_used = ")
            .bind_text(now)
            .push(" WHERE id = ")
            .bind_text(id);
        tx.exec(s).await?;
        tx.commit().await?;
        Ok(())
    }
}
