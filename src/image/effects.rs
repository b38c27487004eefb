//! Pixel effects with imgproxy semantics, plus the pixel summary behind `/info`.
//!
//! * [`trim_box`] — imgproxy's `trim` option: which region to keep after
//!   removing a uniform border.
//! * [`pixelate`] — imgproxy's `pixelate` option: block means.
//! * [`adjust`] — imgproxy's `adjust` option: brightness, contrast, saturation.
//! * [`summarize`] — average / dominant colour, BlurHash and ThumbHash of a
//!   small thumbnail.
//!
//! Nothing here panics, whatever the image (any [`DynamicImage`] variant, any
//! size including 0×0, any alpha) and whatever the numbers (NaN, infinities,
//! negative or huge values are sanitised as documented on each function).

use std::borrow::Cow;

use base64::Engine as _;
use image::{DynamicImage, RgbaImage};

/// Longest side accepted by [`summarize`] before it downscales (ThumbHash's limit).
const SUMMARY_MAX_SIDE: u32 = 100;

/// Upper bound applied to the `contrast` and `saturation` multipliers of [`adjust`]
/// (keeps `0 * inf` style NaNs out of the arithmetic; any value this large already
/// saturates every channel).
const MAX_MULTIPLIER: f32 = 10_000.0;

// ---------------------------------------------------------------------------
// Sample abstraction (u8 / u16 / f32 buffers)
// ---------------------------------------------------------------------------

/// A channel sample type of the `image` crate, seen as a float.
trait Sample: Copy {
    /// The value of a fully saturated channel (255, 65535 or 1.0).
    const MAX: f32;
    /// The sample as a float on its own scale (0..=`MAX`).
    fn to_f32(self) -> f32;
    /// Back from a float on the sample's own scale (rounded and clamped for integers).
    fn from_f32(v: f32) -> Self;
}

impl Sample for u8 {
    const MAX: f32 = 255.0;
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
    fn from_f32(v: f32) -> Self {
        // `as` saturates and maps NaN to 0.
        v.round().clamp(0.0, 255.0) as u8
    }
}

impl Sample for u16 {
    const MAX: f32 = 65535.0;
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
    fn from_f32(v: f32) -> Self {
        v.round().clamp(0.0, 65535.0) as u16
    }
}

impl Sample for f32 {
    const MAX: f32 = 1.0;
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

/// Runs `$body` on the pixel buffer of every `DynamicImage` variant in place and
/// rebuilds the same variant. Inside the body `$buf` is the `ImageBuffer`, `$ch` the
/// channel count and `$alpha` whether the last channel is alpha. Unknown future
/// variants are converted to `Rgba32F`.
macro_rules! map_samples {
    ($img:expr, |$buf:ident, $ch:ident, $alpha:ident| $body:block) => {
        match $img {
            DynamicImage::ImageLuma8(mut $buf) => {
                let ($ch, $alpha) = (1usize, false);
                $body
                DynamicImage::ImageLuma8($buf)
            }
            DynamicImage::ImageLumaA8(mut $buf) => {
                let ($ch, $alpha) = (2usize, true);
                $body
                DynamicImage::ImageLumaA8($buf)
            }
            DynamicImage::ImageRgb8(mut $buf) => {
                let ($ch, $alpha) = (3usize, false);
                $body
                DynamicImage::ImageRgb8($buf)
            }
            DynamicImage::ImageRgba8(mut $buf) => {
                let ($ch, $alpha) = (4usize, true);
                $body
                DynamicImage::ImageRgba8($buf)
            }
            DynamicImage::ImageLuma16(mut $buf) => {
                let ($ch, $alpha) = (1usize, false);
                $body
                DynamicImage::ImageLuma16($buf)
            }
            DynamicImage::ImageLumaA16(mut $buf) => {
                let ($ch, $alpha) = (2usize, true);
                $body
                DynamicImage::ImageLumaA16($buf)
            }
            DynamicImage::ImageRgb16(mut $buf) => {
                let ($ch, $alpha) = (3usize, false);
                $body
                DynamicImage::ImageRgb16($buf)
            }
            DynamicImage::ImageRgba16(mut $buf) => {
                let ($ch, $alpha) = (4usize, true);
                $body
                DynamicImage::ImageRgba16($buf)
            }
            DynamicImage::ImageRgb32F(mut $buf) => {
                let ($ch, $alpha) = (3usize, false);
                $body
                DynamicImage::ImageRgb32F($buf)
            }
            DynamicImage::ImageRgba32F(mut $buf) => {
                let ($ch, $alpha) = (4usize, true);
                $body
                DynamicImage::ImageRgba32F($buf)
            }
            other => {
                let mut $buf = other.to_rgba32f();
                let ($ch, $alpha) = (4usize, true);
                $body
                DynamicImage::ImageRgba32F($buf)
            }
        }
    };
}

/// The image as 8-bit RGBA, borrowed when it already is.
fn rgba8_view(img: &DynamicImage) -> Cow<'_, RgbaImage> {
    match img {
        DynamicImage::ImageRgba8(buf) => Cow::Borrowed(buf),
        other => Cow::Owned(other.to_rgba8()),
    }
}

