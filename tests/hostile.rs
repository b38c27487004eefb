//! Hostile inputs from the origin: SVG (a document that can carry scripts) is never rendered
//! and goes out untouched with a sandboxing Content-Security-Policy and `nosniff`, on the
//! proxy path and on the image path alike.

mod common;

use common::{Pixgate, Route, TestOrigin, CHROME};

const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script><rect width="10" height="10" fill="red"/></svg>"#;

#[tokio::test]
async fn svg_passes_through_sandboxed() {
    let origin = TestOrigin::start(vec![
        ("/logo.svg", Route::ok("image/svg+xml", SVG)),
        ("/icon", Route::ok("image/svg+xml; charset=utf-8", SVG)),
        ("/page.html", Route::ok("text/html", "<p>hi</p>")),
    ]);
    let px = Pixgate::start(&origin);
    // No Accept (proxy path) and Chrome's image Accept (the image path sniffs, then streams).
    for (path, accept) in [
        ("/logo.svg", None),
        ("/logo.svg", Some(CHROME)),
        ("/icon", Some(CHROME)),
    ] {
        let r = common::get(&px.url(path), accept).await;
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml"));
        assert_eq!(h["x-content-type-options"], "nosniff", "{path} {accept:?}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("sandbox"),
            "{csp}"
        );
        assert_eq!(
            r.text().await.unwrap(),
            SVG,
            "byte-identical, never rendered"
        );
    }
    // Other types are left alone.
    let r = common::get(&px.url("/page.html"), None).await;
    assert!(r.headers().get("content-security-policy").is_none());
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

fn small_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8 * 2, y as u8 * 3, 77]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn small_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8 * 2, y as u8 * 3, 77]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// A PNG with `extra` chunks spliced in after IHDR.
fn png_with(extra: Vec<u8>) -> Vec<u8> {
    let p = small_png();
    let mut out = p[..33].to_vec();
    out.extend_from_slice(&extra);
    out.extend_from_slice(&p[33..]);
    out
}

/// A GIF whose screen and only frame declare `w` × `h`.
fn gif_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    g.extend_from_slice(&[0, 0, 0, 0x2C, 0, 0, 0, 0]);
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    g.extend_from_slice(&[0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
    g
}

/// A WebP whose VP8X header declares a 16384 × 16384 canvas and nothing else.
fn webp_bomb() -> Vec<u8> {
    let mut c = b"VP8X".to_vec();
    c.extend_from_slice(&10u32.to_le_bytes());
    c.extend_from_slice(&[0, 0, 0, 0]);
    let d = (16384u32 - 1).to_le_bytes();
    c.extend_from_slice(&d[..3]);
    c.extend_from_slice(&d[..3]);
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&((c.len() + 4) as u32).to_le_bytes());
    w.extend_from_slice(b"WEBP");
    w.extend_from_slice(&c);
    w
}

fn many_frames_gif(frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..frames {
            let f = image::RgbaImage::from_pixel(8, 8, image::Rgba([i as u8, 0, 0, 255]));
            enc.encode_frame(image::Frame::new(f)).unwrap();
        }
    }
    out
}

/// A JPEG with `n` APP2 ICC segments of 64 KiB of garbage each.
fn jpeg_with_huge_icc(n: usize) -> Vec<u8> {
    let j = small_jpeg();
    let mut out = j[..2].to_vec();
    for i in 0..n {
        let mut seg = b"ICC_PROFILE\0".to_vec();
        seg.push((i + 1) as u8);
        seg.push(n as u8);
        seg.extend(std::iter::repeat_n(b'Z', 65_000));
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&seg);
    }
    out.extend_from_slice(&j[2..]);
    out
}

