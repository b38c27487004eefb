//! The fuzz harness under `cargo test`: every seed of every target in `fuzz/corpus/<target>/`
//! goes through the entry function its fuzz target calls (`pixgate::fuzz_entry`), which asserts
//! the target's invariants; known seeds must give known answers; and each fuzz finding has a
//! regression test here (fuzz/README.md lists them).

use pixgate::fuzz_entry;
use pixgate::image::format::OutputFormat;
use pixgate::image::pipeline::Outcome;
use pixgate::image::Reason;
use std::path::Path;

/// The seeds of `target`, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("a seed reads"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 3, "{target}: the seed corpus is missing");
    out
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    seeds(target)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no seed {target}/{name}"))
        .1
}

#[test]
fn url_options_seeds() {
    for (_, data) in seeds("url_options") {
        let _ = fuzz_entry::url_options(&data);
    }
    let (o, rest) = fuzz_entry::url_options(&seed("url_options", "q0")).expect("docs example");
    assert_eq!(
        (o.width, o.height, o.quality),
        (Some(640), Some(480), Some(70))
    );
    assert_eq!(rest, None);
    let (_, rest) = fuzz_entry::url_options(&seed("url_options", "q1")).expect("parses");
    assert_eq!(rest.as_deref(), Some("v=3"));
    for (name, param) in [("q4", "fit"), ("q5", "w"), ("q6", "dpr")] {
        let e = fuzz_entry::url_options(&seed("url_options", name)).unwrap_err();
        assert_eq!(e.param, param, "{name}");
    }
}

#[test]
fn imgproxy_path_seeds() {
    for (_, data) in seeds("imgproxy_path") {
        let _ = fuzz_entry::imgproxy_path(&data);
    }
    let u = fuzz_entry::imgproxy_path(&seed("imgproxy_path", "p0")).expect("plain source");
    assert_eq!(u.source, "http://img.example.com/a@b.jpg");
    let u = fuzz_entry::imgproxy_path(&seed("imgproxy_path", "p1")).expect("encoded source");
    assert_eq!(u.source, "http://example.com/images/curiosity.jpg");
    let signer = pixgate::security::signing::Signer::new(
        vec![(b"secret".to_vec(), b"hello".to_vec())],
        32,
        false,
    );
    assert!(
        signer.verify(&u.signature, &u.signed),
        "imgproxy's documented example"
    );
    let u = fuzz_entry::imgproxy_path(&seed("imgproxy_path", "p2")).expect("preset, ipv6");
    assert_eq!((u.options.width, u.expires), (Some(50), Some(99)));
    // `wm:0.5` was refused before watermarks were built (issue 23); it parses now.
    let u = fuzz_entry::imgproxy_path(&seed("imgproxy_path", "p4")).expect("a watermark");
    assert_eq!(
        u.options.steps.watermark.map(|w| w.placement.opacity),
        Some(0.5)
    );
    for (name, param) in [("p5", "source"), ("p6", "path")] {
        let e = fuzz_entry::imgproxy_path(&seed("imgproxy_path", name)).unwrap_err();
        assert_eq!(e.param, param, "{name}");
    }
}

#[test]
fn accept_seeds() {
    for (_, data) in seeds("accept") {
        let _ = fuzz_entry::accept(&data);
    }
    let chrome = fuzz_entry::accept(&seed("accept", "a0"));
    assert_eq!(chrome.ranges.len(), 6);
    assert!(chrome.verdict("image/webp").explicit);
    let garbage = fuzz_entry::accept(&seed("accept", "a3"));
    assert_eq!(garbage.ranges.len(), 1, "only image/png survives");
}

#[test]
fn rules_loader_seeds() {
    for (name, data) in seeds("rules_loader") {
        let loaded = fuzz_entry::rules_loader(&data);
        if [
            "ecommerce.yaml",
            "static-site.yaml",
            "wordpress.yaml",
            "flow.yaml",
        ]
        .contains(&name.as_str())
        {
            let set = loaded.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!set.is_empty(), "{name}");
        } else {
            let errors = loaded.err().unwrap_or_else(|| panic!("{name} loads"));
            assert!(errors
                .errors()
                .iter()
                .all(|e| e.file.ends_with("fuzz.yaml")));
        }
    }
    let errors = fuzz_entry::rules_loader(&seed("rules_loader", "bad-keys.yaml")).unwrap_err();
    assert!(errors.len() >= 8, "{errors}");
}

fn transformed(outcome: Option<Outcome>) -> (OutputFormat, u32, u32) {
    match outcome {
        Some(Outcome::Transformed {
            format,
            width,
            height,
            ..
        }) => (format, width, height),
        other => panic!("not transformed: {other:?}"),
    }
}

