//! PATCH: every example of RFC 7644 §3.5.2 and the identity-provider dialects that
//! DESIGN.md lists under "Lenient in, strict out".

use scimd_proto::patch::{OpKind, RelationChange, apply, parse_request, split_relation};
use scimd_proto::schema::ENTERPRISE_USER_SCHEMA;
use scimd_proto::{FilterLimits, Registry, ScimError, ScimType};
use serde_json::{Map, Value, json};

const BJ: &str = "2819c223-7f76-453a-919d-413861904646";
const JS: &str = "08e1d05d-121c-4561-8b96-473d93df9210";

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn patch(kind: &str, doc: Value, ops: Value) -> Result<Value, ScimError> {
    let reg = Registry::standard();
    let schema = reg.resource(kind).unwrap();
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let ops = parse_request(&body, FilterLimits::default())?;
    apply(&obj(doc), &schema, &ops).map(Value::Object)
}

fn user() -> Value {
    json!({
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "primary": true},
                      {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood"}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
        "active": true
    })
}

fn group() -> Value {
    json!({"displayName": "Tour Guides", "members": [{"value": BJ, "display": "Babs Jensen"}, {"value": "other", "display": "Other"}]})
}

#[test]
fn rfc_add_members() {
    let out = patch(
        "Group",
        group(),
        json!([{"op": "add", "path": "members", "value": [
        {"display": "James Smith", "$ref": format!("https://example.com/v2/Users/{JS}"), "value": JS}]}]),
    )
    .unwrap();
    let members = out["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(
        members[2],
        json!({"$ref": format!("https://example.com/v2/Users/{JS}"), "value": JS}),
        "display is read-only"
    );
}

#[test]
fn rfc_add_without_path() {
    let out = patch(
        "User",
        user(),
        json!([{"op": "add", "value": {
        "emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]),
    )
    .unwrap();
    assert_eq!(out["nickName"], "Babs", "attribute names are case-insensitive");
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
}

#[test]
fn rfc_remove_member_by_filter_and_all_members() {
    let out =
        patch("Group", group(), json!([{"op": "remove", "path": format!("members[value eq \"{BJ}\"]")}])).unwrap();
    assert_eq!(out["members"], json!([{"value": "other", "display": "Other"}]));
    let out = patch("Group", group(), json!([{"op": "remove", "path": "members"}])).unwrap();
    assert!(out.get("members").is_none());
}

#[test]
fn rfc_remove_then_add_in_one_request() {
    let out = patch(
        "Group",
        group(),
        json!([
            {"op": "remove", "path": format!("members[value eq \"{BJ}\"]")},
            {"op": "add", "path": "members", "value": [{"display": "James Smith", "value": JS}]}
        ]),
    )
    .unwrap();
    let values: Vec<&str> = out["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(values, vec!["other", JS]);
}

#[test]
fn rfc_remove_certificate_by_value() {
    let out = patch(
        "User",
        user(),
        json!([{"op": "remove",
        "path": "x509Certificates[value eq \"MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx\"]"}]),
    )
    .unwrap();
    assert!(out.get("x509Certificates").is_none(), "no values left: unassigned");
}

#[test]
fn rfc_replace_members() {
    let out = patch(
        "Group",
        group(),
        json!([{"op": "replace", "path": "members", "value": [
        {"display": "Babs Jensen", "value": BJ}, {"display": "James Smith", "value": JS}]}]),
    )
    .unwrap();
    assert_eq!(out["members"], json!([{"value": BJ}, {"value": JS}]));
}

#[test]
fn rfc_replace_work_address_and_its_street() {
    let out = patch("User", user(), json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
        "type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "region": "CA",
        "postalCode": "91608", "country": "US", "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US", "primary": true}}])).unwrap();
    assert_eq!(out["addresses"][0]["streetAddress"], "911 Universal City Plaza");
    assert_eq!(out["addresses"][0]["postalCode"], "91608");
    assert_eq!(out["addresses"][1]["streetAddress"], "456 Hollywood Blvd", "the home address is untouched");
    let out = patch(
        "User",
        user(),
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
    )
    .unwrap();
    assert_eq!(out["addresses"][0]["streetAddress"], "1010 Broadway Ave");
    assert_eq!(out["addresses"][0]["locality"], "Hollywood");
}

#[test]
fn rfc_replace_without_path() {
    let out = patch("User", user(), json!([{"op": "replace", "value": {
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}],
        "nickname": "Babs"}}])).unwrap();
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    assert_eq!(out["nickName"], "Babs");
}

#[test]
fn replace_complex_keeps_sub_attributes_not_given() {
    let out =
        patch("User", user(), json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}])).unwrap();
    assert_eq!(out["name"], json!({"givenName": "Babs", "familyName": "Jensen"}));
}

#[test]
fn replace_with_filter_and_no_match_is_no_target() {
    let e =
        patch("User", user(), json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "x@y.z"}]))
            .unwrap_err();
    assert_eq!((e.status, e.scim_type), (400, Some(ScimType::NoTarget)));
}

