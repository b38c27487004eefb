//! Non-image traffic goes through pixgate byte-identical, with its headers, for every method,
//! framing and status; Via and X-Forwarded-For are handled as proxies do.

mod common;
use common::*;
use std::io::{Read, Write};

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn site() -> TestOrigin {
    TestOrigin::start(vec![
        (
            "/index.html",
            Route::ok("text/html; charset=utf-8", "<!doctype html><h1>hi</h1>")
                .header("cache-control", "public, max-age=60")
                .header("x-custom", "kept")
                .header("set-cookie", "a=b; Path=/"),
        ),
        ("/style.css", Route::ok("text/css", "body{color:red}")),
        (
            "/app.js",
            Route::ok("application/javascript", "console.log(1)"),
        ),
        (
            "/data.json",
            Route::ok("application/json", r#"{"a":[1,2,3]}"#),
        ),
        (
            "/page.gz.html",
            Route::ok("text/html", noise(5000, 1)).header("content-encoding", "gzip"),
        ),
        (
            "/chunked.txt",
            Route::ok("text/plain", noise(100_000, 2)).chunked(),
        ),
        (
            "/big.bin",
            Route::ok("application/octet-stream", noise(8 << 20, 3)),
        ),
        // Image-looking URLs whose bodies are not images: the bytes decide.
        (
            "/fake.jpg",
            Route::ok("image/jpeg", "<html>not an image</html>").header("x-custom", "kept"),
        ),
        (
            "/encoded.png",
            Route::ok("image/png", noise(3000, 4)).header("content-encoding", "gzip"),
        ),
        (
            "/chunked.png",
            Route::ok("text/html", noise(200_000, 5)).chunked(),
        ),
        (
            "/big.jpg",
            Route::ok("application/octet-stream", noise(4 << 20, 6)),
        ),
        (
            "/etag.css",
            Route::ok("text/css", "a{}").header("etag", "\"v1\""),
        ),
        (
            "/etag.png",
            Route::ok("image/png", "not a png").header("etag", "\"v2\""),
        ),
        (
            "/missing.png",
            Route {
                status: 404,
                ..Route::ok("text/plain", "gone")
            },
        ),
    ])
}

#[tokio::test]
async fn non_images_are_byte_identical_with_headers() {
    let origin = site();
    let px = Pixgate::start(&origin);
    for (path, accept) in [
        (
            "/index.html",
            Some("text/html,application/xhtml+xml,image/avif,image/webp,*/*;q=0.8"),
        ),
        ("/style.css", Some("text/css,*/*;q=0.1")),
        ("/app.js", None),
        ("/data.json", Some("application/json")),
        ("/page.gz.html", None),
        ("/chunked.txt", None),
        ("/big.bin", None),
        ("/fake.jpg", Some(CHROME)),
        ("/encoded.png", Some(CHROME)),
        ("/chunked.png", Some(CHROME)),
        ("/big.jpg", Some(CHROME)),
        ("/missing.png", Some(CHROME)),
    ] {
        let direct = get(&format!("http://{}{path}", origin.addr), accept).await;
        let (dh, dstatus) = (direct.headers().clone(), direct.status());
        let dbody = direct.bytes().await.unwrap();
        let via = get(&px.url(path), accept).await;
        assert_eq!(via.status(), dstatus, "{path}");
        let vh = via.headers().clone();
        let vbody = via.bytes().await.unwrap();
        assert!(
            vbody == dbody,
            "{path}: body differs ({} vs {} bytes)",
            vbody.len(),
            dbody.len()
        );
        for name in [
            "content-type",
            "content-encoding",
            "cache-control",
            "x-custom",
            "set-cookie",
            "content-length",
        ] {
            assert_eq!(vh.get(name), dh.get(name), "{path}: header {name}");
        }
        assert!(
            vh.get("via")
                .is_some_and(|v| v.to_str().unwrap().contains("pixgate")),
            "{path}: Via"
        );
        assert!(
            vh.get("x-pixgate").is_none(),
            "{path}: not an image, no image header"
        );
    }
}

#[tokio::test]
async fn every_method_with_its_body_and_forwarding_headers() {
    let origin = site();
    let px = Pixgate::start(&origin);
    let c = client();
    for m in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let body = format!("payload for {m}");
        let mut rq = c
            .request(method, px.url("/echo/x?q=1"))
            .header("x-forwarded-for", "203.0.113.9");
        if !matches!(m, "GET" | "HEAD") {
            rq = rq.body(body.clone());
        }
        let r = rq.send().await.unwrap();
        assert_eq!(r.status(), 200, "{m}");
        assert_eq!(r.headers()["x-origin"], "echo");
        let text = r.text().await.unwrap();
        if m == "HEAD" {
            assert!(text.is_empty());
            continue;
        }
        assert!(
            text.starts_with(&format!("{m} /echo/x?q=1\n")),
            "{m}: {text}"
        );
        assert!(
            text.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1"),
            "{m}: {text}"
        );
        assert!(text.contains("via: 1.1 pixgate"), "{m}: {text}");
        if m != "GET" {
            assert!(text.ends_with(&body), "{m}: body not forwarded: {text}");
        }
    }
}

