//! What the engine answers: a resource or a list as one JSON value, or, when a resource has
//! more related values than `INLINE_RELATIONS` (a group of 100,000 members), as JSON text
//! written a piece at a time: the resource, then its related values in batches read from
//! one snapshot, so that any group is answered in bounded memory.
//!
//! Rendering a stored resource (its `schemas`, `meta`, the `$ref` of its related values,
//! the adapter's hook, the projection) is here too, once, for both forms.

use crate::adapter::Adapter;
use crate::engine::{EngineError, EngineResult};
use crate::store::{INLINE_RELATIONS, Kind, RelationBatches, RelationStream, Store, StoredResource, StoredText};
use scimd_proto::resource::{self, Meta, render};
use scimd_proto::schema::ResourceSchema;
use scimd_proto::value::json_text;
use scimd_proto::{Projection, Registry};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

/// An answer's body.
pub enum Body {
    Json(Value),
    /// JSON text, rendered already.
    Text(String),
    Streamed(Streamed),
}

impl Body {
    /// The JSON value, when the answer is not streamed (tests and small answers).
    pub fn json(&self) -> Option<Cow<'_, Value>> {
        match self {
            Body::Json(v) => Some(Cow::Borrowed(v)),
            Body::Text(text) => serde_json::from_str(text).ok().map(Cow::Owned),
            Body::Streamed(_) => None,
        }
    }
}

/// The public URL of a resource.
pub(crate) fn location(base_url: &str, kind: Kind, id: &str) -> String {
    [base_url, "/", kind.endpoint(), "/", id].concat()
}

/// Completes a related value for the answer: its `$ref`, and for a user's group `type`.
fn decorate(base_url: &str, kind: Kind, item: &mut Map<String, Value>) {
    let value = item.get("value").and_then(Value::as_str).unwrap_or_default().to_string();
    let target = if kind.has_members() {
        item.get("type").and_then(Value::as_str).and_then(Kind::built_in).unwrap_or(Kind::User)
    } else {
        // The groups it is in (RFC 7643 §4.1.2: memberships are direct here).
        item.insert("type".into(), Value::String("direct".into()));
        Kind::Group
    };
    item.insert("$ref".into(), Value::String(location(base_url, target, &value)));
}

/// How many related values a read brought with the resource.
pub(crate) fn relation_count(kind: Kind, stored: &StoredResource) -> usize {
    kind.relation().and_then(|r| stored.attributes.get(r)).and_then(Value::as_array).map_or(0, Vec::len)
}

/// Whether the read capped the related values (see `INLINE_RELATIONS`).
pub(crate) fn is_capped(kind: Kind, stored: &StoredResource) -> bool {
    relation_count(kind, stored) > INLINE_RELATIONS
}

/// What rendering needs, owned, so that a streamed answer can render after the request's
/// borrowed context is gone.
#[derive(Clone)]
pub(crate) struct Renderer {
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Store>,
    pub adapter: Arc<dyn Adapter>,
    pub tenant: String,
    pub base_url: String,
}

