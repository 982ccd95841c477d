//! Who may call: the `Authenticator` contract (request parts in, principal out) with
//! ready implementations: hashed bearer tokens, a closure, and deny-all.

use async_trait::async_trait;
use axum::http::header;
use axum::http::request::Parts;
use scimd_core::tokens::{TokenStore, verify_token};
use std::sync::Arc;

/// An authenticated caller: which tenant's data it may touch, and who it is (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub subject: String,
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
    let text = value.to_str().map_err(|_| AuthError::Invalid)?.trim();
    let (scheme, token) = text.split_once(' ').ok_or(AuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid);
    }
    let token = token.trim();
    if token.is_empty() { Err(AuthError::Invalid) } else { Ok(token) }
}

/// Bearer tokens checked against their stored SHA-256 hashes (`scimd token …`).
pub struct BearerTokens {
    store: Arc<dyn TokenStore>,
}

impl BearerTokens {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        BearerTokens { store }
    }
}

#[async_trait]
impl Authenticator for BearerTokens {
    async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        let token = bearer(parts)?;
        match verify_token(self.store.as_ref(), token).await {
            Ok(Some(info)) => Ok(Principal { tenant: info.tenant, subject: format!("token:{}", info.id) }),
            Ok(None) => Err(AuthError::Invalid),
            Err(e) => Err(AuthError::Unavailable(e.to_string())),
        }
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
            Ok(Principal { tenant: self.tenant.clone(), subject: "static-token".into() })
        } else {
            Err(AuthError::Invalid)
        }
    }
}
