//! Protocol messages (RFC 7644 §3.4.2, §3.4.3, §3.7) and the discovery documents.

use crate::error::{Result, ScimError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A query response (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T = Value> {
    pub schemas: Vec<String>,
    pub total_results: u64,
    pub items_per_page: u64,
    pub start_index: u64,
    #[serde(rename = "Resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

impl<T> ListResponse<T> {
    pub fn new(total_results: u64, start_index: u64, resources: Vec<T>) -> Self {
        ListResponse {
            schemas: vec![crate::LIST_RESPONSE_URN.to_string()],
            total_results,
            items_per_page: resources.len() as u64,
            start_index,
            resources,
        }
    }
}

/// Either a list (`"a,b"` in query strings and some clients) or a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StringList {
    One(String),
    Many(Vec<String>),
}

impl StringList {
    pub fn joined(&self) -> String {
        match self {
            StringList::One(s) => s.clone(),
            StringList::Many(v) => v.join(","),
        }
    }
}

/// The body of `POST …/.search` (RFC 7644 §3.4.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<StringList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_attributes: Option<StringList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_order: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_index: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Value>,
    /// RFC 9865: `""` for the first page by cursor, or a `nextCursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl SearchRequest {
    pub fn from_json(body: &Value) -> Result<SearchRequest> {
        let req: SearchRequest = serde_json::from_value(body.clone())
            .map_err(|e| ScimError::invalid_syntax(format!("not a SearchRequest: {e}")))?;
        if !req.schemas.is_empty() && !req.schemas.iter().any(|s| s.eq_ignore_ascii_case(crate::SEARCH_REQUEST_URN)) {
            return Err(ScimError::invalid_syntax(format!("'schemas' must be [\"{}\"]", crate::SEARCH_REQUEST_URN)));
        }
        Ok(req)
    }
}

/// Sort direction (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}

impl SortOrder {
    pub fn parse(text: Option<&str>) -> Result<SortOrder> {
        match text.map(str::trim) {
            None | Some("") => Ok(SortOrder::Ascending),
            Some(t) if t.eq_ignore_ascii_case("ascending") => Ok(SortOrder::Ascending),
            Some(t) if t.eq_ignore_ascii_case("descending") => Ok(SortOrder::Descending),
            Some(t) => {
                Err(ScimError::invalid_value(format!("sortOrder must be 'ascending' or 'descending', not '{t}'")))
            }
        }
    }
}

/// Paging (RFC 7644 §3.4.2.4), normalised as the RFC says: a `startIndex` below 1 is 1,
/// a negative `count` is 0, and `count` is capped at the server's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub start_index: u64,
    pub count: u64,
}

impl Page {
    pub fn parse(start_index: Option<&str>, count: Option<&str>, default_count: u64, max_count: u64) -> Result<Page> {
        let int = |name: &str, v: Option<&str>| -> Result<Option<i64>> {
            match v.map(str::trim) {
                None | Some("") => Ok(None),
                Some(t) => t
                    .parse::<i64>()
                    .map(Some)
                    .or_else(|_| t.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| Some(f as i64)).ok_or(()))
                    .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not '{t}'"))),
            }
        };
        let start = int("startIndex", start_index)?.unwrap_or(1).max(1) as u64;
        let count = int("count", count)?.map(|c| c.max(0) as u64).unwrap_or(default_count).min(max_count);
        Ok(Page { start_index: start, count })
    }

    /// Zero-based offset of the first result.
    pub fn offset(&self) -> u64 {
        self.start_index - 1
    }
}

/// A value that arrives as a JSON number or string (SearchRequest paging), as text.
pub fn json_scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => Some(String::from("not-a-number")),
    }
}

