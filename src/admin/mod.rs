//! The admin listener, separate from the proxy: `/metrics` (Prometheus text), `/healthz`
//! (alive; `/health` is the same), `/readyz` (config loaded, cache usable, origin reachable
//! recently), `/cache/stats` (JSON usage) and `/cache/purge` (erasure: one source URL with
//! all its variants, a path prefix, or everything; bearer token required).
//!
//! Purge: `POST /cache/purge?url=<path or http://host/path>`, `?prefix=<path or URL>` or
//! `?all=true`, with `Authorization: Bearer <admin.token>`. Answers `{"purged": N}`.
//!
//! The connection loop is pixgate's own ([`crate::listener`]), not pingora's `ServeHttp` glue, which
//! logs an unreadable request at ERROR with its raw bytes: the bearer token and purge paths.

use crate::cache::{Cache, Selector};
use crate::telemetry::health::{OriginState, RECENT};
use crate::telemetry::{metrics, Telemetry};
use http::{Response, StatusCode};
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, TextEncoder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub mod config;

/// The admin application.
pub struct Admin {
    cache: Arc<Cache>,
    token: Option<String>,
    ready: Readiness,
    /// Seconds a kept-alive connection waits for its next request (`limits.keepalive_timeout`).
    keepalive: u64,
    /// How request paths are normalised (a purge names paths in the same form).
    paths: crate::path::Form,
    /// The upload service's store, when it runs: purges erase there too (an upload's source
    /// is `http://upload/<id>`).
    uploads: Option<Arc<Cache>>,
}

/// What `/readyz` checks.
pub struct Readiness {
    /// Origin health, shared with the proxy.
    pub telemetry: Arc<Telemetry>,
    /// The origin's address, probed when it has not answered recently.
    pub origin: SocketAddr,
    /// The live rules, if any (their last reload is reported).
    pub rules: Option<Arc<crate::rules::Rules>>,
}

impl Admin {
    /// An admin app over `cache`; `token` guards purging; an idle kept-alive connection is
    /// closed after `keepalive` seconds.
    pub fn new(
        cache: Arc<Cache>,
        token: Option<String>,
        ready: Readiness,
        keepalive: u64,
        paths: crate::path::Form,
    ) -> Admin {
        Admin {
            cache,
            token,
            ready,
            keepalive,
            paths,
            uploads: None,
        }
    }

    /// The same app, purging the upload store as well.
    #[must_use]
    pub fn with_uploads(mut self, uploads: Option<Arc<Cache>>) -> Admin {
        self.uploads = uploads;
        self
    }

    /// `/readyz`: 200 when every check passes, else 503; a JSON object names each check.
    async fn readyz(&self) -> Response<Vec<u8>> {
        let cache = self.cache.clone();
        let cache = tokio::task::spawn_blocking(move || cache.check())
            .await
            .unwrap_or_else(|_| Err("check failed".into()));
        let health = &self.ready.telemetry.origin;
        let origin = match health.state(RECENT) {
            OriginState::Answered(ago) => Ok(format!("answered {}ms ago", ago.as_millis())),
            OriginState::Failing => Err("the latest origin exchange failed".to_string()),
            OriginState::Unknown => {
                if health.probe(self.ready.origin, PROBE_TIMEOUT).await {
                    Ok("probe connected".to_string())
                } else {
                    Err(format!("cannot connect to {}", self.ready.origin))
                }
            }
        };
        let rules = self.ready.rules.as_ref().map_or(0, |r| r.current().len());
        let ok = cache.is_ok() && origin.is_ok();
        let show = |r: &Result<String, String>| match r {
            Ok(m) => format!("{{\"ok\":true,\"detail\":\"{}\"}}", escape(m)),
            Err(m) => format!("{{\"ok\":false,\"detail\":\"{}\"}}", escape(m)),
        };
        let body = format!(
            "{{\"ready\":{ok},\"config\":{{\"ok\":true,\"rules\":{rules}}},\"cache\":{},\"origin\":{}}}",
            show(&cache.map(|()| "usable".to_string())),
            show(&origin)
        );
        let code = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(code, body)
    }
}

/// How long `/readyz` waits for a probe connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn reply(code: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    let body = body.into();
    let mut r = Response::new(body);
    *r.status_mut() = code;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = r.body().len();
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    r
}

