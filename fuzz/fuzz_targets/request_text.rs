//! Text that arrives in headers and query strings: cookies, forms, nonces, addresses, emails.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(text) {
        headers.insert(http::header::COOKIE, value.clone());
        headers.insert("x-forwarded-for", value.clone());
        headers.insert("true-client-ip", value);
    }
    let _ = portcullis::authn::sessions::cookie_value(&headers, "_barong_session");
    if let Some(kept) = portcullis::authn::sessions::strip_cookie(text, "_barong_session") {
        assert!(!kept.split(';').any(|p| p.trim().starts_with("_barong_session=")));
    }
    let resolver = portcullis::net::client_ip::ClientIpResolver::new(&portcullis::config::Network {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        gateway: portcullis::config::Gateway::Akamai,
    });
    let _ = resolver.resolve("127.0.0.1".parse().unwrap(), &headers);
    let _ = portcullis::net::method::canonical(text);
    let _ = portcullis::api::params::Params::from_query(Some(text));
    let _ = portcullis::authn::api_keys::ruby_to_i(text);
    let _ = portcullis::domain::validation::email_valid(text);
    let _ = portcullis::domain::validation::username_errors(text);
});
