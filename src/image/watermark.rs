//! Image and text watermarks, compatible with imgproxy's `wm` option
//! (`wm:%opacity:%position:%x_offset:%y_offset:%scale`).
//!
//! # Overview
//!
//! * A [`Mark`] is a watermark held as straight (not premultiplied) RGBA8
//!   pixels. It is either decoded from an image file ([`Mark::from_bytes`]:
//!   PNG, JPEG, WebP or GIF, first frame only, at most 4096x4096), built from
//!   pixels ([`Mark::from_rgba`]) or rendered from text in the bundled DejaVu
//!   Sans font ([`Mark::text`]).
//! * A [`Placement`] says how to draw it: opacity, [`Position`], offsets and
//!   scale, with the same meaning as imgproxy's `wm` arguments.
//! * [`apply`] draws a mark onto a decoded image.
//!
//! # Compositing
//!
//! Compositing is plain source-over in the sRGB values as stored (no
//! linearisation), per channel:
//! `out = mark * a + canvas * (1 - a)` with `a = mark_alpha / 255 * opacity`.
//! For a canvas with an alpha channel the alpha is composited too ("over" in
//! straight alpha): `out_a = a + canvas_a * (1 - a)` and the colour is
//! weighted accordingly. The opacity is quantised to steps of 1/255, so an
//! opacity below 1/510 draws nothing. NaN or non-positive opacity draws
//! nothing; values above 1 (including +inf) act as 1.
//!
//! The canvas keeps its pixel type when it is `Rgb8`, `Rgba8`, `Luma8` or
//! `LumaA8`, so an opaque canvas stays opaque. On grey canvases the mark's
//! colour is reduced to luma with the Rec. 709 weights the `image` crate uses.
//! Any other pixel type is converted to `Rgba8` first. When nothing can be
//! drawn at all (opacity 0, an empty mark, a 0-pixel canvas), the canvas is
//! returned unchanged, type included.
//!
//! # Geometry
//!
//! With canvas size `W x H` and (scaled) mark size `w x h`, the mark's top-left
//! corner is placed as in imgproxy's `calcPosition`:
//!
//! | position | left | top |
//! |---|---|---|
//! | `ce` | `ceil((W-w)/2) + x` | `ceil((H-h)/2) + y` |
//! | `no` | `ceil((W-w)/2) + x` | `y` |
//! | `so` | `ceil((W-w)/2) + x` | `H - h - y` |
//! | `ea` | `W - w - x` | `ceil((H-h)/2) + y` |
//! | `we` | `x` | `ceil((H-h)/2) + y` |
//! | `noea` | `W - w - x` | `y` |
//! | `nowe` | `x` | `y` |
//! | `soea` | `W - w - x` | `H - h - y` |
//! | `sowe` | `x` | `H - h - y` |
//!
//! So on an edge or corner the offset moves the mark inward from that edge;
//! along a centred axis it shifts the mark right/down (negative values shift
//! left/up). Parts of the mark that fall outside the canvas are clipped; a
//! mark entirely outside draws nothing. All arithmetic is done in `i64`, so
//! any `i32` offset is safe.
//!
//! `re` (replicate) tiles the mark over the whole canvas, starting with a tile
//! at the top-left corner; `x`/`y` are the horizontal/vertical gaps between
//! tiles, clamped to `0..=canvas side`.
//!
//! # Scale
//!
//! `scale == 0` (also negative, NaN or infinite) keeps the mark's own size.
//! `scale > 0` resizes the mark, aspect ratio kept and enlarging allowed, to
//! fit inside `(round(W * scale), round(H * scale))` (each at least 1 px), as
//! imgproxy does. To bound memory and time, `scale` is clamped to at most
//! [`MAX_SCALE`] (1.0: the mark never gets larger than the canvas through
//! scaling). Resizing is done in premultiplied alpha, with Lanczos3 when
//! shrinking and Catmull-Rom when enlarging.
//!
//! # Differences from imgproxy (deliberate)
//!
//! * imgproxy clamps the position so that at least one pixel of the mark stays
//!   on the canvas; here a mark pushed off the canvas simply disappears.
//! * imgproxy's `re` splits the gap around each tile and centres the tile grid;
//!   here tiles start at the top-left corner and the gap follows each tile.
//! * imgproxy's centring uses round-half-to-even of `(W - w + 1) / 2`; here it
//!   is `ceil((W - w) / 2)`, which is exactly centred whenever possible.
//! * Fractional offsets (imgproxy treats `|x| < 1` as a fraction of the
//!   canvas) do not exist here: offsets are whole pixels.

