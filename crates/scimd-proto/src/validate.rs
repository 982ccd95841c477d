//! Input validation: a POST or PUT body, or a PATCH value, checked against the schema and
//! brought to canonical form. Lenient only where a real identity provider sends something
//! else than the RFC asks for, each case named where it is accepted (and in the README):
//! `"True"`/`"False"` for booleans and a single-valued complex attribute as a bare id or a
//! one-element array (Microsoft Entra ID); nulls mean unassigned (RFC 7643 §2.5). A client
//! that sends a number for a string, an array for a single value or a single value for an
//! array has a bug it should hear about: 400 `invalidValue`.

use crate::error::{Result, ScimError};
use crate::path::AttrPath;
use crate::schema::{AttrType, AttributeDef, Container, Mutability, ResourceSchema, Target};
use crate::value::parse_datetime;
use serde_json::{Map, Value};

/// Coerces a value given for attribute `def` (all its values, when multi-valued).
/// `Ok(None)` means unassigned: null, or empty after coercion. Read-only sub-attributes
/// are dropped, as RFC 7643 §2.2 says providers ignore them.
pub fn coerce(def: &AttributeDef, value: &Value, at: &str) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if def.multi_valued {
        let Value::Array(items) = value else {
            return Err(ScimError::invalid_value(format!("'{at}' is multi-valued: its value must be an array")));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_one(def, item, at)? {
                out.push(v);
            }
        }
        check_single_primary(def, &out, at)?;
        return Ok(if out.is_empty() { None } else { Some(Value::Array(out)) });
    }
    match value {
        // Microsoft Entra ID's legacy form of `manager`: a one-element array of {$ref, value}.
        Value::Array(a) if def.kind == AttrType::Complex && a.len() <= 1 => match a.first() {
            Some(only) => coerce_one(def, only, at),
            None => Ok(None),
        },
        Value::Array(_) => {
            Err(ScimError::invalid_value(format!("'{at}' is single-valued: its value cannot be an array")))
        }
        v => coerce_one(def, v, at),
    }
}

/// What a PATCH `add` or `replace` sets in a single-valued complex attribute (or in the
/// matching values of a multi-valued one): each sub-attribute given, coerced, with `null`
/// kept to mean "unassign it". Read-only sub-attributes are ignored.
pub fn coerce_changes(def: &AttributeDef, value: &Value, at: &str) -> Result<Map<String, Value>> {
    let bare;
    let obj = match value {
        Value::Object(o) => o,
        // Microsoft Entra ID's forms of `manager`: a bare id, a one-element array.
        Value::Array(a) if !def.multi_valued && a.len() == 1 => return coerce_changes(def, &a[0], at),
        Value::String(_) if !def.multi_valued && def.sub("value").is_some() => {
            bare = Map::from_iter([("value".to_string(), value.clone())]);
            &bare
        }
        _ => return Err(ScimError::invalid_value(format!("'{at}' must be an object"))),
    };
    let mut out = Map::new();
    for (key, v) in obj {
        let sub =
            def.sub(key).ok_or_else(|| ScimError::invalid_value(format!("'{at}' has no sub-attribute '{key}'")))?;
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let coerced = coerce_one(sub, v, &format!("{at}.{}", sub.name))?;
        out.insert(sub.name.clone(), coerced.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// One value of `def` (one element, for a multi-valued attribute).
pub fn coerce_one(def: &AttributeDef, value: &Value, at: &str) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if def.kind != AttrType::Complex {
        return coerce_scalar(def, value, at).map(Some);
    }
    let mut out = coerce_changes(def, value, at)?;
    out.retain(|_, v| !v.is_null());
    if out.is_empty() {
        return Ok(None);
    }
    if let Some(missing) = def.sub_attributes.iter().find(|s| s.required && !out.contains_key(&s.name)) {
        return Err(ScimError::invalid_value(format!("'{at}.{}' is required", missing.name)));
    }
    Ok(Some(Value::Object(out)))
}

fn coerce_scalar(def: &AttributeDef, value: &Value, at: &str) -> Result<Value> {
    let wrong = |what: &str| Err(ScimError::invalid_value(format!("'{at}' must be {what}")));
    if let Value::String(s) = value
        && has_nul(s)
    {
        return Err(ScimError::invalid_value(format!("'{at}' contains NUL (U+0000), which no SCIM value may hold")));
    }
    match (def.kind, value) {
        (AttrType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        // Microsoft Entra ID sends `"active": "False"` in PATCH unless a flag is set.
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        (AttrType::Boolean, _) => wrong("a boolean"),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        (AttrType::Integer, _) => wrong("an integer"),
        (AttrType::Decimal, Value::Number(_)) => Ok(value.clone()),
        (AttrType::Decimal, _) => wrong("a decimal number"),
        (AttrType::DateTime, Value::String(s)) if parse_datetime(s).is_some() => Ok(value.clone()),
        (AttrType::DateTime, _) => wrong("an RFC 3339 date-time"),
        (AttrType::Binary, Value::String(s)) if is_base64(s) => Ok(value.clone()),
        (AttrType::Binary, _) => wrong("base64-encoded binary"),
        (AttrType::String | AttrType::Reference, Value::String(_)) => Ok(value.clone()),
        (AttrType::String, _) => wrong("a string"),
        (AttrType::Reference, _) => wrong("a reference (a string)"),
        (AttrType::Complex, _) => wrong("an object"),
    }
}

/// NUL (U+0000) is refused in every string a client sends, values and filter literals
/// alike: no attribute needs it, and PostgreSQL cannot store it in text.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
}

/// RFC 7643 §2.4: the primary value `true` appears no more than once.
pub fn check_single_primary(def: &AttributeDef, values: &[Value], at: &str) -> Result<()> {
    if def.sub("primary").is_none() {
        return Ok(());
    }
    let primaries = values.iter().filter(|v| v.get("primary") == Some(&Value::Bool(true))).count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "'{at}' has {primaries} values marked primary; at most one may be"
        )));
    }
    Ok(())
}

