use super::*;
use image::{GrayAlphaImage, GrayImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, RgbImage};
use proptest::prelude::*;

const RED: [u8; 4] = [255, 0, 0, 255];

fn solid(w: u32, h: u32, c: [u8; 4]) -> Mark {
    Mark::from_rgba(RgbaImage::from_pixel(w, h, Rgba(c))).unwrap()
}

fn white_rgb(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([255, 255, 255])))
}

fn place(position: Position, x: i32, y: i32) -> Placement {
    Placement {
        opacity: 1.0,
        position,
        x,
        y,
        scale: 0.0,
    }
}

fn close(a: u8, b: u8, tol: u8) -> bool {
    a.abs_diff(b) <= tol
}

/// Bounding box (x0, y0, x1, y1), exclusive end, of pixels matching `f`.
fn bbox<P: image::Pixel>(
    img: &ImageBuffer<P, Vec<P::Subpixel>>,
    f: impl Fn(&P) -> bool,
) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if f(p) {
            b = Some(match b {
                None => (x, y, x + 1, y + 1),
                Some((a, c, d, e)) => (a.min(x), c.min(y), d.max(x + 1), e.max(y + 1)),
            });
        }
    }
    b
}

fn encode(img: DynamicImage, fmt: ImageFormat) -> Vec<u8> {
    let mut v = Vec::new();
    img.write_to(&mut Cursor::new(&mut v), fmt).unwrap();
    v
}

#[test]
fn brief_example_soea_half_opacity() {
    let mark = solid(64, 32, RED);
    let p = Placement {
        opacity: 0.5,
        position: Position::SouthEast,
        x: 10,
        y: 5,
        scale: 0.0,
    };
    let out = apply(white_rgb(400, 300), &mark, &p);
    let img = out.as_rgb8().expect("stays Rgb8");
    // Mark occupies x in 326..390, y in 263..295.
    for &(x, y) in &[(389, 294), (326, 263), (389, 263), (326, 294), (350, 280)] {
        let Rgb([r, g, b]) = *img.get_pixel(x, y);
        assert!(
            r == 255 && close(g, 128, 1) && close(b, 128, 1),
            "({x},{y}) = {:?}",
            [r, g, b]
        );
    }
    for &(x, y) in &[
        (390, 294),
        (389, 295),
        (325, 263),
        (326, 262),
        (399, 299),
        (0, 0),
    ] {
        assert_eq!(*img.get_pixel(x, y), Rgb([255, 255, 255]), "({x},{y})");
    }
}

/// Expected top-left of the mark, written independently of `origin`.
fn expected_rect(pos: Position, cw: i64, ch: i64, mw: i64, mh: i64, x: i64, y: i64) -> (i64, i64) {
    let mid = |c: i64, m: i64| ((c - m) as f64 / 2.0).ceil() as i64;
    let horiz = match pos {
        Position::West | Position::NorthWest | Position::SouthWest => x,
        Position::East | Position::NorthEast | Position::SouthEast => cw - x - mw,
        _ => mid(cw, mw) + x,
    };
    let vert = match pos {
        Position::North | Position::NorthEast | Position::NorthWest => y,
        Position::South | Position::SouthEast | Position::SouthWest => ch - y - mh,
        _ => mid(ch, mh) + y,
    };
    (horiz, vert)
}

