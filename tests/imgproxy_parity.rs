//! imgproxy's processing options end to end (issue 23), through a real origin and a real
//! pixgate, checked by pixels and dimensions with an independent decoder (the image crate's
//! png/zune-jpeg/image-webp; exiftool for the copyright): trim, rotate, flip, crop, padding,
//! zoom, minimum sizes, extend with gravity, pixelate, adjust, background, watermarks (image,
//! text, per rule, tiled), max_bytes on three real photos, format_quality, keep_copyright,
//! `?info=1` and `/info/...` against values computed here, and every option through a signed
//! imgproxy URL.

mod common;
use common::*;
use image::{GenericImageView, Rgba};
use pixgate::config::Config;
use pixgate::security::signing::Signer;

const KEY: &str = "7365637265742d6b65792d6f662d31362b";
const SALT: &str = "68656c6c6f";

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// 200×100: red top-left, green top-right, blue bottom-left, white bottom-right.
fn quadrants() -> Vec<u8> {
    let img = image::RgbImage::from_fn(200, 100, |x, y| {
        image::Rgb(match (x < 100, y < 50) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => WHITE,
        })
    });
    png(&image::DynamicImage::ImageRgb8(img))
}

/// 160×120: a 13-px border of one colour around a gradient.
fn bordered() -> Vec<u8> {
    let img = image::RgbImage::from_fn(160, 120, |x, y| {
        if x < 13 || y < 13 || x >= 147 || y >= 107 {
            image::Rgb([10, 200, 30])
        } else {
            image::Rgb([(x * 2) as u8, (y * 2) as u8, 128])
        }
    });
    png(&image::DynamicImage::ImageRgb8(img))
}

fn solid(w: u32, h: u32, c: [u8; 3]) -> Vec<u8> {
    png(&image::DynamicImage::ImageRgb8(
        image::RgbImage::from_pixel(w, h, image::Rgb(c)),
    ))
}

fn rgb(img: &image::DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let Rgba([r, g, b, _]) = img.get_pixel(x, y);
    [r, g, b]
}

fn near(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

fn origin() -> TestOrigin {
    let gif = fixture("animated.gif");
    let mut routes = vec![
        ("/q.png", Route::ok("image/png", quadrants())),
        ("/border.png", Route::ok("image/png", bordered())),
        (
            "/grey.png",
            Route::ok("image/png", solid(64, 48, [100, 100, 100])),
        ),
        ("/white.png", Route::ok("image/png", solid(200, 100, WHITE))),
        (
            "/products/white.png",
            Route::ok("image/png", solid(200, 100, WHITE)),
        ),
        ("/products/anim.gif", Route::ok("image/gif", gif)),
        ("/alpha.png", Route::ok("image/png", fixture("alpha.png"))),
        (
            "/orient-6.jpg",
            Route::ok("image/jpeg", fixture("orient-6.jpg")),
        ),
    ];
    for name in ["coffee.jpg", "retina.jpg", "rocket-exif.jpg"] {
        let path: &'static str = Box::leak(format!("/photos/{name}").into_boxed_str());
        let bytes = std::fs::read(format!("src/demo/samples/{name}")).unwrap();
        routes.push((path, Route::ok("image/jpeg", bytes)));
    }
    TestOrigin::start(routes)
}

/// Pixgate with a blue 20×10 `default` mark, a text mark `caption`, the URL API on, and a
/// rule that watermarks everything under /products/.
fn start(origin: &TestOrigin) -> (Pixgate, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("mark.png");
    std::fs::write(&mark, solid(20, 10, BLUE)).unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("products.yaml"),
        "rules:\n  - name: products\n    paths: [\"/products/**\"]\n    watermark: \"1:nowe:0:0:0\"\n",
    )
    .unwrap();
    let (mark_path, rules_dir) = (mark.clone(), rules.clone());
    let addr = origin.addr;
    let px = Pixgate::start_with(origin, move |c: &mut Config| {
        use pixgate::image::marks::WatermarkSpec;
        let spec = |file: Option<std::path::PathBuf>, text: Option<&str>| WatermarkSpec {
            file,
            text: text.map(str::to_string),
            size: 20.0,
            color: "ff0000ff".into(),
            shadow: false,
        };
        c.images
            .watermarks
            .insert("default".into(), spec(Some(mark_path), None));
        c.images
            .watermarks
            .insert("caption".into(), spec(None, Some("pixgate")));
        c.rules.dir = Some(rules_dir);
        c.url_api.enabled = true;
        c.url_api.keys = vec![KEY.into()];
        c.url_api.salts = vec![SALT.into()];
        c.url_api.sources = vec![format!("http://{addr}/")];
        c.url_api.allow_ip_ranges = vec![format!("{}/32", addr.ip())];
    });
    (px, dir)
}

