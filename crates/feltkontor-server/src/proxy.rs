//! Which address a request comes from. The service limits the unauthenticated endpoints per
//! client address (and logs it); behind a load balancer every connection comes from the
//! balancer. Only a peer inside a configured trusted range (`--trusted-proxy`) may say whose
//! request it forwards, in `X-Forwarded-For`; from anyone else the header is ignored, so a
//! client cannot choose the address it is limited by.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(ranges)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not itself a trusted proxy (read from the right:
    /// each proxy appends the address it received from, so only the entries the trusted
    /// proxies added can be believed). A malformed entry ends the walk at the last believed
    /// hop.
    pub fn client(&self, peer: SocketAddr, headers: &axum::http::HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let mut client = peer.ip();
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        SocketAddr::new(canonical(client), peer.port())
    }
}

/// An address as proxies write it: `203.0.113.5`, `2001:db8::1`, `[2001:db8::1]:443`,
/// `203.0.113.5:51000`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// What a client's limits are counted by: an IPv4 address, or an IPv6 address's /64 (one host
/// or network commonly holds a whole /64 and can pick any address in it).
pub fn address_group(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[test]
    fn only_a_trusted_peer_names_the_client() {
        let peer: SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let spoof = headers(&["198.51.100.7"]);
        // No trusted proxy configured: the header is ignored.
        assert_eq!(TrustedProxies::default().client(peer, &spoof), peer);
        // A peer outside the trusted range: ignored too.
        assert_eq!(proxies(&["10.9.0.0/16"]).client(peer, &spoof), peer);
        // The balancer's range: the client it names.
        assert_eq!(
            proxies(&["10.1.0.0/16"]).client(peer, &spoof).ip(),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_client_cannot_prepend_an_address_of_its_choice() {
        let peer: SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let trusted = proxies(&["10.1.0.0/16"]);
        // The client sent "1.2.3.4" itself; the balancer appended the address it saw.
        let h = headers(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(trusted.client(peer, &h).ip().to_string(), "203.0.113.9");
        // Two trusted hops: the first untrusted one from the right.
        let h = headers(&["1.2.3.4", "203.0.113.9, 10.1.7.7"]);
        assert_eq!(trusted.client(peer, &h).ip().to_string(), "203.0.113.9");
        // Garbage at the right end: the balancer itself is the client.
        let h = headers(&["203.0.113.9, not-an-address"]);
        assert_eq!(trusted.client(peer, &h), peer);
        // Ports and brackets as some proxies write them; IPv4-mapped peers.
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(trusted.client(peer, &h).ip().to_string(), "2001:db8::1");
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:40000".parse().unwrap();
        let h = headers(&["203.0.113.5:51000"]);
        assert_eq!(trusted.client(mapped, &h).ip().to_string(), "203.0.113.5");
        // No header from a trusted peer: the peer.
        assert_eq!(trusted.client(peer, &HeaderMap::new()), peer);
    }
}
