//! Rendering a stored resource in its JSON representation: `schemas`, `id`, `meta`.

use crate::object_text;
use crate::project::Projection;
use crate::schema::ResourceSchema;
use serde::Serialize;
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
    // Without `format!`: this is written twice for every answer (header and `meta`).
    let mut digits = itoa::Buffer::new();
    ["W/\"", digits.format(version), "\""].concat()
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
    let schemas = schema_ids(schema, |urn| attributes.contains_key(urn));
    attributes.insert("schemas".into(), Value::Array(schemas));
    attributes.insert("id".into(), Value::String(id.to_string()));
    let shown = serde_json::to_value(MetaShown::of(schema, meta)).unwrap_or_default();
    attributes.insert("meta".into(), shown);
    attributes
}

/// `render`'s representation with `projection` applied, written as JSON text straight from
/// the stored JSON text of the attributes (`document`), without building it as a map:
/// `relation` is the related values' attribute (a user's `groups`, a group's `members`,
/// each value complete), projected here as the rest. None when the projection would change
/// a stored value rather than keep or drop it whole (part of an attribute named, a
/// sub-attribute returned on request or never), or the document holds what the schema no
/// longer has: that resource is rendered the long way.
pub fn render_stored(
    schema: &ResourceSchema<'_>,
    id: &str,
    document: &str,
    relation: Option<(&str, Value)>,
    meta: &Meta,
    projection: &Projection,
) -> Option<String> {
    let stored = object_text::members(document)?;
    let relation = relation
        .and_then(|(name, mut value)| projection.apply_attribute(schema, name, &mut value).then_some((name, value)));
    let core = |name: &str| schema.core_attributes().find(|d| d.name == name);
    let mut shown = Vec::with_capacity(stored.len());
    for (key, value) in stored {
        // What the representation sets itself, as `render` does.
        if matches!(&*key, "schemas" | "id" | "meta") || relation.as_ref().is_some_and(|(name, _)| *name == key) {
            continue;
        }
        let keep = match schema.extension(&key) {
            Some(ext) => {
                let inner = object_text::members(value)?;
                let mut each = inner.iter().map(|(name, _)| projection.whole(Some(&ext.id), ext.attribute(name)?));
                match each.next()? {
                    Some(first) if each.all(|next| next == Some(first)) => first,
                    _ => return None,
                }
            }
            None => projection.whole(None, core(&key)?)?,
        };
        if keep {
            shown.push((key, value));
        }
    }
    // The extensions whose attributes are shown, as `Projection::apply` leaves them.
    let schemas = schema_ids(schema, |urn| shown.iter().any(|(key, _)| key == urn));
    let meta = match core("meta") {
        Some(def) => projection.whole(None, def)?.then(|| MetaShown::of(schema, meta)),
        None => None,
    };
    let mut out = Vec::with_capacity(document.len() + 320);
    out.extend_from_slice(b"{\"schemas\":");
    serde_json::to_writer(&mut out, &schemas).ok()?;
    out.extend_from_slice(b",\"id\":");
    serde_json::to_writer(&mut out, id).ok()?;
    for (key, value) in &shown {
        out.push(b',');
        serde_json::to_writer(&mut out, key).ok()?;
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
    }
    if let Some((name, value)) = &relation {
        out.push(b',');
        serde_json::to_writer(&mut out, name).ok()?;
        out.push(b':');
        serde_json::to_writer(&mut out, value).ok()?;
    }
    if let Some(meta) = &meta {
        out.extend_from_slice(b",\"meta\":");
        serde_json::to_writer(&mut out, meta).ok()?;
    }
    out.push(b'}');
    String::from_utf8(out).ok()
}

/// A resource's `schemas`: its core schema, then each extension it `has` data in.
fn schema_ids(schema: &ResourceSchema<'_>, has: impl Fn(&str) -> bool) -> Vec<Value> {
    let extensions = schema.extensions.iter().map(|(ext, _)| &ext.id).filter(|urn| has(urn));
    std::iter::once(&schema.core.id).chain(extensions).map(|urn| Value::String(urn.clone())).collect()
}

/// `meta` as the representation shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaShown<'a> {
    resource_type: &'a str,
    // An application's row that SCIM never wrote has no known creation time: leave it out.
    #[serde(skip_serializing_if = "str::is_empty")]
    created: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    last_modified: &'a str,
    location: &'a str,
    version: String,
}