impl Renderer {
    pub fn schema(&self, kind: Kind) -> EngineResult<ResourceSchema<'_>> {
        self.registry
            .resource(kind.name())
            .ok_or_else(|| EngineError::Internal(format!("no schema for {}", kind.name())))
    }

    /// Completes each of a resource's related values (see `decorate`).
    fn decorate_all(&self, kind: Kind, items: &mut [Value]) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            decorate(&self.base_url, kind, item);
        }
    }

    fn meta(&self, kind: Kind, id: &str, created: String, last_modified: String, version: i64) -> Meta {
        Meta { created, last_modified, location: location(&self.base_url, kind, id), version }
    }

    /// The response form of a stored resource.
    pub fn render(
        &self,
        kind: Kind,
        schema: &ResourceSchema<'_>,
        stored: StoredResource,
        projection: &Projection,
    ) -> Map<String, Value> {
        let mut attributes = stored.attributes;
        self.adapter.to_scim(kind, &stored.id, &mut attributes);
        if let Some(Value::Array(items)) = kind.relation().and_then(|r| attributes.get_mut(r)) {
            self.decorate_all(kind, items);
        }
        let meta = self.meta(kind, &stored.id, stored.created, stored.last_modified, stored.version);
        let mut body = render(schema, &stored.id, attributes, &meta);
        projection.apply(&mut body, schema);
        body
    }

    /// The response text of a resource read as its stored text (see
    /// `resource::render_stored`); None when it needs the long way (`render`), or when the
    /// read capped its related values (a streamed answer).
    pub fn render_stored(
        &self,
        kind: Kind,
        schema: &ResourceSchema<'_>,
        stored: &StoredText,
        projection: &Projection,
    ) -> Option<String> {
        let relation = match (kind.relation(), &stored.relations) {
            (_, None) => None,
            (Some(name), Some(Value::Array(items))) if items.len() <= INLINE_RELATIONS => {
                let mut items = items.clone();
                self.decorate_all(kind, &mut items);
                Some((name, Value::Array(items)))
            }
            _ => return None,
        };
        let (created, last_modified) = (stored.created.clone(), stored.last_modified.clone());
        let meta = self.meta(kind, &stored.id, created, last_modified, stored.version);
        resource::render_stored(schema, &stored.id, &stored.document, relation, &meta, projection)
    }

    /// The JSON text of a resource whose related values are written apart: the text before
    /// them and after them. (Its relation attribute holds a marker while it is rendered,
    /// which no stored value can spell: stored strings never hold NUL.)
    fn split(&self, kind: Kind, schema: &ResourceSchema<'_>, mut stored: StoredResource, p: &Projection) -> Split {
        const MARK: &str = "\u{0}scimd:related\u{0}";
        stored.attributes.insert(kind.relation().unwrap_or_default().into(), Value::String(MARK.into()));
        let text = json_text(&self.render(kind, schema, stored, p));
        let mark = json_text(MARK);
        match text.split_once(&mark) {
            Some((head, tail)) => Split::Around(format!("{head}["), format!("]{tail}")),
            None => Split::Whole(text),
        }
    }

    /// An answer for a resource read with its related values in batches.
    pub fn streamed_one(&self, kind: Kind, stream: RelationStream, projection: Projection) -> EngineResult<Body> {
        Ok(Body::Streamed(Streamed { renderer: self.clone(), parts: self.resource_parts(kind, stream, projection)? }))
    }

    /// The parts of one streamed resource: the text before its related values, the batches
    /// (which end with the text after them).
    fn resource_parts(
        &self,
        kind: Kind,
        stream: RelationStream,
        projection: Projection,
    ) -> EngineResult<VecDeque<Part>> {
        let schema = self.schema(kind)?;
        Ok(match self.split(kind, &schema, stream.resource, &projection) {
            Split::Around(head, tail) => VecDeque::from([
                Part::Text(head),
                Part::Batches(Open { batches: stream.batches, kind, projection, first: true, tail }),
            ]),
            Split::Whole(text) => VecDeque::from([Part::Text(text)]),
        })
    }

    /// A list answer (JSON text with `placeholders` for the resources to stream).
    pub fn streamed_list(&self, text: String, placeholders: Vec<Placeheld>) -> Body {
        let mut parts = VecDeque::new();
        let mut rest = text.as_str();
        for p in placeholders {
            let mark = json_text(&p.mark);
            let Some((before, after)) = rest.split_once(&mark) else { continue };
            parts.push_back(Part::Text(before.to_string()));
            parts.push_back(Part::Resource(p));
            rest = after;
        }
        parts.push_back(Part::Text(rest.to_string()));
        Body::Streamed(Streamed { renderer: self.clone(), parts })
    }
}

/// The resources of a list answer rendered as JSON text already (`render_stored`): each
/// holds its place in the list by a mark, then takes it in the list's text. (Marks hold
/// NUL, which no stored string does.)
#[derive(Default)]
pub(crate) struct Held(Vec<String>);

