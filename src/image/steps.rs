//! The pixel steps besides a resize (imgproxy's processing options: trim, rotate, flip, crop,
//! zoom, minimum sizes, padding, pixelate, adjust, watermark) and the output controls
//! (`max_bytes`, per-format quality, `keep_copyright`), as `Copy` values that URL parsing
//! fills, the variant key names, and [`super::pipeline`] runs in this order:
//!
//! decode (EXIF orientation) → trim → rotate → flip → crop → resize (zoom, minimum size) →
//! padding → blur → sharpen → pixelate → adjust → watermark → background → encode
//! (per-format quality, `max_bytes`) → copyright.
//!
//! Crops and sizes name the image as it stands when the step runs: a crop after `rotate:90`
//! names the turned image (as imgproxy), and the resize box names the cropped one. The upload
//! service's exact region ([`Crop::Region`]) names the source's pixels, so it is cut before
//! the turn.

pub use super::effects::Trim;
use super::fit::Gravity;
use super::format::OutputFormat;
pub use super::watermark::{Placement, Position};

/// A crop side: the whole side, pixels, or a fraction of the side (imgproxy: below 1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Len {
    /// The image's whole side (imgproxy's `0`).
    #[default]
    Full,
    /// This many pixels (clipped to the side).
    Px(u32),
    /// This fraction of the side, in (0, 1).
    Part(f32),
}

impl Len {
    /// The length on a side of `side` pixels: at least 1, at most `side`.
    pub fn on(self, side: u32) -> u32 {
        let v = match self {
            Len::Full => side,
            Len::Px(p) => p,
            Len::Part(f) => (f64::from(side) * f64::from(f)).round() as u32,
        };
        v.clamp(1, side.max(1))
    }

    /// imgproxy's notation: `0`, pixels, or a fraction below 1.
    pub fn name(self) -> String {
        match self {
            Len::Full => "0".into(),
            Len::Px(p) => p.to_string(),
            Len::Part(f) => f.to_string(),
        }
    }

    /// Parses imgproxy's notation (empty is `0`, the whole side).
    pub fn parse(v: &str) -> Option<Len> {
        if v.is_empty() || v == "0" {
            return Some(Len::Full);
        }
        if let Ok(p) = v.parse::<u32>() {
            return Some(Len::Px(p));
        }
        let f = v.parse::<f32>().ok()?;
        (f.is_finite() && f > 0.0 && f < 1.0).then_some(Len::Part(f))
    }
}

/// Which region a crop keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Crop {
    /// `width` × `height` placed by `gravity` (`None`: the request's gravity), as imgproxy's
    /// `crop:%w:%h:%gravity`.
    Sized {
        /// Width of the region.
        width: Len,
        /// Height of the region.
        height: Len,
        /// Where the region sits.
        gravity: Option<Gravity>,
        /// Gravity offsets in pixels of the image being cropped (inward from the edges the
        /// gravity names).
        offset: (i32, i32),
    },
    /// An exact region `[x, y, width, height]` in pixels, clipped to the image (the upload
    /// service's `crop`); an origin outside the image is refused (`crop_outside`).
    Region([u32; 4]),
}

/// Mirroring (after the turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flip {
    /// Left and right swap.
    pub horizontal: bool,
    /// Top and bottom swap.
    pub vertical: bool,
}

/// imgproxy's `adjust`: brightness added (-255..=255), contrast and saturation multipliers
/// (1 = unchanged).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjust {
    /// Added to each channel.
    pub brightness: i16,
    /// Multiplier of the distance from mid-grey.
    pub contrast: f32,
    /// Multiplier of the distance from the pixel's grey.
    pub saturation: f32,
}

impl Default for Adjust {
    fn default() -> Self {
        Adjust {
            brightness: 0,
            contrast: 1.0,
            saturation: 1.0,
        }
    }
}

/// Space added around the image, in output pixels (the DPR applied), filled with the
/// background colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding {
    /// Above.
    pub top: u32,
    /// Right.
    pub right: u32,
    /// Below.
    pub bottom: u32,
    /// Left.
    pub left: u32,
}

/// The name of a configured watermark (`images.watermarks`): at most 16 bytes of
/// `[a-z0-9_-]`, held inline so steps stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkName {
    bytes: [u8; 16],
    len: u8,
}

impl MarkName {
    /// The mark `wm` uses when the URL names none.
    pub const DEFAULT: MarkName = MarkName {
        bytes: *b"default\0\0\0\0\0\0\0\0\0",
        len: 7,
    };

