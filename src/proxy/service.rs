//! The `ProxyHttp` implementation: thin. Candidates for the image path are answered in
//! `request_filter`; everything else is proxied by pingora, streaming, with `Via` and
//! `X-Forwarded-For` added.

use super::candidate;
use super::headers;
use super::image_path;
use super::refused::{Kind, Refused};
use super::respond;
use super::shield;
use super::state::State;
use crate::path::{Form, PathError};
use crate::telemetry::{metrics, Done, Record};
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::Result;
use std::sync::Arc;

/// The pixgate proxy service.
pub struct Pixgate {
    state: Arc<State>,
}

impl Pixgate {
    /// Wraps shared state.
    pub fn new(state: Arc<State>) -> Pixgate {
        Pixgate { state }
    }
}

impl Pixgate {
    /// The part of the path after the URL API prefix, when this request is for the API.
    fn api_path(&self, session: &Session) -> Option<String> {
        let api = &self.state.cfg.url_api;
        if !api.enabled {
            return None;
        }
        let path = session.req_header().uri.path();
        let prefix = api.prefix.trim_end_matches('/');
        let rest = path.strip_prefix(prefix)?;
        rest.starts_with('/').then(|| rest.to_string())
    }
}

/// The body of the 403 that replaces an SVG under `images.svg: reject`.
const SVG_REFUSED: &[u8] = b"SVG is not served here\n";

/// Per-request state: its telemetry record.
#[derive(Debug)]
pub struct Ctx {
    rec: Record,
    /// The origin's SVG is being replaced by a 403 (`images.svg: reject`).
    svg_refused: bool,
    /// When the proxy route's upstream request was sent.
    sent: Option<std::time::Instant>,
    /// A shield miss whose response may be stored (`cache.scope: all`).
    shield: Option<shield::Miss>,
    /// A storable shield response whose body is being collected.
    pending: Option<shield::Pending>,
}

