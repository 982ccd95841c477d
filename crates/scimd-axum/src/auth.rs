//! Who may call: the `Authenticator` contract (request parts in, principal out) with
//! ready implementations: hashed bearer tokens, a closure, and deny-all.

use async_trait::async_trait;
use axum::http::header;
use axum::http::request::Parts;
use scimd_core::tenants::{TenantSettings, TenantStore};
use scimd_core::tokens::{Scope, Throttle, TokenInfo, TokenStore, Verified, verify_token};
use std::sync::Arc;
use std::time::Duration;

/// An authenticated caller: which tenant's data it may touch, who it is (for logs), and
/// its tenant's own settings, when it has any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    pub tenant: String,
    pub subject: String,
    pub settings: TenantSettings,
    /// The SCIM id of the User the caller is, when it is one: `/Me` (RFC 7644 §3.11) reads
    /// and writes that user. None answers `/Me` with 501.
    pub user_id: Option<String>,
}

impl Principal {
    pub fn new(tenant: impl Into<String>, subject: impl Into<String>) -> Principal {
        Principal { tenant: tenant.into(), subject: subject.into(), settings: TenantSettings::default(), user_id: None }
    }

    /// The principal as the User with this SCIM id (for `/Me`).
    pub fn with_user(mut self, user_id: impl Into<String>) -> Principal {
        self.user_id = Some(user_id.into());
        self
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError>;
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or(AuthError::Missing)?;
    let text = value.to_str().map_err(|_| AuthError::Invalid)?;
    scimd_core::tokens::bearer_token(text).ok_or(AuthError::Invalid)
}

/// Bearer tokens checked against their stored SHA-256 hashes (`scimd token …`), for the
/// SCIM endpoints: the token's tenant, if active, with its settings, read together in one
/// query. The token's last use and the tenant's last request are written at most once a
/// minute each.
pub struct BearerTokens {
    tokens: Arc<dyn TokenStore>,
    tenants: Arc<dyn TenantStore>,
    token_uses: Throttle,
    tenant_requests: Throttle,
}

impl BearerTokens {
    pub fn new(tokens: Arc<dyn TokenStore>, tenants: Arc<dyn TenantStore>) -> Self {
        BearerTokens {
            tokens,
            tenants,
            token_uses: Throttle::new(Duration::from_secs(60)),
            tenant_requests: Throttle::new(Duration::from_secs(60)),
        }
    }

    /// Writes, off the request's path, what is due of the token's last use and the
    /// tenant's last request.
    fn record_use(&self, info: &TokenInfo, now: &str) {
        let token = self.token_uses.due(&info.id).then(|| (self.tokens.clone(), info.id.clone()));
        let tenant = self.tenant_requests.due(&info.tenant).then(|| (self.tenants.clone(), info.tenant.clone()));
        if token.is_none() && tenant.is_none() {
            return;
        }
        let now = now.to_string();
        tokio::spawn(async move {
            if let Some((tokens, id)) = token
                && let Err(e) = tokens.touch_token(Scope::Scim, &id, &now).await
            {
                tracing::debug!(error = %e, "could not record a token's use");
            }
            if let Some((tenants, slug)) = tenant
                && let Err(e) = tenants.touch_tenant(&slug, &now).await
            {
                tracing::debug!(error = %e, "could not record a tenant's request");
            }
        });
    }
}

#[async_trait]
impl Authenticator for BearerTokens {
    async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        let token = bearer(parts)?;
        let now = scimd_proto::value::now();
        let Verified { info, settings } = match verify_token(self.tokens.as_ref(), Scope::Scim, token, &now).await {
            Ok(Some(found)) => found,
            Ok(None) => return Err(AuthError::Invalid),
            Err(e) => return Err(AuthError::Unavailable(e.to_string())),
        };
        self.record_use(&info, &now);
        Ok(Principal { subject: ["token:", &info.id].concat(), tenant: info.tenant, settings, user_id: None })
    }
}

/// Any check the application writes as a closure over the request parts.
pub struct FnAuthenticator<F>(pub F);

#[async_trait]
impl<F> Authenticator for FnAuthenticator<F>
where
    F: Fn(&Parts) -> Result<Principal, AuthError> + Send + Sync + 'static,
{
    async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        (self.0)(parts)
    }
}

/// The library's default until the application chooses: nobody gets in.
pub struct DenyAll;

#[async_trait]
impl Authenticator for DenyAll {
    async fn authenticate(&self, _parts: &Parts) -> Result<Principal, AuthError> {
        Err(AuthError::Forbidden("no authenticator is configured".into()))
    }
}

/// One shared secret, e.g. from the application's configuration. Only its hash is kept;
/// the comparison is constant-time.
pub struct StaticToken {
    hash: String,
    tenant: String,
}

impl StaticToken {
    pub fn new(secret: &str, tenant: &str) -> StaticToken {
        StaticToken { hash: scimd_core::tokens::hash_secret(secret), tenant: tenant.to_string() }
    }
}

#[async_trait]
impl Authenticator for StaticToken {
    async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        let presented = scimd_core::tokens::hash_secret(bearer(parts)?);
        if scimd_core::tokens::hashes_match(&presented, &self.hash) {
            Ok(Principal::new(self.tenant.clone(), "static-token"))
        } else {
            Err(AuthError::Invalid)
        }
    }
}
