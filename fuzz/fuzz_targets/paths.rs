//! Paths: what the upstream receives must normalise to what the rules checked, and no input
//! may panic the normaliser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::net::path::{forward_path, is_ambiguous, rule_path, split_query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (raw, _query) = split_query(text);
    let raw = format!("/{raw}");
    if is_ambiguous(&raw) {
        return;
    }
    let checked = rule_path(&raw);
    let forwarded = forward_path(&raw);
    assert!(forwarded.starts_with('/'));
    assert_eq!(rule_path(&forwarded), checked, "raw {raw:?}");
    assert!(!checked.split('/').any(|s| s == "." || s == ".."));
});