#[async_trait]
impl ProxyHttp for Pixgate {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            rec: Record::start(self.state.telemetry.per_request),
            sent: None,
            shield: None,
            pending: None,
            svg_refused: false,
        }
    }

    async fn upstream_peer(&self, _s: &mut Session, _ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.state.origin.peer()))
    }

    /// The keep-alive timeout, in the first of the request's phases so that every answer
    /// after it (a 429, the image path, the proxy path) leaves a connection that waits at
    /// most `limits.keepalive_timeout` for its next request; pingora's default for HTTP/1.1
    /// is to wait for ever. Only a connection that is kept alive at all is touched: after an
    /// HTTP/1.0 or `Connection: close` request it still closes.
    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(self.state.cfg.limits.keepalive_secs()));
        }
        // HTTP/2 names the host in `:authority`, usually without a Host header: give it one,
        // so rules, keys, the origin's Host and the access log see the same host as for
        // HTTP/1.1.
        let req = session.req_header();
        if !req.headers.contains_key(http::header::HOST) {
            if let Some(a) = req.uri.authority().map(|a| a.as_str().to_string()) {
                session
                    .req_header_mut()
                    .insert_header(http::header::HOST, a)?;
            }
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        // A client that stops reading cannot pin a response (and its buffers) for ever.
        session.set_write_timeout(Some(self.state.cfg.limits.client_write_timeout.get()));
        let client = crate::request::client::client_ip(
            headers::peer_ip(session),
            &session.req_header().headers,
            &self.state.limits.trusted,
        );
        ctx.rec.client = client;
        if let Err(wait) = self.state.limits.check_ip(client) {
            respond::too_many(session, wait, &mut ctx.rec).await?;
            return Ok(true);
        }
        // A URL API path is a signed string holding a URL (`/plain/http://...`), not a file
        // path: it is verified as sent. Every other path is put in its normal form once, and
        // rules, tenant, cache key, purge, metering and the origin all see that form.
        let api = match self.api_path(session) {
            Some(rest) => Some(rest),
            None => {
                if let Err(e) = normalize_path(session.req_header_mut(), self.state.path_form()) {
                    let r = Refused::new(Kind::BadPath, 400, e.to_string());
                    r.answer(session, &mut ctx.rec).await?;
                    return Ok(true);
                }
                // `//img/...` is the API too: its prefix cannot be walked around.
                self.api_path(session)
            }
        };
        if let Some(rest) = api {
            ctx.rec.route = "api";
            // Boxed, as the image path below: its future is large, and keeping it out of this
            // one spares every shield hit the copies of that state.
            Box::pin(image_path::handle_api(
                &self.state,
                session,
                &rest,
                &mut ctx.rec,
            ))
            .await?;
            return Ok(true);
        }
        // The rule for this host and path assigns the tenant of every request (passthrough
        // included), so usage and tenant limits cover the whole site.
        let req = session.req_header();
        let applied = self.state.applied(headers::host_of(req), req.uri.path());
        ctx.rec.tenant = self.state.telemetry.tenants.id(applied.tenant());
        if let Err(wait) = self.state.limits.check_tenant(ctx.rec.tenant) {
            respond::too_many(session, wait, &mut ctx.rec).await?;
            return Ok(true);
        }
        // Not an image, or an image the rule passes through untouched: the shield's.
        if applied.bypass()
            || !candidate::is_candidate(session.req_header(), self.state.cfg.images.detect)
        {
            let scope = applied.scope(self.state.cfg.cache.scope);
            let ttl = applied.ttl();
            return match shield::lookup(&self.state, session, scope, ttl, &mut ctx.rec).await? {
                Some(Ok(_answered)) => Ok(true),
                Some(Err(miss)) => {
                    ctx.shield = Some(miss);
                    Ok(false)
                }
                None => Ok(false),
            };
        }
        ctx.rec.route = "image";
        Box::pin(image_path::handle(
            &self.state,
            session,
            applied,
            &mut ctx.rec,
        ))
        .await?;
        Ok(true)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.sent = Some(std::time::Instant::now());
        self.state.origin.set_host(req)?;
        headers::forward_request(req, headers::peer_ip(session))
    }

    async fn upstream_response_filter(
        &self,
        _s: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if resp.status.is_informational() {
            // A 103 Early Hints (or 102) goes to the client as it is; the final response
            // follows and is the one timed, shaped and stored.
            return Ok(());
        }
        self.state.telemetry.origin.ok();
        if let Some(t) = ctx.sent {
            let d = t.elapsed();
            ctx.rec.add_origin_time(d);
            metrics::ORIGIN_SECONDS
                .with_label_values(&["proxy"])
                .observe(d.as_secs_f64());
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _s: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if ctx.svg_refused {
            // The SVG's bytes are dropped; the refusal's text goes out once, at the end.
            *body = end.then(|| bytes::Bytes::from_static(SVG_REFUSED));
        }
        if let Some(p) = ctx.pending.as_mut() {
            if !p.on_body(&self.state, body.as_ref(), end) || end {
                ctx.pending = None;
            }
        }
        Ok(None)
    }

    fn upstream_response_body_filter(
        &self,
        _s: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(b) = body {
            ctx.rec.origin_bytes += b.len() as u64;
        }
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if resp.status.is_informational() {
            // Interim responses (103 Early Hints) are forwarded untouched and never stored.
            return Ok(());
        }
        if self.state.cfg.images.svg == crate::config::SvgPolicy::Reject && headers::is_svg(resp) {
            // The header is not sent yet: turn it into a 403 whose body replaces the SVG's.
            let mut refused = ResponseHeader::build(403, Some(4))?;
            refused.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
            refused.insert_header(http::header::CONTENT_LENGTH, SVG_REFUSED.len().to_string())?;
            refused.insert_header(http::header::CACHE_CONTROL, "no-store")?;
            headers::inert(&mut refused)?;
            *resp = refused;
            ctx.svg_refused = true;
            ctx.rec.reason = Some("svg_rejected");
        }
        if let Some(miss) = ctx.shield.take() {
            if !ctx.svg_refused {
                ctx.pending = miss.on_response(&self.state, session.req_header(), resp)?;
            }
        }
        shield::invalidate(&self.state, session.req_header(), resp).await;
        shield::shape(&self.state, resp)
    }

    /// pingora's answer when proxying fails before a response was sent, except that an
    /// origin that timed out gets `504 Gateway Timeout` (pingora says 502 for every upstream
    /// error).
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &pingora::Error,
        ctx: &mut Ctx,
    ) -> pingora::proxy::FailToProxy {
        use pingora::{ErrorSource as S, ErrorType as T};
        let code = match (e.etype(), e.esource()) {
            (T::HTTPStatus(code), _) => *code,
            (T::ConnectTimedout | T::ReadTimedout | T::WriteTimedout, S::Upstream) => 504,
            (_, S::Upstream) => 502,
            (T::WriteError | T::ReadError | T::ConnectionClosed, S::Downstream) => 0,
            (_, S::Downstream) => 400,
            _ => 500,
        };
        if code > 0 && session.response_written().is_none() {
            // A shield miss with a stale entry inside its stale-if-error window: that answers.
            if let Some(miss) = &ctx.shield {
                if let Some(status) =
                    shield::stand_in(&self.state, session, miss, &mut ctx.rec).await
                {
                    return pingora::proxy::FailToProxy {
                        error_code: status,
                        can_reuse_downstream: false,
                    };
                }
            }
            let _ = session.respond_error(code).await;
        }
        pingora::proxy::FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// pingora puts this in its own error messages (the diagnostic log): the path only as
    /// `log.access.paths` allows, never the Host or client address.
    fn request_summary(&self, session: &Session, ctx: &Ctx) -> String {
        let req = session.req_header();
        let (host, path) = host_and_path(req);
        format!(
            "{} ({}) route {}",
            req.method,
            self.state.telemetry.access.describe_path(host, path),
            ctx.rec.route
        )
    }

    async fn logging(&self, session: &mut Session, e: Option<&pingora::Error>, ctx: &mut Ctx) {
        if let Some(e) = e.filter(|e| e.esource() == &pingora::ErrorSource::Upstream) {
            let kind = origin_error_kind(e);
            self.state.telemetry.origin.failed();
            metrics::ORIGIN_ERRORS.with_label_values(&[kind]).inc();
            ctx.rec.reason = Some(kind);
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        let (host, path) = host_and_path(req);
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let done = Done {
            method: req.method.as_str(),
            status,
            bytes_out: session.body_bytes_sent() as u64,
            client,
            host,
            path,
        };
        ctx.rec.finish(&self.state.telemetry, done);
    }
}

/// Rewrites the request target to its normal form (`crate::path`): the path normalised, the
/// query kept with only unsafe bytes escaped. `OPTIONS *` stays; an absolute-form target
/// (`GET http://host/x`) becomes its path; anything else that is not a path is refused, so
/// the origin never receives a target other than the one the rules judged.
fn normalize_path(req: &mut RequestHeader, form: Form) -> std::result::Result<(), PathError> {
    if req.raw_path() == b"*" || crate::path::is_normal_target(req.raw_path(), form) {
        return Ok(());
    }
    let raw = req.raw_path().to_vec();
    let target = if raw.starts_with(b"/") {
        raw.clone()
    } else if req.uri.scheme().is_some() {
        req.uri
            .path_and_query()
            .map_or_else(|| b"/".to_vec(), |p| p.as_str().as_bytes().to_vec())
    } else {
        return Err(PathError::NotAbsolute);
    };
    let normal = crate::path::normalize_target(&target, form)?;
    if normal.as_bytes() == raw.as_slice() {
        return Ok(());
    }
    let pq: http::uri::PathAndQuery = normal.parse().map_err(|_| PathError::BadEscape)?;
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(pq);
    let uri = http::Uri::from_parts(parts).map_err(|_| PathError::BadEscape)?;
    req.set_uri(uri);
    Ok(())
}

/// The Host header (empty when absent) and the path with its query, as the client sent them.
fn host_and_path(req: &RequestHeader) -> (&str, &str) {
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (host, req.uri.path_and_query().map_or("/", |p| p.as_str()))
}

/// The `kind` label of a proxy-route upstream failure.
fn origin_error_kind(e: &pingora::Error) -> &'static str {
    use pingora::ErrorType as T;
    match e.etype() {
        T::ConnectTimedout => "connect_timeout",
        T::ConnectRefused | T::ConnectNoRoute | T::ConnectError | T::SocketError => "connect",
        T::ReadTimedout | T::WriteTimedout => "timeout",
        T::ConnectionClosed | T::ReadError | T::WriteError => "io",
        T::InvalidHTTPHeader | T::H1Error | T::H2Error | T::InvalidH2 => "protocol",
        _ => "other",
    }
}
