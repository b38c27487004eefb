//! Entry points of the fuzz targets in `fuzz/fuzz_targets/` (one function per target), shared
//! with `tests/fuzz_regressions.rs`, which replays the seed corpus and every past finding through
//! them so that CI runs the harness code too.
//!
//! Each function takes the fuzzer's bytes, runs the code a request runs, and asserts what must
//! hold for any input: a failed assertion is a finding, like a panic in the code under test.
//! Inputs pixgate rejects come back as pixgate's own errors. fuzz/README.md says what each
//! target covers and how to run it. Built only with the `fuzzing` feature (fuzz/Cargo.toml and
//! scripts/test.sh turn it on).

use crate::config::{Config, ImagesConfig};
use crate::image::format::{sniff, OutputFormat, SourceFormat};
use crate::image::pipeline::{self, Job, Outcome};
use crate::image::probe::{self, HeaderLimits};
use crate::image::resize;
use crate::request::accept::Accept;
use crate::request::hints::Hints;
use crate::request::imgproxy::{self, ApiUrl};
use crate::request::negotiate::{choose, Choice, Plan};
use crate::request::options::{OptionError, Options};
use crate::rules::{Applied, LoadErrors, RuleSet};
use crate::security::signing::Signer;
use crate::security::ssrf::SourceUrl;
use crate::variant::{self, Ask, Route, Settings};

/// The configuration defaults the targets check against, built once.
fn defaults() -> &'static Config {
    static DEFAULTS: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    DEFAULTS.get_or_init(Config::default)
}

/// `transform.max_output_dimension`'s default.
pub fn max_output_dimension() -> u32 {
    defaults().transform.max_output_dimension
}

/// `transform.max_dpr`'s default.
pub fn max_dpr() -> f32 {
    defaults().transform.max_dpr
}

/// Source sizes the geometry of parsed options is checked against: ordinary, tiny, and the
/// extreme aspect ratios the default source limits allow.
fn source_sizes() -> [(u32, u32); 6] {
    let max = defaults().limits.max_source_dimension;
    [
        (1, 1),
        (640, 480),
        (480, 640),
        (1, max),
        (max, 1),
        (max, 3_000),
    ]
}

/// What must hold for any options a URL produced: the canonical form (the cache key's) parses
/// back to the same options, and the transform and resize geometry stay finite and bounded.
pub fn check_options(o: &Options) {
    let (max_dpr, max_output) = (max_dpr(), max_output_dimension());
    let canonical = o.canonical();
    let (back, rest) = Options::from_query(&canonical)
        .unwrap_or_else(|e| panic!("canonical form `{canonical}` does not parse: {e}"));
    assert_eq!(back, *o, "canonical form `{canonical}` does not round-trip");
    assert_eq!(rest, None, "canonical form `{canonical}` leaves a query");
    assert_eq!(back.canonical(), canonical);
    let capped = o.capped(max_dpr);
    assert!(capped.dpr.is_none_or(|d| d.is_finite() && d <= max_dpr));
    let t = capped.transform(max_output);
    let Some(spec) = t.resize else {
        assert!(!capped.resizes());
        return;
    };
    for side in [spec.width, spec.height].into_iter().flatten() {
        assert!((1..=max_output).contains(&side), "box side {side}");
    }
    for (sw, sh) in source_sizes() {
        let g = resize::geometry(sw, sh, &spec);
        let (ow, oh) = g.output();
        assert!(ow >= 1 && oh >= 1, "{sw}x{sh} {spec:?}: empty output");
        let (rw, rh) = g.region;
        assert!(
            rw > 0.0 && rh > 0.0 && rw <= f64::from(sw) && rh <= f64::from(sh),
            "{sw}x{sh} {spec:?}: region {rw}x{rh} outside the source"
        );
        assert!(g.scale().is_finite(), "{sw}x{sh} {spec:?}: scale");
        if !spec.enlarge {
            // Without enlargement nothing grows past the box or the source.
            let (bw, bh) = (max_output.max(sw), max_output.max(sh));
            assert!(ow <= bw && oh <= bh, "{sw}x{sh} {spec:?}: output {ow}x{oh}");
        }
    }
}

/// Target `url_options`: `data` is the query string of a proxied image URL.
pub fn url_options(data: &[u8]) -> Result<(Options, Option<String>), OptionError> {
    let query = String::from_utf8_lossy(data);
    let parsed = Options::from_query(&query);
    if let Ok((o, rest)) = &parsed {
        check_options(o);
        if let Some(rest) = rest {
            // What stays for the origin holds no pixgate parameter and parses to itself.
            assert!(!rest.is_empty());
            let (again, rest2) = Options::from_query(rest).expect("the origin's query parses");
            assert!(again.is_identity(), "`{rest}` still holds options");
            assert_eq!(rest2.as_deref(), Some(rest.as_str()));
        }
    }
    parsed
}

