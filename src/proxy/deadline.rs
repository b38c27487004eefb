//! A total deadline on every request header a client sends, against slowloris.
//!
//! pingora times out each *read* of a request header (60 s), not the whole header: a client
//! that sends one byte every 59 s holds its connection for ever. pingora has no hook between
//! accepting a connection and parsing its header, so the deadline lives in the transport:
//! [`Guarded`] wraps the proxy's [`ServerApp`] and gives pingora each accepted stream inside a
//! [`HeaderDeadline`], which watches the bytes it passes up for the blank line that ends a
//! header.
//!
//! The clock of a header starts when the connection is accepted (first request) or when the
//! first byte of the next request arrives on a kept-alive connection. Past
//! `limits.header_timeout` with the header still incomplete, the read fails with `TimedOut`
//! and pingora closes the connection. Writes to slow readers are bounded separately, per
//! write, by `limits.client_write_timeout` (pingora's own write timeout, set per request in
//! the service).
//!
//! The idle time between requests is not timed here but by pingora's keep-alive timeout,
//! which the service sets to `limits.keepalive_timeout` on every request: pingora's wait for
//! the next request then ends quietly and closes the connection. A timer here could not tell
//! that wait from the reads pingora makes while a response streams (to notice a client that
//! leaves), and failing one of those would cut the response.
//!
//! [`Guarded`] also applies the connection caps of [`super::conns`] at accept.
//!
//! HTTP/2 connections (ALPN `h2`, or the h2c preface on a plain listener with `server.h2c`)
//! are not wrapped: their frames are binary, so the blank line the deadline watches for would
//! never come. HTTP/2 bounds a connection by its own means (pingora's h2 server: stream and
//! header-list limits, the idle timeout).

use super::coalesce::WriteBuf;
use super::conns::ConnLimits;
use crate::telemetry::metrics;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request header: the deadline runs.
    Header,
    /// The header is complete (a body may follow): no deadline.
    Body,
    /// A response was written; the next byte read starts the next header's deadline.
    Idle,
}

/// Finds the end of an HTTP/1 header across reads: the empty line (`\n\n` or `\n\r\n`, which
/// covers `\r\n\r\n`, the only form browsers send). `window` holds the last bytes seen.
fn ends_header(window: &mut u32, bytes: &[u8]) -> bool {
    for &b in bytes {
        *window = (*window << 8) | u32::from(b);
        if *window & 0xFFFF == 0x0A0A || *window & 0xFF_FFFF == 0x0A_0D0A {
            return true;
        }
    }
    false
}

/// An accepted stream with a header deadline (see the module docs).
///
/// The timer is armed only when a header read would wait: a request whose header arrives in
/// one read (nearly all of them) never touches tokio's timer wheel, so the cached-hit path
/// pays a clock read and a scan of the bytes, not a timer registration per request.
pub struct HeaderDeadline {
    inner: Stream,
    /// The connection's write buffer (pingora's own is zero under it: `crate::server`).
    out: WriteBuf,
    limit: Duration,
    phase: Phase,
    window: u32,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HeaderDeadline {
    /// Wraps a just-accepted stream: the first header's clock starts now. Writes gather in
    /// a buffer of `write_buffer` bytes ([`WriteBuf`]).
    pub fn new(inner: Stream, limit: Duration, write_buffer: usize) -> HeaderDeadline {
        HeaderDeadline {
            inner,
            out: WriteBuf::new(write_buffer),
            limit,
            phase: Phase::Header,
            window: 0,
            deadline: Instant::now() + limit,
            sleep: None,
        }
    }

    /// A response is going out: the next bytes read start the next request's header.
    fn wrote(&mut self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) && self.phase == Phase::Body {
            self.phase = Phase::Idle;
        }
    }

    fn timed_out() -> Poll<io::Result<()>> {
        metrics::HEADER_TIMEOUTS.inc();
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request header not complete within limits.header_timeout",
        )))
    }
}

