//! What the engine records for each write: the payload of its events (see `events`),
//! built inside the store's transaction from what the store says the write did.

use crate::answer::Renderer;
use crate::events::{MemberDelta, NewEvent, Operation, Written, payload as p};
use crate::store::{Kind, StoredResource};
use scimd_proto::Projection;
use scimd_proto::resource::etag;
use scimd_proto::schema::ResourceSchema;
use serde_json::{Map, Value, json};

/// The most member ids one event lists in each direction. A write that adds or removes
/// more (a PUT replacing a large group's members) says how many, and that the list is cut:
/// the receiver reads the group instead.
pub const MAX_MEMBER_IDS: usize = 1000;

/// What one write is, for its events.
pub(crate) struct Recording<'a> {
    pub(crate) op: Operation,
    pub(crate) request_id: Option<&'a str>,
    pub(crate) renderer: &'a Renderer,
    pub(crate) schema: &'a ResourceSchema<'a>,
}

impl Recording<'_> {
    /// The events of what a write did: none when it changed nothing.
    pub(crate) fn events(&self, w: &Written<'_>) -> Vec<NewEvent> {
        let mut out = Vec::new();
        let mut payload = self.base(w.kind, w.id, w.after.or(w.before));
        match (w.before, w.after) {
            (None, Some(after)) => {
                let data = self.data(w.kind, after);
                payload.insert(p::ATTRIBUTES.into(), names(data.keys().filter(|k| *k != "meta" && *k != "schemas")));
                payload.insert(p::DATA.into(), Value::Object(data));
                add_members(&mut payload, w.members);
            }
            (Some(before), Some(after)) => {
                let mut changed = changed_paths(&before.attributes, &after.attributes);
                if !w.members.is_empty() {
                    changed.extend(w.kind.relation().map(str::to_string));
                }
                if changed.is_empty() {
                    return out;
                }
                let data: Map<String, Value> = self
                    .data(w.kind, after)
                    .into_iter()
                    .filter(|(k, v)| {
                        before.attributes.get(k) != after.attributes.get(k) && after.attributes.get(k) == Some(v)
                    })
                    .collect();
                let top: Vec<Value> = top_level_changes(&before.attributes, &after.attributes)
                    .into_iter()
                    .map(|k| Value::String(k.clone()))
                    .collect();
                payload.insert(p::ATTRIBUTES.into(), Value::Array(changed.into_iter().map(Value::String).collect()));
                payload.insert(p::TOP_LEVEL.into(), Value::Array(top));
                payload.insert(p::DATA.into(), Value::Object(data));
                if let Some(a) = activation(Some(before), after) {
                    payload.insert(p::ACTIVATION.into(), Value::String(a.into()));
                }
                add_members(&mut payload, w.members);
            }
            (Some(_), None) => {
                payload.remove(p::VERSION);
            }
            (None, None) => return out,
        }
        out.push(NewEvent {
            resource_type: w.kind.name().into(),
            resource_id: w.id.into(),
            payload: Value::Object(payload),
        });
        // The groups a deleted resource left changed too.
        for (group, version) in w.left_groups {
            let mut g = self.base(Kind::Group, group, None);
            g.insert(p::OP.into(), Value::String(Operation::MembershipOnly.as_str().into()));
            g.insert(p::VERSION.into(), Value::String(etag(*version)));
            g.insert(p::ATTRIBUTES.into(), json!(["members"]));
            g.insert(p::DATA.into(), json!({}));
            g.insert(p::MEMBERS.into(), json!({"added": [], "removed": [{"value": w.id}]}));
            out.push(NewEvent { resource_type: "Group".into(), resource_id: group.clone(), payload: Value::Object(g) });
        }
        out
    }

    /// What every event has: the operation, the resource, its version, the request.
    fn base(&self, kind: Kind, id: &str, state: Option<&StoredResource>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(p::OP.into(), Value::String(self.op.as_str().into()));
        m.insert(p::RESOURCE_TYPE.into(), Value::String(kind.name().into()));
        m.insert(p::ENDPOINT.into(), Value::String(kind.endpoint().into()));
        m.insert(p::ID.into(), Value::String(id.into()));
        if let Some(s) = state {
            if let Some(e) = s.attributes.get("externalId") {
                m.insert(p::EXTERNAL_ID.into(), e.clone());
            }
            m.insert(p::VERSION.into(), Value::String(etag(s.version)));
        }
        if let Some(r) = self.request_id {
            m.insert(p::REQUEST_ID.into(), Value::String(r.into()));
        }
        m
    }

    /// The resource as a GET shows it, without its members (those are in the delta).
    fn data(&self, kind: Kind, state: &StoredResource) -> Map<String, Value> {
        let mut state = state.clone();
        kind.take_relation(&mut state.attributes);
        let projection = Projection::parse(None, None, self.schema).unwrap_or_default();
        let mut data = self.renderer.render(kind, self.schema, state, &projection);
        kind.take_relation(&mut data);
        data
    }
}

