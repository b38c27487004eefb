//! Serving one decided image request, top to bottom:
//!
//! 1. **cache**: the variant's key; a fresh entry answers (HIT); else join the key's flight: a
//!    follower waits for the leader's entry, the leader (or a request that may not share)
//!    fills it;
//! 2. **fetch** the source (the origin, or a remote source behind the SSRF guard); anything
//!    that is not an image in hand streams through, or answers from a stale entry;
//! 3. **decide** again when a rule for the source's format applies ([`Ask::under_source_rule`]);
//! 4. **store?** the origin's caching headers and the rule's TTL say whether the variant may be
//!    kept;
//! 5. **transform** on the pool (a budgeted AVIF races its budget in [`super::avif_budget`]);
//! 6. **store** (memory and the sealed file), then release the flight's followers;
//! 7. **respond**.

use super::avif_budget;
use super::outcome::{job, Parts};
use super::respond::{self, CacheStatus};
use super::source::{self, Fetched, SourceImage};
use super::state::State;
use crate::cache::flight::{Join, Leader, Waited};
use crate::cache::policy;
use crate::cache::{Claimed, Entry, Key, KeyParts};
use crate::image::pipeline::Outcome;
use crate::image::Reason;
use crate::rules::Applied;
use crate::security::ssrf::SourceUrl;
use crate::telemetry::metrics;
use crate::telemetry::Record;
use crate::variant::{AfterFetch, Ask, Variant};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One image request: what to fetch, how to name its variants, and what it asked for.
pub(super) struct Request {
    /// The request sent to the origin.
    pub(super) origin_req: RequestHeader,
    /// Host the origin sees (key part).
    pub(super) host: String,
    /// Path and query sent to the origin (key part).
    pub(super) path_and_query: String,
    /// Whether this request may use the cache at all.
    pub(super) cacheable: bool,
    /// The origin saw the client's `Cookie` (see `cache.cookies`).
    pub(super) cookie: bool,
    /// Which origin the key names: `origin.url`, or the remote source's scheme and host.
    pub(super) origin_id: String,
    /// A remote source (the URL API), fetched behind the SSRF guard instead of the origin.
    pub(super) remote: Option<SourceUrl>,
    /// The rule matched before the fetch (and its rule set, kept for this request).
    pub(super) applied: Applied,
    /// Host and path the rules are matched on.
    pub(super) rule_site: (String, String),
    /// What the request asked for, to decide again once the source's format is known.
    pub(super) ask: Ask,
    /// The URL API's `filename`/`return_attachment`: the answer's `Content-Disposition`.
    pub(super) disposition: Option<crate::request::imgproxy::Disposition>,
}

impl Request {
    /// The cache key of variant `v`.
    pub(super) fn key(&self, st: &State, v: &Variant) -> Key {
        KeyParts {
            origin: &self.origin_id,
            host: &self.host,
            path_and_query: &self.path_and_query,
            options: &v.key_options,
            plan: &v.plan.label(),
            settings: &st.settings_fingerprint,
        }
        .key()
    }
}

/// Serves variant `v` of `req`: from the cache, from another request's flight, or by filling
/// it.
pub(super) async fn serve(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    v: Variant,
    rec: &mut Record,
) -> Result<u16> {
    if !req.cacheable {
        return done(
            fill(st, session, req, Fill::new(v), rec).await?,
            st,
            session,
            req,
            rec,
        )
        .await;
    }
    let key = req.key(st, &v);
    let budget = if v.budgeted && v.plan.webp_may_stand_in() {
        st.cfg.cache.avif_budget.map(|d| d.get())
    } else {
        None
    };
    let lead = match find(st, key, budget.unwrap_or_else(|| wait_limit(st))).await {
        Found::Entry(e, status) => {
            return respond::entry(st, session, &e, status, None, rec).await;
        }
        Found::TimedOut if budget.is_some() => {
            return avif_budget::stand_in(st, session, req, v, None, rec).await;
        }
        Found::TimedOut => None,
        Found::Lead(lead) => lead,
    };
    // A stale variant whose source has a validator: the origin may confirm it with a 304.
    let mut lead = lead;
    if let Some(status) =
        super::revalidate::stale_variant(st, session, req, key, v.rule_ttl, &mut lead, rec).await?
    {
        return Ok(status);
    }
    let f = Fill::new(v).keyed(key, lead).budget(budget);
    done(fill(st, session, req, f, rec).await?, st, session, req, rec).await
}

/// The answer once a fill has run: written, or the WebP stand-in while AVIF finishes.
async fn done(
    filled: Filled,
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    rec: &mut Record,
) -> Result<u16> {
    match filled {
        Filled::Answered(status) => Ok(status),
        Filled::StandIn(v, src) => avif_budget::stand_in(st, session, req, v, Some(src), rec).await,
        Filled::WebpFirst(race, v, src) => {
            avif_budget::webp_first(st, session, req, race, v, src, rec).await
        }
    }
}

