//! The compression service: a listener of its own (`upload.listen`) for people with files.
//! `POST /api/v1/images` takes one or several images (multipart or a raw body), screens them
//! ([`crate::screening`]), transforms them on the proxy's transform pool under the same
//! variant decision ([`crate::variant::decide`]), keeps each result in the upload store
//! ([`store`]: a cache whose retention is `upload.retention`) and answers with private links;
//! `GET /d/{token}` downloads one, `GET /d/{token}.zip` a batch, `DELETE` erases; `/` is the
//! web page (embedded: page.html, page.css, page.js, its icon page.svg) and `/api/v1/info` the
//! facts it shows.
//!
//! Files: `mod.rs` (the service, its routes, the access log), `post.rs` (an upload), `links.rs`
//! (the links), `form.rs`, `answer.rs`, `store.rs`, `quota.rs`, `config.rs`.
//!
//! One request, in order: per-address request limit → API key → a processing slot
//! (`upload.max_concurrent`, else 503) → `Content-Length` against `upload.max_bytes` (413
//! before reading) → the body, read under the same limit → files and options → quotas →
//! screening of every file → transform and store of every file (if one fails, the others'
//! results are erased) → JSON. docs/upload.md is the user's version.
//!
//! Privacy: the uploaded bytes live only in this request's memory; what is kept is the result,
//! in the store, under its retention. The access log gets the route (`/d/:token`), never a
//! token, a name or a path; the client address is used for the limits only.
//!
//! Imports cache, image, request, rules, screening, security, telemetry, units and variant;
//! not config or proxy (the server assembles it from [`Setup`]).

pub mod answer;
pub mod config;
pub mod form;
pub mod quota;
pub mod store;

mod links;
mod post;

pub use config::UploadConfig;

use crate::image::config::ImagesConfig;
use crate::image::format::{sniff, OutputFormat, SourceFormat};
use crate::image::pipeline::{Job, Outcome};
use crate::image::pool::Pool;
use crate::image::probe::HeaderLimits;
use crate::image::Reason;
use crate::request::accept::Accept;
use crate::request::config::TransformConfig;
use crate::rules::Applied;
use crate::screening::{Screening, Verdict};
use crate::security::ssrf::Cidr;
use crate::telemetry::metrics;
use crate::telemetry::tenant::TenantId;
use crate::telemetry::Telemetry;
use crate::variant::{self, Route, Variant};
use answer::Refusal;
use bytes::{Bytes, BytesMut};
use form::Ask;
use http::{header, Response};
use pingora::protocols::http::ServerSession;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use store::{Keep, Kind, Store};
use tokio::sync::Semaphore;

const PAGE_HTML: &str = include_str!("page.html");
const PAGE_CSS: &str = include_str!("page.css");
const PAGE_JS: &str = include_str!("page.js");
const PAGE_SVG: &str = include_str!("page.svg");

/// What the server hands the upload service (it cannot read `Config` itself: config imports
/// this module's section).
pub struct Setup {
    /// The `upload` section.
    pub cfg: UploadConfig,
    /// `images` (formats, qualities, efforts).
    pub images: ImagesConfig,
    /// `transform` (output size cap).
    pub transform: TransformConfig,
    /// Source limits (`limits.max_source_*`).
    pub limits: HeaderLimits,
    /// The proxy's transform pool: uploads share its slots.
    pub pool: Pool,
    /// Tenants and the access log.
    pub telemetry: Arc<Telemetry>,
    /// Proxies whose forwarding headers name the client.
    pub trusted: Vec<Cidr>,
    /// Seconds a kept-alive connection waits.
    pub keepalive: u64,
    /// `cache.sweep_interval` (the store's sweep, and its retention margin).
    pub sweep_interval: crate::units::Dur,
    /// The rules, for their file-level presets.
    pub rules: Option<Arc<crate::rules::Rules>>,
}

/// The upload service.
pub struct Upload {
    cfg: UploadConfig,
    store: Store,
    pool: Pool,
    images: ImagesConfig,
    transform: TransformConfig,
    limits: HeaderLimits,
    screening: Arc<Screening>,
    quotas: quota::Quotas,
    slots: Arc<Semaphore>,
    telemetry: Arc<Telemetry>,
    trusted: Vec<Cidr>,
    keepalive: u64,
    rules: Option<Arc<crate::rules::Rules>>,
    keys: Vec<(String, TenantId)>,
}

