//! The origin: where it is, how pingora connects to it, and the image path's own fetch
//! (pingora's `Connector`, so connections are pooled with the same settings as the proxy path).

use crate::units::Dur;
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::client::HttpSession;
use pingora::upstreams::peer::HttpPeer;
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

/// The upstream website.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// `http://host:port` of the origin, or `builtin:demo` for the embedded demo origin.
    /// Default `builtin:demo`.
    pub url: String,
    /// Host header sent to the origin. Default: keep the client's Host header.
    pub host: Option<String>,
    /// TCP connect timeout. Default `5s`.
    pub connect_timeout: Dur,
    /// Timeout for each read from the origin (header or body chunk). Default `30s`.
    pub read_timeout: Dur,
    /// How long an idle pooled origin connection is kept. Default `60s`.
    pub idle_timeout: Dur,
    /// For an `https://` origin: PEM file of the CA certificates its certificate is verified
    /// against (instead of the system roots). Default `null`: the system roots.
    pub ca_file: Option<PathBuf>,
    /// For an `https://` origin: a client certificate chain (PEM) to present, with
    /// `client_key`. Default `null`.
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of `client_cert`. Default `null`.
    pub client_key: Option<PathBuf>,
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            url: "builtin:demo".into(),
            host: None,
            connect_timeout: Dur::secs(5),
            read_timeout: Dur::secs(30),
            idle_timeout: Dur::secs(60),
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// What `origin.url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginTarget {
    /// The embedded demo origin.
    Demo,
    /// An HTTP or HTTPS origin at `host:port`.
    Http {
        /// Host name or address.
        host: String,
        /// Port (80, or 443 for https, when absent).
        port: u16,
        /// `https://`: TLS, the certificate verified for `host` (SNI).
        tls: bool,
    },
}

impl OriginTarget {
    /// Parses `builtin:demo` or `http[s]://host[:port][/]`.
    pub(crate) fn parse(url: &str) -> Result<OriginTarget, String> {
        if url == "builtin:demo" {
            return Ok(OriginTarget::Demo);
        }
        let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(r), _) => (r, false),
            (_, Some(r)) => (r, true),
            _ => {
                return Err(format!(
                    "`{url}` is not supported: use http://host[:port], https://host[:port] or builtin:demo"
                ))
            }
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err(format!(
                "`{url}` must be scheme://host[:port] with no path or credentials"
            ));
        }
        let uri: http::uri::Authority = authority
            .parse()
            .map_err(|e| format!("`{url}` has an invalid host: {e}"))?;
        Ok(OriginTarget::Http {
            host: uri.host().to_string(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            tls,
        })
    }
}

/// A resolved origin.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The address connected to.
    pub addr: SocketAddr,
    /// `host[:port]` as written in the URL, used for Host when the client sent none.
    pub authority: String,
    /// Host header override from config.
    pub host_override: Option<String>,
    cfg: OriginConfig,
    /// For an https origin: the name its certificate must carry, and the trust settings.
    tls: Option<Arc<OriginTls>>,
}

/// How pixgate connects to an https origin.
struct OriginTls {
    /// SNI and the name verified in the certificate.
    sni: String,
    /// CAs to verify against (`origin.ca_file`); `None`: the system roots.
    ca: Option<Arc<[pingora::utils::tls::WrappedX509]>>,
    /// A client certificate to present.
    client: Option<Arc<pingora::utils::tls::CertKey>>,
}

impl std::fmt::Debug for OriginTls {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("OriginTls")
            .field("sni", &self.sni)
            .field("ca", &self.ca.as_ref().map(|c| c.len()))
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl OriginConfig {
    /// The TLS settings of an https origin named `host`, with its files loaded and checked.
    /// Errors are `(key, problem)`.
    fn tls_for(&self, host: &str) -> Result<OriginTls, (String, String)> {
        let at = |key: &str| {
            let key = key.to_string();
            move |e: String| (key, e)
        };
        let ca = match &self.ca_file {
            Some(f) => Some(crate::tls::ca_list(f).map_err(at("origin.ca_file"))?),
            None => None,
        };
        let client = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => Some(Arc::new(
                crate::tls::client_cert(c, k).map_err(at("origin.client_cert"))?,
            )),
            (None, None) => None,
            _ => {
                return Err(at("origin.client_cert")(
                    "client_cert and client_key go together".into(),
                ))
            }
        };
        Ok(OriginTls {
            sni: host.to_string(),
            ca,
            client,
        })
    }