// ---------------------------------------------------------------------------
// trim
// ---------------------------------------------------------------------------

/// imgproxy's `trim:%threshold:%color:%equal_hor:%equal_ver`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Trim {
    /// Largest per-channel difference (0..255 scale) from the background colour that
    /// still counts as background. NaN is treated as 0; negative values make every
    /// pixel foreground (nothing is trimmed); +inf makes every pixel background
    /// (nothing is trimmed either, as the whole image would go).
    pub threshold: f32,
    /// Background colour; `None` takes it from the top-left pixel.
    pub color: Option<[u8; 3]>,
    /// Make the left and right cuts equal (both become the smaller one).
    pub equal_hor: bool,
    /// Make the top and bottom cuts equal (both become the smaller one).
    pub equal_ver: bool,
}

/// The region to keep, [x, y, w, h], after removing the border whose pixels differ from the background colour by at most `threshold` (max per-channel absolute difference on 0..255 values; alpha: a fully transparent pixel counts as background when the background is taken from a transparent top-left pixel). Background = `color`, or the top-left pixel when None. equal_hor: the left and right cuts are made equal (the smaller of the two); equal_ver likewise for top/bottom. None when nothing would be removed or when the whole image is background (imgproxy then leaves the image as it is).
///
/// As in imgproxy, images with alpha are first flattened onto magenta
/// (255, 0, 255): a fully transparent pixel therefore matches a transparent
/// top-left pixel, and semi-transparent pixels are compared by their blend
/// with magenta. Any pixel type is accepted (converted to 8-bit RGBA for the
/// comparison).
pub fn trim_box(img: &image::DynamicImage, t: &Trim) -> Option<[u32; 4]> {
    let rgba = rgba8_view(img);
    let (w, h) = rgba.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let threshold = if t.threshold.is_nan() {
        0.0
    } else {
        t.threshold
    };

    let bg: [f32; 3] = match t.color {
        Some([r, g, b]) => [f32::from(r), f32::from(g), f32::from(b)],
        None => flatten_on_magenta(rgba.as_raw().get(..4)?),
    };
    let is_foreground = |px: &[u8]| -> bool {
        flatten_on_magenta(px)
            .iter()
            .zip(bg.iter())
            .any(|(v, b)| (v - b).abs() > threshold)
    };

    // Bounding box of the foreground.
    let row_len = (w as usize).checked_mul(4)?;
    let mut top: Option<usize> = None;
    let mut bottom = 0usize;
    let mut left = usize::MAX;
    let mut right = 0usize;
    for (y, row) in rgba.as_raw().chunks_exact(row_len).enumerate() {
        let Some(first) = row.chunks_exact(4).position(&is_foreground) else {
            continue;
        };
        // `first` is foreground, so searching from the right always finds something.
        let last = row
            .chunks_exact(4)
            .rposition(&is_foreground)
            .unwrap_or(first);
        top.get_or_insert(y);
        bottom = y;
        left = left.min(first);
        right = right.max(last);
    }
    let top = top?; // whole image is background

    let (w, h) = (w as usize, h as usize);
    let mut cut_left = left;
    let mut cut_right = w.saturating_sub(right.saturating_add(1));
    let mut cut_top = top;
    let mut cut_bottom = h.saturating_sub(bottom.saturating_add(1));
    if t.equal_hor {
        let m = cut_left.min(cut_right);
        cut_left = m;
        cut_right = m;
    }
    if t.equal_ver {
        let m = cut_top.min(cut_bottom);
        cut_top = m;
        cut_bottom = m;
    }
    if cut_left == 0 && cut_right == 0 && cut_top == 0 && cut_bottom == 0 {
        return None;
    }
    let out_w = w.saturating_sub(cut_left).saturating_sub(cut_right);
    let out_h = h.saturating_sub(cut_top).saturating_sub(cut_bottom);
    if out_w == 0 || out_h == 0 {
        return None;
    }
    Some([
        u32::try_from(cut_left).ok()?,
        u32::try_from(cut_top).ok()?,
        u32::try_from(out_w).ok()?,
        u32::try_from(out_h).ok()?,
    ])
}

