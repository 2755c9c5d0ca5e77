//! Paths at the built-in proxy: what the upstream receives must decode to what the rules
//! judged, and no input may panic the judge or the normaliser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::net::front_models;
use portcullis::net::path::{Forwarding, forward_path, judge, rule_path, split_query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (raw, _query) = split_query(text);
    let raw = format!("/{raw}");
    let Ok(checked) = judge(&raw, Forwarding::Normalised) else {
        return;
    };
    let forwarded = forward_path(&raw);
    assert!(forwarded.starts_with('/'));
    assert_eq!(rule_path(&forwarded), checked, "raw {raw:?}");
    let decoded: Vec<u8> = percent_encoding::percent_decode(forwarded.as_bytes()).collect();
    assert_eq!(front_models::as_rules_see(&decoded), checked.as_bytes());
    assert!(!checked.split('/').any(|s| s == "." || s == ".."));
});