    /// A valid name, or `None`.
    pub fn new(name: &str) -> Option<MarkName> {
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
        if name.is_empty() || name.len() > 16 || !name.bytes().all(ok) {
            return None;
        }
        let mut bytes = [0; 16];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(MarkName {
            bytes,
            len: name.len() as u8,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for MarkName {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A watermark to draw: which configured mark, and where.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatermarkUse {
    /// The mark.
    pub mark: MarkName,
    /// Opacity, position, offsets and scale.
    pub placement: Placement,
}

/// Per-format qualities a URL names (`format_quality`), 0 for unset, indexed by
/// [`FormatQualities::slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatQualities([u8; 4]);

impl FormatQualities {
    /// The formats that take a quality, in key order.
    pub const FORMATS: [OutputFormat; 4] = [
        OutputFormat::Avif,
        OutputFormat::Webp,
        OutputFormat::Jpeg,
        OutputFormat::Jxl,
    ];

    fn slot(f: OutputFormat) -> Option<usize> {
        Self::FORMATS.iter().position(|x| *x == f)
    }

    /// Sets `f`'s quality; `false` when `f` takes none (PNG, GIF).
    pub fn set(&mut self, f: OutputFormat, q: u8) -> bool {
        match Self::slot(f) {
            Some(i) => {
                self.0[i] = q;
                true
            }
            None => false,
        }
    }

    /// `f`'s quality, if named.
    pub fn get(&self, f: OutputFormat) -> Option<u8> {
        Self::slot(f).map(|i| self.0[i]).filter(|q| *q > 0)
    }

    /// The named ones.
    pub fn iter(&self) -> impl Iterator<Item = (OutputFormat, u8)> + '_ {
        Self::FORMATS
            .iter()
            .filter_map(|f| self.get(*f).map(|q| (*f, q)))
    }
}

/// Source limits a URL may tighten (imgproxy's security options), never loosen: the
/// configured limits still apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceLimits {
    /// Most pixels of the source (`max_src_resolution`, megapixels).
    pub max_pixels: Option<u64>,
    /// Most bytes of the source (`max_src_file_size`).
    pub max_bytes: Option<u64>,
    /// Most frames of an animation (`max_animation_frames`).
    pub max_frames: Option<u32>,
    /// Most pixels of each frame of an animation (`max_animation_frame_resolution`).
    pub max_frame_pixels: Option<u64>,
}

/// Source formats sent as they are (`skip_processing`; `raw` is all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkipFormats(u8);

impl SkipFormats {
    /// Every format.
    pub const ALL: SkipFormats = SkipFormats(u8::MAX);

    fn bit(f: super::format::SourceFormat) -> u8 {
        use super::format::SourceFormat as S;
        match f {
            S::Jpeg => 1,
            S::Png => 2,
            S::Gif => 4,
            S::Webp => 8,
            S::Avif => 16,
            S::Heic => 32,
        }
    }

    /// Adds `f`.
    pub fn add(&mut self, f: super::format::SourceFormat) {
        self.0 |= Self::bit(f);
    }

    /// Whether `f` is skipped.
    pub fn contains(self, f: super::format::SourceFormat) -> bool {
        self.0 & Self::bit(f) != 0
    }

    /// The formats, by name, in a fixed order (`all` for every one).
    pub fn names(self) -> Vec<&'static str> {
        use super::format::SourceFormat as S;
        if self == Self::ALL {
            return vec!["all"];
        }
        [S::Jpeg, S::Png, S::Gif, S::Webp, S::Avif, S::Heic]
            .into_iter()
            .filter(|f| self.contains(*f))
            .map(|f| f.name())
            .collect()
    }
}

/// Every step beyond the resize. The default does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Steps {
    /// Remove a uniform border first.
    pub trim: Option<Trim>,
    /// Clockwise quarter turns: 0, 90, 180 or 270.
    pub rotate: u16,
    /// Mirroring, after the turn.
    pub flip: Flip,
    /// The region kept before the resize.
    pub crop: Option<Crop>,
    /// Size multipliers (x, y) of the resize box, or of the image when there is no box.
    pub zoom: Option<(f32, f32)>,
    /// The output is at least this wide and tall (scaled up within `enlarge`).
    pub min_size: (Option<u32>, Option<u32>),
    /// Space around the result.
    pub padding: Option<Padding>,
    /// Block size of a mosaic.
    pub pixelate: Option<u32>,
    /// Brightness, contrast, saturation.
    pub adjust: Option<Adjust>,
    /// A watermark on the result.
    pub watermark: Option<WatermarkUse>,
    /// The encoded output must fit in this many bytes (quality, then size, reduced).
    pub max_bytes: Option<u32>,
    /// Per-format qualities, used when the URL names no plain `quality` (which wins, as in
    /// imgproxy).
    pub format_quality: FormatQualities,
    /// Carry the source's EXIF Copyright and Artist into the output.
    pub keep_copyright: bool,
    /// Pad the result to the box's aspect ratio, placed by this gravity
    /// (`extend_aspect_ratio`).
    pub extend_aspect: Option<Gravity>,
    /// Neither output side exceeds this (`max_result_dimension`).
    pub max_result: Option<u32>,
    /// Tighter source limits.
    pub source_limits: SourceLimits,
    /// Source formats sent as they are.
    pub skip: SkipFormats,
}

impl Steps {
    /// Whether a step changes the pixels (then the original is no answer).
    pub fn changes_pixels(&self) -> bool {
        self.trim.is_some()
            || self.rotate != 0
            || self.flip != Flip::default()
            || self.crop.is_some()
            || self.zoom.is_some()
            || self.min_size != (None, None)
            || self.padding.is_some()
            || self.pixelate.is_some()
            || self.adjust.is_some()
            || self.watermark.is_some()
            || self.extend_aspect.is_some()
    }