use std::borrow::Cow;
use std::io::Cursor;

use ab_glyph::{point, Font, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageError, ImageReader, Limits, Rgba, RgbaImage};

/// The bundled font (DejaVu Sans, see `font/LICENSE-DejaVu.txt`).
static FONT_BYTES: &[u8] = include_bytes!("font/DejaVuSans.ttf");

/// Largest accepted width and height of a decoded or supplied image mark.
pub const MAX_MARK_SIDE: u32 = 4096;
/// Most characters (Unicode scalar values, newlines included) in a text mark.
pub const MAX_TEXT_CHARS: usize = 256;
/// Smallest accepted text size in pixels.
pub const MIN_TEXT_PX: f32 = 4.0;
/// Largest accepted text size in pixels.
pub const MAX_TEXT_PX: f32 = 512.0;
/// Largest width or height of a rendered text mark.
pub const MAX_TEXT_SIDE: u32 = 8192;
/// Largest pixel count (width × height) of a rendered text mark.
pub const MAX_TEXT_PIXELS: u64 = 4096 * 4096;
/// Upper bound applied to [`Placement::scale`].
pub const MAX_SCALE: f32 = 1.0;
/// Transparent margin around rendered text, in pixels (room for the outline).
pub const TEXT_MARGIN: u32 = 2;

/// 255 * 255: a mark pixel's effective alpha is `alpha * opacity_q` in `0..=FULL`.
const FULL: u32 = 255 * 255;
/// Replicated tiles whose period is shorter than this are pre-tiled into a
/// larger tile so that per-tile overhead stays negligible.
const MIN_TILE_PERIOD: u64 = 64;

/// A loaded watermark: straight (not premultiplied) RGBA pixels.
#[derive(Debug, Clone)]
pub struct Mark {
    img: RgbaImage,
}