/// What the access log and the request counter learn of one exchange.
struct Seen {
    route: &'static str,
    tenant: TenantId,
    bytes_in: u64,
    transform: Option<Duration>,
}

impl Upload {
    /// Opens the store and loads the screening list (errors name the setting).
    pub fn new(s: Setup) -> Result<Upload, String> {
        let store = Store::open(&s.cfg.store(s.sweep_interval))?;
        let screening = Screening::new(&s.cfg.screening, s.limits).map_err(|e| format!("{e}"))?;
        let keys = s
            .cfg
            .api_keys
            .iter()
            .map(|k| (k.key.clone(), s.telemetry.tenants.id(Some(&k.tenant))))
            .collect();
        Ok(Upload {
            quotas: quota::Quotas::new(&s.cfg),
            slots: Arc::new(Semaphore::new(s.cfg.max_concurrent)),
            screening: Arc::new(screening),
            store,
            pool: s.pool,
            images: s.images,
            transform: s.transform,
            limits: s.limits,
            telemetry: s.telemetry,
            trusted: s.trusted,
            keepalive: s.keepalive,
            rules: s.rules,
            keys,
            cfg: s.cfg,
        })
    }

    /// The store's cache (for the sweeper, the gauges and the admin purge).
    pub fn store(&self) -> &Arc<crate::cache::Cache> {
        self.store.cache()
    }

    /// Forgets refilled limiter keys every second and reloads the screening list on change,
    /// until the process ends.
    pub async fn maintain(self: Arc<Self>) {
        let screening = self.screening.clone();
        let forget = async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let held = self.quotas.forget_idle();
                metrics::UPLOAD_LIMIT_KEYS.set(i64::try_from(held).unwrap_or(i64::MAX));
            }
        };
        tokio::join!(forget, screening.watch());
    }

    /// The facts the page shows, from the running configuration.
    fn info(&self) -> serde_json::Value {
        let global = self.rules.as_ref().map(|r| r.current());
        let mut presets: Vec<serde_json::Value> = form::SOCIAL
            .iter()
            .map(|(n, w, h)| json!({"name": n, "width": w, "height": h}))
            .collect();
        if let Some(g) = &global {
            for (name, value) in &g.presets {
                let (o, _) =
                    crate::request::options::Options::from_query(value).unwrap_or_default();
                presets.push(json!({"name": name, "width": o.width, "height": o.height}));
            }
        }
        json!({
            "retention_secs": self.cfg.retention.get().as_secs(),
            "idle_ttl_secs": self.cfg.idle_ttl.map(|d| d.get().as_secs()),
            "memory_only": self.cfg.memory_only(),
            "screening": self.screening.active(),
            "max_files": self.cfg.max_files,
            "max_bytes": self.cfg.max_bytes.get(),
            "formats": self.images.formats.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "presets": presets,
            "api_key_required": self.cfg.require_api_key,
        })
    }

    /// The tenant of the request's API key: `Ok(NONE)` without one (unless keys are required),
    /// 401 for a wrong one.
    fn tenant(&self, s: &ServerSession) -> Result<TenantId, Refusal> {
        let h = &s.req_header().headers;
        let given = h
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .or_else(|| {
                h.get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
            });
        let unauthorized = || {
            metrics::UPLOADS.with_label_values(&["unauthorized"]).inc();
            Refusal::new(401, "unauthorized", "A valid API key is required.")
        };
        match given {
            Some(g) => self
                .keys
                .iter()
                .find(|(k, _)| crate::security::same_secret(k, g))
                .map(|(_, t)| *t)
                .ok_or_else(unauthorized),
            None if self.cfg.require_api_key => Err(unauthorized()),
            None => Ok(TenantId::NONE),
        }
    }

    async fn route(
        &self,
        s: &mut ServerSession,
        ip: Option<IpAddr>,
        seen: &mut Seen,
    ) -> Response<Vec<u8>> {
        let (method, path) = {
            let r = s.req_header();
            (r.method.as_str().to_string(), r.uri.path().to_string())
        };
        if let Err((limit, wait)) = self.quotas.request(ip) {
            return Refusal::new(429, "limited", limit.message())
                .retry(wait)
                .response();
        }
        if let Some(rest) = path.strip_prefix("/d/") {
            seen.route = "/d/:token";
            return match self.link(&method, rest).await {
                Ok(r) => r,
                Err(r) => r.response(),
            };
        }
        let Some(route) = Fixed::of(&path) else {
            return Refusal::not_found().response();
        };
        seen.route = route.template();
        match (method.as_str(), route) {
            ("GET" | "HEAD", Fixed::Page) => {
                answer::page_file("text/html; charset=utf-8", PAGE_HTML)
            }
            ("GET" | "HEAD", Fixed::Css) => answer::page_file("text/css; charset=utf-8", PAGE_CSS),
            ("GET" | "HEAD", Fixed::Js) => {
                answer::page_file("text/javascript; charset=utf-8", PAGE_JS)
            }
            // The page's icon: without one, browsers ask for /favicon.ico and log its 404.
            ("GET" | "HEAD", Fixed::Icon) => answer::page_file("image/svg+xml", PAGE_SVG),
            ("GET" | "HEAD", Fixed::Info) => answer::json(200, &self.info()),
            ("POST", Fixed::Images) => match self.tenant(s) {
                Ok(t) => {
                    seen.tenant = t;
                    match self.post(s, ip, seen).await {
                        Ok(r) => r,
                        Err(r) => r.response(),
                    }
                }
                Err(r) => r.response(),
            },
            _ => Refusal::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed here."),
            )
            .response(),
        }
    }
}

