//! The client's IP address: the peer, unless the peer is a trusted proxy, in which case
//! X-Forwarded-For is walked from the right and the first untrusted address wins (Rails'
//! `remote_ip`, which Barong relies on). With the Akamai gateway, `True-Client-IP` from a
//! trusted peer wins.
//!
//! The address decides restrictions, rate limits and session binding, so it is never the
//! client's choice (decisions.md #28):
//! - only the peers listed in `network.trusted_proxies` (loopback by default) and, when asked
//!   for, a CDN's published ranges are believed;
//! - each X-Forwarded-For entry is read on its own, from the raw bytes: one unreadable entry
//!   (a non-ASCII byte, `unknown`) cannot make the whole header vanish, which would turn the
//!   client into the proxy itself. An unreadable entry in a position that would have to be
//!   believed makes the request unreadable (400), never the proxy's own address.

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use ipnet::IpNet;

use crate::config::{Gateway, Network};

/// Cloudflare's published edge ranges, trusted when `network.gateway = "cloudflare"`.
const CLOUDFLARE: &[&str] = &[
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
];

/// The forwarding headers of a trusted proxy cannot be read where they must be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadableForwardedFor;

impl std::fmt::Display for UnreadableForwardedFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("X-Forwarded-For (or True-Client-IP) from a trusted proxy is unreadable")
    }
}

impl std::error::Error for UnreadableForwardedFor {}

#[derive(Debug, Clone)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    true_client_ip: bool,
    /// When the last "a proxy we do not trust" warning was logged (seconds since the epoch).
    warned_at: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// At most one warning about an untrusted proxy this often.
const WARN_EVERY_SECONDS: u64 = 300;

impl ClientIpResolver {
    pub fn new(network: &Network) -> ClientIpResolver {
        let mut trusted = network.trusted_proxies.clone();
        if network.gateway == Gateway::Cloudflare {
            trusted.extend(
                CLOUDFLARE
                    .iter()
                    .map(|n| n.parse::<IpNet>().expect("valid CIDR")),
            );
        }
        ClientIpResolver {
            trusted,
            true_client_ip: network.gateway == Gateway::Akamai,
            warned_at: Default::default(),
        }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn resolve(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<IpAddr, UnreadableForwardedFor> {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            self.warn_if_an_untrusted_proxy(peer, headers);
            return Ok(peer);
        }
        if self.true_client_ip
            && let Some(value) = headers.get(crate::net::headers::TRUE_CLIENT_IP)
        {
            return parse_entry(trim(value.as_bytes())).ok_or(UnreadableForwardedFor);
        }
        // Several header lines are one list, in order (RFC 9110 §5.3): walk them all from the
        // right, entry by entry.
        let mut leftmost_trusted = None;
        for value in headers
            .get_all(crate::net::headers::X_FORWARDED_FOR)
            .iter()
            .rev()
        {
            for entry in value.as_bytes().rsplit(|b| *b == b',') {
                let entry = trim(entry);
                if entry.is_empty() {
                    continue;
                }
                // Everything to the right was written by proxies we trust; an entry they
                // wrote that we cannot read leaves the client unknown.
                let ip = parse_entry(entry).ok_or(UnreadableForwardedFor)?;
                if !self.is_trusted(ip) {
                    return Ok(ip);
                }
                leftmost_trusted = Some(ip);
            }
        }
        // Every hop is one of ours (or there is no header: the proxy itself is calling).
        Ok(leftmost_trusted.unwrap_or(peer))
    }
}

impl ClientIpResolver {
    /// A private peer that sends X-Forwarded-For is most likely a proxy someone forgot to list:
    /// every client behind it then shares its address (one rate-limit budget for everyone, one
    /// restriction verdict). Said now and then, never per request.
    fn warn_if_an_untrusted_proxy(&self, peer: IpAddr, headers: &HeaderMap) {
        let private = match peer {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
            IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        };
        if !private || !headers.contains_key(crate::net::headers::X_FORWARDED_FOR) {
            return;
        }
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.warned_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_SECONDS
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %peer,
                "a request from a private address carries X-Forwarded-For, but that address is not in network.trusted_proxies: if it is your proxy, list it, or every client behind it shares its address"
            );
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Accepts `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` and `[2001:db8::1]:443`;
/// anything else (non-ASCII, `unknown`, obfuscated identifiers) is unreadable.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = text.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<Ipv6Addr>().ok())
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The part of an address that identifies one client for limits: the whole IPv4 address, or
/// the /64 of an IPv6 address (one subscriber's prefix; rotating within it gains nothing).
pub fn network_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// Why the trust settings let some clients choose their own address, for the warning `serve`
/// prints at start. Empty when only loopback and narrow, explicit networks are trusted.
pub fn trust_warnings(network: &Network) -> Vec<String> {
    let mut warnings = Vec::new();
    for net in &network.trusted_proxies {
        let wide = match net {
            IpNet::V4(v4) => v4.prefix_len() < 24 && !v4.addr().is_loopback(),
            IpNet::V6(v6) => v6.prefix_len() < 112 && !v6.addr().is_loopback(),
        };
        if wide {
            warnings.push(format!(
                "network.trusted_proxies includes {net}: any host in it (a NAT gateway, a load balancer that forwards raw TCP, another tenant) can choose the client address that restrictions and rate limits see; list the exact addresses of your proxies"
            ));
        }
    }
    match network.gateway {
        Gateway::Cloudflare => warnings.push(
            "network.gateway = \"cloudflare\": X-Forwarded-For from Cloudflare's ranges is believed; make sure the origin accepts connections from Cloudflare only (authenticated origin pulls or a firewall)".into(),
        ),
        Gateway::Akamai => warnings.push(
            "network.gateway = \"akamai\": True-Client-IP from trusted proxies is believed; make sure only Akamai can reach them".into(),
        ),
        Gateway::None => {}
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn resolver(gateway: Gateway) -> ClientIpResolver {
        ClientIpResolver::new(&Network {
            trusted_proxies: vec![
                "127.0.0.0/8".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ],
            gateway,
        })
    }

    fn xff(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_bytes(value).unwrap());
        h
    }

    fn resolve(r: &ClientIpResolver, peer: &str, headers: &HeaderMap) -> String {
        r.resolve(peer.parse().unwrap(), headers)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|_| "unreadable".into())
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let r = resolver(Gateway::None);
        assert_eq!(resolve(&r, "8.8.8.8", &xff(b"1.1.1.1")), "8.8.8.8");
        assert_eq!(resolve(&r, "8.8.8.8", &xff(b"\x80")), "8.8.8.8");
    }