impl std::fmt::Debug for HeaderDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDeadline")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .field("phase", &self.phase)
            .finish()
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Header && Instant::now() >= this.deadline {
            return HeaderDeadline::timed_out();
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if !new.is_empty() {
                    if this.phase == Phase::Idle {
                        this.phase = Phase::Header;
                        this.window = 0;
                        this.deadline = Instant::now() + this.limit;
                    }
                    if this.phase == Phase::Header && ends_header(&mut this.window, new) {
                        this.phase = Phase::Body;
                    }
                }
            }
            Poll::Pending if this.phase == Phase::Header => {
                // The client is making us wait mid-header: wake at the deadline even if it
                // sends nothing more.
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return HeaderDeadline::timed_out();
                }
            }
            _ => {}
        }
        r
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.out.poll_flush(Pin::new(&mut this.inner), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.out.poll_flush(Pin::new(&mut this.inner), cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.out.poll_write(Pin::new(&mut this.inner), cx, bufs);
        this.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}

#[async_trait]
impl Shutdown for HeaderDeadline {
    async fn shutdown(&mut self) {
        // What is gathered goes out first; a failure here is the peer's, as in pingora.
        let flushed = std::future::poll_fn(|cx| self.out.poll_flush(Pin::new(&mut self.inner), cx));
        let _ = flushed.await;
        self.inner.shutdown().await
    }
}

impl UniqueID for HeaderDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeaderDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeaderDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeaderDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HeaderDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for HeaderDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// A [`ServerApp`] that admits every accepted stream against the connection caps
/// ([`ConnLimits`]) and hands it to `app` inside a [`HeaderDeadline`].
pub struct Guarded<A> {
    app: Arc<A>,
    limit: Duration,
    conns: Arc<ConnLimits>,
    h2c: bool,
    write_buffer: usize,
}

impl<A> Guarded<A> {
    /// Wraps `app` with a header deadline of `limit` and the connection caps `conns`; `h2c`:
    /// plain connections may open with the HTTP/2 preface; HTTP/1 writes gather in a
    /// [`WriteBuf`] of `write_buffer` bytes.
    pub fn new(
        app: A,
        limit: Duration,
        conns: Arc<ConnLimits>,
        h2c: bool,
        write_buffer: usize,
    ) -> Guarded<A> {
        Guarded {
            app: Arc::new(app),
            limit,
            conns,
            h2c,
            write_buffer,
        }
    }
}

/// The first bytes of an HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `stream` speaks HTTP/2: ALPN `h2`, or (with h2c allowed, on a plain stream) the
/// preface in its first bytes, peeked without consuming them within `limit` (a client that
/// sends nothing is then treated as HTTP/1, and the header deadline closes it).
async fn speaks_h2(stream: &mut Stream, h2c: bool, limit: Duration) -> bool {
    if stream.selected_alpn_proto() == Some(ALPN::H2) {
        return true;
    }
    if !h2c || stream.get_ssl_digest().is_some() {
        return false;
    }
    let mut buf = [0u8; 24];
    let peeked = tokio::time::timeout(limit, stream.try_peek(&mut buf)).await;
    matches!(peeked, Ok(Ok(true))) && &buf == H2_PREFACE
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        // Held until the connection ends: every kept-alive request runs inside this call.
        let _permit = match self.conns.admit(peer) {
            Ok(p) => p,
            Err(cap) => {
                // Dropping the stream closes the connection before a byte is read.
                metrics::CONNECTIONS_REFUSED
                    .with_label_values(&[cap.label()])
                    .inc();
                return None;
            }
        };
        let mut stream = stream;
        if speaks_h2(&mut stream, self.h2c, self.limit).await {
            return self.app.process_new(stream, shutdown).await;
        }
        let guarded: Stream = Box::new(HeaderDeadline::new(stream, self.limit, self.write_buffer));
        self.app.process_new(guarded, shutdown).await
    }

    async fn cleanup(&self) {
        self.app.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn header_end_is_found_across_reads() {
        let mut w = 0;
        assert!(!ends_header(&mut w, b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!ends_header(&mut w, b"\r"));
        assert!(ends_header(&mut w, b"\n"));
        let mut w = 0;
        assert!(ends_header(&mut w, b"GET / HTTP/1.0\n\n"));
        let mut w = 0;
        assert!(!ends_header(&mut w, b"GET / HTTP/1.1\r\nA: b\r\n"));
        assert!(!ends_header(&mut w, b"X: \r\n y"));
    }

    /// A slow client over a real duplex pipe: the read fails at the deadline even though a
    /// byte arrives more often than any per-read timeout would notice.
    #[tokio::test]
    async fn a_trickled_header_times_out_and_a_whole_one_does_not() {
        let limit = Duration::from_millis(400);
        let (mut client, server) = tokio::io::duplex(1024);
        let mut s = HeaderDeadline::new(Box::new(server), limit, 0);
        let trickle = tokio::spawn(async move {
            for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890" {
                if client.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut buf = vec![0u8; 256];
        let t0 = Instant::now();
        let err = loop {
            match s.read(&mut buf).await {
                Ok(0) => panic!("the client closed first"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let took = t0.elapsed();
        assert!(took >= limit && took < limit * 2, "{took:?}");
        trickle.abort();

        // A complete header disarms it; a response re-arms it for the next request only
        // once that request's first byte arrives.
        let (mut client, server) = tokio::io::duplex(1024);
        let mut s = HeaderDeadline::new(Box::new(server), limit, 0);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap_or_default();
        let n = s.read(&mut buf).await.unwrap_or(0);
        assert!(n > 0);
        tokio::time::sleep(limit + Duration::from_millis(200)).await;
        assert!(s
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .is_ok());
        tokio::time::sleep(limit + Duration::from_millis(200)).await;
        client
            .write_all(b"GET /2 HTTP/1.1\r\n")
            .await
            .unwrap_or_default();
        assert!(
            s.read(&mut buf).await.is_ok_and(|n| n > 0),
            "idle time is not counted"
        );
        let t1 = Instant::now();
        let e = s.read(&mut buf).await.err().map(|e| e.kind());
        assert_eq!(e, Some(io::ErrorKind::TimedOut));
        let took = t1.elapsed();
        assert!(took < limit * 2, "{took:?}");
    }
}