impl Held {
    fn mark(index: usize) -> String {
        format!("\u{0}scimd:text:{index}\u{0}")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value that holds `text`'s place in the list.
    pub fn hold(&mut self, text: String) -> Value {
        let mark = Value::String(Self::mark(self.0.len()));
        self.0.push(text);
        mark
    }

    /// The list's JSON text with each resource in its place.
    pub fn place(self, list: &str) -> String {
        let mut out = String::with_capacity(list.len() + self.0.iter().map(String::len).sum::<usize>());
        let mut rest = list;
        for (index, text) in self.0.into_iter().enumerate() {
            let mark = json_text(&Self::mark(index));
            if let Some((before, after)) = rest.split_once(&mark) {
                out.push_str(before);
                out.push_str(&text);
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }
}

enum Split {
    Around(String, String),
    Whole(String),
}

/// A resource of a list answer whose related values are streamed. Reached, it is read
/// again from a snapshot of its own, related values and all; should it be gone by then,
/// `fallback` (as the page read it, without its related values) stands in its place.
pub(crate) struct Placeheld {
    pub mark: String,
    pub kind: Kind,
    pub id: String,
    pub projection: Projection,
    pub fallback: String,
}

enum Part {
    Text(String),
    Resource(Placeheld),
    Batches(Open),
}

/// A resource's related values being written: the batches still to come, and the text that
/// follows them.
struct Open {
    batches: Box<dyn RelationBatches>,
    kind: Kind,
    projection: Projection,
    first: bool,
    tail: String,
}

/// JSON text written a piece at a time (see the module's comment).
pub struct Streamed {
    renderer: Renderer,
    parts: VecDeque<Part>,
}

impl Streamed {
    /// The next piece of the answer; None when it is complete. After an error the answer
    /// cannot be completed (its status is sent): the connection is to be closed.
    pub async fn next_chunk(&mut self) -> EngineResult<Option<Vec<u8>>> {
        loop {
            if let Some(Part::Batches(open)) = self.parts.front_mut() {
                let Some(batch) = open.batches.next().await? else {
                    let tail = std::mem::take(&mut open.tail);
                    self.parts.pop_front();
                    return Ok(Some(tail.into_bytes()));
                };
                let mut values = Value::Array(
                    batch
                        .into_iter()
                        .map(|mut item| {
                            decorate(&self.renderer.base_url, open.kind, &mut item);
                            Value::Object(item)
                        })
                        .collect(),
                );
                let schema = self.renderer.schema(open.kind)?;
                open.projection.apply_attribute(&schema, open.kind.relation().unwrap_or_default(), &mut values);
                let Value::Array(values) = values else { continue };
                let mut out = Vec::with_capacity(values.len() * 160);
                for v in values {
                    if !std::mem::take(&mut open.first) {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, &v).map_err(|e| EngineError::Internal(e.to_string()))?;
                }
                if out.is_empty() {
                    continue;
                }
                return Ok(Some(out));
            }
            match self.parts.pop_front() {
                None => return Ok(None),
                Some(Part::Text(text)) => return Ok(Some(text.into_bytes())),
                Some(Part::Batches(_)) => unreachable!("batches are taken at the front above"),
                Some(Part::Resource(p)) => {
                    let r = &self.renderer;
                    match r.store.open_relations(&r.tenant, p.kind, &p.id).await? {
                        // Gone since the page was read.
                        None => return Ok(Some(p.fallback.into_bytes())),
                        Some(stream) => {
                            // Its parts come before the rest of the list.
                            for part in r.resource_parts(p.kind, stream, p.projection)?.into_iter().rev() {
                                self.parts.push_front(part);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_rendered_as_text_take_their_places_in_the_list() {
        let mut held = Held::default();
        let (a, b) = (r#"{"id":"a","displayName":"x \u0000"}"#, r#"{"id":"b"}"#);
        let list = json!({
            "Resources": [held.hold(a.into()), {"id": "m"}, "\u{0}scimd:resource:0\u{0}", held.hold(b.into())],
            "totalResults": 4,
        });
        let text = held.place(&list.to_string());
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back["Resources"],
            json!([{"id": "a", "displayName": "x \u{0}"}, {"id": "m"}, "\u{0}scimd:resource:0\u{0}", {"id": "b"}])
        );
        assert_eq!(back["totalResults"], 4);
    }
}