#[test]
fn add_with_filter_and_no_match_creates_the_value() {
    let out = patch(
        "User",
        user(),
        json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "babs@home.org"}]),
    )
    .unwrap();
    assert_eq!(out["emails"][1], json!({"type": "home", "value": "babs@home.org"}));
}

#[test]
fn primary_stays_unique() {
    let out = patch("User", user(), json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "home", "primary": true}]}])).unwrap();
    assert_eq!(out["emails"][0]["primary"], false);
    assert_eq!(out["emails"][1]["primary"], true);
}

#[test]
fn mutability_is_enforced() {
    for (path, value) in
        [("id", json!("x")), ("meta.created", json!("2020-01-01T00:00:00Z")), ("groups", json!([{"value": "g"}]))]
    {
        let e = patch("User", user(), json!([{"op": "replace", "path": path, "value": value}])).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::Mutability), "{path}");
    }
    let e = patch(
        "Group",
        group(),
        json!([{"op": "replace", "path": format!("members[value eq \"{BJ}\"].value"), "value": "x"}]),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    let e = patch("User", user(), json!([{"op": "remove", "path": "userName"}])).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{e}");
}

#[test]
fn all_or_nothing() {
    // The first operation is fine, the second is not: the error names the operation and
    // `apply` hands back no partly changed document.
    let e = patch(
        "User",
        user(),
        json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "nope", "value": 1}
        ]),
    )
    .unwrap_err();
    assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
}

#[test]
fn malformed_requests() {
    let reg = Registry::standard();
    let l = FilterLimits::default();
    let bad = [
        (json!({"Operations": [{"op": "move", "path": "x"}]}), ScimType::InvalidSyntax),
        (json!({"Operations": []}), ScimType::InvalidSyntax),
        (json!({"Operations": [{"op": "remove"}]}), ScimType::NoTarget),
        (json!({"Operations": [{"op": "add", "path": "title"}]}), ScimType::InvalidSyntax),
        (json!({"Operations": [{"op": "add", "value": "x"}]}), ScimType::InvalidSyntax),
        (json!({"Operations": [{"op": "add", "path": "emails[type eq", "value": "x"}]}), ScimType::InvalidPath),
        (
            json!({"schemas": ["urn:wrong"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
            ScimType::InvalidSyntax,
        ),
        (json!({"Operations": "nope"}), ScimType::InvalidSyntax),
    ];
    for (body, kind) in bad {
        assert_eq!(parse_request(&body, l).unwrap_err().scim_type, Some(kind), "{body}");
    }
    let schema = reg.resource("User").unwrap();
    let ops = parse_request(&json!({"Operations": [{"op": "add", "path": "title.sub", "value": "x"}]}), l).unwrap();
    assert_eq!(apply(&obj(user()), &schema, &ops).unwrap_err().scim_type, Some(ScimType::InvalidPath));
    let ops = parse_request(&json!({"Operations": [{"op": "add", "path": "active", "value": "maybe"}]}), l).unwrap();
    assert_eq!(apply(&obj(user()), &schema, &ops).unwrap_err().scim_type, Some(ScimType::InvalidValue));
}

// ---- identity-provider dialects ----

#[test]
fn entra_capitalised_ops_and_string_booleans() {
    let out = patch("User", user(), json!([{"op": "Replace", "path": "active", "value": "False"}])).unwrap();
    assert_eq!(out["active"], json!(false));
    let out = patch("User", out, json!([{"op": "Replace", "path": "active", "value": "True"}])).unwrap();
    assert_eq!(out["active"], json!(true));
}

#[test]
fn entra_dotted_and_urn_keys_in_pathless_values() {
    let out = patch(
        "User",
        user(),
        json!([{"op": "replace", "value": {
        "name.givenName": "Dana", "name.familyName": "Okafor", "displayName": "Dana Okafor",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "E-3003"}}]),
    )
    .unwrap();
    assert_eq!(out["name"], json!({"givenName": "Dana", "familyName": "Okafor"}));
    assert!(out.get("name.givenName").is_none());
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "E-3003");
}

#[test]
fn entra_manager_forms() {
    let path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    let out = patch("User", user(), json!([{"op": "Add", "path": path, "value": "mgr-1"}])).unwrap();
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "mgr-1"}));
    let out = patch(
        "User",
        user(),
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": "https://x/Users/m2", "value": "m2"}]}]),
    )
    .unwrap();
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"]["value"], "m2");
    let out = patch("User", out, json!([{"op": "remove", "path": path}])).unwrap();
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none(), "an emptied extension is unassigned");
}

#[test]
fn entra_remove_members_by_value_array_removes_only_those() {
    let out = patch("Group", group(), json!([{"op": "Remove", "path": "members", "value": [{"value": BJ}]}])).unwrap();
    assert_eq!(out["members"], json!([{"value": "other", "display": "Other"}]));
}

#[test]
fn adding_an_existing_member_is_a_no_op() {
    let out =
        patch("Group", group(), json!([{"op": "Add", "path": "members", "value": [{"value": BJ}, {"value": BJ}]}]))
            .unwrap();
    assert_eq!(out["members"].as_array().unwrap().len(), 2);
}

