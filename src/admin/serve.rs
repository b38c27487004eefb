//! The admin listener's connection loop: read a request, answer it, keep the connection for
//! the next one.
//!
//! This is pingora's flow for a `ServeHttp` app (`pingora-core` `apps/http_app.rs`), with
//! one difference that is the reason it exists: pingora logs a request it cannot read at
//! ERROR with the raw bytes it received ("HTTP server fails to read from downstream: ...
//! buf: ...") and failed writes with the request's path and Host. Admin requests carry the
//! purge bearer token and the paths being erased. Here a failure is logged with its kind
//! only, at DEBUG: the request's bytes, path and headers are never logged.

use super::Admin;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::Arc;

/// Logs a failed step of an admin exchange by its error kind alone.
fn failed(step: &'static str, e: &pingora::Error) {
    tracing::debug!(kind = e.etype().as_str(), "admin listener: {step} failed");
}

#[async_trait]
impl HttpServerApp for Admin {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match http.read_request().await {
            Ok(true) => {}
            // The client closed (or the keep-alive wait ended) before a request.
            Ok(false) => return None,
            Err(e) => {
                failed("reading a request", &e);
                return None;
            }
        }
        // As on the proxy listener: no reuse once shutting down, the configured idle wait
        // (pingora's glue: 60 s), and no keep-alive the request did not ask for (pingora's
        // glue turned it on for HTTP/1.0 too).
        if *shutdown.borrow() {
            http.set_keepalive(None);
        } else if http.get_keepalive().is_some() {
            http.set_keepalive(Some(self.keepalive));
        }
        let (parts, body) = self.response(&mut http).await.into_parts();
        let header: ResponseHeader = parts.into();
        if let Err(e) = http.write_response_header(Box::new(header)).await {
            failed("writing a response header", &e);
            return None;
        }
        if !body.is_empty() {
            if let Err(e) = http.write_response_body(body.into(), true).await {
                failed("writing a response body", &e);
                return None;
            }
        }
        let settings = HttpPersistentSettings::for_session(&http);
        match http.finish().await {
            Ok(reusable) => reusable.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
            Err(e) => {
                failed("finishing a response", &e);
                None
            }
        }
    }
}