    /// `(key, problem)` for the TLS files of an https origin.
    pub(crate) fn validate(&self) -> Vec<(String, String)> {
        match OriginTarget::parse(&self.url) {
            Ok(OriginTarget::Http {
                host, tls: true, ..
            }) => match self.tls_for(&host) {
                Ok(_) => Vec::new(),
                Err(e) => vec![e],
            },
            Ok(_) if self.ca_file.is_some() || self.client_cert.is_some() => vec![(
                "origin.ca_file".into(),
                "ca_file and client_cert apply to https:// origins only".into(),
            )],
            _ => Vec::new(),
        }
    }
}

impl Origin {
    /// Resolves `host:port` once, at start-up (`tls`: an https origin).
    pub(crate) fn resolve(
        host: &str,
        port: u16,
        tls: bool,
        cfg: &OriginConfig,
    ) -> Result<Origin, String> {
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve origin {host}:{port}: {e}"))?
            .next()
            .ok_or_else(|| format!("origin {host}:{port} resolves to no address"))?;
        let default_port = if tls { 443 } else { 80 };
        let authority = if port == default_port {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let tls = match tls {
            true => Some(Arc::new(
                cfg.tls_for(host).map_err(|(k, e)| format!("{k}: {e}"))?,
            )),
            false => None,
        };
        Ok(Origin {
            addr,
            authority,
            host_override: cfg.host.clone(),
            cfg: cfg.clone(),
            tls,
        })
    }

    /// The pingora peer for this origin, with the configured timeouts.
    pub(crate) fn peer(&self) -> HttpPeer {
        let mut p = match &self.tls {
            // The SNI is never empty: pingora skips verification altogether for an empty one.
            Some(t) => {
                let mut p = HttpPeer::new(self.addr, true, t.sni.clone());
                p.options.ca = t.ca.clone();
                p.client_cert_key = t.client.clone();
                p
            }
            None => HttpPeer::new(self.addr, false, String::new()),
        };
        p.options.connection_timeout = Some(self.cfg.connect_timeout.get());
        p.options.read_timeout = Some(self.cfg.read_timeout.get());
        p.options.idle_timeout = Some(self.cfg.idle_timeout.get());
        p
    }

    /// The Host the origin sees for `req`: `origin.host`, else the client's, else the
    /// origin's authority.
    pub(crate) fn host_for<'a>(&'a self, req: &'a RequestHeader) -> &'a str {
        match &self.host_override {
            Some(h) => h,
            None => req
                .headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(&self.authority),
        }
    }

    /// Sets the Host header the origin should see ([`Origin::host_for`]).
    pub(crate) fn set_host(&self, req: &mut RequestHeader) -> pingora::Result<()> {
        if self.host_override.is_some() || !req.headers.contains_key(http::header::HOST) {
            let h = self.host_for(req).to_string();
            req.insert_header(http::header::HOST, h)?;
        }
        Ok(())
    }

    /// How long idle pooled connections are kept.
    pub(crate) fn idle_timeout(&self) -> std::time::Duration {
        self.cfg.idle_timeout.get()
    }
}

/// An origin response whose header has been read and whose body is still to come.
pub struct Upstream {
    /// The connection (HTTP/1.1).
    pub session: HttpSession,
    /// The final (non-1xx) response header.
    pub header: ResponseHeader,
}

/// Where a fetch failed, as a metric label and an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// TCP connect failed (refused, unreachable).
    Connect,
    /// TCP connect did not finish within `origin.connect_timeout`.
    ConnectTimeout,
    /// The origin did not answer (or send more body) within `origin.read_timeout`.
    Timeout,
    /// The connection broke: reset, closed early, a body shorter than announced, bad HTTP.
    Io,
}