/// `activate` or `deactivate` when `active` changed: unset counts as active.
fn activation(before: Option<&StoredResource>, after: &StoredResource) -> Option<&'static str> {
    let active = |s: &StoredResource| s.attributes.get("active") != Some(&Value::Bool(false));
    match (before.map(active), active(after)) {
        (Some(true), false) => Some("deactivate"),
        (Some(false), true) => Some("activate"),
        _ => None,
    }
}

fn names<'a>(keys: impl Iterator<Item = &'a String>) -> Value {
    Value::Array(keys.map(|k| Value::String(k.clone())).collect())
}

/// The top-level attributes whose values differ.
fn top_level_changes<'a>(before: &'a Map<String, Value>, after: &'a Map<String, Value>) -> Vec<&'a String> {
    let mut keys: Vec<&String> =
        before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The attribute paths whose values differ: top-level names, and one level down inside a
/// single-valued complex attribute (`name.familyName`) or an extension
/// (`urn:…:User:department`), as RFC 9967's `attributes` lists them.
pub fn changed_paths(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (b, a) = (before.get(k), after.get(k));
        if b == a {
            continue;
        }
        match (b, a) {
            (Some(Value::Object(bo)), Some(Value::Object(ao))) => {
                let sep = if k.starts_with("urn:") { ":" } else { "." };
                let mut subs: Vec<&String> = bo.keys().chain(ao.keys()).collect();
                subs.sort();
                subs.dedup();
                out.extend(subs.into_iter().filter(|s| bo.get(*s) != ao.get(*s)).map(|s| format!("{k}{sep}{s}")));
            }
            _ => out.push(k.clone()),
        }
    }
    out
}

/// A group's members gained and lost, at most `MAX_MEMBER_IDS` of each.
fn add_members(payload: &mut Map<String, Value>, delta: &MemberDelta) {
    if delta.is_empty() {
        return;
    }
    let added: Vec<Value> =
        delta.added.iter().take(MAX_MEMBER_IDS).map(|(id, kind)| json!({"value": id, "type": kind})).collect();
    let removed: Vec<Value> = delta.removed.iter().take(MAX_MEMBER_IDS).map(|id| json!({"value": id})).collect();
    let mut m = Map::new();
    m.insert("added".into(), Value::Array(added));
    m.insert("removed".into(), Value::Array(removed));
    if delta.added.len() > MAX_MEMBER_IDS || delta.removed.len() > MAX_MEMBER_IDS {
        m.insert("truncated".into(), Value::Bool(true));
        m.insert("addedCount".into(), json!(delta.added.len()));
        m.insert("removedCount".into(), json!(delta.removed.len()));
    }
    payload.insert(p::MEMBERS.into(), Value::Object(m));
}

#[cfg(test)]
mod tests {
    use super::changed_paths;
    use serde_json::json;

    #[test]
    fn changed_paths_name_sub_attributes_and_extension_attributes() {
        let before = json!({"userName": "a", "name": {"givenName": "A", "familyName": "B"}, "title": "x",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "division": "1"}});
        let after = json!({"userName": "a", "name": {"givenName": "A", "familyName": "C"}, "active": false,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "division": "1"}});
        let paths = changed_paths(before.as_object().unwrap(), after.as_object().unwrap());
        assert_eq!(
            paths,
            [
                "active",
                "name.familyName",
                "title",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            ]
        );
    }
}