impl Mark {
    /// Decodes an image file (PNG, JPEG, WebP, GIF; first frame). Err(message) if not decodable, or larger than 4096x4096.
    ///
    /// The size limit is enforced by the decoder before the pixel buffer is
    /// allocated. Images with other pixel types (16-bit, grey, palette…) are
    /// converted to RGBA8. A 0x0 image is rejected.
    pub fn from_bytes(bytes: &[u8]) -> Result<Mark, String> {
        if bytes.is_empty() {
            return Err("watermark image is empty".to_string());
        }
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot read watermark image: {e}"))?;
        if reader.format().is_none() {
            return Err("watermark image format not recognised".to_string());
        }
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_MARK_SIDE);
        limits.max_image_height = Some(MAX_MARK_SIDE);
        reader.limits(limits);
        let img = reader.decode().map_err(|e| match e {
            ImageError::Limits(_) => too_large_message(),
            other => format!("cannot decode watermark image: {other}"),
        })?;
        if img.width() > MAX_MARK_SIDE || img.height() > MAX_MARK_SIDE {
            return Err(too_large_message());
        }
        if img.width() == 0 || img.height() == 0 {
            return Err("watermark image has no pixels".to_string());
        }
        Ok(Mark {
            img: img.into_rgba8(),
        })
    }

    /// Wraps already decoded straight-alpha RGBA pixels as a mark.
    ///
    /// Err if either side exceeds [`MAX_MARK_SIDE`]. A 0-pixel image is
    /// accepted and gives an empty mark, which [`apply`] ignores.
    pub fn from_rgba(img: RgbaImage) -> Result<Mark, String> {
        if img.width() > MAX_MARK_SIDE || img.height() > MAX_MARK_SIDE {
            return Err(too_large_message());
        }
        Ok(Mark { img })
    }

    /// Renders `text` (one line; \n starts new lines) in the bundled DejaVu Sans at `size_px` pixel height,
    /// colour `rgba`, with a 1-px dark outline/shadow option for legibility: `shadow: bool`. Empty text or size outside 4..=512 → Err.
    /// The result is tightly cropped to the glyphs plus a small margin. Bounded: total text ≤ 256 chars.
    ///
    /// Details: `size_px` is the font's ascent-to-descent height. Lines are
    /// left-aligned and spaced by the font's line height. `\r` is ignored, a
    /// tab is drawn as a space, other control characters are skipped, and
    /// characters missing from the font show the font's "missing glyph" box.
    /// The margin is [`TEXT_MARGIN`] pixels on each side. With `shadow`, a
    /// black outline one pixel wide (3x3 dilation of the glyph coverage) is
    /// drawn under the text; the whole mark then has the alpha of `rgba`.
    /// Fully transparent pixels carry the text colour (black with `shadow`)
    /// so that resizing does not create fringes.
    ///
    /// Errors: empty text, more than [`MAX_TEXT_CHARS`] characters, size
    /// outside `4.0..=512.0` (NaN included), text with no visible glyph
    /// (e.g. only spaces), or a rendering larger than [`MAX_TEXT_SIDE`] per
    /// side or [`MAX_TEXT_PIXELS`] in total.
    pub fn text(text: &str, size_px: f32, rgba: [u8; 4], shadow: bool) -> Result<Mark, String> {
        if text.is_empty() {
            return Err("watermark text is empty".to_string());
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(format!(
                "watermark text is longer than {MAX_TEXT_CHARS} characters"
            ));
        }
        if !(MIN_TEXT_PX..=MAX_TEXT_PX).contains(&size_px) {
            return Err(format!(
                "watermark text size must be within {MIN_TEXT_PX}..={MAX_TEXT_PX} px"
            ));
        }
        let font = FontRef::try_from_slice(FONT_BYTES)
            .map_err(|e| format!("bundled font cannot be loaded: {e}"))?;
        let glyphs = layout_text(&font, text, PxScale::from(size_px));
        render_glyphs(&glyphs, rgba, shadow).map(|img| Mark { img })
    }

    /// Width of the mark in pixels.
    pub fn width(&self) -> u32 {
        self.img.width()
    }

    /// Height of the mark in pixels.
    pub fn height(&self) -> u32 {
        self.img.height()
    }

    /// True when the mark has no pixels (only possible via [`Mark::from_rgba`]).
    pub fn is_empty(&self) -> bool {
        self.img.width() == 0 || self.img.height() == 0
    }

    /// The mark's straight-alpha RGBA pixels.
    pub fn pixels(&self) -> &image::RgbaImage {
        &self.img
    }
}

fn too_large_message() -> String {
    format!("watermark image is larger than {MAX_MARK_SIDE}x{MAX_MARK_SIDE}")
}

/// Where the mark goes (imgproxy's watermark positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Position {
    /// `ce`: centred.
    #[default]
    Center,
    /// `no`: top edge, centred horizontally.
    North,
    /// `so`: bottom edge, centred horizontally.
    South,
    /// `ea`: right edge, centred vertically.
    East,
    /// `we`: left edge, centred vertically.
    West,
    /// `noea`: top-right corner.
    NorthEast,
    /// `nowe`: top-left corner.
    NorthWest,
    /// `soea`: bottom-right corner.
    SouthEast,
    /// `sowe`: bottom-left corner.
    SouthWest,
    /// `re`: tiled over the whole image
    Replicate,
}

impl Position {
    /// Every position, in declaration order.
    pub const ALL: [Position; 10] = [
        Position::Center,
        Position::North,
        Position::South,
        Position::East,
        Position::West,
        Position::NorthEast,
        Position::NorthWest,
        Position::SouthEast,
        Position::SouthWest,
        Position::Replicate,
    ];