/// What the server publishes at `/ServiceProviderConfig` (RFC 7643 §5).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderFeatures {
    pub documentation_uri: Option<String>,
    pub max_results: u64,
    pub max_payload_bytes: u64,
    pub bulk: Option<(u64, u64)>,
    /// RFC 9865 `pagination`: (default page size, cursor lifetime in seconds); index paging
    /// stays the default method.
    pub pagination: Option<(u64, u64)>,
    pub etag: bool,
    pub sort: bool,
    /// RFC 9967 event URIs delivered to event streams; `securityEvents` is published when
    /// there are some.
    pub event_uris: Vec<String>,
    /// Authentication schemes, as `(type, name, description)`.
    pub auth_schemes: Vec<(String, String, String)>,
}

impl ProviderFeatures {
    pub fn to_resource(&self, base_url: &str) -> Value {
        let (bulk_ok, max_ops, max_bulk_payload) = match self.bulk {
            Some((ops, bytes)) => (true, ops, bytes),
            None => (false, 0, self.max_payload_bytes),
        };
        let mut v = json!({
            "schemas": [crate::SERVICE_PROVIDER_CONFIG_URN],
            "patch": {"supported": true},
            "bulk": {"supported": bulk_ok, "maxOperations": max_ops, "maxPayloadSize": max_bulk_payload},
            "filter": {"supported": true, "maxResults": self.max_results},
            "changePassword": {"supported": false},
            "sort": {"supported": self.sort},
            "etag": {"supported": self.etag},
            "authenticationSchemes": self.auth_schemes.iter().enumerate().map(|(i, (kind, name, description))| json!({
                "type": kind, "name": name, "description": description, "primary": i == 0
            })).collect::<Vec<_>>(),
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base_url}/ServiceProviderConfig")},
        });
        if let Some((default_size, timeout)) = self.pagination {
            v["pagination"] = json!({"cursor": true, "index": true, "defaultPaginationMethod": "index",
                "defaultPageSize": default_size, "maxPageSize": self.max_results, "cursorTimeout": timeout});
        }
        if let Some(doc) = &self.documentation_uri {
            v["documentationUri"] = Value::String(doc.clone());
        }
        if !self.event_uris.is_empty() {
            // RFC 9967 §4: events are delivered to streams; requests never complete later.
            v["securityEvents"] = json!({"asyncRequest": "none", "eventUris": self.event_uris});
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_follows_rfc_7644_section_3_4_2_4() {
        assert_eq!(Page::parse(Some("0"), Some("-5"), 100, 1000).unwrap(), Page { start_index: 1, count: 0 });
        assert_eq!(Page::parse(None, None, 100, 1000).unwrap(), Page { start_index: 1, count: 100 });
        assert_eq!(Page::parse(Some("-3"), Some("5000"), 100, 1000).unwrap(), Page { start_index: 1, count: 1000 });
        assert_eq!(Page::parse(Some("11"), Some("10"), 100, 1000).unwrap().offset(), 10);
        assert!(Page::parse(Some("abc"), None, 100, 1000).is_err());
        assert_eq!(Page::parse(Some("99999999999999999999"), None, 100, 1000).unwrap().start_index, i64::MAX as u64);
    }

    #[test]
    fn list_response_serialises_with_rfc_names() {
        let v = serde_json::to_value(ListResponse::new(5, 1, vec![json!({"id": "a"})])).unwrap();
        assert_eq!(
            v,
            json!({"schemas": [crate::LIST_RESPONSE_URN], "totalResults": 5, "itemsPerPage": 1, "startIndex": 1, "Resources": [{"id": "a"}]})
        );
    }

    #[test]
    fn search_request_accepts_lists_or_strings() {
        let r = SearchRequest::from_json(&json!({"schemas": [crate::SEARCH_REQUEST_URN], "attributes": ["userName", "name"], "excludedAttributes": "emails", "count": 5})).unwrap();
        assert_eq!(r.attributes.unwrap().joined(), "userName,name");
        assert_eq!(r.excluded_attributes.unwrap().joined(), "emails");
        assert!(SearchRequest::from_json(&json!({"schemas": ["urn:x"]})).is_err());
    }
}
