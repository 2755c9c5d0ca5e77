//! Original URIs at the external fronts (nginx `X-Original-URI`, Traefik `X-Forwarded-Uri`,
//! Envoy's check path): a URI is refused, or every front proxy model forwards exactly the path
//! the rules judged, and a normalising upstream reads it the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::net::front_models;
use portcullis::net::path::{Forwarding, judge, split_query};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let mut headers = http::HeaderMap::new();
    headers.insert("x-original-uri", value);
    let Some(uri) = portcullis::fronts::original_header(
        &headers,
        http::HeaderName::from_static("x-original-uri"),
    ) else {
        return;
    };
    let (raw, _query) = split_query(uri);
    let Ok(checked) = judge(raw, Forwarding::AsIs) else {
        return;
    };
    for forwards in [
        front_models::nginx,
        front_models::envoy_normalising,
        front_models::verbatim,
    ] {
        if let Some(forwarded) = forwards(raw) {
            assert_eq!(front_models::as_rules_see(&forwarded), checked.as_bytes(), "{uri:?}");
            assert_eq!(
                front_models::normalising_upstream(&forwarded).map(|p| front_models::as_rules_see(&p)),
                Some(checked.as_bytes().to_vec()),
                "{uri:?}"
            );
        }
    }
});
