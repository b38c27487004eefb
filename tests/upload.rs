//! The compression service (issue 19) against a real pixgate: uploads as multipart and raw
//! bodies, the answer's fields checked against independently decoded downloads, options
//! (crop, rotate, preset, format, ttl), every refusal's status and JSON, private links that
//! stop working at the retention, the idle limit, the first download or a DELETE (and are
//! then indistinguishable from links that never existed), memory-only mode writing nothing,
//! a sealed disk tier, screening by digest and by perceptual hash (reloaded on change), the
//! hook failing open and closed, quotas, API keys, and logs without tokens or names.

mod common;

use common::{client, decode, files_under, metric, photo, Pixgate, Route, TestOrigin, CHROME};
use pixgate::config::{ApiKey, ByteSize, Config, DiskConfig, DiskSetting, Dur};
use pixgate::ratelimit::Bucket;
use pixgate::screening::{FailMode, HookConfig, SendMode};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Starts pixgate with the upload listener on, after `tweak`.
fn start(tweak: impl FnOnce(&mut Config)) -> (TestOrigin, Pixgate) {
    let origin = TestOrigin::start(vec![]);
    let p = Pixgate::start_with(&origin, |c| {
        c.upload.listen = Some(SocketAddr::from(([127, 0, 0, 1], 1)));
        tweak(c);
    });
    (origin, p)
}