/// What looking up a key found.
pub(super) enum Found {
    /// An entry to answer with, and how it was found.
    Entry(Arc<Entry>, CacheStatus),
    /// Fill it: leading its flight (`Some`), or on its own (`None`: the leader gave up).
    Lead(Option<Leader>),
    /// The wait for another request's flight timed out.
    TimedOut,
}

/// Looks `key` up in the cache, then in the flights: a follower waits up to `wait`.
pub(super) async fn find(st: &State, key: Key, wait: Duration) -> Found {
    if let Some(e) = cached(st, &key).await {
        return Found::Entry(e, CacheStatus::Hit);
    }
    match st.cache.flights.join(key) {
        Join::Follower(f) => match f.wait(wait).await {
            Waited::Entry(e) => {
                metrics::CACHE_COALESCED.inc();
                Found::Entry(e, CacheStatus::Miss)
            }
            Waited::TimedOut => Found::TimedOut,
            Waited::Nothing => Found::Lead(None),
        },
        // A new leader looks once more before it fetches: a request that missed before the
        // previous leader stored the entry, and joined after that leader's flight ended, finds
        // it here (without this, 50 concurrent misses could cost the origin two fetches). A
        // found entry is published to anyone who joined this flight meanwhile.
        Join::Leader(mut lead) => match cached_local(st, &key).await {
            Some(e) => {
                lead.finish(Some(e.clone()));
                Found::Entry(e, CacheStatus::Hit)
            }
            // Across the cluster (shared tier): one node makes it, the others wait for it.
            None => match st.cache.claim(&key, wait).await {
                Claimed::Filled(e) => {
                    metrics::CACHE_HITS.with_label_values(&["shared"]).inc();
                    lead.finish(Some(e.clone()));
                    Found::Entry(e, CacheStatus::Hit)
                }
                Claimed::Lead(claim) => {
                    lead.hold(claim);
                    Found::Lead(Some(lead))
                }
                // Releases this node's followers too: they had the same wait.
                Claimed::TimedOut => Found::TimedOut,
            },
        },
    }
}

/// A fresh entry for `key`, counted as a hit of its tier.
async fn cached(st: &State, key: &Key) -> Option<Arc<Entry>> {
    counted(st.cache.get(key).await)
}

/// [`cached`] in this node's tiers only (Redis was asked by the first look).
async fn cached_local(st: &State, key: &Key) -> Option<Arc<Entry>> {
    counted(st.cache.get_local(key).await)
}

fn counted(found: Option<(Arc<Entry>, crate::cache::Tier)>) -> Option<Arc<Entry>> {
    let (e, tier) = found?;
    metrics::CACHE_HITS.with_label_values(&[tier.label()]).inc();
    Some(e)
}

/// How long a follower waits for a leader before fetching itself: everything a leader may
/// legitimately take.
pub(super) fn wait_limit(st: &State) -> Duration {
    let l = &st.cfg.limits;
    let o = &st.cfg.origin;
    l.queue_timeout.get()
        + l.transform_timeout.get()
        + o.connect_timeout.get()
        + o.read_timeout.get()
}

/// How one fill runs: which variant, whether it may be stored and shared, and how it answers.
pub(super) struct Fill {
    v: Variant,
    /// The variant's key; `None`: never stored.
    key: Option<Key>,
    /// The flight this request leads; finished with the stored entry (or `None`).
    lead: Option<Leader>,
    /// AVIF time budget (see [`super::avif_budget`]).
    budget: Option<Duration>,
    /// Answer with this short downstream max-age: the WebP stand-in while AVIF is pending.
    fallback: Option<Duration>,
    /// The source, when already fetched.
    source: Option<SourceImage>,
}

impl Fill {
    pub(super) fn new(v: Variant) -> Fill {
        Fill {
            v,
            key: None,
            lead: None,
            budget: None,
            fallback: None,
            source: None,
        }
    }
    pub(super) fn keyed(mut self, key: Key, lead: Option<Leader>) -> Fill {
        self.key = Some(key);
        self.lead = lead;
        self
    }
    fn budget(mut self, budget: Option<Duration>) -> Fill {
        self.budget = budget;
        self
    }
    pub(super) fn stand_in(mut self, max_age: Duration, source: Option<SourceImage>) -> Fill {
        self.fallback = Some(max_age);
        self.source = source;
        self
    }
}

/// What a fill came to. One lives per request, briefly: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Filled {
    /// The answer is written (its status).
    Answered(u16),
    /// The AVIF budget ran out: answer with the WebP stand-in of this variant and source.
    StandIn(Variant, SourceImage),
    /// AVIF is predicted late: answer with the WebP stand-in, then encode AVIF.
    WebpFirst(avif_budget::Race, Variant, SourceImage),
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
) -> Result<Filled> {
    let budget = f.budget;
    let p = match prepare(st, session, req, f, rec).await? {
        Prepared::Ready(p) => p,
        Prepared::Answered(status) => return Ok(Filled::Answered(status)),
    };
    match (budget, p.shared) {
        (Some(budget), Some((key, lead))) => {
            let job = job(st, &p.v, &p.src);
            let late = avif_budget::predicted_late(st, &job);
            let race = avif_budget::Race {
                job,
                parts: p.parts,
                key,
                lead,
                budget,
            };
            if late {
                return Ok(Filled::WebpFirst(race, p.v, p.src));
            }
            avif_budget::run(st, session, race, p.v, p.src, rec).await
        }
        (_, shared) => {
            let p = Ready { shared, ..p };
            Ok(Filled::Answered(finish(st, session, p, rec).await?))
        }
    }
}