/// The presets the `imgproxy_path` target knows (in production: the rule files' presets).
pub fn fuzz_presets(name: &str) -> Option<String> {
    match name {
        "thumb" => Some("w=50&h=50&fit=cover".into()),
        "hero" => Some("w=1200&q=70&fm=webp".into()),
        "broken" => Some("nope=1".into()),
        _ => None,
    }
}

/// Target `imgproxy_path`: `data` is the path after the URL API prefix
/// (`/{signature}/{options}/.../plain/{url}`). Parses it as the URL API does, then checks the
/// signature and parses the source URL as the proxy does next.
pub fn imgproxy_path(data: &[u8]) -> Result<ApiUrl, OptionError> {
    let path = String::from_utf8_lossy(data);
    let parsed = imgproxy::parse(&path, &fuzz_presets);
    let signer = Signer::new(vec![(b"secret".to_vec(), b"hello".to_vec())], 32, false);
    match &parsed {
        Err(_) => {
            // The signature check runs on whatever the client sent, so it must hold up too.
            if let Some((sig, rest)) = path.trim_start_matches('/').split_once('/') {
                let _ = signer.check(sig, &format!("/{rest}"));
            }
        }
        Ok(api) => {
            assert!(api.signed.starts_with('/'), "signed part {:?}", api.signed);
            assert!(!api.source.is_empty());
            check_options(&api.options);
            let sig = signer.sign(&api.signed).expect("a key pair signs");
            let given = signer.check(&api.signature, &api.signed);
            if api.signature == sig {
                assert_eq!(given, Some(Some(0)));
            }
            assert_eq!(signer.check(&sig, &api.signed), Some(Some(0)));
            assert_eq!(signer.check(&sig, &format!("{}/", api.signed)), None);
            // Rotation, a truncated signature and unsigned requests.
            let rotated = Signer::new(
                vec![
                    (b"new".to_vec(), Vec::new()),
                    (b"secret".to_vec(), b"hello".to_vec()),
                ],
                8,
                true,
            );
            let short = rotated.sign(&api.signed).expect("a key pair signs");
            assert_eq!(rotated.check(&short, &api.signed), Some(Some(0)));
            assert_eq!(rotated.check("insecure", &api.signed), Some(None));
            // The same path under the right signature parses to the same request.
            let resigned = imgproxy::parse(&format!("/{sig}{}", api.signed), &fuzz_presets)
                .expect("the same path with another signature parses");
            assert_eq!(resigned.signed, api.signed);
            assert_eq!(resigned.options, api.options);
            assert_eq!(resigned.source, api.source);
            assert_eq!(resigned.expires, api.expires);
            // What the proxy does with the source next.
            if let Ok(u) = SourceUrl::parse(&api.source) {
                // Not asserted: that `path_and_query` starts with `/`. `https://h?q` gives `?q`
                // (finding 4 in fuzz/README.md, in src/security/ssrf.rs; its regression test in
                // tests/fuzz_regressions.rs is ignored until that is fixed).
                // Round trip, for hosts of host-name characters only: `http://a[::1]b/` gives
                // the host `a[` (finding 5, also in src/security/ssrf.rs; ignored test likewise).
                let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._:".contains(&b);
                if u.host.bytes().all(plain) {
                    let again = SourceUrl::parse(&u.as_string())
                        .unwrap_or_else(|e| panic!("{u:?} does not parse back: {e}"));
                    assert_eq!(again, u, "{:?}", u.as_string());
                }
                for location in [
                    "/a.jpg?x=1",
                    "//cdn.example.com/b.png",
                    "c.webp",
                    "https://x/",
                ] {
                    let _ = u.join(location);
                }
                let _ = u.join(&api.source);
            }
        }
    }
    parsed
}

/// The output formats the `accept` target tries, as enabled-format subsets.
fn format_subsets() -> impl Iterator<Item = Vec<OutputFormat>> {
    (1u8..32).map(|mask| {
        OutputFormat::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, f)| *f)
            .collect()
    })
}

