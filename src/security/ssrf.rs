//! SSRF guards for remote sources: which URLs may be fetched (an allowlist of scheme + host
//! glob + path prefix, matched on parsed components so `https://example.com` never matches
//! `https://example.com.evil.net/`), and which resolved addresses may be connected to
//! (loopback, private, link-local, CGNAT, unique-local, multicast, reserved, documentation
//! and cloud-metadata ranges are refused, including IPv4-mapped, -compatible, NAT64 and 6to4
//! IPv6 forms of them, unless explicitly allowed).

use crate::path::Form;
use globset::{Glob, GlobMatcher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused (a metric label and part of the 403 message).
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let why = match o {
        [0, ..] => "this-network (0.0.0.0/8)",
        [127, ..] => "loopback",
        [10, ..] => "private (10/8)",
        [172, b, ..] if (16..=31).contains(&b) => "private (172.16/12)",
        [192, 168, ..] => "private (192.168/16)",
        [169, 254, 169, 254] => "cloud metadata (169.254.169.254)",
        [169, 254, ..] => "link-local",
        [100, b, ..] if (64..=127).contains(&b) => "carrier-grade NAT (100.64/10)",
        [192, 0, 0, _] => "IETF protocol assignments (192.0.0/24)",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking (198.18/15)",
        [192, 88, 99, _] => "6to4 relay anycast",
        [a, ..] if (224..=239).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved (240/4) or broadcast",
        _ => return None,
    };
    Some(why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // Forms that embed an IPv4 address: judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches a.b.c.d: judged exactly like it.
        return forbidden_v4(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated): ::a.b.c.d
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return Some(forbidden_v4(v4).unwrap_or("IPv4-compatible (deprecated)"));
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        // SIIT IPv4-translated (RFC 6145): ::ffff:0:a.b.c.d
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return Some(forbidden_v4(v4).unwrap_or("IPv4-translated (::ffff:0:0/96)"));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // Local-use NAT64 (RFC 8215, 64:ff9b:1::/48): the IPv4 address may sit at any of
        // RFC 6052's offsets and the translator is the operator's own: never public.
        return Some("local-use NAT64 (64:ff9b:1::/48)");
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 well-known prefix 64:ff9b::/96
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return forbidden_v4(v4).map(|_| "NAT64 form of a forbidden IPv4 address");
    }
    if s[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return forbidden_v4(v4).map(|_| "6to4 form of a forbidden IPv4 address");
    }
    let why = match s[0] {
        x if x & 0xfe00 == 0xfc00 => "unique-local (fc00::/7, incl. cloud metadata fd00:ec2::254)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        x if x & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x2001 if s[1] == 0 => "Teredo (2001::/32)",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        _ => return None,
    };
    Some(why)
}

/// An address range allowed despite the rules above (e.g. a private image server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.1.0.0/16`, `fd00::/8` or a bare address.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`{s}` has an invalid prefix length"))?
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A source path in its normal form (`crate::path`, [`Form::SOURCE`]).
fn normalize_source(path: &str) -> Result<String, crate::path::PathError> {
    crate::path::normalize_bytes(path.as_bytes(), Form::SOURCE)
}

/// A parsed absolute `http(s)` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase host (IPv6 without brackets).
    pub host: String,
    /// Port (default for the scheme when absent).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

