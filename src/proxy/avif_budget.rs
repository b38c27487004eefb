//! The AVIF budget (`cache.avif_budget`): a cold AVIF variant whose client let pixgate choose
//! the format runs in a background task; when it is not ready within the budget, the request
//! is answered with the WebP variant (a short downstream max-age, `cache.fallback_max_age`)
//! while AVIF finishes and lands in the cache for the next visitor. Background encodes are
//! bounded by `cache.background` permits; with none free the WebP stand-in answers at once.

use super::outcome::Parts;
use super::respond::{self, CacheStatus};
use super::serve::{find, finish, prepare, wait_limit, Fill, Filled, Found, Prepared, Request};
use super::source::SourceImage;
use super::state::State;
use crate::cache::flight::Leader;
use crate::cache::Key;
use crate::image::pipeline::Job;
use crate::telemetry::{metrics, Record};
use crate::variant::Variant;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::Duration;

/// A budgeted encode: everything its background task owns.
pub(super) struct Race {
    pub(super) job: Job,
    pub(super) parts: Parts,
    pub(super) key: Key,
    pub(super) lead: Option<Leader>,
    pub(super) budget: Duration,
}

/// Whether AVIF for this job is predicted to keep its request waiting more than
/// `cache.avif_margin` longer than WebP would ([`crate::image::cost`]).
pub(super) fn predicted_late(st: &State, job: &Job) -> bool {
    let Some(margin) = st.cfg.cache.avif_margin else {
        return false;
    };
    job.output_pixels()
        .is_some_and(|px| st.pool.costs().avif_late(px, margin.get()))
}

/// What a background encode sends back: the entry and its (queued, ran) times.
type Sent = (Arc<crate::cache::Entry>, (Duration, Duration));

/// Starts the encode in a background task under a `cache.background` permit, which stores it
/// and finishes its flight; the receiver gets the entry. `None` (the flight released) when no
/// permit is free.
fn spawn(
    st: &Arc<State>,
    race: Race,
    tenant: crate::telemetry::tenant::TenantId,
) -> Option<tokio::sync::oneshot::Receiver<Sent>> {
    let Race {
        job,
        parts,
        key,
        lead,
        ..
    } = race;
    let Ok(permit) = st.cache.background.clone().try_acquire_owned() else {
        metrics::CACHE_BACKGROUND
            .with_label_values(&["skipped"])
            .inc();
        drop(lead);
        return None;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let st2 = st.clone();
    tokio::spawn(async move {
        let res = st2.pool.run(job).await;
        let times = (res.queued, res.ran);
        let (e, storable) = parts.entry(&st2, res);
        st2.cache
            .store_and_finish(key, e.clone(), parts.epoch, storable, lead)
            .await;
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
    Some(rx)
}

/// Runs the encode in the background and waits for it up to the budget: the AVIF answer, or
/// [`Filled::StandIn`] when it is late (or no background permit is free).
pub(super) async fn run(
    st: &Arc<State>,
    session: &mut Session,
    race: Race,
    v: Variant,
    src: SourceImage,
    rec: &mut Record,
) -> Result<Filled> {
    let budget = race.budget;
    let Some(rx) = spawn(st, race, rec.tenant) else {
        return Ok(Filled::StandIn(v, src));
    };
    match tokio::time::timeout(budget, rx).await {
        Ok(Ok((e, (queued, ran)))) => {
            rec.queue_time = Some(queued);
            rec.transform_time = Some(ran);
            let status = respond::entry(st, session, &e, CacheStatus::Miss, None, rec).await?;
            Ok(Filled::Answered(status))
        }
        _ => {
            metrics::CACHE_BACKGROUND
                .with_label_values(&["started"])
                .inc();
            Ok(Filled::StandIn(v, src))
        }
    }
}

/// An AVIF predicted late ([`predicted_late`]): the WebP stand-in is made and answered first,
/// with the cores to itself, and the AVIF encode starts in the background after it.
pub(super) async fn webp_first(
    st: &Arc<State>,
    session: &mut Session,
    req: &Request,
    race: Race,
    v: Variant,
    src: SourceImage,
    rec: &mut Record,
) -> Result<u16> {
    metrics::CACHE_BACKGROUND
        .with_label_values(&["predicted"])
        .inc();
    let answered = stand_in(st, session, req, v, Some(src), rec).await;
    // Even when the client has gone: the next visitor gets AVIF.
    drop(spawn(st, race, rec.tenant));
    answered
}

/// The WebP variant as a stand-in while AVIF is pending, with a short downstream max-age:
/// from the cache, another request's flight, or made from `source` (fetched when `None`).
pub(super) async fn stand_in(
    st: &State,
    session: &mut Session,
    req: &Request,
    v: Variant,
    source: Option<SourceImage>,
    rec: &mut Record,
) -> Result<u16> {
    metrics::CACHE_AVIF_FALLBACK.inc();
    let short = st.cfg.cache.fallback_max_age.get();
    let v = Variant {
        plan: v.plan.avif_as_webp(),
        ..v
    };
    let key = req.key(st, &v);
    let lead = match find(st, key, wait_limit(st)).await {
        Found::Entry(e, status) => {
            return respond::entry(st, session, &e, status, Some(short), rec).await;
        }
        Found::Lead(lead) => lead,
        Found::TimedOut => None,
    };
    // A stand-in is never budgeted: it cannot come back here.
    let f = Fill::new(v).keyed(key, lead).stand_in(short, source);
    match prepare(st, session, req, f, rec).await? {
        Prepared::Ready(p) => finish(st, session, p, rec).await,
        Prepared::Answered(status) => Ok(status),
    }
}
