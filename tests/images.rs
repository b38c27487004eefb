//! The image path end to end: browsers' Accept strings get the right format, decoded by an
//! independent decoder, upright, without metadata and smaller; edge and broken images fail open
//! with their reason counted.

mod common;
use common::*;
use image::GenericImageView;

fn photos() -> Vec<&'static pixgate::demo::Sample> {
    pixgate::demo::SAMPLES
        .iter()
        .filter(|s| s.mime == "image/jpeg")
        .collect()
}

/// Upright dimensions of a source, as an independent decoder sees them after orientation.
fn upright_dims(bytes: &[u8]) -> (u32, u32) {
    let mut d = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    use image::ImageDecoder;
    let o = d.orientation().unwrap();
    let mut img = image::DynamicImage::from_decoder(d).unwrap();
    img.apply_orientation(o);
    img.dimensions()
}

fn has_marker(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn browsers_get_the_best_accepted_format() {
    let mut routes = Vec::new();
    for s in photos() {
        routes.push((
            Box::leak(format!("/p/{}", s.name).into_boxed_str()) as &str,
            Route::ok(s.mime, s.bytes)
                .header("cache-control", "public, max-age=600")
                .header("etag", "\"origin\""),
        ));
    }
    assert!(routes.len() >= 2, "the demo ships photos");
    let origin = TestOrigin::start(routes);
    // Generous: CI runs these tests in parallel on 2 cores, and AVIF of a 2 MP photo is seconds.
    let px = Pixgate::start_with(&origin, |c| {
        c.limits.transform_timeout = pixgate::config::Dur::secs(120);
        c.limits.queue_timeout = pixgate::config::Dur::secs(120);
        // This test checks what each browser gets, not how fast: always wait for AVIF.
        c.cache.avif_budget = None;
    });
    let cases: [(Option<&str>, &str); 7] = [
        (Some(CHROME), "image/avif"),
        (Some(FIREFOX), "image/avif"),
        (Some(SAFARI), "image/avif"),
        (Some("*/*"), "image/jpeg"),
        (None, "image/jpeg"),
        (Some("image/webp"), "image/webp"),
        (Some("image/avif;q=0"), "image/jpeg"),
    ];
    for s in photos() {
        let (w, h) = upright_dims(s.bytes);
        for (accept, want) in cases {
            let r = get(&px.url(&format!("/p/{}", s.name)), accept).await;
            assert_eq!(r.status(), 200);
            let hd = r.headers().clone();
            let body = r.bytes().await.unwrap();
            let ctx = format!("{} with Accept {accept:?}", s.name);
            assert_eq!(hd["content-type"], want, "{ctx}: {:?}", hd.get("x-pixgate"));
            assert_eq!(
                hd["content-length"],
                body.len().to_string().as_str(),
                "{ctx}"
            );
            assert!(hd["vary"].to_str().unwrap().contains("Accept"), "{ctx}");
            assert_eq!(
                hd["cache-control"], "public, max-age=600",
                "{ctx}: caching headers kept"
            );
            let etag = hd["etag"].to_str().unwrap();
            assert!(etag.starts_with("\"pg-"), "{ctx}: variant etag, got {etag}");
            assert!(
                body.len() < s.bytes.len(),
                "{ctx}: {} >= {}",
                body.len(),
                s.bytes.len()
            );
            assert!(!has_marker(&body, b"Exif\0\0"), "{ctx}: EXIF left");
            assert!(
                !has_marker(&body, b"http://ns.adobe.com/xap"),
                "{ctx}: XMP left"
            );
            let img = decode(&body);
            assert_eq!(img.dimensions(), (w, h), "{ctx}: dimensions/orientation");
        }
    }
    // The validator of a variant gets a 304.
    let s = photos()[0];
    let r = get(&px.url(&format!("/p/{}", s.name)), Some("image/webp")).await;
    let etag = r.headers()["etag"].clone();
    let r304 = client()
        .get(px.url(&format!("/p/{}", s.name)))
        .header("accept", "image/webp")
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r304.status(), 304);
    assert_eq!(r304.headers()["etag"], etag);
    assert!(r304.headers()["vary"].to_str().unwrap().contains("Accept"));
}