    /// imgproxy names: ce no so ea we noea nowe soea sowe re
    ///
    /// Matching is exact (lower case, no surrounding spaces); anything else
    /// gives `None`.
    pub fn parse(s: &str) -> Option<Position> {
        Some(match s {
            "ce" => Position::Center,
            "no" => Position::North,
            "so" => Position::South,
            "ea" => Position::East,
            "we" => Position::West,
            "noea" => Position::NorthEast,
            "nowe" => Position::NorthWest,
            "soea" => Position::SouthEast,
            "sowe" => Position::SouthWest,
            "re" => Position::Replicate,
            _ => return None,
        })
    }

    /// The imgproxy name of this position (inverse of [`Position::parse`]).
    pub fn name(self) -> &'static str {
        match self {
            Position::Center => "ce",
            Position::North => "no",
            Position::South => "so",
            Position::East => "ea",
            Position::West => "we",
            Position::NorthEast => "noea",
            Position::NorthWest => "nowe",
            Position::SouthEast => "soea",
            Position::SouthWest => "sowe",
            Position::Replicate => "re",
        }
    }
}

/// How a mark is placed (imgproxy `wm:%opacity:%position:%x_offset:%y_offset:%scale`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// 0..=1 multiplies the mark's alpha.
    ///
    /// NaN and values ≤ 0 draw nothing; values > 1 act as 1.
    pub opacity: f32,
    /// Where the mark goes.
    pub position: Position,
    /// Offsets in output pixels. For edge/corner positions they move the mark inward from that edge (imgproxy: for `ea`, x = distance from the right edge; for `so`, y = from the bottom); for `ce` they shift right/down (may be negative). For `re` they are the spacing between tiles.
    pub x: i32,
    /// Vertical offset; see [`Placement::x`].
    pub y: i32,
    /// 0: the mark's own size. >0: the mark is resized (aspect kept, Lanczos3 or CatmullRom via image::imageops) to fit inside (canvas_w*scale, canvas_h*scale), as imgproxy does.
    ///
    /// Clamped to at most [`MAX_SCALE`]; NaN, infinite and negative values
    /// mean 0.
    pub scale: f32,
}

impl Default for Placement {
    /// imgproxy's defaults: opacity 1, centred, no offsets, no scaling.
    fn default() -> Self {
        Placement {
            opacity: 1.0,
            position: Position::Center,
            x: 0,
            y: 0,
            scale: 0.0,
        }
    }
}

/// Draws `mark` onto `canvas` (source-over alpha compositing, in sRGB values as stored, with the mark's alpha × opacity).
/// Keeps the canvas's pixel type when it is Rgb8/Rgba8/Luma8/LumaA8 (an opaque canvas stays opaque: an RGB canvas is not turned into RGBA); other types become Rgba8.
/// Parts of the mark outside the canvas are clipped. Opacity 0 or an empty mark returns the canvas unchanged.
///
/// A canvas with a zero side is also returned unchanged. The cost is
/// proportional to the number of canvas pixels covered by the mark (plus the
/// cost of resizing the mark when `scale > 0`).
pub fn apply(canvas: DynamicImage, mark: &Mark, p: &Placement) -> DynamicImage {
    let op = opacity_q(p.opacity);
    let (cw, ch) = (canvas.width(), canvas.height());
    if op == 0 || mark.is_empty() || cw == 0 || ch == 0 {
        return canvas;
    }
    let m = scaled_mark(&mark.img, cw, ch, p.scale);
    match canvas {
        DynamicImage::ImageRgb8(mut b) => {
            draw(&mut b, cw, ch, Layout::Rgb, &m, p, op);
            DynamicImage::ImageRgb8(b)
        }
        DynamicImage::ImageRgba8(mut b) => {
            draw(&mut b, cw, ch, Layout::Rgba, &m, p, op);
            DynamicImage::ImageRgba8(b)
        }
        DynamicImage::ImageLuma8(mut b) => {
            draw(&mut b, cw, ch, Layout::Luma, &m, p, op);
            DynamicImage::ImageLuma8(b)
        }
        DynamicImage::ImageLumaA8(mut b) => {
            draw(&mut b, cw, ch, Layout::LumaA, &m, p, op);
            DynamicImage::ImageLumaA8(b)
        }
        other => {
            let mut b = other.into_rgba8();
            draw(&mut b, cw, ch, Layout::Rgba, &m, p, op);
            DynamicImage::ImageRgba8(b)
        }
    }
}