#[test]
fn image_entry_seeds() {
    for (name, data) in seeds("image_entry") {
        let outcome = fuzz_entry::image_entry(&data);
        let original = |r| matches!(outcome, Some(Outcome::Original(got)) if got == r);
        match name.as_str() {
            "empty" | "html" => assert_eq!(outcome, None, "{name}: not an image"),
            "jpeg-bomb" | "png-bomb" => assert!(original(Reason::TooManyPixels), "{name}"),
            "jpeg-truncated" => assert!(original(Reason::Truncated), "{name}"),
            // Animations stay animations: the original, or an animated WebP (or GIF) when the
            // seed's Accept takes it.
            "apng" | "gif-animated" | "webp-animated" => assert!(
                original(Reason::Animated)
                    || matches!(
                        outcome,
                        Some(Outcome::Transformed {
                            format: OutputFormat::Webp | OutputFormat::Gif,
                            ..
                        })
                    ),
                "{name}: {outcome:?}"
            ),
            // A header without an image: libheif refuses it (without `heif`: not decoded).
            "avif-header" if cfg!(feature = "heif") => {
                assert!(original(Reason::Undecodable), "{name}")
            }
            "avif-header" => assert!(original(Reason::UnsupportedSource), "{name}"),
            _ => assert!(outcome.is_some(), "{name}"),
        }
    }
    let img = |name| fuzz_entry::image_entry(&seed("image_entry", name));
    // Orientation 6 turns 16x8 upright to 8x16; Chrome's Accept gets WebP (AVIF is off).
    assert_eq!(
        transformed(img("jpeg-exif6-progressive")),
        (OutputFormat::Webp, 8, 16)
    );
    // A transparent pad, then `fm=jpeg` flattens it.
    assert_eq!(
        transformed(img("png-alpha-contain-jpeg")),
        (OutputFormat::Jpeg, 24, 12)
    );
    // Cover of a box larger than the source: the box's aspect ratio at scale 1.
    assert_eq!(
        transformed(img("jpeg-gray-cover-smart")),
        (OutputFormat::Jpeg, 8, 8)
    );
    // fill + enlarge + dpr 1.5: exactly the 96x72 box.
    assert_eq!(
        transformed(img("webp-lossy-fill")),
        (OutputFormat::Webp, 96, 72)
    );
    // A 1x8 strip enlarged to w=256.
    assert_eq!(
        transformed(img("png-strip-enlarge")),
        (OutputFormat::Png, 256, 2048)
    );
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Finding 1 (image_entry): `fit=outside&enlarge=1` on a 3336x8 GIF asked for 12510x30, over
/// the pixel limits; a single side with `enlarge=1` on a thin strip is unbounded the same way
/// (a 1x16384 PNG at `w=4096&enlarge=1` would be 4096x67,108,864 px: the allocation aborts the
/// process). The pipeline now refuses outputs over the source limits (too_many_pixels).
#[test]
fn finding_1_enlarged_output_is_held_to_the_source_limits() {
    use pixgate::config::ImagesConfig;
    use pixgate::image::format::SourceFormat;
    use pixgate::image::pipeline::{run, Job};
    use pixgate::image::probe::HeaderLimits;
    use pixgate::request::negotiate::Plan;
    use pixgate::request::options::Options;

    let artifact = fixture("image_entry-enlarge-outside.bin");
    assert_eq!(
        fuzz_entry::image_entry(&artifact),
        Some(Outcome::Original(Reason::TooManyPixels))
    );
    let png = |w: u32, h: u32| {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]))
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode a PNG");
        bytes::Bytes::from(out.into_inner())
    };
    let production = HeaderLimits {
        max_pixels: 50_000_000,
        max_dimension: 16_384,
    };
    let job = |src, query: &str| {
        let o = Options::from_query(query).expect("parses").0;
        Job::for_plan(
            src,
            SourceFormat::Png,
            Plan::forced(OutputFormat::Jpeg),
            &ImagesConfig::default(),
            production,
        )
        .with_transform(o.transform(fuzz_entry::max_output_dimension()))
    };
    for query in ["w=4096&enlarge=1", "w=4096&h=10&fit=outside&enlarge=1"] {
        assert_eq!(
            run(&job(png(1, 16_384), query)),
            Outcome::Original(Reason::TooManyPixels),
            "{query}"
        );
    }
    // Enlarging within the limits still works.
    match run(&job(png(100, 200), "w=800&enlarge=1")) {
        Outcome::Transformed { width, height, .. } => assert_eq!((width, height), (800, 1600)),
        other => panic!("{other:?}"),
    }
}

