//! The image path. pingora writes a response header before it sees the body, so a body filter
//! could not change Content-Type or fall back to the original after a failed or larger
//! transform. This path therefore answers from `request_filter`:
//!
//! 1. negotiate a [`Plan`] from Accept and build the variant [`Key`];
//! 2. serve a cache hit, or join the flight for the key (one leader fetches and transforms,
//!    the others wait for its entry);
//! 3. the leader fetches the origin, sniffs, streams a non-image through, or transforms the
//!    image on the pool and stores the result when the origin allows;
//! 4. a cold AVIF variant not ready within `cache.avif_budget` is answered with the WebP
//!    variant while AVIF finishes in the background.

use super::headers;
use super::policy::Applied;
use super::respond::{self, CacheStatus};
use super::source::{fetch, Fetched, SourceImage};
use super::state::State;
use crate::cache::flight::{Join, Leader, Waited};
use crate::cache::policy;
use crate::cache::{Entry, Key, KeyParts};
use crate::image::pipeline::{Job, Outcome, Transform};
use crate::image::pool::PoolResult;
use crate::image::Reason;
use crate::request::accept::Accept;
use crate::request::hints::Hints;
use crate::request::imgproxy;
use crate::request::negotiate::{plan_for, Plan};
use crate::request::options::{FormatReq, OptionError, Options};
use crate::security::ssrf::SourceUrl;
use crate::telemetry::metrics::{self, record_original, record_transformed};
use crate::telemetry::Record;
use http::header;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One image request: what to fetch and how to name its variants.
struct Request {
    /// The request sent to the origin.
    origin_req: RequestHeader,
    /// Host the origin sees (key part).
    host: String,
    /// Path and query sent to the origin (key part).
    path_and_query: String,
    /// Whether this request may use the cache at all.
    cacheable: bool,
    /// The origin saw the client's `Cookie` (see `cache.cookies`).
    cookie: bool,
    /// Canonical transform options (key part).
    options: String,
    /// The pixel operations they ask for.
    transform: Transform,
    /// Which origin the key names: `origin.url`, or the remote source's scheme and host.
    origin_id: String,
    /// A remote source (the URL API), fetched behind the SSRF guard instead of the origin.
    remote: Option<SourceUrl>,
    /// The matched rule's TTL cap.
    rule_ttl: Option<Duration>,
    /// The matched rule's per-format qualities.
    qualities: Vec<(crate::image::format::OutputFormat, u8)>,
    /// The rule matched before the fetch (and its rule set, kept for this request).
    applied: Applied,
    /// Host and path the rules are matched on.
    rule_site: (String, String),
    /// The URL's options, before any rule (to re-derive them when a source-format rule
    /// applies after the fetch).
    url_opts: Options,
    /// The client's Accept header.
    accept: Accept,
}

impl Request {
    fn key(&self, st: &State, plan: &Plan) -> Key {
        self.parts(st, &plan.label()).key()
    }
    fn parts<'a>(&'a self, st: &'a State, plan: &'a str) -> KeyParts<'a> {
        KeyParts {
            origin: &self.origin_id,
            host: &self.host,
            path_and_query: &self.path_and_query,
            options: &self.options,
            plan,
            settings: &st.settings_fingerprint,
        }
    }
}

/// Answers a candidate request. Returns the status written.
pub async fn handle(
    st: &Arc<State>,
    session: &mut Session,
    applied: Applied,
    rec: &mut Record,
) -> Result<u16> {
    let accept = accept_of(session);
    let (options, origin_query) = match url_options(st, session.req_header(), &applied) {
        Ok(o) => o,
        Err(e) => return respond::bad_request(session, &e.to_string()).await,
    };
    if applied.require_signature() && !options.is_identity() {
        let msg = "this path only allows signed transforms (the URL API)";
        return respond::error(session, 403, msg).await;
    }
    let t = &st.cfg.transform;
    let options = if t.client_hints {
        Hints::from_headers(&session.req_header().headers)
            .apply(options, t.save_data_quality)
            .capped(t.max_dpr)
    } else {
        options
    };
    let formats = &applied.formats(&st.cfg.images.formats);
    let Some(plan) = plan_for(options.format, &accept, formats) else {
        let msg = format!(
            "parameter `fm`: `{}` is not enabled here (images.formats or the path's rule)",
            options.format.name()
        );
        return respond::bad_request(session, &msg).await;
    };
    let req = build_request(st, session, &options, origin_query, applied, accept)?;
    if !req.cacheable {
        return fill(st, session, &req, Fill::new(plan), rec).await;
    }
    // An explicit `fm=avif` waits for AVIF: the client asked for that format by name.
    let budgeted = options.format == FormatReq::Auto;
    variant(st, session, &req, plan, budgeted, rec).await
}

