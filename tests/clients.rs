//! Slow and greedy clients against a real pixgate: a header trickled byte by byte is cut at
//! `limits.header_timeout` (and many of them do not stop others being served), a client that
//! stops reading is cut at `limits.client_write_timeout`, and images beyond the global
//! `limits.max_buffered_bytes` budget are streamed through untouched instead of held.

mod common;

use common::{metric, photo, Pixgate, Route, TestOrigin, CHROME};
use pixgate::config::{ByteSize, Dur};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `head` then trickles `trickle` one byte every 100 ms until the server closes the
/// connection; returns how long that took (or `None` if it was still open after `give_up`).
fn trickle(addr: std::net::SocketAddr, head: &[u8], give_up: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    s.write_all(head).expect("head");
    let mut byte = 0usize;
    let filler = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    while t0.elapsed() < give_up {
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => return Some(t0.elapsed()), // an error answer also ends it
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(t0.elapsed()),
        }
        if s.write_all(&filler[byte % filler.len()..][..1]).is_err() {
            return Some(t0.elapsed());
        }
        byte += 1;
    }
    None
}

#[tokio::test]
async fn slowloris_headers_are_cut_at_the_header_timeout_and_others_are_served() {
    let origin = TestOrigin::start(vec![("/page.html", Route::ok("text/html", "<p>hi</p>"))]);
    let px = Pixgate::start_with(&origin, |c| c.limits.header_timeout = Dur::secs(1));
    let addr = px.addr;
    // 40 slow clients at once, each far faster than pingora's 60 s per-read timeout.
    let slow: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(move || {
                trickle(
                    addr,
                    b"GET /page.html HTTP/1.1\r\nHost: a\r\n",
                    Duration::from_secs(6),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile a normal client is served at once.
    let t = Instant::now();
    let r = common::get(&px.url("/page.html"), None).await;
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    for h in slow {
        let took = h
            .join()
            .expect("thread")
            .expect("a slow header was never cut off");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
            "cut after {took:?}"
        );
    }
    // A client that sends nothing at all is cut too.
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let t = Instant::now();
    let n = idle.read(&mut [0u8; 16]).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    let text = px.metrics_settled().await;
    assert!(metric(&text, "pixgate_header_timeouts_total", &[]) >= 41.0);
}

#[tokio::test]
async fn idle_time_between_kept_alive_requests_is_not_a_slow_header() {
    let origin = TestOrigin::start(vec![("/page.html", Route::ok("text/html", "<p>hi</p>"))]);
    let px = Pixgate::start_with(&origin, |c| c.limits.header_timeout = Dur::secs(1));
    let mut s = TcpStream::connect(px.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let req = b"GET /page.html HTTP/1.1\r\nHost: a\r\n\r\n";
    for round in 0..2 {
        s.write_all(req).expect("request");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"<p>hi</p>") {
            let n = s.read(&mut buf).expect("response");
            assert!(n > 0, "round {round}: closed");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"), "round {round}");
        // Longer than header_timeout, shorter than the keep-alive timeout.
        std::thread::sleep(Duration::from_millis(1500));
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_at_the_write_timeout() {
    // 64 MiB is far more than the loopback socket buffers hold.
    let big = bytes::Bytes::from(vec![7u8; 64 << 20]);
    let origin = TestOrigin::start(vec![(
        "/big.bin",
        Route::ok("application/octet-stream", big),
    )]);
    let px = Pixgate::start_with(&origin, |c| c.limits.client_write_timeout = Dur::secs(1));
    let mut s = TcpStream::connect(px.addr).expect("connect");
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("request");
    // Never read. The request must end on pixgate's side while this socket stays open.
    let t = Instant::now();
    let mut ended = false;
    let mut seen_busy = false;
    while t.elapsed() < Duration::from_secs(10) {
        let text = px.metrics().await;
        let busy = metric(&text, "pixgate_requests_in_flight", &[]);
        seen_busy |= busy > 0.0;
        if seen_busy && busy == 0.0 {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_busy, "the request never started");
    assert!(ended, "a stalled reader pinned its request for 10 s");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(s);
}

#[tokio::test]
async fn sources_past_the_buffer_budget_stream_through_untouched() {
    let a = photo(1600, 1200, 1);
    let b = photo(1600, 1200, 2);
    let budget = (a.len().max(b.len()) as u64 * 3 / 2).div_ceil(1024) * 1024;
    assert!(
        budget < (a.len() + b.len()) as u64,
        "two sources must not fit"
    );
    let origin = TestOrigin::start(vec![
        ("/a.jpg", Route::ok("image/jpeg", a.clone())),
        ("/b.jpg", Route::ok("image/jpeg", b.clone())),
    ]);
    let px = Pixgate::start_with(&origin, |c| {
        c.cache.avif_budget = None;
        c.limits.max_source_bytes = ByteSize(budget);
        c.limits.max_buffered_bytes = ByteSize(budget);
    });
    // /a.jpg holds its source through a slow AVIF encode ...
    let url_a = px.url("/a.jpg");
    let first = tokio::spawn(async move { common::get(&url_a, Some(CHROME)).await });
    let t = Instant::now();
    loop {
        let text = px.metrics().await;
        if metric(&text, "pixgate_buffered_bytes", &[]) > 0.0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a never held its source"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ... so /b.jpg does not fit: it is sent as the origin sent it, not refused.
    let r = common::get(&px.url("/b.jpg"), Some(CHROME)).await;
    assert_eq!(r.status(), 200);
    let note = r.headers()["x-pixgate"].to_str().unwrap_or("").to_string();
    assert!(note.contains("buffer_budget"), "{note}");
    assert_eq!(r.bytes().await.expect("body"), b);
    let r = first.await.expect("task");
    assert_eq!(
        r.headers()["content-type"],
        "image/avif",
        "{:?}",
        r.headers().get("x-pixgate")
    );
    let _ = r.bytes().await;
    // With the budget free again, /b.jpg is transformed. /a's reservation is released when its
    // request ends, which can be just after its client has the last byte: wait for it.
    let t = Instant::now();
    while metric(&px.metrics().await, "pixgate_buffered_bytes", &[]) > 0.0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a's source stayed reserved"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = common::get(&px.url("/b.jpg"), Some(CHROME)).await;
    assert_eq!(
        r.headers()["content-type"],
        "image/avif",
        "{:?}",
        r.headers().get("x-pixgate")
    );
    let text = px.metrics_settled().await;
    assert_eq!(metric(&text, "pixgate_buffered_bytes", &[]), 0.0);
    assert_eq!(
        metric(
            &text,
            "pixgate_image_transforms_total",
            &[("outcome", "buffer_budget")]
        ),
        1.0
    );
}
