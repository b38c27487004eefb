//! Resizing: the geometry of each fit mode (pure, tested for exact dimensions), where a crop
//! sits (gravity, including an edge-energy `smart` gravity), and the resize itself with
//! fast_image_resize (SIMD, Lanczos3, alpha premultiplied during the convolution).
//!
//! Pixels are resized as stored, in sRGB gamma space, as libvips, imgproxy and sharp do by
//! default; linear-light resizing darkens fine detail less but costs a 16-bit round trip.

use super::Reason;
use image::DynamicImage;

pub use super::fit::{Fit, Gravity};

/// What a resize must produce, in device pixels (the DPR is already applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeSpec {
    /// Box width.
    pub width: Option<u32>,
    /// Box height.
    pub height: Option<u32>,
    /// Fit mode.
    pub fit: Fit,
    /// Crop and padding position.
    pub gravity: Gravity,
    /// Allow a result larger than the source.
    pub enlarge: bool,
    /// Padding colour (RGBA) for `Contain`.
    pub background: [u8; 4],
    /// Gravity offsets in output pixels (imgproxy's `g:%type:%x:%y`): inward from the edges
    /// the gravity names, a shift right and down for the centre; none for `sm` and `fp`.
    pub offset: (i32, i32),
}

impl ResizeSpec {
    /// Fit inside a box of `width` × `height` (either side may be free), centred, never
    /// enlarged: what a size limit or a benchmark's "fit into 512×512" asks.
    pub fn inside(width: Option<u32>, height: Option<u32>) -> ResizeSpec {
        ResizeSpec {
            width,
            height,
            fit: Fit::Inside,
            gravity: Gravity::Center,
            enlarge: false,
            background: [255, 255, 255, 255],
            offset: (0, 0),
        }
    }
}

/// Where the pixels go: a region of the source, resized to `size`, optionally placed on a
/// canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Geometry {
    /// Size of the source region kept (the crop), before positioning.
    pub region: (f64, f64),
    /// Size the region is resized to.
    pub size: (u32, u32),
    /// For `Contain`: the canvas size.
    pub canvas: Option<(u32, u32)>,
}

impl Geometry {
    /// The final output dimensions.
    pub(crate) fn output(&self) -> (u32, u32) {
        self.canvas.unwrap_or(self.size)
    }
    /// How much the source is scaled (≤ 1 means shrinking).
    pub(crate) fn scale(&self) -> f64 {
        (f64::from(self.size.0) / self.region.0).max(f64::from(self.size.1) / self.region.1)
    }
}

fn px(v: f64) -> u32 {
    (v.round() as u32).max(1)
}

/// The geometry for a `sw`×`sh` (upright) source.
pub(crate) fn geometry(sw: u32, sh: u32, spec: &ResizeSpec) -> Geometry {
    let (fw, fh) = (f64::from(sw.max(1)), f64::from(sh.max(1)));
    let full = (fw, fh);
    let cap = |s: f64| if spec.enlarge { s } else { s.min(1.0) };
    let scaled = |s: f64| (px(fw * s), px(fh * s));
    let (w, h) = match (spec.width, spec.height) {
        (None, None) => {
            return Geometry {
                region: full,
                size: (sw.max(1), sh.max(1)),
                canvas: None,
            }
        }
        (Some(w), None) => {
            return Geometry {
                region: full,
                size: scaled(cap(f64::from(w) / fw)),
                canvas: None,
            }
        }
        (None, Some(h)) => {
            return Geometry {
                region: full,
                size: scaled(cap(f64::from(h) / fh)),
                canvas: None,
            }
        }
        (Some(w), Some(h)) => (f64::from(w), f64::from(h)),
    };
    match spec.fit {
        Fit::Inside => Geometry {
            region: full,
            size: scaled(cap((w / fw).min(h / fh))),
            canvas: None,
        },
        Fit::Outside => Geometry {
            region: full,
            size: scaled(cap((w / fw).max(h / fh))),
            canvas: None,
        },
        Fit::Fill => {
            let (w, h) = if spec.enlarge {
                (w, h)
            } else {
                (w.min(fw), h.min(fh))
            };
            Geometry {
                region: full,
                size: (px(w), px(h)),
                canvas: None,
            }
        }
        Fit::Contain => Geometry {
            region: full,
            size: scaled(cap((w / fw).min(h / fh))),
            canvas: Some((px(w), px(h))),
        },
        Fit::Cover => {
            let s = (w / fw).max(h / fh);
            if s <= 1.0 || spec.enlarge {
                Geometry {
                    region: ((w / s).min(fw), (h / s).min(fh)),
                    size: (px(w), px(h)),
                    canvas: None,
                }
            } else {
                // Too small to cover the box without enlarging: the largest region of the
                // box's aspect ratio, at scale 1.
                let k = (fw / w).min(fh / h);
                let size = (px(w * k), px(h * k));
                Geometry {
                    region: (f64::from(size.0).min(fw), f64::from(size.1).min(fh)),
                    size,
                    canvas: None,
                }
            }
        }
    }
}