#[test]
fn every_position_lands_on_expected_rectangle() {
    let cases: &[(u32, u32, u32, u32, i32, i32)] = &[
        (101, 77, 10, 6, 3, 2),
        (101, 77, 11, 7, -4, 9),
        (100, 80, 20, 10, 0, 0),
        (30, 20, 50, 41, 1, -2), // mark larger than the canvas
        (1, 1, 3, 3, 0, 0),
        (60, 40, 10, 10, 55, 35), // partly off the canvas
    ];
    for &(cw, ch, mw, mh, x, y) in cases {
        let mark = solid(mw, mh, RED);
        for pos in Position::ALL {
            if pos == Position::Replicate {
                continue;
            }
            let out = apply(white_rgb(cw, ch), &mark, &place(pos, x, y));
            let img = out.as_rgb8().unwrap();
            let (l, t) = expected_rect(
                pos,
                cw.into(),
                ch.into(),
                mw.into(),
                mh.into(),
                x.into(),
                y.into(),
            );
            for (px, py, p) in img.enumerate_pixels() {
                let (px, py) = (i64::from(px), i64::from(py));
                let inside = px >= l && px < l + i64::from(mw) && py >= t && py < t + i64::from(mh);
                let want = if inside {
                    Rgb([255, 0, 0])
                } else {
                    Rgb([255, 255, 255])
                };
                assert_eq!(
                    *p,
                    want,
                    "pos {} canvas {cw}x{ch} mark {mw}x{mh} off ({x},{y}) pixel ({px},{py})",
                    pos.name()
                );
            }
        }
    }
}

#[test]
fn position_names_round_trip() {
    for pos in Position::ALL {
        assert_eq!(Position::parse(pos.name()), Some(pos));
    }
    let names: Vec<&str> = Position::ALL.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        ["ce", "no", "so", "ea", "we", "noea", "nowe", "soea", "sowe", "re"]
    );
    for bad in ["", "CE", " ce", "center", "fp", "nw", "soea "] {
        assert_eq!(Position::parse(bad), None, "{bad:?}");
    }
    assert_eq!(Position::default(), Position::Center);
}

#[test]
fn scale_fits_mark_inside_scaled_canvas() {
    // 100x50 into (100, 75): stays 100x50.
    let out = apply(
        white_rgb(400, 300),
        &solid(100, 50, RED),
        &Placement {
            scale: 0.25,
            ..place(Position::NorthWest, 0, 0)
        },
    );
    let red = |p: &Rgb<u8>| p.0 != [255, 255, 255];
    assert_eq!(bbox(out.as_rgb8().unwrap(), red), Some((0, 0, 100, 50)));
    // 50x50 is enlarged to 75x75 (height-limited).
    let out = apply(
        white_rgb(400, 300),
        &solid(50, 50, RED),
        &Placement {
            scale: 0.25,
            ..place(Position::NorthWest, 0, 0)
        },
    );
    let img = out.as_rgb8().unwrap();
    assert_eq!(bbox(img, red), Some((0, 0, 75, 75)));
    assert_eq!(*img.get_pixel(74, 74), Rgb([255, 0, 0]));
    // 1000x100 shrinks to 100x10 (width-limited), placed at soea.
    let out = apply(
        white_rgb(400, 300),
        &solid(1000, 100, RED),
        &Placement {
            scale: 0.25,
            ..place(Position::SouthEast, 0, 0)
        },
    );
    assert_eq!(
        bbox(out.as_rgb8().unwrap(), red),
        Some((300, 290, 400, 300))
    );
    // Scale above MAX_SCALE acts as 1: the mark fits the canvas exactly.
    let out = apply(
        white_rgb(40, 30),
        &solid(10, 10, RED),
        &Placement {
            scale: 1e30,
            ..place(Position::Center, 0, 0)
        },
    );
    assert_eq!(bbox(out.as_rgb8().unwrap(), red), Some((5, 0, 35, 30)));
    // 0, negative and NaN scale keep the mark's size.
    for s in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let out = apply(
            white_rgb(40, 30),
            &solid(10, 10, RED),
            &Placement {
                scale: s,
                ..place(Position::NorthWest, 0, 0)
            },
        );
        assert_eq!(
            bbox(out.as_rgb8().unwrap(), red),
            Some((0, 0, 10, 10)),
            "{s}"
        );
    }
    assert_eq!(scaled_size(100, 50, 400, 300, 0.25), (100, 50));
    assert_eq!(scaled_size(3, 3, 1, 1, 0.001), (1, 1));
}

