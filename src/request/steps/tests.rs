use super::*;
use crate::request::imgproxy;
use crate::request::options::Options;
use proptest::prelude::*;

fn api(opts: &str) -> Result<Options, OptionError> {
    imgproxy::parse(&format!("/sig/{opts}/plain/http://x/a.jpg"), &|_| None).map(|a| a.options)
}

fn query(q: &str) -> Result<Options, OptionError> {
    Options::from_query(q).map(|(o, _)| o)
}

#[test]
fn both_grammars_give_the_same_steps() {
    for (path, q) in [
        ("t:10:ff00ff:1:0", "trim=10:ff00ff:1:0"),
        ("rot:270", "rotate=-90"),
        ("fl:1:0", "flip=h"),
        ("c:300:0.5:sm", "crop=300:0.5:sm"),
        ("c:0:200:fp:0.25:0.75", "crop=0:200:fp:0.25:0.75"),
        ("z:1.5", "zoom=1.5:1.5"),
        ("mw:300/mh:200", "min-width=300&min-height=200"),
        ("pd:10:20", "padding=10:20:10:20"),
        ("pix:8", "pixelate=8"),
        ("a:10:1.2:0.5", "brightness=10&contrast=1.2&saturation=0.5"),
        (
            "wm:0.5:soea:10:5:0.2",
            "watermark=0.5:soea:10:5:0.2:default",
        ),
        ("mb:50000", "max_bytes=50000"),
        ("fq:avif:40:jpg:70", "format_quality=jpeg:70:avif:40"),
        ("kcr:1", "keep_copyright=true"),
        ("sm:0", "strip_metadata=false"),
    ] {
        let a = api(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let b = query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(a.steps, b.steps, "{path} against {q}");
        assert_ne!(a.steps, Steps::default(), "{path} sets something");
        // The key form reads back to the same steps.
        assert_eq!(query(&a.canonical()).unwrap().steps, a.steps, "{path}");
    }
}

#[test]
fn values_land_where_the_pipeline_reads_them() {
    let s = api("c:0.5:120:no/rot:-270/pd:1:2:3/wm:0.3:re:4:6:0:logo")
        .unwrap()
        .steps;
    assert_eq!(
        s.crop,
        Some(Crop::Sized {
            width: Len::Part(0.5),
            height: Len::Px(120),
            gravity: Some(Gravity::North),
            offset: (0, 0),
        })
    );
    assert_eq!(s.rotate, 90);
    assert_eq!(
        s.padding,
        Some(Padding {
            top: 1,
            right: 2,
            bottom: 3,
            left: 2
        })
    );
    let w = s.watermark.unwrap();
    assert_eq!(w.mark.as_str(), "logo");
    assert_eq!(
        (w.placement.position, w.placement.x, w.placement.y),
        (Position::Replicate, 4, 6)
    );
    // Zero values switch a step off, as in imgproxy.
    let off = api("wm:0/pix:0/mb:0/pd:0/c:0:0/z:1/a:0:1:1").unwrap().steps;
    assert_eq!(off, Steps::default());
}

#[test]
fn bad_values_name_the_option() {
    for (path, name) in [
        ("rot:45", "rot"),
        ("rotate:x", "rotate"),
        ("c:-3:4", "c"),
        ("c:10:10:sm:5:5", "c"),
        ("c:10:10:fp:0.5:0.5:3", "c"),
        ("t:300", "t"),
        ("t:10:red", "t"),
        ("wm:2", "wm"),
        ("wm:0.5:middle", "wm"),
        ("wm:0.5:ce:0:0:0:Bad Name", "wm"),
        ("fq:png:50", "fq"),
        ("fq:avif", "fq"),
        ("mb:-1", "mb"),
        ("pd:1:2:3:4:5", "pd"),
        ("a:300", "a"),
        ("z:0", "z"),
        ("pix:x", "pix"),
        ("kcr:maybe", "kcr"),
        ("ar:0", "ar"),
        ("no_such_option:1", "no_such_option"),
    ] {
        let e = api(path).expect_err(path);
        assert_eq!(e.param, name, "{path}: {e}");
    }
    let e = query("rotate=45").unwrap_err();
    assert_eq!(e.param, "rotate");
    // Short names in a query are the origin's, untouched.
    let (o, rest) = Options::from_query("t=5&c=1&rotate=90").unwrap();
    assert_eq!(o.steps.rotate, 90);
    assert_eq!(rest.as_deref(), Some("t=5&c=1"));
}

/// Option names of both grammars and argument tokens of every kind, for the fuzz-style test.
const NAMES: [&str; 30] = [
    "t",
    "trim",
    "rot",
    "rotate",
    "fl",
    "flip",
    "c",
    "crop",
    "z",
    "zoom",
    "mw",
    "mh",
    "min-width",
    "pd",
    "padding",
    "pix",
    "a",
    "br",
    "co",
    "sa",
    "wm",
    "watermark",
    "mb",
    "fq",
    "kcr",
    "sm",
    "rs",
    "g",
    "ex",
    "bg",
];
const TOKENS: [&str; 16] = [
    "",
    "0",
    "1",
    "-1",
    "0.5",
    "90",
    "4096",
    "99999999999",
    "NaN",
    "inf",
    "-inf",
    "sm",
    "fp",
    "soea",
    "ff00ff",
    "avif",
];

proptest! {
    #[test]
    fn any_combination_parses_or_names_an_option(
        opts in proptest::collection::vec(
            (0..NAMES.len(), proptest::collection::vec(0..TOKENS.len(), 0..6)),
            0..8,
        ),
        junk in "[ -~]{0,12}",
    ) {
        let segs: Vec<String> = opts
            .iter()
            .map(|(n, a)| {
                let args: Vec<&str> = a.iter().map(|i| TOKENS[*i]).collect();
                format!("{}:{}", NAMES[*n], args.join(":"))
            })
            .collect();
        let path = format!("/sig/{}/{}/plain/http://x/a.jpg", segs.join("/"), junk.replace('/', ""));
        match imgproxy::parse(&path, &|_| None) {
            Ok(a) => {
                // Whatever parses has a key that reads back, and a transform.
                let back = Options::from_query(&a.options.canonical()).map(|(o, _)| o);
                prop_assert!(back.is_ok(), "{path}: {:?}", back);
                let _ = a.options.transform(4096);
            }
            Err(e) => prop_assert!(!e.param.is_empty()),
        }
        let q: Vec<String> = opts
            .iter()
            .map(|(n, a)| {
                let args: Vec<&str> = a.iter().map(|i| TOKENS[*i]).collect();
                format!("{}={}", NAMES[*n], args.join(":"))
            })
            .collect();
        if let Ok((o, _)) = Options::from_query(&q.join("&")) {
            let _ = o.transform(4096);
        }
    }
}

/// A small photo-like PNG with an alpha hole, for the pipeline proptest.
fn small_png() -> bytes::Bytes {
    let img = image::RgbaImage::from_fn(48, 32, |x, y| {
        let a = if (10..20).contains(&x) && (8..16).contains(&y) {
            0
        } else {
            255
        };
        image::Rgba([(x * 5) as u8, (y * 7) as u8, ((x + y) * 3) as u8, a])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out.into()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any steps, with any box, through the real pipeline: no panic, and an image comes out
    /// whose header matches the outcome's dimensions (or a named reason).
    #[test]
    fn any_steps_run_through_the_pipeline(
        steps in arb::steps(),
        w in proptest::option::of(1u32..200),
        h in proptest::option::of(1u32..200),
        fm in 0usize..3,
    ) {
        use crate::image::format::{OutputFormat, SourceFormat};
        use crate::image::pipeline::{self, Job, Outcome};
        let mut o = Options { width: w, height: h, steps, ..Options::default() };
        // Marks are not configured here: those variants are refused before the pool.
        o.steps.watermark = None;
        o.steps.max_bytes = o.steps.max_bytes.map(|m| m.max(200));
        let format = [OutputFormat::Png, OutputFormat::Webp, OutputFormat::Jpeg][fm];
        o.format = super::super::options::FormatReq::Force(format);
        let accept = crate::request::accept::Accept::parse(Some("image/webp,*/*"));
        let plan = o.plan(&accept, &[OutputFormat::Webp, OutputFormat::Jpeg, OutputFormat::Png]).unwrap();
        let images = crate::image::config::ImagesConfig::default();
        let limits = crate::image::probe::HeaderLimits { max_pixels: 4_000_000, max_dimension: 4096 };
        let job = Job::for_plan(small_png(), SourceFormat::Png, plan, &images, limits)
            .with_transform(o.transform(4096));
        match pipeline::run(&job) {
            Outcome::Transformed { bytes, width, height, .. } => {
                let back = image::load_from_memory(&bytes).unwrap();
                prop_assert_eq!((back.width(), back.height()), (width, height));
            }
            Outcome::Original(r) => prop_assert!(!r.label().is_empty()),
            Outcome::Info(_) => prop_assert!(false, "info was not asked for"),
        }
    }
}

#[test]
fn canvases_that_grow_are_held_to_the_source_limits() {
    use crate::image::format::{OutputFormat, SourceFormat};
    use crate::image::pipeline::{self, Job, Outcome};
    use crate::image::Reason;
    let images = crate::image::config::ImagesConfig::default();
    let limits = crate::image::probe::HeaderLimits {
        max_pixels: 4_000_000,
        max_dimension: 4096,
    };
    let accept = crate::request::accept::Accept::parse(Some("image/webp,*/*"));
    for q in [
        "w=1&h=65535&extend_aspect_ratio=1&fm=png",
        "padding=4096&fm=png",
        "zoom=10&enlarge=1&fm=png",
    ] {
        let o = Options::from_query(q).unwrap().0;
        let plan = o
            .plan(&accept, &[OutputFormat::Webp, OutputFormat::Png])
            .unwrap();
        let job = Job::for_plan(small_png(), SourceFormat::Png, plan, &images, limits)
            .with_transform(o.transform(65_535));
        match pipeline::run(&job) {
            Outcome::Original(Reason::TooManyPixels) => {}
            Outcome::Transformed { width, height, .. } => {
                assert!(
                    u64::from(width) * u64::from(height) <= limits.max_pixels,
                    "{q}: {width}x{height}"
                )
            }
            other => panic!("{q}: {other:?}"),
        }
    }
}
