//! Per-path rules end to end: the most specific rule wins; formats, quality, size caps,
//! presets, TTL caps, bypass and signature requirements apply; a changed file reloads without
//! a failed request; a bad file keeps the old rules and is counted; check-config names the
//! file, line and key.

mod common;
use common::*;
use image::GenericImageView;
use std::time::{Duration, Instant};

const RULES: &str = r#"presets:
  thumb: "w=50&h=50&fit=cover"
rules:
  - name: photos
    hosts: ["127.0.0.1"]
    paths: ["/photos/**"]
    formats: [webp, jpeg]
    quality: { webp: 30 }
    max_width: 100
    ttl: 1s
  - name: special
    hosts: ["127.0.0.1"]
    paths: ["/photos/special/**"]
    formats: [avif]
  - name: raw
    paths: ["/raw/**"]
    bypass: true
  - name: locked
    paths: ["/locked/**"]
    require_signature: true
"#;

fn origin() -> TestOrigin {
    let r = |seed| {
        Route::ok("image/jpeg", photo(400, 300, seed)).header("cache-control", "max-age=3600")
    };
    TestOrigin::start(vec![
        ("/photos/a.jpg", r(1)),
        ("/photos/special/a.jpg", r(1)),
        ("/other/a.jpg", r(1)),
        ("/raw/a.jpg", r(1)),
        ("/locked/a.jpg", r(1)),
    ])
}

fn start(origin: &TestOrigin, dir: &std::path::Path) -> Pixgate {
    let dir = dir.to_path_buf();
    Pixgate::start_with(origin, move |c| {
        c.rules.dir = Some(dir);
        c.rules.poll_interval = pixgate::config::Dur::millis(50);
        c.cache.avif_budget = None;
    })
}

async fn ct(px: &Pixgate, path: &str, accept: &str) -> (String, reqwest::Response) {
    let r = get(&px.url(path), Some(accept)).await;
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (ct, r)
}

