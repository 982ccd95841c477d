//! Security Event Tokens (RFC 8417) for SCIM (RFC 9967), made from the log's events.

use scimd_core::events::{LoggedEvent, payload as p};
use scimd_core::streams::{Format, Stream};
use serde_json::{Map, Value, json};

/// The RFC 9967 event URIs scimd issues (without the `:full`/`:notice` qualifier).
pub const PROV: &str = "urn:ietf:params:scim:event:prov";
pub const CREATE: &str = "urn:ietf:params:scim:event:prov:create";
pub const PATCH: &str = "urn:ietf:params:scim:event:prov:patch";
pub const PUT: &str = "urn:ietf:params:scim:event:prov:put";
pub const DELETE: &str = "urn:ietf:params:scim:event:prov:delete";
pub const ACTIVATE: &str = "urn:ietf:params:scim:event:prov:activate";
pub const DEACTIVATE: &str = "urn:ietf:params:scim:event:prov:deactivate";

/// Every event URI, as `ServiceProviderConfig.securityEvents.eventUris` lists them.
pub const EVENT_URIS: [&str; 9] = [
    "urn:ietf:params:scim:event:prov:create:full",
    "urn:ietf:params:scim:event:prov:create:notice",
    "urn:ietf:params:scim:event:prov:patch:full",
    "urn:ietf:params:scim:event:prov:patch:notice",
    "urn:ietf:params:scim:event:prov:put:full",
    "urn:ietf:params:scim:event:prov:put:notice",
    DELETE,
    ACTIVATE,
    DEACTIVATE,
];

/// The event types a stream may ask for.
pub const EVENT_TYPES: [&str; 6] = [CREATE, PATCH, PUT, DELETE, ACTIVATE, DEACTIVATE];

/// The `jti` of an event's SET in a stream: the stream and the event's sequence number.
pub fn jti(stream: &str, seq: i64) -> String {
    format!("{stream}.{seq}")
}

/// The sequence number a `jti` of this stream names.
pub fn seq_of(stream: &str, jti: &str) -> Option<i64> {
    jti.strip_prefix(stream)?.strip_prefix('.')?.parse().ok()
}

/// The SET's claims for `event` in `stream`, or None when the stream wants none of what
/// happened.
pub fn claims(event: &LoggedEvent, stream: &Stream, issuer: &str) -> Option<Value> {
    let pl = event.payload.as_object()?;
    let text = |k: &str| pl.get(k).and_then(Value::as_str);
    let version = pl.get(p::VERSION).cloned();
    let with_version = |mut m: Map<String, Value>| {
        if let Some(v) = &version {
            m.insert("version".into(), v.clone());
        }
        Value::Object(m)
    };
    let full = stream.format == Format::Full;
    let qualified = |uri: &str| format!("{uri}:{}", if full { "full" } else { "notice" });
    let attributes = pl.get(p::ATTRIBUTES).cloned().unwrap_or_else(|| json!([]));
    let data = pl.get(p::DATA).cloned().unwrap_or_else(|| json!({}));
    let members = pl.get(p::MEMBERS);

    let mut events = Map::new();
    let mut add = |uri: &str, key: String, body: Value| {
        if stream.event_types.is_empty() || stream.event_types.iter().any(|t| t == uri) {
            events.insert(key, body);
        }
    };
    match text(p::OP)? {
        "create" => {
            let body = if full { one("data", data) } else { one("attributes", attributes) };
            add(CREATE, qualified(CREATE), with_version(body));
        }
        "put" => {
            let body = if full { one("data", put_data(&data, pl.get(p::ID))) } else { one("attributes", attributes) };
            add(PUT, qualified(PUT), with_version(body));
            // A replacement's member changes, as the PATCH that would make them.
            if full && members.is_some() {
                add(PATCH, qualified(PATCH), with_version(one("data", patch_op(&Map::new(), &[], members))));
            }
        }
        "patch" => {
            let body = if full {
                let top = pl.get(p::TOP_LEVEL).and_then(Value::as_array);
                let changed: Vec<&str> = top.into_iter().flatten().filter_map(Value::as_str).collect();
                one("data", patch_op(data.as_object()?, &changed, members))
            } else {
                one("attributes", attributes)
            };
            add(PATCH, qualified(PATCH), with_version(body));
        }
        "delete" => add(DELETE, DELETE.into(), json!({})),
        // A DELETE under `delete_policy = deactivate`: the activation below says it all.
        "deactivate" => {}
        _ => return None,
    }
    match text(p::ACTIVATION) {
        Some("activate") => add(ACTIVATE, ACTIVATE.into(), with_version(Map::new())),
        Some("deactivate") => add(DEACTIVATE, DEACTIVATE.into(), with_version(Map::new())),
        _ => {}
    }
    if events.is_empty() {
        return None;
    }
    let mut sub_id = Map::new();
    sub_id.insert("format".into(), json!("scim"));
    sub_id.insert("uri".into(), json!(format!("/{}/{}", text(p::ENDPOINT)?, text(p::ID)?)));
    sub_id.insert("id".into(), json!(text(p::ID)?));
    if let Some(e) = pl.get(p::EXTERNAL_ID) {
        sub_id.insert("externalId".into(), e.clone());
    }
    let iat = time::OffsetDateTime::parse(&event.time, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or_default();
    Some(json!({
        "iss": issuer,
        "aud": stream.audience,
        "iat": iat,
        "jti": jti(&stream.id, event.seq),
        "txn": event.txn,
        "sub_id": sub_id,
        "events": events,
    }))
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}

/// A replacement's `data`: the resource as it is now (RFC 9967 §2.4.3), without meta.
fn put_data(data: &Value, id: Option<&Value>) -> Value {
    let mut d = data.as_object().cloned().unwrap_or_default();
    d.remove("meta");
    if let Some(id) = id {
        d.insert("id".into(), id.clone());
    }
    Value::Object(d)
}

/// The PatchOp equivalent to a change (RFC 9967 §2.4.2 `data`): a `replace` of each changed
/// top-level attribute with its new value, a `remove` of each that is gone, and the members
/// added and removed.
fn patch_op(data: &Map<String, Value>, changed: &[&str], members: Option<&Value>) -> Value {
    let mut ops = Vec::new();
    for attr in changed.iter().copied().filter(|c| *c != "members") {
        match data.get(attr) {
            Some(v) => ops.push(json!({"op": "replace", "path": attr, "value": v})),
            None => ops.push(json!({"op": "remove", "path": attr})),
        }
    }
    if let Some(m) = members {
        let added: Vec<Value> = m["added"].as_array().cloned().unwrap_or_default();
        if !added.is_empty() {
            ops.push(json!({"op": "add", "path": "members", "value": added}));
        }
        for r in m["removed"].as_array().into_iter().flatten() {
            if let Some(id) = r["value"].as_str() {
                ops.push(json!({"op": "remove", "path": format!("members[value eq \"{}\"]", id.replace('"', "\\\""))}));
            }
        }
    }
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}