#[test]
fn scaling_does_not_darken_edges() {
    // Red opaque square inside a transparent *black* border: premultiplied
    // resizing must not bleed black into the red.
    let mut img = RgbaImage::from_pixel(40, 40, Rgba([0, 0, 0, 0]));
    for y in 10..30 {
        for x in 10..30 {
            img.put_pixel(x, y, Rgba(RED));
        }
    }
    let mark = Mark::from_rgba(img).unwrap();
    let out = apply(
        white_rgb(80, 80),
        &mark,
        &Placement {
            scale: 0.25,
            ..place(Position::NorthWest, 0, 0)
        },
    );
    for p in out.as_rgb8().unwrap().pixels() {
        // Any partially covered pixel mixes red and white: R stays 255-ish.
        assert!(p.0[0] >= 250, "{:?}", p.0);
    }
}

#[test]
fn replicate_covers_corners_and_respects_spacing() {
    let out = apply(
        white_rgb(100, 60),
        &solid(10, 10, RED),
        &place(Position::Replicate, 5, 3),
    );
    let img = out.as_rgb8().unwrap();
    for (x, y, p) in img.enumerate_pixels() {
        let red = x % 15 < 10 && y % 13 < 10;
        let want = if red {
            Rgb([255, 0, 0])
        } else {
            Rgb([255, 255, 255])
        };
        assert_eq!(*p, want, "({x},{y})");
    }
    assert_eq!(*img.get_pixel(0, 0), Rgb([255, 0, 0]));
    assert_eq!(*img.get_pixel(99, 59), Rgb([255, 0, 0]));
    assert_eq!(*img.get_pixel(99, 0), Rgb([255, 0, 0]));
    assert_eq!(*img.get_pixel(0, 59), Rgb([255, 0, 0]));
}

#[test]
fn replicate_small_period_and_clamped_spacing() {
    // 2x1 mark with gaps (1, 2): exercises the pre-tiled block path.
    let out = apply(
        white_rgb(203, 97),
        &solid(2, 1, RED),
        &place(Position::Replicate, 1, 2),
    );
    for (x, y, p) in out.as_rgb8().unwrap().enumerate_pixels() {
        let red = x % 3 < 2 && y % 3 == 0;
        assert_eq!(p.0 == [255, 0, 0], red, "({x},{y})");
        assert!(p.0 == [255, 0, 0] || p.0 == [255, 255, 255]);
    }
    // Negative spacing is 0: full coverage.
    let out = apply(
        white_rgb(50, 50),
        &solid(7, 3, RED),
        &place(Position::Replicate, -9, i32::MIN),
    );
    assert!(out.as_rgb8().unwrap().pixels().all(|p| p.0 == [255, 0, 0]));
    // Huge spacing is clamped to the canvas side: a single tile at (0,0).
    let out = apply(
        white_rgb(50, 40),
        &solid(7, 3, RED),
        &place(Position::Replicate, i32::MAX, i32::MAX),
    );
    let red = |p: &Rgb<u8>| p.0 == [255, 0, 0];
    assert_eq!(bbox(out.as_rgb8().unwrap(), red), Some((0, 0, 7, 3)));
    // Spacing exactly the canvas side still gives one tile only.
    let out = apply(
        white_rgb(50, 40),
        &solid(7, 3, RED),
        &place(Position::Replicate, 50, 40),
    );
    assert_eq!(bbox(out.as_rgb8().unwrap(), red), Some((0, 0, 7, 3)));
}