fn json(code: StatusCode, body: String) -> Response<Vec<u8>> {
    reply(code, "application/json", body)
}

fn error(code: StatusCode, msg: &str) -> Response<Vec<u8>> {
    json(code, format!("{{\"error\":\"{}\"}}", escape(msg)))
}

/// Parses the purge query into a selector; paths are put in the normal form `paths` gives
/// request paths. A value is percent-decoded once (it is a URL inside a query), but `+` stays
/// a `+` (it is one in a path).
pub fn selector(query: &str, paths: crate::path::Form) -> Result<Selector, String> {
    let mut sel = None;
    let query = query.replace('+', "%2B");
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let next = match k.as_ref() {
            "url" => {
                let (host, path) = split_url(&v, paths)?;
                Selector::Url { host, path }
            }
            "prefix" => {
                let (host, prefix) = split_url(&v, paths)?;
                Selector::Prefix { host, prefix }
            }
            "tag" => Selector::Tag(tag(&v)?),
            "all" if v == "true" || v == "1" => Selector::All,
            "all" => return Err("`all` must be `true`".into()),
            other => {
                return Err(format!(
                    "unknown parameter `{other}`: use url, prefix, tag or all"
                ))
            }
        };
        if sel.replace(next).is_some() {
            return Err("give exactly one of url, prefix, tag, all".into());
        }
    }
    sel.ok_or_else(|| "give one of url=, prefix=, tag= or all=true".into())
}

/// A tag to purge: one surrogate key as the origin sent it (no spaces or commas, which
/// separate keys in `Surrogate-Key` / `Cache-Tag`).
fn tag(v: &str) -> Result<String, String> {
    let t = v.trim();
    if t.is_empty() || t.len() > 1024 || t.contains([' ', ',']) || t.chars().any(char::is_control) {
        return Err(
            "`tag` must be one surrogate key (no spaces, commas or control characters)".into(),
        );
    }
    Ok(t.to_string())
}

/// `/path` → (any host, path); `http://host/path` → (host, path). The query is dropped: a
/// purge removes every query variant of a path.
fn split_url(v: &str, paths: crate::path::Form) -> Result<(Option<String>, String), String> {
    let v = v.trim();
    // The same normal form the proxy gives request paths, so a purge names what was stored.
    let normal = |p: &str| {
        crate::path::normalize_bytes(p.as_bytes(), paths).map_err(|e| format!("`{v}`: {e}"))
    };
    if v.starts_with('/') {
        let path = v.split(['?', '#']).next().unwrap_or(v);
        return Ok((None, normal(path)?));
    }
    let uri: http::Uri = v
        .parse()
        .ok()
        .filter(|u: &http::Uri| u.scheme().is_some())
        .ok_or_else(|| format!("`{v}` is neither a path nor an absolute URL"))?;
    let host = uri
        .authority()
        .ok_or_else(|| format!("`{v}` has no host"))?
        .as_str();
    let path = match uri.path() {
        "" => "/",
        p => p,
    };
    Ok((Some(crate::cache::key::normalize_host(host)), normal(path)?))
}

#[async_trait::async_trait]
impl crate::listener::Respond for Admin {
    const NAME: &'static str = "admin";

    /// The answer to one request, counted in `pixgate_requests_total{route="admin"}`.
    async fn response(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        let r = self.route(s).await;
        if self.ready.telemetry.per_request {
            metrics::REQUESTS
                .with_label_values(&["admin", metrics::status_class(r.status().as_u16()), "none"])
                .inc();
        }
        r
    }

    fn keepalive(&self) -> u64 {
        self.keepalive
    }
}