fn fixture_origin(names: &[&str]) -> TestOrigin {
    let routes = names
        .iter()
        .map(|n| {
            let path: &'static str = Box::leak(format!("/f/{n}").into_boxed_str());
            (path, Route::ok("application/octet-stream", fixture(n)))
        })
        .collect();
    TestOrigin::start(routes)
}

async fn fetch(
    px: &Pixgate,
    name: &str,
    accept: Option<&str>,
) -> (reqwest::header::HeaderMap, bytes::Bytes) {
    let r = get(&px.url(&format!("/f/{name}")), accept).await;
    assert_eq!(r.status(), 200, "{name}");
    let h = r.headers().clone();
    (h, r.bytes().await.unwrap())
}

#[tokio::test]
async fn exif_orientations_are_applied() {
    let names: Vec<String> = (1..=8).map(|i| format!("orient-{i}.jpg")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let origin = fixture_origin(&refs);
    let px = Pixgate::start(&origin);
    for n in &refs {
        for accept in [Some("*/*"), Some("image/webp")] {
            let (h, body) = fetch(&px, n, accept).await;
            let img = decode(&body).to_rgb8();
            assert_eq!(
                img.dimensions(),
                (96, 64),
                "{n} {accept:?}: {:?}",
                h.get("x-pixgate")
            );
            let at = |x, y| img.get_pixel(x, y).0;
            let near = |p: [u8; 3], q: [u8; 3]| {
                p.iter()
                    .zip(q)
                    .all(|(a, b)| (*a as i32 - b as i32).abs() < 60)
            };
            assert!(
                near(at(10, 10), [255, 0, 0]),
                "{n}: top-left {:?}",
                at(10, 10)
            );
            assert!(
                near(at(85, 10), [0, 255, 0]),
                "{n}: top-right {:?}",
                at(85, 10)
            );
            assert!(
                near(at(10, 53), [0, 0, 255]),
                "{n}: bottom-left {:?}",
                at(10, 53)
            );
            assert!(
                near(at(85, 53), [255, 255, 255]),
                "{n}: bottom-right {:?}",
                at(85, 53)
            );
        }
    }
}

#[tokio::test]
async fn edge_images_transform_correctly() {
    let origin = fixture_origin(&[
        "alpha.png",
        "gray.jpg",
        "gray.png",
        "cmyk.jpg",
        "rgb16.png",
        "progressive.jpg",
        "meta.jpg",
        "opaque-rgba.png",
    ]);
    let px = Pixgate::start(&origin);

    // Alpha survives in every format that has it, and never becomes JPEG.
    for (accept, ct) in [
        (Some("*/*"), "image/png"),
        (Some("image/jpeg"), "image/png"),
        (Some("image/webp"), "image/webp"),
        (Some(CHROME), "image/avif"),
    ] {
        let (h, body) = fetch(&px, "alpha.png", accept).await;
        if h["x-pixgate"] == "original; reason=not_smaller" && ct == "image/png" {
            // oxipng could not beat the source PNG: the original (a PNG) is the right answer.
            assert!(body == fixture("alpha.png"));
        } else {
            assert_eq!(
                h["content-type"],
                ct,
                "alpha.png {accept:?}: {:?}",
                h.get("x-pixgate")
            );
        }
        let img = decode(&body);
        assert_eq!(img.dimensions(), (128, 96));
        assert!(
            img.to_rgba8().pixels().any(|p| p.0[3] < 250),
            "alpha.png {accept:?}: transparency lost"
        );
    }
    for (name, dims) in [
        ("gray.jpg", (160, 120)),
        ("gray.png", (160, 120)),
        ("cmyk.jpg", (160, 120)),
        ("rgb16.png", (160, 120)),
        ("progressive.jpg", (320, 240)),
        ("opaque-rgba.png", (128, 96)),
    ] {
        for accept in [Some("*/*"), Some("image/webp"), Some(SAFARI)] {
            let (h, body) = fetch(&px, name, accept).await;
            let src = fixture(name);
            let pix = h
                .get("x-pixgate")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            if pix.starts_with("original") {
                // Fail-open is only acceptable because the result was not smaller.
                assert_eq!(pix, "original; reason=not_smaller", "{name} {accept:?}");
                assert!(body == src, "{name}: original bytes");
                continue;
            }
            assert!(body.len() < src.len(), "{name} {accept:?}");
            let img = decode(&body);
            assert_eq!(img.dimensions(), dims, "{name} {accept:?}");
            if name == "cmyk.jpg" {
                // Colours must match the source as an independent decoder renders it.
                let a = image::load_from_memory(&src).unwrap().to_rgb8();
                let b = img.to_rgb8();
                let mean = |i: &image::RgbImage| {
                    i.pixels()
                        .map(|p| p.0.iter().map(|&c| c as u64).sum::<u64>())
                        .sum::<u64>()
                        / (i.len() as u64)
                };
                let (ma, mb) = (mean(&a) as i64, mean(&b) as i64);
                assert!(
                    (ma - mb).abs() < 30,
                    "cmyk.jpg {accept:?}: mean {ma} vs {mb}"
                );
            }
        }
    }
    // Metadata: EXIF (with GPS), XMP, comments and the ICC profile are gone.
    for accept in [Some("*/*"), Some("image/webp"), Some(CHROME)] {
        let (h, body) = fetch(&px, "meta.jpg", accept).await;
        assert!(
            !h["x-pixgate"].to_str().unwrap().starts_with("original"),
            "meta.jpg {accept:?}"
        );
        for marker in [
            &b"SECRET-COMMENT"[..],
            b"SECRET-GPS",
            b"Exif\0\0",
            b"http://ns.adobe.com/xap",
            b"ICC_PROFILE",
        ] {
            assert!(
                !has_marker(&body, marker),
                "meta.jpg {accept:?}: {} left",
                String::from_utf8_lossy(marker)
            );
        }
        assert_eq!(decode(&body).dimensions(), (320, 240));
    }
}

#[tokio::test]
async fn broken_and_hostile_images_fail_open_with_reason_counted() {
    // A HEIF container that libheif cannot read.
    let mut junk_heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    junk_heic.extend_from_slice(&[0xFF; 64]);
    let mut routes: Vec<(&str, Route)> = [
        "animated.gif",
        "truncated.jpg",
        "empty.jpg",
        "bomb.png",
        "bomb.jpg",
    ]
    .iter()
    .map(|n| {
        (
            Box::leak(format!("/f/{n}").into_boxed_str()) as &str,
            Route::ok("image/whatever", fixture(n)),
        )
    })
    .collect();
    routes.push(("/f/junk.heic", Route::ok("image/heic", junk_heic.clone())));
    // Already as small as oxipng's top level makes it: no PNG re-encoding can be smaller.
    let tiny_png = pixgate::image::codec::png::encode(
        &image::DynamicImage::new_rgb8(1, 1),
        pixgate::config::PngConfig { level: 6 },
    )
    .unwrap();
    routes.push(("/f/tiny.png", Route::ok("image/png", tiny_png.clone())));
    let photo = photos()[0].bytes;
    routes.push((
        "/f/no-transform.jpg",
        Route::ok("image/jpeg", photo).header("cache-control", "public, no-transform"),
    ));
    let origin = TestOrigin::start(routes);
    let px = Pixgate::start(&origin);
    let cases = [
        ("no-transform.jpg", "no_transform", photo.to_vec()),
        ("animated.gif", "animated", fixture("animated.gif")),
        ("truncated.jpg", "truncated", fixture("truncated.jpg")),
        ("empty.jpg", "empty", Vec::new()),
        ("bomb.png", "too_many_pixels", fixture("bomb.png")),
        ("bomb.jpg", "too_many_pixels", fixture("bomb.jpg")),
        ("junk.heic", "undecodable", junk_heic),
        ("tiny.png", "not_smaller", tiny_png),
    ];
    for (name, reason, original) in &cases {
        for accept in [Some(CHROME), Some("*/*")] {
            if *name == "animated.gif" && accept == Some(CHROME) {
                // Chrome takes WebP: the animation becomes an animated WebP
                // (animated_gifs_become_animated_webp_with_their_timing).
                let (h, _) = fetch(&px, name, accept).await;
                assert_eq!(h["content-type"], "image/webp");
                continue;
            }
            if *name == "tiny.png" && accept == Some(CHROME) {
                // Lossless WebP beats even this PNG (images.webp.try_lossless): smaller, so sent.
                let (h, body) = fetch(&px, name, accept).await;
                assert_eq!(h["content-type"], "image/webp");
                assert!(body.len() < original.len());
                continue;
            }
            let (h, body) = fetch(&px, name, accept).await;
            assert!(body == original[..], "{name}: the original bytes come back");
            assert_eq!(
                h.get("x-pixgate").map(|v| v.to_str().unwrap()),
                Some(format!("original; reason={reason}").as_str()),
                "{name}: {h:?}"
            );
            assert!(h["vary"].to_str().unwrap().contains("Accept"), "{name}");
        }
    }
    let m = px.metrics().await;
    for (_, reason, _) in &cases {
        let n = metric(
            &m,
            "pixgate_image_transforms_total",
            &[("output", "original"), ("outcome", reason)],
        );
        // Two requests a case, one for tiny.png and animated.gif (Chrome's got a WebP).
        let requests = 2 * cases.iter().filter(|c| c.1 == *reason).count()
            - usize::from(*reason == "not_smaller" || *reason == "animated");
        assert_eq!(
            n, requests as f64,
            "reason {reason} counted once per request\n{m}"
        );
    }
    // Still serving after all that.
    let (h, _) = fetch(&px, "tiny.png", None).await;
    assert!(h.contains_key("x-pixgate"));
}

#[tokio::test]
async fn limits_send_the_original() {
    let photo = photos()[0];
    let origin = TestOrigin::start(vec![
        ("/a.jpg", Route::ok("image/jpeg", photo.bytes)),
        ("/b.jpg", Route::ok("image/jpeg", photo.bytes).chunked()),
    ]);
    // Too large by Content-Length and by counting a chunked body.
    let px = Pixgate::start_with(&origin, |c| {
        c.limits.max_source_bytes = pixgate::config::ByteSize(10_000)
    });
    for p in ["/a.jpg", "/b.jpg"] {
        let r = get(&px.url(p), Some(CHROME)).await;
        assert_eq!(
            r.headers()["x-pixgate"],
            "original; reason=too_large",
            "{p}"
        );
        assert!(r.bytes().await.unwrap() == photo.bytes, "{p}");
    }
    // A transform past its timeout: the original, at once.
    let px = Pixgate::start_with(&origin, |c| {
        c.limits.transform_timeout = pixgate::config::Dur::millis(5);
        c.images.avif.speed = 1;
        // The slow AVIF encode itself, not a WebP stand-in for a predicted-late one.
        c.cache.avif_margin = None;
    });
    let t = std::time::Instant::now();
    let r = get(&px.url("/a.jpg"), Some(CHROME)).await;
    assert_eq!(r.headers()["x-pixgate"], "original; reason=timeout");
    assert!(r.bytes().await.unwrap() == photo.bytes);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "timeout answered late: {:?}",
        t.elapsed()
    );
    // Pixel limit below the photo's size.
    let px = Pixgate::start_with(&origin, |c| c.limits.max_source_pixels = 1000);
    let r = get(&px.url("/a.jpg"), Some(CHROME)).await;
    assert_eq!(r.headers()["x-pixgate"], "original; reason=too_many_pixels");
}

#[tokio::test]
async fn queue_wait_past_bound_gets_the_original() {
    // The largest photo (2 MP): its AVIF encode outlasts the queue bound by far.
    let photo = photos().into_iter().max_by_key(|p| p.bytes.len()).unwrap();
    let origin = TestOrigin::start(vec![("/a.jpg", Route::ok("image/jpeg", photo.bytes))]);
    let px = Pixgate::start_with(&origin, |c| {
        c.limits.max_concurrent_transforms = 1;
        c.limits.queue_timeout = pixgate::config::Dur::millis(50);
        c.images.avif.speed = 6;
        // The pool's bound, not coalescing or the AVIF budget, is under test here.
        c.cache.enabled = false;
    });
    let url = px.url("/a.jpg");
    let reqs: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                get(&url, Some(CHROME)).await.headers()["x-pixgate"]
                    .to_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for r in reqs {
        outcomes.push(r.await.unwrap());
    }
    assert!(
        outcomes
            .iter()
            .any(|o| o == "original; reason=queue_timeout"),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|o| o == "avif"), "{outcomes:?}");
}