/// RGB of an 8-bit RGBA pixel flattened onto magenta, on the 0..255 scale.
fn flatten_on_magenta(px: &[u8]) -> [f32; 3] {
    const MAGENTA: [f32; 3] = [255.0, 0.0, 255.0];
    let a = px.get(3).map_or(1.0, |&a| f32::from(a) / 255.0);
    let mut out = MAGENTA;
    for (o, &c) in out.iter_mut().zip(px.iter()) {
        *o = f32::from(c) * a + *o * (1.0 - a);
    }
    out
}

// ---------------------------------------------------------------------------
// pixelate
// ---------------------------------------------------------------------------

/// imgproxy `pixelate:%size`: blocks of size×size pixels (aligned at the top-left) each filled with its mean colour (alpha too). size 0 or 1: unchanged. Keeps the pixel type for 8-bit types.
///
/// Details, following imgproxy:
/// * `size` is capped at the image's shorter side (imgproxy does
///   `min(pixelate, min(width, height))`).
/// * Partial blocks at the right/bottom edges are filled with the mean of
///   their own pixels.
/// * The colour mean is alpha-weighted (imgproxy premultiplies before
///   pixelating), so fully transparent pixels do not tint a block; a block
///   with no opacity at all gets the plain mean. The alpha value is the plain
///   mean of the alphas.
/// * 16-bit and float images keep their type as well; an unknown future
///   variant comes back as `Rgba32F`.
pub fn pixelate(img: image::DynamicImage, size: u32) -> image::DynamicImage {
    let size = size.min(img.width()).min(img.height());
    if size < 2 {
        return img;
    }
    let size = size as usize;
    map_samples!(img, |buf, ch, alpha| {
        let width = buf.width() as usize;
        pixelate_raw(&mut buf, width, ch, alpha, size);
    })
}

/// Per-block accumulator for [`pixelate_raw`].
#[derive(Clone, Copy, Default)]
struct BlockAcc {
    /// Plain sums per channel.
    sum: [f64; 4],
    /// Sums of `value * alpha` per channel (alpha normalised to 0..1).
    sum_weighted: [f64; 4],
    /// Sum of normalised alpha.
    alpha: f64,
    /// Pixel count.
    n: f64,
}

impl BlockAcc {
    fn add<S: Sample>(&mut self, px: &[S], has_alpha: bool) {
        let a = if has_alpha {
            px.last()
                .map_or(1.0, |a| f64::from(a.to_f32()) / f64::from(S::MAX))
        } else {
            1.0
        };
        for ((s, sw), v) in self
            .sum
            .iter_mut()
            .zip(self.sum_weighted.iter_mut())
            .zip(px.iter())
        {
            let v = f64::from(v.to_f32());
            *s += v;
            *sw += v * a;
        }
        self.alpha += a;
        self.n += 1.0;
    }

