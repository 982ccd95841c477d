//! What can be done to tenants and their tokens, with its rules, whoever asks: the admin
//! API's handlers and the `scimd` command line call these.

use scimd_core::store::StoreError;
use scimd_core::tenants::{FoundData, Tenant, TenantSettings, TenantState, TenantStats, TenantStore, valid_slug};
use scimd_core::tokens::{NewToken, Scope, TokenInfo, TokenRequest, TokenStore, create_token, parse_lifetime};
use scimd_proto::value::now;
use std::sync::Arc;

/// What failed, for an answer or a message.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The request is not acceptable; the message says why.
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("a tenant with the slug '{0}' exists already")]
    SlugTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stores the operations act on.
#[derive(Clone)]
pub struct Directory {
    pub tenants: Arc<dyn TenantStore>,
    pub tokens: Arc<dyn TokenStore>,
    /// Builds a tenant's public SCIM base URL from its slug.
    pub urls: TenantUrls,
}

/// Where a tenant's SCIM endpoints are: `{root}/t/{slug}{prefix}`.
#[derive(Debug, Clone)]
pub struct TenantUrls {
    /// The server's public root, e.g. `https://scim.example.com`.
    pub root: String,
    /// Where SCIM lives under a tenant, e.g. `/scim/v2`.
    pub prefix: String,
}

impl TenantUrls {
    pub fn scim_base(&self, slug: &str) -> String {
        format!("{}/t/{slug}{}", self.root.trim_end_matches('/'), self.prefix)
    }
}

/// The longest lifetime a token may be given (ten years); a longer one is a mistake.
pub const MAX_LIFETIME_DAYS: u64 = 3_650;

/// When a token made now with this lifetime (`90d`, `12h`, …) expires.
pub fn expiry(lifetime: Option<&str>) -> Result<Option<String>, OpError> {
    let Some(text) = lifetime else { return Ok(None) };
    let invalid = || {
        OpError::Invalid(
            "invalid_expiry",
            format!("'{text}' is not a lifetime such as 90d, 12h, 30m or 2w (at most {MAX_LIFETIME_DAYS} days)"),
        )
    };
    let life = parse_lifetime(text).filter(|l| l.as_secs() <= MAX_LIFETIME_DAYS * 86_400).ok_or_else(invalid)?;
    let at = time::OffsetDateTime::now_utc().checked_add(time::Duration::try_from(life).map_err(|_| invalid())?);
    Ok(Some(scimd_proto::value::format_datetime(at.ok_or_else(invalid)?)))
}

/// Longest display name of a tenant or a token, in characters.
pub const MAX_NAME: usize = 200;

/// A display name, trimmed: not empty, not too long, no control characters.
fn display_name<'a>(what: &str, name: &'a str) -> Result<&'a str, OpError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(OpError::Invalid(
            "invalid_name",
            format!("a {what}'s name has 1 to {MAX_NAME} characters and no control characters"),
        ));
    }
    Ok(name)
}

/// A tenant just made: its SCIM base URL and its first token (shown once).
pub struct Created {
    pub tenant: Tenant,
    pub scim_base_url: String,
    pub token: NewToken,
}

impl Directory {
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: Option<&str>,
        settings: TenantSettings,
    ) -> Result<Created, OpError> {
        if !valid_slug(slug) {
            return Err(OpError::Invalid(
                "invalid_slug",
                format!(
                    "'{slug}' is not a valid slug: use 1 to 63 lower-case letters, digits and '-', not starting with '-'"
                ),
            ));
        }
        settings.check().map_err(|why| OpError::Invalid("invalid_settings", why))?;
        let name = match name {
            Some(n) => display_name("tenant", n)?,
            None => slug,
        };
        let now = now();
        let tenant = Tenant {
            slug: slug.to_string(),
            name: name.to_string(),
            state: TenantState::Active,
            settings,
            created: now.clone(),
            last_request: None,
        };
        self.tenants.create_tenant(&tenant, FoundData::Erase).await.map_err(|e| match e {
            StoreError::Uniqueness(_) => OpError::SlugTaken(slug.to_string()),
            other => other.into(),
        })?;
        let token = self.create_token(slug, "initial", None).await?;
        Ok(Created { scim_base_url: self.urls.scim_base(slug), tenant, token })
    }

    pub async fn tenant(&self, slug: &str) -> Result<Tenant, OpError> {
        self.tenants.tenant(slug).await?.ok_or_else(|| OpError::NotFound(format!("tenant '{slug}'")))
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, OpError> {
        Ok(self.tenants.tenants().await?)
    }

    pub async fn update_tenant(
        &self,
        slug: &str,
        name: Option<&str>,
        state: Option<TenantState>,
        settings: Option<&TenantSettings>,
    ) -> Result<Tenant, OpError> {
        if let Some(s) = settings {
            s.check().map_err(|why| OpError::Invalid("invalid_settings", why))?;
        }
        let name = name.map(|n| display_name("tenant", n)).transpose()?;
        self.tenants
            .update_tenant(slug, name, state, settings)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("tenant '{slug}'")))
    }

    /// Erases the tenant and all it holds.
    pub async fn delete_tenant(&self, slug: &str) -> Result<(), OpError> {
        if self.tenants.delete_tenant(slug, &now()).await? {
            Ok(())
        } else {
            Err(OpError::NotFound(format!("tenant '{slug}'")))
        }
    }

    pub async fn stats(&self, slug: &str) -> Result<(Tenant, TenantStats), OpError> {
        let tenant = self.tenant(slug).await?;
        let stats = self.tenants.tenant_stats(slug).await?;
        Ok((tenant, stats))
    }

    /// A new SCIM token for an existing tenant; `lifetime` such as `90d`.
    pub async fn create_token(&self, slug: &str, name: &str, lifetime: Option<&str>) -> Result<NewToken, OpError> {
        let name = display_name("token", name)?;
        self.tenant(slug).await?;
        let expires = expiry(lifetime)?;
        let req = TokenRequest { scope: Scope::Scim, tenant: slug, name, secret: None, expires };
        Ok(create_token(self.tokens.as_ref(), req, &now()).await?)
    }

    pub async fn tokens(&self, slug: &str) -> Result<Vec<TokenInfo>, OpError> {
        self.tenant(slug).await?;
        Ok(self.tokens.list_tokens(Scope::Scim, slug).await?)
    }

    pub async fn revoke_token(&self, slug: &str, id: &str) -> Result<(), OpError> {
        if self.tokens.revoke_token(Scope::Scim, slug, id, &now()).await? {
            Ok(())
        } else {
            Err(OpError::NotFound(format!("active token '{id}' of tenant '{slug}'")))
        }
    }
}

/// Admin tokens: they open the admin API and nothing else.
impl Directory {
    pub async fn create_admin_token(&self, name: &str, lifetime: Option<&str>) -> Result<NewToken, OpError> {
        let name = display_name("token", name)?;
        let expires = expiry(lifetime)?;
        let req = TokenRequest { scope: Scope::Admin, tenant: "", name, secret: None, expires };
        Ok(create_token(self.tokens.as_ref(), req, &now()).await?)
    }

    pub async fn admin_tokens(&self) -> Result<Vec<TokenInfo>, OpError> {
        Ok(self.tokens.list_tokens(Scope::Admin, "").await?)
    }

    pub async fn revoke_admin_token(&self, id: &str) -> Result<(), OpError> {
        if self.tokens.revoke_token(Scope::Admin, "", id, &now()).await? {
            Ok(())
        } else {
            Err(OpError::NotFound(format!("active admin token '{id}'")))
        }
    }
}