/// A multipart/form-data body: (content type, bytes). A file is (field, file name, type,
/// bytes).
fn multipart(files: &[(&str, &str, &str, &[u8])], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "pixgate-test-boundary-7d93";
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (field, name, ty, bytes) in files {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: {ty}\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

/// POSTs `body` with `content_type` to `/api/v1/images?query`: (status, headers, JSON).
async fn post(
    p: &Pixgate,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = client()
        .post(p.upload_url(&format!("/api/v1/images?{query}")))
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.expect("upload request");
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, h, v)
}

/// One JPEG as a multipart upload with `fields`.
async fn upload_one(p: &Pixgate, jpeg: &[u8], fields: &[(&str, &str)]) -> (u16, Value) {
    let (ct, body) = multipart(&[("file", "holiday-beach.jpg", "image/jpeg", jpeg)], fields);
    let (s, _, v) = post(p, "", &ct, body, &[]).await;
    (s, v)
}

/// The upload store's memory entries once the sweeper has published a value meeting `ok`
/// (it publishes every sweep interval); the last value after 5 s.
async fn entries_when(p: &Pixgate, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = p.metrics().await;
        let v = metric(
            &m,
            "pixgate_cache_entries",
            &[("store", "uploads"), ("tier", "memory")],
        );
        if ok(v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET of a link (`/d/...`): (status, headers, body).
async fn fetch(p: &Pixgate, link: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = client()
        .get(p.upload_url(link))
        .send()
        .await
        .expect("download");
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, h, r.bytes().await.expect("body").to_vec())
}

fn link(v: &Value, i: usize) -> String {
    v["files"][i]["link"]
        .as_str()
        .unwrap_or_else(|| panic!("no link in {v}"))
        .to_string()
}

/// A PNG screenshot-like image (flat areas, text-like edges).
fn screenshot(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        if (y / 12) % 3 == 0 && (x / 3) % 5 != 0 {
            image::Rgba([30, 30, 30, 255])
        } else if x < w / 4 {
            image::Rgba([240, 240, 245, 255])
        } else {
            image::Rgba([255, 255, 255, 255])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

#[tokio::test]
async fn multipart_and_raw_uploads_answer_links_whose_bytes_match_the_answer() {
    let (_o, p) = start(|_| {});
    let jpeg = photo(1600, 1200, 3);
    let png = screenshot(800, 600);
    let (ct, body) = multipart(
        &[
            ("file", "my holiday (1).jpg", "image/jpeg", &jpeg),
            ("file", "screen.png", "application/octet-stream", &png),
        ],
        &[("width", "640")],
    );
    // Chrome's page Accept: auto format is AVIF for the photo; the screenshot goes as
    // lossless WebP, smaller than its AVIF (images.webp.try_lossless).
    let (s, h, v) = post(&p, "", &ct, body, &[("accept", CHROME)]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    let files = v["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    let cases = [(&jpeg, 480, "avif"), (&png, 480, "webp")];
    for (i, (input, want_h, format)) in cases.into_iter().enumerate() {
        let f = &files[i];
        assert_eq!(f["input_bytes"].as_u64(), Some(input.len() as u64));
        assert_eq!(f["format"], format, "{f}");
        assert_eq!(
            (f["width"].as_u64(), f["height"].as_u64()),
            (Some(640), Some(want_h))
        );
        let l = link(&v, i);
        // A capability URL: /d/ + 22 base64url characters (128 random bits), nothing of the
        // file or its name.
        let token = l.strip_prefix("/d/").expect("relative link");
        assert_eq!(token.len(), 22, "{token}");
        assert!(token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        let (st, hh, bytes) = fetch(&p, &l).await;
        assert_eq!(st, 200);
        assert_eq!(hh["content-type"], format!("image/{format}").as_str());
        assert_eq!(bytes.len() as u64, f["output_bytes"].as_u64().unwrap_or(0));
        assert!(bytes.len() < input.len(), "never larger");
        let cd = hh["content-disposition"].to_str().expect("ascii");
        assert!(cd.starts_with("attachment; filename=\"pixgate-"), "{cd}");
        assert!(!cd.contains("holiday") && !cd.contains("screen"), "{cd}");
        let img = decode(&bytes);
        assert_eq!((img.width() as u64, img.height() as u64), (640, want_h));
        let savings = f["savings"].as_f64().expect("savings");
        let want = 1.0 - bytes.len() as f64 / input.len() as f64;
        assert!((savings - want).abs() < 0.001, "{savings} vs {want}");
        let exp = f["expires_at"].as_str().expect("expires_at");
        let exp = humantime::parse_rfc3339(exp).expect("RFC 3339");
        let left = exp
            .duration_since(std::time::SystemTime::now())
            .expect("in the future");
        assert!(left <= Duration::from_secs(3600) && left > Duration::from_secs(3500));
    }
    // The batch's ZIP holds both results, byte for byte (read by Python's zipfile).
    let zip = v["zip"].as_str().expect("zip link for a batch");
    let (st, hh, z) = fetch(&p, zip).await;
    assert_eq!(st, 200);
    assert_eq!(hh["content-type"], "application/zip");
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("b.zip"), &z).expect("write");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import zipfile,sys;z=zipfile.ZipFile(sys.argv[1]);[print(i.filename,i.file_size) for i in z.infolist()];assert z.testzip() is None",
        ])
        .arg(dir.path().join("b.zip"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    let sizes: Vec<u64> = listing
        .lines()
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    let want: Vec<u64> = files
        .iter()
        .filter_map(|f| f["output_bytes"].as_u64())
        .collect();
    assert_eq!(sizes, want, "{listing}");

    // A raw body with its type, options in the query; Firefox's Accept without format: WebP
    // was asked for explicitly.
    let (s, _, v) = post(
        &p,
        "format=webp&width=300&quality=70",
        "image/jpeg",
        jpeg.clone(),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["files"][0]["format"], "webp");
    assert!(v["zip"].is_null());
    let (_, hh, bytes) = fetch(&p, &link(&v, 0)).await;
    assert_eq!(hh["content-type"], "image/webp");
    assert_eq!(&bytes[8..12], b"WEBP");
    assert_eq!(decode(&bytes).width(), 300);

    // Without Accept and format: the source's family.
    let (s, _, v) = post(&p, "width=200", "image/png", png.clone(), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["files"][0]["format"], "png");

    // The metering saw them.
    let m = p.metrics_settled().await;
    assert_eq!(
        metric(&m, "pixgate_uploads_total", &[("outcome", "stored")]),
        4.0
    );
    assert!(metric(&m, "pixgate_upload_bytes_total", &[("direction", "in")]) > 0.0);
    // Four results and the batch's list.
    assert_eq!(entries_when(&p, |n| n == 5.0).await, 5.0);
}

#[tokio::test]
async fn crop_rotate_and_presets_shape_the_result() {
    let (_o, p) = start(|_| {});
    // Left half red, right half blue: a crop of the right half is all blue.
    let img = image::RgbImage::from_fn(400, 200, |x, _| {
        if x < 200 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .expect("png");
    let png = png.into_inner();
    let out = png_result(&p, "crop=220,20,100,50&format=png", &png).await;
    assert_eq!(out.dimensions(), (100, 50));
    assert!(out.pixels().all(|px| px[2] > 180 && px[0] < 60), "all blue");

    // fit=cover into a square with gravity: west keeps the red half, east the blue one;
    // fit=fill squeezes both in.
    for (gravity, red) in [("west", true), ("east", false)] {
        let q = format!("width=100&height=100&fit=cover&gravity={gravity}&format=png");
        let out = png_result(&p, &q, &png).await;
        assert_eq!(out.dimensions(), (100, 100));
        assert!(
            out.pixels()
                .all(|px| (px[0] > 180) == red && (px[2] > 180) != red),
            "{gravity}"
        );
    }
    let out = png_result(&p, "width=100&height=100&fit=fill&format=png", &png).await;
    assert_eq!(out.dimensions(), (100, 100));
    assert!(out.get_pixel(5, 50)[0] > 180 && out.get_pixel(95, 50)[2] > 180);

    // rotate=90 (clockwise): the red left half ends on top.
    let (s, _, v) = post(&p, "rotate=90&format=png", "image/png", png.clone(), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["files"][0]["width"].as_u64(),
            v["files"][0]["height"].as_u64()
        ),
        (Some(200), Some(400))
    );
    let out = decode(&fetch(&p, &link(&v, 0)).await.2).to_rgb8();
    assert_eq!(out.dimensions(), (200, 400));
    assert!(out.get_pixel(100, 10)[0] > 180, "red on top");
    assert!(out.get_pixel(100, 390)[2] > 180, "blue below");

    // A social preset: exactly its size (cover).
    let jpeg = photo(1600, 1200, 9);
    let (s, v) = upload_one(&p, &jpeg, &[("preset", "og-image"), ("format", "jpeg")]).await;
    assert_eq!(s, 200, "{v}");
    let out = decode(&fetch(&p, &link(&v, 0)).await.2);
    assert_eq!((out.width(), out.height()), (1200, 630));

    // A crop outside the image is the caller's error.
    let (s, _, v) = post(&p, "crop=500,0,10,10", "image/png", png, &[]).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("crop"), "{v}");
}

/// Uploads `png` with `query` and decodes the stored result.
async fn png_result(p: &Pixgate, query: &str, png: &[u8]) -> image::RgbImage {
    let (s, _, v) = post(p, query, "image/png", png.to_vec(), &[]).await;
    assert_eq!(s, 200, "{query}: {v}");
    decode(&fetch(p, &link(&v, 0)).await.2).to_rgb8()
}

/// The JSON error shape: `{error, message}`.
fn is_error(v: &Value, code: &str) {
    assert_eq!(v["error"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

#[tokio::test]
async fn bad_requests_get_their_status_and_a_json_reason() {
    let (_o, p) = start(|c| {
        c.upload.max_bytes = ByteSize(256 * 1024);
        c.upload.max_files = 2;
        c.upload.retention = Dur::secs(600);
        c.upload.rate_limit = None;
    });
    let jpeg = photo(300, 200, 1);
    // 400: an unknown option names itself; a bad value; a ttl past the retention; no file;
    // too many files; strip_metadata=false (results never carry metadata).
    for (query, names) in [
        ("sepia=1", "sepia"),
        ("quality=0", "quality"),
        ("rotate=45", "rotate"),
        ("crop=1,2,3", "crop"),
        ("ttl=2h", "ttl"),
        ("strip_metadata=false", "strip_metadata"),
        ("preset=nope", "preset"),
    ] {
        let (s, _, v) = post(&p, query, "image/jpeg", jpeg.clone(), &[]).await;
        assert_eq!(s, 400, "{query}: {v}");
        is_error(&v, "bad_request");
        assert!(
            v["message"].as_str().unwrap_or("").contains(names),
            "{query}: {v}"
        );
    }
    let (ct, body) = multipart(&[], &[("width", "10")]);
    let (s, _, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 400);
    is_error(&v, "bad_request");
    let three: Vec<(&str, &str, &str, &[u8])> = (0..3)
        .map(|_| ("file", "a.jpg", "image/jpeg", jpeg.as_slice()))
        .collect();
    let (ct, body) = multipart(&three, &[]);
    let (s, _, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 400, "{v}");
    // A broken multipart body.
    let (s, _, v) = post(
        &p,
        "",
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc".to_vec(),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // 415: not an image. 422: truncated, and a decompression bomb.
    let (s, _, v) = post(&p, "", "text/plain", b"hello, world".to_vec(), &[]).await;
    assert_eq!(s, 415, "{v}");
    is_error(&v, "not_image");
    let (s, _, v) = post(&p, "", "image/jpeg", jpeg[..jpeg.len() / 3].to_vec(), &[]).await;
    assert_eq!(s, 422, "{v}");
    is_error(&v, "unreadable");
    let bomb = png_header(100_000, 100_000);
    let (s, _, v) = post(&p, "", "image/png", bomb, &[]).await;
    assert_eq!(s, 422, "{v}");

    // 413 from the declared length, before a byte of the body is read.
    let mut c = TcpStream::connect(p.upload.expect("upload")).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(
        b"POST /api/v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 999999999\r\n\r\n",
    )
    .expect("write");
    let (s, body) = read_response(&mut c);
    assert_eq!(s, 413, "{body}");
    is_error(&serde_json::from_str(&body).expect("json"), "too_large");

    // 413 while streaming a chunked body: answered after max_bytes, before the body ends.
    let mut c = TcpStream::connect(p.upload.expect("upload")).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(
        b"POST /api/v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .expect("write");
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..(256 / 16 + 2) {
        if c.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || c.write_all(&chunk).is_err()
            || c.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    // The final chunk is never sent: the answer cannot have waited for it.
    let (s, _) = read_response(&mut c);
    assert_eq!(s, 413);

    // Expect: 100-continue with a small body: 100 first, then the answer.
    let mut c = TcpStream::connect(p.upload.expect("upload")).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(
        format!(
            "POST /api/v1/images?width=100 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            jpeg.len()
        )
        .as_bytes(),
    )
    .expect("write");
    let mut first = [0u8; 25];
    c.read_exact(&mut first).expect("100 Continue");
    assert!(
        first.starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    c.write_all(&jpeg).expect("body");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("HTTP/1.1 200"), "{rest}");

    // Other routes and methods.
    let r = client()
        .get(p.upload_url("/api/v1/images"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 405);
    let r = client()
        .get(p.upload_url("/nope"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404);

    let m = p.metrics_settled().await;
    assert!(metric(&m, "pixgate_uploads_total", &[("outcome", "too_large")]) >= 2.0);
    assert!(metric(&m, "pixgate_uploads_total", &[("outcome", "not_image")]) >= 1.0);
    assert!(
        p.stderr().lines().all(|l| !l.contains("panicked")),
        "{}",
        p.stderr()
    );
}

/// A PNG signature and IHDR claiming `w` × `h`, then an empty IDAT and IEND.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }
    fn crc32(b: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &x in b {
            c ^= x as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Reads one response (Content-Length framed): (status, body text).
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..i]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while got.len() < i + 4 + len {
                let n = s.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .expect("status");
            let end = (i + 4 + len).min(got.len());
            return (
                status,
                String::from_utf8_lossy(&got[i + 4..end]).to_string(),
            );
        }
        let n = s.read(&mut buf).expect("a response");
        assert!(n > 0, "closed without a response");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Everything of a 404 but its Date.
async fn not_found_shape(
    p: &Pixgate,
    link: &str,
    method: reqwest::Method,
) -> (u16, String, String) {
    let r = client()
        .request(method, p.upload_url(link))
        .send()
        .await
        .expect("request");
    let s = r.status().as_u16();
    let mut h: Vec<String> = r
        .headers()
        .iter()
        .filter(|(k, _)| *k != "date")
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
        .collect();
    h.sort();
    (s, h.join("\n"), r.text().await.expect("body"))
}

#[tokio::test]
async fn links_end_at_retention_idle_limit_first_download_or_delete() {
    let (_o, p) = start(|c| {
        c.upload.retention = Dur::secs(3);
        c.upload.rate_limit = None;
    });
    let jpeg = photo(400, 300, 5);
    let never = not_found_shape(&p, "/d/AAAAAAAAAAAAAAAAAAAAAA", reqwest::Method::GET).await;
    assert_eq!(never.0, 404);

    // DELETE: 204, then 404 exactly like a link that never existed.
    let (_, v) = upload_one(&p, &jpeg, &[]).await;
    let l = link(&v, 0);
    assert_eq!(fetch(&p, &l).await.0, 200);
    let r = client()
        .delete(p.upload_url(&l))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(not_found_shape(&p, &l, reqwest::Method::GET).await, never);
    let r = client()
        .delete(p.upload_url(&l))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 404);

    // delete_after_download: HEAD leaves it, the first GET takes it.
    let (_, v) = upload_one(&p, &jpeg, &[("delete_after_download", "true")]).await;
    let l = link(&v, 0);
    let r = client().head(p.upload_url(&l)).send().await.expect("head");
    assert_eq!(r.status().as_u16(), 200);
    let (s, _, body) = fetch(&p, &l).await;
    assert_eq!(s, 200);
    decode(&body);
    assert_eq!(not_found_shape(&p, &l, reqwest::Method::GET).await, never);

    // The retention: gone within it (plus the sweep interval), asked for or not; a shorter ttl
    // goes first.
    let t0 = Instant::now();
    let (_, v) = upload_one(&p, &jpeg, &[]).await;
    let kept = link(&v, 0);
    let (_, v) = upload_one(&p, &jpeg, &[("ttl", "1s")]).await;
    let short = link(&v, 0);
    assert_eq!(fetch(&p, &kept).await.0, 200);
    // Nobody asks for `kept` again until it must be gone: the sweeper removes it.
    let gauge = |m: &str| {
        metric(
            m,
            "pixgate_cache_entries",
            &[("store", "uploads"), ("tier", "memory")],
        )
    };
    assert!(entries_when(&p, |n| n >= 2.0).await >= 2.0);
    while t0.elapsed() < Duration::from_millis(1300) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fetch(&p, &short).await.0, 404, "ttl=1s ended");
    while t0.elapsed() < Duration::from_millis(3300) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = p.metrics().await;
    assert_eq!(gauge(&m), 0.0, "swept without being asked");
    assert!(metric(&m, "pixgate_upload_links_total", &[("event", "expired")]) >= 1.0);
    assert_eq!(
        metric(
            &m,
            "pixgate_cache_max_retention_seconds",
            &[("store", "uploads")]
        ),
        3.0
    );
    assert_eq!(
        not_found_shape(&p, &kept, reqwest::Method::GET).await,
        never
    );
}

#[tokio::test]
async fn idle_links_end_after_the_idle_limit() {
    let (_o, p) = start(|c| {
        c.upload.retention = Dur::secs(60);
        c.upload.idle_ttl = Some(Dur::secs(2));
        c.upload.rate_limit = None;
    });
    let (_, v) = upload_one(&p, &photo(300, 200, 2), &[]).await;
    let l = link(&v, 0);
    // Used every second: stays.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(fetch(&p, &l).await.0, 200);
    }
    // Left alone past the idle limit: gone.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(fetch(&p, &l).await.0, 404);
}

#[tokio::test]
async fn memory_only_writes_nothing_and_a_disk_tier_is_sealed_and_swept() {
    // Memory only (the default): the working directory and TMPDIR stay empty through
    // multipart uploads of several files, downloads and a ZIP.
    let work = tempfile::tempdir().expect("tmp");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cfg = Config::default();
    let origin = TestOrigin::start(vec![]);
    cfg.origin.url = format!("http://{}", origin.addr);
    cfg.upload.listen = Some(SocketAddr::from(([127, 0, 0, 1], 1)));
    cfg.cache.disk = DiskSetting::Off;
    let p = Pixgate::launch(cfg, &[("TMPDIR", tmp.path())], Some(work.path()));
    let jpeg = photo(1200, 900, 4);
    let (ct, body) = multipart(
        &[
            ("file", "a.jpg", "image/jpeg", &jpeg),
            ("file", "b.jpg", "image/jpeg", &jpeg),
            ("file", "c.jpg", "image/jpeg", &jpeg),
        ],
        &[("format", "webp")],
    );
    let (s, _, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(fetch(&p, v["zip"].as_str().expect("zip")).await.0, 200);
    assert_eq!(fetch(&p, &link(&v, 0)).await.0, 200);
    let info: Value = serde_json::from_str(
        &client()
            .get(p.upload_url("/api/v1/info"))
            .send()
            .await
            .expect("info")
            .text()
            .await
            .expect("text"),
    )
    .expect("json");
    assert_eq!(info["memory_only"], true);
    assert_eq!(files_under(work.path()), Vec::<std::path::PathBuf>::new());
    assert_eq!(files_under(tmp.path()), Vec::<std::path::PathBuf>::new());
    drop(p);

    // A disk tier: files exist while the result lives, hold none of its bytes in the clear,
    // and are gone at the retention.
    let disk = tempfile::tempdir().expect("tmp");
    let dir = disk.path().join("uploads");
    let (_o, p) = start(|c| {
        c.upload.retention = Dur::secs(2);
        c.upload.disk = DiskSetting::On(DiskConfig {
            dir: dir.clone(),
            max_bytes: ByteSize::mib(64),
            key_file: None,
        });
    });
    let t0 = Instant::now();
    let (s, v) = upload_one(&p, &jpeg, &[("format", "webp")]).await;
    assert_eq!(s, 200, "{v}");
    let (_, _, webp) = fetch(&p, &link(&v, 0)).await;
    let on_disk: Vec<_> = files_under(&dir)
        .into_iter()
        .filter(|f| !f.ends_with(".pixgate-cache"))
        .collect();
    assert!(!on_disk.is_empty(), "the disk tier holds the result");
    for f in &on_disk {
        let b = std::fs::read(f).expect("read");
        assert!(
            !b.windows(32)
                .any(|w| w == &webp[webp.len() / 2..webp.len() / 2 + 32]),
            "{} holds result bytes in the clear",
            f.display()
        );
        assert!(!b.windows(4).any(|w| w == b"WEBP"), "{}", f.display());
    }
    while t0.elapsed() < Duration::from_millis(2400) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left: Vec<_> = files_under(&dir)
        .into_iter()
        .filter(|f| !f.ends_with(".pixgate-cache"))
        .collect();
    assert_eq!(left, Vec::<std::path::PathBuf>::new(), "swept from disk");
}

/// A hook that answers `body` after `delay`; it records the request headers.
fn hook(o: &TestOrigin, body: &'static str, delay: Duration) -> HookConfig {
    o.set_route("/hook", Route::ok("application/json", body).delayed(delay));
    HookConfig {
        url: format!("http://{}/hook", o.addr),
        timeout: Dur::secs(5),
        fail: FailMode::Closed,
        send: SendMode::Bytes,
    }
}

#[tokio::test]
async fn screening_denies_listed_digests_and_near_duplicates_and_reloads() {
    let lists = tempfile::tempdir().expect("tmp");
    let deny = lists.path().join("deny.txt");
    let banned = photo(640, 480, 77);
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(&banned)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    std::fs::write(&deny, format!("# test list\nsha256:{digest}\n")).expect("write");
    let hook_origin = TestOrigin::start(vec![]);
    let h = hook(&hook_origin, r#"{"allow": true}"#, Duration::ZERO);
    let (_o, p) = start(|c| {
        c.upload.rate_limit = None;
        c.upload.screening.deny_list = Some(deny.clone());
        c.upload.screening.reload_interval = Dur::millis(200);
        c.upload.screening.hook = Some(h);
    });
    let (s, v) = upload_one(&p, &banned, &[]).await;
    assert_eq!(s, 451, "{v}");
    is_error(&v, "denied");
    // A re-encoding of the same picture has another digest: allowed, and the hook saw its dHash.
    let again = {
        let img = decode(&banned).to_rgb8();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 60)
            .encode_image(&img)
            .expect("encode");
        out
    };
    let (s, v) = upload_one(&p, &again, &[]).await;
    assert_eq!(s, 200, "{v}");
    let dhash = hook_origin
        .last_headers("/hook")
        .get("x-pixgate-dhash")
        .and_then(|v| v.to_str().ok())
        .expect("the hook got the dHash")
        .to_string();
    assert_eq!(dhash.len(), 16, "{dhash}");
    // Listed by its perceptual hash (reloaded on change): now a near duplicate, resized and
    // re-encoded again, is denied too, and nothing was kept.
    std::fs::write(&deny, format!("sha256:{digest}\ndhash:{dhash}\n")).expect("write");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resized = {
        let img = decode(&banned).resize_exact(600, 450, image::imageops::FilterType::Triangle);
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75)
            .encode_image(&img.to_rgb8())
            .expect("encode");
        out
    };
    let before = metric(
        &p.metrics().await,
        "pixgate_cache_entries",
        &[("store", "uploads")],
    );
    let (s, v) = upload_one(&p, &resized, &[]).await;
    assert_eq!(s, 451, "{v}");
    // In a batch, one denied file refuses the whole request.
    let ok = photo(300, 200, 1);
    let (ct, body) = multipart(
        &[
            ("file", "ok.jpg", "image/jpeg", &ok),
            ("file", "x.jpg", "image/jpeg", &resized),
        ],
        &[],
    );
    let (s, _, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 451, "{v}");
    let m = p.metrics_settled().await;
    assert_eq!(
        metric(&m, "pixgate_cache_entries", &[("store", "uploads")]),
        before
    );
    // A different picture passes.
    let (s, v) = upload_one(&p, &ok, &[]).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn a_failing_hook_denies_when_closed_and_allows_when_open() {
    let jpeg = photo(300, 200, 8);
    let hook_origin = TestOrigin::start(vec![]);
    for (fail, want) in [(FailMode::Closed, 451), (FailMode::Open, 200)] {
        let mut h = hook(&hook_origin, r#"{"allow": true}"#, Duration::from_secs(3));
        h.timeout = Dur::millis(300);
        h.fail = fail;
        let (_o, p) = start(|c| {
            c.upload.screening.hook = Some(h);
        });
        let (s, v) = upload_one(&p, &jpeg, &[]).await;
        assert_eq!(s, want, "{fail:?}: {v}");
    }
    // The hook's own "no".
    let h = hook(&hook_origin, r#"{"allow": false}"#, Duration::ZERO);
    let (_o, p) = start(|c| c.upload.screening.hook = Some(h));
    let (s, v) = upload_one(&p, &jpeg, &[]).await;
    assert_eq!(s, 451, "{v}");
}

#[tokio::test]
async fn overload_quotas_and_api_keys() {
    // One processing slot, held by an upload waiting for a slow hook: the next is 503.
    let hook_origin = TestOrigin::start(vec![]);
    let h = hook(&hook_origin, r#"{"allow": true}"#, Duration::from_secs(2));
    let (_o, p) = start(|c| {
        c.upload.max_concurrent = 1;
        c.upload.rate_limit = None;
        c.upload.screening.hook = Some(h);
    });
    let p = std::sync::Arc::new(p);
    let jpeg = photo(300, 200, 6);
    let first = {
        let (p, jpeg) = (p.clone(), jpeg.clone());
        tokio::spawn(async move { upload_one(&p, &jpeg, &[]).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (ct, body) = multipart(&[("file", "a.jpg", "image/jpeg", &jpeg)], &[]);
    let (s, h, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 503, "{v}");
    is_error(&v, "overloaded");
    assert!(h.get("retry-after").is_some());
    assert_eq!(first.await.expect("first").0, 200, "the first one finished");

    // Quotas: 2 uploads per hour; a request rate limit.
    let (_o, p) = start(|c| {
        c.upload.uploads_per_hour = Some(2);
        c.upload.rate_limit = Some(Bucket { rate: 1, burst: 6 });
    });
    for _ in 0..2 {
        assert_eq!(upload_one(&p, &jpeg, &[]).await.0, 200);
    }
    let (ct, body) = multipart(&[("file", "a.jpg", "image/jpeg", &jpeg)], &[]);
    let (s, h, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 429, "{v}");
    is_error(&v, "limited");
    let wait: u64 = h["retry-after"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!(wait >= 60, "an hourly quota refills in minutes, got {wait}");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = client()
            .get(p.upload_url("/api/v1/info"))
            .send()
            .await
            .expect("info");
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let m = p.metrics_settled().await;
    assert!(
        metric(
            &m,
            "pixgate_upload_limited_total",
            &[("limit", "uploads_per_hour")]
        ) >= 1.0
    );

    // Bytes per day.
    let (_o, p) = start(|c| {
        c.upload.max_bytes = ByteSize(64 * 1024);
        c.upload.bytes_per_day = Some(ByteSize(64 * 1024));
        c.upload.rate_limit = None;
    });
    let big = photo(300, 300, 1);
    assert!(big.len() > 33 * 1024, "{}", big.len());
    assert_eq!(upload_one(&p, &big, &[]).await.0, 200);
    assert_eq!(upload_one(&p, &big, &[]).await.0, 429);

    // API keys: required, wrong one 401, right one meters its tenant.
    let key = "k-0123456789abcdef-acme";
    let (_o, p) = start(|c| {
        c.metrics.tenants = vec!["acme".into()];
        c.upload.api_keys = vec![ApiKey {
            key: key.into(),
            tenant: "acme".into(),
        }];
        c.upload.require_api_key = true;
        c.upload.rate_limit = None;
    });
    let (ct, body) = multipart(&[("file", "a.jpg", "image/jpeg", &jpeg)], &[]);
    let (s, _, v) = post(&p, "", &ct, body.clone(), &[]).await;
    assert_eq!(s, 401, "{v}");
    is_error(&v, "unauthorized");
    let (s, _, _) = post(
        &p,
        "",
        &ct,
        body.clone(),
        &[("x-api-key", "k-0123456789abcdef-acmE")],
    )
    .await;
    assert_eq!(s, 401);
    let bearer = format!("Bearer {key}");
    let (s, _, v) = post(&p, "", &ct, body, &[("authorization", bearer.as_str())]).await;
    assert_eq!(s, 200, "{v}");
    let m = p.metrics_settled().await;
    assert_eq!(
        metric(
            &m,
            "pixgate_tenant_origin_bytes_total",
            &[("tenant", "acme")]
        ),
        jpeg.len() as f64
    );
    assert!(
        metric(
            &m,
            "pixgate_tenant_response_bytes_total",
            &[("tenant", "acme")]
        ) > 0.0
    );
}

#[tokio::test]
async fn logs_carry_no_tokens_names_or_full_addresses() {
    let (_o, p) = start(|c| c.upload.rate_limit = None);
    let jpeg = photo(300, 200, 3);
    let (ct, body) = multipart(
        &[("file", "passport-scan-john-doe.jpg", "image/jpeg", &jpeg)],
        &[("keep_name", "false")],
    );
    let (s, _, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 200, "{v}");
    let l = link(&v, 0);
    let token = l.trim_start_matches("/d/").to_string();
    assert_eq!(fetch(&p, &l).await.0, 200);
    assert_eq!(fetch(&p, &format!("{l}x")).await.0, 404);
    let lines = p.access_log(3);
    assert!(lines.len() >= 3, "{lines:?}");
    let all = format!("{}\n{}", p.stdout(), p.stderr());
    assert!(!all.contains(&token), "a token in the logs");
    assert!(!all.contains("passport"), "a file name in the logs");
    assert!(!all.contains("127.0.0.1"), "a full address in the logs");
    assert!(
        lines.iter().any(|l| l["client"] == "127.0.0.0/24"),
        "{lines:?}"
    );
    // keep_name=true: the download is named after the upload, made safe.
    let (ct, body) = multipart(
        &[("file", "../../etc/pass wd ü.jpg", "image/jpeg", &jpeg)],
        &[("keep_name", "true"), ("format", "webp")],
    );
    let (s, _, v) = post(&p, "", &ct, body, &[]).await;
    assert_eq!(s, 200, "{v}");
    let (_, h, _) = fetch(&p, &link(&v, 0)).await;
    let cd = h["content-disposition"].to_str().expect("ascii");
    assert!(cd.ends_with(".webp\""), "{cd}");
    assert!(
        !cd.contains('/') && !cd.contains("..") && cd.matches('"').count() == 2,
        "{cd}"
    );
    assert!(cd.contains("pass"), "{cd}");
}

#[tokio::test]
async fn an_original_kept_because_nothing_was_smaller_loses_its_exif() {
    let (_o, p) = start(|c| c.upload.rate_limit = None);
    // A JPEG pixgate itself made (mozjpeg, default quality): re-encoding it at quality 100 is
    // larger, so the original is kept.
    let (s, v) = upload_one(&p, &photo(300, 200, 12), &[("format", "jpeg")]).await;
    assert_eq!(s, 200, "{v}");
    let plain = fetch(&p, &link(&v, 0)).await.2;
    // An APP1 EXIF segment with a GPS-looking payload after SOI.
    let exif = b"Exif\0\0MM\0*GPSLatitude=48.8584N";
    let mut tagged = plain[..2].to_vec();
    tagged.extend_from_slice(&[0xFF, 0xE1]);
    tagged.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    tagged.extend_from_slice(exif);
    tagged.extend_from_slice(&plain[2..]);
    let (s, v) = upload_one(&p, &tagged, &[("format", "jpeg"), ("quality", "100")]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["files"][0]["format"], "jpeg");
    let (_, _, body) = fetch(&p, &link(&v, 0)).await;
    assert!(
        body == plain,
        "not the original minus its EXIF ({} vs {} bytes)",
        body.len(),
        plain.len()
    );
    assert_eq!(
        v["files"][0]["output_bytes"].as_u64(),
        Some(plain.len() as u64)
    );
}

#[tokio::test]
async fn an_admin_purge_of_everything_erases_uploads_too() {
    let token = "purge-token-0123456789";
    let (_o, p) = start(|c| {
        c.admin.token = Some(token.into());
        c.upload.rate_limit = None;
    });
    let (s, v) = upload_one(&p, &photo(300, 200, 4), &[]).await;
    assert_eq!(s, 200, "{v}");
    let l = link(&v, 0);
    assert_eq!(fetch(&p, &l).await.0, 200);
    let (status, body) = p.purge("all=true", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetch(&p, &l).await.0, 404, "purged: {body}");
}
