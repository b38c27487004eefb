//! URL transform options end to end: every fit mode gives exact dimensions (checked with an
//! independent decoder), gravity and smart crops keep the right part, DPR and limits apply,
//! the options never reach the origin, bad values get a 400 naming the parameter, and each
//! option set is its own cached variant.

mod common;
use common::*;
use image::{GenericImageView, ImageEncoder};

const WEBP: &str = "image/webp,*/*";

/// A 400×300 JPEG: left half red, right half blue, a green band at the top.
fn halves() -> Vec<u8> {
    let img = image::RgbImage::from_fn(400, 300, |x, y| {
        if y < 30 {
            image::Rgb([0, 200, 0])
        } else if x < 200 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(&img)
        .unwrap();
    out
}

fn sample(name: &str) -> &'static [u8] {
    pixgate::demo::SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .bytes
}

async fn fetch(
    px: &Pixgate,
    path: &str,
    accept: &str,
) -> (reqwest::header::HeaderMap, image::DynamicImage) {
    let r = get(&px.url(path), Some(accept)).await;
    assert_eq!(r.status(), 200, "{path}");
    let h = r.headers().clone();
    let body = r.bytes().await.unwrap();
    (h, decode(&body))
}

#[tokio::test]
async fn every_fit_mode_gives_exact_dimensions() {
    let origin = TestOrigin::start(vec![("/p.jpg", Route::ok("image/jpeg", halves()))]);
    let px = Pixgate::start(&origin);
    for (query, dims) in [
        ("w=200", (200, 150)),
        ("h=100", (133, 100)),
        ("width=100&height=100", (100, 75)),
        ("w=200&h=200&fit=inside", (200, 150)),
        ("w=200&h=200&fit=cover", (200, 200)),
        ("w=200&h=200&fit=crop", (200, 200)),
        ("w=200&h=200&fit=contain", (200, 200)),
        ("w=200&h=200&fit=fill", (200, 200)),
        ("w=200&h=200&fit=outside", (267, 200)),
        ("w=150&h=50&fit=cover", (150, 50)),
        ("w=800", (400, 300)),
        ("w=800&enlarge=1", (800, 600)),
        ("w=800&h=800&fit=cover", (300, 300)),
        ("w=100&dpr=2", (200, 150)),
        ("w=100&dpr=10", (300, 225)),
        ("w=9000&h=9000&enlarge=1", (4096, 3072)),
    ] {
        for accept in [WEBP, "*/*"] {
            let (h, img) = fetch(&px, &format!("/p.jpg?{query}"), accept).await;
            assert_eq!(
                img.dimensions(),
                dims,
                "{query} with {accept}: {:?}",
                h.get("x-pixgate")
            );
        }
    }
    // 16 option sets x 2 plans, less `fit=crop`, which is `fit=cover` (one variant).
    assert_eq!(
        origin.hits("/p.jpg"),
        30,
        "each distinct option set is its own variant"
    );
}

#[tokio::test]
async fn gravity_and_smart_crops_keep_the_right_part() {
    let origin = TestOrigin::start(vec![("/p.jpg", Route::ok("image/jpeg", halves()))]);
    let px = Pixgate::start(&origin);
    let px_at = |img: &image::DynamicImage, x, y| img.to_rgb8().get_pixel(x, y).0;
    let red = |p: [u8; 3]| p[0] > 150 && p[2] < 100;
    let blue = |p: [u8; 3]| p[2] > 150 && p[0] < 100;
    let green = |p: [u8; 3]| p[1] > 150 && p[0] < 100;
    let (_, img) = fetch(&px, "/p.jpg?w=100&h=100&fit=cover&g=we", "*/*").await;
    assert!(red(px_at(&img, 50, 60)), "west keeps the red half");
    let (_, img) = fetch(&px, "/p.jpg?w=100&h=100&fit=cover&g=east", "*/*").await;
    assert!(blue(px_at(&img, 50, 60)), "east keeps the blue half");
    let (_, img) = fetch(&px, "/p.jpg?w=100&h=100&fit=cover&g=fp:0.9:0.5", "*/*").await;
    assert!(blue(px_at(&img, 50, 60)), "a focal point on the right");
    let (_, img) = fetch(&px, "/p.jpg?w=400&h=30&fit=cover&g=no", "*/*").await;
    assert!(green(px_at(&img, 200, 15)), "north keeps the top band");
    let (_, img) = fetch(&px, "/p.jpg?w=200&h=200&fit=contain&bg=000000", "*/*").await;
    assert_eq!(img.dimensions(), (200, 200));
    assert!(
        px_at(&img, 100, 5).iter().all(|c| *c < 30),
        "black letterbox"
    );

    // Smart: a flat image with detail in one corner.
    let mut busy = image::RgbImage::from_pixel(600, 200, image::Rgb([120, 120, 120]));
    for y in 20..180 {
        for x in 20..180 {
            // 10-pixel checks: detail that survives the 2x downscale.
            let v = if (x / 10 + y / 10) % 2 == 0 { 20 } else { 235 };
            busy.put_pixel(x, y, image::Rgb([v, v, v]));
        }
    }
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 95)
        .encode_image(&busy)
        .unwrap();
    let origin = TestOrigin::start(vec![("/busy.jpg", Route::ok("image/jpeg", jpg))]);
    let px = Pixgate::start(&origin);
    let (_, center) = fetch(&px, "/busy.jpg?w=100&h=100&fit=cover", "*/*").await;
    let (_, smart) = fetch(&px, "/busy.jpg?w=100&h=100&fit=cover&g=sm", "*/*").await;
    let spread = |img: &image::DynamicImage| {
        let g = img.to_luma8();
        let (lo, hi) = g
            .pixels()
            .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
        hi - lo
    };
    assert!(spread(&center) < 40, "the centre crop is flat grey");
    assert!(spread(&smart) > 100, "the smart crop found the detail");
}

