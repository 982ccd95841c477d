//! Tokens found a moment ago, remembered: an identity provider sends its requests with the
//! same token, and without this each would cost a database lookup before its real work.
//!
//! A found token is remembered for `TOKEN_CACHE_TTL` per process, by the hash of its secret
//! (never the secret) and scope. What ends a token is therefore honoured at once by the
//! process that made the change (its writes go through these wrappers, which forget
//! everything), and by every other replica within the lifetime: a revocation, a disabled or
//! erased tenant, a signed-out console session. An expiry is checked on every use. A
//! lookup that found nothing is not remembered, so wrong tokens cannot fill the memory.

use crate::store::StoreError;
use crate::tenants::{FoundData, Tenant, TenantSettings, TenantState, TenantStats, TenantStore};
use crate::tokens::{Found, Scope, TokenInfo, TokenStore};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a found token is taken on trust.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_millis(500);
/// Tokens remembered at most (when full, all are forgotten).
const MAX_ENTRIES: usize = 10_000;

/// The remembered tokens, shared by the token and tenant wrappers of one store.
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<(Scope, String), (Instant, Found)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Arc<TokenCache> {
        Arc::new(TokenCache { ttl, entries: Mutex::new(HashMap::new()) })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(Scope, String), (Instant, Found)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, scope: Scope, hash: &str, now: &str) -> Option<Found> {
        let entries = self.entries();
        let (at, found) = entries.get(&(scope, hash.to_string()))?;
        let expired = found.info.expires.as_deref().is_some_and(|e| e <= now);
        (at.elapsed() < self.ttl && !expired).then(|| found.clone())
    }

    fn put(&self, scope: Scope, hash: &str, found: &Found) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert((scope, hash.to_string()), (Instant::now(), found.clone()));
    }

    /// Forgets every token (something that may end one changed).
    pub fn clear(&self) {
        self.entries().clear();
    }
}

/// A token store whose lookups are remembered (see the module).
pub struct CachedTokens {
    inner: Arc<dyn TokenStore>,
    cache: Arc<TokenCache>,
}

impl CachedTokens {
    pub fn new(inner: Arc<dyn TokenStore>, cache: Arc<TokenCache>) -> CachedTokens {
        CachedTokens { inner, cache }
    }
}

#[async_trait]
impl TokenStore for CachedTokens {
    async fn insert_token(&self, info: &TokenInfo, hash: &str) -> Result<(), StoreError> {
        self.inner.insert_token(info, hash).await
    }
    async fn find_active_token(&self, scope: Scope, hash: &str, now: &str) -> Result<Option<Found>, StoreError> {
        if let Some(found) = self.cache.get(scope, hash, now) {
            return Ok(Some(found));
        }
        let found = self.inner.find_active_token(scope, hash, now).await?;
        if let Some(f) = &found {
            self.cache.put(scope, hash, f);
        }
        Ok(found)
    }
    async fn list_tokens(&self, scope: Scope, tenant: &str) -> Result<Vec<TokenInfo>, StoreError> {
        self.inner.list_tokens(scope, tenant).await
    }
    async fn revoke_token(&self, scope: Scope, tenant: &str, id: &str, now: &str) -> Result<bool, StoreError> {
        let revoked = self.inner.revoke_token(scope, tenant, id, now).await;
        self.cache.clear();
        revoked
    }
    async fn touch_token(&self, scope: Scope, id: &str, now: &str) -> Result<(), StoreError> {
        self.inner.touch_token(scope, id, now).await
    }
}

/// A tenant store that makes the token cache forget when a tenant changes (disabled,
/// settings changed, erased): its tokens' lookups carry its state and settings.
pub struct CachedTenants {
    inner: Arc<dyn TenantStore>,
    cache: Arc<TokenCache>,
}

impl CachedTenants {
    pub fn new(inner: Arc<dyn TenantStore>, cache: Arc<TokenCache>) -> CachedTenants {
        CachedTenants { inner, cache }
    }
}

