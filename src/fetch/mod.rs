//! Fetching remote sources for the URL API, behind SSRF guards: the URL must match the
//! allowlist; every address the host resolves to must be public (or explicitly allowed);
//! the connection goes to the address that was checked (no second DNS lookup, so no DNS
//! rebinding); each redirect is checked again; connect and total timeouts apply; reading stops
//! past `limits.max_source_bytes`; the body must be an image.

pub mod config;
pub mod origin;

use crate::image::format::{sniff, SourceFormat};
use crate::security::ssrf::{self, Allowed, Cidr, SourceUrl};
use config::UrlApiConfig;
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The checks and limits of remote fetching, built once from config.
pub struct Guard {
    /// Connections to remote sources (own pool; trusts `ca_file` or the system roots).
    connector: Connector,
    allowed: Vec<Allowed>,
    exempt: Vec<Cidr>,
    max_redirects: u32,
    connect_timeout: Duration,
    timeout: Duration,
    max_bytes: u64,
}

/// Why a remote source was not fetched: an HTTP status and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Status to answer with.
    pub status: u16,
    /// Metric label.
    pub kind: &'static str,
    /// What happened (never includes resolved addresses of refused hosts beyond the reason).
    pub message: String,
}

fn refuse(status: u16, kind: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        kind,
        message: message.into(),
    }
}

/// The remote source's headers that may reach a client: its caching metadata, nothing that
/// could act in the proxied site's origin (`Set-Cookie`, `Clear-Site-Data`, CORS,
/// `Content-Disposition`, `Content-Type`: pixgate derives the type from the bytes). `Age` is
/// kept to compute pixgate's own `Age`; it is never replayed as sent.
pub(crate) const SOURCE_HEADERS: &[http::HeaderName] = &[
    http::header::CACHE_CONTROL,
    http::header::EXPIRES,
    http::header::LAST_MODIFIED,
    http::header::ETAG,
    http::header::AGE,
];

/// The [`SOURCE_HEADERS`] of a remote source's response: what an answer built from it may
/// carry. The whole header is kept for the cache policy (`Set-Cookie`, `Vary`, `Date`).
pub(crate) fn source_headers(h: &http::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(SOURCE_HEADERS.len());
    for name in SOURCE_HEADERS {
        for v in h.get_all(name) {
            out.append(name.clone(), v.clone());
        }
    }
    out
}

/// A fetched source image.
#[derive(Debug)]
pub(crate) struct Remote {
    /// The final response header (after redirects). Only its [`source_headers`] may reach a
    /// client.
    pub header: ResponseHeader,
    /// The body.
    pub body: bytes::Bytes,
    /// Sniffed format.
    pub format: SourceFormat,
}

impl Guard {
    /// Builds the guard (the config was validated).
    pub(crate) fn new(cfg: &UrlApiConfig, max_bytes: u64) -> Guard {
        let mut opts = pingora::connectors::ConnectorOptions::new(128);
        opts.ca_file = cfg.ca_file.as_ref().map(|p| p.display().to_string());
        Guard {
            connector: Connector::new(Some(opts)),
            allowed: cfg
                .sources
                .iter()
                .filter_map(|s| Allowed::parse(s).ok())
                .collect(),
            exempt: cfg
                .allow_ip_ranges
                .iter()
                .filter_map(|s| Cidr::parse(s).ok())
                .collect(),
            max_redirects: cfg.max_redirects,
            connect_timeout: cfg.connect_timeout.get(),
            timeout: cfg.timeout.get(),
            max_bytes,
        }
    }

    /// Whether the allowlist admits `u`.
    pub(crate) fn allows(&self, u: &SourceUrl) -> bool {
        self.allowed.iter().any(|a| a.matches(u))
    }