/// The top-left corner of a `cw`×`ch` region in a `sw`×`sh` area, for a non-smart gravity.
/// `Smart` is placed by [`smart_position`]; here it falls back to the centre.
pub(crate) fn position(g: Gravity, sw: f64, sh: f64, cw: f64, ch: f64) -> (f64, f64) {
    let (fx, fy) = match g {
        Gravity::Center | Gravity::Smart => (0.5, 0.5),
        Gravity::North => (0.5, 0.0),
        Gravity::South => (0.5, 1.0),
        Gravity::East => (1.0, 0.5),
        Gravity::West => (0.0, 0.5),
        Gravity::NorthEast => (1.0, 0.0),
        Gravity::NorthWest => (0.0, 0.0),
        Gravity::SouthEast => (1.0, 1.0),
        Gravity::SouthWest => (0.0, 1.0),
        Gravity::Focus(x, y) => {
            // Centre the region on the point, kept inside the image.
            let x = (f64::from(x) * sw - cw / 2.0).clamp(0.0, (sw - cw).max(0.0));
            let y = (f64::from(y) * sh - ch / 2.0).clamp(0.0, (sh - ch).max(0.0));
            return (x, y);
        }
    };
    ((sw - cw).max(0.0) * fx, (sh - ch).max(0.0) * fy)
}

/// [`position`] moved by gravity offsets `(ox, oy)` as imgproxy does: inward from the edges
/// the gravity names (`ea`: `ox` from the right edge; `so`: `oy` from the bottom), a shift
/// right and down otherwise; kept inside the area. `sm` and `fp` take no offsets.
pub(crate) fn position_offset(
    g: Gravity,
    (sw, sh): (f64, f64),
    (cw, ch): (f64, f64),
    (ox, oy): (f64, f64),
) -> (f64, f64) {
    let (x, y) = position(g, sw, sh, cw, ch);
    if matches!(g, Gravity::Smart | Gravity::Focus(..)) {
        return (x, y);
    }
    let east = matches!(g, Gravity::East | Gravity::NorthEast | Gravity::SouthEast);
    let south = matches!(g, Gravity::South | Gravity::SouthEast | Gravity::SouthWest);
    let x = if east { x - ox } else { x + ox };
    let y = if south { y - oy } else { y + oy };
    // A region larger than the area (a `contain` canvas) may sit anywhere that shows it all.
    let clamp = |v: f64, room: f64| match room >= 0.0 {
        true => v.clamp(0.0, room),
        false => v.clamp(room, 0.0),
    };
    (clamp(x, sw - cw), clamp(y, sh - ch))
}