/// Finding 2 (accept, via the client hints it also reads): `Width: 65535` rounded up to the
/// 50 px step gave `w=65550`, whose canonical form (the cache key's) does not parse back: a URL
/// `w` is at most 65535. Finding 3, the same invariant: `DPR: 0.05` was taken although a URL's
/// `dpr` must be 0.1-10. Hints outside the URL ranges are now ignored.
#[test]
fn findings_2_3_hints_stay_within_the_url_ranges() {
    use pixgate::request::hints::Hints;
    use pixgate::request::options::Options;
    let _ = fuzz_entry::accept(b"65535");
    let _ = fuzz_entry::accept(b"0.05");
    let hints = |name: &'static str, v: &'static str| {
        let mut h = http::HeaderMap::new();
        h.insert(name, http::HeaderValue::from_static(v));
        Hints::from_headers(&h)
    };
    assert_eq!(hints("width", "65535").width, None);
    assert_eq!(hints("width", "65501").width, None);
    let o = hints("sec-ch-width", "65500").apply(Options::default(), 50);
    assert_eq!(o.width, Some(65_500));
    fuzz_entry::check_options(&o);
    assert_eq!(hints("dpr", "0.05").dpr, None);
    assert_eq!(hints("dpr", "0.1").dpr, Some(0.1));
    fuzz_entry::check_options(&hints("dpr", "0.1").apply(Options::default(), 50));
}

const FINDING_4: &str = "/in#s0/ex:1/exp:99/plain/https://[::1]:84?g/g43.n?^=b";

/// Findings 4 and 5 (below), fixed in src/security/ssrf.rs; their inputs must still go through the
/// harness.
#[test]
fn findings_4_5_go_through_the_harness() {
    let api = fuzz_entry::imgproxy_path(FINDING_4.as_bytes()).expect("parses");
    assert_eq!(api.source, "https://[::1]:84?g/g43.n?^=b");
    let api =
        fuzz_entry::imgproxy_path(&fixture("imgproxy_path-bracket-host.bin")).expect("parses");
    assert_eq!(api.source, "http://img.exampn[::1]ain/http0ng?a=b");
}

/// Finding 4 (imgproxy_path): `SourceUrl::parse("https://[::1]:84?g/...")` keeps
/// `path_and_query` as `?g/...` (http::Uri's raw form without the `/`), so the fetch would send
/// `GET ?g/... HTTP/1.1`. Fixed: `SourceUrl::parse` builds the path from `uri.path()` and
/// `uri.query()`.
#[test]
fn finding_4_a_query_only_source_url_has_a_path() {
    use pixgate::security::ssrf::SourceUrl;
    let api = fuzz_entry::imgproxy_path(FINDING_4.as_bytes()).expect("parses");
    let u = SourceUrl::parse(&api.source).expect("a URL");
    assert_eq!(u.path_and_query, "/?g/g43.n?^=b");
    assert_eq!(
        SourceUrl::parse("http://img.example.com?w=1")
            .expect("a URL")
            .path_and_query,
        "/?w=1"
    );
}

/// Finding 5 (imgproxy_path): `SourceUrl::parse("http://img.exampn[::1]ain/http0ng?a=b")`
/// succeeds with the host `img.exampn[` and port 80 (http::Uri takes the bracket in the middle
/// of the authority; `host()` stops at the first `:`, the unparsable port is dropped), and
/// `as_string()` of it does not parse. Not a bypass (the same host string is checked, resolved
/// and sent), but a malformed URL is fetched instead of refused. Fixed: hosts are DNS names
/// (letters, digits, `-`, `.`, `_`) or bracketed IPv6 literals, and a port must be a number.
#[test]
fn finding_5_a_malformed_host_is_refused() {
    use pixgate::security::ssrf::SourceUrl;
    for url in [
        "http://img.exampn[::1]ain/http0ng?a=b",
        "http://a[b/",
        "http://example.com:8x/a.png",
    ] {
        assert!(
            SourceUrl::parse(url).is_err(),
            "{url}: {:?}",
            SourceUrl::parse(url)
        );
    }
}

/// Finding 6 (rules_loader): a rules file with lone `\r` line ends (a YAML line break) got
/// `fuzz.yaml:92` for a syntax error in a file of 60 `\n` lines: serde counts the `\r`s, the
/// loader's own locator (semantic errors) did not, so one file had two numberings. The locator
/// now ends lines where YAML does.
#[test]
fn finding_6_lone_cr_line_ends_number_all_errors_alike() {
    let errors = fuzz_entry::rules_loader(&fixture("rules_loader-lone-cr.yaml")).unwrap_err();
    assert!(errors.errors().iter().all(|e| e.line.is_some()), "{errors}");
    let semantic = fuzz_entry::rules_loader(b"rules:\r- name: a\r  ttl: x\r").unwrap_err();
    assert_eq!(semantic.errors()[0].line, Some(3), "{semantic}");
    assert_eq!(semantic.errors()[0].key, "rules[0].ttl");
    let syntax = fuzz_entry::rules_loader(b"rules:\r- name: a\r  ttl: [\r").unwrap_err();
    assert!(syntax.errors()[0].line.is_some_and(|l| l >= 3), "{syntax}");
}
