//! X-Forwarded-For as raw header bytes from a trusted proxy: never a panic; the address the
//! proxy appended is found whatever the client wrote before it; the junk alone never makes the
//! proxy its own client.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let resolver = portcullis::net::client_ip::ClientIpResolver::new(&portcullis::config::Network {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        gateway: portcullis::config::Gateway::None,
    });
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut line = data.to_vec();
    line.extend_from_slice(b", 81.2.69.160");
    if let Ok(value) = http::HeaderValue::from_bytes(&line) {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", value);
        assert_eq!(
            resolver.resolve(peer, &headers).map(|ip| ip.to_string()),
            Ok("81.2.69.160".to_string())
        );
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", value.clone());
        headers.insert("true-client-ip", value);
        let _ = resolver.resolve(peer, &headers);
        let outsider: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(resolver.resolve(outsider, &headers), Ok(outsider));
    }
});
