//! `q=auto` (issue 21 item 4): the quality is chosen per image for a SSIMULACRA2 target. The
//! test scores pixgate's outputs itself: outputs decoded by independent decoders (the image
//! crate's image-webp, libavif's `avifdec`) against the exact resized pixels (pixgate's
//! lossless WebP of the same variant, decoded the same way).

mod common;
use common::*;

/// SSIMULACRA2 of `distorted` against `reference` (opaque pixels), computed here.
fn ssimulacra2(reference: &image::DynamicImage, distorted: &image::DynamicImage) -> f64 {
    let lin = |img: &image::DynamicImage| {
        let rgb = img.to_rgb8();
        let data = rgb
            .pixels()
            .map(|p| p.0.map(|c| f32::from(c) / 255.0))
            .collect();
        let rgb = ssimulacra2::Rgb::new(
            data,
            rgb.width() as usize,
            rgb.height() as usize,
            ssimulacra2::TransferCharacteristic::SRGB,
            ssimulacra2::ColorPrimaries::BT709,
        )
        .expect("rgb");
        ssimulacra2::LinearRgb::try_from(rgb).expect("linear")
    };
    ssimulacra2::compute_frame_ssimulacra2(lin(reference), lin(distorted)).expect("score")
}

async fn body(px: &Pixgate, path: &str, accept: &str) -> (String, Vec<u8>) {
    let r = get(&px.url(path), Some(accept)).await;
    assert_eq!(r.status(), 200, "{path}");
    let note = r.headers()["x-pixgate"].to_str().unwrap_or("").to_string();
    (note, r.bytes().await.expect("body").to_vec())
}

/// On three different photos, `q=auto` reaches the target score (computed here) and, on at
/// least two, with fewer bytes than the fixed default quality.
#[tokio::test]
async fn q_auto_reaches_its_target_with_fewer_bytes() {
    let names = ["coffee.jpg", "retina.jpg", "rocket-exif.jpg"];
    let routes: Vec<(&str, Route)> = pixgate::demo::SAMPLES
        .iter()
        .filter(|s| names.contains(&s.name))
        .map(|s| {
            (
                Box::leak(format!("/{}", s.name).into_boxed_str()) as &str,
                Route::ok("image/jpeg", s.bytes.to_vec()),
            )
        })
        .collect();
    assert_eq!(routes.len(), 3);
    let origin = TestOrigin::start(routes);
    let target = 70.0;
    let px = Pixgate::start_with(&origin, |c| {
        c.images.auto_quality.target = target;
        c.images.auto_quality.budget = pixgate::config::Dur::secs(10);
        c.cache.avif_budget = None;
    });
    let webp = "image/webp,*/*";
    let mut smaller = 0;
    for name in names {
        let (_, exact) = body(&px, &format!("/{name}?w=480&lossless=1"), webp).await;
        let reference = decode(&exact);
        let (_, fixed) = body(&px, &format!("/{name}?w=480"), webp).await;
        let (note, auto) = body(&px, &format!("/{name}?w=480&q=auto"), webp).await;
        assert!(note.starts_with("webp"), "{name}: {note}");
        let s_auto = ssimulacra2(&reference, &decode(&auto));
        let s_fixed = ssimulacra2(&reference, &decode(&fixed));
        eprintln!(
            "{name}: fixed {} B score {s_fixed:.1}; auto {} B score {s_auto:.1}",
            fixed.len(),
            auto.len()
        );
        assert!(s_auto >= target - 1.0, "{name}: {s_auto:.1} under {target}");
        if auto.len() < fixed.len() {
            smaller += 1;
        }
    }
    assert!(
        smaller >= 2,
        "fewer bytes than the fixed quality on {smaller} of 3"
    );

    // AVIF too, scored after libavif's decoder.
    let (_, exact) = body(&px, "/coffee.jpg?w=480&lossless=1", webp).await;
    let (note, auto) = body(&px, "/coffee.jpg?w=480&q=auto", CHROME).await;
    assert_eq!(note, "avif");
    let s = ssimulacra2(&decode(&exact), &decode(&auto));
    eprintln!("coffee.jpg AVIF: auto {} B score {s:.1}", auto.len());
    assert!(s >= target - 1.0, "AVIF {s:.1}");

    // q=auto is part of the variant, an explicit q wins over the configured formats, and a
    // bad value is refused naming `q`.
    let r = get(&px.url("/coffee.jpg?q=best"), Some(webp)).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap_or_default().contains("`q`"));
}

/// A rule's `auto_quality: { target }` makes every lossy output under it `q=auto` at that
/// target (a URL's number still wins); a target out of range is refused naming the file,
/// line and key.
#[tokio::test]
async fn a_rule_sets_its_own_target() {
    let coffee = pixgate::demo::SAMPLES
        .iter()
        .find(|s| s.name == "coffee.jpg")
        .expect("coffee");
    let origin = TestOrigin::start(vec![
        ("/hq/c.jpg", Route::ok("image/jpeg", coffee.bytes.to_vec())),
        ("/c.jpg", Route::ok("image/jpeg", coffee.bytes.to_vec())),
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("q.yaml"),
        "rules:\n  - name: hq\n    paths: [\"/hq/**\"]\n    auto_quality: { target: 85 }\n",
    )
    .expect("rules");
    let rules = dir.path().to_path_buf();
    let px = Pixgate::start_with(&origin, |c| {
        c.rules.dir = Some(rules);
        c.images.auto_quality.budget = pixgate::config::Dur::secs(10);
    });
    let webp = "image/webp,*/*";
    let (_, exact) = body(&px, "/c.jpg?w=480&lossless=1", webp).await;
    let reference = decode(&exact);
    let (_, plain) = body(&px, "/c.jpg?w=480", webp).await;
    let (_, hq) = body(&px, "/hq/c.jpg?w=480", webp).await;
    let (_, fixed) = body(&px, "/hq/c.jpg?w=480&q=78", webp).await;
    let s_hq = ssimulacra2(&reference, &decode(&hq));
    eprintln!(
        "plain {} B, hq {} B score {s_hq:.1}, hq&q=78 {} B",
        plain.len(),
        hq.len(),
        fixed.len()
    );
    assert!(s_hq >= 84.0, "{s_hq:.1}");
    assert!(hq.len() > plain.len(), "a higher target costs bytes");
    assert_eq!(fixed, plain, "q=78 in the URL wins over the rule");

    std::fs::write(
        dir.path().join("bad.yaml"),
        "rules:\n  - name: bad\n    auto_quality: { target: 140 }\n",
    )
    .expect("bad rules");
    let cfg = dir.path().join("pixgate.yaml");
    std::fs::write(&cfg, format!("rules:\n  dir: {}\n", dir.path().display())).expect("cfg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixgate"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .expect("check-config");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.yaml:3") && err.contains("auto_quality.target"),
        "{err}"
    );
}