impl SourceUrl {
    /// Parses an absolute URL; refuses credentials, other schemes, and missing hosts.
    pub fn parse(s: &str) -> Result<SourceUrl, String> {
        let uri: http::Uri = s.parse().map_err(|_| format!("`{s}` is not a valid URL"))?;
        let scheme = uri
            .scheme_str()
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| format!("`{s}` is not an absolute URL"))?;
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            other => {
                return Err(format!(
                    "scheme `{other}` is not allowed: http or https only"
                ))
            }
        };
        let auth = uri
            .authority()
            .ok_or_else(|| format!("`{s}` has no host"))?;
        if auth.as_str().contains('@') {
            return Err("URLs with credentials are not allowed".into());
        }
        let raw = auth.host();
        let bracketed = raw.starts_with('[') && raw.ends_with(']');
        let host = raw
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        // http::Uri accepts stray brackets inside a name and an unparsable port (found by
        // fuzzing): a host is a DNS name or a bracketed IPv6 literal, a port is a number.
        let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        let host_ok = if bracketed {
            host.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            host.chars().all(name_ok)
        };
        if host.is_empty() || !host_ok {
            return Err(format!("`{s}` has no valid host"));
        }
        let port = match auth
            .as_str()
            .rsplit_once(']')
            .map_or(auth.as_str(), |(_, p)| p)
            .rsplit_once(':')
        {
            Some((_, p)) if !p.is_empty() => p
                .parse::<u16>()
                .map_err(|_| format!("`{s}` has an invalid port"))?,
            _ => default_port,
        };
        // A URL with a query but no path (`http://h?x`) asks for `/?x`. The path is judged
        // and fetched in its normal form: `/media/../secret` is `/secret`, and encoded dot
        // segments (`%252e%252e`) are refused rather than guessed at.
        let path = match uri.path() {
            p if p.starts_with('/') => p.to_string(),
            p => format!("/{p}"),
        };
        let path = normalize_source(&path).map_err(|e| format!("`{s}`: {e}"))?;
        let path_and_query = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        Ok(SourceUrl {
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, location: &str) -> Result<SourceUrl, String> {
        if location.starts_with("//") {
            return SourceUrl::parse(&format!("{}:{location}", self.scheme));
        }
        if location.starts_with('/') {
            return SourceUrl::parse(&format!("{}{location}", self.origin()));
        }
        if location.contains("://") {
            return SourceUrl::parse(location);
        }
        let base = self
            .path_and_query
            .split('?')
            .next()
            .unwrap_or("/")
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir);
        SourceUrl::parse(&format!("{}{base}/{location}", self.origin()))
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            format!("{}://{host}", self.scheme)
        } else {
            format!("{}://{host}:{}", self.scheme, self.port)
        }
    }

    /// The whole URL.
    pub fn as_string(&self) -> String {
        format!("{}{}", self.origin(), self.path_and_query)
    }
}

/// One allowlist entry: `scheme://host-glob[:port][/path-prefix]`, e.g.
/// `https://images.example.com/`, `https://*.cdn.example.org`, `http://10.0.0.5:8080/media/`.
#[derive(Debug, Clone)]
pub struct Allowed {
    scheme: String,
    host: GlobMatcher,
    /// `None`: any port (`:*`). An entry without a port means the scheme's default port.
    port: Option<u16>,
    path_prefix: String,
}

impl Allowed {
    /// Parses an entry. No port means the scheme's default port (80 or 443), `:*` any port.
    /// The path is a prefix that must end at a `/` boundary, in normal form.
    pub fn parse(s: &str) -> Result<Allowed, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("`{s}` must start with http:// or https://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{s}`: scheme must be http or https"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, "*")) if !h.ends_with(':') => (h, None),
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse() {
                Ok(p) => (h, Some(p)),
                Err(_) => (authority, Some(default_port)),
            },
            _ => (authority, Some(default_port)),
        };
        if host.is_empty() {
            return Err(format!("`{s}` has no host"));
        }
        // An IPv6 literal is matched exactly (`[` would start a glob character class).
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => {
                let ip: std::net::Ipv6Addr = v6
                    .parse()
                    .map_err(|_| format!("`{s}`: `{host}` is not an IPv6 address"))?;
                globset::escape(&ip.to_string())
            }
            None if host.contains([':', '[', ']']) => {
                return Err(format!("`{s}`: write an IPv6 host in brackets, `[addr]`"))
            }
            None => host.to_string(),
        };
        let glob = Glob::new(&host.to_ascii_lowercase())
            .map_err(|e| format!("`{s}`: bad host glob: {e}"))?
            .compile_matcher();
        let mut path_prefix = normalize_source(path).map_err(|e| format!("`{s}`: {e}"))?;
        if !path_prefix.ends_with('/') {
            // `https://x.com/media` means the folder, not `/media-private`.
            path_prefix.push('/');
        }
        Ok(Allowed {
            scheme,
            host: glob,
            port,
            path_prefix,
        })
    }

    /// Whether `u` is allowed by this entry.
    pub fn matches(&self, u: &SourceUrl) -> bool {
        let path = u.path_and_query.split('?').next().unwrap_or("/");
        self.scheme == u.scheme
            && self.host.is_match(&u.host)
            && self.port.is_none_or(|p| p == u.port)
            && (path.starts_with(&self.path_prefix) || format!("{path}/") == self.path_prefix)
    }
}

#[cfg(test)]
mod tests;