#[test]
fn rgba_canvas_composites_alpha() {
    // Transparent canvas + red at 50%: red with alpha ~128.
    let canvas = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 0])));
    let p = Placement {
        opacity: 0.5,
        ..place(Position::NorthWest, 0, 0)
    };
    let out = apply(canvas, &solid(4, 4, RED), &p);
    let img = out.as_rgba8().expect("stays Rgba8");
    let Rgba([r, g, b, a]) = *img.get_pixel(0, 0);
    assert!(
        r == 255 && g == 0 && b == 0 && close(a, 128, 1),
        "{:?}",
        [r, g, b, a]
    );
    assert_eq!(*img.get_pixel(4, 4), Rgba([0, 0, 0, 0]));

    // Half-transparent blue canvas + red at 50%: alpha .75, colour 2/3 red 1/3 blue.
    let canvas = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([0, 0, 255, 128])));
    let out = apply(canvas, &solid(4, 4, RED), &p);
    let Rgba([r, g, b, a]) = *out.as_rgba8().unwrap().get_pixel(1, 1);
    assert!(
        close(r, 170, 2) && g == 0 && close(b, 85, 2) && close(a, 191, 1),
        "{:?}",
        [r, g, b, a]
    );

    // Opaque RGBA canvas behaves like RGB and stays opaque.
    let canvas = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([255, 255, 255, 255])));
    let out = apply(canvas, &solid(4, 4, RED), &p);
    let Rgba([r, g, b, a]) = *out.as_rgba8().unwrap().get_pixel(2, 2);
    assert!(r == 255 && close(g, 128, 1) && close(b, 128, 1) && a == 255);
}

#[test]
fn grey_canvases_keep_type() {
    let canvas = DynamicImage::ImageLuma8(GrayImage::from_pixel(20, 10, Luma([255])));
    let out = apply(canvas, &solid(5, 5, RED), &place(Position::NorthWest, 0, 0));
    let img = out.as_luma8().expect("stays Luma8");
    // Rec. 709 luma of pure red: 0.2126 * 255 = 54.
    assert_eq!(img.get_pixel(0, 0).0, [54]);
    assert_eq!(img.get_pixel(5, 5).0, [255]);

    let canvas = DynamicImage::ImageLumaA8(GrayAlphaImage::from_pixel(20, 10, LumaA([0, 0])));
    let p = Placement {
        opacity: 0.5,
        ..place(Position::SouthEast, 0, 0)
    };
    let out = apply(canvas, &solid(5, 5, [255, 255, 255, 255]), &p);
    let img = out.as_luma_alpha8().expect("stays LumaA8");
    let LumaA([l, a]) = *img.get_pixel(19, 9);
    assert!(l == 255 && close(a, 128, 1), "{:?}", [l, a]);
    assert_eq!(img.get_pixel(0, 0).0, [0, 0]);
}

#[test]
fn other_types_become_rgba8_unless_nothing_is_drawn() {
    let canvas = DynamicImage::ImageRgb16(ImageBuffer::from_pixel(
        10,
        10,
        Rgb([65535u16, 65535, 65535]),
    ));
    let out = apply(canvas.clone(), &solid(2, 2, RED), &Placement::default());
    let img = out.as_rgba8().expect("converted to Rgba8");
    assert_eq!(img.get_pixel(4, 4).0, [255, 0, 0, 255]);
    assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255, 255]);
    // Opacity 0: unchanged, type included.
    let p = Placement {
        opacity: 0.0,
        ..Placement::default()
    };
    let out = apply(canvas, &solid(2, 2, RED), &p);
    assert!(out.as_rgb16().is_some());
}

#[test]
fn opacity_edge_cases() {
    let original = white_rgb(30, 20);
    for o in [0.0, -1.0, f32::NAN, f32::NEG_INFINITY, 0.001] {
        let p = Placement {
            opacity: o,
            ..Placement::default()
        };
        let out = apply(original.clone(), &solid(10, 10, RED), &p);
        assert_eq!(out, original, "opacity {o}");
    }
    for o in [1.0, 2.0, f32::INFINITY] {
        let p = Placement {
            opacity: o,
            ..Placement::default()
        };
        let out = apply(original.clone(), &solid(10, 10, [0, 0, 255, 255]), &p);
        assert_eq!(
            out.as_rgb8().unwrap().get_pixel(15, 10).0,
            [0, 0, 255],
            "opacity {o}"
        );
    }
    // Mark alpha multiplies with opacity: 50% alpha at 50% opacity ≈ 25%.
    let p = Placement {
        opacity: 0.5,
        ..Placement::default()
    };
    let out = apply(original.clone(), &solid(10, 10, [0, 0, 0, 128]), &p);
    let v = out.as_rgb8().unwrap().get_pixel(15, 10).0;
    assert!(v.iter().all(|&c| close(c, 191, 1)), "{v:?}");
    // Empty mark: unchanged.
    let empty = Mark::from_rgba(RgbaImage::new(0, 0)).unwrap();
    assert!(empty.is_empty());
    assert_eq!(
        apply(original.clone(), &empty, &Placement::default()),
        original
    );
}

