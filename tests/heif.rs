//! AVIF and HEIC sources (issue 21 item 2), made by encoders that share no code with pixgate
//! (libheif's `heif-enc` with x265, libavif's `avifenc` with aom), decoded by libheif, resized
//! and re-encoded; outputs checked by independent decoders (`avifdec`, the image crate).

mod common;
use common::*;

/// A 320×240 picture whose quarters are red, green, blue and white, on a soft gradient:
/// orientation and colour survive or they do not.
fn quarters_png(dir: &std::path::Path) -> std::path::PathBuf {
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        let base = match (x < 160, y < 120) {
            (true, true) => [220, 30, 30],
            (false, true) => [30, 200, 40],
            (true, false) => [30, 40, 220],
            (false, false) => [235, 235, 235],
        };
        let g = ((x + y) % 16) as u8;
        image::Rgb(base.map(|c: u8| c.saturating_sub(g)))
    });
    let p = dir.join("q.png");
    img.save(&p).expect("png");
    p
}

/// Runs an encoder tool (`args`, with `{in}` and `{out}` standing for the two files) and
/// returns the file it wrote.
fn encode_with(
    tool: &str,
    args: &[&str],
    input: &std::path::Path,
    out: &std::path::Path,
) -> Vec<u8> {
    let args: Vec<std::ffi::OsString> = args
        .iter()
        .map(|a| match *a {
            "{in}" => input.as_os_str().to_owned(),
            "{out}" => out.as_os_str().to_owned(),
            a => a.into(),
        })
        .collect();
    let o = std::process::Command::new(tool)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} (scripts/deps.sh test installs it): {e}"));
    assert!(
        o.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).expect("encoded file")
}

/// The colour name of the quarter around (x, y) of `img`.
fn quarter(img: &image::RgbaImage, x: u32, y: u32) -> &'static str {
    let p = img.get_pixel(x, y).0;
    match (p[0] > 150, p[1] > 150, p[2] > 150) {
        (true, false, false) => "red",
        (false, true, false) => "green",
        (false, false, true) => "blue",
        (true, true, true) => "white",
        _ => "?",
    }
}

fn assert_quarters(img: &image::DynamicImage, what: &str) {
    let img = img.to_rgba8();
    let (w, h) = img.dimensions();
    let got = [
        quarter(&img, w / 4, h / 4),
        quarter(&img, 3 * w / 4, h / 4),
        quarter(&img, w / 4, 3 * h / 4),
        quarter(&img, 3 * w / 4, 3 * h / 4),
    ];
    assert_eq!(got, ["red", "green", "blue", "white"], "{what}");
}

/// HEIC (an iPhone's format) and AVIF sources are decoded and come back resized in the
/// format each browser takes; a client without AVIF gets a JPEG even when the JPEG is larger
/// than the source (the original is no answer it could show); a HEIC declaring a huge canvas
/// is refused from its header; a truncated one fails open.
#[tokio::test]
async fn heic_and_avif_sources_become_what_browsers_show() {
    let dir = tempfile::tempdir().expect("tmp");
    let png = quarters_png(dir.path());
    let heic = encode_with(
        "heif-enc",
        &["-q", "40", "-o", "{out}", "{in}"],
        &png,
        &dir.path().join("a.heic"),
    );
    let avif = encode_with(
        "avifenc",
        &["-s", "10", "--min", "20", "--max", "30", "{in}", "{out}"],
        &png,
        &dir.path().join("a.avif"),
    );
    let mut huge = heic.clone();
    let at = huge
        .windows(4)
        .position(|w| w == b"ispe")
        .expect("ispe box")
        + 8;
    huge[at..at + 8].copy_from_slice(&[0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20]); // 20000×20000: within libheif's own limit, past pixgate's
    let origin = TestOrigin::start(vec![
        ("/a.heic", Route::ok("image/heic", heic.clone())),
        ("/a.avif", Route::ok("image/avif", avif.clone())),
        ("/huge.heic", Route::ok("image/heic", huge.clone())),
        (
            "/cut.heic",
            Route::ok("image/heic", heic[..heic.len() / 2].to_vec()),
        ),
    ]);
    // AVIF clients wait for AVIF (no WebP stand-in while it encodes).
    let px = Pixgate::start_with(&origin, |c| c.cache.avif_budget = None);

    for (path, accept, mime, dims) in [
        ("/a.heic?w=160", CHROME, "image/avif", (160, 120)),
        ("/a.heic?w=160", SAFARI, "image/avif", (160, 120)),
        ("/a.heic", "image/webp,*/*", "image/webp", (320, 240)),
        ("/a.heic", "*/*", "image/jpeg", (320, 240)),
        ("/a.avif?w=100", FIREFOX, "image/avif", (100, 75)),
        ("/a.avif", "image/webp,*/*", "image/webp", (320, 240)),
        ("/a.avif", "image/png,*/*", "image/jpeg", (320, 240)),
    ] {
        let r = get(&px.url(path), Some(accept)).await;
        assert_eq!(r.status(), 200, "{path} {accept}");
        assert_eq!(
            r.headers()["content-type"],
            mime,
            "{path} {accept}: {:?}",
            r.headers().get("x-pixgate")
        );
        let body = r.bytes().await.expect("body");
        let img = decode(&body);
        assert_eq!((img.width(), img.height()), dims, "{path} {accept}");
        assert_quarters(&img, &format!("{path} for {accept}"));
    }
    // The JPEG for `*/*` is larger than the HEIC it replaces: sent all the same.
    let r = get(&px.url("/a.heic"), Some("*/*")).await;
    let jpeg = r.bytes().await.expect("body").len();
    assert!(jpeg > heic.len(), "{jpeg} vs {}", heic.len());

    let t0 = std::time::Instant::now();
    let r = get(&px.url("/huge.heic?w=100"), Some(CHROME)).await;
    assert_eq!(r.headers()["x-pixgate"], "original; reason=too_many_pixels");
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
    let r = get(&px.url("/cut.heic?w=100"), Some(CHROME)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-pixgate"], "original; reason=undecodable");
    assert_eq!(r.bytes().await.expect("body").len(), heic.len() / 2);
}

/// An iPhone-style HEIC upload to the compression service comes back as a JPEG (no Accept:
/// the photo family) or the WebP asked for, never as HEIC.
#[tokio::test]
async fn a_heic_upload_becomes_a_jpeg_or_webp() {
    let dir = tempfile::tempdir().expect("tmp");
    let png = quarters_png(dir.path());
    let heic = encode_with(
        "heif-enc",
        &["-q", "60", "-o", "{out}", "{in}"],
        &png,
        &dir.path().join("IMG_0001.heic"),
    );
    let origin = TestOrigin::start(vec![]);
    let px = Pixgate::start_with(&origin, |c| {
        c.upload.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 1)));
    });
    for (query, format, mime) in [
        ("", "jpeg", "image/jpeg"),
        ("format=webp&width=160", "webp", "image/webp"),
    ] {
        let r = client()
            .post(px.upload_url(&format!("/api/v1/images?{query}")))
            .header("content-type", "image/heic")
            .body(heic.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 200);
        let v: serde_json::Value =
            serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
        assert_eq!(v["files"][0]["format"], format, "{v}");
        let link = v["files"][0]["link"].as_str().expect("link").to_string();
        let r = client()
            .get(px.upload_url(&link))
            .send()
            .await
            .expect("download");
        assert_eq!(r.headers()["content-type"], mime);
        let img = decode(&r.bytes().await.expect("body"));
        assert_eq!(img.width(), if query.is_empty() { 320 } else { 160 });
        assert_quarters(&img, query);
    }
}