#[test]
fn okta_pathless_replace_with_read_only_id() {
    let out =
        patch("Group", group(), json!([{"op": "replace", "value": {"id": "gid", "displayName": "Renamed"}}])).unwrap();
    assert_eq!(out["displayName"], "Renamed");
    assert!(out.get("id").is_none(), "read-only attributes in a path-less value are ignored");
}

#[test]
fn members_split_out_for_set_based_storage() {
    let reg = Registry::standard();
    let schema = reg.resource("Group").unwrap();
    let body = json!({"Operations": [
        {"op": "add", "path": "members", "value": [{"value": "a", "display": "A"}]},
        {"op": "Remove", "path": "members", "value": [{"value": "b"}]},
        {"op": "remove", "path": "members[value eq \"c\" or value eq \"d\"]"},
        {"op": "replace", "value": {"id": "g", "displayName": "New", "members": [{"value": "e"}]}},
        {"op": "remove", "path": "members"}
    ]});
    let ops = parse_request(&body, FilterLimits::default()).unwrap();
    let (rest, changes) = split_relation(ops, &schema, "members").unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].kind, OpKind::Replace);
    assert_eq!(rest[0].value, Some(json!({"id": "g", "displayName": "New"})));
    assert_eq!(changes[0], RelationChange::Add(vec![json!({"value": "a"})]));
    assert_eq!(changes[1], RelationChange::Remove(vec!["b".into()]));
    let RelationChange::RemoveWhere(f) = &changes[2] else { panic!("{:?}", changes[2]) };
    assert_eq!(f.eq_strings("value"), Some(vec!["c", "d"]));
    assert_eq!(changes[3], RelationChange::Replace(vec![json!({"value": "e"})]));
    assert_eq!(changes[4], RelationChange::RemoveAll);
}

/// `null` means unassigned (RFC 7643 §2.5), in every form a PATCH can carry it; in a
/// complex value only the sub-attributes given change (RFC 7644 §3.5.2.3).
#[test]
fn null_unassigns() {
    let with_ext = || {
        let mut u = user();
        u[ENTERPRISE_USER_SCHEMA] = json!({"department": "R&D", "manager": {"value": "m1"}});
        u
    };
    let cases = [
        (
            json!([{"op": "replace", "path": "name.familyName", "value": null}]),
            "/name",
            json!({"givenName": "Barbara"}),
        ),
        (
            json!([{"op": "replace", "path": "name", "value": {"familyName": null}}]),
            "/name",
            json!({"givenName": "Barbara"}),
        ),
        (json!([{"op": "replace", "value": {"name": {"familyName": null}}}]), "/name", json!({"givenName": "Barbara"})),
        (json!([{"op": "replace", "value": {"name.familyName": null}}]), "/name", json!({"givenName": "Barbara"})),
        (json!([{"op": "replace", "path": "name", "value": null}]), "/name", Value::Null),
        (
            json!([{"op": "replace", "path": "name", "value": {"familyName": null, "givenName": null}}]),
            "/name",
            Value::Null,
        ),
        (json!([{"op": "add", "path": "name", "value": null}]), "/name/familyName", json!("Jensen")),
        (json!([{"op": "replace", "path": "active", "value": null}]), "/active", Value::Null),
        (json!([{"op": "replace", "value": {"active": null}}]), "/active", Value::Null),
        (
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"primary": null}}]),
            "/emails/0",
            json!({"value": "bjensen@example.com", "type": "work"}),
        ),
        (
            json!([{"op": "replace", "path": format!("{ENTERPRISE_USER_SCHEMA}:manager"), "value": null}]),
            &format!("/{ENTERPRISE_USER_SCHEMA}"),
            json!({"department": "R&D"}),
        ),
        (
            json!([{"op": "replace", "path": ENTERPRISE_USER_SCHEMA, "value": null}]),
            &format!("/{ENTERPRISE_USER_SCHEMA}"),
            Value::Null,
        ),
        (
            json!([{"op": "replace", "value": {ENTERPRISE_USER_SCHEMA: null}}]),
            &format!("/{ENTERPRISE_USER_SCHEMA}"),
            Value::Null,
        ),
        (
            json!([{"op": "add", "value": {ENTERPRISE_USER_SCHEMA: null}}]),
            &format!("/{ENTERPRISE_USER_SCHEMA}/department"),
            json!("R&D"),
        ),
        (
            json!([{"op": "replace", "value": {ENTERPRISE_USER_SCHEMA: {"manager": null}}}]),
            &format!("/{ENTERPRISE_USER_SCHEMA}"),
            json!({"department": "R&D"}),
        ),
    ];
    for (ops, pointer, expected) in cases {
        let out = patch("User", with_ext(), ops.clone()).unwrap_or_else(|e| panic!("{ops}: {e}"));
        assert_eq!(out.pointer(pointer).cloned().unwrap_or(Value::Null), expected, "{ops}");
        assert_eq!(out["userName"], "bjensen", "{ops}");
    }
    // `userName` is required: it cannot be unassigned.
    let e = patch("User", user(), json!([{"op": "replace", "path": "userName", "value": null}])).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    // An operation without a value is still refused.
    let e = patch("User", user(), json!([{"op": "replace", "path": "title"}])).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
}