#[test]
fn off_canvas_and_tiny_canvases() {
    let original = white_rgb(30, 20);
    for (pos, x, y) in [
        (Position::East, i32::MAX, 0),
        (Position::West, i32::MIN, i32::MIN),
        (Position::SouthEast, i32::MIN, i32::MIN),
        (Position::Center, 1000, 0),
        (Position::North, 0, -10),
    ] {
        let out = apply(original.clone(), &solid(10, 10, RED), &place(pos, x, y));
        assert_eq!(out, original, "{} {x} {y}", pos.name());
    }
    // 1x1 canvas with a bigger mark: covered.
    for pos in Position::ALL {
        let out = apply(white_rgb(1, 1), &solid(50, 30, RED), &place(pos, 0, 0));
        assert_eq!(
            out.as_rgb8().unwrap().get_pixel(0, 0).0,
            [255, 0, 0],
            "{}",
            pos.name()
        );
    }
    // 0-sized canvas: returned as is.
    let out = apply(
        DynamicImage::new_rgb8(0, 5),
        &solid(3, 3, RED),
        &Placement::default(),
    );
    assert_eq!((out.width(), out.height()), (0, 5));
}

#[test]
fn from_bytes_formats_and_limits() {
    let mut src = RgbaImage::from_pixel(3, 2, Rgba([10, 20, 30, 40]));
    src.put_pixel(2, 1, Rgba([200, 100, 0, 255]));
    let png = encode(DynamicImage::ImageRgba8(src.clone()), ImageFormat::Png);
    let m = Mark::from_bytes(&png).unwrap();
    assert_eq!((m.width(), m.height()), (3, 2));
    assert_eq!(m.pixels(), &src);

    let webp = encode(DynamicImage::ImageRgba8(src.clone()), ImageFormat::WebP);
    assert_eq!(Mark::from_bytes(&webp).unwrap().pixels(), &src);

    let jpeg = encode(
        DynamicImage::ImageRgb8(RgbImage::from_pixel(16, 8, Rgb([0, 0, 255]))),
        ImageFormat::Jpeg,
    );
    let m = Mark::from_bytes(&jpeg).unwrap();
    assert_eq!((m.width(), m.height()), (16, 8));
    let Rgba([r, g, b, a]) = *m.pixels().get_pixel(8, 4);
    assert!(r < 20 && g < 20 && b > 230 && a == 255);

    // Animated GIF: first frame only.
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        enc.encode_frames(vec![
            image::Frame::new(RgbaImage::from_pixel(4, 4, Rgba(RED))),
            image::Frame::new(RgbaImage::from_pixel(4, 4, Rgba([0, 0, 255, 255]))),
        ])
        .unwrap();
    }
    let m = Mark::from_bytes(&gif).unwrap();
    assert_eq!(m.pixels().get_pixel(1, 1).0, RED);

    // Too large, in either direction.
    for (w, h) in [(4097, 1), (1, 4097)] {
        let big = encode(
            DynamicImage::ImageLuma8(GrayImage::new(w, h)),
            ImageFormat::Png,
        );
        let err = Mark::from_bytes(&big).unwrap_err();
        assert!(err.contains("4096"), "{err}");
    }
    let ok = encode(
        DynamicImage::ImageLuma8(GrayImage::new(4096, 1)),
        ImageFormat::Png,
    );
    assert!(Mark::from_bytes(&ok).is_ok());
    assert!(Mark::from_rgba(RgbaImage::new(4097, 1)).is_err());

    // Garbage, empty, truncated, unsupported.
    assert!(Mark::from_bytes(b"").is_err());
    assert!(Mark::from_bytes(b"not an image at all").is_err());
    assert!(Mark::from_bytes(&png[..png.len() / 2]).is_err());
    assert!(Mark::from_bytes(b"BM\x00\x00\x00\x00").is_err());
}

