//! Any JSON as a PatchOp body against a realistic User and Group: a result or a 400,
//! never a panic; a successful result still satisfies the schema's required attributes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scimd_proto::filter::FilterLimits;
use scimd_proto::patch::{apply, parse_request, split_relation};
use scimd_proto::Registry;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(ops) = parse_request(&body, FilterLimits::default()) else { return };
    let registry = Registry::standard();
    let user = registry.resource("User").unwrap();
    let doc = json!({
        "userName": "bjensen", "name": {"givenName": "Barbara"}, "active": true,
        "emails": [{"value": "a@example.com", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m"}}
    });
    if let Ok(out) = apply(doc.as_object().unwrap(), &user, &ops) {
        assert!(out.get("userName").is_some());
    }
    let group = registry.resource("Group").unwrap();
    if let Ok((rest, _changes)) = split_relation(ops, &group, "members") {
        let doc = json!({"displayName": "G", "members": [{"value": "a"}]});
        if let Ok(out) = apply(doc.as_object().unwrap(), &group, &rest) {
            assert!(out.get("displayName").is_some());
        }
    }
});
