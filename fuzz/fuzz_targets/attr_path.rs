//! Any text as an attribute path or list, where clients send them (`attributes`,
//! `excludedAttributes`, `sortBy`, PATCH paths): a path or a 400, never a panic; a path
//! that parses prints back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scimd_proto::filter::{FilterLimits, parse_patch_path};
use scimd_proto::{AttrPath, Projection, Registry};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let registry = Registry::standard();
    if let Ok(path) = AttrPath::parse(text) {
        assert_eq!(AttrPath::parse(&path.to_string()).as_ref(), Ok(&path));
        for kind in ["User", "Group"] {
            let _ = registry.resource(kind).unwrap().resolve(&path);
        }
    }
    let _ = AttrPath::parse_list(text);
    for kind in ["User", "Group"] {
        let schema = registry.resource(kind).unwrap();
        if let Err(e) = Projection::parse(Some(text), Some(text), &schema) {
            assert_eq!(e.status, 400);
        }
    }
    if let Err(e) = parse_patch_path(text, FilterLimits::default()) {
        assert_eq!(e.status, 400);
    }
});