/// Checks a POST or PUT body and returns its canonical attributes: canonical names,
/// extension attributes under their schema URN, read-only attributes (`id`, `meta`,
/// `groups`, …) dropped, `schemas` left to the server to compute.
pub fn validate_resource(input: &Value, schema: &ResourceSchema<'_>) -> Result<Map<String, Value>> {
    let obj = input.as_object().ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    check_schemas(obj.get("schemas"), schema)?;
    let mut out = Map::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = schema.extension(key) {
            if value.is_null() {
                continue;
            }
            let inner = value.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!("'{key}' must be an object of extension attributes"))
            })?;
            // Some clients repeat `schemas` inside the extension object: it carries nothing.
            for (k, v) in inner.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("schemas")) {
                let def = ext
                    .attribute(k)
                    .ok_or_else(|| ScimError::invalid_value(format!("unknown attribute '{k}' in schema {}", ext.id)))?;
                set_attribute(&mut out, Container::Extension(ext), def, v, &format!("{}:{}", ext.id, def.name))?;
            }
            continue;
        }
        let path = AttrPath::parse(key).map_err(|_| ScimError::invalid_value(format!("unknown attribute '{key}'")))?;
        let resolved = match schema.resolve(&path) {
            Ok(Target::Attribute(r)) => r,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "unknown attribute '{key}' for resource type {}",
                    schema.name()
                )));
            }
        };
        match resolved.sub {
            None => set_attribute(&mut out, resolved.container, resolved.attr, value, &resolved.canonical())?,
            Some(sub) => {
                // A dotted key such as `name.givenName` in a body: place it inside its parent.
                if resolved.attr.multi_valued
                    || sub.mutability == Mutability::ReadOnly
                    || resolved.attr.mutability == Mutability::ReadOnly
                {
                    continue;
                }
                if let Some(v) = coerce_one(sub, value, &resolved.canonical())? {
                    let parent = crate::patch::container_mut(&mut out, resolved.container, true)
                        .expect("created")
                        .entry(resolved.attr.name.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(p) = parent {
                        p.insert(sub.name.clone(), v);
                    }
                }
            }
        }
    }
    check_required(&out, schema)?;
    Ok(out)
}

fn check_schemas(schemas: Option<&Value>, schema: &ResourceSchema<'_>) -> Result<()> {
    let Some(schemas) = schemas else {
        return Ok(());
    };
    let list = schemas
        .as_array()
        .filter(|a| a.iter().all(Value::is_string))
        .ok_or_else(|| ScimError::invalid_syntax("'schemas' must be an array of schema URIs"))?;
    // Unknown extra URIs are tolerated (Entra ID adds one to Groups); the core one must be there.
    if !list.iter().filter_map(Value::as_str).any(|s| s.eq_ignore_ascii_case(&schema.core.id)) {
        return Err(ScimError::invalid_value(format!("'schemas' must include {}", schema.core.id)));
    }
    Ok(())
}

fn set_attribute(
    out: &mut Map<String, Value>,
    container: Container<'_>,
    def: &AttributeDef,
    value: &Value,
    at: &str,
) -> Result<()> {
    if def.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    if let Some(v) = coerce(def, value, at)? {
        crate::patch::container_mut(out, container, true).expect("created").insert(def.name.clone(), v);
    }
    Ok(())
}

