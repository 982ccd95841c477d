//! Any bytes as a request body (a User or Group to create or replace, a SearchRequest, a
//! PatchOp, a BulkRequest): a result or a 400 (413 for too many bulk operations), never a
//! panic. A body that validates is in canonical form: validating it again gives it back
//! unchanged. A bulk request's plan runs every operation exactly once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scimd_proto::bulk::{self, Step};
use scimd_proto::filter::FilterLimits;
use scimd_proto::messages::SearchRequest;
use scimd_proto::patch::parse_request;
use scimd_proto::validate::validate_resource;
use scimd_proto::Registry;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let registry = Registry::standard();
    for kind in ["User", "Group"] {
        let schema = registry.resource(kind).unwrap();
        match validate_resource(&body, &schema) {
            Ok(out) => {
                let again = validate_resource(&Value::Object(out.clone()), &schema).expect("canonical form validates");
                assert_eq!(again, out, "validation is idempotent");
            }
            Err(e) => assert_eq!(e.status, 400),
        }
    }
    if let Err(e) = SearchRequest::from_json(&body) {
        assert_eq!(e.status, 400);
    }
    if let Err(e) = parse_request(&body, FilterLimits::default()) {
        assert_eq!(e.status, 400);
    }
    match bulk::parse(&body, 64) {
        Ok(request) => {
            let plan = bulk::plan(&request.operations);
            let mut runs = vec![0u32; request.operations.len()];
            for step in &plan.steps {
                if let Step::Run(i) = step {
                    runs[*i] += 1;
                }
            }
            assert!(runs.iter().all(|n| *n == 1), "every operation runs once: {runs:?}");
        }
        Err(e) => assert!(e.status == 400 || e.status == 413, "{e}"),
    }
});
