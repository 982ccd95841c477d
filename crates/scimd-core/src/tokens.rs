//! Bearer tokens: generated with a CSPRNG, stored only as SHA-256 hashes, compared in
//! constant time. A token opens one API (`Scope`): the SCIM endpoints of one tenant, the
//! admin API, or (a console session, kept in a cookie) the console; never two of them.
//! Tokens may expire, and record (to the minute) when they were last used.

use crate::tenants::TenantSettings;
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

use crate::store::StoreError;

/// Token secrets start with a prefix, so that leaked ones are easy to recognise (secret
/// scanners) and to tell from other credentials, and an admin token from a SCIM one.
pub const TOKEN_PREFIX: &str = "scimd_";
pub const ADMIN_TOKEN_PREFIX: &str = "scimd_admin_";
pub const SESSION_PREFIX: &str = "scimd_session_";

/// Which API a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The SCIM endpoints of its tenant.
    Scim,
    /// The admin API (every tenant).
    Admin,
    /// The console: a session an admin token opened; it ends with that token.
    Console,
}

/// A token as listed: never its secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub scope: Scope,
    /// Whose it is: a SCIM token's tenant, a console session's admin token (its id); empty
    /// for an admin token.
    pub tenant: String,
    pub name: String,
    pub created: String,
    /// When it stops working, if ever.
    pub expires: Option<String>,
    /// When it last opened a request (to the minute), if ever.
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

/// A freshly created token: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: String,
}

/// Makes a new random secret for a scope.
pub fn generate_secret(scope: Scope) -> String {
    random_secret(match scope {
        Scope::Scim => TOKEN_PREFIX,
        Scope::Admin => ADMIN_TOKEN_PREFIX,
        Scope::Console => SESSION_PREFIX,
    })
}

/// 256 random bits in hex after `prefix`, which says what the secret opens.
pub fn random_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// The stored form of a secret: its SHA-256 in lowercase hex. Every request computes one;
/// the digits are written from a table (`hex::encode` goes through an iterator of chars and
/// costs more than the hash itself).
pub fn hash_secret(secret: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in Sha256::digest(secret.as_bytes()) {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Constant-time comparison of two stored-form hashes.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Where tokens live.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    async fn insert_token(&self, info: &TokenInfo, hash: &str) -> Result<(), StoreError>;
    /// The usable token of `scope` whose hash is `hash`, with that stored hash: not revoked,
    /// not expired at `now`, and (SCIM) of an active tenant, whose settings come with it.
    async fn find_active_token(&self, scope: Scope, hash: &str, now: &str) -> Result<Option<Found>, StoreError>;
    /// The tokens of a tenant (SCIM), the sessions of an admin token (console), or all
    /// admin tokens (`tenant` is then ignored).
    async fn list_tokens(&self, scope: Scope, tenant: &str) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes by id; false when no such active token exists.
    async fn revoke_token(&self, scope: Scope, tenant: &str, id: &str, now: &str) -> Result<bool, StoreError>;
    /// Records that the token opened a request at `now`.
    async fn touch_token(&self, scope: Scope, id: &str, now: &str) -> Result<(), StoreError>;
}

/// A token as `TokenStore::find_active_token` finds it.
#[derive(Debug, Clone)]
pub struct Found {
    pub info: TokenInfo,
    /// The stored hash, to compare again in constant time.
    pub hash: String,
    /// A SCIM token's tenant's settings (read with the token: one query per request).
    pub settings: TenantSettings,
}

/// A token that opens its API, and (SCIM) its tenant's settings.
#[derive(Debug, Clone)]
pub struct Verified {
    pub info: TokenInfo,
    pub settings: TenantSettings,
}

/// What a new token is.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub scope: Scope,
    /// A SCIM token's tenant, a console session's admin token (ignored for admin tokens).
    pub tenant: &'a str,
    pub name: &'a str,
    /// This secret (a bootstrap token from the environment), or a new random one.
    pub secret: Option<String>,
    pub expires: Option<String>,
}

