//! The image path's two ways in. pingora writes a response header before it sees the body, so
//! a body filter could not change Content-Type or fall back to the original after a failed or
//! larger transform; this path therefore answers from `request_filter`:
//!
//! 1. the request becomes values ([`Ask`]: the URL's options, client hints, Accept, route);
//!    the proxy path reads its query, the URL API its signed imgproxy-style path;
//! 2. [`variant::decide`] picks the variant under the matched rule (or refuses);
//! 3. [`serve`] answers it: cache, flight, fetch, transform, store, respond.
//!
//! Every refusal on the way is a [`Refused`], returned with `?` and answered once.

use super::headers;
use super::refused::{Kind, Refused};
use super::serve::{serve, Request};
use super::state::State;
use crate::request::accept::Accept;
use crate::request::hints::Hints;
use crate::request::imgproxy;
use crate::request::options::{OptionError, Options};
use crate::rules::Applied;
use crate::security::ssrf::SourceUrl;
use crate::telemetry::Record;
use crate::variant::{self, Ask, Route};
use http::header;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use std::sync::Arc;
use std::time::SystemTime;

/// A handler's result: refused before any answer was written (`Err`), or the status of the
/// answer written (or the I/O error that stopped it).
type Handled = std::result::Result<Result<u16>, Refused>;

/// Answers a candidate request on the proxy path. Returns the status written.
pub async fn handle(
    st: &Arc<State>,
    session: &mut Session,
    applied: Applied,
    rec: &mut Record,
) -> Result<u16> {
    match proxied(st, session, applied, rec).await {
        Ok(answered) => answered,
        Err(r) => r.answer(session, rec).await,
    }
}

async fn proxied(
    st: &Arc<State>,
    session: &mut Session,
    applied: Applied,
    rec: &mut Record,
) -> Handled {
    let (options, origin_query) = url_options(st, session.req_header(), &applied)?;
    let t = &st.cfg.transform;
    let ask = Ask {
        options,
        hints: t
            .client_hints
            .then(|| Hints::from_headers(&session.req_header().headers)),
        accept: accept_of(session),
        route: Route::Proxy,
    };
    let v = variant::decide(&ask, &applied, st.variant_settings())?;
    let req = match origin_request(st, session, origin_query, applied, ask) {
        Ok(req) => req,
        Err(e) => return Ok(Err(e)),
    };
    Ok(serve(st, session, &req, v, rec).await)
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

/// The transform options of the URL's query, and the path and query the origin should see
/// instead (`None`: leave the URL as it is).
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

/// The request to the origin: the client's, without pixgate's options and the client's
/// validators (they belong to the variant it holds, evaluated against the variant's ETag),
/// with the origin's Host and the forwarding headers.
fn origin_request(
    st: &State,
    session: &Session,
    origin_path: Option<String>,
    applied: Applied,
    ask: Ask,
) -> Result<Request> {
    let client = session.req_header();
    let rule_site = (
        headers::host_of(client).to_string(),
        client.uri.path().to_string(),
    );
    let mut req = client.clone();
    if let Some(pq) = origin_path {
        let uri = http::Uri::builder()
            .path_and_query(pq)
            .build()
            .map_err(|_| pingora::Error::new_str("invalid request path"))?;
        req.set_uri(uri);
    }
    req.remove_header(&header::IF_NONE_MATCH);
    req.remove_header(&header::IF_MODIFIED_SINCE);
    headers::to_origin(&mut req, &st.origin, headers::peer_ip(session))?;
    let host = headers::host_of(&req).to_string();
    let path_and_query = req
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    // A shared cache must not reuse answers to authenticated requests (RFC 9111 §3.5).
    let cacheable = st.cache.enabled()
        && applied.scope(st.cfg.cache.scope).images()
        && !client.headers.contains_key(header::AUTHORIZATION);
    let cookie = req.headers.contains_key(header::COOKIE);
    Ok(Request {
        origin_req: req,
        host,
        path_and_query,
        cacheable,
        cookie,
        origin_id: st.cfg.origin.url.clone(),
        remote: None,
        applied,
        rule_site,
        ask,
        disposition: None,
    })
}

/// Answers a URL API request (`{prefix}/{signature}/{options}/...`): imgproxy's grammar,
/// signature, expiry, then the same decision, cache and pipeline as the proxy path, with the
/// source fetched behind the SSRF guard.
pub async fn handle_api(
    st: &Arc<State>,
    session: &mut Session,
    rest: &str,
    rec: &mut Record,
) -> Result<u16> {
    match api(st, session, rest, rec).await {
        Ok(answered) => answered,
        Err(r) => r.answer(session, rec).await,
    }
}

async fn api(st: &Arc<State>, session: &mut Session, rest: &str, rec: &mut Record) -> Handled {
    let (api, source, key_tenant) = verify(st, rest)?;
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
        return Ok(super::respond::too_many(session, wait, rec).await);
    }
    let signed = !matches!(api.signature.as_str(), "insecure" | "unsafe" | "_");
    let ask = Ask {
        options: api.options.capped(st.cfg.transform.max_dpr),
        hints: None,
        accept: accept_of(session),
        route: Route::Api { signed },
    };
    let mut v = variant::decide(&ask, &applied, st.variant_settings())?;
    if let Some(d) = &api.disposition {
        v.key_options.push_str(&d.key_part());
    }
    let req = Request {
        origin_req: session.req_header().clone(),
        host: source.host.clone(),
        path_and_query: source.path_and_query.clone(),
        cacheable: st.cache.enabled() && applied.scope(st.cfg.cache.scope).images(),
        // The source is fetched without the client's headers.
        cookie: false,
        origin_id: format!("remote:{}", source.origin()),
        rule_site: (source.host.clone(), source_path),
        remote: Some(source),
        applied,
        ask,
        disposition: api.disposition,
    };
    Ok(serve(st, session, &req, v, rec).await)
}

/// The URL API's checks before any rule: the path parses, its signature verifies (and names
/// the signing key's tenant), it has not expired, and its source is a URL the allowlist
/// admits.
fn verify<'a>(
    st: &'a State,
    rest: &str,
) -> std::result::Result<(imgproxy::ApiUrl, SourceUrl, Option<&'a String>), Refused> {
    // Presets in URL API paths come from the rule files' file-level presets.
    let global = st.rules.as_ref().map(|r| r.current());
    let presets = |name: &str| {
        global
            .as_ref()
            .and_then(|g| g.preset(None, name))
            .map(str::to_string)
    };
    let api = imgproxy::parse(rest, &presets)?;
    let key = st
        .signer
        .as_ref()
        .and_then(|s| s.check(&api.signature, &api.signed))
        .ok_or_else(|| Refused::new(Kind::Signature, 403, "invalid signature"))?;
    let key_tenant = key.and_then(|i| st.cfg.url_api.tenants.get(i));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if api.expires.is_some_and(|e| now > e) {
        return Err(Refused::new(Kind::Expired, 404, "this URL has expired"));
    }
    let source = SourceUrl::parse(&api.source)
        .map_err(|e| Refused::new(Kind::BadSource, 400, format!("parameter `source`: {e}")))?;
    let guard =
        (st.guard.as_ref()).ok_or_else(|| Refused::new(Kind::ApiOff, 404, "the URL API is off"))?;
    if !guard.allows(&source) {
        let msg = format!("source `{}` is not in url_api.sources", source.origin());
        return Err(Refused::new(Kind::NotAllowed, 403, msg));
    }
    Ok((api, source, key_tenant))
}
