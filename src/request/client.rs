//! Who the client is: the TCP peer, or, when the peer is a trusted proxy (a load balancer, a
//! CDN), the address that proxy names in `X-Forwarded-For` (else `Forwarded: for=`). The chain
//! is read from the right: the first address that is not itself a trusted proxy is the client,
//! so a client cannot choose its address by sending its own `X-Forwarded-For`.

use crate::security::ssrf::Cidr;
use http::HeaderMap;
use std::net::IpAddr;

/// The client address for `peer` given the trusted proxy ranges.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    let chain = forwarded_chain(headers);
    let mut leftmost = None;
    for ip in chain.iter().rev() {
        leftmost = Some(*ip);
        if !is_trusted(*ip, trusted) {
            return Some(*ip);
        }
    }
    // Every hop is trusted: the origin of the chain, else the peer.
    Some(leftmost.unwrap_or(peer))
}

fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// IPv4-mapped IPv6 as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses of `X-Forwarded-For` (all fields, in order), else of `Forwarded`'s `for=`.
/// Unparsable entries (`unknown`, obfuscated ids) end the chain there: nothing to their left
/// can be trusted either.
fn forwarded_chain(h: &HeaderMap) -> Vec<IpAddr> {
    let xff: Vec<&str> = h
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let items: Vec<String> = if xff.is_empty() {
        h.get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|elem| {
                elem.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| v.trim().trim_matches('"').to_string())
                })
            })
            .collect()
    } else {
        xff.into_iter().map(str::to_string).collect()
    };
    let parsed: Vec<Option<IpAddr>> = items.iter().map(|s| parse_node(s)).collect();
    // Keep only the trailing run of parsable addresses.
    let start = parsed
        .iter()
        .rposition(Option::is_none)
        .map_or(0, |i| i + 1);
    parsed[start..]
        .iter()
        .flatten()
        .copied()
        .map(canonical)
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]`, `[2001:db8::1]:443`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }
    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_says() {
        let t = [Cidr::parse("10.0.0.0/8").unwrap()];
        let hdr = h(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(client_ip(ip("203.0.113.9"), &hdr, &t), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("203.0.113.9"), &hdr, &[]), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_chain_is_read_from_the_right() {
        let t = [
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("2001:db8:ffff::/48").unwrap(),
        ];
        // A spoofed left entry does not win: the rightmost untrusted one does.
        let hdr = h(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &hdr, &t), ip("198.51.100.7"));
        // Several header fields are one list.
        let hdr = h(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "10.1.1.1"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.2"), &hdr, &t), ip("198.51.100.7"));
        // Ports and brackets.
        let hdr = h(&[("x-forwarded-for", "[2001:db8::5]:443, 198.51.100.7:1234")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &hdr, &t), ip("198.51.100.7"));
        // All trusted: the leftmost.
        let hdr = h(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &hdr, &t), ip("10.9.9.9"));
        // No header: the peer.
        assert_eq!(client_ip(ip("10.0.0.2"), &h(&[]), &t), ip("10.0.0.2"));
        // Garbage stops the chain.
        let hdr = h(&[("x-forwarded-for", "198.51.100.7, unknown, 10.1.1.1")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &hdr, &t), ip("10.1.1.1"));
        // Mapped IPv4 peers match IPv4 ranges.
        let hdr = h(&[("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(client_ip(ip("::ffff:10.0.0.2"), &hdr, &t), ip("192.0.2.1"));
    }

    #[test]
    fn forwarded_header_when_no_xff() {
        let t = [Cidr::parse("10.0.0.0/8").unwrap()];
        let hdr = h(&[(
            "forwarded",
            "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(client_ip(ip("10.0.0.2"), &hdr, &t), ip("2001:db8:cafe::17"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(xff in ".{0,80}", fwd in ".{0,80}") {
            let mut m = HeaderMap::new();
            if let Ok(v) = xff.parse() { m.insert("x-forwarded-for", v); }
            if let Ok(v) = fwd.parse() { m.insert("forwarded", v); }
            let t = [Cidr::parse("0.0.0.0/0").unwrap()];
            let _ = client_ip(ip("10.0.0.1"), &m, &t);
        }
    }
}
