//! A real hyper origin with scripted routes: fixed bodies (whole or chunked, any status and
//! headers), `/echo/*` (reflects method, headers and body), conditional `/etag/*`, and an
//! HTTP/1.0 close-delimited mode. Paths under `/cookie/` answer 403 to a request without a
//! `Cookie` (a session-gated resource). Counts hits per path.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// A scripted response.
#[derive(Clone, Debug)]
pub struct Route {
    /// Status code.
    pub status: u16,
    /// Headers (a Content-Type is not added automatically).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
    /// Send the body as several chunks with no Content-Length (chunked encoding).
    pub chunked: bool,
    /// Wait this long before answering (a slow or hanging origin).
    pub delay: Option<std::time::Duration>,
}

impl Route {
    /// 200 with a Content-Type and a body.
    pub fn ok(content_type: &str, body: impl Into<Bytes>) -> Route {
        Route {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            chunked: false,
            delay: None,
        }
    }
    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Route {
        self.headers.push((k.into(), v.into()));
        self
    }
    /// Sends the body chunked.
    pub fn chunked(mut self) -> Route {
        self.chunked = true;
        self
    }
    /// Answers only after `d`.
    pub fn delayed(mut self, d: std::time::Duration) -> Route {
        self.delay = Some(d);
        self
    }
}

#[derive(Default)]
struct Shared {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
    last_headers: HashMap<String, HeaderMap>,
    last_uri: HashMap<String, String>,
}

/// The running origin (lives as long as the test process; one thread each).
#[derive(Clone)]
pub struct TestOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

/// A body served in 16 KiB frames.
struct Chunks(Vec<Bytes>);
impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(Frame::data(self.0.remove(0)))))
        }
    }
}

fn split(b: &Bytes) -> Vec<Bytes> {
    (0..b.len())
        .step_by(16 * 1024)
        .map(|i| b.slice(i..(i + 16 * 1024).min(b.len())))
        .collect()
}

impl TestOrigin {
    /// Starts an origin serving `routes` (path → response; a path ending in `*` serves every
    /// path under that prefix).
    pub fn start(routes: Vec<(&str, Route)>) -> TestOrigin {
        let shared = Arc::new(Mutex::new(Shared {
            routes: routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
            ..Default::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind origin");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let sh = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = l.accept().await else {
                        continue;
                    };
                    let sh = sh.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| handle(sh.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        TestOrigin { addr, shared }
    }

    /// Replaces (or adds) the route for `path` while the origin runs.
    pub fn set_route(&self, path: &str, r: Route) {
        if let Ok(mut s) = self.shared.lock() {
            s.routes.insert(path.to_string(), r);
        }
    }

    /// Requests seen for `path` (path without query).
    pub fn hits(&self, path: &str) -> usize {
        self.shared
            .lock()
            .map(|s| s.hits.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The full request target (path and query) of the last request for `path`.
    pub fn last_uri(&self, path: &str) -> String {
        self.shared
            .lock()
            .ok()
            .and_then(|s| s.last_uri.get(path).cloned())
            .unwrap_or_default()
    }

    /// Headers of the last request for `path`.
    pub fn last_headers(&self, path: &str) -> HeaderMap {
        self.shared
            .lock()
            .ok()
            .and_then(|s| s.last_headers.get(path).cloned())
            .unwrap_or_default()
    }
}

type Resp = Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

async fn handle(sh: Arc<Mutex<Shared>>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    let route = {
        let mut s = sh.lock().expect("lock");
        *s.hits.entry(path.clone()).or_default() += 1;
        s.last_headers.insert(path.clone(), req.headers().clone());
        s.last_uri.insert(path.clone(), req.uri().to_string());
        // Exact path first, then the longest `prefix/*` route.
        s.routes.get(&path).cloned().or_else(|| {
            s.routes
                .iter()
                .filter_map(|(k, r)| Some((k.strip_suffix('*')?, r)))
                .filter(|(k, _)| path.starts_with(k))
                .max_by_key(|(k, _)| k.len())
                .map(|(_, r)| r.clone())
        })
    };
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if path.starts_with("/echo") {
        let mut text = format!("{} {}\n", parts.method, parts.uri);
        let mut names: Vec<_> = parts
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        names.sort();
        text.push_str(&names.join("\n"));
        text.push_str("\n\n");
        let mut out = text.into_bytes();
        out.extend_from_slice(&body);
        return Ok(Response::builder()
            .header("content-type", "text/plain")
            .header("x-origin", "echo")
            .body(Full(Bytes::from(out)).boxed())
            .expect("response"));
    }
    if let Some(d) = route.as_ref().and_then(|r| r.delay) {
        tokio::time::sleep(d).await;
    }
    if path.starts_with("/cookie/") && !parts.headers.contains_key("cookie") {
        // A cookie-authenticated resource: without a session, forbidden.
        return Ok(Response::builder()
            .status(403)
            .body(Full(Bytes::from_static(b"log in first")).boxed())
            .expect("403"));
    }
    let Some(r) = route else {
        return Ok(Response::builder()
            .status(404)
            .body(Full(Bytes::from_static(b"nope")).boxed())
            .expect("404"));
    };
    if let Some(etag) = r
        .headers
        .iter()
        .find(|(k, _)| k == "etag")
        .map(|(_, v)| v.clone())
    {
        if parts
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
        {
            return Ok(Response::builder()
                .status(304)
                .header("etag", etag)
                .body(Full(Bytes::new()).boxed())
                .expect("304"));
        }
    }
    let mut b = Response::builder().status(StatusCode::from_u16(r.status).expect("status"));
    for (k, v) in &r.headers {
        b = b.header(k, v);
    }
    let body = if r.chunked {
        Chunks(split(&r.body)).boxed()
    } else {
        Full(r.body.clone()).boxed()
    };
    Ok(b.body(body).expect("response"))
}

/// A whole body (`http_body_util::Full` with a shorter name).
#[allow(non_snake_case)]
fn Full(b: Bytes) -> http_body_util::Full<Bytes> {
    http_body_util::Full::new(b)
}
