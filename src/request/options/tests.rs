use super::*;
use crate::image::format::OutputFormat;

#[test]
fn parses_the_familiar_names_and_keeps_the_rest() {
    let (o, rest) =
        Options::from_query("w=640&h=480&fit=cover&q=70&fm=webp&dpr=2&v=3&g=sm").unwrap();
    assert_eq!(o.width, Some(640));
    assert_eq!(o.height, Some(480));
    assert_eq!(o.fit, Fit::Cover);
    assert_eq!(o.quality, Some(70));
    assert_eq!(o.format, FormatReq::Force(OutputFormat::Webp));
    assert_eq!(o.dpr, Some(2.0));
    assert_eq!(o.gravity, Gravity::Smart);
    assert_eq!(rest.as_deref(), Some("v=3"));
    let (o, rest) = Options::from_query("width=10&gravity=fp:0.25:0.75&bg=ff000080").unwrap();
    assert_eq!(o.width, Some(10));
    assert_eq!(o.gravity, Gravity::Focus(0.25, 0.75));
    assert_eq!(o.background, Some([255, 0, 0, 128]));
    assert_eq!(rest, None);
    assert!(Options::from_query("").unwrap().0.is_identity());
}

#[test]
fn bad_values_name_the_parameter() {
    for (q, param) in [
        ("w=0", "w"),
        ("w=abc", "w"),
        ("h=-5", "h"),
        ("width=99999999", "width"),
        ("fit=banana", "fit"),
        ("q=101", "q"),
        ("fm=gif", "fm"),
        ("dpr=NaN", "dpr"),
        ("g=fp:2:0", "g"),
        ("blur=0", "blur"),
        ("enlarge=maybe", "enlarge"),
        ("bg=zzzzzz", "bg"),
    ] {
        let e = Options::from_query(q).unwrap_err();
        assert_eq!(e.param, param, "{q}");
        assert!(
            e.to_string().starts_with(&format!("parameter `{param}`")),
            "{e}"
        );
    }
}

#[test]
fn canonical_form_is_order_independent() {
    let a = Options::from_query("h=2&w=1&fit=crop").unwrap().0;
    let b = Options::from_query("fit=cover&w=1&h=2").unwrap().0;
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a.canonical(), "w=1&h=2&fit=cover");
}

fn arb_options() -> impl proptest::strategy::Strategy<Value = Options> {
    use proptest::prelude::*;
    let fits = prop_oneof![
        Just(Fit::Inside),
        Just(Fit::Cover),
        Just(Fit::Contain),
        Just(Fit::Fill),
        Just(Fit::Outside)
    ];
    let gravities = prop_oneof![
        Just(Gravity::Center),
        Just(Gravity::North),
        Just(Gravity::SouthWest),
        Just(Gravity::Smart),
        (0u8..=100, 0u8..=100)
            .prop_map(|(x, y)| Gravity::Focus(f32::from(x) / 100.0, f32::from(y) / 100.0)),
    ];
    let formats = prop_oneof![
        Just(FormatReq::Auto),
        Just(FormatReq::Force(OutputFormat::Avif)),
        Just(FormatReq::Force(OutputFormat::Png)),
    ];
    (
        (
            proptest::option::of(1u32..=MAX_SIDE),
            proptest::option::of(1u32..=MAX_SIDE),
            fits,
            gravities,
            proptest::option::of(1u8..=100),
            formats,
        ),
        (
            proptest::option::of(1u32..=100),
            proptest::option::of(3u32..=1000),
            proptest::option::of(3u32..=100),
            any::<bool>(),
            proptest::option::of(any::<[u8; 4]>()),
            crate::request::steps::arb::steps(),
        ),
    )
        .prop_map(
            |((w, h, fit, g, q, fm), (dpr, blur, sharpen, enlarge, bg, steps))| Options {
                width: w,
                height: h,
                fit,
                gravity: g,
                gravity_offset: match g {
                    Gravity::SouthWest => (12, -4),
                    _ => (0, 0),
                },
                quality: q,
                format: fm,
                dpr: dpr.map(|d| d as f32 / 10.0),
                blur: blur.map(|b| b as f32 / 10.0),
                sharpen: sharpen.map(|s| s as f32 / 10.0),
                enlarge,
                background: bg,
                lossless: enlarge && q.is_some_and(|q| q % 2 == 0),
                first_frame: q.is_some_and(|q| q % 3 == 0),
                auto_quality: q.is_none() && enlarge,
                steps,
                info: w.is_some_and(|w| w % 5 == 0),
            },
        )
}

#[test]
fn dpr_multiplies_and_limits_hold() {
    let o = Options::from_query("w=400&h=300&dpr=2").unwrap().0;
    let r = o.transform(4096).resize.unwrap();
    assert_eq!((r.width, r.height), (Some(800), Some(600)));
    let o = o.capped(1.5);
    assert_eq!(o.canonical(), "w=400&h=300&dpr=1.5");
    let r = o.transform(4096).resize.unwrap();
    assert_eq!((r.width, r.height), (Some(600), Some(450)));
    let r = Options::from_query("w=8000&h=2000")
        .unwrap()
        .0
        .transform(4000)
        .resize
        .unwrap();
    assert_eq!(
        (r.width, r.height),
        (Some(4000), Some(1000)),
        "proportional"
    );
    assert!(Options::from_query("q=50")
        .unwrap()
        .0
        .transform(4096)
        .resize
        .is_none());
}

proptest::proptest! {
    #[test]
    fn parse_of_canonical_is_identity(o in arb_options()) {
        let (back, rest) = Options::from_query(&o.canonical()).unwrap();
        proptest::prop_assert_eq!(back, o);
        proptest::prop_assert_eq!(rest, None);
    }

    #[test]
    fn arbitrary_queries_never_panic(q in ".{0,200}") {
        let _ = Options::from_query(&q);
    }

    #[test]
    fn arbitrary_values_never_panic(name in "(w|h|fit|g|q|fm|dpr|blur|sharpen|enlarge|bg)", v in ".{0,40}") {
        let _ = Options::default().set(&name, &v);
    }
}