/// The client's Accept header, parsed.
fn accept_of(session: &Session) -> Accept {
    Accept::parse(
        session
            .req_header()
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The transform options of the URL's query, and the query the origin should see instead
/// (`None`: leave the URL as it is).
fn url_options(
    st: &State,
    req: &RequestHeader,
    applied: &Applied,
) -> std::result::Result<(Options, Option<String>), OptionError> {
    let Some(query) = req.uri.query().filter(|_| st.cfg.transform.query_options) else {
        return Ok((Options::default(), None));
    };
    // `pr=name` expands in place to the preset's options; later parameters override them.
    let mut expanded: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("pr=") {
            Some(name) => expanded.push(applied.preset(name).ok_or_else(|| OptionError {
                param: "pr".into(),
                message: format!("unknown preset `{name}`"),
            })?),
            None => expanded.push(pair.to_string()),
        }
    }
    let (o, rest) = Options::from_query(&expanded.join("&"))?;
    let origin_path = match rest {
        Some(q) => format!("{}?{q}", req.uri.path()),
        None => req.uri.path().to_string(),
    };
    Ok((o.capped(st.cfg.transform.max_dpr), Some(origin_path)))
}

fn build_request(
    st: &State,
    session: &Session,
    options: &Options,
    origin_path: Option<String>,
    applied: Applied,
    accept: Accept,
) -> Result<Request> {
    let client = session.req_header();
    let rule_site = (
        client
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| client.uri.host())
            .unwrap_or("")
            .to_string(),
        client.uri.path().to_string(),
    );
    let mut req = session.req_header().clone();
    if let Some(pq) = origin_path {
        // Transform parameters are pixgate's: the origin sees the URL without them.
        let uri = http::Uri::builder()
            .path_and_query(pq)
            .build()
            .map_err(|_| pingora::Error::new_str("invalid request path"))?;
        req.set_uri(uri);
    }
    headers::strip_request(&mut req);
    // The client's validators belong to the variant it holds, not to the origin's resource;
    // they are evaluated here against the variant's ETag instead.
    req.remove_header(&header::IF_NONE_MATCH);
    req.remove_header(&header::IF_MODIFIED_SINCE);
    req.set_version(http::Version::HTTP_11);
    st.origin.set_host(&mut req)?;
    let client = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    headers::forward_request(&mut req, client)?;
    let host = req
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path_and_query = req
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    // A shared cache must not reuse answers to authenticated requests (RFC 9111 §3.5).
    let cacheable = st.cache.enabled()
        && !session
            .req_header()
            .headers
            .contains_key(header::AUTHORIZATION);
    let cookie = req.headers.contains_key(header::COOKIE);
    Ok(Request {
        origin_req: req,
        host,
        path_and_query,
        cacheable,
        cookie,
        options: format!("{}{}", options.canonical(), applied.key_part()),
        transform: applied.clamp(options.transform(st.cfg.transform.max_output_dimension)),
        origin_id: st.cfg.origin.url.clone(),
        remote: None,
        rule_ttl: applied.ttl(),
        qualities: applied.qualities(),
        applied,
        rule_site,
        url_opts: *options,
        accept,
    })
}