/// Opacity as an integer in `0..=255` (NaN → 0).
fn opacity_q(opacity: f32) -> u32 {
    if opacity.is_nan() {
        return 0;
    }
    (opacity.clamp(0.0, 1.0) * 255.0).round() as u32
}

/// Size of the mark after applying `scale` against a `cw x ch` canvas.
fn scaled_size(mw: u32, mh: u32, cw: u32, ch: u32, scale: f32) -> (u32, u32) {
    if !(scale.is_finite() && scale > 0.0) || mw == 0 || mh == 0 {
        return (mw, mh);
    }
    let s = f64::from(scale.min(MAX_SCALE));
    let bw = (f64::from(cw) * s).round().max(1.0);
    let bh = (f64::from(ch) * s).round().max(1.0);
    let ratio = (bw / f64::from(mw)).min(bh / f64::from(mh));
    let nw = (f64::from(mw) * ratio).round().clamp(1.0, bw) as u32;
    let nh = (f64::from(mh) * ratio).round().clamp(1.0, bh) as u32;
    (nw, nh)
}

/// The mark resized for this canvas, borrowed when no resizing is needed.
fn scaled_mark(img: &RgbaImage, cw: u32, ch: u32, scale: f32) -> Cow<'_, RgbaImage> {
    let (mw, mh) = img.dimensions();
    let (nw, nh) = scaled_size(mw, mh, cw, ch, scale);
    if (nw, nh) == (mw, mh) {
        return Cow::Borrowed(img);
    }
    let mut pre = img.clone();
    for px in pre.pixels_mut() {
        let Rgba([r, g, b, a]) = *px;
        let pm = |c: u8| ((u32::from(c) * u32::from(a) + 127) / 255) as u8;
        *px = Rgba([pm(r), pm(g), pm(b), a]);
    }
    let filter = if nw < mw || nh < mh {
        FilterType::Lanczos3
    } else {
        FilterType::CatmullRom
    };
    let mut out = imageops::resize(&pre, nw, nh, filter);
    for px in out.pixels_mut() {
        let Rgba([r, g, b, a]) = *px;
        if a == 0 {
            *px = Rgba([0, 0, 0, 0]);
            continue;
        }
        let a32 = u32::from(a);
        let un = |c: u8| ((u32::from(c) * 255 + a32 / 2) / a32).min(255) as u8;
        *px = Rgba([un(r), un(g), un(b), a]);
    }
    Cow::Owned(out)
}

/// Channel layout of the canvas buffer being drawn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Luma,
    LumaA,
    Rgb,
    Rgba,
}

impl Layout {
    fn channels(self) -> usize {
        match self {
            Layout::Luma => 1,
            Layout::LumaA => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }
}

/// A canvas pixel buffer (rows packed, `channels` bytes per pixel).
struct Canvas<'a> {
    buf: &'a mut [u8],
    width: u32,
    height: u32,
    layout: Layout,
}

fn draw(
    buf: &mut [u8],
    width: u32,
    height: u32,
    layout: Layout,
    mark: &RgbaImage,
    p: &Placement,
    op: u32,
) {
    let mut cv = Canvas {
        buf,
        width,
        height,
        layout,
    };
    let (mw, mh) = mark.dimensions();
    if mw == 0 || mh == 0 {
        return;
    }
    if p.position == Position::Replicate {
        tile(&mut cv, mark, p.x, p.y, op);
    } else {
        let (left, top) = origin(width, height, mw, mh, p.position, p.x, p.y);
        draw_at(&mut cv, mark, left, top, op);
    }
}