async fn fetch(px: &Pixgate, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let r = get(&px.url(path), Some(accept)).await;
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

async fn image_of(px: &Pixgate, path: &str) -> image::DynamicImage {
    let (s, ct, body) = fetch(px, path, CHROME).await;
    assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&body));
    assert!(ct.starts_with("image/"), "{path}: {ct}");
    decode(&body)
}

fn signed(path: &str) -> String {
    let h = pixgate::fetch::config::hex;
    let s = Signer::new(vec![(h(KEY).unwrap(), h(SALT).unwrap())], 32, false);
    format!("/img/{}{path}", s.sign(path).unwrap())
}

/// Colours at the top-left, top-right, bottom-left and bottom-right corners.
type Corners = [[u8; 3]; 4];

#[tokio::test]
async fn turns_flips_crops_padding_and_sizes_by_corner_colours() {
    let o = origin();
    let (px, _d) = start(&o);
    // (query, size, colours at the four corners: TL, TR, BL, BR)
    let cases: [(&str, (u32, u32), Corners); 9] = [
        ("", (200, 100), [RED, GREEN, BLUE, WHITE]),
        ("rotate=90", (100, 200), [BLUE, RED, WHITE, GREEN]),
        ("rotate=180", (200, 100), [WHITE, BLUE, GREEN, RED]),
        ("rotate=270", (100, 200), [GREEN, WHITE, RED, BLUE]),
        ("flip=h", (200, 100), [GREEN, RED, WHITE, BLUE]),
        ("flip=0:1", (200, 100), [BLUE, WHITE, RED, GREEN]),
        ("crop=100:50:nowe", (100, 50), [RED, RED, RED, RED]),
        ("crop=0.5:0.5:soea", (100, 50), [WHITE, WHITE, WHITE, WHITE]),
        // A crop names the turned image: its top-left quarter is now blue.
        (
            "rotate=90&crop=50:100:nowe",
            (50, 100),
            [BLUE, BLUE, BLUE, BLUE],
        ),
    ];
    for (q, size, corners) in cases {
        let img = image_of(&px, &format!("/q.png?fm=png&{q}")).await;
        assert_eq!(img.dimensions(), size, "{q}");
        let (w, h) = size;
        let at = [(2, 2), (w - 3, 2), (2, h - 3), (w - 3, h - 3)];
        for ((x, y), want) in at.into_iter().zip(corners) {
            assert!(
                near(rgb(&img, x, y), want, 2),
                "{q}: ({x},{y}) = {:?}, want {want:?}",
                rgb(&img, x, y)
            );
        }
    }
    // Padding: CSS shorthand, in the background colour, around the whole image.
    let img = image_of(&px, "/q.png?fm=png&padding=10:20&bg=000000").await;
    assert_eq!(img.dimensions(), (240, 120));
    assert_eq!(rgb(&img, 5, 5), [0, 0, 0]);
    assert_eq!(rgb(&img, 235, 115), [0, 0, 0]);
    assert!(near(rgb(&img, 22, 12), RED, 2));
    assert!(near(rgb(&img, 217, 107), WHITE, 2));
    // With dpr=2 the padding is device pixels too.
    let img = image_of(&px, "/q.png?fm=png&w=100&padding=5&dpr=2").await;
    assert_eq!(img.dimensions(), (220, 120));
    // Zoom and minimum sizes.
    assert_eq!(
        image_of(&px, "/q.png?fm=png&zoom=0.5").await.dimensions(),
        (100, 50)
    );
    assert_eq!(
        image_of(&px, "/q.png?fm=png&w=50&zoom=2:2")
            .await
            .dimensions(),
        (100, 50)
    );
    assert_eq!(
        image_of(&px, "/q.png?fm=png&w=50&min-width=120")
            .await
            .dimensions(),
        (120, 60)
    );
    assert_eq!(
        image_of(&px, "/q.png?fm=png&min-height=300")
            .await
            .dimensions(),
        (200, 100),
        "no enlarging without enlarge=1"
    );
    assert_eq!(
        image_of(&px, "/q.png?fm=png&min-height=300&enlarge=1")
            .await
            .dimensions(),
        (600, 300)
    );
    // imgproxy's extend with a gravity: the image sits at the bottom of the canvas.
    let path = format!(
        "/rs:fit:300:300:0:1:so/bg:0:0:0/plain/http://{}/q.png@png",
        o.addr
    );
    let img = image_of(&px, &signed(&path)).await;
    assert_eq!(img.dimensions(), (300, 300));
    assert_eq!(rgb(&img, 150, 10), [0, 0, 0], "padding above");
    assert!(
        near(rgb(&img, 60, 290), BLUE, 2),
        "the image's bottom-left at the bottom"
    );
}