    /// Whether a step besides the watermark changes the pixels (an animation is transformed
    /// frame by frame only with a resize and a watermark).
    pub fn changes_more_than_the_watermark(&self) -> bool {
        Steps {
            watermark: None,
            ..*self
        }
        .changes_pixels()
    }

    /// Whether the steps before the resize leave the decoded image's size as it is, or only
    /// turn it (then a JPEG may be decoded reduced: the resize box still names it).
    pub fn keeps_source_region(&self) -> bool {
        self.trim.is_none() && self.crop.is_none()
    }

    /// Whether the turn swaps width and height.
    pub fn swaps_sides(&self) -> bool {
        matches!(self.rotate, 90 | 270)
    }
}

/// The resize box after `zoom` and the minimum sizes, for an image of `width`×`height` as it
/// stands before the resize; `None`: no resize.
pub fn resize_spec(
    resize: Option<super::resize::ResizeSpec>,
    s: &Steps,
    width: u32,
    height: u32,
) -> Option<super::resize::ResizeSpec> {
    use super::fit::Fit;
    let mut spec = resize?;
    let mul = |v: u32, k: f32| ((f64::from(v) * f64::from(k)).round() as u32).max(1);
    if let Some((zx, zy)) = s.zoom {
        match (spec.width, spec.height) {
            (None, None) => {
                spec.width = Some(mul(width, zx));
                spec.height = Some(mul(height, zy));
                spec.fit = Fit::Fill;
            }
            (w, h) => {
                spec.width = w.map(|v| mul(v, zx));
                spec.height = h.map(|v| mul(v, zy));
            }
        }
    }
    if let (None, None) = s.min_size {
        return Some(spec);
    }
    let (w, h) = super::resize::geometry(width, height, &spec).output();
    let k = [(s.min_size.0, w), (s.min_size.1, h)]
        .into_iter()
        .filter_map(|(min, side)| Some(f64::from(min?) / f64::from(side.max(1))))
        .fold(1.0_f64, f64::max);
    if k > 1.0 {
        // The whole box grows, so a crop keeps its region and a fit its aspect.
        let up = |v: u32| (f64::from(v) * k).ceil() as u32;
        spec.width = Some(up(spec.width.unwrap_or(w).max(1)).max(up(w)));
        spec.height = Some(up(spec.height.unwrap_or(h).max(1)).max(up(h)));
        if spec.fit == Fit::Outside {
            spec.fit = Fit::Inside;
        }
    }
    Some(spec)
}

/// Trim, turn, flip and crop: the steps before the resize. `gravity` places a crop that names
/// none.
pub fn before_resize(
    mut img: image::DynamicImage,
    s: &Steps,
    gravity: Gravity,
) -> Result<image::DynamicImage, super::Reason> {
    if let Some(t) = &s.trim {
        if let Some([x, y, w, h]) = super::effects::trim_box(&img, t) {
            img = img.crop_imm(x, y, w, h);
        }
    }
    // An exact region names the source's pixels: it is cut before the turn.
    if let Some(c @ Crop::Region(_)) = s.crop {
        img = crop(img, c, gravity)?;
    }
    img = match s.rotate {
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => img,
    };
    if s.flip.horizontal {
        img = img.fliph();
    }
    if s.flip.vertical {
        img = img.flipv();
    }
    match s.crop {
        Some(c @ Crop::Sized { .. }) => crop(img, c, gravity),
        _ => Ok(img),
    }
}

/// The region a crop keeps, `[x, y, width, height]` within a `iw`×`ih` image.
fn crop(
    img: image::DynamicImage,
    c: Crop,
    gravity: Gravity,
) -> Result<image::DynamicImage, super::Reason> {
    use super::resize::{position_offset, smart_position};
    let (iw, ih) = (img.width(), img.height());
    let [x, y, w, h] = match c {
        Crop::Region([x, y, w, h]) => {
            if x >= iw || y >= ih {
                return Err(super::Reason::CropOutside);
            }
            [x, y, w.min(iw - x).max(1), h.min(ih - y).max(1)]
        }
        Crop::Sized {
            width,
            height,
            gravity: g,
            offset,
        } => {
            let (w, h) = (width.on(iw), height.on(ih));
            let (fw, fh) = (f64::from(w), f64::from(h));
            let off = (f64::from(offset.0), f64::from(offset.1));
            let (x, y) = match g.unwrap_or(gravity) {
                Gravity::Smart => smart_position(&img, fw, fh),
                other => position_offset(other, (f64::from(iw), f64::from(ih)), (fw, fh), off),
            };
            let x = (x.round().max(0.0) as u32).min(iw - w);
            let y = (y.round().max(0.0) as u32).min(ih - h);
            [x, y, w, h]
        }
    };
    if (w, h) == (iw, ih) {
        return Ok(img);
    }
    Ok(img.crop_imm(x, y, w, h))
}

/// The image on a canvas `p` larger, filled with `bg`; refused past the source limits.
pub fn pad(
    img: image::DynamicImage,
    p: Padding,
    bg: [u8; 4],
    limits: super::probe::HeaderLimits,
) -> Result<image::DynamicImage, super::Reason> {
    let w = u64::from(img.width()) + u64::from(p.left) + u64::from(p.right);
    let h = u64::from(img.height()) + u64::from(p.top) + u64::from(p.bottom);
    if w > u64::from(limits.max_dimension)
        || h > u64::from(limits.max_dimension)
        || w * h > limits.max_pixels
    {
        return Err(super::Reason::TooManyPixels);
    }
    Ok(super::resize::canvas(
        img,
        w as u32,
        h as u32,
        (i64::from(p.left), i64::from(p.top)),
        bg,
    ))
}

/// The image padded to the aspect ratio `w`:`h` (never cut), placed by `gravity` on `bg`;
/// refused past the source limits (a 1×65535 box would ask for a canvas 65535 times taller).
pub fn extend_to_aspect(
    img: image::DynamicImage,
    (w, h): (u32, u32),
    gravity: Gravity,
    bg: [u8; 4],
    limits: super::probe::HeaderLimits,
) -> Result<image::DynamicImage, super::Reason> {
    let (iw, ih) = (img.width(), img.height());
    let want = f64::from(w.max(1)) / f64::from(h.max(1));
    let (cw, ch) = if f64::from(iw) / f64::from(ih.max(1)) > want {
        (f64::from(iw), (f64::from(iw) / want).round())
    } else {
        ((f64::from(ih) * want).round(), f64::from(ih))
    };
    let side = f64::from(limits.max_dimension);
    if cw > side || ch > side || cw * ch > limits.max_pixels as f64 {
        return Err(super::Reason::TooManyPixels);
    }
    let (cw, ch) = ((cw as u32).max(iw), (ch as u32).max(ih));
    if (cw, ch) == (iw, ih) {
        return Ok(img);
    }
    let g = match gravity {
        Gravity::Smart | Gravity::Focus(..) => Gravity::Center,
        g => g,
    };
    let (x, y) = super::resize::position(
        g,
        f64::from(cw),
        f64::from(ch),
        f64::from(iw),
        f64::from(ih),
    );
    Ok(super::resize::canvas(
        img,
        cw,
        ch,
        (x.round() as i64, y.round() as i64),
        bg,
    ))
}

/// Pixelate, then brightness, contrast and saturation.
pub fn effects(mut img: image::DynamicImage, s: &Steps) -> image::DynamicImage {
    if let Some(size) = s.pixelate {
        img = super::effects::pixelate(img, size);
    }
    if let Some(a) = s.adjust {
        img = super::effects::adjust(img, i32::from(a.brightness), a.contrast, a.saturation);
    }
    img
}

/// Parses a colour: `RRGGBB`, `RRGGBBAA` (an optional `#` first) or `transparent`.
pub fn parse_color(v: &str) -> Option<[u8; 4]> {
    if v == "transparent" {
        return Some([0, 0, 0, 0]);
    }
    let hex = v.strip_prefix('#').unwrap_or(v);
    if !matches!(hex.len(), 6 | 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("x"), 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?, byte(6).unwrap_or(255)])
}