/// The `cw`×`ch` region of `img` with the most edge energy (sum of |dx| + |dy| of luma),
/// searched on a thumbnail of at most 128 pixels a side: the part of a photo with detail
/// (a face, an object) rather than sky or wall.
pub(crate) fn smart_position(img: &DynamicImage, cw: f64, ch: f64) -> (f64, f64) {
    let (sw, sh) = (f64::from(img.width()), f64::from(img.height()));
    if cw >= sw && ch >= sh {
        return (0.0, 0.0);
    }
    let thumb = img.thumbnail(128, 128).into_luma8();
    let (tw, th) = (thumb.width() as usize, thumb.height() as usize);
    if tw < 3 || th < 3 {
        return position(Gravity::Center, sw, sh, cw, ch);
    }
    let t = tw as f64 / sw;
    // Integral image of edge energy.
    let mut integral = vec![0u64; (tw + 1) * (th + 1)];
    for y in 0..th {
        let mut row = 0u64;
        for x in 0..tw {
            let p = i32::from(thumb.get_pixel(x as u32, y as u32).0[0]);
            let right = i32::from(thumb.get_pixel((x + 1).min(tw - 1) as u32, y as u32).0[0]);
            let down = i32::from(thumb.get_pixel(x as u32, (y + 1).min(th - 1) as u32).0[0]);
            row += u64::from((p - right).unsigned_abs() + (p - down).unsigned_abs());
            integral[(y + 1) * (tw + 1) + x + 1] = integral[y * (tw + 1) + x + 1] + row;
        }
    }
    let ww = ((cw * t).round() as usize).clamp(1, tw);
    let wh = ((ch * t).round() as usize).clamp(1, th);
    let sum = |x: usize, y: usize| {
        let (x2, y2) = (x + ww, y + wh);
        integral[y2 * (tw + 1) + x2] + integral[y * (tw + 1) + x]
            - integral[y * (tw + 1) + x2]
            - integral[y2 * (tw + 1) + x]
    };
    let (mut best, mut at) = (0u64, (0usize, 0usize));
    let mut first = true;
    for y in 0..=(th - wh) {
        for x in 0..=(tw - ww) {
            let s = sum(x, y);
            if first || s > best {
                best = s;
                at = (x, y);
                first = false;
            }
        }
    }
    let x = (at.0 as f64 / t).clamp(0.0, (sw - cw).max(0.0));
    let y = (at.1 as f64 / t).clamp(0.0, (sh - ch).max(0.0));
    (x, y)
}

/// Applies `spec` to an upright 8-bit image (Luma8, Rgb8 or Rgba8).
pub fn apply(img: DynamicImage, spec: &ResizeSpec) -> Result<DynamicImage, Reason> {
    let g = geometry(img.width(), img.height(), spec);
    let (sw, sh) = (f64::from(img.width()), f64::from(img.height()));
    let (cw, ch) = g.region;
    // Offsets are output pixels: source pixels are that many over the scale.
    let k = g.scale().max(1e-9);
    let off = (f64::from(spec.offset.0) / k, f64::from(spec.offset.1) / k);
    let (x, y) = match spec.gravity {
        Gravity::Smart => smart_position(&img, cw, ch),
        other => position_offset(other, (sw, sh), (cw, ch), off),
    };
    let unchanged = g.size == (img.width(), img.height()) && cw >= sw && ch >= sh;
    let resized = if unchanged {
        img
    } else {
        let mut dst = match &img {
            DynamicImage::ImageLuma8(_) => DynamicImage::new_luma8(g.size.0, g.size.1),
            DynamicImage::ImageRgba8(_) => DynamicImage::new_rgba8(g.size.0, g.size.1),
            _ => DynamicImage::new_rgb8(g.size.0, g.size.1),
        };
        let src = match img {
            i @ (DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)) => i,
            other => DynamicImage::ImageRgb8(other.into_rgb8()),
        };
        let opts = fast_image_resize::ResizeOptions::new()
            .resize_alg(fast_image_resize::ResizeAlg::Convolution(
                fast_image_resize::FilterType::Lanczos3,
            ))
            .crop(x, y, cw, ch);
        fast_image_resize::Resizer::new()
            .resize(&src, &mut dst, &opts)
            .map_err(|e| {
                tracing::warn!(error = %e, "resize failed");
                Reason::EncodeFailed
            })?;
        dst
    };
    Ok(match g.canvas {
        Some((w, h)) if (w, h) != (resized.width(), resized.height()) => pad(resized, w, h, spec),
        _ => resized,
    })
}

/// Places `img` on a `w`×`h` canvas of the spec's background, positioned by its gravity and
/// offsets.
fn pad(img: DynamicImage, w: u32, h: u32, spec: &ResizeSpec) -> DynamicImage {
    let g = match spec.gravity {
        Gravity::Smart => Gravity::Center,
        g => g,
    };
    let (x, y) = position_offset(
        g,
        (f64::from(w), f64::from(h)),
        (f64::from(img.width()), f64::from(img.height())),
        (f64::from(spec.offset.0), f64::from(spec.offset.1)),
    );
    canvas(
        img,
        w,
        h,
        (x.round() as i64, y.round() as i64),
        spec.background,
    )
}