impl Admin {
    async fn route(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        let req = s.req_header();
        let path = req.uri.path().to_string();
        let query = req.uri.query().unwrap_or("").to_string();
        let method = req.method.clone();
        let auth = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => {
                let enc = TextEncoder::new();
                let mut buf = Vec::new();
                match enc.encode(&prometheus::gather(), &mut buf) {
                    Ok(()) => reply(StatusCode::OK, enc.format_type(), buf),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
                }
            }
            ("GET", "/health" | "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
            ("GET", "/readyz") => self.readyz().await,
            ("GET", "/cache/stats") => {
                let cache = self.cache.clone();
                // No sweep here: the figures show what the background sweeper left.
                let stats = tokio::task::spawn_blocking(move || cache.stats()).await;
                match stats {
                    Ok(st) => json(StatusCode::OK, st.to_json()),
                    Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "stats failed"),
                }
            }
            ("POST" | "DELETE", "/cache/purge") => {
                let Some(want) = &self.token else {
                    return error(
                        StatusCode::FORBIDDEN,
                        "purge is disabled: set admin.token in the configuration",
                    );
                };
                let given = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
                if !given.is_some_and(|g| crate::security::same_secret(g.trim(), want)) {
                    return error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
                }
                let sel = match selector(&query, self.paths) {
                    Ok(s) => s,
                    Err(e) => return error(StatusCode::BAD_REQUEST, &e),
                };
                let caches: Vec<_> = std::iter::once(self.cache.clone())
                    .chain(self.uploads.clone())
                    .collect();
                let local = sel.clone();
                let purge = move || caches.iter().map(|c| c.purge(&local)).sum::<u64>();
                let n = match tokio::task::spawn_blocking(purge).await {
                    Ok(n) => n,
                    Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "purge failed"),
                };
                // With a shared tier: Redis and, through the purge bus, every other node.
                let Some(shared) = self.cache.shared() else {
                    return json(StatusCode::OK, format!("{{\"purged\":{n}}}"));
                };
                match shared.purge(&sel).await {
                    Ok(r) => json(
                        StatusCode::OK,
                        format!("{{\"purged\":{n},\"shared_purged\":{r},\"cluster\":true}}"),
                    ),
                    // Erasure must reach every node: say it did not, so it is retried.
                    Err(e) => json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "{{\"purged\":{n},\"cluster\":false,\"error\":{}}}",
                            serde_json::Value::String(format!(
                                "purged on this node only; the shared tier failed ({e}): retry"
                            ))
                        ),
                    ),
                }
            }
            (
                _,
                "/metrics" | "/health" | "/healthz" | "/readyz" | "/cache/stats" | "/cache/purge",
            ) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            _ => error(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: crate::path::Form = crate::path::Form::request(crate::path::EncodedSlashes::Refuse);

    #[test]
    fn purge_paths_take_the_request_paths_normal_form() {
        let url = |q: &str| match selector(q, FORM) {
            Ok(Selector::Url { path, .. }) => path,
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(url("url=/x/..//%2570ub/a.jpg"), "/pub/a.jpg");
        assert_eq!(url("url=/caf%C3%A9/x.jpg"), "/caf%C3%A9/x.jpg");
        assert_eq!(url("url=/a%20b.jpg"), "/a%20b.jpg");
        assert_eq!(url("url=/a+b.jpg"), "/a+b.jpg");
        assert!(selector("url=/a%252Fb", FORM).is_err());
        let keep = crate::path::Form::request(crate::path::EncodedSlashes::Keep);
        assert!(matches!(
            selector("url=/g%252Fp", keep),
            Ok(Selector::Url { path, .. }) if path == "/g%2Fp"
        ));
    }

    #[test]
    fn purge_selectors() {
        assert_eq!(
            selector("url=%2Fa%2Fb.jpg%3Fv%3D1", FORM),
            Ok(Selector::Url {
                host: None,
                path: "/a/b.jpg".into()
            })
        );
        assert_eq!(
            selector("url=http://Example.com:80/a.jpg", FORM),
            Ok(Selector::Url {
                host: Some("example.com".into()),
                path: "/a.jpg".into()
            })
        );
        assert_eq!(
            selector("prefix=/photos/", FORM),
            Ok(Selector::Prefix {
                host: None,
                prefix: "/photos/".into()
            })
        );
        assert_eq!(selector("all=true", FORM), Ok(Selector::All));
        assert_eq!(
            selector("tag=product-1", FORM),
            Ok(Selector::Tag("product-1".into()))
        );
        assert!(selector("tag=a%20b", FORM).is_err());
        assert!(selector("tag=", FORM).is_err());
        assert!(selector("", FORM).is_err());
        assert!(selector("all=yes", FORM).is_err());
        assert!(selector("url=/a&all=true", FORM).is_err());
        assert!(selector("path=/a", FORM).is_err());
        assert!(selector("url=nohost", FORM).is_err());
    }
}
