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
