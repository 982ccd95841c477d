//! Any text as a schema file (`schemas` in scimd.toml): added to the registry or refused
//! with a message, never a panic; what is added resolves, and validates a resource body
//! without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scimd_proto::Registry;
use scimd_proto::validate::validate_resource;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut registry = Registry::standard();
    let files = [("f.json".to_string(), text.to_string())];
    match scimd_proto::schema_files::load(&mut registry, &files) {
        Err(e) => assert!(!e.problem.is_empty() && e.file == "f.json"),
        Ok(()) => {
            for rt in registry.resource_types() {
                let schema = registry.resource(&rt.name).expect("every resource type resolves");
                if let Ok(body) = serde_json::from_str::<serde_json::Value>(text) {
                    let _ = validate_resource(&body, &schema);
                }
            }
        }
    }
});
