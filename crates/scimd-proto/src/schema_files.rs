//! Schema files: schemas and resource types in the JSON that `/Schemas` and
//! `/ResourceTypes` publish (RFC 7643 §6, §7), added to a registry. A file holds one
//! document, an array of them, or a ListResponse of them; a document is a resource type
//! when its `schemas` name the ResourceType schema (or it has an `endpoint`), else a schema.
//! Every schema of every file is added before any resource type, so files may come in
//! any order.

use crate::schema::{DefinitionError, RESOURCE_TYPE_SCHEMA, Registry, ResourceType, Schema};
use serde_json::Value;

/// The deepest nesting a schema file may have: RFC 7643 schemas nest four levels
/// (document, attributes, subAttributes, their characteristics); this leaves room for
/// ListResponse wrappers and refuses the pathological before any recursive reading.
const MAX_DEPTH: usize = 16;

/// Why a schema file was refused: the file, the attribute (when one is at fault) and the
/// problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFileError {
    pub file: String,
    pub attribute: Option<String>,
    pub problem: String,
}

impl std::fmt::Display for SchemaFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.attribute {
            Some(a) => write!(f, "{}: attribute '{a}': {}", self.file, self.problem),
            None => write!(f, "{}: {}", self.file, self.problem),
        }
    }
}

impl std::error::Error for SchemaFileError {}

/// Adds the schemas and resource types of `files` (name, text) to `registry`.
pub fn load(registry: &mut Registry, files: &[(String, String)]) -> Result<(), SchemaFileError> {
    let mut resource_types = Vec::new();
    for (file, text) in files {
        let at =
            |e: DefinitionError| SchemaFileError { file: file.clone(), attribute: e.attribute, problem: e.problem };
        let whole = |problem: String| SchemaFileError { file: file.clone(), attribute: None, problem };
        if let Some(depth) = too_deep(text) {
            return Err(whole(format!("nested deeper than {depth} levels; a schema nests at most four")));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| whole(format!("not JSON: {e}")))?;
        let documents = match value {
            Value::Array(items) => items,
            Value::Object(mut o) if o.contains_key("Resources") => match o.remove("Resources") {
                Some(Value::Array(items)) => items,
                _ => return Err(whole("'Resources' is not an array".into())),
            },
            doc @ Value::Object(_) => vec![doc],
            _ => return Err(whole("expected a schema, a resource type, or an array of them".into())),
        };
        for doc in documents {
            if is_resource_type(&doc) {
                let rt: ResourceType = serde_json::from_value(doc)
                    .map_err(|e| whole(format!("not a resource type (RFC 7643 §6): {e}")))?;
                resource_types.push((file, rt));
            } else {
                let schema = Schema::from_value(doc).map_err(at)?;
                registry.add_schema(schema).map_err(at)?;
            }
        }
    }
    for (file, rt) in resource_types {
        registry.add_resource_type(rt).map_err(|e| SchemaFileError {
            file: file.clone(),
            attribute: e.attribute,
            problem: e.problem,
        })?;
    }
    Ok(())
}

fn is_resource_type(doc: &Value) -> bool {
    let named = doc
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(RESOURCE_TYPE_SCHEMA))));
    named || doc.get("endpoint").is_some()
}