#[tokio::test]
async fn trim_effects_and_background_by_pixels() {
    let o = origin();
    let (px, _d) = start(&o);
    // Trim removes exactly the 13-px border.
    let img = image_of(&px, "/border.png?fm=png&trim=10").await;
    assert_eq!(img.dimensions(), (134, 94));
    assert_eq!(rgb(&img, 0, 0), [26, 26, 128], "the gradient's first pixel");
    // ... also with the colour named, and not at all when the colour is another.
    assert_eq!(
        image_of(&px, "/border.png?fm=png&trim=10:0ac81e")
            .await
            .dimensions(),
        (134, 94)
    );
    assert_eq!(
        image_of(&px, "/border.png?fm=png&trim=10:ffffff")
            .await
            .dimensions(),
        (160, 120)
    );
    // Pixelate: 10×10 blocks of one colour.
    let img = image_of(&px, "/border.png?fm=png&pixelate=10")
        .await
        .to_rgb8();
    for by in 0..12 {
        for bx in 0..16 {
            let first = img.get_pixel(bx * 10, by * 10);
            for (dx, dy) in [(9, 0), (0, 9), (9, 9), (4, 5)] {
                assert_eq!(
                    img.get_pixel(bx * 10 + dx, by * 10 + dy),
                    first,
                    "block ({bx},{by})"
                );
            }
        }
    }
    // Adjust: brightness adds, saturation 0 leaves grey, contrast stretches around 128.
    let img = image_of(&px, "/grey.png?fm=png&brightness=50").await;
    assert_eq!(rgb(&img, 10, 10), [150, 150, 150]);
    let img = image_of(&px, "/grey.png?fm=png&contrast=2").await;
    assert_eq!(rgb(&img, 10, 10), [72, 72, 72]);
    let img = image_of(&px, "/q.png?fm=png&saturation=0").await;
    let [r, g, b] = rgb(&img, 10, 10);
    assert!(
        r == g && g == b && (70..=80).contains(&r),
        "red as grey: {r} {g} {b}"
    );
    // Background: transparency flattened onto the colour, in a format that has alpha too.
    let img = image_of(&px, "/alpha.png?fm=png&bg=ff0000").await;
    assert!(!img.color().has_alpha(), "flattened");
    assert!(near(rgb(&img, 0, 40), RED, 3), "{:?}", rgb(&img, 0, 40));
    let img = image_of(&px, "/alpha.png?fm=webp&lossless=1").await;
    assert!(img.color().has_alpha(), "without bg the alpha stays");
}