/// Target `accept`: `data` is an Accept header value. Parses it, negotiates every source
/// family against every subset of enabled formats, and reads the same bytes as client hints.
pub fn accept(data: &[u8]) -> Accept {
    let header = String::from_utf8_lossy(data);
    let a = Accept::parse(Some(&header));
    for r in &a.ranges {
        assert!((0.0..=1.0).contains(&r.q), "q {} in {header:?}", r.q);
        assert!(!r.kind.is_empty() && !r.subtype.is_empty());
        assert_eq!(r.kind, r.kind.to_ascii_lowercase());
    }
    let sources = SourceFormat::ALL;
    for enabled in format_subsets() {
        let plan = Plan::new(&a, &enabled);
        for source in sources {
            for alpha in [false, true] {
                let c = choose(&a, &enabled, source, alpha);
                assert_eq!(
                    plan.for_source(source, alpha),
                    c,
                    "{source:?} alpha {alpha}"
                );
                if let Choice::Encode(f) = c {
                    assert!(enabled.contains(&f), "{f:?} is not enabled");
                    assert!(!(alpha && f == OutputFormat::Jpeg), "alpha became JPEG");
                }
            }
        }
        assert!(!plan.avif_as_webp().wants_avif());
        assert!(!plan.label().is_empty());
    }
    // The same bytes as client hint values (when they are a valid header value).
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        let mut h = http::HeaderMap::new();
        for name in ["sec-ch-dpr", "width", "save-data"] {
            h.insert(name, v.clone());
        }
        let hints = Hints::from_headers(&h);
        assert!(hints.dpr.is_none_or(|d| d > 0.0 && d <= 10.0));
        for url in ["", "w=100", "dpr=2", "h=10&q=90"] {
            let o = Options::from_query(url).expect("fixed query parses").0;
            check_options(&hints.apply(o, 50));
        }
    }
    a
}

/// Target `rules_loader`: `data` is the content of one rules file. The loader reads a
/// directory, so the bytes go to `fuzz.yaml` in a fresh temporary directory.
pub fn rules_loader(data: &[u8]) -> Result<RuleSet, LoadErrors> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pixgate-fuzz-rules-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary rules directory");
    std::fs::write(dir.join("fuzz.yaml"), data).expect("write the rules file");
    let loaded = RuleSet::load_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    // Lines as YAML counts them (a lone `\r`, NEL, LS and PS end one too), as the errors do.
    let text = String::from_utf8_lossy(data);
    let lines = 1 + text
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        .count();
    match &loaded {
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors.errors() {
                let shown = e.to_string();
                assert!(shown.contains("fuzz.yaml"), "{shown}");
                if let Some(line) = e.line {
                    assert!(
                        (1..=lines + 1).contains(&line),
                        "line {line} of {lines}: {shown}"
                    );
                }
            }
        }
        Ok(set) => {
            assert_eq!(set.fingerprint().len(), 16);
            for host in [
                "example.com",
                "www.example.com:8080",
                "A.B.Example.COM.",
                "",
            ] {
                for path in [
                    "/",
                    "/img/a.jpg?x=1",
                    "/wp-content/uploads/2024/01/b.png",
                    "",
                ] {
                    for source in [None, Some(crate::rules::SourceFormat::Jpeg)] {
                        if let Some(rule) = set.find(host, path, source) {
                            assert!(rule.matches(host, path, source), "{}", rule.name());
                            let _ = set.preset(Some(rule), "thumb");
                        }
                    }
                }
            }
            for (name, value) in set.global_presets() {
                assert_eq!(set.preset(None, name), Some(value.as_str()));
            }
        }
    }
    loaded
}

/// Header limits of the `image_entry` target: small, so that legitimately large images do not
/// slow the fuzzer down.
pub const IMAGE_LIMITS: HeaderLimits = HeaderLimits {
    max_pixels: 4_000_000,
    max_dimension: 4096,
};
/// Formats the `image_entry` target may produce: no AVIF (its encoder is far too slow).
pub const IMAGE_FORMATS: [OutputFormat; 3] =
    [OutputFormat::Webp, OutputFormat::Jpeg, OutputFormat::Png];
/// Accept headers of the `image_entry` target, chosen by the low 2 bits of the first byte.
pub const IMAGE_ACCEPTS: [&str; 4] = [
    "*/*",
    "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "image/jpeg",
    "image/webp;q=0.5,image/png",
];
/// URL options of the `image_entry` target, chosen by bits 2–4 of the first byte.
pub const IMAGE_QUERIES: [&str; 8] = [
    "",
    "w=32",
    "w=16&h=16&fit=cover&g=sm",
    "w=24&h=12&fit=contain&bg=transparent&fm=jpeg",
    "h=8&blur=1.5&sharpen=1&fm=png",
    "w=256&enlarge=1",
    "w=20&h=30&fit=outside&g=fp:0.2:0.8&q=40&enlarge=1",
    "w=64&h=48&fit=fill&enlarge=1&dpr=1.5&fm=webp",
];