impl FetchError {
    /// Metric label (the same kinds as the proxy route's origin errors).
    pub(crate) fn label(self) -> &'static str {
        match self {
            FetchError::Connect => "connect",
            FetchError::ConnectTimeout => "connect_timeout",
            FetchError::Timeout => "timeout",
            FetchError::Io => "io",
        }
    }

    /// The status the client gets: 504 for timeouts, 502 otherwise.
    pub(crate) fn status(self) -> u16 {
        match self {
            FetchError::ConnectTimeout | FetchError::Timeout => 504,
            FetchError::Connect | FetchError::Io => 502,
        }
    }

    /// Classifies a pingora error (`connecting`: it came from establishing the connection).
    pub(crate) fn of(e: &pingora::Error, connecting: bool) -> FetchError {
        use pingora::ErrorType as T;
        match e.etype() {
            T::ConnectTimedout => FetchError::ConnectTimeout,
            T::ReadTimedout | T::WriteTimedout => FetchError::Timeout,
            _ if connecting => FetchError::Connect,
            _ => FetchError::Io,
        }
    }
}

/// Sends `req` and reads the response header.
pub(crate) async fn send(
    connector: &Connector,
    peer: &HttpPeer,
    req: RequestHeader,
) -> Result<Upstream, FetchError> {
    // A pooled connection that the origin closed while it sat idle breaks at once, before any
    // byte of an answer: the request never got to the origin, so it goes again on another
    // connection (as pingora's own proxy path does for reused connections). Fresh connections
    // and timeouts are not retried.
    for _ in 0..MAX_STALE_RETRIES {
        match attempt(connector, peer, req.clone()).await {
            Err((FetchError::Io, true)) => {
                crate::telemetry::metrics::ORIGIN_RETRIES.inc();
                continue;
            }
            other => return other.map_err(|(e, _)| e),
        }
    }
    attempt(connector, peer, req).await.map_err(|(e, _)| e)
}

/// Stale pooled connections tried again before the last attempt.
const MAX_STALE_RETRIES: usize = 2;

/// One exchange up to the response header; on failure, whether the connection was reused.
async fn attempt(
    connector: &Connector,
    peer: &HttpPeer,
    req: RequestHeader,
) -> Result<Upstream, (FetchError, bool)> {
    let (mut session, reused) = connector
        .get_http_session(peer)
        .await
        .map_err(|e| (FetchError::of(&e, true), false))?;
    let fail = |e: Box<pingora::Error>| (FetchError::of(&e, false), reused);
    session.set_read_timeout(peer.options.read_timeout);
    session
        .write_request_header(Box::new(req))
        .await
        .map_err(fail)?;
    session.finish_request_body().await.map_err(fail)?;
    loop {
        session.read_response_header().await.map_err(fail)?;
        let Some(h) = session.response_header() else {
            return Err((FetchError::Io, reused));
        };
        if !h.status.is_informational() {
            let header = h.clone();
            return Ok(Upstream { session, header });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(OriginTarget::parse("builtin:demo"), Ok(OriginTarget::Demo));
        assert_eq!(
            OriginTarget::parse("http://example.com"),
            Ok(OriginTarget::Http {
                host: "example.com".into(),
                port: 80,
                tls: false
            })
        );
        assert_eq!(
            OriginTarget::parse("http://127.0.0.1:9000/"),
            Ok(OriginTarget::Http {
                host: "127.0.0.1".into(),
                port: 9000,
                tls: false
            })
        );
        assert_eq!(
            OriginTarget::parse("https://example.com/"),
            Ok(OriginTarget::Http {
                host: "example.com".into(),
                port: 443,
                tls: true
            })
        );
        assert!(OriginTarget::parse("ftp://x").is_err());
        assert!(OriginTarget::parse("http://x/path").is_err());
        assert!(OriginTarget::parse("http://").is_err());
    }
}