/// Answers a URL API request (`{prefix}/{signature}/{options}/...`): imgproxy's grammar,
/// signature, expiry, then the same cache and pipeline as the proxy path, with the source
/// fetched behind the SSRF guard.
pub async fn handle_api(
    st: &Arc<State>,
    session: &mut Session,
    rest: &str,
    rec: &mut Record,
) -> Result<u16> {
    // Presets in URL API paths come from the rule files' file-level presets.
    let global = st.rules.as_ref().map(|r| r.current());
    let presets = |name: &str| {
        global
            .as_ref()
            .and_then(|g| g.preset(None, name))
            .map(str::to_string)
    };
    let api = match imgproxy::parse(rest, &presets) {
        Ok(a) => a,
        Err(e) => return respond::bad_request(session, &e.to_string()).await,
    };
    let Some(key) = st
        .signer
        .as_ref()
        .and_then(|s| s.check(&api.signature, &api.signed))
    else {
        metrics::REMOTE_REFUSALS
            .with_label_values(&["signature"])
            .inc();
        rec.reason = Some("signature");
        return respond::error(session, 403, "invalid signature").await;
    };
    let key_tenant = key.and_then(|i| st.cfg.url_api.tenants.get(i));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if api.expires.is_some_and(|e| now > e) {
        return respond::error(session, 404, "this URL has expired").await;
    }
    let source = match SourceUrl::parse(&api.source) {
        Ok(u) => u,
        Err(e) => return respond::bad_request(session, &format!("parameter `source`: {e}")).await,
    };
    let Some(guard) = &st.guard else {
        return respond::error(session, 404, "the URL API is off").await;
    };
    if !guard.allows(&source) {
        metrics::REMOTE_REFUSALS
            .with_label_values(&["not_allowed"])
            .inc();
        let msg = format!("source `{}` is not in url_api.sources", source.origin());
        return respond::error(session, 403, &msg).await;
    }
    let source_path = source
        .path_and_query
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let applied = st.applied(&source.host, &source_path);
    // The signing key's tenant first, then the rule's.
    let tenant = key_tenant.map(String::as_str).or(applied.tenant());
    rec.tenant = st.telemetry.tenants.id(tenant);
    if let Err(wait) = st.limits.check_tenant(rec.tenant) {
        return respond::too_many(session, wait, rec).await;
    }
    if applied.require_signature() && matches!(api.signature.as_str(), "insecure" | "unsafe" | "_")
    {
        return respond::error(session, 403, "this source requires a signed URL").await;
    }
    if applied.bypass() {
        return respond::error(session, 403, "a rule excludes this source from transforms").await;
    }
    let options = api.options.capped(st.cfg.transform.max_dpr);
    let accept = accept_of(session);
    let formats = &applied.formats(&st.cfg.images.formats);
    let Some(plan) = plan_for(options.format, &accept, formats) else {
        let msg = format!("format `{}` is not enabled here", options.format.name());
        return respond::bad_request(session, &msg).await;
    };
    let req = Request {
        origin_req: session.req_header().clone(),
        host: source.host.clone(),
        path_and_query: source.path_and_query.clone(),
        cacheable: st.cache.enabled(),
        // The source is fetched without the client's headers.
        cookie: false,
        options: format!("{}{}", options.canonical(), applied.key_part()),
        transform: applied.clamp(options.transform(st.cfg.transform.max_output_dimension)),
        origin_id: format!("remote:{}", source.origin()),
        rule_ttl: applied.ttl(),
        qualities: applied.qualities(),
        rule_site: (source.host.clone(), source_path),
        remote: Some(source),
        applied,
        url_opts: options,
        accept,
    };
    if !req.cacheable {
        return fill(st, session, &req, Fill::new(plan), rec).await;
    }
    variant(
        st,
        session,
        &req,
        plan,
        options.format == FormatReq::Auto,
        rec,
    )
    .await
}

/// How long a follower waits for a leader before fetching itself: everything a leader may
/// legitimately take.
fn wait_limit(st: &State) -> Duration {
    let l = &st.cfg.limits;
    let o = &st.cfg.origin;
    l.queue_timeout.get()
        + l.transform_timeout.get()
        + o.connect_timeout.get()
        + o.read_timeout.get()
}

/// The origin, or the remote source behind the SSRF guard.
async fn fetch_source(st: &State, req: &Request, rec: &mut Record) -> Result<Fetched> {
    let t0 = std::time::Instant::now();
    let fetched = fetch_remote_or_origin(st, req).await?;
    let took = t0.elapsed();
    rec.add_origin_time(took);
    if let Fetched::Image(img) = &fetched {
        rec.origin_bytes += img.body.len() as u64;
        metrics::ORIGIN_SECONDS
            .with_label_values(&[rec.route])
            .observe(took.as_secs_f64());
    }
    Ok(fetched)
}

