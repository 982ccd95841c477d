//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) applied according to each
//! attribute's `returned` characteristic (RFC 7643 §7).

use crate::error::{Result, ScimError};
use crate::path::AttrPath;
use crate::schema::{AttributeDef, Container, ResourceSchema, Returned, Target};
use serde_json::{Map, Value};

/// What a client asked to see. Paths are kept in canonical form once resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Vec<Selector>,
    excluded: Vec<Selector>,
}

/// A resolved `attributes` entry: a top-level attribute (in a container), maybe one sub.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    container: Option<String>,
    attr: Option<String>,
    sub: Option<String>,
}

impl Projection {
    /// Parses the two query parameters. Unknown attribute names are ignored, as a client
    /// asking for an attribute the server lacks simply does not get it.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>, schema: &ResourceSchema<'_>) -> Result<Projection> {
        let list = |text: Option<&str>| -> Result<Vec<Selector>> {
            let paths = AttrPath::parse_list(text.unwrap_or("")).map_err(ScimError::invalid_value)?;
            Ok(paths.iter().filter_map(|p| selector(p, schema)).collect())
        };
        Ok(Projection { attributes: list(attributes)?, excluded: list(excluded)? })
    }

    /// Like `parse`, across several resource types (for `/.search` at the root).
    pub fn from_paths(attributes: &[AttrPath], excluded: &[AttrPath], schema: &ResourceSchema<'_>) -> Projection {
        Projection {
            attributes: attributes.iter().filter_map(|p| selector(p, schema)).collect(),
            excluded: excluded.iter().filter_map(|p| selector(p, schema)).collect(),
        }
    }

    /// Whether the top-level attribute `name` (in the core container) can appear in the
    /// output. Stores use this to skip loading, e.g., a Group's members.
    pub fn may_return(&self, def: &AttributeDef) -> bool {
        self.top_level_state(None, def) != Decision::Drop
    }

    fn top_level_state(&self, container: Option<&str>, def: &AttributeDef) -> Decision {
        match def.returned {
            Returned::Never => return Decision::Drop,
            Returned::Always => return Decision::Keep,
            _ => {}
        }
        let matches = |s: &&Selector| {
            s.container.as_deref().map(str::to_ascii_lowercase) == container.map(str::to_ascii_lowercase)
                && s.attr.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&def.name))
        };
        let whole_extension = |s: &&Selector| {
            s.attr.is_none() && s.container.as_deref().zip(container).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
        };
        if !self.attributes.is_empty() {
            if self.attributes.iter().any(|s| whole_extension(&s) || (matches(&s) && s.sub.is_none())) {
                return Decision::Keep;
            }
            if self.attributes.iter().any(|s| matches(&s)) {
                return Decision::Partial;
            }
            return Decision::Drop;
        }
        if def.returned == Returned::Request {
            return Decision::Drop;
        }
        if self.excluded.iter().any(|s| whole_extension(&s) || (matches(&s) && s.sub.is_none())) {
            return Decision::Drop;
        }
        if self.excluded.iter().any(|s| matches(&s)) {
            return Decision::Partial;
        }
        Decision::Keep
    }

    /// Whether `attributes` names this sub-attribute itself.
    fn names_sub(&self, container: Option<&str>, def: &AttributeDef, sub: &AttributeDef) -> bool {
        self.attributes.iter().any(|s| {
            s.container.as_deref().map(str::to_ascii_lowercase) == container.map(str::to_ascii_lowercase)
                && s.attr.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&def.name))
                && s.sub.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&sub.name))
        })
    }

    fn sub_wanted(&self, container: Option<&str>, def: &AttributeDef, sub: &AttributeDef) -> bool {
        match sub.returned {
            Returned::Never => return false,
            Returned::Always => return true,
            _ => {}
        }
        let names = |s: &Selector| {
            s.container.as_deref().map(str::to_ascii_lowercase) == container.map(str::to_ascii_lowercase)
                && s.attr.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&def.name))
                && s.sub.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&sub.name))
        };
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(names);
        }
        sub.returned != Returned::Request && !self.excluded.iter().any(names)
    }

    /// What `apply` does with the values of attribute `def` (of extension `container`) as a
    /// whole: leaves them as they are (`Some(true)`), removes them (`Some(false)`), or
    /// changes them (None): part of the sub-attributes named, or a sub-attribute that may
    /// be hidden.
    pub fn whole(&self, container: Option<&str>, def: &AttributeDef) -> Option<bool> {
        match self.top_level_state(container, def) {
            Decision::Drop => Some(false),
            Decision::Partial => None,
            Decision::Keep => {
                let shown = |s: &AttributeDef| matches!(s.returned, Returned::Default | Returned::Always);
                def.sub_attributes.iter().all(shown).then_some(true)
            }
        }
    }

    /// Applies the projection to a resource in its JSON representation. `schemas` names
    /// the extensions whose attributes are still there after it (RFC 7643 §3: the schemas
    /// that define the attributes present).
    pub fn apply(&self, resource: &mut Map<String, Value>, schema: &ResourceSchema<'_>) {
        let mut dropped: Vec<&str> = Vec::new();
        resource.retain(|key, value| {
            if let Some(ext) = schema.extension(key) {
                let Value::Object(inner) = value else {
                    return true;
                };
                self.apply_container(inner, Some(&ext.id), |name| ext.attribute(name));
                let kept = !inner.is_empty();
                if !kept {
                    dropped.push(&ext.id);
                }
                return kept;
            }
            // Not an attribute of this type: nothing the server should return.
            schema.core_attributes().find(|d| d.name == *key).is_some_and(|def| self.keep(value, None, def))
        });
        if let (false, Some(Value::Array(ids))) = (dropped.is_empty(), resource.get_mut("schemas")) {
            ids.retain(|id| id.as_str().is_none_or(|id| !dropped.contains(&id)));
        }
    }

    /// Applies the projection to the value of one top-level core attribute, e.g. a batch of
    /// a large group's `members` written apart from the rest; false when none of it is
    /// returned.
    pub fn apply_attribute(&self, schema: &ResourceSchema<'_>, name: &str, value: &mut Value) -> bool {
        schema.core_attributes().find(|d| d.name == name).is_some_and(|def| self.keep(value, None, def))
    }

    fn apply_container<'d>(
        &self,
        obj: &mut Map<String, Value>,
        container: Option<&str>,
        lookup: impl Fn(&str) -> Option<&'d AttributeDef>,
    ) {
        obj.retain(|key, value| lookup(key).is_some_and(|def| self.keep(value, container, def)));
    }

    /// Trims the value of attribute `def` to what is to be returned; false when none of it is.
    fn keep(&self, v: &mut Value, container: Option<&str>, def: &AttributeDef) -> bool {
        match self.top_level_state(container, def) {
            Decision::Keep => {
                // Sub-attributes returned never, or only on request, stay hidden unless
                // (for the latter) named explicitly.
                for_each_element(v, |e| {
                    e.retain(|k, _| match def.sub(k).map(|s| (s, s.returned)) {
                        Some((_, Returned::Never)) => false,
                        Some((s, Returned::Request)) => self.names_sub(container, def, s),
                        _ => true,
                    })
                });
                true
            }
            Decision::Drop => false,
            Decision::Partial => {
                for_each_element(v, |e| {
                    e.retain(|k, _| def.sub(k).is_some_and(|s| self.sub_wanted(container, def, s)))
                });
                match v {
                    Value::Object(o) => !o.is_empty(),
                    Value::Array(a) => {
                        a.retain(|e| e.as_object().is_none_or(|o| !o.is_empty()));
                        !a.is_empty()
                    }
                    _ => true,
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Keep,
    Drop,
    Partial,
}

fn for_each_element(v: &mut Value, mut f: impl FnMut(&mut Map<String, Value>)) {
    match v {
        Value::Object(o) => f(o),
        Value::Array(a) => a.iter_mut().filter_map(Value::as_object_mut).for_each(f),
        _ => {}
    }
}

fn selector(path: &AttrPath, schema: &ResourceSchema<'_>) -> Option<Selector> {
    match schema.resolve(path).ok()? {
        Target::Extension(ext) => Some(Selector { container: Some(ext.id.clone()), attr: None, sub: None }),
        Target::Attribute(r) => Some(Selector {
            container: match r.container {
                Container::Core => None,
                Container::Extension(e) => Some(e.id.clone()),
            },
            attr: Some(r.attr.name.clone()),
            sub: r.sub.map(|s| s.name.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, Registry};
    use serde_json::json;

    fn project(attrs: Option<&str>, excluded: Option<&str>) -> Value {
        let reg = Registry::standard();
        let schema = reg.resource("User").unwrap();
        let mut user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1", "userName": "bjensen", "password": "never-shown",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "a@example.com", "type": "work"}, {"value": "b@example.com", "type": "home"}],
            "meta": {"resourceType": "User"},
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "7", "department": "R&D"}
        });
        let p = Projection::parse(attrs, excluded, &schema).unwrap();
        p.apply(user.as_object_mut().unwrap(), &schema);
        user
    }

    #[test]
    fn default_projection_hides_never_returned() {
        let u = project(None, None);
        assert!(u.get("password").is_none());
        assert_eq!(u["userName"], "bjensen");
        assert_eq!(u[ENTERPRISE_USER_SCHEMA]["department"], "R&D");
    }

    #[test]
    fn attributes_keep_only_requested_plus_always() {
        let u = project(Some("userName,name.givenName,emails.value"), None);
        assert_eq!(
            u,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "bjensen",
                "name": {"givenName": "Barbara"}, "emails": [{"value": "a@example.com"}, {"value": "b@example.com"}]
            })
        );
        let u = project(Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"), None);
        assert_eq!(u[ENTERPRISE_USER_SCHEMA], json!({"employeeNumber": "7"}));
        assert!(u.get("userName").is_none());
        let u = project(Some(ENTERPRISE_USER_SCHEMA), None);
        assert_eq!(u[ENTERPRISE_USER_SCHEMA], json!({"employeeNumber": "7", "department": "R&D"}));
        let u = project(Some("password,ID"), None);
        assert!(u.get("password").is_none(), "never means never");
        assert_eq!(u["id"], "1");
    }

    #[test]
    fn excluded_attributes_remove_but_not_always() {
        let u = project(
            None,
            Some("emails,name.familyName,id,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
        );
        assert!(u.get("emails").is_none());
        assert_eq!(u["name"], json!({"givenName": "Barbara"}));
        assert_eq!(u["id"], "1", "id is always returned");
        assert_eq!(u[ENTERPRISE_USER_SCHEMA], json!({"employeeNumber": "7"}));
        assert!(project(None, Some("meta")).get("meta").is_none());
    }
}
