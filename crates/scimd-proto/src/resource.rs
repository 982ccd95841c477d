//! Rendering a stored resource in its JSON representation: `schemas`, `id`, `meta`.

use crate::schema::ResourceSchema;
use serde_json::{Map, Value};

/// Server-maintained metadata (RFC 7643 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub created: String,
    pub last_modified: String,
    pub location: String,
    /// Monotonic per resource; published as the weak ETag `W/"<n>"`.
    pub version: i64,
}

/// The weak ETag of a version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Parses an ETag as sent in `If-Match` / `If-None-Match` (weak or strong) to a version.
pub fn parse_etag(text: &str) -> Option<i64> {
    let t = text.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// Builds the full representation: `schemas` (core plus extensions with data), `id`,
/// the attributes, and `meta`.
pub fn render(
    schema: &ResourceSchema<'_>,
    id: &str,
    mut attributes: Map<String, Value>,
    meta: &Meta,
) -> Map<String, Value> {
    let mut schemas = vec![Value::String(schema.core.id.clone())];
    for (ext, _) in &schema.extensions {
        if attributes.contains_key(&ext.id) {
            schemas.push(Value::String(ext.id.clone()));
        }
    }
    attributes.insert("schemas".into(), Value::Array(schemas));
    attributes.insert("id".into(), Value::String(id.to_string()));
    let mut m = Map::with_capacity(5);
    m.insert("resourceType".into(), Value::String(schema.rt.name.clone()));
    // An application's row that SCIM never wrote has no known creation time: leave it out.
    if !meta.created.is_empty() {
        m.insert("created".into(), Value::String(meta.created.clone()));
    }
    if !meta.last_modified.is_empty() {
        m.insert("lastModified".into(), Value::String(meta.last_modified.clone()));
    }
    m.insert("location".into(), Value::String(meta.location.clone()));
    m.insert("version".into(), Value::String(etag(meta.version)));
    attributes.insert("meta".into(), Value::Object(m));
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_weak_and_strong() {
        assert_eq!(etag(7), "W/\"7\"");
        assert_eq!(parse_etag("W/\"7\""), Some(7));
        assert_eq!(parse_etag("\"7\""), Some(7));
        assert_eq!(parse_etag("7"), None);
        assert_eq!(parse_etag("W/\"x\""), None);
    }
}
