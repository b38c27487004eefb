//! The compression service: a listener of its own (`upload.listen`) for people with files.
//! `POST /api/v1/images` takes one or several images (multipart or a raw body), screens them
//! ([`crate::screening`]), transforms them on the proxy's transform pool under the same
//! variant decision ([`crate::variant::decide`]), keeps each result in the upload store
//! ([`store`]: a cache whose retention is `upload.retention`) and answers with private links;
//! `GET /d/{token}` downloads one, `GET /d/{token}.zip` a batch, `DELETE` erases; `/` is the
//! web page (embedded: page.html, page.css, page.js, its icon page.svg) and `/api/v1/info` the
//! facts it shows.
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

/// One stored result, as answered.
struct Done {
    token: String,
    json: serde_json::Value,
    in_bytes: u64,
    out_bytes: u64,
    secs: f64,
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

    /// `POST /api/v1/images`.
    async fn post(
        &self,
        s: &mut ServerSession,
        ip: Option<IpAddr>,
        seen: &mut Seen,
    ) -> Result<Response<Vec<u8>>, Refusal> {
        let refuse = |outcome: &'static str, r: Refusal| {
            metrics::UPLOADS.with_label_values(&[outcome]).inc();
            r
        };
        let _slot = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // The body stays unread: the connection cannot carry another request.
                s.set_keepalive(None);
                return Err(refuse(
                    "overloaded",
                    Refusal::new(503, "overloaded", "The service is busy.")
                        .retry(Duration::from_secs(2)),
                ));
            }
        };
        let body = self.read_body(s).await.inspect_err(|r| {
            metrics::UPLOADS
                .with_label_values(&[if r.status == 413 {
                    "too_large"
                } else {
                    "bad_request"
                }])
                .inc();
        })?;
        seen.bytes_in = body.len() as u64;
        let req = s.req_header();
        let content_type = req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let accept = Accept::parse(
            req.headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let mut pairs: Vec<(String, String)> = req
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let bad = |m: String| refuse("bad_request", Refusal::new(400, "bad_request", m));
        let parsed = form::parse(content_type.as_deref(), body)
            .await
            .map_err(|b| bad(b.0))?;
        pairs.extend(parsed.fields);
        let files = parsed.files;
        if files.is_empty() {
            return Err(bad(
                "The request has no file (send it as a `file` field).".into()
            ));
        }
        if files.len() > self.cfg.max_files {
            return Err(bad(format!(
                "At most {} files per request, got {}.",
                self.cfg.max_files,
                files.len()
            )));
        }
        let ask = self.ask(&pairs).map_err(|e| bad(e.to_string()))?;
        let v = self.decide(&ask, accept).map_err(bad)?;
        let total: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
        self.quotas
            .upload(ip, files.len() as u64, total)
            .map_err(|(l, wait)| {
                refuse(
                    "limited",
                    Refusal::new(429, "limited", l.message()).retry(wait),
                )
            })?;
        // Screen every file before anything is kept.
        for f in &files {
            let verdict = self.screening.check(&f.bytes).await;
            if let Some(status) = verdict.status() {
                let code = match verdict {
                    Verdict::Deny(_) => "denied",
                    Verdict::Unreadable(crate::screening::Unreadable::NotImage) => "not_image",
                    _ => "unreadable",
                };
                return Err(refuse(code, Refusal::new(status, code, verdict.message())));
            }
        }
        let mut done: Vec<Done> = Vec::with_capacity(files.len());
        for f in &files {
            match self.one(f, &ask, &v).await {
                Ok(d) => done.push(d),
                Err((outcome, r)) => {
                    for d in &done {
                        let _ = self.store.take(&d.token).await;
                    }
                    return Err(refuse(outcome, r));
                }
            }
        }
        let zip = if done.len() > 1 {
            let tokens: Vec<&str> = done.iter().map(|d| d.token.as_str()).collect();
            let id = random_id().map_err(|e| refuse("failed", Refusal::new(500, "failed", e)))?;
            let stored = self
                .store
                .put(Keep {
                    body: Bytes::from(tokens.join("\n")),
                    mime: "text/plain",
                    name: format!("pixgate-{id}.zip"),
                    id,
                    kind: Kind::Batch,
                    source_bytes: 0,
                    source_format: "batch",
                    expires: SystemTime::now() + self.keep_for(&ask),
                })
                .await
                .map_err(|e| refuse("failed", Refusal::new(500, "failed", e)))?;
            Some(format!("{}/d/{}.zip", self.base(), stored.token))
        } else {
            None
        };
        for d in &done {
            metrics::UPLOADS.with_label_values(&["stored"]).inc();
            metrics::UPLOAD_BYTES
                .with_label_values(&["in"])
                .inc_by(d.in_bytes);
            metrics::UPLOAD_BYTES
                .with_label_values(&["out"])
                .inc_by(d.out_bytes);
            metrics::UPLOAD_SECONDS.observe(d.secs);
            if d.in_bytes > 0 {
                metrics::UPLOAD_SAVINGS
                    .observe((1.0 - d.out_bytes as f64 / d.in_bytes as f64).max(0.0));
            }
            self.telemetry
                .tenants
                .record(seen.tenant, d.in_bytes, d.out_bytes, d.secs);
        }
        seen.transform = Some(Duration::from_secs_f64(done.iter().map(|d| d.secs).sum()));
        let files: Vec<serde_json::Value> = done.into_iter().map(|d| d.json).collect();
        Ok(answer::json(200, &json!({"files": files, "zip": zip})))
    }

    /// The options of a request, with the rule files' presets.
    fn ask(&self, pairs: &[(String, String)]) -> Result<Ask, crate::request::options::OptionError> {
        let global = self.rules.as_ref().map(|r| r.current());
        let presets = |name: &str| {
            global
                .as_ref()
                .and_then(|g| g.preset(None, name))
                .map(str::to_string)
        };
        let ask = Ask::from_pairs(pairs, &presets)?;
        if ask.ttl.is_some_and(|t| t > self.cfg.retention.get()) {
            return Err(crate::request::options::OptionError {
                param: "ttl".into(),
                message: format!("must be at most the retention, {}", self.cfg.retention),
            });
        }
        Ok(ask)
    }

    /// The variant: the proxy's decision, as for a signed URL API request with no rule.
    fn decide(&self, ask: &Ask, accept: Accept) -> Result<Variant, String> {
        let a = variant::Ask {
            options: ask.options.capped(self.transform.max_dpr),
            hints: None,
            accept,
            route: Route::Api { signed: true },
        };
        let settings = variant::Settings {
            formats: &self.images.formats,
            transform: &self.transform,
        };
        variant::decide(&a, &Applied::find(None, "", "/"), settings).map_err(|r| r.message())
    }

    /// How long a result of `ask` is kept.
    fn keep_for(&self, ask: &Ask) -> Duration {
        let r = self.cfg.retention.get();
        ask.ttl.map_or(r, |t| t.min(r))
    }

    fn base(&self) -> &str {
        self.cfg.public_url.as_deref().unwrap_or("")
    }

    /// Transforms and stores one screened file.
    async fn one(
        &self,
        f: &form::File,
        ask: &Ask,
        v: &Variant,
    ) -> Result<Done, (&'static str, Refusal)> {
        let t0 = Instant::now();
        let unreadable = |m: &str| ("unreadable", Refusal::new(422, "unreadable", m));
        let format = sniff(&f.bytes).ok_or_else(|| {
            (
                "not_image",
                Refusal::new(
                    415,
                    "not_image",
                    "The file is not an image in a supported format.",
                ),
            )
        })?;
        let mut t = v.transform;
        t.crop = ask.crop;
        t.rotate = ask.rotate;
        let job = Job::for_plan(f.bytes.clone(), format, v.plan, &self.images, self.limits)
            .with_transform(t)
            .with_qualities(&v.qualities);
        let res = self.pool.run(job).await;
        let n = f.bytes.len();
        let (body, out, width, height) = match res.outcome {
            Outcome::Transformed {
                format: out,
                bytes,
                width,
                height,
                ..
            } => {
                metrics::record_transformed(format, out, n, bytes.len(), res.ran.as_secs_f64());
                (bytes, Format::Out(out), Some(width), Some(height))
            }
            Outcome::Original(reason) => {
                metrics::record_original(format.name(), reason, n, n);
                match reason {
                    Reason::NotSmaller
                    | Reason::Animated
                    | Reason::FormatDisabled
                    | Reason::NoTransform
                    | Reason::RuleBypass
                    | Reason::UnsupportedSource => {
                        let p = crate::image::probe::dimensions(&f.bytes, format, self.limits).ok();
                        // Kept as uploaded, but never with its EXIF/XMP (strip_metadata).
                        let stripped =
                            crate::image::metadata::strip(&f.bytes, format).map_err(|_| {
                                unreadable("The image's metadata could not be removed.")
                            })?;
                        (
                            Bytes::from(stripped),
                            Format::Source(format),
                            p.map(|p| p.width),
                            p.map(|p| p.height),
                        )
                    }
                    Reason::Undecodable | Reason::Truncated | Reason::Empty => {
                        return Err(unreadable("The image could not be decoded."))
                    }
                    Reason::TooManyPixels | Reason::TooManyScans | Reason::TooLarge => {
                        return Err(unreadable(
                            "The image, or the result asked for, has too many pixels.",
                        ))
                    }
                    Reason::CropOutside => {
                        return Err((
                            "bad_request",
                            Refusal::new(
                                400,
                                "bad_request",
                                "parameter `crop`: the crop starts outside the image",
                            ),
                        ))
                    }
                    Reason::Timeout
                    | Reason::QueueTimeout
                    | Reason::Overloaded
                    | Reason::BufferBudget
                    | Reason::EncodeFailed => {
                        return Err((
                            "overloaded",
                            Refusal::new(
                                503,
                                "overloaded",
                                "The service is busy; the image was not processed.",
                            )
                            .retry(Duration::from_secs(5)),
                        ))
                    }
                }
            }
        };
        let id = random_id().map_err(|e| ("failed", Refusal::new(500, "failed", e)))?;
        let name = answer::safe_name(f.name.as_deref(), ask.keep_name, &id, out.name());
        let out_bytes = body.len() as u64;
        let stored = self
            .store
            .put(Keep {
                body,
                mime: out.mime(),
                name,
                id: id.clone(),
                kind: Kind::File { once: ask.once },
                source_bytes: n as u64,
                source_format: format.name(),
                expires: SystemTime::now() + self.keep_for(ask),
            })
            .await
            .map_err(|e| ("failed", Refusal::new(500, "failed", e)))?;
        let secs = t0.elapsed().as_secs_f64();
        let savings = if n > 0 {
            ((1.0 - out_bytes as f64 / n as f64) * 10_000.0).round() / 10_000.0
        } else {
            0.0
        };
        Ok(Done {
            json: json!({
                "id": id,
                "link": format!("{}/d/{}", self.base(), stored.token),
                "expires_at": humantime::format_rfc3339_seconds(stored.expires).to_string(),
                "input_bytes": n,
                "output_bytes": out_bytes,
                "savings": savings,
                "format": out.name(),
                "width": width,
                "height": height,
                "ms": (secs * 1000.0).round() as u64,
                "delete_after_download": ask.once,
            }),
            token: stored.token,
            in_bytes: n as u64,
            out_bytes,
            secs,
        })
    }

    /// `upload.max_bytes` against the declared length (413 before a byte is read), then the
    /// body, read under the same limit (413 as soon as it is passed).
    async fn read_body(&self, s: &mut ServerSession) -> Result<Bytes, Refusal> {
        let max = self.cfg.max_bytes.get();
        let too_large = || {
            Refusal::new(
                413,
                "too_large",
                format!(
                    "The upload is larger than the {} limit.",
                    self.cfg.max_bytes
                ),
            )
        };
        let declared = s
            .req_header()
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            // The body stays unread: the connection cannot carry another request.
            s.set_keepalive(None);
            return Err(too_large());
        }
        let expects = s
            .req_header()
            .headers
            .get(header::EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects && s.write_continue_response().await.is_err() {
            s.set_keepalive(None);
            return Err(Refusal::new(400, "bad_request", "The connection failed."));
        }
        let cap = usize::try_from(declared.unwrap_or(0).min(max)).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(cap);
        loop {
            match s.read_request_body().await {
                Ok(Some(chunk)) => {
                    if (buf.len() + chunk.len()) as u64 > max {
                        s.set_keepalive(None);
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => {
                    s.set_keepalive(None);
                    return Err(Refusal::new(
                        400,
                        "bad_request",
                        "The request body could not be read.",
                    ));
                }
            }
        }
        Ok(buf.freeze())
    }

    /// `/d/{token}` and `/d/{token}.zip`: GET, HEAD, DELETE.
    async fn link(&self, method: &str, rest: &str) -> Result<Response<Vec<u8>>, Refusal> {
        let (token, zip) = match rest.strip_suffix(".zip") {
            Some(t) => (t, true),
            None => (rest, false),
        };
        let gone = || {
            metrics::UPLOAD_LINKS
                .with_label_values(&["not_found"])
                .inc();
            Refusal::not_found()
        };
        let e = self.store.get(token).await.ok_or_else(gone)?;
        let kind = Kind::of(&e).ok_or_else(gone)?;
        match (method, kind, zip) {
            ("DELETE", Kind::Batch, _) => {
                for t in children(&e.body) {
                    let _ = self.store.take(t).await;
                }
                self.erase(token).await
            }
            ("DELETE", Kind::File { .. }, false) => self.erase(token).await,
            ("GET" | "HEAD", Kind::File { once }, false) => {
                let e = if once && method == "GET" {
                    let e = self.store.take(token).await.ok_or_else(gone)?;
                    metrics::UPLOAD_LINKS
                        .with_label_values(&["downloaded_once"])
                        .inc();
                    e
                } else {
                    e
                };
                metrics::UPLOAD_LINKS.with_label_values(&["download"]).inc();
                let mime = e
                    .headers
                    .iter()
                    .find(|(k, _)| k == "content-type")
                    .and_then(|(_, v)| std::str::from_utf8(v).ok())
                    .unwrap_or("application/octet-stream");
                let name = store::name_of(&e).unwrap_or_else(|| "pixgate".into());
                Ok(answer::download(mime, &name, e.body.to_vec()))
            }
            ("GET" | "HEAD", Kind::Batch, true) => {
                let mut files = Vec::new();
                for t in children(&e.body) {
                    let child = match self.store.get(t).await {
                        Some(c) if Kind::of(&c) == Some(Kind::File { once: true }) => {
                            if method == "GET" {
                                self.store.take(t).await
                            } else {
                                Some(c)
                            }
                        }
                        other => other,
                    };
                    if let Some(c) = child {
                        files.push((
                            store::name_of(&c).unwrap_or_else(|| "pixgate".into()),
                            c.body.clone(),
                        ));
                    }
                }
                if files.is_empty() {
                    return Err(gone());
                }
                let body = answer::zip(&files).map_err(|m| Refusal::new(500, "failed", m))?;
                metrics::UPLOAD_LINKS.with_label_values(&["zip"]).inc();
                let name = store::name_of(&e).unwrap_or_else(|| "pixgate.zip".into());
                Ok(answer::download("application/zip", &name, body))
            }
            ("GET" | "HEAD" | "DELETE", _, _) => Err(gone()),
            _ => Err(Refusal::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed here."),
            )),
        }
    }

    async fn erase(&self, token: &str) -> Result<Response<Vec<u8>>, Refusal> {
        match self.store.take(token).await {
            Some(_) => {
                metrics::UPLOAD_LINKS.with_label_values(&["erased"]).inc();
                Ok(answer::reply(204, "application/json", Vec::new()))
            }
            None => Err(Refusal::not_found()),
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

/// The tokens a batch entry lists.
fn children(body: &Bytes) -> impl Iterator<Item = &str> {
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('\n')
        .filter(|t| !t.is_empty())
}

/// A result's public id: 8 random bytes in hex, unrelated to its token.
fn random_id() -> Result<String, String> {
    let mut b = [0u8; 8];
    store::random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The format of a kept result: an encoding, or the upload itself (never larger).
#[derive(Clone, Copy)]
enum Format {
    Out(OutputFormat),
    Source(SourceFormat),
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Out(f) => f.name(),
            Format::Source(f) => f.name(),
        }
    }

    fn mime(self) -> &'static str {
        match self {
            Format::Out(f) => f.mime(),
            Format::Source(f) => f.mime(),
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