async fn fetch_remote_or_origin(st: &State, req: &Request) -> Result<Fetched> {
    let (Some(url), Some(guard)) = (&req.remote, &st.guard) else {
        return fetch(st, &req.origin_req).await;
    };
    let epoch = st.cache.epoch();
    let fetched_at = SystemTime::now();
    // The budget is charged as the body arrives (the declared length up front), as on the
    // proxy path: concurrent large sources never sit in memory past max_buffered_bytes.
    let mut held = super::budget::Held::default();
    let mut reserve = |n: u64| st.budget.grow(&mut held, n);
    let fetched = guard.fetch(url.clone(), &mut reserve).await;
    Ok(match fetched {
        Ok(r) => Fetched::Image(SourceImage {
            header: r.header,
            body: r.body,
            format: r.format,
            fetched_at,
            epoch,
            held,
        }),
        Err(r) if r.kind == crate::fetch::NO_BUDGET => {
            record_original("unknown", Reason::BufferBudget, 0, 0);
            Fetched::Refused(r)
        }
        Err(refusal) => Fetched::Refused(refusal),
    })
}

/// How one fill runs: which variant, whether it may be stored and shared, and how it answers.
struct Fill {
    plan: Plan,
    /// The variant's key; `None`: never stored.
    key: Option<Key>,
    /// The flight this request leads; finished with the stored entry (or `None`).
    lead: Option<Leader>,
    /// AVIF time budget (see the module docs).
    budget: Option<Duration>,
    /// Answer with this short downstream max-age (a stand-in while AVIF is pending).
    fallback: Option<Duration>,
    /// The source, when already fetched.
    source: Option<SourceImage>,
}

impl Fill {
    fn new(plan: Plan) -> Fill {
        Fill {
            plan,
            key: None,
            lead: None,
            budget: None,
            fallback: None,
            source: None,
        }
    }
    fn keyed(mut self, key: Key, lead: Option<Leader>) -> Fill {
        self.key = Some(key);
        self.lead = lead;
        self
    }
    fn budget(mut self, budget: Option<Duration>) -> Fill {
        self.budget = budget;
        self
    }
    fn fallback(mut self, max_age: Option<Duration>) -> Fill {
        self.fallback = max_age;
        self
    }
    fn source(mut self, source: Option<SourceImage>) -> Fill {
        self.source = source;
        self
    }
}

/// Serves the variant of `plan`: from the cache, from another request's flight, or by filling
/// it. `budgeted`: a cold AVIF may be answered with WebP (see the module docs).
async fn variant(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    plan: Plan,
    budgeted: bool,
    rec: &mut Record,
) -> Result<u16> {
    let key = req.key(st, &plan);
    if let Some(e) = cached(st, &key).await {
        return respond::entry(st, session, &e, CacheStatus::Hit, None, rec).await;
    }
    let budget = if budgeted && plan.wants_avif() {
        st.cfg.cache.avif_budget.map(|d| d.get())
    } else {
        None
    };
    match st.cache.flights.join(key) {
        Join::Follower(f) => match f.wait(budget.unwrap_or_else(|| wait_limit(st))).await {
            Waited::Entry(e) => {
                metrics::CACHE_COALESCED.inc();
                respond::entry(st, session, &e, CacheStatus::Miss, None, rec).await
            }
            Waited::TimedOut if budget.is_some() => {
                webp_instead(st, session, req, plan, None, rec).await
            }
            _ => {
                fill(
                    st,
                    session,
                    req,
                    Fill::new(plan).keyed(key, None).budget(budget),
                    rec,
                )
                .await
            }
        },
        Join::Leader(lead) => match stored_meanwhile(st, &key, lead).await {
            Ok(e) => respond::entry(st, session, &e, CacheStatus::Hit, None, rec).await,
            Err(lead) => {
                let f = Fill::new(plan).keyed(key, Some(lead)).budget(budget);
                fill(st, session, req, f, rec).await
            }
        },
    }
}

/// A fresh entry for `key`, counted as a hit of its tier.
async fn cached(st: &State, key: &Key) -> Option<Arc<Entry>> {
    let (e, tier) = st.cache.get(key).await?;
    metrics::CACHE_HITS.with_label_values(&[tier.label()]).inc();
    Some(e)
}

/// A new leader looks once more before it fetches: a request that missed before the previous
/// leader stored the entry, and joined after that leader's flight ended, finds it here
/// (without this, 50 concurrent misses could cost the origin two fetches). A found entry is
/// published to anyone who joined this flight meanwhile; otherwise the lead is handed back.
async fn stored_meanwhile(st: &State, key: &Key, lead: Leader) -> Result<Arc<Entry>, Leader> {
    match cached(st, key).await {
        Some(e) => {
            lead.finish(Some(e.clone()));
            Ok(e)
        }
        None => Err(lead),
    }
}

