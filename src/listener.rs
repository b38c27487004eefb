//! pixgate's own HTTP/1 listeners (admin, upload): read a request, answer it with one complete
//! response, keep the connection for the next one.
//!
//! This is pingora's flow for a `ServeHttp` app (`pingora-core` `apps/http_app.rs`), with
//! one difference that is the reason it exists: pingora logs a request it cannot read at
//! ERROR with the raw bytes it received ("HTTP server fails to read from downstream: ...
//! buf: ...") and failed writes with the request's path and Host. Admin requests carry the
//! purge bearer token and the paths being erased; upload requests carry private link tokens
//! and file names. Here a failure is logged with its kind only, at DEBUG: the request's bytes,
//! path and headers are never logged.

use async_trait::async_trait;
use http::Response;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::Arc;

/// An application served by [`Listener`]: one complete response per request.
#[async_trait]
pub trait Respond: Send + Sync + 'static {
    /// The listener's name in logs (`admin`, `upload`).
    const NAME: &'static str;

    /// The answer to the request `http` has read (the body is the app's to read).
    async fn response(&self, http: &mut ServerSession) -> Response<Vec<u8>>;

    /// Seconds a kept-alive connection waits for its next request.
    fn keepalive(&self) -> u64;
}

/// A shared app (the server keeps the upload service for its sweeper and maintenance too).
#[async_trait]
impl<T: Respond> Respond for Arc<T> {
    const NAME: &'static str = T::NAME;

    async fn response(&self, http: &mut ServerSession) -> Response<Vec<u8>> {
        self.as_ref().response(http).await
    }

    fn keepalive(&self) -> u64 {
        self.as_ref().keepalive()
    }
}

/// A pingora app serving `T`.
pub struct Listener<T>(pub T);

/// Logs a failed step of an exchange by its error kind alone.
fn failed(app: &'static str, step: &'static str, e: &pingora::Error) {
    tracing::debug!(kind = e.etype().as_str(), "{app} listener: {step} failed");
}

#[async_trait]
impl<T: Respond> HttpServerApp for Listener<T> {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let name = T::NAME;
        match http.read_request().await {
            Ok(true) => {}
            // The client closed (or the keep-alive wait ended) before a request.
            Ok(false) => return None,
            Err(e) => {
                failed(name, "reading a request", &e);
                return None;
            }
        }
        // As on the proxy listener: no reuse once shutting down, the configured idle wait
        // (pingora's glue: 60 s), and no keep-alive the request did not ask for (pingora's
        // glue turned it on for HTTP/1.0 too).
        if *shutdown.borrow() {
            http.set_keepalive(None);
        } else if http.get_keepalive().is_some() {
            http.set_keepalive(Some(self.0.keepalive()));
        }
        let (parts, body) = self.0.response(&mut http).await.into_parts();
        let header: ResponseHeader = parts.into();
        if let Err(e) = http.write_response_header(Box::new(header)).await {
            failed(name, "writing a response header", &e);
            return None;
        }
        if !body.is_empty() {
            if let Err(e) = http.write_response_body(body.into(), true).await {
                failed(name, "writing a response body", &e);
                return None;
            }
        }
        let settings = HttpPersistentSettings::for_session(&http);
        match http.finish().await {
            Ok(reusable) => reusable.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
            Err(e) => {
                failed(name, "finishing a response", &e);
                None
            }
        }
    }
}
