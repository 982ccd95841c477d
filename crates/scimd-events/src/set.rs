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
                let body = truncation(one("data", patch_op(&Map::new(), &[], members)), members);
                add(PATCH, qualified(PATCH), with_version(body));
            }
        }
        "patch" => {
            let body = if full {
                let top = pl.get(p::TOP_LEVEL).and_then(Value::as_array);
                let changed: Vec<&str> = top.into_iter().flatten().filter_map(Value::as_str).collect();
                truncation(one("data", patch_op(data.as_object()?, &changed, members)), members)
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

/// A member change too large to list (more than `MAX_MEMBER_IDS` either way) lists the
/// first ones and says how many there were: `"truncated": {"added": N, "removed": M}`.
fn truncation(mut body: Map<String, Value>, members: Option<&Value>) -> Map<String, Value> {
    if let Some(m) = members.filter(|m| m["truncated"] == true) {
        body.insert("truncated".into(), json!({"added": m["addedCount"], "removed": m["removedCount"]}));
    }
    body
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

#[cfg(test)]
mod tests {
    use super::*;
    use scimd_core::streams::{Alg, Delivery, DeliveryState, StreamState};

    fn stream(format: Format, event_types: &[&str]) -> Stream {
        Stream {
            id: "s1".into(),
            tenant: "t".into(),
            name: "n".into(),
            delivery: Delivery::Push,
            endpoint: Some("https://r.example.com".into()),
            authorization: None,
            audience: "https://r.example.com".into(),
            format,
            event_types: event_types.iter().map(|t| t.to_string()).collect(),
            alg: Alg::HS256,
            secret: None,
            state: StreamState::Active,
            cursor: 0,
            created: String::new(),
            delivery_state: DeliveryState::default(),
        }
    }

    fn event(payload: Value) -> LoggedEvent {
        LoggedEvent {
            seq: 7,
            tenant: "t".into(),
            txn: "x".into(),
            time: "2026-11-30T10:00:00.000000Z".into(),
            resource_type: "Group".into(),
            resource_id: "g".into(),
            payload,
        }
    }

    /// A member change of more than 1,000 ids lists the first 1,000 and says how many.
    #[test]
    fn a_large_member_change_says_it_is_cut() {
        let added: Vec<Value> = (0..1000).map(|i| json!({"value": format!("u{i}"), "type": "User"})).collect();
        let e = event(json!({"op": "patch", "resourceType": "Group", "endpoint": "Groups", "id": "g",
            "version": "W/\"9\"", "topLevel": [], "attributes": ["members"], "data": {},
            "members": {"added": added, "removed": [], "truncated": true, "addedCount": 1500, "removedCount": 0}}));
        let c = claims(&e, &stream(Format::Full, &[]), "https://scimd.test").unwrap();
        let body = &c["events"]["urn:ietf:params:scim:event:prov:patch:full"];
        assert_eq!(body["truncated"], json!({"added": 1500, "removed": 0}));
        assert_eq!(body["data"]["Operations"][0]["value"].as_array().unwrap().len(), 1000);
        assert_eq!(c["jti"], "s1.7");
        // A small change says nothing of the kind.
        let e = event(json!({"op": "patch", "resourceType": "Group", "endpoint": "Groups", "id": "g",
            "version": "W/\"9\"", "topLevel": [], "attributes": ["members"], "data": {},
            "members": {"added": [{"value": "u1", "type": "User"}], "removed": []}}));
        let c = claims(&e, &stream(Format::Full, &[]), "https://scimd.test").unwrap();
        assert!(c["events"]["urn:ietf:params:scim:event:prov:patch:full"].get("truncated").is_none());
    }

    /// A stream that wants only some event types gets only those; notice streams get the
    /// names of what changed, not the values (RFC 9967 §2.4).
    #[test]
    fn streams_get_the_types_and_form_they_asked_for() {
        let e = event(json!({"op": "patch", "resourceType": "User", "endpoint": "Users", "id": "u",
            "version": "W/\"3\"", "topLevel": ["active"], "attributes": ["active"], "data": {"active": false},
            "activation": "deactivate"}));
        let only_deactivate = stream(Format::Full, &[DEACTIVATE]);
        let c = claims(&e, &only_deactivate, "i").unwrap();
        let keys: Vec<&String> = c["events"].as_object().unwrap().keys().collect();
        assert_eq!(keys, vec![DEACTIVATE]);
        assert!(claims(&e, &stream(Format::Full, &[CREATE]), "i").is_none(), "nothing this stream wants");
        let c = claims(&e, &stream(Format::Notice, &[]), "i").unwrap();
        assert_eq!(c["events"]["urn:ietf:params:scim:event:prov:patch:notice"]["attributes"], json!(["active"]));
        assert!(!c.to_string().contains("false"), "a notice carries no values: {c}");
    }
}