/// The WebP variant as a stand-in while AVIF is pending, with a short downstream max-age.
async fn webp_instead(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    plan: Plan,
    source: Option<SourceImage>,
    rec: &mut Record,
) -> Result<u16> {
    metrics::CACHE_AVIF_FALLBACK.inc();
    let short = Some(st.cfg.cache.fallback_max_age.get());
    let plan = plan.avif_as_webp();
    let key = req.key(st, &plan);
    if let Some(e) = cached(st, &key).await {
        return respond::entry(st, session, &e, CacheStatus::Hit, short, rec).await;
    }
    let f = Fill::new(plan).fallback(short).source(source);
    let f = match st.cache.flights.join(key) {
        Join::Follower(w) => match w.wait(wait_limit(st)).await {
            Waited::Entry(e) => {
                metrics::CACHE_COALESCED.inc();
                return respond::entry(st, session, &e, CacheStatus::Miss, short, rec).await;
            }
            _ => f.keyed(key, None),
        },
        Join::Leader(lead) => match stored_meanwhile(st, &key, lead).await {
            Ok(e) => return respond::entry(st, session, &e, CacheStatus::Hit, short, rec).await,
            Err(lead) => f.keyed(key, Some(lead)),
        },
    };
    // Boxed: `fill` can come back here, once (a stand-in is never budgeted again).
    Box::pin(fill(st, session, req, f, rec)).await
}

