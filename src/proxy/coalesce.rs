//! A connection's write buffer that sends what it holds *together with* the write that
//! overflows it, in one `writev`.
//!
//! pingora writes a response as a header and then its body. Below a `tokio::io::BufWriter`
//! (pingora's per-connection write buffer), a body larger than the buffer's free space first
//! flushes the header on its own and then writes the body: two `sendto` calls, two TCP
//! segments, two wake-ups of the client, for every cached 30 KiB stylesheet. A larger buffer
//! would join them by copying the body into it. [`WriteBuf`] keeps `BufWriter`'s rules
//! (writes that fit are gathered and sent when full or flushed) but hands an overflowing
//! write to the socket beside the gathered bytes as one vectored write, without copying it.
//! The buffer's memory is taken at the first write that needs it, not at accept.
//!
//! It is used by [`super::deadline::HeaderDeadline`], the transport every HTTP/1 connection
//! is wrapped in; pingora's own write buffer under it is then set to zero (`crate::server`).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// At most this many slices go to one `writev` (the gathered bytes and the caller's).
const MAX_SLICES: usize = 64;

/// Gathered bytes waiting for the next write or flush (see the module docs).
#[derive(Debug)]
pub struct WriteBuf {
    buf: Vec<u8>,
    cap: usize,
}

impl WriteBuf {
    /// A buffer that gathers up to `cap` bytes; `0` writes straight through.
    pub fn new(cap: usize) -> WriteBuf {
        WriteBuf {
            buf: Vec::new(),
            cap,
        }
    }

    /// Bytes gathered and not yet sent.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Writes `bufs` through this buffer to `inner`: gathered when they fit, else sent with
    /// what is gathered in one vectored write. Returns how many bytes of `bufs` were taken.
    pub fn poll_write<S: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        mut inner: Pin<&mut S>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().fold(0usize, |n, b| n.saturating_add(b.len()));
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        if self.buf.len() + total <= self.cap {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(self.cap);
            }
            for b in bufs {
                self.buf.extend_from_slice(b);
            }
            return Poll::Ready(Ok(total));
        }
        loop {
            if self.buf.is_empty() {
                return inner.as_mut().poll_write_vectored(cx, bufs);
            }
            let held = self.buf.len();
            let mut slices = Vec::with_capacity(bufs.len().min(MAX_SLICES - 1) + 1);
            slices.push(IoSlice::new(&self.buf));
            slices.extend(bufs.iter().take(MAX_SLICES - 1).map(|b| IoSlice::new(b)));
            let n = match inner.as_mut().poll_write_vectored(cx, &slices) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            if n < held {
                self.buf.drain(..n);
                continue;
            }
            self.buf.clear();
            if n > held {
                return Poll::Ready(Ok(n - held));
            }
        }
    }

    /// Sends everything gathered, then flushes `inner`.
    pub fn poll_flush<S: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        mut inner: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.buf.is_empty() {
            match inner.as_mut().poll_write(cx, &self.buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.buf.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        inner.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A socket stand-in that records each write call and takes at most `limit` bytes a call.
    #[derive(Default)]
    struct Recorder {
        calls: Arc<Mutex<Vec<Vec<u8>>>>,
        limit: usize,
        flushed: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(_cx, &[IoSlice::new(buf)])
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut took = Vec::new();
            for b in bufs {
                let room = self.limit - took.len();
                took.extend_from_slice(&b[..b.len().min(room)]);
            }
            let n = took.len();
            if let Ok(mut c) = self.calls.lock() {
                c.push(took);
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flushed += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn write_all(w: &mut WriteBuf, s: &mut Recorder, mut data: &[u8]) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while !data.is_empty() {
            match w.poll_write(Pin::new(s), &mut cx, &[IoSlice::new(data)]) {
                Poll::Ready(Ok(n)) => data = &data[n..],
                other => panic!("{other:?}"),
            }
        }
    }

    fn flush(w: &mut WriteBuf, s: &mut Recorder) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(
            w.poll_flush(Pin::new(s), &mut cx),
            Poll::Ready(Ok(()))
        ));
    }

    #[test]
    fn a_header_and_a_large_body_leave_in_one_write() {
        let mut s = Recorder {
            limit: usize::MAX,
            ..Recorder::default()
        };
        let mut w = WriteBuf::new(16 * 1024);
        let header = b"HTTP/1.1 200 OK\r\nContent-Length: 30720\r\n\r\n".to_vec();
        let body = vec![b'x'; 30720];
        write_all(&mut w, &mut s, &header);
        assert_eq!(s.calls.lock().map(|c| c.len()).unwrap_or(9), 0);
        write_all(&mut w, &mut s, &body);
        flush(&mut w, &mut s);
        let calls = s.calls.lock().map(|c| c.clone()).unwrap_or_default();
        assert_eq!(calls.len(), 1, "one write for header and body");
        assert_eq!(calls[0], [header, body].concat());
        assert_eq!(s.flushed, 1);
    }

    #[test]
    fn small_writes_are_gathered_until_a_flush() {
        let mut s = Recorder {
            limit: usize::MAX,
            ..Recorder::default()
        };
        let mut w = WriteBuf::new(1024);
        write_all(&mut w, &mut s, b"HTTP/1.1 200 OK\r\n\r\n");
        write_all(&mut w, &mut s, b"hello");
        assert_eq!(w.pending(), 24);
        flush(&mut w, &mut s);
        let calls = s.calls.lock().map(|c| c.clone()).unwrap_or_default();
        assert_eq!(calls, vec![b"HTTP/1.1 200 OK\r\n\r\nhello".to_vec()]);
        assert_eq!(w.pending(), 0);
    }

    /// A socket that takes a few bytes a call (a full send buffer): every byte still goes
    /// out once, in order, whatever the split between gathered and new bytes.
    #[test]
    fn short_writes_lose_and_repeat_nothing() {
        for limit in [1, 3, 7, 100, 1000] {
            for cap in [0, 5, 64, 4096] {
                let mut s = Recorder {
                    limit,
                    ..Recorder::default()
                };
                let mut w = WriteBuf::new(cap);
                let pieces: Vec<Vec<u8>> = (0..20u8)
                    .map(|i| vec![i; usize::from(i) * 37 % 300 + 1])
                    .collect();
                for p in &pieces {
                    write_all(&mut w, &mut s, p);
                }
                flush(&mut w, &mut s);
                let sent: Vec<u8> = s.calls.lock().map(|c| c.concat()).unwrap_or_default();
                assert_eq!(sent, pieces.concat(), "limit {limit} cap {cap}");
            }
        }
    }
}