/// A source in hand and the variant to make of it.
pub(super) struct Ready {
    v: Variant,
    src: SourceImage,
    parts: Parts,
    /// The key and flight to store under and release; `None`: the answer is not shared.
    shared: Option<(Key, Option<Leader>)>,
    fallback: Option<Duration>,
}

/// What steps 2–4 of one fill came to (one per request, briefly: boxing buys nothing).
#[allow(clippy::large_enum_variant)]
pub(super) enum Prepared {
    /// Transform it.
    Ready(Ready),
    /// Already answered (streamed through, an error, stale, or a bypassing rule).
    Answered(u16),
}

/// Fetches the source, decides again under the rule for its format, and settles whether
/// the result may be stored.
pub(super) async fn prepare(
    st: &State,
    session: &mut Session,
    req: &Request,
    f: Fill,
    rec: &mut Record,
) -> Result<Prepared> {
    let Fill {
        v,
        key,
        lead,
        fallback,
        source,
        ..
    } = f;
    let src = match source {
        Some(s) => s,
        None => match source::fetch_for(st, req, rec).await? {
            Fetched::Image(s) => s,
            // An image streamed as it is (no-transform, too large...) would go without the
            // watermark its variant draws.
            Fetched::Stream(up, _, Some(reason))
                if v.transform.steps.watermark.is_some() && up.header.status.as_u16() < 300 =>
            {
                drop(lead);
                rec.reason = Some(reason.label());
                let msg = super::outcome::withheld_message(reason);
                let status = respond::error(session, 422, &msg).await?;
                return Ok(Prepared::Answered(status));
            }
            other => {
                drop(lead);
                let status = source::not_an_image(st, session, other, key, rec).await?;
                return Ok(Prepared::Answered(status));
            }
        },
    };
    let (host, path) = &req.rule_site;
    let over = req.applied.for_source(host, path, src.format);
    let v = match req
        .ask
        .under_source_rule(over.as_ref(), &v, st.variant_settings())
    {
        AfterFetch::Same => v,
        // A stand-in stays WebP under the new rule too: it is stored under the WebP key.
        AfterFetch::Under(n) if fallback.is_some() => Variant {
            plan: n.plan.avif_as_webp(),
            ..*n
        },
        AfterFetch::Under(n) => *n,
        AfterFetch::Original => {
            drop(lead);
            let e = Parts::of(req, &src, None).original(st, Reason::RuleBypass);
            let status =
                respond::entry(st, session, &e, CacheStatus::Bypass, fallback, rec).await?;
            return Ok(Prepared::Answered(status));
        }
    };
    let limits = st.cache.limits(v.rule_ttl, req.cookie);
    let ttl = match policy::ttl(&src.header.headers, &limits, SystemTime::now()) {
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
    let mut parts = Parts::of(req, &src, ttl);
    parts.watermarked = v.transform.steps.watermark.is_some();
    parts.disposition = req
        .disposition
        .clone()
        .map(|d| (d, req.path_and_query.clone()));
    let shared = match (key, ttl) {
        (Some(key), Some(_)) => Some((key, lead)),
        // Not shareable: release any waiters now so they fetch for themselves.
        _ => None,
    };
    Ok(Prepared::Ready(Ready {
        v,
        src,
        parts,
        shared,
        fallback,
    }))
}

/// Steps 5–7: transforms on the pool, stores a shareable result, releases the flight and
/// answers.
pub(super) async fn finish(
    st: &State,
    session: &mut Session,
    p: Ready,
    rec: &mut Record,
) -> Result<u16> {
    let res = st.pool.run(job(st, &p.v, &p.src)).await;
    rec.transformed(res.queued, res.ran);
    if rejects(st, &res.outcome) {
        // Releases the flight first: its followers fetch for themselves.
        drop(p);
        return respond::overloaded(session, rec).await;
    }
    let (e, storable) = p.parts.entry(st, res);
    let Some((key, lead)) = p.shared else {
        return respond::entry(st, session, &e, CacheStatus::Bypass, p.fallback, rec).await;
    };
    if !storable {
        metrics::CACHE_NOT_STORED
            .with_label_values(&["transient"])
            .inc();
    }
    st.cache
        .store_and_finish(key, e.clone(), p.src.epoch, storable, lead)
        .await;
    let status = if storable {
        CacheStatus::Miss
    } else {
        CacheStatus::Bypass
    };
    respond::entry(st, session, &e, status, p.fallback, rec).await
}

/// Whether this outcome is a full queue that `limits.overload: reject` answers with 503.
pub(super) fn rejects(st: &State, o: &Outcome) -> bool {
    st.cfg.limits.overload == crate::limits::Overload::Reject
        && matches!(o, Outcome::Original(Reason::Overloaded))
}