/// Required attributes of the core schema and of any extension that is present or required.
pub fn check_required(resource: &Map<String, Value>, schema: &ResourceSchema<'_>) -> Result<()> {
    let missing = |at: &str| Err(ScimError::invalid_value(format!("'{at}' is required")));
    for def in schema.core.attributes.iter().filter(|d| d.required) {
        if !resource.get(&def.name).is_some_and(crate::value::is_present) {
            return missing(&def.name);
        }
    }
    for (ext, required) in &schema.extensions {
        let data = resource.get(&ext.id).and_then(Value::as_object);
        if data.is_none() && !required {
            continue;
        }
        for def in ext.attributes.iter().filter(|d| d.required) {
            if !data.and_then(|d| d.get(&def.name)).is_some_and(crate::value::is_present) {
                return missing(&format!("{}:{}", ext.id, def.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, Registry};
    use serde_json::json;

    fn validate_user(body: Value) -> Result<Map<String, Value>> {
        let reg = Registry::standard();
        validate_resource(&body, &reg.resource("User").unwrap())
    }

    #[test]
    fn canonicalises_names_and_drops_read_only() {
        let out = validate_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "UserName": "bjensen", "id": "client-chosen", "meta": {"created": "x"},
            "groups": [{"value": "g1"}], "NAME": {"GivenName": "Barbara"},
            "Active": "False",
        }))
        .unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"userName": "bjensen", "name": {"givenName": "Barbara"}, "active": false})
        );
    }

    #[test]
    fn identity_provider_quirks_are_accepted() {
        let out = validate_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User"],
            "userName": "a", "addresses": null, "roles": [], "active": "True",
            "emails": [{"value": "a@example.com", "type": "work", "display": null}],
            ENTERPRISE_USER_SCHEMA: {"manager": "mgr-id", "employeeNumber": "42"},
            "password": "secret",
        }))
        .unwrap();
        assert_eq!(out["active"], json!(true));
        assert!(!out.contains_key("addresses") && !out.contains_key("roles"));
        assert_eq!(out["emails"], json!([{"value": "a@example.com", "type": "work"}]));
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"manager": {"value": "mgr-id"}, "employeeNumber": "42"}));
        assert_eq!(out["password"], json!("secret"), "kept for the engine, which never stores it in clear");
        let out = validate_user(json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"manager": [{"$ref": "https://x/Users/m", "value": "m"}]}})).unwrap();
        assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"$ref": "https://x/Users/m", "value": "m"}));
    }

    #[test]
    fn rejects_bad_input_naming_the_attribute() {
        let cases = [
            (json!([1]), ScimType::InvalidSyntax, "JSON object"),
            (json!({"userName": "a", "foo": 1}), ScimType::InvalidValue, "'foo'"),
            (
                json!({"userName": 5.5, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}),
                ScimType::InvalidValue,
                "schemas",
            ),
            (json!({"displayName": "x"}), ScimType::InvalidValue, "'userName' is required"),
            (json!({"userName": "a", "active": "yes"}), ScimType::InvalidValue, "'active' must be a boolean"),
            (json!({"userName": "a", "name": {"nick": "x"}}), ScimType::InvalidValue, "'nick'"),
            (
                json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                ScimType::InvalidValue,
                "primary",
            ),
            (
                json!({"userName": "a", "x509Certificates": [{"value": "not base64!"}]}),
                ScimType::InvalidValue,
                "base64",
            ),
            (
                json!({"userName": "a", "urn:example:unknown:1.0:User": {"x": 1}}),
                ScimType::InvalidValue,
                "unknown attribute",
            ),
            (json!({"userName": ["a", "b"]}), ScimType::InvalidValue, "single-valued"),
            // Leniencies no identity provider needs are refused: a client sending these has
            // a bug it should hear about.
            (json!({"userName": 12345}), ScimType::InvalidValue, "'userName' must be a string"),
            (json!({"userName": ["a"]}), ScimType::InvalidValue, "single-valued"),
            (json!({"userName": "a", "emails": "nope"}), ScimType::InvalidValue, "'emails' is multi-valued"),
            (json!({"userName": "a", "emails": {"value": "a@x"}}), ScimType::InvalidValue, "multi-valued"),
            (json!({"userName": "a", "emails": ["a@x"]}), ScimType::InvalidValue, "'emails' must be an object"),
            (json!({"userName": "a", "title": true}), ScimType::InvalidValue, "'title' must be a string"),
            (
                json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"employeeNumber": 42}}),
                ScimType::InvalidValue,
                "employeeNumber' must be a string",
            ),
            (json!({"userName": "a", "schemas": "urn:x"}), ScimType::InvalidSyntax, "schemas"),
        ];
        for (body, kind, needle) in cases {
            let e = validate_user(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.scim_type, Some(kind), "{body}");
            assert!(e.detail.contains(needle), "{body}: {}", e.detail);
        }
    }
}