/// Top-left corner of a `mw x mh` mark on a `cw x ch` canvas (see module docs).
fn origin(cw: u32, ch: u32, mw: u32, mh: u32, pos: Position, x: i32, y: i32) -> (i64, i64) {
    let (cw, ch, mw, mh) = (i64::from(cw), i64::from(ch), i64::from(mw), i64::from(mh));
    let (x, y) = (i64::from(x), i64::from(y));
    // ceil(d / 2) for any sign of d.
    let half = |d: i64| -((-d).div_euclid(2));
    let centre_x = half(cw - mw) + x;
    let centre_y = half(ch - mh) + y;
    let start_x = x;
    let start_y = y;
    let end_x = cw - mw - x;
    let end_y = ch - mh - y;
    match pos {
        Position::Center | Position::Replicate => (centre_x, centre_y),
        Position::North => (centre_x, start_y),
        Position::South => (centre_x, end_y),
        Position::East => (end_x, centre_y),
        Position::West => (start_x, centre_y),
        Position::NorthEast => (end_x, start_y),
        Position::NorthWest => (start_x, start_y),
        Position::SouthEast => (end_x, end_y),
        Position::SouthWest => (start_x, end_y),
    }
}

/// Tiles `mark` over the canvas from the top-left, with gaps `gx`, `gy`.
fn tile(cv: &mut Canvas<'_>, mark: &RgbaImage, gx: i32, gy: i32, op: u32) {
    let (cw, ch) = (u64::from(cv.width), u64::from(cv.height));
    let (mw, mh) = (u64::from(mark.width()), u64::from(mark.height()));
    if mw == 0 || mh == 0 {
        return;
    }
    let gap_x = u64::try_from(gx).unwrap_or(0).min(cw);
    let gap_y = u64::try_from(gy).unwrap_or(0).min(ch);
    let (px, py) = (mw + gap_x, mh + gap_y);
    let kx = if px < MIN_TILE_PERIOD {
        MIN_TILE_PERIOD.div_ceil(px)
    } else {
        1
    };
    let ky = if py < MIN_TILE_PERIOD {
        MIN_TILE_PERIOD.div_ceil(py)
    } else {
        1
    };
    let owned;
    let (tile_img, period_x, period_y) = if kx * ky > 1 {
        // Small period: pre-tile into a block at least 64 px per period.
        // All of these values are below 64 * 2, so the casts are lossless.
        let w = (kx - 1) * px + mw;
        let h = (ky - 1) * py + mh;
        let mut block = RgbaImage::new(w as u32, h as u32);
        for j in 0..ky {
            for i in 0..kx {
                imageops::replace(&mut block, mark, (i * px) as i64, (j * py) as i64);
            }
        }
        owned = block;
        (&owned, kx * px, ky * py)
    } else {
        (mark, px, py)
    };
    let mut y = 0u64;
    while y < ch {
        let mut x = 0u64;
        while x < cw {
            draw_at(cv, tile_img, x as i64, y as i64, op);
            x += period_x;
        }
        y += period_y;
    }
}

/// Composites `mark` with its top-left corner at (`left`, `top`), clipped.
fn draw_at(cv: &mut Canvas<'_>, mark: &RgbaImage, left: i64, top: i64, op: u32) {
    let (cw, ch) = (i64::from(cv.width), i64::from(cv.height));
    let (mw, mh) = (i64::from(mark.width()), i64::from(mark.height()));
    let x0 = left.max(0);
    let x1 = left.saturating_add(mw).min(cw);
    let y0 = top.max(0);
    let y1 = top.saturating_add(mh).min(ch);
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let n = cv.layout.channels();
    let span = (x1 - x0) as usize;
    let mraw = mark.as_raw();
    for cy in y0..y1 {
        let my = cy - top;
        let mstart = ((my * mw + (x0 - left)) as usize) * 4;
        let cstart = ((cy * cw + x0) as usize) * n;
        let mrow = mraw.get(mstart..mstart + span * 4);
        let crow = cv.buf.get_mut(cstart..cstart + span * n);
        if let (Some(mrow), Some(crow)) = (mrow, crow) {
            blend_row(crow, mrow, cv.layout, op);
        }
    }
}