/// The listener's fixed routes (links, `/d/...`, are matched before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixed {
    Page,
    Css,
    Js,
    Icon,
    Info,
    Images,
}

impl Fixed {
    fn of(path: &str) -> Option<Fixed> {
        Some(match path {
            "/" | "/index.html" => Fixed::Page,
            "/page.css" => Fixed::Css,
            "/page.js" => Fixed::Js,
            "/page.svg" => Fixed::Icon,
            "/api/v1/info" => Fixed::Info,
            "/api/v1/images" => Fixed::Images,
            _ => return None,
        })
    }

    /// What the access log may name (a closed set).
    fn template(self) -> &'static str {
        match self {
            Fixed::Page => "/",
            Fixed::Css => "/page.css",
            Fixed::Js => "/page.js",
            Fixed::Icon => "/page.svg",
            Fixed::Info => "/api/v1/info",
            Fixed::Images => "/api/v1/images",
        }
    }
}

#[async_trait::async_trait]
impl crate::listener::Respond for Upload {
    const NAME: &'static str = "upload";

    async fn response(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        let t0 = Instant::now();
        let peer = s.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let ip = crate::request::client::client_ip(peer, &s.req_header().headers, &self.trusted);
        let method = s.req_header().method.as_str().to_string();
        let mut seen = Seen {
            route: "other",
            tenant: TenantId::NONE,
            bytes_in: 0,
            transform: None,
        };
        let r = self.route(s, ip, &mut seen).await;
        let status = r.status().as_u16();
        let tenant = self.telemetry.tenants.name(seen.tenant);
        if self.telemetry.per_request {
            metrics::REQUESTS
                .with_label_values(&["upload", metrics::status_class(status), tenant])
                .inc();
        }
        let line = crate::telemetry::access::Line {
            method: &method,
            route: "upload",
            status,
            bytes_out: r.body().len() as u64,
            bytes_in: seen.bytes_in,
            duration_ms: crate::telemetry::access::millis(t0.elapsed()),
            transform_ms: seen.transform.map(crate::telemetry::access::millis),
            cache: "none",
            tenant,
            ..Default::default()
        };
        // The route template stands for the path: never a token or a name.
        self.telemetry
            .access
            .write(&line, ip, store::HOST, seen.route);
        r
    }

    fn keepalive(&self) -> u64 {
        self.keepalive
    }
}
