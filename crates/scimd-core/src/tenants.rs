//! Tenants: one per customer whose identity provider pushes into scimd. A tenant is data
//! (every replica reads the same), with a slug (its URL `/t/{slug}/scim/v2`), a display name,
//! a state, and settings of its own. Every resource, token and query is scoped by tenant.

use crate::store::{DeletePolicy, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantState {
    Active,
    /// Its tokens open nothing until it is enabled again; its data stays.
    Disabled,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<TenantState> {
        match text {
            "active" => Some(TenantState::Active),
            "disabled" => Some(TenantState::Disabled),
            _ => None,
        }
    }
}

/// A tenant's own settings; unset ones follow the server's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "policy")]
    pub delete_policy: Option<DeletePolicy>,
    /// Requests per second allowed to the tenant (per replica); 0 means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u32>,
}

impl TenantSettings {
    /// Refuses values that make no sense, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        if let Some(r) = self.rate_limit_per_second
            && !(r >= 0.0 && r.is_finite())
        {
            return Err("rate_limit_per_second must be 0 (no limit) or a positive number".into());
        }
        if self.rate_limit_burst == Some(0) {
            return Err("rate_limit_burst must be at least 1".into());
        }
        Ok(())
    }
}

/// `delete_policy` as its name (`"retire"`, `"erase"`, `"deactivate"`).
mod policy {
    use crate::store::DeletePolicy;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Option<DeletePolicy>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_str(p.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DeletePolicy>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            DeletePolicy::parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!("delete_policy must be retire, erase or deactivate, not '{t}'"))
            })
        })
        .transpose()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub slug: String,
    pub name: String,
    pub state: TenantState,
    pub settings: TenantSettings,
    pub created: String,
    /// The last SCIM request it received (to the minute), if any.
    pub last_request: Option<String>,
}

/// What a tenant holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TenantStats {
    pub users: u64,
    /// Users not deactivated (`active` true or unset).
    pub active_users: u64,
    pub groups: u64,
}

/// Lower-case letters, digits and `-`, 1 to 63 characters, not starting with `-` (a DNS
/// label's alphabet: it goes into URLs and, some day, host names).
pub fn valid_slug(slug: &str) -> bool {
    (1..=63).contains(&slug.len())
        && !slug.starts_with('-')
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What becomes of data a new tenant's slug already has in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundData {
    /// Erased: a new tenant starts empty. Such data was written by a request that was under
    /// way when a deleted tenant of the same slug was deleted, and committed after its data
    /// was erased; it is not the new tenant's (who may be another customer).
    Erase,
    /// Kept: the tenant is made for data that is there (a database written before tenants
    /// were data, or loaded with SQL), unless the slug is a deleted tenant's: then it goes
    /// as with `Erase`.
    Keep,
}

/// Where tenants live.
#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    /// Adds a tenant; `StoreError::Uniqueness("slug")` when the slug is taken.
    async fn create_tenant(&self, tenant: &Tenant, found: FoundData) -> Result<(), StoreError>;
    async fn tenant(&self, slug: &str) -> Result<Option<Tenant>, StoreError>;
    /// Every tenant, by slug.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// Changes what is given; the tenant as it is now, or None when there is none.
    async fn update_tenant(
        &self,
        slug: &str,
        name: Option<&str>,
        state: Option<TenantState>,
        settings: Option<&TenantSettings>,
    ) -> Result<Option<Tenant>, StoreError>;
    /// Erases a tenant and everything of it (resources, memberships, tokens), noting that
    /// it was deleted at `now` (`sweep_deleted`). False when there was no such tenant.
    async fn delete_tenant(&self, slug: &str, now: &str) -> Result<bool, StoreError>;
    /// Erases what tenants deleted before `before` still hold: rows of requests that were
    /// under way at the deletion and committed after it (`before` is chosen so that none
    /// can still be running). A slug given to a new tenant since is not touched (its
    /// creation erased them). How many deleted tenants were swept.
    async fn sweep_deleted(&self, before: &str) -> Result<u64, StoreError>;
    async fn tenant_stats(&self, slug: &str) -> Result<TenantStats, StoreError>;
    /// Records a SCIM request at `now`.
    async fn touch_tenant(&self, slug: &str, now: &str) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "acme", "acme-corp", "0", "a1-b2", &"x".repeat(63)] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in ["", "Acme", "-acme", "acme_corp", "acme.corp", "ä", "a b", &"x".repeat(64), "acme/x"] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn settings_as_json() {
        let s: TenantSettings =
            serde_json::from_str(r#"{"delete_policy": "erase", "rate_limit_per_second": 5}"#).unwrap();
        assert_eq!(s.delete_policy, Some(DeletePolicy::Erase));
        assert_eq!(serde_json::to_value(&s).unwrap()["delete_policy"], "erase");
        assert!(serde_json::from_str::<TenantSettings>(r#"{"delete_policy": "shred"}"#).is_err());
        assert!(
            serde_json::from_str::<TenantSettings>(r#"{"colour": "red"}"#).is_err(),
            "unknown settings are refused"
        );
        assert_eq!(serde_json::to_string(&TenantSettings::default()).unwrap(), "{}");
        assert!(TenantSettings { rate_limit_per_second: Some(-1.0), ..Default::default() }.check().is_err());
    }
}