/// Fetches (unless the source is in hand), transforms, stores when the origin allows, and
/// answers. The leader guard, if any, is finished with the stored entry (or `None`),
/// releasing its followers.
async fn fill(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    f: Fill,
    rec: &mut Record,
) -> Result<u16> {
    let Fill {
        plan,
        key,
        lead,
        budget,
        fallback,
        source,
    } = f;
    let src = match source {
        Some(s) => s,
        None => match fetch_source(st, req, rec).await? {
            Fetched::Image(s) => s,
            Fetched::Stream(up, chunks, reason) => {
                drop(lead);
                if up.header.status.as_u16() >= 500 {
                    if let Some(e) = stale(st, key, "origin_5xx").await {
                        rec.reason = Some("origin_5xx");
                        return respond::entry(st, session, &e, CacheStatus::Stale, None, rec)
                            .await;
                    }
                }
                return respond::stream_through(st, session, up, chunks, reason, rec).await;
            }
            Fetched::Failed(e) => {
                drop(lead);
                rec.reason = Some(e.label());
                if let Some(entry) = stale(st, key, "origin_error").await {
                    return respond::entry(st, session, &entry, CacheStatus::Stale, None, rec)
                        .await;
                }
                session.respond_error(e.status()).await?;
                return Ok(e.status());
            }
            Fetched::Refused(r) => {
                drop(lead);
                metrics::REMOTE_REFUSALS.with_label_values(&[r.kind]).inc();
                rec.reason = Some(r.kind);
                if r.status >= 502 {
                    if let Some(e) = stale(st, key, "origin_error").await {
                        return respond::entry(st, session, &e, CacheStatus::Stale, None, rec)
                            .await;
                    }
                }
                return respond::error(session, r.status, &r.message).await;
            }
        },
    };
    // A rule for this source's format may apply now that the format is known.
    let over = req
        .applied
        .for_source(&req.rule_site.0, &req.rule_site.1, src.format);
    if over.as_ref().is_some_and(Applied::bypass) {
        drop(lead);
        let res = PoolResult {
            outcome: Outcome::Original(Reason::RuleBypass),
            queued: Duration::ZERO,
            ran: Duration::ZERO,
        };
        let (e, _) = Parts::of(req, &src, None).entry(st, res);
        return respond::entry(st, session, &e, CacheStatus::Bypass, fallback, rec).await;
    }
    let work = match &over {
        Some(a) => Work::from_rule(st, req, a, plan),
        None => Work {
            plan,
            transform: req.transform,
            qualities: req.qualities.clone(),
            rule_ttl: req.rule_ttl,
        },
    };
    let plan = work.plan;
    let ttl = match policy::ttl(
        &src.header.headers,
        &st.cache.limits(work.rule_ttl, req.cookie),
        SystemTime::now(),
    ) {
        Ok(t) => Some(t),
        Err(why) => {
            if key.is_some() {
                metrics::CACHE_NOT_STORED
                    .with_label_values(&[why.label()])
                    .inc();
            }
            None
        }
    };
    let parts = Parts::of(req, &src, ttl);
    let (Some(key), Some(_)) = (key, ttl) else {
        // Not shareable: release any waiters now so they fetch for themselves.
        drop(lead);
        let res = st.pool.run(job(st, &work, &src)).await;
        rec.transformed(res.queued, res.ran);
        if rejects(st, &res.outcome) {
            return respond::overloaded(session, rec).await;
        }
        let (e, _) = parts.entry(st, res);
        return respond::entry(st, session, &e, CacheStatus::Bypass, fallback, rec).await;
    };

    if let Some(budget) = budget {
        let Ok(permit) = st.cache.background.clone().try_acquire_owned() else {
            metrics::CACHE_BACKGROUND
                .with_label_values(&["skipped"])
                .inc();
            drop(lead);
            return webp_instead(st, session, req, plan, Some(src), rec).await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let st2 = st.clone();
        let job = job(st, &work, &src);
        let tenant = rec.tenant;
        tokio::spawn(async move {
            let res = st2.pool.run(job).await;
            let times = (res.queued, res.ran);
            let (e, storable) = parts.entry(&st2, res);
            if storable {
                st2.cache.insert(key, e.clone(), parts.epoch).await;
            }
            // After the insert: a request that joins once this flight has ended finds the
            // entry in some tier (see `stored_meanwhile`).
            if let Some(l) = lead {
                l.finish(storable.then(|| e.clone()));
            }
            if let Err((_, (_, ran))) = tx.send((e, times)) {
                // The request already answered with WebP: this encode was background work,
                // still billed to the tenant that asked for it.
                st2.telemetry
                    .tenants
                    .record(tenant, 0, 0, ran.as_secs_f64());
                let outcome = if storable { "stored" } else { "not_stored" };
                metrics::CACHE_BACKGROUND
                    .with_label_values(&[outcome])
                    .inc();
            }
            drop(permit);
        });
        return match tokio::time::timeout(budget, rx).await {
            Ok(Ok((e, (queued, ran)))) => {
                rec.queue_time = Some(queued);
                rec.transform_time = Some(ran);
                respond::entry(st, session, &e, CacheStatus::Miss, fallback, rec).await
            }
            _ => {
                metrics::CACHE_BACKGROUND
                    .with_label_values(&["started"])
                    .inc();
                webp_instead(st, session, req, plan, Some(src), rec).await
            }
        };
    }

    let res = st.pool.run(job(st, &work, &src)).await;
    rec.transformed(res.queued, res.ran);
    if rejects(st, &res.outcome) {
        drop(lead);
        return respond::overloaded(session, rec).await;
    }
    let (e, storable) = parts.entry(st, res);
    if storable {
        st.cache.insert(key, e.clone(), src.epoch).await;
    } else {
        metrics::CACHE_NOT_STORED
            .with_label_values(&["transient"])
            .inc();
    }
    // After the insert (memory and the sealed file): a request that joins once this flight
    // has ended finds the entry in some tier, even when the memory tier did not keep it.
    if let Some(l) = lead {
        l.finish(storable.then(|| e.clone()));
    }
    let status = if storable {
        CacheStatus::Miss
    } else {
        CacheStatus::Bypass
    };
    respond::entry(st, session, &e, status, fallback, rec).await
}

/// The expired variant for `key` in place of a failed origin, when its `stale-if-error`
/// window (inside `max_retention`) still holds it.
async fn stale(st: &State, key: Option<Key>, cause: &'static str) -> Option<Arc<Entry>> {
    let e = st.cache.get_stale(&key?).await?;
    metrics::CACHE_STALE.with_label_values(&[cause]).inc();
    Some(e)
}

/// Whether this outcome is a full queue that `limits.overload: reject` answers with 503.
fn rejects(st: &State, o: &Outcome) -> bool {
    st.cfg.limits.overload == crate::config::Overload::Reject
        && matches!(o, Outcome::Original(Reason::Overloaded))
}

/// What the transform does, after the rules (re-derived when a source-format rule applies).
struct Work {
    plan: Plan,
    transform: Transform,
    qualities: Vec<(crate::image::format::OutputFormat, u8)>,
    rule_ttl: Option<Duration>,
}

impl Work {
    /// The URL's options under rule `a` instead of the one matched before the fetch.
    fn from_rule(st: &State, req: &Request, a: &Applied, before: Plan) -> Work {
        let formats = a.formats(&st.cfg.images.formats);
        // The URL named a format this rule does not allow: keep what was agreed.
        let plan = plan_for(req.url_opts.format, &req.accept, &formats).unwrap_or(before);
        let max = st.cfg.transform.max_output_dimension;
        Work {
            plan,
            transform: a.clamp(req.url_opts.transform(max)),
            qualities: a.qualities(),
            rule_ttl: a.ttl(),
        }
    }
}

fn job(st: &State, w: &Work, src: &SourceImage) -> Job {
    Job::for_plan(
        src.body.clone(),
        src.format,
        w.plan,
        &st.cfg.images,
        st.header_limits,
    )
    .with_transform(w.transform)
    .with_qualities(&w.qualities)
}

/// What turns a transform result into an entry; owned, so a background encode can finish
/// after its request is gone.
struct Parts {
    /// The source's headers that an answer may carry: the origin's, or a remote source's
    /// [`crate::fetch::source_headers`].
    header: http::HeaderMap,
    body: bytes::Bytes,
    format: crate::image::format::SourceFormat,
    fetched_at: SystemTime,
    epoch: u64,
    source: crate::cache::Source,
    /// `None`: the origin forbids storing.
    ttl: Option<Duration>,
}

impl Parts {
    fn of(req: &Request, src: &SourceImage, ttl: Option<Duration>) -> Parts {
        // A third party's headers never reach the client on the URL API; the cache policy
        // already read the whole header.
        let header = match req.remote {
            Some(_) => crate::fetch::source_headers(&src.header.headers),
            None => src.header.headers.clone(),
        };
        Parts {
            header,
            body: src.body.clone(),
            format: src.format,
            fetched_at: src.fetched_at,
            epoch: src.epoch,
            source: crate::cache::key::source_of(&req.host, &req.path_and_query),
            ttl,
        }
    }

    /// The entry, and whether it may be stored: a TTL and a deterministic outcome (timeouts
    /// and encoder failures are not remembered).
    fn entry(&self, st: &State, res: PoolResult) -> (Arc<Entry>, bool) {
        metrics::QUEUE_SECONDS.observe(res.queued.as_secs_f64());
        let n = self.body.len();
        let (headers, body, etag, note, deterministic) = match res.outcome {
            Outcome::Transformed {
                format: out, bytes, ..
            } => {
                record_transformed(self.format, out, n, bytes.len(), res.ran.as_secs_f64());
                let etag = headers::variant_etag(&bytes);
                let h = respond::stored_headers(&self.header, out.mime(), Some(&etag), st.vary());
                (h, bytes, Some(etag), out.name().to_string(), true)
            }
            Outcome::Original(reason) => {
                record_original(self.format.name(), reason, n, n);
                let etag = self
                    .header
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // The type comes from the bytes, never from the origin's or a remote
                // source's Content-Type (a JPEG-looking HTML page stays an image to clients).
                let h = respond::stored_headers(
                    &self.header,
                    self.format.mime(),
                    etag.as_deref(),
                    st.vary(),
                );
                let transient = matches!(
                    reason,
                    Reason::Timeout
                        | Reason::QueueTimeout
                        | Reason::EncodeFailed
                        | Reason::Overloaded
                );
                let note = format!("original; reason={}", reason.label());
                (h, self.body.clone(), etag, note, !transient)
            }
        };
        let hold = st.cfg.cache.hold_limit();
        let ttl = self.ttl.unwrap_or_default();
        let stale = policy::stale_if_error(&self.header, st.cfg.cache.stale_if_error.get());
        let e = Entry {
            headers,
            body,
            etag,
            note,
            source: self.source.clone(),
            created: self.fetched_at,
            fresh_until: policy::expires_at(self.fetched_at, ttl, hold),
            expires: policy::expires_at(self.fetched_at, ttl.saturating_add(stale), hold),
            source_bytes: n as u64,
            source_format: self.format.name().to_string(),
            origin_age: self
                .header
                .get(header::AGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        };
        (Arc::new(e), deterministic && self.ttl.is_some())
    }
}
