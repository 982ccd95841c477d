//! Type-checking a filter against a resource type, and evaluating it on a JSON resource.

use super::{CompareOp, Filter, Literal};
use crate::error::{Result, ScimError};
use crate::path::AttrPath;
use crate::schema::{AttrType, AttributeDef, ResourceSchema};
use crate::value::{compare, is_present, parse_datetime};
use serde_json::{Map, Value};

/// Where a path in a filter is resolved: at the resource, or inside a value path.
#[derive(Clone, Copy)]
enum Scope<'s, 'a> {
    Resource(&'s ResourceSchema<'a>),
    Element(&'a AttributeDef),
}

/// The attribute a comparison applies to, and the values it sees.
struct Operand<'a> {
    def: &'a AttributeDef,
    /// The outer attribute, when `def` is a sub-attribute.
    parent: Option<&'a AttributeDef>,
    container_urn: Option<&'a str>,
}

fn resolve<'s, 'a>(scope: Scope<'s, 'a>, path: &AttrPath) -> Result<Operand<'a>> {
    match scope {
        Scope::Resource(schema) => {
            let r = schema.resolve_attribute(path).map_err(|e| ScimError::invalid_filter(e.detail))?;
            Ok(match r.sub {
                Some(sub) => Operand { def: sub, parent: Some(r.attr), container_urn: r.container.urn() },
                None => Operand { def: r.attr, parent: None, container_urn: r.container.urn() },
            })
        }
        Scope::Element(outer) => {
            let sub = (path.uri.is_none() && path.sub.is_none()).then(|| outer.sub(&path.name)).flatten().ok_or_else(
                || ScimError::invalid_filter(format!("'{path}' is not a sub-attribute of '{}'", outer.name)),
            )?;
            Ok(Operand { def: sub, parent: None, container_urn: None })
        }
    }
}

/// Checks that every path exists and every operator and literal suit the attribute's type
/// (RFC 7644 §3.4.2.2: ordering on boolean or binary attributes is `invalidFilter`).
pub fn check(filter: &Filter, schema: &ResourceSchema<'_>) -> Result<()> {
    check_in(filter, Scope::Resource(schema))
}

fn check_in(filter: &Filter, scope: Scope<'_, '_>) -> Result<()> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_in(a, scope)?;
            check_in(b, scope)
        }
        Filter::Not(a) => check_in(a, scope),
        Filter::Present(p) => resolve(scope, p).map(|_| ()),
        Filter::ValuePath(p, inner) => {
            let Scope::Resource(_) = scope else {
                return Err(ScimError::invalid_filter("value filters cannot be nested"));
            };
            let operand = resolve(scope, p)?;
            if operand.def.kind != AttrType::Complex || operand.parent.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "'{p}' is not a complex attribute; it cannot take a [filter]"
                )));
            }
            check_in(inner, Scope::Element(operand.def))
        }
        Filter::Compare(p, op, lit) => {
            let operand = resolve(scope, p)?;
            let def = operand
                .def
                .comparison_target()
                .ok_or_else(|| ScimError::invalid_filter(format!("'{p}' is complex and has no 'value' to compare")))?;
            check_literal(p, def, *op, lit)
        }
    }
}

fn check_literal(p: &AttrPath, def: &AttributeDef, op: CompareOp, lit: &Literal) -> Result<()> {
    let fail = |why: &str| Err(ScimError::invalid_filter(format!("'{p} {} {lit}': {why}", op.as_str())));
    if matches!(lit, Literal::Null) {
        return if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            Ok(())
        } else {
            fail("null can only be compared with eq or ne")
        };
    }
    match def.kind {
        AttrType::Boolean => match (op, lit) {
            (CompareOp::Eq | CompareOp::Ne, Literal::Bool(_)) => Ok(()),
            (CompareOp::Eq | CompareOp::Ne, _) => fail("a boolean attribute compares with true or false"),
            _ => fail("boolean attributes only support eq, ne and pr"),
        },
        AttrType::Binary if op.is_ordering() => fail("binary attributes cannot be ordered"),
        AttrType::Integer | AttrType::Decimal => match lit {
            _ if op.is_substring() => fail("co, sw and ew apply to text"),
            Literal::Number(_) => Ok(()),
            _ => fail("a numeric attribute compares with a number"),
        },
        AttrType::DateTime => match lit {
            _ if op.is_substring() => fail("co, sw and ew apply to text"),
            Literal::String(s) if parse_datetime(s).is_some() => Ok(()),
            _ => fail("a dateTime attribute compares with an RFC 3339 date-time string"),
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => match lit {
            Literal::String(_) => Ok(()),
            _ => fail("a text attribute compares with a quoted string"),
        },
        AttrType::Complex => fail("complex attributes cannot be compared"),
    }
}