/// The nesting limit, when `text` goes past it (counted over brackets outside strings).
fn too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(MAX_DEPTH);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = r#"{"id": "urn:example:scim:Role", "name": "Role", "attributes": [
        {"name": "displayName", "type": "string", "required": true, "uniqueness": "server"}]}"#;
    const ROLE_TYPE: &str = r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "Role", "name": "Role", "endpoint": "/Roles", "schema": "urn:example:scim:Role"}"#;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect()
    }

    fn refused(list: &[(&str, &str)]) -> SchemaFileError {
        load(&mut Registry::standard(), &files(list)).unwrap_err()
    }

    #[test]
    fn files_in_any_order_and_shape_add_types_and_extensions() {
        let mut reg = Registry::standard();
        let ext =
            r#"{"Resources": [{"id": "urn:example:ext:User", "attributes": [{"name": "badge", "type": "integer"}]}]}"#;
        let user = r#"[{"id": "User", "name": "User", "endpoint": "/Users",
            "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
            "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false},
                                 {"schema": "urn:example:ext:User", "required": false}]}]"#;
        load(
            &mut reg,
            &files(&[("types.json", ROLE_TYPE), ("user.json", user), ("role.json", ROLE), ("ext.json", ext)]),
        )
        .unwrap();
        assert_eq!(reg.resource_type("Role").unwrap().endpoint, "/Roles");
        let user = reg.resource("User").unwrap();
        assert_eq!(user.extensions.len(), 2, "the enterprise extension stays, the new one is added");
        assert!(user.extension("urn:example:ext:User").is_some());
    }

    #[test]
    fn refusals_name_the_file_the_attribute_and_the_problem() {
        let e = refused(&[(
            "acme.json",
            r#"{"id": "urn:x:acme", "attributes": [{"name": "desk", "type": "complex",
                "subAttributes": [{"name": "floor", "type": "integer", "canonicalValues": ["1"]}]}]}"#,
        )]);
        assert_eq!((e.file.as_str(), e.attribute.as_deref()), ("acme.json", Some("desk.floor")));
        assert!(e.problem.contains("canonicalValues"), "{e}");
        assert_eq!(e.to_string(), format!("acme.json: attribute 'desk.floor': {}", e.problem));

        let e = refused(&[(
            "a.json",
            r#"{"id": "urn:x:a", "attributes": [{"name": "c", "type": "complex", "subAttributes": [{"name": "n", "type": "text"}]}]}"#,
        )]);
        assert_eq!(e.attribute.as_deref(), Some("c.n"));
        assert!(e.problem.contains("text"), "an unknown type is named: {e}");
        let e = refused(&[(
            "a.json",
            r#"{"id": "urn:x:a", "attributes": [{"name": "n", "type": "string"}, {"name": "N", "type": "string"}]}"#,
        )]);
        assert_eq!(e.attribute.as_deref(), Some("N"));
        let e = refused(&[(
            "a.json",
            r#"{"id": "urn:x:a", "attributes": [{"name": "tags", "type": "string", "multiValued": true, "uniqueness": "server"}]}"#,
        )]);
        assert!(e.problem.contains("uniqueness"), "{e}");
        let e = refused(&[("q.json", r#"{"id": "urn:x:a\"b", "attributes": []}"#)]);
        assert!(e.problem.contains("must be a URN"), "a quote cannot be part of a URN: {e}");
        let e = refused(&[("a.json", "{\"id\": \"urn:x:a\", \"attributes\": [")]);
        assert!(e.problem.starts_with("not JSON"), "{e}");
        // A core schema may not redefine the common attributes.
        let e = refused(&[
            ("r.json", r#"{"id": "urn:x:r", "attributes": [{"name": "ID", "type": "string"}]}"#),
            ("t.json", r#"{"id": "R", "name": "R", "endpoint": "/Rs", "schema": "urn:x:r"}"#),
        ]);
        assert_eq!((e.file.as_str(), e.attribute.as_deref()), ("t.json", Some("ID")));
    }

    #[test]
    fn resource_types_that_collide_or_refer_in_circles_are_refused() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("t.json", ROLE_TYPE)], "not defined"),
            (&[("r.json", ROLE), ("t.json", &ROLE_TYPE.replace("/Roles", "/Users"))], "already resource type 'User'"),
            (&[("r.json", ROLE), ("t.json", &ROLE_TYPE.replace("/Roles", "/Bulk"))], "served by the protocol"),
            (&[("r.json", ROLE), ("t.json", &ROLE_TYPE.replace("/Roles", "Roles"))], "endpoint"),
            (
                &[("r.json", ROLE), ("t.json", r#"{"id": "User", "name": "User", "endpoint": "/People", "schema": "urn:example:scim:Role"}"#)],
                "only add schemaExtensions",
            ),
            // A type that extends itself with its own core schema.
            (
                &[("r.json", ROLE), ("t.json", &ROLE_TYPE.replace("\"schema\":", "\"schemaExtensions\": [{\"schema\": \"urn:example:scim:Role\", \"required\": false}], \"schema\":"))],
                "core schema and cannot also extend it",
            ),
            // A type defined again, now extending itself with its own core schema.
            (
                &[
                    ("r.json", ROLE),
                    ("t.json", r#"[{"id": "A", "name": "A", "endpoint": "/As", "schema": "urn:example:scim:Role"},
                                  {"id": "A", "name": "A", "endpoint": "/As", "schema": "urn:example:scim:Role", "schemaExtensions": [{"schema": "urn:example:scim:Role", "required": false}]}]"#),
                ],
                "core schema and cannot also extend it",
            ),
            (&[("r.json", ROLE), ("r2.json", ROLE)], "already defined"),
        ];
        for (list, expected) in cases {
            let e = refused(list);
            assert!(e.problem.contains(expected), "{list:?}: {e}");
            assert_eq!(e.file, list.last().unwrap().0, "{e}");
        }
    }

    #[test]
    fn several_types_may_share_a_core_schema() {
        // Okta Identity Governance's entitlement types (`/Licenses`, `/Profiles`) all have
        // the Entitlement schema.
        let mut reg = Registry::standard();
        let types = r#"[{"id": "License", "name": "License", "endpoint": "/Licenses", "schema": "urn:example:scim:Role"},
                        {"id": "Profile", "name": "Profile", "endpoint": "/Profiles", "schema": "urn:example:scim:Role"}]"#;
        load(&mut reg, &files(&[("r.json", ROLE), ("t.json", types)])).unwrap();
        assert_eq!(reg.resource("Profile").unwrap().core.id, "urn:example:scim:Role");
    }

    #[test]
    fn deeply_nested_files_are_refused_without_recursing_into_them() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = refused(&[("deep.json", &deep)]);
        assert!(e.problem.contains("nested deeper"), "{e}");
        // Brackets inside strings do not count.
        let text = format!(r#"{{"id": "urn:x:a", "description": "{}", "attributes": []}}"#, "[".repeat(100));
        load(&mut Registry::standard(), &files(&[("a.json", &text)])).unwrap();
    }
}