impl<'a> MetaShown<'a> {
    fn of(schema: &'a ResourceSchema<'_>, meta: &'a Meta) -> MetaShown<'a> {
        MetaShown {
            resource_type: &schema.rt.name,
            created: &meta.created,
            last_modified: &meta.last_modified,
            location: &meta.location,
            version: etag(meta.version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, Registry};
    use serde_json::json;

    fn meta() -> Meta {
        Meta {
            created: "2026-01-02T03:04:05Z".into(),
            last_modified: "2026-01-02T03:04:06Z".into(),
            location: "https://h/scim/v2/Users/u1".into(),
            version: 3,
        }
    }

    /// The long way: the document as a map, `render`, the projection.
    fn long_way(
        schema: &ResourceSchema<'_>,
        document: &Value,
        relation: Option<(&str, &Value)>,
        p: &Projection,
    ) -> Value {
        let mut attributes = document.as_object().unwrap().clone();
        if let Some((name, value)) = relation {
            attributes.insert(name.into(), value.clone());
        }
        let mut body = render(schema, "u1", attributes, &meta());
        p.apply(&mut body, schema);
        Value::Object(body)
    }

    fn from_text(
        schema: &ResourceSchema<'_>,
        document: &Value,
        relation: Option<(&str, &Value)>,
        p: &Projection,
    ) -> Option<Value> {
        let relation = relation.map(|(name, value)| (name, value.clone()));
        let text = render_stored(schema, "u1", &document.to_string(), relation, &meta(), p)?;
        Some(serde_json::from_str(&text).expect("valid JSON"))
    }

    fn projection(schema: &ResourceSchema<'_>, attributes: &str, excluded: &str) -> Projection {
        let named = |list: &str| (!list.is_empty()).then(|| list.to_string());
        Projection::parse(named(attributes).as_deref(), named(excluded).as_deref(), schema).unwrap()
    }

    #[test]
    fn a_stored_document_renders_from_its_text_as_the_long_way_does() {
        let reg = Registry::standard();
        let user = reg.resource("User").unwrap();
        let groups =
            json!([{"value": "g1", "display": "Sales \"EU\"", "type": "direct", "$ref": "https://h/Groups/g1"}]);
        let documents = [
            json!({"userName": "bjensen"}),
            json!({
                "userName": "bjensen@example.com", "active": true, "displayName": "Bärbel \u{1F600} \\ \"B\"",
                "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"},
                "emails": [{"value": "a@example.com", "type": "work", "primary": true}, {"value": "b@example.com"}],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
                "addresses": [{"streetAddress": "1 Main St", "postalCode": "12345", "country": "US"}],
                "externalId": "00u1", "x509Certificates": [], "title": "",
                ENTERPRISE_USER_SCHEMA: {"employeeNumber": "7", "costCenter": 4.50, "manager": {"value": "m1"}}
            }),
        ];
        // Every projection that keeps or drops each attribute whole (those Entra ID and
        // Okta send among them: none, and a group without its members).
        let projections = [
            ("", ""),
            ("userName", ""),
            ("emails,groups", ""),
            ("", "emails,name,groups"),
            ("", "meta"),
            ("", ENTERPRISE_USER_SCHEMA),
            ("employeeNumber,costCenter,manager", ""),
            ("", "employeeNumber,costCenter,manager"),
            ("groups.display", ""),
        ];
        for (attributes, excluded) in projections {
            let p = projection(&user, attributes, excluded);
            for document in &documents {
                for relation in [None, Some(("groups", &groups))] {
                    let expected = long_way(&user, document, relation, &p);
                    let got = from_text(&user, document, relation, &p);
                    assert_eq!(got.as_ref(), Some(&expected), "{attributes:?} {excluded:?} {document}");
                }
            }
        }
        // A key of the representation itself, had one been stored, is the server's.
        let stray = json!({"userName": "b", "id": "other", "schemas": ["x"], "meta": {"version": "1"}});
        let p = Projection::default();
        assert_eq!(from_text(&user, &stray, None, &p), Some(long_way(&user, &stray, None, &p)));
        let group = reg.resource("Group").unwrap();
        let members = json!([{"value": "u1", "type": "User", "display": "B", "$ref": "https://h/Users/u1"}]);
        let g = json!({"displayName": "Sales"});
        for (attributes, excluded) in [("", ""), ("", "members"), ("members.display", ""), ("displayName", "")] {
            let p = projection(&group, attributes, excluded);
            let relation = Some(("members", &members));
            assert_eq!(from_text(&group, &g, relation, &p), Some(long_way(&group, &g, relation, &p)));
        }
    }

    #[test]
    fn what_a_projection_would_change_is_left_to_the_long_way() {
        let reg = Registry::standard();
        let user = reg.resource("User").unwrap();
        let p = Projection::default();
        // An attribute returned never is dropped whole, as the long way drops it.
        let secret = json!({"userName": "b", "password": "secret"});
        let rendered = from_text(&user, &secret, None, &p).expect("rendered from the text");
        assert_eq!((rendered.get("password"), &rendered), (None, &long_way(&user, &secret, None, &p)));
        for document in [
            // no longer in the schema (removed by force)
            json!({"userName": "b", "shoeSize": 42}),
            json!({"userName": "b", ENTERPRISE_USER_SCHEMA: {"shoeSize": 42}}),
            // an extension with nothing in it
            json!({"userName": "b", ENTERPRISE_USER_SCHEMA: {}}),
            json!({"userName": "b", ENTERPRISE_USER_SCHEMA: "text"}),
        ] {
            assert_eq!(from_text(&user, &document, None, &p), None, "{document}");
        }
        // Part of an attribute, or of an extension.
        let document = json!({"userName": "b", "name": {"givenName": "B", "familyName": "J"},
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "7", "department": "R&D"}});
        for (attributes, excluded) in
            [("name.givenName", ""), ("", "name.familyName"), ("", "employeeNumber"), ("", "meta.created")]
        {
            assert_eq!(from_text(&user, &document, None, &projection(&user, attributes, excluded)), None);
        }
        // Returned on request only: dropped whole by default; a sub-attribute returned never
        // is taken out of its value, which the long way does.
        let mut reg = Registry::standard();
        reg.add_schema_json(
            r#"{"id": "urn:example:scim:acme:User", "name": "Acme", "attributes": [
                {"name": "badge", "type": "string", "returned": "request"},
                {"name": "desk", "type": "complex", "subAttributes": [
                    {"name": "building", "type": "string"}, {"name": "pin", "type": "string", "returned": "never"}]},
                {"name": "floor", "type": "integer"}]}"#,
        )
        .unwrap();
        reg.add_extension("User", "urn:example:scim:acme:User", false).unwrap();
        let user = reg.resource("User").unwrap();
        let acme = |v: Value| json!({"userName": "b", "urn:example:scim:acme:User": v});
        assert_eq!(from_text(&user, &acme(json!({"desk": {"building": "A"}})), None, &p), None);
        let badge = acme(json!({"badge": "7", "floor": 1}));
        let rendered = from_text(&user, &badge, None, &p);
        assert_eq!(rendered, None, "part of the extension is dropped: the long way");
        let plain = acme(json!({"floor": 3}));
        let rendered = from_text(&user, &plain, None, &p).expect("returned by default: rendered from the text");
        assert_eq!(rendered, long_way(&user, &plain, None, &p));
        assert_eq!(rendered["schemas"][1], "urn:example:scim:acme:User");
        let asked = projection(&user, "urn:example:scim:acme:User:badge,userName", "");
        assert_eq!(from_text(&user, &badge, None, &asked), None, "badge kept, floor dropped: the long way");
        let asked = projection(&user, "urn:example:scim:acme:User", "");
        let rendered = from_text(&user, &badge, None, &asked).expect("the whole extension asked for");
        assert_eq!(rendered, long_way(&user, &badge, None, &asked));
        assert_eq!(rendered["urn:example:scim:acme:User"]["badge"], "7");
    }

    #[test]
    fn etags_round_trip_weak_and_strong() {
        assert_eq!(etag(7), "W/\"7\"");
        assert_eq!(parse_etag("W/\"7\""), Some(7));
        assert_eq!(parse_etag("\"7\""), Some(7));
        assert_eq!(parse_etag("7"), None);
        assert_eq!(parse_etag("W/\"x\""), None);
    }
}