/// `img` at `at` on a `w`×`h` canvas of `bg` (opaque RGB when both are opaque).
pub(crate) fn canvas(
    img: DynamicImage,
    w: u32,
    h: u32,
    at: (i64, i64),
    bg: [u8; 4],
) -> DynamicImage {
    let (x, y) = at;
    if bg[3] == 255 && !matches!(img, DynamicImage::ImageRgba8(_)) {
        let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([bg[0], bg[1], bg[2]]));
        image::imageops::overlay(&mut canvas, &img.into_rgb8(), x, y);
        DynamicImage::ImageRgb8(canvas)
    } else {
        let mut canvas = image::RgbaImage::from_pixel(w, h, image::Rgba(bg));
        image::imageops::overlay(&mut canvas, &img.into_rgba8(), x, y);
        DynamicImage::ImageRgba8(canvas)
    }
}

/// Composites transparent pixels onto `bg` (for JPEG, which has no alpha).
pub(crate) fn flatten(img: DynamicImage, bg: [u8; 3]) -> DynamicImage {
    let DynamicImage::ImageRgba8(rgba) = img else {
        return img;
    };
    let mut out = image::RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p.0[3]);
        for ((o, s), b) in o.0.iter_mut().zip(p.0).zip(bg) {
            *o = ((u32::from(s) * a + u32::from(b) * (255 - a) + 127) / 255) as u8;
        }
    }
    DynamicImage::ImageRgb8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(w: Option<u32>, h: Option<u32>, fit: Fit, enlarge: bool) -> ResizeSpec {
        ResizeSpec {
            width: w,
            height: h,
            fit,
            gravity: Gravity::Center,
            enlarge,
            background: [255, 255, 255, 255],
            offset: (0, 0),
        }
    }

    #[test]
    fn gravity_offsets_go_inward_and_stay_inside() {
        let at = |g, off| position_offset(g, (400.0, 300.0), (100.0, 100.0), off);
        assert_eq!(at(Gravity::NorthWest, (10.0, 20.0)), (10.0, 20.0));
        assert_eq!(
            at(Gravity::SouthEast, (10.0, 20.0)),
            (290.0, 180.0),
            "inward from the edges"
        );
        assert_eq!(at(Gravity::East, (10.0, 0.0)), (290.0, 100.0));
        assert_eq!(
            at(Gravity::Center, (-30.0, 15.0)),
            (120.0, 115.0),
            "a shift"
        );
        assert_eq!(
            at(Gravity::NorthWest, (-50.0, 999.0)),
            (0.0, 200.0),
            "clamped"
        );
        assert_eq!(
            at(Gravity::Smart, (10.0, 10.0)),
            (150.0, 100.0),
            "no offsets"
        );
    }

    #[test]
    fn exact_dimensions_per_fit() {
        let out = |w, h, fit| geometry(4000, 3000, &spec(Some(w), Some(h), fit, false)).output();
        assert_eq!(out(800, 800, Fit::Inside), (800, 600));
        assert_eq!(out(800, 800, Fit::Outside), (1067, 800));
        assert_eq!(out(800, 800, Fit::Cover), (800, 800));
        assert_eq!(out(800, 800, Fit::Contain), (800, 800));
        assert_eq!(out(800, 800, Fit::Fill), (800, 800));
        assert_eq!(out(300, 500, Fit::Cover), (300, 500));
        let g = geometry(4000, 3000, &spec(Some(800), Some(800), Fit::Cover, false));
        assert_eq!(g.region, (3000.0, 3000.0));
        let g = geometry(4000, 3000, &spec(Some(800), Some(800), Fit::Contain, false));
        assert_eq!((g.size, g.canvas), ((800, 600), Some((800, 800))));
        assert_eq!(
            geometry(4000, 3000, &spec(Some(512), None, Fit::Inside, false)).output(),
            (512, 384)
        );
        assert_eq!(
            geometry(4000, 3000, &spec(None, Some(300), Fit::Cover, false)).output(),
            (400, 300)
        );
    }

    #[test]
    fn no_upscaling_unless_asked() {
        let out =
            |fit, enlarge| geometry(400, 300, &spec(Some(800), Some(800), fit, enlarge)).output();
        assert_eq!(out(Fit::Inside, false), (400, 300));
        assert_eq!(out(Fit::Inside, true), (800, 600));
        assert_eq!(out(Fit::Fill, false), (400, 300));
        assert_eq!(out(Fit::Fill, true), (800, 800));
        // Cover without enlarging: the box's aspect ratio at scale 1.
        assert_eq!(out(Fit::Cover, false), (300, 300));
        assert_eq!(out(Fit::Cover, true), (800, 800));
        // Contain pads to the exact box without enlarging the image.
        let g = geometry(400, 300, &spec(Some(800), Some(800), Fit::Contain, false));
        assert_eq!((g.size, g.output()), ((400, 300), (800, 800)));
        assert_eq!(
            geometry(400, 300, &spec(Some(1000), None, Fit::Inside, false)).output(),
            (400, 300)
        );
    }

    #[test]
    fn gravity_positions() {
        assert_eq!(
            position(Gravity::Center, 100.0, 50.0, 50.0, 50.0),
            (25.0, 0.0)
        );
        assert_eq!(position(Gravity::West, 100.0, 50.0, 50.0, 50.0), (0.0, 0.0));
        assert_eq!(
            position(Gravity::East, 100.0, 50.0, 50.0, 50.0),
            (50.0, 0.0)
        );
        assert_eq!(
            position(Gravity::SouthEast, 100.0, 100.0, 50.0, 20.0),
            (50.0, 80.0)
        );
        assert_eq!(
            position(Gravity::Focus(0.9, 0.5), 100.0, 50.0, 50.0, 50.0),
            (50.0, 0.0)
        );
        assert_eq!(
            position(Gravity::Focus(0.25, 0.5), 100.0, 50.0, 40.0, 50.0),
            (5.0, 0.0)
        );
    }

    #[test]
    fn smart_gravity_finds_the_detail() {
        // Flat grey with a noisy square on the right: a square crop must land on it.
        let mut img = image::RgbImage::from_pixel(400, 100, image::Rgb([128, 128, 128]));
        for y in 10..90 {
            for x in 300..380 {
                let v = ((x * 31 + y * 17) % 7 * 36) as u8;
                img.put_pixel(x, y, image::Rgb([v, 255 - v, v / 2]));
            }
        }
        let (x, _) = smart_position(&DynamicImage::ImageRgb8(img), 100.0, 100.0);
        assert!((280.0..=300.0).contains(&x), "{x}");
    }

    #[test]
    fn apply_gives_the_geometry_and_keeps_alpha() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            300,
            200,
            image::Rgba([10, 20, 30, 100]),
        ));
        let out = apply(img, &spec(Some(120), Some(120), Fit::Cover, false)).unwrap();
        assert_eq!((out.width(), out.height()), (120, 120));
        let p = out.as_rgba8().unwrap().get_pixel(60, 60).0;
        assert!(p[3].abs_diff(100) <= 1 && p[0].abs_diff(10) <= 1, "{p:?}");
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(300, 200, image::Rgb([0, 0, 0])));
        let out = apply(img, &spec(Some(120), Some(120), Fit::Contain, false)).unwrap();
        assert_eq!((out.width(), out.height()), (120, 120));
        let rgb = out.as_rgb8().unwrap();
        assert_eq!(rgb.get_pixel(60, 2).0, [255, 255, 255], "white bars");
        assert_eq!(rgb.get_pixel(60, 60).0, [0, 0, 0], "the image");
    }

    #[test]
    fn flatten_composites_on_the_background() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            2,
            2,
            image::Rgba([0, 0, 0, 0]),
        ));
        let out = flatten(img, [255, 255, 255]);
        assert_eq!(out.as_rgb8().unwrap().get_pixel(0, 0).0, [255, 255, 255]);
    }

    proptest::proptest! {
        #[test]
        fn outputs_are_never_zero_nor_enlarged_without_asking(
            sw in 1u32..5000, sh in 1u32..5000,
            w in proptest::option::of(1u32..5000), h in proptest::option::of(1u32..5000),
            fit in 0usize..5,
        ) {
            let fits = [Fit::Inside, Fit::Cover, Fit::Contain, Fit::Fill, Fit::Outside];
            let g = geometry(sw, sh, &spec(w, h, fits[fit], false));
            let (ow, oh) = g.output();
            proptest::prop_assert!(ow >= 1 && oh >= 1);
            proptest::prop_assert!(g.size.0 <= sw.max(1) && g.size.1 <= sh.max(1), "{:?}", g);
            proptest::prop_assert!(g.region.0 <= f64::from(sw) && g.region.1 <= f64::from(sh));
            if let (Some(w), Some(h), Fit::Cover | Fit::Contain) = (w, h, fits[fit]) {
                if fits[fit] == Fit::Contain || (w <= sw && h <= sh) {
                    proptest::prop_assert_eq!((ow, oh), (w, h));
                }
            }
        }
    }
}