#[async_trait]
impl TenantStore for CachedTenants {
    async fn create_tenant(&self, tenant: &Tenant, found: FoundData) -> Result<(), StoreError> {
        self.inner.create_tenant(tenant, found).await
    }
    async fn tenant(&self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        self.inner.tenant(slug).await
    }
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.inner.tenants().await
    }
    async fn update_tenant(
        &self,
        slug: &str,
        name: Option<&str>,
        state: Option<TenantState>,
        settings: Option<&TenantSettings>,
    ) -> Result<Option<Tenant>, StoreError> {
        let updated = self.inner.update_tenant(slug, name, state, settings).await;
        self.cache.clear();
        updated
    }
    async fn delete_tenant(&self, slug: &str, now: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.delete_tenant(slug, now).await;
        self.cache.clear();
        deleted
    }
    async fn sweep_deleted(&self, before: &str) -> Result<u64, StoreError> {
        self.inner.sweep_deleted(before).await
    }
    async fn tenant_stats(&self, slug: &str) -> Result<TenantStats, StoreError> {
        self.inner.tenant_stats(slug).await
    }
    async fn touch_tenant(&self, slug: &str, now: &str) -> Result<(), StoreError> {
        self.inner.touch_tenant(slug, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{TokenInfo, TokenStore};

    /// One token, counting lookups; `revoked` makes it unfindable (as another replica's
    /// revocation would).
    #[derive(Default)]
    struct OneToken {
        lookups: std::sync::atomic::AtomicUsize,
        revoked: std::sync::atomic::AtomicBool,
    }

    fn found(expires: Option<&str>) -> Found {
        let info = TokenInfo {
            id: "k1".into(),
            scope: Scope::Scim,
            tenant: "t".into(),
            name: "okta".into(),
            created: "2026-01-01T00:00:00.000000Z".into(),
            expires: expires.map(String::from),
            last_used: None,
            revoked: None,
        };
        Found { info, hash: "h".into(), settings: TenantSettings::default() }
    }

    #[async_trait]
    impl TokenStore for OneToken {
        async fn insert_token(&self, _: &TokenInfo, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        async fn find_active_token(&self, _: Scope, hash: &str, now: &str) -> Result<Option<Found>, StoreError> {
            self.lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let f = found(Some("2026-06-01T00:00:00.000000Z"));
            let usable = hash == "h" && !self.revoked.load(std::sync::atomic::Ordering::SeqCst);
            Ok((usable && f.info.expires.as_deref().is_none_or(|e| e > now)).then_some(f))
        }
        async fn list_tokens(&self, _: Scope, _: &str) -> Result<Vec<TokenInfo>, StoreError> {
            Ok(Vec::new())
        }
        async fn revoke_token(&self, _: Scope, _: &str, _: &str, _: &str) -> Result<bool, StoreError> {
            self.revoked.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(true)
        }
        async fn touch_token(&self, _: Scope, _: &str, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }

    const NOW: &str = "2026-03-01T00:00:00.000000Z";

    #[tokio::test]
    async fn found_tokens_are_remembered_for_a_moment_only() {
        let inner = Arc::new(OneToken::default());
        let cached = CachedTokens::new(inner.clone(), TokenCache::new(Duration::from_millis(100)));
        let lookups = || inner.lookups.load(std::sync::atomic::Ordering::SeqCst);
        for _ in 0..5 {
            assert!(cached.find_active_token(Scope::Scim, "h", NOW).await.unwrap().is_some());
        }
        assert_eq!(lookups(), 1, "one lookup for five uses");
        assert!(cached.find_active_token(Scope::Admin, "h", NOW).await.unwrap().is_some());
        assert_eq!(lookups(), 2, "remembered per scope");
        // Wrong tokens are looked up every time, never remembered.
        for _ in 0..3 {
            assert!(cached.find_active_token(Scope::Scim, "wrong", NOW).await.unwrap().is_none());
        }
        assert_eq!(lookups(), 5);
        // Revoked elsewhere: still taken on trust until the lifetime ends, then refused.
        inner.revoked.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(cached.find_active_token(Scope::Scim, "h", NOW).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(cached.find_active_token(Scope::Scim, "h", NOW).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn what_ends_a_token_here_ends_it_at_once() {
        let inner = Arc::new(OneToken::default());
        let cache = TokenCache::new(Duration::from_secs(60));
        let cached = CachedTokens::new(inner.clone(), cache.clone());
        assert!(cached.find_active_token(Scope::Scim, "h", NOW).await.unwrap().is_some());
        // An expiry passes: refused without waiting for the lifetime.
        assert!(cached.find_active_token(Scope::Scim, "h", "2026-07-01T00:00:00.000000Z").await.unwrap().is_none());
        assert!(cached.find_active_token(Scope::Scim, "h", NOW).await.unwrap().is_some());
        // Revoked through this process: forgotten at once.
        cached.revoke_token(Scope::Scim, "t", "k1", NOW).await.unwrap();
        assert!(cached.find_active_token(Scope::Scim, "h", NOW).await.unwrap().is_none());
    }
}