#[tokio::test]
async fn watermarks_by_gravity_opacity_tiles_text_and_rule() {
    let o = origin();
    let (px, _d) = start(&o);
    // Half-opaque blue 20×10 at the bottom right, 10 px in from the right, 5 up.
    let img = image_of(&px, "/white.png?fm=png&watermark=0.5:soea:10:5").await;
    assert_eq!(img.dimensions(), (200, 100));
    for (x, y) in [(170, 85), (189, 94), (180, 90)] {
        assert!(
            near(rgb(&img, x, y), [127, 127, 255], 2),
            "({x},{y}) {:?}",
            rgb(&img, x, y)
        );
    }
    for (x, y) in [(169, 90), (190, 90), (180, 84), (180, 95), (10, 10)] {
        assert_eq!(rgb(&img, x, y), WHITE, "({x},{y}) outside the mark");
    }
    // Tiled with 5-px gaps: a mark every 25 px across, 15 down.
    let img = image_of(&px, "/white.png?fm=png&watermark=1:re:5:5").await;
    for (x, y, blue) in [
        (0, 0, true),
        (19, 9, true),
        (22, 3, false),
        (25, 0, true),
        (3, 12, false),
        (3, 15, true),
    ] {
        assert_eq!(
            rgb(&img, x, y) == BLUE,
            blue,
            "({x},{y}) {:?}",
            rgb(&img, x, y)
        );
    }
    // Scale 0.5: the mark fits in half the output (here 100×50 → 100×50 from 20×10).
    let img = image_of(&px, "/white.png?fm=png&watermark=1:nowe:0:0:0.5").await;
    assert!(near(rgb(&img, 95, 45), BLUE, 2), "{:?}", rgb(&img, 95, 45));
    assert_eq!(rgb(&img, 105, 45), WHITE);
    // A text mark: red ink near the top-left.
    let img = image_of(&px, "/white.png?fm=png&watermark=1:nowe:0:0:0:caption")
        .await
        .to_rgb8();
    let red = img
        .enumerate_pixels()
        .filter(|(x, y, p)| *x < 100 && *y < 40 && p[0] > 200 && p[1] < 80)
        .count();
    assert!(red > 30, "{red} red pixels of text");
    // The rule draws its mark on every image under /products/, options or not ...
    let img = image_of(&px, "/products/white.png?fm=png").await;
    assert_eq!(rgb(&img, 5, 5), BLUE);
    let img = image_of(&px, "/products/white.png?w=100&fm=png&watermark=0").await;
    assert_eq!(rgb(&img, 5, 5), BLUE, "a URL cannot remove the rule's mark");
    let img = image_of(&px, "/white.png?fm=png").await;
    assert_eq!(rgb(&img, 5, 5), WHITE, "not elsewhere");
    // ... animations included: the mark is drawn on every frame (animated WebP for Chrome, a
    // GIF for a client without WebP), never the original.
    for accept in [CHROME, "image/gif,*/*"] {
        let (s, ct, body) = fetch(&px, "/products/anim.gif", accept).await;
        assert_eq!(s, 200, "{accept}: {}", String::from_utf8_lossy(&body));
        assert_ne!(
            body,
            fixture("animated.gif"),
            "{accept}: never the original"
        );
        let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&body))
            .map(|d| image::AnimationDecoder::into_frames(d).count())
            .unwrap_or_else(|_| {
                image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&body))
                    .map(|d| image::AnimationDecoder::into_frames(d).count())
                    .unwrap()
            });
        assert_eq!(frames, 3, "{accept} ({ct}): every frame kept");
        let img = decode(&body);
        assert!(
            near(rgb(&img, 5, 5), BLUE, 12),
            "{accept}: {:?}",
            rgb(&img, 5, 5)
        );
    }
    // What cannot be marked is withheld: here a source past the URL's own size limit.
    let (s, _, body) = fetch(&px, "/products/white.png?max_src_file_size=10", CHROME).await;
    assert_eq!(s, 422, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("watermark"));
    // An unknown mark is a bad request.
    let (s, _, body) = fetch(&px, "/white.png?watermark=1:ce:0:0:0:nosuch", CHROME).await;
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("nosuch"));
    // The watermark is part of the variant key.
    let (_, _, a) = fetch(&px, "/white.png?fm=png&watermark=0.5:ce", CHROME).await;
    let (_, _, b) = fetch(&px, "/white.png?fm=png&watermark=0.9:ce", CHROME).await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn max_bytes_fits_three_photos_and_format_quality_applies() {
    let o = origin();
    let (px, _d) = start(&o);
    for name in ["coffee.jpg", "retina.jpg", "rocket-exif.jpg"] {
        for (fm, limit) in [("jpeg", 6000usize), ("webp", 4000), ("jpeg", 1500)] {
            let path = format!("/photos/{name}?fm={fm}&max_bytes={limit}");
            let (s, ct, body) = fetch(&px, &path, CHROME).await;
            assert_eq!(s, 200, "{path}");
            assert_eq!(ct, format!("image/{fm}"));
            assert!(body.len() <= limit, "{path}: {} > {limit}", body.len());
            let img = decode(&body);
            assert!(img.width() > 16, "{path}: {}x{}", img.width(), img.height());
        }
    }
    let size = |q: &'static str| {
        let px = &px;
        async move {
            fetch(px, &format!("/photos/coffee.jpg?fm=webp&{q}"), CHROME)
                .await
                .2
                .len()
        }
    };
    let default = size("w=400").await;
    let low = size("w=400&format_quality=webp:20").await;
    assert!(
        low < default * 3 / 4,
        "format_quality lowers WebP's quality: {low} vs {default}"
    );
    assert_eq!(
        size("w=400&format_quality=avif:20").await,
        default,
        "another format's quality changes nothing"
    );
    assert_eq!(
        size("w=400&q=90&format_quality=webp:20").await,
        size("w=400&q=90").await,
        "a plain quality wins, as in imgproxy"
    );
}

