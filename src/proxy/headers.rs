//! Header rules shared by both paths: hop-by-hop removal, `Via` / `X-Forwarded-For`, `Vary`
//! merging, variant ETags and `If-None-Match` evaluation.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// What pixgate writes in `Via` (RFC 9110 §7.6.3: protocol version and a pseudonym).
pub const VIA: &str = "1.1 pixgate";

/// Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy must not forward.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// The host a request names: its `Host` header, else the authority of an absolute-form
/// target, else empty.
pub fn host_of(req: &RequestHeader) -> &str {
    req.headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.host())
        .unwrap_or("")
}

/// The address of the connection's peer (not the forwarded client: see
/// `request::client::client_ip`).
pub fn peer_ip(session: &pingora::proxy::Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// Removes hop-by-hop headers, including those named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    for n in hop_by_hop_names(h) {
        h.remove(n);
    }
}

/// [`strip_hop_by_hop`] for a pingora request header.
pub fn strip_request(req: &mut RequestHeader) {
    for n in hop_by_hop_names(&req.headers) {
        req.remove_header(&n);
    }
}

/// The policy an SVG, and every answer pixgate writes itself, is sent with: scripts, plugins,
/// forms, frames and external fetches are off (`sandbox` also gives it an opaque origin),
/// inline styles and `data:` images stay, so a drawing renders and nothing in it runs when it
/// is opened as a document (a polyglot file, an error page, a remote source's bytes).
pub const SANDBOX_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

/// Whether a response is an SVG document (by its Content-Type).
pub fn is_svg(resp: &ResponseHeader) -> bool {
    resp.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("image/svg+xml")
        })
}

/// SVG is a document format that can carry scripts: pixgate never renders it, and sends it
/// with [`SANDBOX_CSP`] and `X-Content-Type-Options: nosniff`. Returns whether `resp` was an SVG.
pub fn contain_svg(resp: &mut ResponseHeader) -> pingora::Result<bool> {
    let svg = is_svg(resp);
    if svg {
        resp.insert_header(header::CONTENT_SECURITY_POLICY, SANDBOX_CSP)?;
        resp.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
    }
    Ok(svg)
}

/// Marks an answer pixgate writes itself as inert: `nosniff` and [`SANDBOX_CSP`].
pub fn inert(resp: &mut ResponseHeader) -> pingora::Result<()> {
    resp.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
    resp.insert_header(header::CONTENT_SECURITY_POLICY, SANDBOX_CSP)?;
    Ok(())
}

/// [`strip_hop_by_hop`] for a pingora response header.
pub fn strip_response(resp: &mut ResponseHeader) {
    for n in hop_by_hop_names(&resp.headers) {
        resp.remove_header(&n);
    }
}

fn hop_by_hop_names(h: &HeaderMap) -> Vec<HeaderName> {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    let mut all: Vec<HeaderName> = HOP_BY_HOP.iter().chain(named.iter()).cloned().collect();
    all.push(HeaderName::from_static("keep-alive"));
    all.push(HeaderName::from_static("proxy-connection"));
    all.retain(|n| h.contains_key(n));
    all
}

/// Readies a copy of a client's request for pixgate's own origin exchange (the image path,
/// shield revalidation): hop-by-hop headers dropped, HTTP/1.1, the origin's Host, and the
/// forwarding headers of [`forward_request`].
pub fn to_origin(
    req: &mut RequestHeader,
    origin: &crate::fetch::origin::Origin,
    client: Option<IpAddr>,
) -> pingora::Result<()> {
    strip_request(req);
    req.set_version(http::Version::HTTP_11);
    origin.set_host(req)?;
    forward_request(req, client)
}

/// Adds the client to `X-Forwarded-For` (appending to a chain) and pixgate to `Via`.
pub fn forward_request(req: &mut RequestHeader, client: Option<IpAddr>) -> pingora::Result<()> {
    if let Some(ip) = client {
        let chain = match req
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
            _ => ip.to_string(),
        };
        req.insert_header("x-forwarded-for", chain)?;
    }
    let via = append_via(&req.headers);
    req.insert_header(header::VIA, via)?;
    Ok(())
}

/// Adds pixgate to a response's `Via`.
pub fn forward_response(resp: &mut ResponseHeader) -> pingora::Result<()> {
    let via = append_via(&resp.headers);
    resp.insert_header(header::VIA, via)?;
    Ok(())
}

/// Removes the origin's surrogate-key headers (`Surrogate-Key`, `Cache-Tag`: what a purge by
/// tag selects on) from a client's response unless `cache.expose_tags` says to send them.
pub fn hide_tags(resp: &mut ResponseHeader, expose: bool) {
    if !expose {
        for n in crate::cache::key::TAG_HEADERS {
            resp.remove_header(n);
        }
    }
}

fn append_via(h: &HeaderMap) -> String {
    let prev: Vec<&str> = h
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if prev.is_empty() {
        VIA.to_string()
    } else {
        format!("{}, {VIA}", prev.join(", "))
    }
}

/// `Vary` with `field` added once (`*` stays `*`).
pub fn vary_with(h: &HeaderMap, field: &str) -> String {
    let existing: Vec<String> = h
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if existing.iter().any(|s| s == "*") {
        return "*".into();
    }
    if existing.iter().any(|s| s.eq_ignore_ascii_case(field)) {
        return existing.join(", ");
    }
    let mut all = existing;
    all.push(field.to_string());
    all.join(", ")
}

/// A strong ETag for a variant's bytes: the first 128 bits of their SHA-256.
pub fn variant_etag(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"pg-{hex}\"")
}

/// RFC 9110 §13.1.2: `If-None-Match` uses weak comparison; `*` matches any current entity.
pub fn if_none_match(inm: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(v) = inm.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let strip = |s: &str| s.trim().trim_start_matches("W/").to_string();
    let target = strip(etag);
    v.split(',').any(|t| t.trim() == "*" || strip(t) == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("cache-control", HeaderValue::from_static("max-age=60"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("cache-control"));
    }

    #[test]
    fn vary_merges() {
        let mut h = HeaderMap::new();
        assert_eq!(vary_with(&h, "Accept"), "Accept");
        h.append("vary", HeaderValue::from_static("Origin"));
        h.append("vary", HeaderValue::from_static("accept, Cookie"));
        assert_eq!(vary_with(&h, "Accept"), "Origin, accept, Cookie");
        h.insert("vary", HeaderValue::from_static("*"));
        assert_eq!(vary_with(&h, "Accept"), "*");
    }

    #[test]
    fn etags_compare_weakly() {
        let e = variant_etag(b"abc");
        assert!(e.starts_with("\"pg-") && e.len() == 37);
        assert!(if_none_match(
            Some(&HeaderValue::from_str(&format!("W/{e}")).unwrap()),
            &e
        ));
        assert!(if_none_match(
            Some(&HeaderValue::from_static("\"x\", *")),
            &e
        ));
        assert!(!if_none_match(Some(&HeaderValue::from_static("\"x\"")), &e));
        assert!(!if_none_match(None, &e));
    }

    #[test]
    fn xff_appends() {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.insert_header("x-forwarded-for", "1.2.3.4").unwrap();
        forward_request(&mut r, Some("10.0.0.9".parse().unwrap())).unwrap();
        assert_eq!(r.headers["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        assert_eq!(r.headers["via"], VIA);
    }
}