/// Checks a value filter (the part inside `attr[…]`) against complex attribute `def`.
pub fn check_element(filter: &Filter, def: &AttributeDef) -> Result<()> {
    check_in(filter, Scope::Element(def))
}

/// Evaluates a checked value filter on one element of complex attribute `def`.
pub fn matches_element(filter: &Filter, def: &AttributeDef, element: &Map<String, Value>) -> bool {
    eval(filter, Scope::Element(def), element)
}

/// Evaluates a checked filter on a resource in its JSON representation (canonical
/// attribute names, extensions under their schema URN). A multi-valued attribute
/// matches when any of its values does.
pub fn matches(filter: &Filter, schema: &ResourceSchema<'_>, resource: &Map<String, Value>) -> bool {
    eval(filter, Scope::Resource(schema), resource)
}

fn eval(filter: &Filter, scope: Scope<'_, '_>, obj: &Map<String, Value>) -> bool {
    match filter {
        Filter::And(a, b) => eval(a, scope, obj) && eval(b, scope, obj),
        Filter::Or(a, b) => eval(a, scope, obj) || eval(b, scope, obj),
        Filter::Not(a) => !eval(a, scope, obj),
        Filter::Present(p) => {
            let Ok(operand) = resolve(scope, p) else {
                return false;
            };
            values(&operand, obj, false).iter().any(|v| is_present(v))
        }
        Filter::ValuePath(p, inner) => {
            let Ok(operand) = resolve(scope, p) else {
                return false;
            };
            let Some(raw) = container(&operand, obj).and_then(|c| c.get(&operand.def.name)) else {
                return false;
            };
            let elements: Vec<&Value> = match raw {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            elements.iter().filter_map(|e| e.as_object()).any(|e| eval(inner, Scope::Element(operand.def), e))
        }
        Filter::Compare(p, op, lit) => {
            let Ok(operand) = resolve(scope, p) else {
                return false;
            };
            let Some(def) = operand.def.comparison_target() else {
                return false;
            };
            let vals = values(&operand, obj, true);
            match (op, lit) {
                (CompareOp::Eq, Literal::Null) => !vals.iter().any(|v| is_present(v)),
                (CompareOp::Ne, Literal::Null) => vals.iter().any(|v| is_present(v)),
                (CompareOp::Ne, _) => !vals.iter().any(|v| compare(def, v, CompareOp::Eq, lit)),
                _ => vals.iter().any(|v| compare(def, v, *op, lit)),
            }
        }
    }
}

fn container<'v>(operand: &Operand<'_>, obj: &'v Map<String, Value>) -> Option<&'v Map<String, Value>> {
    match operand.container_urn {
        None => Some(obj),
        Some(urn) => obj.get(urn).and_then(Value::as_object),
    }
}

/// The leaf values a path designates, flattened across multi-valued attributes. With
/// `compare_target`, a complex attribute yields its `value` sub-attribute.
fn values<'v>(operand: &Operand<'_>, obj: &'v Map<String, Value>, compare_target: bool) -> Vec<&'v Value> {
    let Some(c) = container(operand, obj) else {
        return vec![];
    };
    let (top, sub) = match operand.parent {
        Some(parent) => (parent, Some(operand.def)),
        None => (operand.def, None),
    };
    let Some(raw) = c.get(&top.name) else {
        return vec![];
    };
    let elements: Vec<&Value> = match raw {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let sub_name = match sub {
        Some(s) => Some(s.name.as_str()),
        None if compare_target && top.kind == AttrType::Complex => Some("value"),
        None => None,
    };
    let mut out = Vec::new();
    for e in elements {
        match sub_name {
            Some(name) => match e.get(name) {
                Some(Value::Array(a)) => out.extend(a.iter()),
                Some(v) => out.push(v),
                None => {}
            },
            None => match e {
                Value::Array(a) => out.extend(a.iter()),
                v => out.push(v),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{FilterLimits, parse_filter};
    use crate::schema::Registry;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "BJensen",
            "name": {"familyName": "O'Malley", "givenName": "Barbara"},
            "title": "Tour Guide",
            "userType": "Employee",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff591\""},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn eval_user(text: &str) -> bool {
        let reg = Registry::standard();
        let schema = reg.resource("User").unwrap();
        let f = parse_filter(text, FilterLimits::default()).unwrap();
        check(&f, &schema).unwrap_or_else(|e| panic!("{text}: {e}"));
        matches(&f, &schema, &user())
    }

    fn check_user(text: &str) -> Result<()> {
        let reg = Registry::standard();
        let schema = reg.resource("User").unwrap();
        check(&parse_filter(text, FilterLimits::default()).unwrap(), &schema)
    }

    #[test]
    fn rfc_examples_evaluate_as_the_rfc_describes() {
        assert!(eval_user(r#"userName eq "bjensen""#), "userName is not case-exact");
        assert!(eval_user(r#"name.familyName co "O'Malley""#));
        assert!(eval_user(r#"userName sw "bj""#));
        assert!(!eval_user(r#"userName sw "J""#));
        assert!(eval_user(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "BJ""#));
        assert!(eval_user("title pr"));
        assert!(!eval_user("nickName pr"));
        assert!(eval_user(r#"meta.lastModified gt "2011-05-13T04:42:33Z""#));
        assert!(eval_user(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#));
        assert!(!eval_user(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#));
        assert!(eval_user(r#"meta.lastModified le "2011-05-13T06:42:34+02:00""#), "compares as time, not text");
        assert!(eval_user(r#"title pr and userType eq "Employee""#));
        assert!(eval_user(r#"title pr or userType eq "Intern""#));
        assert!(eval_user(r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#));
        assert!(eval_user(r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#));
        assert!(!eval_user(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
        ));
        assert!(eval_user(r#"userType eq "Employee" and (emails.type eq "work")"#));
        assert!(eval_user(r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#));
        assert!(eval_user(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
        ));
    }

    #[test]
    fn value_filters_match_within_one_element() {
        // The home address is jensen.org: a value filter must not mix elements.
        assert!(!eval_user(r#"emails[type eq "home" and value co "example.com"]"#));
        assert!(eval_user(r#"emails.type eq "home" and emails.value co "example.com""#));
        assert!(eval_user(r#"emails[type eq "work"].value eq "BJENSEN@example.com""#));
    }

    #[test]
    fn types_and_case_rules() {
        assert!(eval_user("active eq true"));
        assert!(!eval_user("active eq false"));
        assert!(eval_user(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!eval_user(r#"id eq "2819C223-7F76-453A-919D-413861904646""#), "id is case-exact");
        assert!(eval_user(r#"manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#), "manager compares its value");
        assert!(eval_user(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#));
        assert!(eval_user("nickName eq null"));
        assert!(eval_user("title ne null"));
        assert!(eval_user(r#"nickName ne "x""#), "ne matches an absent attribute");
        assert!(eval_user(r#"EMAILS.VALUE co "JENSEN.ORG""#), "attribute names are case-insensitive");
    }

    #[test]
    fn check_rejects_type_errors_and_unknown_attributes() {
        for bad in [
            "active gt true",
            r#"active eq "yes""#,
            r#"meta.created gt "yesterday""#,
            "x509Certificates.value gt \"AA\"",
            r#"unknownAttr eq "x""#,
            r#"name.nope eq "x""#,
            r#"emails[nope eq "x"]"#,
            r#"userName[value eq "x"]"#,
            "userName gt 5",
            r#"name eq "x""#,
            "userName lt null",
        ] {
            let e = check_user(bad).expect_err(bad);
            assert_eq!(e.scim_type, Some(crate::error::ScimType::InvalidFilter), "{bad}");
        }
    }
}