/// Target `image_entry`: the first byte chooses an Accept header ([`IMAGE_ACCEPTS`]) and URL
/// options ([`IMAGE_QUERIES`]); the rest is the origin's body. Sniffs it, probes the header
/// against [`IMAGE_LIMITS`], and runs the whole pipeline (probe, decode, resize, encode) as
/// the proxy does. `None` when the body does not sniff as an image (it would pass through).
pub fn image_entry(data: &[u8]) -> Option<Outcome> {
    let (&control, body) = data.split_first()?;
    let format = sniff(body)?;
    let accept = Accept::parse(Some(IMAGE_ACCEPTS[usize::from(control & 3)]));
    let query = IMAGE_QUERIES[usize::from((control >> 2) & 7)];
    let options = Options::from_query(query)
        .expect("fixed query parses")
        .0
        .capped(max_dpr());
    // The decision the proxy path makes, without a rule. Every format is enabled here, so a
    // named format is always granted.
    let ask = Ask {
        options,
        hints: None,
        accept,
        route: Route::Proxy,
    };
    let settings = Settings {
        formats: &IMAGE_FORMATS,
        transform: &defaults().transform,
        marks: None,
    };
    let v = variant::decide(&ask, &Applied::find(None, "", "/"), settings)
        .expect("all formats enabled");
    let plan = v.plan;
    let probed = probe::probe(body, format, IMAGE_LIMITS);
    if let Ok(p) = &probed {
        assert_eq!(p.format, format);
        assert!(p.width >= 1 && p.height >= 1);
        assert!(p.width <= IMAGE_LIMITS.max_dimension && p.height <= IMAGE_LIMITS.max_dimension);
        assert!(u64::from(p.width) * u64::from(p.height) <= IMAGE_LIMITS.max_pixels);
    }
    let transform = v.transform;
    let job = Job::for_plan(
        bytes::Bytes::copy_from_slice(body),
        format,
        plan,
        &ImagesConfig::default(),
        IMAGE_LIMITS,
    )
    .with_transform(transform);
    let outcome = pipeline::run(&job);
    match (&outcome, &probed) {
        (Outcome::Info(json), _) => {
            let v: serde_json::Value = serde_json::from_slice(json).expect("info is JSON");
            assert!(v["width"].as_u64().is_some_and(|w| w > 0), "{v}");
        }
        // An animation goes on to the animation path, which has reasons of its own.
        (Outcome::Original(_), Err(crate::image::Reason::Animated)) => {}
        (Outcome::Original(reason), Err(first)) => {
            assert_eq!(reason, first, "the pipeline probes first");
        }
        (Outcome::Original(_), Ok(_)) => {}
        (
            Outcome::Transformed {
                format,
                width,
                height,
                ..
            },
            Err(crate::image::Reason::Animated),
        ) => {
            assert!(matches!(format, OutputFormat::Webp | OutputFormat::Gif));
            assert!(*width <= IMAGE_LIMITS.max_dimension && *height <= IMAGE_LIMITS.max_dimension);
        }
        (Outcome::Transformed { .. }, Err(r)) => {
            panic!("transformed an image the probe refused ({r:?})")
        }
        (
            Outcome::Transformed {
                format: out,
                bytes,
                width,
                height,
                ..
            },
            Ok(p),
        ) => {
            assert_ne!(*out, OutputFormat::Avif);
            assert!(
                *width <= IMAGE_LIMITS.max_dimension
                    && *height <= IMAGE_LIMITS.max_dimension
                    && u64::from(*width) * u64::from(*height) <= IMAGE_LIMITS.max_pixels,
                "output {width}x{height} is over the limits ({}x{} source, {query:?})",
                p.width,
                p.height
            );
            let sniffed = sniff(bytes).and_then(SourceFormat::as_output);
            assert_eq!(sniffed, Some(*out), "the output does not sniff as {out:?}");
            if !transform.changes_pixels() {
                assert!(bytes.len() < body.len(), "never larger");
                assert!(
                    (*width, *height) == (p.width, p.height)
                        || (*width, *height) == (p.height, p.width),
                    "{width}x{height} from {}x{}",
                    p.width,
                    p.height
                );
            }
            let back = ::image::load_from_memory(bytes).expect("the output decodes");
            assert_eq!((back.width(), back.height()), (*width, *height));
        }
    }
    Some(outcome)
}