    /// Refuses an address unless it is public or exempt.
    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match ssrf::forbidden(ip) {
            // The client learns that the address is refused, not which class it is in (that
            // would map the operator's network for it); the class goes to the debug log.
            Some(why) if !self.exempt.iter().any(|c| c.contains(ip)) => {
                tracing::debug!(class = why, "remote source address refused");
                Err(refuse(
                    403,
                    "forbidden_address",
                    "the source resolves to an address that is not allowed",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Resolves `u`'s host and checks every address; returns the one to connect to.
    async fn resolve(&self, u: &SourceUrl) -> Result<SocketAddr, Refusal> {
        let addrs: Vec<SocketAddr> = match u.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, u.port)],
            Err(_) => tokio::net::lookup_host((u.host.as_str(), u.port))
                .await
                .map_err(|_| refuse(502, "resolve", format!("cannot resolve `{}`", u.host)))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(refuse(
                502,
                "resolve",
                format!("`{}` has no address", u.host),
            ));
        }
        // Every address must pass: a name with one public and one private record is refused.
        for a in &addrs {
            self.check_ip(a.ip())?;
        }
        Ok(addrs[0])
    }

    /// Fetches `url` with all checks, within the total timeout. `reserve(n)` is asked for
    /// room to hold `n` body bytes in all before they are read: with the declared
    /// Content-Length up front, then as chunks arrive; `false` stops the fetch (503,
    /// `buffer_budget`), so a source is never read past the caller's memory budget.
    pub(crate) async fn fetch(
        &self,
        url: SourceUrl,
        reserve: &mut (dyn FnMut(u64) -> bool + Send),
    ) -> Result<Remote, Refusal> {
        let started = std::time::Instant::now();
        let f = self.fetch_inner(&self.connector, url, reserve);
        let too_long = || refuse(504, "timeout", "the source took too long");
        match tokio::time::timeout(self.timeout, f).await {
            // The per-read timeout equals the total one: a read that failed once the total
            // deadline had passed is that deadline's doing (on a busy runtime both are due in
            // the same poll, and the inner future is polled first).
            Ok(Err(_)) if started.elapsed() >= self.timeout => Err(too_long()),
            Ok(r) => r,
            Err(_) => Err(too_long()),
        }
    }

    async fn fetch_inner(
        &self,
        connector: &Connector,
        mut url: SourceUrl,
        reserve: &mut (dyn FnMut(u64) -> bool + Send),
    ) -> Result<Remote, Refusal> {
        for _ in 0..=self.max_redirects {
            if !self.allows(&url) {
                return Err(refuse(
                    403,
                    "not_allowed",
                    format!("source `{}` is not in url_api.sources", url.origin()),
                ));
            }
            let addr = self.resolve(&url).await?;
            // TLS to the checked address, with the URL's host for SNI and verification.
            let tls = url.scheme == "https";
            let sni = if tls { url.host.clone() } else { String::new() };
            let mut peer = HttpPeer::new(addr, tls, sni);
            peer.options.connection_timeout = Some(self.connect_timeout);
            peer.options.read_timeout = Some(self.timeout);
            let mut req = RequestHeader::build("GET", url.path_and_query.as_bytes(), None)
                .map_err(|_| refuse(400, "bad_url", "invalid source path"))?;
            let host = url.origin();
            let host = host.split_once("://").map_or(host.as_str(), |(_, h)| h);
            let _ = req.insert_header(http::header::HOST, host);
            let _ = req.insert_header(http::header::USER_AGENT, "pixgate");
            let _ = req.insert_header(http::header::ACCEPT, "image/*");
            let mut up = crate::fetch::origin::send(connector, &peer, req)
                .await
                .map_err(|e| {
                    refuse(
                        502,
                        "connect",
                        format!("cannot fetch the source ({})", e.label()),
                    )
                })?;
            let status = up.header.status.as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let loc = up
                    .header
                    .headers
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| refuse(502, "bad_redirect", "a redirect without Location"))?;
                url = url.join(loc).map_err(|e| refuse(502, "bad_redirect", e))?;
                continue;
            }
            if status != 200 {
                let code = if status == 404 || status == 410 {
                    404
                } else {
                    502
                };
                return Err(refuse(
                    code,
                    "status",
                    format!("the source answered {status}"),
                ));
            }
            let declared = up
                .header
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_bytes) {
                return Err(too_large(self.max_bytes));
            }
            if !reserve(declared.unwrap_or(0)) {
                return Err(no_budget());
            }
            let mut body = bytes::BytesMut::new();
            loop {
                match up.session.read_response_body().await {
                    Ok(Some(chunk)) => {
                        let total = (body.len() + chunk.len()) as u64;
                        if total > self.max_bytes {
                            return Err(too_large(self.max_bytes));
                        }
                        if !reserve(total) {
                            return Err(no_budget());
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(_) => return Err(refuse(502, "read", "the source's body was cut short")),
                }
            }
            let body = body.freeze();
            let Some(format) = sniff(&body) else {
                return Err(refuse(
                    422,
                    "not_image",
                    "the source is not an image pixgate reads",
                ));
            };
            return Ok(Remote {
                header: up.header,
                body,
                format,
            });
        }
        Err(refuse(
            502,
            "redirects",
            format!("more than {} redirects", self.max_redirects),
        ))
    }
}

/// The [`Refusal::kind`] of a fetch stopped by the caller's byte budget.
pub(crate) const NO_BUDGET: &str = "buffer_budget";

/// The caller's budget of buffered source bytes is spent (`limits.max_buffered_bytes`).
fn no_budget() -> Refusal {
    refuse(503, NO_BUDGET, "too many images in flight, try again")
}

fn too_large(max: u64) -> Refusal {
    refuse(
        422,
        "too_large",
        format!("the source is larger than {max} bytes"),
    )
}
