//! The provisioning activity log: what each identity provider sent a tenant, and what it was
//! answered. One record per authenticated SCIM request; a failed request keeps its body, with
//! every password and credential removed, so that the person on call can see what was sent.

use crate::store::StoreError;
use async_trait::async_trait;
use scimd_proto::value::json_text;
use serde::Serialize;
use serde_json::Value;

/// One SCIM request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    #[serde(skip)]
    pub tenant: String,
    pub time: String,
    pub method: String,
    /// Path and query, below the server's root.
    pub path: String,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    /// From arrival to the answer's head, in microseconds.
    pub latency_us: u64,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub user_agent: Option<String>,
    /// The identity provider, recognised from the User-Agent.
    pub client: Option<String>,
    pub request_id: Option<String>,
    /// A failed request's body, redacted and bounded (`redact`).
    pub request_body: Option<String>,
}

/// Which answers to read: one status class, or every failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// 2, 3, 4 or 5: answers of that class.
    Class(u16),
    /// 4xx and 5xx.
    Failed,
}

impl StatusFilter {
    /// As the admin API and the console name it: `2xx`, `3xx`, `4xx`, `5xx` or `failed`.
    pub fn parse(text: &str) -> Option<StatusFilter> {
        match text {
            "failed" => Some(StatusFilter::Failed),
            "2xx" | "3xx" | "4xx" | "5xx" => Some(StatusFilter::Class(u16::from(text.as_bytes()[0] - b'0'))),
            _ => None,
        }
    }
}

/// Which records to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    pub status: Option<StatusFilter>,
    pub resource_id: Option<String>,
    /// Times (RFC 3339, UTC) from and before which.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only records older than this record id (the next page).
    pub before: Option<i64>,
    pub limit: u32,
}

/// Requests over a period, and failures among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActivitySummary {
    pub requests: u64,
    /// Answered 4xx or 5xx.
    pub failed: u64,
}

/// Where activity is kept.
#[async_trait]
pub trait ActivityLog: Send + Sync + 'static {
    /// Stores records (of any tenants), in one transaction.
    async fn record_activity(&self, batch: &[Activity]) -> Result<(), StoreError>;
    /// A tenant's records matching `q`, newest first, with their ids.
    async fn activity(&self, tenant: &str, q: &ActivityQuery) -> Result<Vec<(i64, Activity)>, StoreError>;
    /// How many requests a tenant's log holds from `since` on, and how many of them failed.
    async fn activity_summary(&self, tenant: &str, since: &str) -> Result<ActivitySummary, StoreError>;
    /// Keeps each tenant's newest `keep` records, none older than `before`; how many went.
    async fn prune_activity(&self, keep: u32, before: &str) -> Result<u64, StoreError>;
}

/// The identity provider a User-Agent names, as far as it says.
pub fn client_of(user_agent: &str) -> Option<&'static str> {
    let ua = user_agent.to_ascii_lowercase();
    [
        ("okta", "Okta"),
        ("azure", "Microsoft Entra ID"),
        ("microsoft", "Microsoft Entra ID"),
        ("onelogin", "OneLogin"),
        ("jumpcloud", "JumpCloud"),
        ("google", "Google Workspace"),
        ("pingidentity", "PingOne"),
        ("sailpoint", "SailPoint"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name)
}

/// What replaces a removed value.
pub const REDACTED: &str = "[redacted]";

/// Whether an attribute name is a credential's: its value never reaches the log.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "credential"].iter().any(|s| n.contains(s))
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            // A PATCH operation on a credential: its value goes, whatever its shape.
            let on_secret = m.get("path").and_then(Value::as_str).is_some_and(secret_name);
            for (k, val) in m.iter_mut() {
                if secret_name(k) || (on_secret && k == "value") {
                    *val = Value::String(REDACTED.into());
                } else {
                    scrub(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// A request body as the log keeps it: JSON with every password and credential replaced,
/// anything else as text; at most `max` bytes (cut at a character boundary, marked).
pub fn redact(body: &[u8], max: usize) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            scrub(&mut v);
            json_text(&v)
        }
        // Not JSON: nothing can be told apart, so nothing but its length is kept when it
        // might hold a credential.
        Err(_) => {
            let t = String::from_utf8_lossy(body);
            if secret_name(&t) { format!("(a body of {} bytes that is not JSON)", body.len()) } else { t.into_owned() }
        }
    };
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_never_reach_the_log() {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann",
            "password": "Hunter2!", "urn:example:ext": {"apiToken": "t0k", "nested": [{"clientSecret": "s3"}]},
            "Operations": [{"op": "replace", "path": "password", "value": "Hunter3!"},
                           {"op": "replace", "value": {"password": "Hunter4!", "title": "x"}}]});
        let out = redact(body.to_string().as_bytes(), 10_000);
        for secret in ["Hunter2!", "Hunter3!", "Hunter4!", "t0k", "s3"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("\"userName\":\"ann\"") && out.contains("\"title\":\"x\""), "{out}");
        // Not JSON, and it mentions a password: only its size is kept.
        assert_eq!(redact(b"password=Hunter2!", 100), "(a body of 17 bytes that is not JSON)");
        assert_eq!(redact(b"{broken", 100), "{broken");
    }

    #[test]
    fn long_bodies_are_cut_at_a_character() {
        let body = json!({"displayName": "é".repeat(100)}).to_string();
        let out = redact(body.as_bytes(), 20);
        assert!(out.ends_with(&format!("… ({} bytes in all)", body.len())), "{out}");
        assert!(out.len() < 60);
    }

    #[test]
    fn status_filters_by_name() {
        assert_eq!(StatusFilter::parse("4xx"), Some(StatusFilter::Class(4)));
        assert_eq!(StatusFilter::parse("2xx"), Some(StatusFilter::Class(2)));
        assert_eq!(StatusFilter::parse("failed"), Some(StatusFilter::Failed));
        for bad in ["6xx", "4XX", "", "400"] {
            assert_eq!(StatusFilter::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn identity_providers_by_user_agent() {
        assert_eq!(client_of("Okta SCIM Client 1.0.0"), Some("Okta"));
        assert_eq!(client_of("Microsoft.Azure.Identity.Provisioning"), Some("Microsoft Entra ID"));
        assert_eq!(client_of("curl/8.5.0"), None);
    }
}