    #[test]
    fn walks_forwarded_for_from_the_right() {
        let r = resolver(Gateway::None);
        let h = xff(b"6.6.6.6, 1.2.3.4, 10.0.0.2");
        assert_eq!(resolve(&r, "127.0.0.1", &h), "1.2.3.4");
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"10.0.0.3, 10.0.0.2")),
            "10.0.0.3"
        );
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"garbage, 1.2.3.4:555")),
            "1.2.3.4"
        );
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"[2001:db8::7]:80")),
            "2001:db8::7"
        );
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"[2001:db8::7]")),
            "2001:db8::7"
        );
        assert_eq!(resolve(&r, "127.0.0.1", &HeaderMap::new()), "127.0.0.1");
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let r = resolver(Gateway::None);
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("9.9.9.9"));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("5.5.5.5, 10.0.0.1"),
        );
        assert_eq!(resolve(&r, "127.0.0.1", &h), "5.5.5.5");
    }

    #[test]
    fn an_unreadable_entry_never_makes_the_proxy_the_client() {
        let r = resolver(Gateway::None);
        // What nginx sends when the client wrote `X-Forwarded-For: \x80`: the real address
        // appended to the client's line. The real address is read; the junk never matters.
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"\x80, 81.2.69.160")),
            "81.2.69.160"
        );
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"unknown, 81.2.69.160")),
            "81.2.69.160"
        );
        // A proxy we trust wrote something we cannot read: the client is unknown, not us.
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"81.2.69.160, \x80")),
            "unreadable"
        );
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b"1.2.3.4, 10.0.0.1, nope")),
            "unreadable"
        );
        // Blank entries are not entries.
        assert_eq!(
            resolve(&r, "127.0.0.1", &xff(b" , 81.2.69.160 ,")),
            "81.2.69.160"
        );
    }

    #[test]
    fn mapped_ipv6_peers_are_ipv4() {
        let r = resolver(Gateway::None);
        assert_eq!(resolve(&r, "::ffff:8.8.4.4", &HeaderMap::new()), "8.8.4.4");
        // A mapped loopback peer is as trusted as 127.0.0.1.
        assert_eq!(resolve(&r, "::ffff:127.0.0.1", &xff(b"7.7.7.7")), "7.7.7.7");
    }

    #[test]
    fn akamai_true_client_ip_from_trusted_peer() {
        let r = resolver(Gateway::Akamai);
        let mut h = xff(b"1.2.3.4");
        h.insert("true-client-ip", HeaderValue::from_static("5.6.7.8"));
        assert_eq!(resolve(&r, "10.1.1.1", &h), "5.6.7.8");
        assert_eq!(resolve(&r, "9.9.9.9", &h), "9.9.9.9");
        h.insert("true-client-ip", HeaderValue::from_static("five"));
        assert_eq!(resolve(&r, "10.1.1.1", &h), "unreadable");
    }

    #[test]
    fn cloudflare_edges_are_trusted_only_with_that_gateway() {
        let r = resolver(Gateway::Cloudflare);
        assert_eq!(resolve(&r, "162.158.1.1", &xff(b"7.7.7.7")), "7.7.7.7");
        let r = resolver(Gateway::None);
        assert_eq!(resolve(&r, "162.158.1.1", &xff(b"7.7.7.7")), "162.158.1.1");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_key(a), network_key(b));
        assert_ne!(network_key(a), network_key(c));
        assert_eq!(network_key(a).to_string(), "2001:db8:1:2::");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(network_key(v4), v4);
    }

    #[test]
    fn the_defaults_trust_no_one_on_the_internet() {
        let settings = crate::config::Settings::from_toml("").unwrap();
        assert!(trust_warnings(&settings.network).is_empty());
        let r = ClientIpResolver::new(&settings.network);
        for peer in [
            "203.0.113.5",
            "10.1.2.3",
            "172.17.0.1",
            "192.168.1.1",
            "162.158.1.1",
        ] {
            let mut h = xff(b"81.2.69.160");
            h.insert("true-client-ip", HeaderValue::from_static("81.2.69.160"));
            h.insert("cf-connecting-ip", HeaderValue::from_static("81.2.69.160"));
            assert_eq!(resolve(&r, peer, &h), peer, "{peer} chose its address");
        }
        let wide = Network {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            gateway: Gateway::Cloudflare,
        };
        assert_eq!(trust_warnings(&wide).len(), 2);
    }
}
