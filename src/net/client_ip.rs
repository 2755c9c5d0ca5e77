//! The client's IP address: the peer, unless the peer is a trusted proxy, in which case
//! X-Forwarded-For is walked from the right and the first untrusted address wins (Rails'
//! `remote_ip`, which Barong relies on). With the Akamai gateway, `True-Client-IP` from a
//! trusted peer wins.

use std::net::IpAddr;

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

#[derive(Debug, Clone)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    true_client_ip: bool,
}

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
        }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        if self.true_client_ip
            && let Some(ip) = headers
                .get(crate::net::headers::TRUE_CLIENT_IP)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return ip.to_canonical();
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all(crate::net::headers::X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| parse_forwarded_ip(s.trim()))
            .collect();
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.is_trusted(**ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// Accepts `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` and `[2001:db8::1]:443`.
fn parse_forwarded_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = text.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    None
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

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let r = resolver(Gateway::None);
        let ip = r.resolve("8.8.8.8".parse().unwrap(), &xff("1.1.1.1"));
        assert_eq!(ip.to_string(), "8.8.8.8");
    }

    #[test]
    fn walks_forwarded_for_from_the_right() {
        let r = resolver(Gateway::None);
        let peer = "127.0.0.1".parse().unwrap();
        assert_eq!(
            r.resolve(peer, &xff("6.6.6.6, 1.2.3.4, 10.0.0.2"))
                .to_string(),
            "1.2.3.4"
        );
        assert_eq!(
            r.resolve(peer, &xff("10.0.0.3, 10.0.0.2")).to_string(),
            "10.0.0.3"
        );
        assert_eq!(
            r.resolve(peer, &xff("garbage, 1.2.3.4:555")).to_string(),
            "1.2.3.4"
        );
        assert_eq!(r.resolve(peer, &HeaderMap::new()).to_string(), "127.0.0.1");
    }

    #[test]
    fn mapped_ipv6_peers_are_ipv4() {
        let r = resolver(Gateway::None);
        let ip = r.resolve("::ffff:8.8.4.4".parse().unwrap(), &HeaderMap::new());
        assert_eq!(ip.to_string(), "8.8.4.4");
    }

    #[test]
    fn akamai_true_client_ip_from_trusted_peer() {
        let r = resolver(Gateway::Akamai);
        let mut h = xff("1.2.3.4");
        h.insert("true-client-ip", HeaderValue::from_static("5.6.7.8"));
        assert_eq!(
            r.resolve("10.1.1.1".parse().unwrap(), &h).to_string(),
            "5.6.7.8"
        );
        assert_eq!(
            r.resolve("9.9.9.9".parse().unwrap(), &h).to_string(),
            "9.9.9.9"
        );
    }

    #[test]
    fn cloudflare_edges_are_trusted_with_that_gateway() {
        let r = resolver(Gateway::Cloudflare);
        let ip = r.resolve("162.158.1.1".parse().unwrap(), &xff("7.7.7.7"));
        assert_eq!(ip.to_string(), "7.7.7.7");
    }
}
