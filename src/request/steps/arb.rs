//! Random steps whose canonical form reads back to them (for the option proptests).

use super::*;
use proptest::prelude::*;

fn gravity() -> impl Strategy<Value = Option<Gravity>> {
    prop_oneof![
        Just(None),
        Just(Some(Gravity::NorthEast)),
        Just(Some(Gravity::Smart)),
        (0u8..=100, 0u8..=100)
            .prop_map(|(x, y)| Some(Gravity::Focus(f32::from(x) / 100.0, f32::from(y) / 100.0))),
    ]
}

fn len() -> impl Strategy<Value = Len> {
    prop_oneof![
        Just(Len::Full),
        (1u32..5000).prop_map(Len::Px),
        (1u8..100).prop_map(|p| Len::Part(f32::from(p) / 100.0)),
    ]
}

/// Any steps, in values the URL grammar can write.
pub(crate) fn steps() -> impl Strategy<Value = Steps> {
    let geometry = (
        proptest::option::of((
            0u8..=255,
            proptest::option::of(any::<[u8; 3]>()),
            any::<bool>(),
            any::<bool>(),
        )),
        0u16..4,
        any::<(bool, bool)>(),
        proptest::option::of((len(), len(), gravity())),
        proptest::option::of((1u16..=1000, 1u16..=1000)),
        (
            proptest::option::of(1u32..5000),
            proptest::option::of(1u32..5000),
        ),
        proptest::option::of(any::<[u16; 4]>()),
    );
    let effects = (
        proptest::option::of(2u32..=4096),
        proptest::option::of((-255i16..=255, 0u16..=1000, 0u16..=1000)),
        proptest::option::of((
            1u8..=100,
            0usize..10,
            -4096i32..=4096,
            -4096i32..=4096,
            0u8..=100,
            any::<bool>(),
        )),
        proptest::option::of(1u32..1_000_000),
        proptest::collection::vec((0usize..4, 1u8..=100), 0..3),
        any::<bool>(),
    );
    (geometry, effects).prop_map(|(g, e)| {
        let (trim, rot, (fh, fv), crop, zoom, min_size, padding) = g;
        let (pixelate, adjust, wm, max_bytes, fq, keep_copyright) = e;
        let mut s = Steps {
            trim: trim.map(|(t, color, h, v)| Trim {
                threshold: f32::from(t),
                color,
                equal_hor: h,
                equal_ver: v,
            }),
            rotate: rot * 90,
            flip: Flip {
                horizontal: fh,
                vertical: fv,
            },
            crop: crop.and_then(|(w, h, gravity)| {
                (!matches!((w, h), (Len::Full, Len::Full))).then_some(Crop::Sized {
                    width: w,
                    height: h,
                    gravity,
                    offset: match gravity {
                        Some(Gravity::NorthEast) => (7, -3),
                        _ => (0, 0),
                    },
                })
            }),
            zoom: zoom
                .map(|(x, y)| (f32::from(x) / 100.0, f32::from(y) / 100.0))
                .filter(|z| *z != (1.0, 1.0)),
            min_size,
            padding: padding
                .map(|[t, r, b, l]| Padding {
                    top: u32::from(t % 4097),
                    right: u32::from(r % 4097),
                    bottom: u32::from(b % 4097),
                    left: u32::from(l % 4097),
                })
                .filter(|p| *p != Padding::default()),
            pixelate,
            adjust: adjust
                .map(|(b, c, s)| Adjust {
                    brightness: b,
                    contrast: f32::from(c) / 100.0,
                    saturation: f32::from(s) / 100.0,
                })
                .filter(|a| *a != Adjust::default()),
            watermark: wm.map(|(o, p, x, y, sc, named)| WatermarkUse {
                mark: match named {
                    true => MarkName::new("logo-2").unwrap_or(MarkName::DEFAULT),
                    false => MarkName::DEFAULT,
                },
                placement: Placement {
                    opacity: f32::from(o) / 100.0,
                    position: Position::ALL[p % Position::ALL.len()],
                    x,
                    y,
                    scale: f32::from(sc) / 100.0,
                },
            }),
            max_bytes,
            keep_copyright,
            ..Steps::default()
        };
        for (f, q) in fq {
            s.format_quality
                .set(crate::image::steps::FormatQualities::FORMATS[f], q);
        }
        s
    })
}