#[tokio::test]
async fn svg_is_refused_on_both_paths_when_the_config_says_reject() {
    let origin = TestOrigin::start(vec![("/logo.svg", Route::ok("image/svg+xml", SVG))]);
    let px = Pixgate::start_with(&origin, |c| {
        c.images.svg = pixgate::config::SvgPolicy::Reject;
    });
    for accept in [None, Some(CHROME)] {
        let r = common::get(&px.url("/logo.svg"), accept).await;
        assert_eq!(r.status(), 403, "{accept:?}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let body = r.text().await.unwrap();
        assert!(body.contains("SVG is not served"), "{body}");
        assert!(!body.contains("script"), "none of the SVG's bytes");
    }
}

/// A progressive JPEG whose smallest scan is repeated until it has `n` scans in all.
fn many_scans_jpeg(n: usize) -> Vec<u8> {
    let j = common::fixture("progressive.jpg");
    // Walk the segments; each scan is its SOS header plus its entropy-coded data.
    let mut scans: Vec<(usize, usize)> = Vec::new();
    let mut i = 2;
    while i + 4 <= j.len() && j[i] == 0xFF {
        let marker = j[i + 1];
        let len = usize::from(u16::from_be_bytes([j[i + 2], j[i + 3]]));
        let start = i;
        i += 2 + len;
        if marker == 0xDA {
            while i + 1 < j.len()
                && !(j[i] == 0xFF && j[i + 1] != 0 && !(0xD0..=0xD7).contains(&j[i + 1]))
            {
                i += 1;
            }
            scans.push((start, i));
        }
    }
    assert!(scans.len() > 1, "the fixture is progressive");
    let (a, b) = *scans.iter().min_by_key(|(a, b)| b - a).expect("a scan");
    let mut out = j[..b].to_vec();
    for _ in scans.len()..n {
        out.extend_from_slice(&j[a..b]);
    }
    out.extend_from_slice(&j[b..]);
    assert_eq!(pixgate::image::probe::jpeg_scans(&out), n);
    out
}

#[tokio::test]
async fn hostile_images_get_the_original_or_a_clean_transform_and_memory_stays_bounded() {
    let html = b"<html><script>alert(1)</script></html>";
    let mut polyglot = small_jpeg()[..20].to_vec();
    polyglot.extend_from_slice(html);
    let mut text_chunks = Vec::new();
    for i in 0..5000 {
        text_chunks.extend(png_chunk(b"tEXt", format!("k\0value {i}").as_bytes()));
    }
    let mut icc = b"icc\0\0".to_vec();
    icc.extend(std::iter::repeat_n(b'Q', 4 << 20));
    let mut avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec();
    avif.extend_from_slice(&[0xFF; 64]);
    let mut bad_webp = webp_bomb();
    bad_webp[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("/gif-bomb.gif", "image/gif", gif_bomb(60_000, 60_000)),
        ("/webp-bomb.webp", "image/webp", webp_bomb()),
        ("/webp-bad-riff.webp", "image/webp", bad_webp),
        ("/avif-bad-box.avif", "image/avif", avif),
        ("/png-5000-chunks.png", "image/png", png_with(text_chunks)),
        (
            "/png-4mb-iccp.png",
            "image/png",
            png_with(png_chunk(b"iCCP", &icc)),
        ),
        ("/jpeg-5mb-icc.jpg", "image/jpeg", jpeg_with_huge_icc(80)),
        ("/gif-2000-frames.gif", "image/gif", many_frames_gif(2000)),
        ("/polyglot.jpg", "image/jpeg", polyglot),
        ("/jpeg-3000-scans.jpg", "image/jpeg", many_scans_jpeg(3000)),
    ];
    let routes: Vec<(&str, Route)> = cases
        .iter()
        .map(|(p, ct, b)| (*p, Route::ok(ct, b.clone())))
        .collect();
    let origin = TestOrigin::start(routes);
    let px = Pixgate::start(&origin);
    for (path, ct, body) in &cases {
        let t = std::time::Instant::now();
        let r = common::get(&px.url(path), Some(CHROME)).await;
        assert_eq!(r.status(), 200, "{path}");
        let note = r.headers()["x-pixgate"].to_str().unwrap().to_string();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        let got = r.bytes().await.unwrap();
        if note.starts_with("original") {
            assert_eq!(&got[..], &body[..], "{path}: the original, untouched");
        } else {
            // Transformed: a clean image without the hostile payload.
            let img = common::decode(&got);
            assert_eq!((img.width(), img.height()), (96, 64), "{path}");
            assert!(got.len() < 100_000, "{path}: {} bytes", got.len());
            assert!(!got.windows(8).any(|w| w == b"QQQQQQQQ" || w == b"ZZZZZZZZ"));
        }
        let took = t.elapsed();
        assert!(took < std::time::Duration::from_secs(5), "{path}: {took:?}");
        eprintln!(
            "{path:24} {ct:10} {:>8} B -> {note} in {took:?}",
            body.len()
        );
    }
    // Expected verdicts where one is certain.
    let base = px.url("");
    let note = |p: &str| {
        let url = format!("{base}{p}");
        async move {
            common::get(&url, Some(CHROME)).await.headers()["x-pixgate"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(
        note("/gif-bomb.gif").await,
        "original; reason=too_many_pixels"
    );
    // Past images.animation.max_frames (500): counted from the blocks, never decoded.
    assert_eq!(
        note("/gif-2000-frames.gif").await,
        "original; reason=too_many_frames"
    );
    assert!(note("/polyglot.jpg").await.starts_with("original"));
    assert_eq!(
        note("/jpeg-3000-scans.jpg").await,
        "original; reason=too_many_scans"
    );
    assert_eq!(px.admin_get("/healthz").await.0, 200);
    let peak = px.peak_rss_kib();
    assert!(peak > 0 && peak < 400 * 1024, "peak RSS {peak} KiB");
    eprintln!("peak RSS {peak} KiB");
}