    fn mean(&self, channels: usize, has_alpha: bool) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        if self.n <= 0.0 {
            return out;
        }
        let weighted = has_alpha && self.alpha.is_finite() && self.alpha > 0.0;
        let alpha_idx = if has_alpha {
            channels.checked_sub(1)
        } else {
            None
        };
        for (i, ((o, s), sw)) in out
            .iter_mut()
            .zip(self.sum.iter())
            .zip(self.sum_weighted.iter())
            .enumerate()
        {
            let v = if weighted && Some(i) != alpha_idx {
                sw / self.alpha
            } else {
                s / self.n
            };
            *o = v as f32;
        }
        out
    }
}

/// Pixelates a raw interleaved buffer in place.
fn pixelate_raw<S: Sample>(
    buf: &mut [S],
    width: usize,
    channels: usize,
    has_alpha: bool,
    size: usize,
) {
    if width == 0 || channels == 0 || size < 2 {
        return;
    }
    let row_len = width.saturating_mul(channels);
    let block_len = size.saturating_mul(channels);
    let mut acc = vec![BlockAcc::default(); width.div_ceil(size)];
    let mut means = vec![[0.0f32; 4]; acc.len()];
    for band in buf.chunks_mut(row_len.saturating_mul(size)) {
        acc.iter_mut().for_each(|a| *a = BlockAcc::default());
        for row in band.chunks_exact(row_len) {
            for (a, seg) in acc.iter_mut().zip(row.chunks(block_len)) {
                for px in seg.chunks_exact(channels) {
                    a.add(px, has_alpha);
                }
            }
        }
        for (m, a) in means.iter_mut().zip(acc.iter()) {
            *m = a.mean(channels, has_alpha);
        }
        for row in band.chunks_exact_mut(row_len) {
            for (m, seg) in means.iter().zip(row.chunks_mut(block_len)) {
                for px in seg.chunks_exact_mut(channels) {
                    for (d, v) in px.iter_mut().zip(m.iter()) {
                        *d = S::from_f32(*v);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// adjust
// ---------------------------------------------------------------------------

/// imgproxy `adjust:%brightness:%contrast:%saturation`: brightness -255..=255 added to each RGB channel; contrast a multiplier around 128 (v' = (v-128)*contrast+128; 1 = unchanged); saturation a multiplier of the distance from the pixel's luma (Rec.601 weights; 1 = unchanged, 0 = grey). Applied in that order, clamped to 0..255, alpha untouched. Identity values return the image untouched (no copy). Keeps Rgb8/Rgba8/Luma8/LumaA8 types (saturation does nothing to luma images).
///
/// Details:
/// * `brightness` outside -255..=255 is clamped to it.
/// * NaN `contrast`/`saturation` mean 1 (unchanged); negative values are
///   treated as 0 and values above 10000 (including +inf) as 10000.
/// * Each step clamps to 0..255 before the next; the result is rounded once
///   at the end.
/// * 16-bit and float images keep their type too; their samples are scaled to
///   the 0..255 range for the arithmetic and back. An unknown future variant
///   comes back as `Rgba32F`.
pub fn adjust(
    img: image::DynamicImage,
    brightness: i32,
    contrast: f32,
    saturation: f32,
) -> image::DynamicImage {
    let params = AdjustParams::new(brightness, contrast, saturation);
    let is_luma = matches!(
        img.color(),
        image::ColorType::L8
            | image::ColorType::La8
            | image::ColorType::L16
            | image::ColorType::La16
    );
    if params.brightness == 0.0 && params.contrast == 1.0 && (params.saturation == 1.0 || is_luma) {
        return img;
    }
    map_samples!(img, |buf, ch, alpha| {
        let colour = if alpha { ch.saturating_sub(1) } else { ch };
        adjust_raw(&mut buf, ch, colour, &params);
    })
}

/// Sanitised parameters of [`adjust`].
struct AdjustParams {
    brightness: f32,
    contrast: f32,
    saturation: f32,
}

impl AdjustParams {
    fn new(brightness: i32, contrast: f32, saturation: f32) -> Self {
        let multiplier = |m: f32| {
            if m.is_nan() {
                1.0
            } else {
                m.clamp(0.0, MAX_MULTIPLIER)
            }
        };
        Self {
            brightness: brightness.clamp(-255, 255) as f32,
            contrast: multiplier(contrast),
            saturation: multiplier(saturation),
        }
    }
}

/// Applies [`adjust`] to a raw interleaved buffer in place. `colour` is the number of
/// colour channels (1 for luma, 3 for RGB); the channels after them are left alone.
fn adjust_raw<S: Sample>(buf: &mut [S], channels: usize, colour: usize, p: &AdjustParams) {
    if channels == 0 {
        return;
    }
    let to_255 = 255.0 / S::MAX;
    for px in buf.chunks_exact_mut(channels) {
        let mut v = [0.0f32; 3];
        for (d, s) in v.iter_mut().zip(px.iter()).take(colour) {
            *d = s.to_f32() * to_255;
        }
        if p.brightness != 0.0 {
            for d in v.iter_mut().take(colour) {
                *d = (*d + p.brightness).clamp(0.0, 255.0);
            }
        }
        if p.contrast != 1.0 {
            for d in v.iter_mut().take(colour) {
                *d = ((*d - 128.0) * p.contrast + 128.0).clamp(0.0, 255.0);
            }
        }
        if colour == 3 && p.saturation != 1.0 {
            let [r, g, b] = v;
            let luma = 0.299 * r + 0.587 * g + 0.114 * b;
            for d in v.iter_mut() {
                *d = (luma + (*d - luma) * p.saturation).clamp(0.0, 255.0);
            }
        }
        for (s, d) in px.iter_mut().zip(v.iter()).take(colour) {
            *s = S::from_f32(*d / to_255);
        }
    }
}

// ---------------------------------------------------------------------------
// summary
// ---------------------------------------------------------------------------

/// What `/info` reports about an image's pixels; see [`summarize`].
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Mean colour over pixels weighted by alpha (fully transparent pixels do not count), sRGB values as stored.
    pub average: [u8; 3],
    /// The most common colour after quantising each channel to 4 bits (16 levels), reported as the mean of the pixels in that bucket; ignoring pixels with alpha < 128 (if all are, use average).
    pub dominant: [u8; 3],
    /// BlurHash with 4x3 components (or fewer on tiny images: x components ≤ width, y ≤ height, each 1..=9).
    pub blurhash: String,
    /// ThumbHash bytes, base64 standard with padding (thumbhash needs ≤100x100 RGBA input).
    pub thumbhash: String,
}

/// What /info reports about the pixels, from a small thumbnail (the caller passes an image whose longest side is ≤ 100 px; if larger, downscale it inside with a cheap filter to ≤100 first).
///
/// Details:
/// * Larger inputs are reduced with [`DynamicImage::thumbnail`] (box-like
///   integer filter, aspect ratio kept).
/// * When every pixel is fully transparent, `average` is the plain mean of
///   the stored RGB values.
/// * Ties between equally common `dominant` buckets go to the bucket with the
///   lowest (r, g, b) index.
/// * BlurHash ignores alpha, so the pixels are first composited over the
///   `average` colour (what ThumbHash does internally too).
/// * A 0×0 image is summarised as a single fully transparent black pixel.
pub fn summarize(thumb: &image::DynamicImage) -> Summary {
    let small: Cow<'_, DynamicImage> = if thumb.width().max(thumb.height()) > SUMMARY_MAX_SIDE {
        Cow::Owned(thumb.thumbnail(SUMMARY_MAX_SIDE, SUMMARY_MAX_SIDE))
    } else {
        Cow::Borrowed(thumb)
    };
    let rgba: Cow<'_, RgbaImage> = if small.width() == 0 || small.height() == 0 {
        Cow::Owned(RgbaImage::new(1, 1))
    } else {
        rgba8_view(&small)
    };
    let (w, h) = rgba.dimensions();
    let raw = rgba.as_raw();

    let average = average_colour(raw);
    let dominant = dominant_colour(raw).unwrap_or(average);
    let blurhash = blurhash_of(w, h, raw, average);
    let thumbhash = thumbhash_of(w, h, raw);
    Summary {
        average,
        dominant,
        blurhash,
        thumbhash,
    }
}

/// Rounds a 0..255 float to a channel value.
fn to_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Alpha-weighted mean RGB of an RGBA8 buffer (plain mean when all pixels are transparent).
fn average_colour(raw: &[u8]) -> [u8; 3] {
    let mut weighted = [0.0f64; 3];
    let mut plain = [0.0f64; 3];
    let mut alpha = 0.0f64;
    let mut n = 0.0f64;
    for px in raw.chunks_exact(4) {
        let a = px.get(3).map_or(1.0, |&a| f64::from(a) / 255.0);
        for ((w, p), &c) in weighted.iter_mut().zip(plain.iter_mut()).zip(px.iter()) {
            *w += f64::from(c) * a;
            *p += f64::from(c);
        }
        alpha += a;
        n += 1.0;
    }
    let mut out = [0u8; 3];
    for ((o, w), p) in out.iter_mut().zip(weighted.iter()).zip(plain.iter()) {
        *o = if alpha > 0.0 {
            to_u8(w / alpha)
        } else if n > 0.0 {
            to_u8(p / n)
        } else {
            0
        };
    }
    out
}

/// Mean of the most populated 4-bit-per-channel bucket among pixels with alpha ≥ 128.
fn dominant_colour(raw: &[u8]) -> Option<[u8; 3]> {
    let mut counts = vec![0u32; 4096];
    let mut sums = vec![[0u64; 3]; 4096];
    for px in raw.chunks_exact(4) {
        let &[r, g, b, a] = px else { continue };
        if a < 128 {
            continue;
        }
        let key = (usize::from(r >> 4) << 8) | (usize::from(g >> 4) << 4) | usize::from(b >> 4);
        if let (Some(c), Some(s)) = (counts.get_mut(key), sums.get_mut(key)) {
            *c += 1;
            for (acc, v) in s.iter_mut().zip([r, g, b]) {
                *acc += u64::from(v);
            }
        }
    }
    let mut best: Option<(u32, &[u64; 3])> = None;
    for (&c, s) in counts.iter().zip(sums.iter()) {
        if c > 0 && best.is_none_or(|(bc, _)| c > bc) {
            best = Some((c, s));
        }
    }
    let (count, sum) = best?;
    let n = f64::from(count);
    let [r, g, b] = *sum;
    Some([
        to_u8(r as f64 / n),
        to_u8(g as f64 / n),
        to_u8(b as f64 / n),
    ])
}

/// BlurHash (up to 4×3 components) of an RGBA8 buffer composited over `bg`.
fn blurhash_of(w: u32, h: u32, raw: &[u8], bg: [u8; 3]) -> String {
    let cx = w.clamp(1, 4);
    let cy = h.clamp(1, 3);
    let expected = (w as usize).saturating_mul(h as usize).saturating_mul(4);
    if w == 0 || h == 0 || raw.len() != expected {
        return String::new();
    }
    let mut flat = Vec::with_capacity(raw.len());
    for px in raw.chunks_exact(4) {
        let a = px.get(3).map_or(1.0, |&a| f32::from(a) / 255.0);
        for (&c, &b) in px.iter().zip(bg.iter()) {
            let v = f32::from(c) * a + f32::from(b) * (1.0 - a);
            flat.push(v.round().clamp(0.0, 255.0) as u8);
        }
        flat.push(255);
    }
    blurhash::encode(cx, cy, w, h, &flat).unwrap_or_default()
}

/// ThumbHash (base64, standard alphabet, padded) of an RGBA8 buffer of at most 100×100.
fn thumbhash_of(w: u32, h: u32, raw: &[u8]) -> String {
    let (w, h) = (w as usize, h as usize);
    // `rgba_to_thumb_hash` asserts these; check them so it cannot panic.
    if w == 0
        || h == 0
        || w > SUMMARY_MAX_SIDE as usize
        || h > SUMMARY_MAX_SIDE as usize
        || raw.len() != w * h * 4
    {
        return String::new();
    }
    let hash = thumbhash::rgba_to_thumb_hash(w, h, raw);
    base64::engine::general_purpose::STANDARD.encode(hash)
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests;
