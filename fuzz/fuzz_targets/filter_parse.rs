//! Any text: the filter parser answers Ok or a 400 invalidFilter, and what it accepts
//! prints to text that parses back to the same tree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scimd_proto::filter::{FilterLimits, check, parse_filter, parse_patch_path};
use scimd_proto::{Registry, ScimType};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = FilterLimits::default();
    match parse_filter(text, limits) {
        Ok(f) => {
            let printed = f.to_string();
            let again = parse_filter(&printed, FilterLimits { max_len: usize::MAX, max_depth: 64 }).expect("printed filter parses");
            assert_eq!(again, f);
            let registry = Registry::standard();
            let _ = check(&f, &registry.resource("User").unwrap());
        }
        Err(e) => assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidFilter))),
    }
    if let Err(e) = parse_patch_path(text, limits) {
        assert_eq!(e.status, 400);
    }
});