#[tokio::test]
async fn options_never_reach_the_origin_and_bad_ones_are_named() {
    let origin = TestOrigin::start(vec![("/p.jpg", Route::ok("image/jpeg", halves()))]);
    let px = Pixgate::start_with(&origin, |c| {
        c.images.formats = vec![
            pixgate::image::format::OutputFormat::Webp,
            pixgate::image::format::OutputFormat::Jpeg,
        ]
    });
    let _ = fetch(&px, "/p.jpg?v=7&w=120&fit=cover&h=90&q=60", WEBP).await;
    assert_eq!(
        origin.last_uri("/p.jpg"),
        "/p.jpg?v=7",
        "only the origin's own parameter"
    );
    let _ = fetch(&px, "/p.jpg?w=120", WEBP).await;
    assert_eq!(origin.last_uri("/p.jpg"), "/p.jpg");

    for (query, param) in [
        ("w=0", "w"),
        ("w=wide", "w"),
        ("fit=banana", "fit"),
        ("q=500", "q"),
        ("g=fp:7:7", "g"),
        ("dpr=-1", "dpr"),
        ("fm=gif", "fm"),
        ("fm=avif", "fm"),
    ] {
        let before = origin.hits("/p.jpg");
        let r = get(&px.url(&format!("/p.jpg?{query}")), Some(WEBP)).await;
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        let body = r.text().await.unwrap();
        assert!(
            body.contains(&format!("parameter `{param}`")),
            "{query}: {body}"
        );
        assert_eq!(
            origin.hits("/p.jpg"),
            before,
            "a bad request never reaches the origin"
        );
    }
}

#[tokio::test]
async fn formats_quality_and_variants() {
    let origin = TestOrigin::start(vec![(
        "/c.jpg",
        Route::ok("image/jpeg", sample("coffee.jpg")).header("cache-control", "max-age=600"),
    )]);
    let px = Pixgate::start_with(&origin, |c| c.cache.avif_budget = None);
    // fm forces the format whatever Accept says; AVIF is decoded by avifdec.
    for (q, ct) in [
        ("fm=png", "image/png"),
        ("fm=webp", "image/webp"),
        ("fm=avif", "image/avif"),
    ] {
        let r = get(&px.url(&format!("/c.jpg?w=160&{q}")), Some("*/*")).await;
        assert_eq!(r.headers()["content-type"], ct, "{q}");
        let img = decode(&r.bytes().await.unwrap());
        assert_eq!(img.width(), 160, "{q}");
    }
    // Browsers get AVIF at the requested size.
    let r = get(&px.url("/c.jpg?w=300"), Some(CHROME)).await;
    assert_eq!(r.headers()["content-type"], "image/avif");
    assert_eq!(decode(&r.bytes().await.unwrap()).width(), 300);
    // Lower quality, fewer bytes.
    let low = get(&px.url("/c.jpg?w=400&q=30"), Some(WEBP))
        .await
        .bytes()
        .await
        .unwrap();
    let high = get(&px.url("/c.jpg?w=400&q=95"), Some(WEBP))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        low.len() * 2 < high.len(),
        "q=30 {} vs q=95 {}",
        low.len(),
        high.len()
    );
    // The same options in another order are the same variant.
    let a = get(&px.url("/c.jpg?w=200&h=100&fit=cover"), Some(WEBP)).await;
    assert_eq!(a.headers()["x-cache"], "MISS");
    let b = get(&px.url("/c.jpg?fit=crop&h=100&w=200"), Some(WEBP)).await;
    assert_eq!(b.headers()["x-cache"], "HIT", "canonical options, one key");
    let c = get(&px.url("/c.jpg?w=201&h=100&fit=cover"), Some(WEBP)).await;
    assert_eq!(c.headers()["x-cache"], "MISS");
}