#[tokio::test]
async fn the_most_specific_rule_applies_its_policy() {
    let o = origin();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yaml"), RULES).unwrap();
    let px = start(&o, dir.path());

    let (c, r) = ct(&px, "/photos/a.jpg", CHROME).await;
    assert_eq!(c, "image/webp", "the rule allows no AVIF");
    assert_eq!(decode(&r.bytes().await.unwrap()).width(), 100, "max_width");
    let (c, _) = ct(&px, "/photos/special/a.jpg", CHROME).await;
    assert_eq!(c, "image/avif", "the longer literal path wins");
    let (c, _) = ct(&px, "/other/a.jpg", CHROME).await;
    assert_eq!(c, "image/avif", "no rule: global settings");

    let (_, r) = ct(&px, "/photos/a.jpg?w=300", "*/*").await;
    assert_eq!(
        decode(&r.bytes().await.unwrap()).width(),
        100,
        "the cap beats the URL"
    );
    let (_, r) = ct(&px, "/photos/a.jpg?pr=thumb", "*/*").await;
    assert_eq!(
        decode(&r.bytes().await.unwrap()).dimensions(),
        (50, 50),
        "preset"
    );
    let r = get(&px.url("/photos/a.jpg?pr=nope"), None).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown preset"));

    // Quality: the rule's WebP quality 30 against the global 78, same pixels.
    let ruled = get(&px.url("/photos/a.jpg?w=100"), Some("image/webp")).await;
    let ruled = ruled.bytes().await.unwrap();
    let plain = get(&px.url("/other/a.jpg?w=100"), Some("image/webp")).await;
    let plain = plain.bytes().await.unwrap();
    assert!(
        ruled.len() < plain.len(),
        "q30 {} vs q78 {}",
        ruled.len(),
        plain.len()
    );

    // Bypass: the original bytes, untouched, through pingora's proxy path.
    let r = get(&px.url("/raw/a.jpg"), Some(CHROME)).await;
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert!(!r.headers().contains_key("x-pixgate"));
    assert_eq!(r.bytes().await.unwrap(), photo(400, 300, 1));

    // Signed-only paths refuse URL transforms but still re-encode.
    let r = get(&px.url("/locked/a.jpg?w=10"), None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(get(&px.url("/locked/a.jpg"), None).await.status(), 200);

    // The rule's TTL (1 s) caps the origin's max-age=3600.
    let first = get(&px.url("/photos/a.jpg?w=80"), Some("*/*")).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let again = get(&px.url("/photos/a.jpg?w=80"), Some("*/*")).await;
    assert_eq!(again.headers()["x-cache"], "HIT");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = get(&px.url("/photos/a.jpg?w=80"), Some("*/*")).await;
    assert_eq!(
        later.headers()["x-cache"],
        "MISS",
        "expired by the rule's TTL"
    );
}

#[tokio::test]
async fn rules_reload_under_load_and_a_bad_file_keeps_the_old_ones() {
    let o = origin();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.yaml");
    std::fs::write(&file, RULES).unwrap();
    let px = start(&o, dir.path());
    assert_eq!(ct(&px, "/photos/a.jpg", CHROME).await.0, "image/webp");

    // Requests keep flowing while the rules change.
    let url = px.url("/photos/a.jpg");
    let load = tokio::spawn(async move {
        let mut codes = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            codes.push(get(&url, Some(CHROME)).await.status().as_u16());
        }
        codes
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(
        &file,
        RULES.replace("formats: [webp, jpeg]", "formats: [jpeg]"),
    )
    .unwrap();
    let t = Instant::now();
    let mut now_jpeg = false;
    while t.elapsed() < Duration::from_secs(5) {
        if ct(&px, "/photos/a.jpg", CHROME).await.0 == "image/jpeg" {
            now_jpeg = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(now_jpeg, "the changed rule applies to new requests");
    let codes = load.await.unwrap();
    assert!(
        codes.len() > 10 && codes.iter().all(|c| *c == 200),
        "{codes:?}"
    );
    let m = px.metrics().await;
    assert!(metric(&m, "pixgate_rules_reloads_total", &[("outcome", "ok")]) >= 1.0);

    // A bad file: the old rules stay, the error is counted and logged with file and line.
    std::fs::write(&file, "rules:\n  - name: x\n    qualty: 3\n").unwrap();
    let t = Instant::now();
    let mut failed = false;
    while t.elapsed() < Duration::from_secs(5) {
        let m = px.metrics().await;
        if metric(&m, "pixgate_rules_reloads_total", &[("outcome", "error")]) >= 1.0 {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed, "the bad file was noticed");
    assert_eq!(
        ct(&px, "/photos/a.jpg", CHROME).await.0,
        "image/jpeg",
        "old rules kept"
    );
    let log = px.stderr();
    assert!(
        log.contains("site.yaml:3") && log.contains("qualty"),
        "{log}"
    );
}

#[test]
fn check_config_validates_rules_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("bad.yaml"),
        "rules:\n  - name: a\n    quality: { webp: 300 }\n",
    )
    .unwrap();
    let cfg = dir.path().join("pixgate.yaml");
    std::fs::write(&cfg, format!("rules:\n  dir: {}\n", rules.display())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixgate"))
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:3") && err.contains("quality.webp"),
        "{err}"
    );

    // The shipped examples are valid.
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    std::fs::write(&cfg, format!("rules:\n  dir: {}\n", examples.display())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixgate"))
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rules"));
}

#[tokio::test]
async fn source_format_rules_apply_after_the_fetch() {
    let rgb = image::RgbImage::from_fn(200, 150, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(rgb.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut gif = Vec::new();
    image::DynamicImage::ImageRgb8(rgb)
        .write_to(&mut std::io::Cursor::new(&mut gif), image::ImageFormat::Gif)
        .unwrap();
    let o = TestOrigin::start(vec![
        ("/mixed/a.jpg", Route::ok("image/jpeg", photo(400, 300, 2))),
        ("/mixed/b.png", Route::ok("image/png", png)),
        ("/mixed/c.gif", Route::ok("image/gif", gif.clone())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mixed.yaml"),
        r#"rules:
  - name: mixed-default
    paths: ["/mixed/**"]
    formats: [jpeg]
  - name: mixed-png
    paths: ["/mixed/**"]
    source_formats: [png]
    formats: [webp, png]
  - name: mixed-gif
    paths: ["/mixed/**"]
    source_formats: [gif]
    bypass: true
"#,
    )
    .unwrap();
    let px = start(&o, dir.path());
    assert_eq!(ct(&px, "/mixed/a.jpg", CHROME).await.0, "image/jpeg");
    assert_eq!(
        ct(&px, "/mixed/b.png", CHROME).await.0,
        "image/webp",
        "the PNG-only rule wins for a PNG"
    );
    let (c, r) = ct(&px, "/mixed/c.gif", CHROME).await;
    assert_eq!(c, "image/gif");
    assert_eq!(r.headers()["x-pixgate"], "original; reason=rule_bypass");
    assert_eq!(r.bytes().await.unwrap(), gif, "the original bytes");
}