/// A JPEG whose EXIF names a photographer and a copyright.
fn with_copyright() -> Vec<u8> {
    let c = pixgate::image::copyright::Copyright {
        copyright: Some("(c) Example Photo Ltd".into()),
        artist: Some("Ada Lovelace".into()),
    };
    pixgate::image::copyright::insert(&photo(320, 240, 3), &c).unwrap()
}

fn exiftool(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("out.img");
    std::fs::write(&f, bytes).unwrap();
    let out = std::process::Command::new("exiftool")
        .args(["-s", "-Copyright", "-Artist"])
        .arg(&f)
        .output()
        .expect("exiftool (apt-get install libimage-exiftool-perl)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn keep_copyright_carries_only_the_copyright() {
    let o = origin();
    o.set_route("/c.jpg", Route::ok("image/jpeg", with_copyright()));
    let (px, _d) = start(&o);
    assert!(
        exiftool(&with_copyright()).contains("Ada Lovelace"),
        "the source has it"
    );
    for fm in ["jpeg", "webp", "png"] {
        let (s, _, body) = fetch(
            &px,
            &format!("/c.jpg?w=100&fm={fm}&keep_copyright=1"),
            CHROME,
        )
        .await;
        assert_eq!(s, 200);
        let tags = exiftool(&body);
        assert!(
            tags.contains("(c) Example Photo Ltd") && tags.contains("Ada Lovelace"),
            "{fm}: {tags}"
        );
        decode(&body);
        let (_, _, plain) = fetch(&px, &format!("/c.jpg?w=100&fm={fm}"), CHROME).await;
        assert!(
            !exiftool(&plain).contains("Ada"),
            "{fm}: stripped by default"
        );
    }
    // imgproxy's strip_metadata:0 keeps the same, through a signed URL.
    let src = format!("http://{}/c.jpg", o.addr);
    let (s, _, body) = fetch(
        &px,
        &signed(&format!("/w:100/sm:0/plain/{src}@jpeg")),
        CHROME,
    )
    .await;
    assert_eq!(s, 200);
    assert!(exiftool(&body).contains("Ada Lovelace"));
}

#[tokio::test]
async fn info_matches_values_computed_here() {
    let o = origin();
    let (px, _d) = start(&o);
    let src = quadrants();
    let (s, ct, body) = fetch(&px, "/q.png?info=1", CHROME).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["format"], "png");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(200), Some(100))
    );
    assert_eq!(v["bytes"].as_u64(), Some(src.len() as u64));
    assert_eq!(
        (
            v["alpha"].as_bool(),
            v["animated"].as_bool(),
            v["frames"].as_u64()
        ),
        (Some(false), Some(false), Some(1))
    );
    // Average: computed from the source here. Dominant: a quarter each, so one of the four.
    let img = image::load_from_memory(&src).unwrap().to_rgb8();
    let n = f64::from(img.width() * img.height());
    let mean: Vec<f64> = (0..3)
        .map(|c| img.pixels().map(|p| f64::from(p[c])).sum::<f64>() / n)
        .collect();
    let hex = |s: &str| -> [u8; 3] {
        let v = u32::from_str_radix(&s[1..], 16).unwrap();
        [(v >> 16) as u8, (v >> 8) as u8, v as u8]
    };
    let avg = hex(v["average"].as_str().unwrap());
    for c in 0..3 {
        assert!(
            (f64::from(avg[c]) - mean[c]).abs() < 6.0,
            "average {avg:?} vs {mean:?}"
        );
    }
    let dom = hex(v["dominant"].as_str().unwrap());
    assert!([RED, GREEN, BLUE, WHITE].contains(&dom), "{dom:?}");
    // The placeholders decode, to the image's layout: red left of green at the top.
    let bh = blurhash::decode(v["blurhash"].as_str().unwrap(), 8, 4, 1.0).unwrap();
    let px_at = |x: usize, y: usize| &bh[(y * 8 + x) * 4..(y * 8 + x) * 4 + 3];
    assert!(
        px_at(0, 0)[0] > px_at(0, 0)[1] && px_at(7, 0)[1] > px_at(7, 0)[0],
        "{bh:?}"
    );
    let th = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        v["thumbhash"].as_str().unwrap(),
    )
    .unwrap();
    let (r, g, b, _) = thumbhash::thumb_hash_to_average_rgba(&th).unwrap();
    for (got, want) in [r, g, b].into_iter().zip(&mean) {
        assert!(
            (got * 255.0 - *want as f32).abs() < 20.0,
            "thumbhash average {r} {g} {b} vs {mean:?}"
        );
    }
    // EXIF orientation: reported, and the sizes are as shown.
    let (_, _, body) = fetch(&px, "/orient-6.jpg?info=1", CHROME).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            v["width"].as_u64(),
            v["height"].as_u64(),
            v["orientation"].as_u64()
        ),
        (Some(96), Some(64), Some(6))
    );
    // The signed /info URL answers the same JSON, from the cache the second time.
    let path =
        signed(&format!("/plain/http://{}/q.png", o.addr)).replacen("/img/", "/img/info/", 1);
    let (s, _, body) = fetch(&px, &path, FIREFOX).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let api: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        api["blurhash"],
        serde_json::from_slice::<serde_json::Value>(&fetch(&px, "/q.png?info=1", SAFARI).await.2)
            .unwrap()["blurhash"]
    );
    let r = get(&px.url(&path), Some(SAFARI)).await;
    assert_eq!(
        r.headers()["x-cache"],
        "HIT",
        "info is cached, one entry for every Accept"
    );
    // An animation's frames.
    o.set_route("/a.gif", Route::ok("image/gif", fixture("animated.gif")));
    let (_, _, body) = fetch(&px, "/a.gif?info=1", CHROME).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["animated"].as_bool(), v["frames"].as_u64()),
        (Some(true), Some(3))
    );
}