/// Creates a token and stores its hash.
pub async fn create_token(store: &dyn TokenStore, req: TokenRequest<'_>, now: &str) -> Result<NewToken, StoreError> {
    let secret = req.secret.unwrap_or_else(|| generate_secret(req.scope));
    let info = TokenInfo {
        id: uuid::Uuid::now_v7().simple().to_string()[20..].to_string(),
        scope: req.scope,
        tenant: match req.scope {
            Scope::Scim | Scope::Console => req.tenant.to_string(),
            Scope::Admin => String::new(),
        },
        name: req.name.to_string(),
        created: now.to_string(),
        expires: req.expires,
        last_used: None,
        revoked: None,
    };
    store.insert_token(&info, &hash_secret(&secret)).await?;
    Ok(NewToken { info, secret })
}

/// Checks a presented secret; returns the token it belongs to.
pub async fn verify_token(
    store: &dyn TokenStore,
    scope: Scope,
    presented: &str,
    now: &str,
) -> Result<Option<Verified>, StoreError> {
    let hash = hash_secret(presented);
    Ok(match store.find_active_token(scope, &hash, now).await? {
        // The lookup is by hash; the stored hash is compared again in constant time so
        // that no comparison on secret-derived bytes can leak timing.
        Some(found) if hashes_match(&found.hash, &hash) => {
            Some(Verified { info: found.info, settings: found.settings })
        }
        _ => None,
    })
}

/// Lets a recurring write through at most once per `every` per key (a token's last use, a
/// tenant's last request): the information stays current to the minute without a write
/// on every request. Per process: with several replicas each writes its own, which is
/// harmless (the last one wins).
pub struct Throttle {
    every: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle { every, last: Mutex::new(HashMap::new()) }
    }

    /// Whether the write for `key` is due now (and, if so, records it as done).
    pub fn due(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.get(key).is_some_and(|at| now.duration_since(*at) < self.every) {
            return false;
        }
        // Keys not seen for a while go, so that the map stays the size of the active set.
        if last.len() > 10_000 {
            let every = self.every;
            last.retain(|_, at| now.duration_since(*at) < every);
        }
        last.insert(key.to_string(), now);
        true
    }
}

/// The token of an `Authorization` header's value when its scheme is `Bearer` (any case);
/// None for another scheme or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Parses a lifetime such as `90d`, `12h`, `30m` or `3600s`.
pub fn parse_lifetime(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(seconds).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let a = generate_secret(Scope::Scim);
        let b = generate_secret(Scope::Scim);
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert!(!a.starts_with(ADMIN_TOKEN_PREFIX));
        assert!(generate_secret(Scope::Admin).starts_with(ADMIN_TOKEN_PREFIX));
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(hashes_match(&hash_secret(&a), &hash_secret(&a)));
        assert!(!hashes_match(&hash_secret(&a), &hash_secret(&b)));
        assert!(!hashes_match("ab", "abc"));
    }

    #[test]
    fn throttled_writes_come_once_per_period_per_key() {
        let t = Throttle::new(Duration::from_secs(60));
        assert!(t.due("a"));
        assert!(!t.due("a"));
        assert!(t.due("b"), "each key has its own period");
        let fast = Throttle::new(Duration::from_millis(1));
        assert!(fast.due("a"));
        std::thread::sleep(Duration::from_millis(5));
        assert!(fast.due("a"));
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_lifetime("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_lifetime("30m"), Some(Duration::from_secs(1_800)));
        assert_eq!(parse_lifetime("2w"), Some(Duration::from_secs(1_209_600)));
        for bad in ["", "d", "0d", "5y", "-1d", "1.5d", "99999999999999999999d"] {
            assert_eq!(parse_lifetime(bad), None, "{bad}");
        }
    }
}