fn alpha_bbox(m: &Mark) -> Option<(u32, u32, u32, u32)> {
    bbox(m.pixels(), |p: &Rgba<u8>| p.0[3] > 0)
}

#[test]
fn text_mark_renders_glyphs() {
    let size = 32.0;
    let m = Mark::text("Hello, pixgate!", size, [255, 255, 0, 255], false).unwrap();
    let (x0, y0, x1, y1) = alpha_bbox(&m).expect("some visible pixels");
    let hgt = (y1 - y0) as f32;
    assert!(hgt >= 0.5 * size && hgt <= 2.0 * size, "ink height {hgt}");
    let mh = m.height() as f32;
    assert!(
        mh >= 0.5 * size && mh <= 2.0 * size + 2.0 * TEXT_MARGIN as f32,
        "mark height {mh}"
    );
    assert!(m.width() > m.height());
    // Tight crop: ink starts within the margin (+1 for conservative bounds).
    assert!(x0 <= TEXT_MARGIN + 1 && y0 <= TEXT_MARGIN + 1, "{x0} {y0}");
    assert!(m.width() - x1 <= TEXT_MARGIN + 1 && m.height() - y1 <= TEXT_MARGIN + 1);
    // The colour is as asked, and stem interiors are fully opaque.
    assert!(m.pixels().pixels().all(|p| p.0[..3] == [255, 255, 0]));
    assert_eq!(m.pixels().pixels().map(|p| p.0[3]).max(), Some(255));
    // Translucent colour caps the alpha.
    let m = Mark::text("Hi", 40.0, [0, 0, 0, 100], false).unwrap();
    assert_eq!(m.pixels().pixels().map(|p| p.0[3]).max(), Some(100));
}

#[test]
fn text_shadow_and_lines() {
    let plain = Mark::text("Ab", 24.0, [255, 255, 255, 255], false).unwrap();
    let shadowed = Mark::text("Ab", 24.0, [255, 255, 255, 255], true).unwrap();
    assert_eq!(
        (plain.width(), plain.height()),
        (shadowed.width(), shadowed.height())
    );
    let dark = shadowed
        .pixels()
        .pixels()
        .filter(|p| p.0[3] == 255 && p.0[0] < 40)
        .count();
    let bright = shadowed
        .pixels()
        .pixels()
        .filter(|p| p.0[3] == 255 && p.0[0] == 255)
        .count();
    assert!(dark > 20 && bright > 20, "dark {dark} bright {bright}");
    let visible = |m: &Mark| m.pixels().pixels().filter(|p| p.0[3] > 0).count();
    assert!(visible(&shadowed) > visible(&plain));
    // The outline stays inside the margin: outermost ring is transparent.
    let (w, h) = (shadowed.width(), shadowed.height());
    for (x, y, p) in shadowed.pixels().enumerate_pixels() {
        if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
            assert_eq!(p.0[3], 0, "({x},{y})");
        }
    }
    // Two lines are roughly twice as tall; \r is ignored.
    let one = Mark::text("Ag", 20.0, RED, false).unwrap();
    let two = Mark::text("Ag\r\nAg", 20.0, RED, false).unwrap();
    assert!(two.height() as f32 > 1.6 * one.height() as f32);
    assert!(two.width().abs_diff(one.width()) <= 1);
    // Composites onto a canvas.
    let out = apply(white_rgb(200, 100), &shadowed, &Placement::default());
    assert!(out.as_rgb8().unwrap().pixels().any(|p| p.0[0] < 40));
}