#[tokio::test]
async fn every_option_works_through_a_signed_url_and_unknown_ones_are_named() {
    let o = origin();
    let (px, _d) = start(&o);
    let src = format!("http://{}/q.png", o.addr);
    for (opts, size) in [
        ("rot:90", (100, 200)),
        ("fl:1:0", (200, 100)),
        ("c:100:50:nowe", (100, 50)),
        ("t:10", (200, 100)),
        ("pd:10", (220, 120)),
        ("pix:8", (200, 100)),
        ("a:20:1.1:0.9", (200, 100)),
        ("br:20/co:1.1/sa:0.9", (200, 100)),
        ("z:0.5", (100, 50)),
        ("w:50/mw:100", (100, 50)),
        ("wm:0.5:soea:4:4:0.1", (200, 100)),
        ("mb:3000", (200, 100)),
        ("fq:webp:30", (200, 100)),
        ("kcr:1", (200, 100)),
        ("ex:1:so/rs:fit:300:150", (300, 150)),
        ("mrd:50", (50, 25)),
        ("exar:1:so/rs:fit:100:100", (100, 100)),
        ("eth:1/ra:lanczos3/ar:1/scp:1/cb:7", (200, 100)),
        ("bga:0.5/bg:ff0000/pd:5", (210, 110)),
    ] {
        let path = signed(&format!("/{opts}/plain/{src}@png"));
        let (s, _, body) = fetch(&px, &path, CHROME).await;
        assert_eq!(s, 200, "{opts}: {}", String::from_utf8_lossy(&body));
        let img = decode(&body);
        if opts != "mb:3000" {
            assert_eq!(img.dimensions(), size, "{opts}");
        } else {
            assert!(body.len() <= 3000, "{opts}: {}", body.len());
        }
    }
    // Padding in a half-transparent red (bga after bg or before: the same).
    let img = decode(
        &fetch(
            &px,
            &signed(&format!("/bga:0.5/bg:ff0000/pd:5/plain/{src}@png")),
            CHROME,
        )
        .await
        .2,
    );
    assert_eq!(img.get_pixel(1, 1), Rgba([255, 0, 0, 128]));
    // Sent as they are: skipped formats, raw, and sources past the URL's own limits.
    for (opts, reason) in [
        ("skp:jpg:png", "skip_processing"),
        ("raw:1", "skip_processing"),
        ("msfs:100", "too_large"),
        ("msr:0.01", "too_many_pixels"),
    ] {
        let r = get(
            &px.url(&signed(&format!("/w:50/{opts}/plain/{src}"))),
            Some(CHROME),
        )
        .await;
        assert_eq!(r.status(), 200, "{opts}");
        assert_eq!(
            r.headers()["x-pixgate"],
            format!("original; reason={reason}"),
            "{opts}"
        );
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            quadrants(),
            "{opts}: the source's bytes"
        );
    }
    let r = get(
        &px.url(&signed(&format!("/w:50/skp:jpg/plain/{src}"))),
        Some(CHROME),
    )
    .await;
    assert_eq!(
        decode(&r.bytes().await.unwrap()).width(),
        50,
        "another format is processed"
    );
    // Gravity offsets: a fill crop 50 px in from the left edge (half red, half green), a crop
    // region 100 px in (green), and extend's padding at 10/20 from the top left.
    let img = decode(
        &fetch(
            &px,
            &signed(&format!("/rs:fill:100:100/g:nowe:50:0/plain/{src}@png")),
            CHROME,
        )
        .await
        .2,
    );
    assert_eq!((rgb(&img, 10, 10), rgb(&img, 90, 10)), (RED, GREEN));
    let img = decode(
        &fetch(
            &px,
            &signed(&format!("/c:50:50:nowe:100:0/plain/{src}@png")),
            CHROME,
        )
        .await
        .2,
    );
    assert_eq!(
        (img.dimensions(), rgb(&img, 5, 5), rgb(&img, 45, 45)),
        ((50, 50), GREEN, GREEN)
    );
    let img = decode(
        &fetch(
            &px,
            &signed(&format!(
                "/rs:fit:300:300:0:1:nowe:10:20/bg:0:0:0/plain/{src}@png"
            )),
            CHROME,
        )
        .await
        .2,
    );
    assert_eq!(
        (rgb(&img, 5, 25), rgb(&img, 15, 15), rgb(&img, 15, 25)),
        ([0, 0, 0], [0, 0, 0], RED)
    );
    let img = image_of(&px, "/q.png?fm=png&w=100&h=100&fit=cover&g=nowe:50:0").await;
    assert_eq!(
        (rgb(&img, 10, 10), rgb(&img, 90, 10)),
        (RED, GREEN),
        "the query's g takes offsets too"
    );
    // filename and return_attachment: a Content-Disposition, part of the key.
    let r = get(
        &px.url(&signed(&format!("/fn:report/att:1/plain/{src}@webp"))),
        Some(CHROME),
    )
    .await;
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"report.webp\"; filename*=UTF-8''report.webp"
    );
    let r = get(
        &px.url(&signed(&format!("/att:0/plain/{src}@webp"))),
        Some(CHROME),
    )
    .await;
    assert_eq!(
        r.headers()["content-disposition"],
        "inline; filename=\"q.webp\"; filename*=UTF-8''q.webp",
        "the source's name by default"
    );
    let r = get(
        &px.url(&signed(&format!("/plain/{src}@webp"))),
        Some(CHROME),
    )
    .await;
    assert!(
        r.headers().get("content-disposition").is_none(),
        "only when asked"
    );
    let fetched = o.hits("/q.png");
    for (opts, name) in [
        ("page:2", "page"),
        ("rot:45", "rot"),
        ("wm:2", "wm"),
        ("fq:png:50", "fq"),
    ] {
        let (s, _, body) = fetch(&px, &signed(&format!("/{opts}/plain/{src}")), CHROME).await;
        assert_eq!(s, 400, "{opts}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(&format!("`{name}`")), "{opts}: {body}");
    }
    assert_eq!(
        o.hits("/q.png"),
        fetched,
        "bad options never reach the source"
    );
}