#[tokio::test]
async fn resizing_keeps_orientation_and_reduced_dct_decoding_is_faithful() {
    let origin = TestOrigin::start(vec![
        (
            "/rocket.jpg",
            Route::ok("image/jpeg", sample("rocket-exif.jpg")),
        ),
        ("/retina.jpg", Route::ok("image/jpeg", sample("retina.jpg"))),
    ]);
    let px = Pixgate::start(&origin);
    // EXIF orientation 6: the upright image is portrait; a width is the upright width.
    let upright = {
        let mut d = image::ImageReader::new(std::io::Cursor::new(sample("rocket-exif.jpg")))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        use image::ImageDecoder;
        let o = d.orientation().unwrap();
        let mut i = image::DynamicImage::from_decoder(d).unwrap();
        i.apply_orientation(o);
        i.dimensions()
    };
    let (_, img) = fetch(&px, "/rocket.jpg?w=100", "*/*").await;
    let want_h = (f64::from(upright.1) * 100.0 / f64::from(upright.0)).round() as u32;
    assert_eq!(img.dimensions(), (100, want_h));

    // A 1411×1411 photo to 128 px is decoded at 1/4 scale: compare with a full-size reference
    // resize by the image crate.
    let (_, small) = fetch(&px, "/retina.jpg?w=128", "*/*").await;
    assert_eq!(small.dimensions(), (128, 128));
    let reference = image::load_from_memory(sample("retina.jpg"))
        .unwrap()
        .resize_exact(128, 128, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let got = small.to_rgb8();
    let diff: f64 = got
        .pixels()
        .zip(reference.pixels())
        .map(|(a, b)| {
            a.0.iter()
                .zip(b.0)
                .map(|(x, y)| f64::from(x.abs_diff(y)))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (128.0 * 128.0 * 3.0);
    assert!(
        diff < 6.0,
        "mean abs difference {diff:.2} from a full-decode resize"
    );
}

#[tokio::test]
async fn client_hints_fill_what_the_url_leaves_out() {
    let origin = TestOrigin::start(vec![
        ("/p.jpg", Route::ok("image/jpeg", halves())),
        (
            "/page",
            Route::ok("text/html; charset=utf-8", "<img src=/p.jpg>"),
        ),
    ]);
    let ask = |px: &Pixgate, path: &str, hints: &[(&'static str, &'static str)]| {
        let mut r = client().get(px.url(path)).header("accept", WEBP);
        for (k, v) in hints {
            r = r.header(*k, *v);
        }
        r.send()
    };
    let px = Pixgate::start_with(&origin, |c| c.transform.client_hints = true);
    let r = ask(&px, "/p.jpg?w=100", &[("sec-ch-dpr", "2")])
        .await
        .unwrap();
    let vary = r.headers()["vary"].to_str().unwrap().to_string();
    assert!(
        vary.contains("Sec-CH-DPR") && vary.contains("Save-Data"),
        "{vary}"
    );
    assert_eq!(
        decode(&r.bytes().await.unwrap()).width(),
        200,
        "DPR 2 from the hint"
    );
    let r = ask(&px, "/p.jpg", &[("sec-ch-width", "333")])
        .await
        .unwrap();
    assert_eq!(
        decode(&r.bytes().await.unwrap()).width(),
        350,
        "Width, stepped to 50"
    );
    let r = ask(&px, "/p.jpg?w=100&dpr=1", &[("dpr", "3")])
        .await
        .unwrap();
    assert_eq!(
        decode(&r.bytes().await.unwrap()).width(),
        100,
        "the URL wins"
    );
    let plain = ask(&px, "/p.jpg?w=300", &[])
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let saving = ask(&px, "/p.jpg?w=300", &[("save-data", "on")])
        .await
        .unwrap();
    let saving = saving.bytes().await.unwrap();
    assert!(
        saving.len() < plain.len(),
        "Save-Data: {} vs {}",
        saving.len(),
        plain.len()
    );
    let page = ask(&px, "/page", &[]).await.unwrap();
    assert_eq!(
        page.headers()["accept-ch"],
        "Sec-CH-DPR, Sec-CH-Width, DPR, Width"
    );

    // A browser navigation (pingora's proxy path) gets it too.
    let nav = client()
        .get(px.url("/page"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(
        nav.headers()["accept-ch"],
        "Sec-CH-DPR, Sec-CH-Width, DPR, Width"
    );

    // Off (the default): hints change nothing and are not advertised.
    let px = Pixgate::start(&origin);
    let r = ask(&px, "/p.jpg?w=100", &[("sec-ch-dpr", "2")])
        .await
        .unwrap();
    assert_eq!(r.headers()["vary"], "Accept");
    assert_eq!(decode(&r.bytes().await.unwrap()).width(), 100);
    assert!(!ask(&px, "/page", &[])
        .await
        .unwrap()
        .headers()
        .contains_key("accept-ch"));
}

/// A 600×400 "screenshot" PNG: flat panels and dark strokes, a dozen colours.
fn screenshot() -> Vec<u8> {
    let img = image::RgbImage::from_fn(600, 400, |x, y| match (x, y) {
        (_, 0..=39) => image::Rgb([40, 90, 200]),
        (0..=119, _) => image::Rgb([235, 235, 240]),
        _ if (y / 6) % 3 == 0 && (x / 9) % 4 != 3 => image::Rgb([30, 30, 30]),
        _ if (x + y) % 97 == 0 => image::Rgb([200, 40, 40]),
        _ => image::Rgb([255, 255, 255]),
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&img, 600, 400, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// The WebP chunk that holds the image: `VP8L` (lossless) or `VP8 ` (lossy).
fn webp_kind(b: &[u8]) -> &str {
    std::str::from_utf8(&b[12..16]).unwrap_or("?")
}

async fn body(px: &Pixgate, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let r = get(&px.url(path), Some(accept)).await;
    let status = r.status().as_u16();
    let ct = r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap_or("")
        .to_string();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

/// Graphics get lossless WebP when it is smaller than lossy WebP or (for clients that take
/// both) AVIF, with exact pixels checked by an independent decoder; `images.webp.try_lossless:
/// false` keeps lossy; `lossless=1` limits
/// the negotiation to WebP and PNG (Chrome gets lossless WebP, not AVIF; `*/*` gets PNG) and
/// a format without a lossless encoder is refused.
#[tokio::test]
async fn graphics_get_lossless_webp_and_lossless_1_keeps_every_pixel() {
    let shot = screenshot();
    let source = decode(&shot).to_rgb8();
    let origin = TestOrigin::start(vec![
        ("/shot.png", Route::ok("image/png", shot.clone())),
        ("/p.jpg", Route::ok("image/jpeg", halves())),
    ]);
    let px = Pixgate::start(&origin);
    let (s, ct, b) = body(&px, "/shot.png", WEBP).await;
    assert_eq!((s, ct.as_str(), webp_kind(&b)), (200, "image/webp", "VP8L"));
    assert!(b.len() < shot.len());
    assert!(decode(&b).to_rgb8() == source, "lossless keeps every pixel");

    let lossy = Pixgate::start_with(&origin, |c| c.images.webp.try_lossless = false);
    let (_, ct, l) = body(&lossy, "/shot.png", WEBP).await;
    assert_eq!((ct.as_str(), webp_kind(&l)), ("image/webp", "VP8 "));
    assert!(
        b.len() < l.len(),
        "lossless {} < lossy {}",
        b.len(),
        l.len()
    );

    // A browser that takes AVIF and WebP gets the smaller: here the lossless WebP; a client
    // that names AVIF only gets AVIF.
    let (s, ct, b) = body(&px, "/shot.png", CHROME).await;
    assert_eq!((s, ct.as_str(), webp_kind(&b)), (200, "image/webp", "VP8L"));
    let (s, ct, avif) = body(&px, "/shot.png", "image/avif,*/*").await;
    assert_eq!((s, ct.as_str()), (200, "image/avif"));
    assert!(
        b.len() < avif.len(),
        "webp {} < avif {}",
        b.len(),
        avif.len()
    );
    assert!(decode(&avif).to_rgb8().dimensions() == source.dimensions());

    let (s, ct, b) = body(&px, "/p.jpg?w=200&lossless=1", CHROME).await;
    assert_eq!((s, ct.as_str(), webp_kind(&b)), (200, "image/webp", "VP8L"));
    assert_eq!(decode(&b).dimensions(), (200, 150));
    let (s, ct, b) = body(&px, "/shot.png?w=300&lossless=1", "*/*").await;
    assert_eq!((s, ct.as_str()), (200, "image/png"));
    assert_eq!(decode(&b).dimensions(), (300, 200));
    let (s, _, _) = body(&px, "/p.jpg?fm=avif&lossless=1", CHROME).await;
    assert_eq!(s, 400);
    let (s, _, _) = body(&px, "/p.jpg?lossless=maybe", CHROME).await;
    assert_eq!(s, 400);
}
