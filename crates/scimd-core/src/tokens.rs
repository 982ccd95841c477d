//! API bearer tokens: generated with a CSPRNG, stored only as SHA-256 hashes, compared in
//! constant time.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::StoreError;

/// Token secrets start with this prefix, so that leaked ones are easy to recognise
/// (secret scanners) and to tell from other credentials.
pub const TOKEN_PREFIX: &str = "scimd_";

/// A token as listed: never its secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub created: String,
    pub revoked: Option<String>,
}

/// A freshly created token: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: String,
}

/// Makes a new random secret.
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of two stored-form hashes.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Where tokens live.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    async fn insert_token(&self, info: &TokenInfo, hash: &str) -> Result<(), StoreError>;
    /// The active (not revoked) token whose hash is `hash`, with that stored hash.
    async fn find_active_token(&self, hash: &str) -> Result<Option<(TokenInfo, String)>, StoreError>;
    async fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes by id; false when no such active token exists.
    async fn revoke_token(&self, tenant: &str, id: &str, now: &str) -> Result<bool, StoreError>;
}

/// Creates a token (random, or the given secret, e.g. a bootstrap token from the
/// environment) and stores its hash.
pub async fn create_token(
    store: &dyn TokenStore,
    tenant: &str,
    name: &str,
    secret: Option<String>,
    now: &str,
) -> Result<NewToken, StoreError> {
    let secret = secret.unwrap_or_else(generate_secret);
    let info = TokenInfo {
        id: uuid::Uuid::now_v7().simple().to_string()[20..].to_string(),
        tenant: tenant.to_string(),
        name: name.to_string(),
        created: now.to_string(),
        revoked: None,
    };
    store.insert_token(&info, &hash_secret(&secret)).await?;
    Ok(NewToken { info, secret })
}

/// Checks a presented secret; returns the token it belongs to.
pub async fn verify_token(store: &dyn TokenStore, presented: &str) -> Result<Option<TokenInfo>, StoreError> {
    let hash = hash_secret(presented);
    Ok(match store.find_active_token(&hash).await? {
        // The lookup is by hash; the stored hash is compared again in constant time so
        // that no comparison on secret-derived bytes can leak timing.
        Some((info, stored)) if hashes_match(&stored, &hash) => Some(info),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(hashes_match(&hash_secret(&a), &hash_secret(&a)));
        assert!(!hashes_match(&hash_secret(&a), &hash_secret(&b)));
        assert!(!hashes_match("ab", "abc"));
    }
}