#[tokio::test]
async fn head_and_304_pass_through() {
    let origin = site();
    let px = Pixgate::start(&origin);
    let c = client();
    let r = c.head(px.url("/index.html")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "26");
    assert!(r.bytes().await.unwrap().is_empty());
    for path in ["/etag.css", "/etag.png"] {
        let r = c
            .get(px.url(path))
            .header("if-none-match", "\"v1\"")
            .send()
            .await
            .unwrap();
        let expect = if path == "/etag.css" { 304 } else { 200 };
        assert_eq!(r.status(), expect, "{path}");
    }
    // The image path evaluates validators itself: a non-image keeps the origin's ETag.
    let r = c
        .get(px.url("/etag.png"))
        .header("if-none-match", "\"v2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "validators are not forwarded on the image path"
    );
    assert_eq!(r.headers()["etag"], "\"v2\"");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let origin = site();
    let px = Pixgate::start(&origin);
    let mut s = std::net::TcpStream::connect(px.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    for path in ["/style.css", "/fake.jpg", "/app.js"] {
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {CHROME}\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read one response: headers, then Content-Length bytes (or chunked until 0-chunk).
        loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed after {path}");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let head = text[..end].to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
                if let Some(cl) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                {
                    if buf.len() >= end + 4 + cl.trim().parse::<usize>().unwrap() {
                        break;
                    }
                } else if text.ends_with("0\r\n\r\n") {
                    break;
                }
            }
        }
    }
}

/// An origin that sends a response's header and first `first` body bytes, then holds the
/// rest back until the test has seen those bytes arrive through pixgate (or 10 s pass).
fn stalling_origin(
    first: usize,
    chunked: bool,
) -> (std::net::SocketAddr, std::sync::mpsc::Sender<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut req = Vec::new();
        let mut b = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&b[..n]),
            }
        }
        let body = noise(first * 2, 9);
        let (head, tail) = body.split_at(first);
        let framing = if chunked {
            "transfer-encoding: chunked".to_string()
        } else {
            format!("content-length: {}", body.len())
        };
        let piece = |p: &[u8]| -> Vec<u8> {
            if chunked {
                [format!("{:x}\r\n", p.len()).as_bytes(), p, b"\r\n"].concat()
            } else {
                p.to_vec()
            }
        };
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{framing}\r\n\r\n"
        );
        let _ = s.write_all(&piece(head));
        let _ = s.flush();
        let _ = seen_rx.recv_timeout(std::time::Duration::from_secs(10));
        let _ = s.write_all(&piece(tail));
        if chunked {
            let _ = s.write_all(b"0\r\n\r\n");
        }
        let _ = s.flush();
    });
    (addr, seen_tx)
}

/// Reads from `s` until `want` body bytes (after the header, de-chunked or not: only the
/// count of bytes past the header is compared, so chunk framing counts too) have arrived;
/// false if they do not arrive within 3 s.
fn body_bytes_arrive(s: &mut std::net::TcpStream, want: usize) -> bool {
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if buf.len() - (end + 4) >= want {
                return true;
            }
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// pixgate's write buffer (`server.write_buffer`, 16 KiB by default) lets a cached hit go out
/// in one write; it must not hold a streamed body back: chunked bodies go chunk by chunk,
/// Content-Length bodies as soon as a buffer's worth has come, and with `write_buffer: 0`
/// byte by byte as they come.
#[test]
fn streamed_bodies_are_not_held_back_by_the_write_buffer() {
    use pixgate::config::{ByteSize, Config, Dur};
    for (first, chunked, write_buffer) in [
        (1000, true, None),
        (40_000, false, None),
        (1000, false, Some(0)),
    ] {
        let (origin, seen) = stalling_origin(first, chunked);
        let mut cfg = Config::default();
        cfg.origin.url = format!("http://{origin}");
        cfg.server.grace_period = Dur::secs(0);
        if let Some(w) = write_buffer {
            cfg.server.write_buffer = ByteSize(w);
        }
        let px = Pixgate::start_config(cfg);
        let mut s = std::net::TcpStream::connect(px.addr).unwrap();
        write!(s, "GET /stream.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let arrived = body_bytes_arrive(&mut s, first);
        let _ = seen.send(());
        assert!(
            arrived,
            "first {first} bytes (chunked {chunked}, write_buffer {write_buffer:?}) \
             did not arrive while the origin held the rest back"
        );
    }
}