/// `m * k + c * (FULL - k)`, rounded, with `k` in `0..=FULL`.
#[inline]
fn mix(m: u8, c: u8, k: u32) -> u8 {
    ((u32::from(m) * k + u32::from(c) * (FULL - k) + FULL / 2) / FULL) as u8
}

/// Rec. 709 luma of an sRGB triple, as `image`'s colour conversion computes it.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((2126 * u32::from(r) + 7152 * u32::from(g) + 722 * u32::from(b)) / 10000) as u8
}

/// Straight-alpha "over" of colour `m` with effective alpha `k` (in
/// `0..=FULL`) onto colour `c` with alpha `ca`, for 1..=3 colour channels.
#[inline]
fn over<const N: usize>(m: [u8; N], c: &mut [u8; N], ca: &mut u8, k: u32) {
    if k == FULL {
        *c = m;
        *ca = 255;
    } else if *ca == 255 {
        for (cc, mc) in c.iter_mut().zip(m) {
            *cc = mix(mc, *cc, k);
        }
    } else {
        let am = k as f32 / FULL as f32;
        let wc = f32::from(*ca) / 255.0 * (1.0 - am);
        let oa = am + wc;
        for (cc, mc) in c.iter_mut().zip(m) {
            *cc = ((f32::from(mc) * am + f32::from(*cc) * wc) / oa + 0.5) as u8;
        }
        *ca = (oa * 255.0 + 0.5) as u8;
    }
}

fn blend_row(c: &mut [u8], m: &[u8], layout: Layout, op: u32) {
    let mpx = m.chunks_exact(4);
    match layout {
        Layout::Rgb => {
            for (cp, mp) in c.chunks_exact_mut(3).zip(mpx) {
                if let ([cr, cg, cb], &[r, g, b, a]) = (cp, mp) {
                    // Branch-free: `mix` with k == 0 returns the canvas value.
                    let k = u32::from(a) * op;
                    *cr = mix(r, *cr, k);
                    *cg = mix(g, *cg, k);
                    *cb = mix(b, *cb, k);
                }
            }
        }
        Layout::Luma => {
            for (cp, mp) in c.iter_mut().zip(mpx) {
                if let &[r, g, b, a] = mp {
                    let k = u32::from(a) * op;
                    if k != 0 {
                        *cp = mix(luma(r, g, b), *cp, k);
                    }
                }
            }
        }
        Layout::Rgba => {
            for (cp, mp) in c.chunks_exact_mut(4).zip(mpx) {
                if let ([cr, cg, cb, ca], &[r, g, b, a]) = (cp, mp) {
                    let k = u32::from(a) * op;
                    if k != 0 {
                        let mut col = [*cr, *cg, *cb];
                        over([r, g, b], &mut col, ca, k);
                        [*cr, *cg, *cb] = col;
                    }
                }
            }
        }
        Layout::LumaA => {
            for (cp, mp) in c.chunks_exact_mut(2).zip(mpx) {
                if let ([cl, ca], &[r, g, b, a]) = (cp, mp) {
                    let k = u32::from(a) * op;
                    if k != 0 {
                        let mut col = [*cl];
                        over([luma(r, g, b)], &mut col, ca, k);
                        [*cl] = col;
                    }
                }
            }
        }
    }
}