#[test]
fn text_errors() {
    let c = [0, 0, 0, 255];
    assert!(Mark::text("", 20.0, c, false).is_err());
    assert!(Mark::text("   ", 20.0, c, false).is_err());
    assert!(Mark::text("\n\n", 20.0, c, true).is_err());
    for s in [3.99, 512.5, f32::NAN, f32::INFINITY, -20.0, 0.0] {
        assert!(Mark::text("x", s, c, false).is_err(), "{s}");
    }
    assert!(Mark::text("x", 4.0, c, false).is_ok());
    assert!(Mark::text("x", 512.0, c, true).is_ok());
    assert!(Mark::text(&"i".repeat(256), 4.0, c, false).is_ok());
    assert!(Mark::text(&"i".repeat(257), 4.0, c, false).is_err());
    // Multi-byte characters count as one each.
    assert!(Mark::text(&"é".repeat(256), 8.0, c, false).is_ok());
    // Too large a rendering is refused, not allocated.
    assert!(Mark::text(&"W".repeat(256), 512.0, c, false).is_err());
    assert!(Mark::text(&"W\n".repeat(128), 512.0, c, false).is_err());
}

fn canvas_of_kind(kind: u8, w: u32, h: u32) -> DynamicImage {
    match kind {
        0 => DynamicImage::new_rgb8(w, h),
        1 => DynamicImage::new_rgba8(w, h),
        2 => DynamicImage::new_luma8(w, h),
        3 => DynamicImage::new_luma_a8(w, h),
        4 => DynamicImage::new_rgb16(w, h),
        _ => DynamicImage::new_rgba32f(w, h),
    }
}

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![prop::num::f32::ANY, -0.5f32..1.5f32]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn apply_never_panics(
        cw in 1u32..300,
        ch in 1u32..300,
        mw in 1u32..400,
        mh in 1u32..400,
        kind in 0u8..6,
        pos in 0usize..10,
        opacity in any_f32(),
        scale in any_f32(),
        x in any::<i32>(),
        y in any::<i32>(),
        small_offsets in any::<bool>(),
        alpha in any::<u8>(),
    ) {
        let (x, y) = if small_offsets { (x % 400, y % 400) } else { (x, y) };
        let position = Position::ALL.get(pos).copied().unwrap_or_default();
        let mark = solid(mw, mh, [1, 2, 3, alpha]);
        let p = Placement { opacity, position, x, y, scale };
        let canvas = canvas_of_kind(kind, cw, ch);
        let before = canvas.color();
        let out = apply(canvas, &mark, &p);
        prop_assert_eq!((out.width(), out.height()), (cw, ch));
        let kept = kind < 4 || opacity_q(opacity) == 0;
        if kept {
            prop_assert_eq!(out.color(), before);
        } else {
            prop_assert!(out.as_rgba8().is_some());
        }
    }

    #[test]
    fn text_never_panics(
        s in "(?s).{0,40}",
        size in prop_oneof![prop::num::f32::ANY, 0.0f32..80.0],
        rgba in any::<[u8; 4]>(),
        shadow in any::<bool>(),
    ) {
        if let Ok(m) = Mark::text(&s, size, rgba, shadow) {
            prop_assert!(m.width() > 0 && m.height() > 0);
            prop_assert!(m.width() <= MAX_TEXT_SIDE && m.height() <= MAX_TEXT_SIDE);
        }
    }

    #[test]
    fn from_bytes_never_panics(
        prefix in 0usize..5,
        tail in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let heads: [&[u8]; 5] = [
            b"",
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff",
            b"GIF89a",
            b"RIFF\x10\x00\x00\x00WEBPVP8L",
        ];
        let mut bytes = heads.get(prefix).copied().unwrap_or_default().to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(m) = Mark::from_bytes(&bytes) {
            prop_assert!(m.width() <= MAX_MARK_SIDE && m.height() <= MAX_MARK_SIDE);
        }
    }
}