/// Lays `text` out line by line; returns the visible glyph outlines.
fn layout_text(font: &FontRef<'_>, text: &str, scale: PxScale) -> Vec<OutlinedGlyph> {
    let sf = font.as_scaled(scale);
    let line_height = sf.height() + sf.line_gap();
    let mut out = Vec::new();
    for (line_no, line) in text.split('\n').enumerate() {
        let baseline = sf.ascent() + line_no as f32 * line_height;
        let mut caret = 0.0f32;
        let mut prev: Option<GlyphId> = None;
        for ch in line.chars() {
            let ch = match ch {
                '\t' => ' ',
                c if c.is_control() => continue,
                c => c,
            };
            let id = font.glyph_id(ch);
            if let Some(p) = prev {
                caret += sf.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, baseline));
            caret += sf.h_advance(id);
            prev = Some(id);
            if let Some(og) = font.outline_glyph(glyph) {
                out.push(og);
            }
        }
    }
    out
}

/// Rasterises laid-out glyphs into a tightly cropped RGBA mark.
fn render_glyphs(
    glyphs: &[OutlinedGlyph],
    rgba: [u8; 4],
    shadow: bool,
) -> Result<RgbaImage, String> {
    let mut min_x = f32::INFINITY;
    let mut min_y = f32::INFINITY;
    let mut max_x = f32::NEG_INFINITY;
    let mut max_y = f32::NEG_INFINITY;
    for g in glyphs {
        let b = g.px_bounds();
        min_x = min_x.min(b.min.x);
        min_y = min_y.min(b.min.y);
        max_x = max_x.max(b.max.x);
        max_y = max_y.max(b.max.y);
    }
    if glyphs.is_empty() || !(max_x > min_x && max_y > min_y) {
        return Err("watermark text has no visible characters".to_string());
    }
    let margin = f64::from(TEXT_MARGIN);
    let wf = f64::from(max_x - min_x).ceil() + 2.0 * margin;
    let hf = f64::from(max_y - min_y).ceil() + 2.0 * margin;
    let max_side = f64::from(MAX_TEXT_SIDE);
    if !(wf.is_finite() && hf.is_finite())
        || wf > max_side
        || hf > max_side
        || wf * hf > MAX_TEXT_PIXELS as f64
    {
        return Err(format!(
            "rendered watermark text would exceed {MAX_TEXT_SIDE}x{MAX_TEXT_SIDE} or {MAX_TEXT_PIXELS} pixels"
        ));
    }
    let (w, h) = (wf as u32, hf as u32);
    let (w64, h64) = (i64::from(w), i64::from(h));
    let mut cov = vec![0u8; w as usize * h as usize];
    for g in glyphs {
        let b = g.px_bounds();
        let ox = (b.min.x - min_x) as i64 + i64::from(TEXT_MARGIN);
        let oy = (b.min.y - min_y) as i64 + i64::from(TEXT_MARGIN);
        g.draw(|gx, gy, c| {
            let x = ox + i64::from(gx);
            let y = oy + i64::from(gy);
            if x < 0 || y < 0 || x >= w64 || y >= h64 {
                return;
            }
            if let Some(v) = cov.get_mut((y * w64 + x) as usize) {
                let add = (c.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
                *v = v.saturating_add(add);
            }
        });
    }
    let at = |x: i64, y: i64| -> u8 {
        if x < 0 || y < 0 || x >= w64 || y >= h64 {
            return 0;
        }
        cov.get((y * w64 + x) as usize).copied().unwrap_or(0)
    };
    let [r, g, b, a] = rgba;
    let ta = u32::from(a);
    let mut img = RgbaImage::new(w, h);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (x, y) = (i64::from(x), i64::from(y));
        let t = u32::from(at(x, y));
        if !shadow {
            *px = Rgba([r, g, b, ((t * ta + 127) / 255) as u8]);
            continue;
        }
        let mut o = t;
        for dy in -1..=1 {
            for dx in -1..=1 {
                o = o.max(u32::from(at(x + dx, y + dy)));
            }
        }
        if o == 0 {
            *px = Rgba([0, 0, 0, 0]);
            continue;
        }
        // Text (coverage t) over a black outline (coverage o >= t).
        let col = |c: u8| ((u32::from(c) * t + o / 2) / o) as u8;
        *px = Rgba([col(r), col(g), col(b), ((o * ta + 127) / 255) as u8]);
    }
    Ok(img)
}

#[cfg(test)]
mod tests;
